use std::os::unix::net::UnixStream;

use anyhow::{Context, Result};

use crate::cli::RunArgs;
use crate::container::Store;
use crate::launch;

pub fn run(store: &Store, a: &RunArgs) -> Result<i32> {
    if a.detach {
        super::create::run(store, &a.create)?;
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
    let terminal = crate::spec::load_bundle(&a.create.bundle)
        .ok()
        .and_then(|b| b.spec.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false);
    let (ours, theirs) = if terminal && a.create.console_socket.is_none() {
        let (x, y) = UnixStream::pair()?;
        (Some(x), Some(y))
    } else {
        (None, None)
    };
    let mut opts = super::create::opts(&a.create);
    opts.foreground = true;
    opts.own_console = theirs;
    let created = launch::create(store, opts)?;
    let master = match ours {
        Some(s) => Some(crate::console::recv_master(&s).context("receiving the pty master")?),
        None => None,
    };
    let launch::Created {
        pid, pidfd, lock, ..
    } = created;
    drop(lock);
    let code = crate::foreground::wait(pid, &pidfd, sigfd, master);
    if !a.keep {
        let _lock = store.lock(&a.create.id)?;
        let c = store.load(&a.create.id)?;
        crate::container::destroy(&c.dir, &c.state)?;
    }
    Ok(code)
}
