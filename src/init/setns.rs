//! The exec stage (runc's "setns init"): join the namespaces of a running
//! container's init through its pidfd, take its root, and start a new
//! process there, set up exactly as the container's own (process::prepare:
//! rlimits, user, capabilities, seccomp, cwd check, LSM label). Success is
//! the channel closing on execve; a failure is reported on it.

use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::Spec;

use super::shared;
use crate::error::{Ctx, Result, StageError};
use crate::plan::ExecPlan;
use crate::sys;

pub fn run(plan: ExecPlan) -> StageError {
    match set_up(&plan) {
        Ok(exec) => crate::process::exec(exec),
        Err(e) => e,
    }
}

fn set_up(plan: &ExecPlan) -> Result<crate::process::Exec> {
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
    drop((init, root));
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
            // SAFETY: the parent passed the connected agent socket here.
            agent: plan
                .seccomp_agent_fd
                .map(|fd| crate::seccomp::notify::Agent {
                    sock: unsafe { OwnedFd::from_raw_fd(fd) },
                    msg: plan
                        .seccomp_agent_msg
                        .clone()
                        .unwrap_or_default()
                        .into_bytes(),
                }),
        },
    )?;
    crate::process::tuning::final_affinity(process)?;
    lsm.apply()?;
    // Once we exec, `hull exec` may go (detached): we must not die with it.
    sys::prctl(libc::PR_SET_PDEATHSIG, 0).ctx(|| "clearing the parent death signal".into())?;
    Ok(exec)
}

/// Join the init's namespaces (one setns through its pidfd: the kernel
/// takes the user namespace first) and its root directory.
fn enter(init: &OwnedFd, root: &OwnedFd, join: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    if join != 0 {
        sys::setns(init.as_raw_fd(), join as i32)
            .ctx(|| "joining the container's namespaces".into())?;
    }
    nix::unistd::fchdir(root).ctx(|| "entering the container's root".into())?;
    nix::unistd::chroot(".").ctx(|| "chroot to the container's root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}
