//! What can be done to a loaded container: pause, resume, signal it, wait
//! for it. Removing it is teardown's job.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::handle::Container;
use super::state::State;
use super::status::{Status, proc_start_time};
use crate::cgroups::{FsManager, Manager};
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("container not running")]
    NotRunning,
    #[error("container not paused")]
    NotPaused,
    #[error("{0}: {1}")]
    Sys(&'static str, nix::errno::Errno),
    #[error("{0}")]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("removing {0}: {1}")]
    Remove(std::path::PathBuf, std::io::Error),
    #[error("{0}")]
    Busy(&'static str),
}

impl Container {
    pub fn init_pidfd(&self) -> Option<OwnedFd> {
        init_pidfd(&self.state)
    }

    /// The poststart hooks, once the container's process was exec'd; a
    /// failure stops the container (runtime-spec 1.3).
    pub fn poststart(&self) -> anyhow::Result<()> {
        if self.state.late_hooks.is_some_and(|h| !h.poststart) {
            return Ok(());
        }
        let spec = self.saved_spec()?;
        if crate::hooks::of(&spec, crate::hooks::Phase::Poststart).is_empty() {
            return Ok(());
        }
        let state = self.state.hook_state("running", self.state.pid);
        if let Err(e) = crate::hooks::run(&spec, crate::hooks::Phase::Poststart, &state) {
            let _ = self.signal(Some(Signal::SIGKILL), true);
            anyhow::bail!("{e}");
        }
        Ok(())
    }

    pub fn cgroup(&self) -> FsManager {
        FsManager::from_paths(self.state.cgroup.clone())
    }

    /// Freeze every process (runc allows it for created and running).
    pub fn pause(&self) -> Result<(), OpError> {
        match self.status {
            Status::Running | Status::Created => Ok(self.cgroup().freeze(true)?),
            _ => Err(OpError::NotRunning),
        }
    }

    pub fn resume(&self) -> Result<(), OpError> {
        match self.status {
            Status::Paused => Ok(self.cgroup().freeze(false)?),
            _ => Err(OpError::NotPaused),
        }
    }

    /// Send `sig` to the init, or to every process in the container with
    /// `all` (and always when the container shares the host's pid namespace,
    /// where killing the init would not take the others with it).
    /// `None` is signal 0: only whether the process is there. SIGKILL to a
    /// paused container thaws it too, or the frozen tasks would never die
    /// (runc does the same; containerd's forced delete of a paused task
    /// relies on it).
    pub fn signal(&self, sig: Option<Signal>, all: bool) -> Result<(), OpError> {
        let sent = self.send(sig, all);
        if sig == Some(Signal::SIGKILL) && self.status == Status::Paused {
            let _ = self.cgroup().freeze(false);
        }
        sent
    }

    fn send(&self, sig: Option<Signal>, all: bool) -> Result<(), OpError> {
        if all || !self.state.own_pid_ns {
            let pids = self.cgroup().pids()?;
            let mut sent = false;
            for pid in pids {
                if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).is_ok() {
                    sent = true;
                }
            }
            if sent || all {
                return Ok(());
            }
        }
        let fd = self.init_pidfd().ok_or(OpError::NotRunning)?;
        match sys::pidfd_send_signal(fd.as_raw_fd(), sig.map_or(0, |s| s as i32)) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::ESRCH) => Err(OpError::NotRunning),
            Err(e) => Err(OpError::Sys("sending signal", e)),
        }
    }
}

/// A pidfd for the recorded init, checked to be the very process we
/// started (the pid may have been reused since).
pub fn init_pidfd(state: &State) -> Option<OwnedFd> {
    let fd = sys::pidfd_open(state.pid).ok()?;
    (proc_start_time(state.pid) == Some(state.start_time)).then_some(fd)
}

/// Wait (up to `timeout`) for the process behind `fd` to exit.
pub fn wait_exit(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(
            &mut pfd,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        ) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// runc's signal parsing: a number, or a name in any case with or without
/// "SIG". 0 (None) is the "is it alive?" probe.
pub fn parse_signal(s: &str) -> Result<Option<Signal>, String> {
    if let Ok(n) = s.parse::<i32>() {
        if n == 0 {
            return Ok(None);
        }
        return Signal::try_from(n)
            .map(Some)
            .map_err(|_| format!("unknown signal {s:?}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map(Some)
        .map_err(|_| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals_like_runc() {
        for s in ["SIGTERM", "TERM", "term", "15"] {
            assert_eq!(parse_signal(s).unwrap(), Some(Signal::SIGTERM), "{s}");
        }
        for s in ["KILL", "SIGKILL", "kill", "9", "sigkill"] {
            assert_eq!(parse_signal(s).unwrap(), Some(Signal::SIGKILL), "{s}");
        }
        assert_eq!(parse_signal("0").unwrap(), None);
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("-1").is_err());
    }
}
