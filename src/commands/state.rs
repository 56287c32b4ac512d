use anyhow::Result;

use crate::container::Store;

pub fn run(store: &Store, id: &str) -> Result<()> {
    let c = store.load(id)?;
    crate::stdout::print(&format!(
        "{}\n",
        serde_json::to_string_pretty(&c.oci_state())?
    ))?;
    Ok(())
}
