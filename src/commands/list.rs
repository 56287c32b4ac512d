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
    let containers: Vec<_> = ids.iter().filter_map(|id| store.load(id).ok()).collect();
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
