use anyhow::{Context, Result};

use crate::cli::{Rootless, RunArgs};
use crate::container::{ContainerError, Store};
use crate::launch;

pub fn run(store: &Store, a: &RunArgs, systemd: bool, rootless: Rootless) -> Result<i32> {
    if a.detach {
        super::create::run(store, &a.create, systemd, rootless)?;
        if let Err(e) = super::start::run(store, &a.create.id) {
            if let Ok(c) = store.load(&a.create.id) {
                let _ = crate::container::destroy(&c.dir, &c.state);
            }
            return Err(e);
        }
        return Ok(0);
    }
    // Foreground: hull stays as the init's parent, proxying signals (and the
    // terminal when the process has one) until it exits.
    let sigfd = crate::foreground::take_signals().context("setting up signal forwarding")?;
    let mut opts = super::create::opts(&a.create, systemd, rootless);
    opts.foreground = true;
    let created = launch::create(store, opts)?;
    let launch::Created {
        pid,
        pidfd,
        lock,
        chan,
        console,
        protected,
    } = created;
    drop(lock);
    let started = (|| -> Result<Option<std::os::fd::OwnedFd>> {
        let master = match console {
            Some(s) => Some(crate::console::recv_master(&s).context("receiving the pty master")?),
            None => None,
        };
        if let Some(chan) = &chan {
            launch::wait_exec(chan)?;
        }
        drop(protected);
        store.load(&a.create.id)?.poststart()?;
        Ok(master)
    })();
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            remove(store, &a.create.id);
            return Err(e);
        }
    };
    let code = crate::foreground::wait(pid, &pidfd, sigfd, master);
    if !a.keep {
        remove_ours(store, &a.create.id, pid)?;
    }
    Ok(code)
}

/// Remove the container after its init (`pid`) exited, unless a concurrent
/// `delete --force` did (the exit code is still the container's), or a new
/// container took the id since: that one is not ours.
pub(super) fn remove_ours(store: &Store, id: &str, pid: i32) -> Result<()> {
    let loaded = store.lock(id).and_then(|l| Ok((l, store.load(id)?)));
    match loaded {
        Ok((_lock, c)) if c.state.pid == pid => Ok(crate::container::destroy(&c.dir, &c.state)?),
        Ok(_) | Err(ContainerError::NotExist) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn remove(store: &Store, id: &str) {
    if let Ok(_lock) = store.lock(id)
        && let Ok(c) = store.load(id)
    {
        let _ = crate::container::destroy(&c.dir, &c.state);
    }
}
