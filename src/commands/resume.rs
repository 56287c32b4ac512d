use anyhow::Result;

use crate::container::Store;

/// Thaw a paused container.
pub fn run(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock(id)?;
    store.load(id)?.resume()?;
    Ok(())
}
