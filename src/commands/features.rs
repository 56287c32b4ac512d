use anyhow::Result;

pub fn run() -> Result<()> {
    let doc = serde_json::to_string_pretty(&crate::features::document())?;
    crate::stdout::print(&format!("{doc}\n"))?;
    Ok(())
}
