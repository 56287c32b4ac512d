//! The parent side of `exec`: find the running container's init, join its
//! pid namespace (for our children only, so the new process is born inside
//! it: no extra fork), clone the exec stage straight into the container's
//! cgroup (or a sub-cgroup), send it its plan, and learn from the channel
//! whether it reached execve (the channel closes) or failed (it says why).
//!
//! The process is set up from the config `create` saw (kept in the
//! container directory), never from a bundle that may have changed since.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::Spec;

use super::handoff::{self, PassedFds};
use super::{sealed, spawn};
use crate::cgroups::{FsManager, Manager};
use crate::channel::{Channel, ChannelError, FromInit, ToInit, raise as raise_fd};
use crate::container::Container;
use crate::namespaces;
use crate::plan::ExecPlan;
use crate::sys;

/// What the caller of `exec` asked for, besides the process itself.
pub struct ExecOpts<'a> {
    pub console_socket: Option<&'a str>,
    /// A foreground `exec -t` without a console socket: the socket hull
    /// itself receives the pty master on.
    pub own_console: Option<UnixStream>,
    pub pidfd_socket: Option<&'a str>,
    pub pid_file: Option<&'a str>,
    pub preserve_fds: u32,
    /// `--cgroup`: sub-cgroups of the container's to run in.
    pub sub_cgroups: &'a [String],
    pub root: &'a std::path::Path,
}

/// Start `spec.process` in container `c`; returns its pid and pidfd once it
/// has exec'd.
pub fn exec(c: &Container, spec: &Spec, opts: ExecOpts) -> Result<(i32, OwnedFd)> {
    let fds = PassedFds::new(opts.preserve_fds)?;
    let init = c
        .init_pidfd()
        .ok_or_else(|| anyhow!("cannot exec in a stopped container"))?;
    let pid = c.state.pid;
    let root = open_min(
        &format!("/proc/{pid}/root"),
        fds.min_fd,
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .context("opening the container's root")?;
    // The pid was checked against the start time through `init`; a pidfd
    // that is readable now means that process has exited since.
    if exited(&init) {
        bail!("cannot exec in a stopped container");
    }
    let (join, pid_ns) = namespaces_to_join(spec, pid)?;
    let mut cg = FsManager::from_paths(
        crate::plan::cgroup_path::sub_cgroups(&c.state.cgroup, opts.sub_cgroups)
            .map_err(|e| anyhow!(e))?,
    );
    cg.open_existing().context("the container's cgroup")?;
    let (ours, theirs) = Channel::pair(fds.min_fd)?;
    let console = handoff::console_fd(opts.console_socket, &opts.own_console, fds.min_fd)?;
    let init = raise_fd(init, fds.min_fd)?;
    let agent = super::seccomp_agent(spec, fds.min_fd)?;
    let exe = raise_fd(
        sealed::protected_self(opts.root).context("protecting hull's binary for the exec stage")?,
        fds.min_fd,
    )?;
    if pid_ns {
        // Our children (the stage) are born in the container's pid namespace.
        sys::setns(init.as_raw_fd(), libc::CLONE_NEWPID)
            .context("joining the container's pid namespace")?;
    }
    let child = spawn::Child {
        exe: exe.as_raw_fd(),
        keep: [theirs.as_raw_fd(), init.as_raw_fd(), root.as_raw_fd()]
            .into_iter()
            .chain(console.as_ref().map(|c| c.as_raw_fd()))
            .chain(agent.as_ref().map(|a| a.as_raw_fd()))
            .collect(),
        extra_fds: fds.count,
        chan: &theirs,
        parent_end: ours.as_raw_fd(),
        other_pid_ns: pid_ns,
        wait_for_maps: false,
    };
    let (child_pid, child_pidfd) = spawn::spawn(&child, 0, cg.clone_into())?;
    drop(theirs);
    let plan = ExecPlan {
        id: c.state.id.clone(),
        config: serde_json::to_string(spec)?,
        init_pidfd: init.as_raw_fd(),
        init_root: root.as_raw_fd(),
        join,
        console_fd: console.as_ref().map(|c| c.as_raw_fd()),
        raw_output: opts.own_console.is_some(),
        extra_fds: fds.count,
        extra_env: fds.env.clone(),
        setgroups: setgroups_allowed(pid),
        no_new_keyring: c.state.no_new_keyring,
        seccomp_agent_fd: agent.as_ref().map(|a| a.as_raw_fd()),
        seccomp_agent_msg: agent.as_ref().map(|_| agent_message(c, spec, child_pid)),
    };
    let started = place(&cg, child_pid, spec).and_then(|()| drive(&ours, plan));
    if let Err(e) = started {
        let _ = sys::pidfd_send_signal(child_pidfd.as_raw_fd(), libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child_pid), None);
        return Err(e);
    }
    crate::debug!("exec'd process {child_pid} in container {}", c.state.id);
    handoff::announce(opts.pid_file, opts.pidfd_socket, child_pid, &child_pidfd)?;
    Ok((child_pid, child_pidfd))
}

/// What the seccomp agent is told about an exec'd process (runc: the
/// container's state, the new process's pid).
fn agent_message(c: &Container, spec: &Spec, pid: i32) -> String {
    let state = c.state.hook_state("running", c.state.pid);
    let meta = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_metadata().clone())
        .unwrap_or_default();
    String::from_utf8(crate::seccomp::notify::message(&state, pid, &meta)).unwrap_or_default()
}

/// Into the cgroups clone3 did not place it in, and oomScoreAdj.
fn place(cg: &FsManager, pid: i32, spec: &Spec) -> Result<()> {
    cg.add_task(pid).context("joining the container's cgroup")?;
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .with_context(|| format!("setting oomScoreAdj {adj}"))?;
    }
    Ok(())
}

/// Send the plan; the channel closing means the stage exec'd.
fn drive(chan: &Channel, plan: ExecPlan) -> Result<()> {
    let sent = chan.send(&ToInit::Exec(Box::new(plan)));
    match chan.recv::<FromInit>() {
        Err(ChannelError::Closed) if sent.is_ok() => Ok(()),
        Ok(FromInit::Error(e)) => Err(anyhow!(e.msg)),
        Ok(other) => Err(anyhow!("unexpected message from the exec stage: {other:?}")),
        Err(e) => Err(sent.err().map_or_else(|| e.into(), Into::into)),
    }
}

/// The CLONE_NEW* flags of the container's namespaces that are not also
/// hull's (those it shares with the host are not joined), the pid one
/// apart: it is joined here, in the parent.
fn namespaces_to_join(spec: &Spec, pid: i32) -> Result<(u64, bool)> {
    let mut join = 0u64;
    let mut pid_ns = false;
    for ns in namespaces::namespaces(spec) {
        let name = proc_ns_name(ns.typ());
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
            .with_context(|| format!("the container's {name} namespace"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .with_context(|| format!("hull's {name} namespace"))?;
        if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
            continue;
        }
        let flag = namespaces::flag(ns.typ()).bits() as u64;
        if flag == libc::CLONE_NEWPID as u64 {
            pid_ns = true;
        } else {
            join |= flag;
        }
    }
    Ok((join, pid_ns))
}

/// The file name under /proc/PID/ns.
fn proc_ns_name(t: oci_spec::runtime::LinuxNamespaceType) -> &'static str {
    use oci_spec::runtime::LinuxNamespaceType::*;
    match t {
        Mount => "mnt",
        Network => "net",
        other => namespaces::spec_name(other),
    }
}

/// Whether the container's user namespace allows setgroups(2), from the
/// host's /proc (never the container's).
fn setgroups_allowed(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/setgroups")).map_or(true, |s| s.trim() != "deny")
}

fn exited(pidfd: &OwnedFd) -> bool {
    let mut pfd = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// open(2) with O_CLOEXEC, the fd moved to at least `min_fd`.
fn open_min(path: &str, min_fd: RawFd, flags: i32) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {path}"))?;
    Ok(raise_fd(fd, min_fd)?)
}
