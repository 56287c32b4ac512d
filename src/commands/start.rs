use std::io::Write;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result, anyhow, bail};

use crate::channel::Channel;
use crate::container::{START_BYTE, START_RELEASING, START_SOCKET, Status, Store};

/// Release the init waiting on the start socket, learn whether it reached
/// execve (the connection closes) or why not, then run the poststart
/// hooks. Serialized with other commands on the same id by the container
/// lock.
pub fn run(store: &Store, id: &str) -> Result<()> {
    let lock = store.lock(id)?;
    let c = store.load(id)?;
    match c.status {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        Status::Paused => bail!("cannot start a container in the paused state"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    // Through the locked directory's fd: a short path whatever --root is.
    let at = |name: &str| format!("/proc/self/fd/{}/{name}", lock.dir().as_raw_fd());
    // Renamed first: from here until the file is gone, only whether the
    // init still listens tells created from running (a `start` killed in
    // between leaves the name behind; the next one goes on from it).
    match std::fs::rename(at(START_SOCKET), at(START_RELEASING)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("renaming the start socket");
        }
        _ => {}
    }
    let conn = std::os::unix::net::UnixStream::connect(at(START_RELEASING)).map_err(|e| {
        if e.raw_os_error() == Some(libc::ECONNREFUSED) {
            anyhow!("cannot start a container that has stopped (its init is gone)")
        } else {
            anyhow!(
                "connecting to {}: {e}",
                c.dir.join(START_RELEASING).display()
            )
        }
    })?;
    (&conn)
        .write_all(&[START_BYTE])
        .context("releasing the container's init")?;
    std::fs::remove_file(at(START_RELEASING)).context("removing the start socket")?;
    Channel::from_stream(conn)
        .await_exec()
        .map_err(|e| anyhow!(e))?;
    crate::debug!("container {id} started");
    drop(lock);
    c.poststart()
}
