//! The exec stage (runc's "setns init"): join every namespace of a running
//! container's init through its pidfd and take its root, all while still
//! invisible to the container (in hull's pid namespace, non-dumpable); then,
//! when the pid namespace is the container's own, fork once (CLONE_PARENT:
//! the process is `hull exec`'s child) so the process is born inside it,
//! already in every other namespace. The process is set up exactly as the
//! container's own (process::prepare: rlimits, user, capabilities, seccomp,
//! cwd check, LSM label). Success is the channel closing on execve after
//! `Execing`; a failure is reported on it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use oci_spec::runtime::Spec;

use super::shared;
use crate::channel::{Channel, FromInit};
use crate::error::{Ctx, Result, StageError};
use crate::plan::ExecPlan;
use crate::sys;

pub fn run(chan: &Channel, plan: ExecPlan) -> StageError {
    match set_up(chan, &plan) {
        Ok(exec) => crate::process::exec(exec, Some(chan)),
        Err(e) => e,
    }
}

fn set_up(chan: &Channel, plan: &ExecPlan) -> Result<crate::process::Exec> {
    // No other process may open /proc/<us>/exe or ptrace us until execve.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
    let spec: Spec = serde_json::from_str(&plan.config)
        .map_err(|e| StageError::new(format!("parsing the exec plan: {e}")))?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| StageError::new("process property must not be empty"))?;
    // SAFETY: the parent passed these descriptors at these numbers.
    let (init, root, console) = unsafe {
        (
            OwnedFd::from_raw_fd(plan.init_pidfd),
            OwnedFd::from_raw_fd(plan.init_root),
            plan.console_fd.map(|fd| OwnedFd::from_raw_fd(fd)),
        )
    };
    crate::process::tuning::initial_affinity(process)?;
    let host_proc = shared::host_proc()?;
    enter(&init, &root, plan.join)?;
    // Nothing of the container's init crosses into the process.
    drop((init, root));
    if plan.join & libc::CLONE_NEWPID as u64 != 0 {
        fork_into_pid_namespace(chan)?;
    }
    let lsm = crate::process::LsmExec::open(&host_proc, process)?;
    drop(host_proc);
    if let Some(sock) = &console {
        // A controlling terminal needs a session of our own.
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        let cwd_root = sys::openat2(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0, 0)
            .ctx(|| "opening /".into())?;
        let ptmx = crate::rootfs::open_ptmx(&cwd_root)?;
        let peer = shared::pty_for(ptmx, process, sock, plan.raw_output)?;
        crate::console::become_tty_stdio(&peer)
            .ctx(|| "making the pty the controlling terminal".into())?;
    }
    drop(console);
    if !plan.no_new_keyring {
        shared::join_keyring(&plan.id)?;
    }
    let exec = crate::process::prepare(
        &spec,
        process,
        crate::process::Settings {
            extra_fds: plan.extra_fds,
            extra_env: &plan.extra_env,
            setgroups: plan.setgroups,
            agent: shared::seccomp_agent(chan, plan.seccomp_agent_fd)?,
        },
    )?;
    crate::process::tuning::final_affinity(process)?;
    lsm.apply()?;
    // Once we exec, `hull exec` may go (detached): we must not die with it.
    sys::prctl(libc::PR_SET_PDEATHSIG, 0).ctx(|| "clearing the parent death signal".into())?;
    Ok(exec)
}

/// Join the init's namespaces (one setns through its pidfd: the kernel
/// takes the user namespace first; the pid namespace only applies to our
/// children) and its root directory.
fn enter(init: &OwnedFd, root: &OwnedFd, join: u64) -> Result<()> {
    if join != 0 {
        sys::setns(init.as_raw_fd(), join as i32)
            .ctx(|| "joining the container's namespaces".into())?;
    }
    nix::unistd::fchdir(root).ctx(|| "entering the container's root".into())?;
    nix::unistd::chroot(".").ctx(|| "chroot to the container's root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// The process is born here, inside the pid namespace and every other one
/// already; it is `hull exec`'s child (CLONE_PARENT), which learns its pid
/// from us. We, the stage, leave.
fn fork_into_pid_namespace(chan: &Channel) -> Result<()> {
    match sys::clone3(libc::CLONE_PARENT as u64, None)
        .ctx(|| "forking into the container's pid namespace".into())?
    {
        sys::Forked::Child => Ok(()),
        sys::Forked::Parent { pid, .. } => {
            let _ = chan.send(&FromInit::InitPid(pid));
            // SAFETY: the stage's job is done; leave without destructors.
            unsafe { libc::_exit(0) }
        }
    }
}
