use anyhow::{Result, bail};

use crate::container::{Status, Store};

/// Release the init waiting on the exec fifo. Serialized with other
/// commands on the same id by the container lock.
pub fn run(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock(id)?;
    let c = store.load(id)?;
    match c.status {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    let fifo = c.exec_fifo();
    // Non-blocking: ENXIO means nobody holds the read side, i.e. the init died.
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| anyhow::anyhow!("opening exec fifo {}: {e}", fifo.display()))?;
    nix::unistd::write(&fd, b"0").map_err(|e| anyhow::anyhow!("writing exec fifo: {e}"))?;
    std::fs::remove_file(&fifo)?;
    crate::debug!("container {id} started");
    Ok(())
}
