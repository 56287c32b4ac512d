use anyhow::Result;

use crate::container::Store;

/// Freeze every process of the container; returns once they are frozen.
pub fn run(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock(id)?;
    store.load(id)?.pause()?;
    Ok(())
}
