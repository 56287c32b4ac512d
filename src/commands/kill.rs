use anyhow::{Result, anyhow, bail};

use crate::cli::KillArgs;
use crate::container::{Status, Store, parse_signal};

pub fn run(store: &Store, a: &KillArgs) -> Result<()> {
    let sig = parse_signal(&a.signal).map_err(|e| anyhow!(e))?;
    let _lock = store.lock(&a.id)?;
    let c = store.load(&a.id)?;
    match c.status {
        Status::Stopped if !a.all && !c.kills_everyone(sig) => bail!("container not running"),
        Status::Creating => bail!("container is still being created"),
        _ => {}
    }
    c.signal(sig, a.all)?;
    Ok(())
}
