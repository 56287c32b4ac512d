use anyhow::Result;

use crate::cli::{ListArgs, ListFormat};
use crate::container::Store;

pub fn run(store: &Store, a: &ListArgs) -> Result<()> {
    let ids = store.ids()?;
    if a.quiet {
        for id in ids {
            crate::stdout::print(&format!("{id}\n"))?;
        }
        return Ok(());
    }
    let mut containers: Vec<_> = ids.iter().filter_map(|id| store.load(id).ok()).collect();
    if !containers.is_empty() {
        // runc's OWNER: the user owning the container's directory.
        let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
        for c in &mut containers {
            if let Ok(md) = std::fs::metadata(&c.dir) {
                c.state.owner = owner_name(&passwd, std::os::unix::fs::MetadataExt::uid(&md));
            }
        }
    }
    match a.format {
        ListFormat::Json => {
            let v: Vec<_> = containers.iter().map(|c| c.oci_state()).collect();
            if v.is_empty() {
                crate::stdout::print("null\n")?;
            } else {
                crate::stdout::print(&format!("{}\n", serde_json::to_string(&v)?))?;
            }
        }
        ListFormat::Table => {
            let mut rows = vec![
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .map(String::from)
                    .to_vec(),
            ];
            for c in &containers {
                rows.push(vec![
                    c.state.id.clone(),
                    c.oci_state().pid.to_string(),
                    c.status.as_str().to_string(),
                    c.state.bundle.display().to_string(),
                    c.state.created.clone(),
                    c.state.owner.clone(),
                ]);
            }
            crate::stdout::print(&table(&rows))?;
        }
    }
    Ok(())
}

/// The name `passwd` (the host's /etc/passwd, as bytes) gives `uid`, else
/// `#uid` (runc's fallback).
fn owner_name(passwd: &[u8], uid: u32) -> String {
    let want = uid.to_string();
    passwd
        .split(|&b| b == b'\n')
        .find_map(|line| {
            let mut f = line.split(|&b| b == b':');
            let name = f.next()?;
            (f.nth(1)? == want.as_bytes()).then(|| String::from_utf8_lossy(name).into_owned())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Go's tabwriter as runc configures it: min width 12, padding 3, the last
/// column unpadded.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, |r| r.len());
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_is_the_passwd_name_else_the_number() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        assert_eq!(super::owner_name(passwd, 0), "root");
        assert_eq!(super::owner_name(passwd, 65534), "nobody");
        assert_eq!(super::owner_name(passwd, 1000), "#1000");
    }

    #[test]
    fn header_matches_runc() {
        let rows = vec![
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec(),
        ];
        assert_eq!(
            super::table(&rows),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
