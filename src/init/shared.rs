//! What both stages need: a handle on the host's procfs taken before the
//! namespaces change, the pty handed to the console socket, the
//! container's session keyring; and for the init, joining the cgroup v1
//! directories the parent makes while it execs and mounts.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::Process;

use crate::channel::{Channel, FromInit, ToInit};
use crate::error::{Ctx, Result, StageError};
use crate::sys;

/// The host's procfs, opened before any namespace changes.
pub fn host_proc() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/proc",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "opening /proc".into())?;
    let fs = nix::sys::statfs::fstatfs(&fd).ctx(|| "statfs /proc".into())?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(StageError::new("/proc is not a procfs"));
    }
    Ok(fd)
}

/// A new pty from `ptmx` (the container's devpts), sized as the process
/// asks; the master goes to the console socket `sock`, the peer is returned.
/// `raw_output` (hull proxies it) clears ONLCR before anything is written,
/// as runc does, so the lines a caller reads end in "\n", not "\r\n".
pub fn pty_for(
    ptmx: OwnedFd,
    process: &Process,
    sock: &OwnedFd,
    raw_output: bool,
) -> Result<OwnedFd> {
    let (master, peer) = crate::console::open_pty(ptmx).ctx(|| "creating the pty".into())?;
    if raw_output {
        crate::console::clear_onlcr(&peer).ctx(|| "clearing ONLCR on the pty".into())?;
    }
    // The terminal is the user's (its group stays: tty), as with runc.
    nix::unistd::fchown(&peer, Some(process.user().uid().into()), None)
        .ctx(|| "giving the pty to the process's user".into())?;
    if let Some(size) = process.console_size() {
        crate::console::set_winsize(
            std::os::fd::AsFd::as_fd(&peer),
            size.height() as u16,
            size.width() as u16,
        )
        .ctx(|| "setting the console size".into())?;
    }
    crate::console::send_fd(sock, master.as_raw_fd(), "/dev/ptmx")
        .ctx(|| "sending the pty master to the console socket".into())?;
    Ok(peer)
}

/// The agent socket the parent connected (for a NOTIFY profile), and the
/// message it renders for it now that our pid is final.
pub fn seccomp_agent(
    chan: &crate::channel::Channel,
    fd: Option<std::os::fd::RawFd>,
) -> Result<Option<crate::seccomp::notify::Agent>> {
    use crate::channel::{FromInit, ToInit};
    let Some(fd) = fd else {
        return Ok(None);
    };
    // SAFETY: the parent passed the connected agent socket at this number.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let fail = |e| StageError::new(format!("asking for the seccomp agent's message: {e}"));
    chan.send(&FromInit::NeedAgentMessage).map_err(fail)?;
    match chan.recv::<ToInit>().map_err(fail)? {
        ToInit::AgentMessage(msg) => Ok(Some(crate::seccomp::notify::Agent {
            sock,
            msg: msg.into_bytes(),
        })),
        other => Err(StageError::new(format!(
            "expected the seccomp agent's message, got {other:?}"
        ))),
    }
}

/// Join the container's session keyring (`_ses.ID`, as runc), so the
/// process does not inherit hull's.
pub fn join_keyring(id: &str) -> Result<()> {
    let name = crate::process::cstring(&format!("_ses.{id}"), "keyring name")?;
    match sys::join_session_keyring(&name) {
        // Keyrings disabled, or not permitted in this user namespace.
        Ok(_) | Err(Errno::ENOSYS) | Err(Errno::EPERM) | Err(Errno::EACCES)
        | Err(Errno::EDQUOT) => Ok(()),
        Err(e) => Err(e).ctx(|| "joining a new session keyring".into()),
    }
}

/// The cgroup v1 directories the init stage moves itself into, once, as
/// late as it may: the parent makes them and writes their limits while we
/// mount. Asked for before the first thing that needs them (their mount,
/// the device nodes, a cgroup namespace, the hooks) and in any case before
/// the container's process can run. A task moving itself skips the global
/// lock that moving another process takes (and its RCU grace period); the
/// kernel checks the opener's credentials, so the parent opens the files.
/// With the systemd driver the parent has systemd move the init into its
/// scope: the same question then waits for that, and the init must not
/// fork before (a child would stay behind).
pub struct CgroupJoin<'a> {
    chan: &'a Channel,
    dirs: &'a [std::path::PathBuf],
    joined: std::cell::Cell<bool>,
    /// The parent places us (a systemd scope).
    pub placed: bool,
}

impl<'a> CgroupJoin<'a> {
    pub fn new(chan: &'a Channel, dirs: &'a [std::path::PathBuf], placed: bool) -> Self {
        CgroupJoin {
            chan,
            dirs,
            joined: std::cell::Cell::new(dirs.is_empty() && !placed),
            placed,
        }
    }

    /// Join now, unless done already.
    pub fn now(&self) -> Result<()> {
        if self.joined.get() {
            return Ok(());
        }
        let fail = |e| StageError::new(format!("receiving the cgroup files: {e}"));
        self.chan.send(&FromInit::JoinCgroups).map_err(fail)?;
        if self.dirs.is_empty() {
            match self.chan.recv::<ToInit>() {
                Ok(ToInit::CgroupsPlaced) => {}
                other => {
                    return Err(StageError::new(format!(
                        "waiting for the cgroup: {other:?}"
                    )));
                }
            }
            self.joined.set(true);
            return Ok(());
        }
        let fds = self.chan.recv_fds(self.dirs.len()).map_err(fail)?;
        for (fd, dir) in fds.iter().zip(self.dirs) {
            nix::unistd::write(fd, b"0").ctx(|| format!("joining cgroup {}", dir.display()))?;
        }
        self.joined.set(true);
        Ok(())
    }
}
