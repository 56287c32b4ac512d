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
    #[error(
        "cannot {0}: the container has no cgroup of its own (rootless, and no cgroup was delegated to this user)"
    )]
    NoCgroup(&'static str),
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
            let _ = self.signal(libc::SIGKILL, true);
            anyhow::bail!("{e}");
        }
        Ok(())
    }

    pub fn cgroup(&self) -> FsManager {
        FsManager::from_paths(self.state.cgroup.clone())
    }

    /// Whether the container has a cgroup (a rootless one may have none).
    pub fn has_cgroup(&self) -> bool {
        self.state.cgroup.v2.is_some() || !self.state.cgroup.v1.is_empty()
    }

    /// A cgroup to drive for `verb`, or why there is none.
    pub fn own_cgroup(&self, verb: &'static str) -> Result<FsManager, OpError> {
        if self.has_cgroup() {
            Ok(self.cgroup())
        } else {
            Err(OpError::NoCgroup(verb))
        }
    }

    /// The container's processes: its cgroup's, or without one (rootless)
    /// those in its own pid namespace, else just its init.
    pub fn pids(&self) -> Result<Vec<i32>, OpError> {
        if self.has_cgroup() {
            return Ok(self.cgroup().pids()?);
        }
        let Some(fd) = self.init_pidfd() else {
            return Ok(Vec::new());
        };
        let pids = match self.state.own_pid_ns {
            true => crate::procfs::same_pid_ns(self.state.pid),
            false => vec![self.state.pid],
        };
        // Read while the init was alive (its pidfd says so after): had its
        // pid been reused, these would be another namespace's processes.
        if wait_exit(&fd, Duration::ZERO) {
            return Ok(Vec::new());
        }
        Ok(pids)
    }

    /// Freeze every process (runc allows it for created and running).
    pub fn pause(&self) -> Result<(), OpError> {
        match self.status {
            Status::Running | Status::Created => Ok(self.own_cgroup("pause")?.freeze(true)?),
            _ => Err(OpError::NotRunning),
        }
    }

    pub fn resume(&self) -> Result<(), OpError> {
        match self.status {
            Status::Paused => Ok(self.own_cgroup("resume")?.freeze(false)?),
            _ => Err(OpError::NotPaused),
        }
    }

    /// Send `sig` to the init, or to every process in the container (see
    /// `send`). Signal 0 asks only whether the process is there. SIGKILL to a
    /// paused container thaws it too, or the frozen tasks would never die
    /// (runc does the same; containerd's forced delete of a paused task
    /// relies on it).
    /// SIGKILL to a container without its own pid namespace reaches every
    /// process of its cgroups.
    pub fn kills_everyone(&self, sig: i32) -> bool {
        sig == libc::SIGKILL && !self.state.own_pid_ns
    }

    pub fn signal(&self, sig: i32, all: bool) -> Result<(), OpError> {
        let sent = self.send(sig, all);
        if sig == libc::SIGKILL && self.status == Status::Paused {
            let _ = self.cgroup().freeze(false);
        }
        sent
    }

    /// Every process in the container's cgroups gets `sig` with `all`, or
    /// SIGKILL when the container shares its pid namespace (killing the
    /// init would not take the others along; runc 1.2+), even once the
    /// init is gone. Any other signal goes to the init alone.
    fn send(&self, sig: i32, all: bool) -> Result<(), OpError> {
        if all || self.kills_everyone(sig) {
            let pids = self.pids()?;
            let mut sent = false;
            for pid in pids {
                if sys::kill(pid, sig).is_ok() {
                    sent = true;
                }
            }
            if sent || all {
                return Ok(());
            }
        }
        let fd = self.init_pidfd().ok_or(OpError::NotRunning)?;
        match sys::pidfd_send_signal(fd.as_raw_fd(), sig) {
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
/// "SIG"; real-time signals too, by number (containerd sends numbers) or
/// as RTMIN+N / RTMAX-N (the stop signal of systemd-based images is
/// SIGRTMIN+3). 0 is the "is it alive?" probe.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let unknown = || format!("unknown signal {s:?}");
    let max = libc::SIGRTMAX();
    if let Ok(n) = s.parse::<i32>() {
        return match n {
            0 => Ok(0),
            n if (1..=max).contains(&n) && Signal::try_from(n).is_ok() => Ok(n),
            n if (libc::SIGRTMIN()..=max).contains(&n) => Ok(n),
            _ => Err(unknown()),
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    // "" or the sign followed by decimal digits, within the RT range.
    let rt = |base: i32, rest: &str, sign: char| -> Result<i32, String> {
        let off = match rest.strip_prefix(sign) {
            None if rest.is_empty() => 0,
            Some(d) if !d.is_empty() && d.len() < 4 && d.bytes().all(|b| b.is_ascii_digit()) => {
                d.parse::<i32>().map_err(|_| unknown())?
            }
            _ => return Err(unknown()),
        };
        let n = if sign == '+' { base + off } else { base - off };
        if (libc::SIGRTMIN()..=max).contains(&n) {
            Ok(n)
        } else {
            Err(unknown())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), rest, '+');
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(max, rest, '-');
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals_like_runc() {
        for s in ["SIGTERM", "TERM", "term", "15"] {
            assert_eq!(parse_signal(s), Ok(libc::SIGTERM), "{s}");
        }
        for s in ["KILL", "SIGKILL", "kill", "9", "sigkill"] {
            assert_eq!(parse_signal(s), Ok(libc::SIGKILL), "{s}");
        }
        assert_eq!(parse_signal("0"), Ok(0));
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("-1").is_err());
        // glibc keeps 32 and 33 for itself.
        assert!(parse_signal("32").is_err());
    }

    #[test]
    fn parses_real_time_signals() {
        let min = libc::SIGRTMIN();
        let max = libc::SIGRTMAX();
        assert_eq!(parse_signal("37"), Ok(37));
        assert_eq!(parse_signal(&max.to_string()), Ok(max));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(min + 3));
        assert_eq!(parse_signal("rtmin"), Ok(min));
        assert_eq!(parse_signal("RTMAX-1"), Ok(max - 1));
        assert_eq!(parse_signal("SIGRTMAX"), Ok(max));
        for bad in [
            "RTMIN+99", "RTMAX-99", "RTMIN+x", "RTMIN-1", "RTMAX+1", "RTMIN+", "65",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
