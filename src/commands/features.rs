use anyhow::Result;

pub fn run() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::features::document())?
    );
    Ok(())
}
