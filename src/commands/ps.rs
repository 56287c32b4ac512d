use anyhow::{Context, Result, anyhow, bail};

use crate::cli::{ListFormat, PsArgs};
use crate::container::Store;

/// runc's ps: the container's pids as JSON, or ps(1)'s output (default
/// `-ef`) filtered to the lines whose PID column is in the container.
pub fn run(store: &Store, a: &PsArgs) -> Result<()> {
    let c = store.load(&a.id)?;
    let pids = c.pids()?;
    if a.format == ListFormat::Json {
        if pids.is_empty() {
            crate::stdout::print("null\n")?;
        } else {
            crate::stdout::print(&format!("{}\n", serde_json::to_string(&pids)?))?;
        }
        return Ok(());
    }
    let args: Vec<&str> = if a.ps_args.is_empty() {
        vec!["-ef"]
    } else {
        a.ps_args.iter().map(String::as_str).collect()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("{}: {text}", out.status);
    }
    crate::stdout::print(&filter(&text, &pids)?)?;
    Ok(())
}

fn filter(ps_output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = ps_output.split('\n');
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .map_err(|e| anyhow!("unable to parse pid: {e}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_header_and_container_lines() {
        let ps = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep\n";
        assert_eq!(
            super::filter(ps, &[42]).unwrap(),
            "UID   PID  PPID CMD\nroot   42     1 sleep\n"
        );
        assert!(super::filter("USER CMD\n", &[1]).is_err());
    }
}
