//! The container's init: enter the namespaces, build the rootfs, set up the
//! console, sysctls and hostname, report ready, wait for `start` on the
//! exec fifo, and exec the container's process (runc's "standard init").

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{Process, Spec};

use super::{namespaces, shared};
use crate::channel::{Channel, FromInit, ToInit};
use crate::error::{Ctx, Result, StageError};
use crate::plan::InitPlan;
use crate::sys;

/// The descriptors the parent passed at the numbers the plan names.
struct Inherited {
    fifo: Option<OwnedFd>,
    console: Option<OwnedFd>,
}

pub fn run(chan: &Channel, plan: InitPlan) -> StageError {
    match set_up(chan, &plan) {
        Ok(exec) => crate::process::exec(exec),
        Err(e) => e,
    }
}

fn set_up(chan: &Channel, plan: &InitPlan) -> Result<crate::process::Exec> {
    // No other process may open /proc/<us>/exe or ptrace us until execve.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
    let spec: Spec = serde_json::from_str(&plan.config)
        .map_err(|e| StageError::new(format!("parsing config.json: {e}")))?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| StageError::new("process property must not be empty"))?;
    let fds = inherited(plan)?;
    crate::process::tuning::initial_affinity(process)?;
    // The host's procfs, kept across the namespace changes: the LSM exec
    // attribute and setgroups are read through it, never through a /proc
    // the container could shape.
    let host_proc = shared::host_proc()?;
    namespaces::enter(chan, plan, &spec)?;
    // Opened by the process that will exec (after any pid-namespace fork):
    // the kernel lets only the task itself write its exec attribute.
    let lsm = crate::process::LsmExec::open(&host_proc, process)?;
    let setgroups = crate::process::setgroups_allowed(&host_proc);
    drop(host_proc);
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    // Modes in the spec are meant literally; process.user.umask applies later.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    build_rootfs(chan, plan, &spec, process, fds.console)?;
    set_names(&spec)?;
    if !plan.no_new_keyring {
        shared::join_keyring(&plan.id)?;
    }
    let exec = crate::process::prepare(
        &spec,
        process,
        &crate::process::Settings {
            extra_fds: plan.extra_fds,
            extra_env: &plan.extra_env,
            setgroups,
        },
    )?;
    report_ready(chan)?;
    if let Some(fifo) = fds.fifo {
        wait_for_start(&fifo)?;
    }
    crate::process::tuning::final_affinity(process)?;
    lsm.apply()?;
    Ok(exec)
}

fn inherited(plan: &InitPlan) -> Result<Inherited> {
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
    Ok(Inherited { fifo, console })
}

/// Mounts, the console, sysctls, then the masks and read-only views.
fn build_rootfs(
    chan: &Channel,
    plan: &InitPlan,
    spec: &Spec,
    process: &Process,
    console: Option<OwnedFd>,
) -> Result<()> {
    let idmapped = parent_setup(chan, plan)?;
    let mounted = crate::rootfs::prepare(spec, plan, idmapped)?;
    if process.terminal().unwrap_or(false) {
        let sock = console
            .as_ref()
            .ok_or_else(|| StageError::new("terminal requested without a console socket"))?;
        set_up_console(&mounted, process, sock, plan.raw_output)?;
    }
    drop(console);
    // Before the read-only /proc/sys and masks go on, and before seccomp.
    crate::sysctl::apply(spec).map_err(StageError::new)?;
    crate::rootfs::finish(spec, mounted)
}

/// A pty from the container's devpts: its peer becomes /dev/console and our
/// stdio, its master goes to the console socket.
fn set_up_console(
    mounted: &crate::rootfs::Mounted,
    process: &Process,
    sock: &OwnedFd,
    raw_output: bool,
) -> Result<()> {
    let peer = shared::pty_for(mounted.ptmx()?, process, sock, raw_output)?;
    mounted.bind_console(&peer)?;
    crate::console::become_tty_stdio(&peer).ctx(|| "making the pty the controlling terminal".into())
}

fn set_names(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        sys::set_domainname(d.as_bytes()).ctx(|| format!("setdomainname {d:?}"))?;
    }
    Ok(())
}

/// Ready: the parent may now exit, so we must not die with it.
fn report_ready(chan: &Channel) -> Result<()> {
    sys::prctl(libc::PR_SET_PDEATHSIG, 0).ctx(|| "clearing the parent death signal".into())?;
    chan.send(&FromInit::Ready)
        .map_err(|e| StageError::new(format!("reporting ready: {e}")))
}

fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut b) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "waiting for start on the exec fifo".into()),
        }
    }
}

/// Now that we are in the container's final namespaces, let the parent do
/// what only it may: move network devices in, and build the id-mapped
/// mount trees, which it hands back.
fn parent_setup(chan: &Channel, plan: &InitPlan) -> Result<crate::rootfs::IdMappedSources> {
    if !plan.parent_setup {
        return Ok(Vec::new());
    }
    let fail = |e| StageError::new(format!("waiting for the parent's set-up: {e}"));
    chan.send(&FromInit::InNamespaces).map_err(fail)?;
    let idx = match chan.recv::<ToInit>().map_err(fail)? {
        ToInit::MountSources(idx) => idx,
        other => {
            return Err(StageError::new(format!(
                "expected mount sources, got {other:?}"
            )));
        }
    };
    let fds = chan.recv_fds(idx.len()).map_err(fail)?;
    Ok(idx.into_iter().zip(fds).collect())
}
