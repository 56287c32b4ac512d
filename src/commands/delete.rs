use anyhow::{Result, bail};

use crate::cli::DeleteArgs;
use crate::container::{ContainerError, Status, Store};

pub fn run(store: &Store, a: &DeleteArgs) -> Result<()> {
    let lock = match store.lock(&a.id) {
        Ok(l) => l,
        Err(ContainerError::NotExist) if a.force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let c = match store.load(&a.id) {
        Ok(c) => c,
        Err(ContainerError::NotExist) => {
            // Gone between lock and load.
            if a.force {
                return Ok(());
            }
            bail!("container does not exist");
        }
        Err(e) => return Err(e.into()),
    };
    match c.status {
        Status::Stopped | Status::Created => {}
        // A directory without state.json: a create that died half-way. Its
        // lock is ours now, so nobody is still working on it.
        Status::Creating => {}
        _ if a.force => {}
        s => bail!(
            "cannot delete container {} that is not stopped: {}",
            a.id,
            s.as_str()
        ),
    }
    crate::container::destroy(&c.dir, &c.state)?;
    drop(lock);
    Ok(())
}
