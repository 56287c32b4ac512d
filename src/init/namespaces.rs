//! Entering the container's namespaces inside the init stage, following the
//! `NsPlan` the parent computed (see crate::namespaces for the ordering).

use std::os::fd::AsRawFd;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::channel::{Channel, FromInit, ToInit};
use crate::error::{Ctx, Result, StageError};
use crate::plan::InitPlan;
use crate::sys;

fn type_name(flag: u64) -> &'static str {
    match flag as i32 {
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "network",
        libc::CLONE_NEWTIME => "time",
        _ => "unknown",
    }
}

/// Join the namespaces the config names by path. Every path is opened
/// before entering any namespace: after setns(mnt) the paths would resolve
/// somewhere else. As runc: first every namespace but the user one that
/// can be joined with the host's credentials (a network namespace owned by
/// another user namespace, pod-style), then the user namespace, then the
/// rest, which may need the capabilities it gives (rootless).
fn join_paths(ns: &crate::namespaces::NsPlan) -> Result<()> {
    let mut fds = Vec::with_capacity(ns.joins.len());
    for j in &ns.joins {
        let fd = open(&j.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| {
            format!(
                "opening {} namespace path {}",
                type_name(j.flag),
                j.path.display()
            )
        })?;
        fds.push((fd, j, false));
    }
    let user = libc::CLONE_NEWUSER as u64;
    for (fd, j, joined) in fds.iter_mut().filter(|(_, j, _)| j.flag != user) {
        *joined = sys::setns(fd.as_raw_fd(), j.flag as i32).is_ok();
    }
    for (fd, j, joined) in fds.iter_mut().filter(|(_, j, _)| j.flag == user) {
        sys::setns(fd.as_raw_fd(), j.flag as i32).map_err(|e| join_error(j, e))?;
        *joined = true;
    }
    for (fd, j, _) in fds.iter().filter(|(_, _, joined)| !joined) {
        sys::setns(fd.as_raw_fd(), j.flag as i32).map_err(|e| join_error(j, e))?;
    }
    Ok(())
}

fn join_error(j: &crate::namespaces::Join, e: nix::errno::Errno) -> StageError {
    let msg = if e == nix::errno::Errno::EINVAL {
        format!(
            "{} is not a {} namespace (or cannot be joined)",
            j.path.display(),
            type_name(j.flag)
        )
    } else {
        format!(
            "joining {} namespace {}: {}",
            type_name(j.flag),
            j.path.display(),
            e.desc()
        )
    };
    StageError {
        msg,
        errno: Some(e),
    }
}

pub fn enter(
    chan: &Channel,
    plan: &InitPlan,
    spec: &Spec,
    cgroups: &super::shared::CgroupJoin,
) -> Result<()> {
    let ns = &plan.ns;
    join_paths(ns)?;
    if ns.unshare_user {
        unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "creating the user namespace".into())?;
        chan.send(&FromInit::NeedIdMaps)
            .map_err(|e| StageError::new(format!("asking for id maps: {e}")))?;
        match chan.recv::<ToInit>() {
            Ok(ToInit::MappingWritten) => {}
            other => return Err(StageError::new(format!("waiting for id maps: {other:?}"))),
        }
    }
    if crate::namespaces::has(spec, oci_spec::runtime::LinuxNamespaceType::User) {
        // Become root of the user namespace (when mapped) so exec keeps the
        // capabilities needed for set-up.
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
    }
    if ns.unshare_flags & libc::CLONE_NEWCGROUP as u64 != 0 || (ns.fork_for_pid && cgroups.placed) {
        // A new cgroup namespace is rooted where we are, and a child
        // forked before the parent placed us would stay behind: join first.
        cgroups.now()?;
    }
    if ns.unshare_flags != 0 {
        unshare(CloneFlags::from_bits_retain(ns.unshare_flags as i32)).ctx(|| "unshare".into())?;
    }
    if ns.unshare_flags & libc::CLONE_NEWTIME as u64 != 0 {
        write_time_offsets(spec)?;
    }
    if ns.fork_for_pid {
        // The child is the init. It gets no parent death signal: its
        // parent exits right away; if `hull create` dies instead, the init's
        // next message fails and it exits.
        // The init speaks only once the parent knows its pid: it waits for
        // the intermediate stage (and its end of this pipe) to be gone.
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
        if let Some(child) = sys::fork().ctx(|| "forking into the pid namespace".into())? {
            let _ = chan.send(&FromInit::InitPid(child));
            // SAFETY: the intermediate stage's job is done.
            unsafe { libc::_exit(0) }
        }
        drop(wr);
        let mut b = [0u8; 1];
        while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&rd, &mut b) {}
    }
    if crate::namespaces::is_new(spec, LinuxNamespaceType::Network) {
        // A new network namespace has its loopback down: runc (its
        // "loopback" network) and crun bring it up, and programs that talk
        // to 127.0.0.1 count on it. A joined namespace is its owner's.
        sys::set_link_up(c"lo").ctx(|| "bringing up the loopback interface".into())?;
    }
    Ok(())
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(StageError::new(format!(
                    "unknown clock {other:?} in linux.timeOffsets"
                )));
            }
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .ctx(|| "writing /proc/self/timens_offsets".into())
}
