//! The init stage: runs inside the container's namespaces from a sealed copy
//! of hull, sets the container up, reports ready, waits for `start`, and
//! finally execs the container's process. Every failure travels back to the
//! parent as one `ChildError` naming the root cause.

mod namespaces;
mod process;
mod tuning;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::Spec;

use crate::launch::{Channel, ChildError, FromInit, InitPlan, ToInit};
use crate::sys;

/// An init-stage failure: what was being done, and the errno if any.
#[derive(Debug)]
pub struct InitError {
    pub msg: String,
    pub errno: Option<Errno>,
}

impl InitError {
    pub fn new(msg: impl Into<String>) -> InitError {
        InitError {
            msg: msg.into(),
            errno: None,
        }
    }
}

pub type Result<T> = std::result::Result<T, InitError>;

/// Attach context to a failing syscall result.
pub trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| InitError {
            msg: format!("{}: {}", what(), e.desc()),
            errno: Some(e),
        })
    }
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| InitError {
            msg: format!("{}: {e}", what()),
            errno: e.raw_os_error().map(Errno::from_raw),
        })
    }
}

pub use process::unavailable_caps;
pub use tuning::check_lsm;

/// The environment variable carrying the channel fd into the init stage.
pub const INIT_ENV: &str = "_HULL_INIT";

/// Entry point when hull was exec'd as the init stage. Never returns.
pub fn main(fd: i32) -> ! {
    // SAFETY: the parent passed this socket to us and nothing else owns it.
    let chan = unsafe { Channel::from_raw(fd) };
    let err = match chan.recv::<ToInit>() {
        Ok(ToInit::Plan(plan)) => match run(&chan, *plan) {
            Ok(never) => match never {},
            Err(e) => e,
        },
        Ok(other) => InitError::new(format!("unexpected message before the plan: {other:?}")),
        Err(e) => InitError::new(format!("receiving the init plan: {e}")),
    };
    let report = FromInit::Error(ChildError {
        msg: err.msg.clone(),
        errno: err.errno.map(|e| e as i32),
    });
    if chan.send(&report).is_err() {
        // After `ready` the parent is gone: the container's stderr is the
        // only place left to say what happened.
        eprintln!("hull init: {}", err.msg);
    }
    // SAFETY: leaving without running destructors is what we want here.
    unsafe { libc::_exit(1) }
}

enum Never {}

/// Now that we are in the container's final namespaces, let the parent do
/// what only it may: move network devices in, and build the id-mapped
/// mount trees, which it hands back.
fn parent_setup(chan: &Channel, spec: &Spec) -> Result<crate::rootfs::IdMappedSources> {
    if crate::rootfs::idmap::indexes(spec).is_empty() && !crate::netdev::requested(spec) {
        return Ok(Vec::new());
    }
    let fail = |e| InitError::new(format!("waiting for the parent's set-up: {e}"));
    chan.send(&FromInit::InNamespaces).map_err(fail)?;
    let idx = match chan.recv::<ToInit>().map_err(fail)? {
        ToInit::MountSources(idx) => idx,
        other => {
            return Err(InitError::new(format!(
                "expected mount sources, got {other:?}"
            )));
        }
    };
    let fds = chan.recv_fds(idx.len()).map_err(fail)?;
    Ok(idx.into_iter().zip(fds).collect())
}

fn run(chan: &Channel, plan: InitPlan) -> Result<Never> {
    // No other process may open /proc/<us>/exe or ptrace us until execve.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
    let spec: Spec = serde_json::from_str(&plan.config)
        .map_err(|e| InitError::new(format!("parsing config.json: {e}")))?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::new("process property must not be empty"))?;

    tuning::initial_affinity(process)?;
    let lsm = tuning::LsmExec::open(process)?;
    namespaces::enter(chan, &plan, &spec)?;
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    // Modes in the spec are meant literally; process.user.umask applies later.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    // SAFETY: the parent passed the exec fifo, opened O_RDWR, at this number.
    let fifo = plan
        .exec_fifo_fd
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    if let Some(f) = &fifo {
        nix::fcntl::fcntl(
            f,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .ctx(|| "exec fifo".into())?;
    }
    // SAFETY: the parent passed the connected console socket at this number.
    let console = plan
        .console_fd
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });

    let idmapped = parent_setup(chan, &spec)?;
    let mounted = crate::rootfs::prepare(&spec, &plan, idmapped)?;
    if process.terminal().unwrap_or(false) {
        let sock = console
            .as_ref()
            .ok_or_else(|| InitError::new("terminal requested without a console socket"))?;
        let (master, peer) =
            crate::console::open_pty(mounted.ptmx()?).ctx(|| "creating the pty".into())?;
        if let Some(size) = process.console_size() {
            crate::console::set_winsize(
                std::os::fd::AsFd::as_fd(&peer),
                size.height() as u16,
                size.width() as u16,
            )
            .ctx(|| "setting the console size".into())?;
        }
        mounted.bind_console(&peer)?;
        crate::console::send_fd(sock, master.as_raw_fd(), "/dev/ptmx")
            .ctx(|| "sending the pty master to the console socket".into())?;
        crate::console::become_tty_stdio(&peer)
            .ctx(|| "making the pty the controlling terminal".into())?;
    }
    drop(console);
    // Before the read-only /proc/sys and masks go on, and before seccomp.
    crate::sysctl::apply(&spec).map_err(InitError::new)?;
    crate::rootfs::finish(&spec, mounted)?;

    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        sys::set_domainname(d.as_bytes()).ctx(|| format!("setdomainname {d:?}"))?;
    }
    if !plan.no_new_keyring {
        process::join_keyring(&plan.id)?;
    }

    let exec = process::prepare(&spec, process, &plan)?;

    // Ready: the parent may now exit, so we must not die with it.
    sys::prctl(libc::PR_SET_PDEATHSIG, 0).ctx(|| "clearing the parent death signal".into())?;
    chan.send(&FromInit::Ready)
        .map_err(|e| InitError::new(format!("reporting ready: {e}")))?;

    if let Some(fifo) = fifo {
        let mut b = [0u8; 1];
        loop {
            match nix::unistd::read(&fifo, &mut b) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx(|| "waiting for start on the exec fifo".into()),
            }
        }
    }
    tuning::final_affinity(process)?;
    lsm.apply()?;
    process::exec(exec)
}
