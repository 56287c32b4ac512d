//! The parent side of `exec`: find the running container's init, clone the
//! exec stage straight into the container's cgroup (or a sub-cgroup), send
//! it its plan, and learn from the channel the process's pid (the stage
//! forks it into the pid namespace as our child), whether it reached
//! execve (`Execing`, then the channel closes) or why it failed. The stage
//! stays in hull's pid namespace until it has joined every other one: the
//! container never sees a process of ours with the host's view.
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
    let Target {
        init,
        root,
        join,
        setgroups,
    } = target(c, spec, fds.min_fd)?;
    let mut cg = FsManager::from_paths(
        crate::plan::cgroup_path::sub_cgroups(&c.state.cgroup, opts.sub_cgroups)
            .map_err(|e| anyhow!(e))?,
    );
    cg.open_existing().context("the container's cgroup")?;
    let (ours, theirs) = Channel::pair(fds.min_fd)?;
    let console = handoff::console_fd(opts.console_socket, &opts.own_console, fds.min_fd)?;
    let init = raise_fd(init, fds.min_fd)?;
    let agent = super::seccomp_agent(spec, fds.min_fd)?;
    // Held until the process has exec'd (see sealed::Protected).
    let protected = sealed::protected(opts.root, fds.min_fd)
        .context("protecting hull's binary for the exec stage")?;
    let cgroup_joins = spawn::cgroup_joins(&cg, fds.min_fd)?;
    let child = spawn::Child {
        exe: protected.exe.as_raw_fd(),
        keep: [theirs.as_raw_fd(), init.as_raw_fd(), root.as_raw_fd()]
            .into_iter()
            .chain(console.as_ref().map(|c| c.as_raw_fd()))
            .chain(agent.as_ref().map(|a| a.as_raw_fd()))
            .collect(),
        extra_fds: fds.count,
        chan: &theirs,
        parent_end: ours.as_raw_fd(),
        wait_for_maps: false,
        into_frozen: c.status == crate::container::Status::Paused,
        join: &cgroup_joins,
    };
    let (child_pid, child_pidfd, placed) = spawn_into(&child, &cg)?;
    drop((theirs, cgroup_joins));
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
        setgroups,
        no_new_keyring: c.state.no_new_keyring,
        seccomp_agent_fd: agent.as_ref().map(|a| a.as_raw_fd()),
    };
    let mut stage = Stage {
        pid: child_pid,
        pidfd: child_pidfd,
        process: None,
    };
    let joined = match placed {
        true => Ok(()),
        false => join_rootless(c, child_pid, !opts.sub_cgroups.is_empty()),
    };
    let started = joined
        .and_then(|()| place(&mut cg, child_pid, spec))
        .and_then(|()| drive(&ours, plan, &mut stage, c, spec));
    if let Err(e) = started {
        stage.kill();
        return Err(e);
    }
    let (pid, pidfd) = match stage.process.take() {
        Some(p) => p,
        None => (stage.pid, stage.pidfd),
    };
    crate::debug!("exec'd process {pid} in container {}", c.state.id);
    handoff::announce(opts.pid_file, opts.pidfd_socket, pid, &pidfd)?;
    Ok((pid, pidfd))
}

/// The running init, as the stage needs it.
struct Target {
    init: OwnedFd,
    root: OwnedFd,
    join: u64,
    setgroups: bool,
}

/// The init's pidfd and root, the namespaces to join and the setgroups
/// verdict, all read while the init is sure to be the one we started.
fn target(c: &Container, spec: &Spec, min_fd: RawFd) -> Result<Target> {
    let init = c
        .init_pidfd()
        .ok_or_else(|| anyhow!("cannot exec in a stopped container"))?;
    let pid = c.state.pid;
    let root = open_min(
        &format!("/proc/{pid}/root"),
        min_fd,
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .context("opening the container's root")?;
    let mut join = namespaces_to_join(spec, pid)?;
    if c.state.join_time_ns {
        join |= restored_time_ns(pid)?;
    }
    let setgroups = setgroups_allowed(pid);
    // All of that read /proc/<pid>: the pid was checked against the start
    // time through `init`, and a pidfd that is readable now means that
    // process has exited since (the pid may have been reused).
    if exited(&init) {
        bail!("cannot exec in a stopped container");
    }
    Ok(Target {
        init,
        root,
        join,
        setgroups,
    })
}

/// The stage, and the process it forked into the pid namespace, if any.
struct Stage {
    pid: i32,
    pidfd: OwnedFd,
    process: Option<(i32, OwnedFd)>,
}

impl Stage {
    /// Kill and reap whatever was started (a failed exec).
    fn kill(&mut self) {
        if let Some((pid, fd)) = self.process.take() {
            let _ = sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        let _ = sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
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

/// Clone the stage straight into the container's cgroup; the bool says
/// whether it is there. Rootless, moving a process into the container's
/// cgroup needs write access to the cgroup.procs of the cgroup both have
/// in common, which a user outside its delegated subtree lacks: then it
/// is cloned where we are, and `join_rootless` moves it.
fn spawn_into(child: &spawn::Child, cg: &FsManager) -> Result<(i32, OwnedFd, bool)> {
    match spawn::spawn(child, 0, cg.clone_into()) {
        Ok((pid, fd)) => Ok((pid, fd, true)),
        Err(e) if cg.clone_into().is_some() && denied(&e) && rootless() => {
            let (pid, fd) = spawn::spawn(child, 0, None)?;
            Ok((pid, fd, false))
        }
        Err(e) => Err(e),
    }
}

fn denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<nix::errno::Errno>(),
            Some(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM)
        )
    })
}

fn rootless() -> bool {
    crate::rootless::detect(None)
}

/// A rootless exec the kernel would not clone into the container's
/// cgroup: its systemd moves it there (runc 1.2's way); without one it
/// stays in the caller's cgroup, as with runc.
fn join_rootless(c: &Container, pid: i32, sub: bool) -> Result<()> {
    if sub {
        bail!(
            "rootless: exec --cgroup: this user may not move a process into the container's cgroup from here"
        );
    }
    if c.state.cgroup.systemd_unit.is_some() {
        return crate::cgroups::attach_to_scope(&c.state.cgroup, pid)
            .context("asking systemd to move the process into the container's scope");
    }
    if c.status == crate::container::Status::Paused {
        // Outside the frozen cgroup it would run while the container is paused.
        bail!(
            "rootless: cannot exec in a paused container: this user may not move a process into its cgroup from here"
        );
    }
    crate::debug!(
        "rootless: exec'd process {pid} stays in our cgroup (no access to the container's)"
    );
    Ok(())
}

/// Into the cgroups clone3 did not place it in, and oomScoreAdj.
fn place(cg: &mut FsManager, pid: i32, spec: &Spec) -> Result<()> {
    cg.add_task(pid).context("joining the container's cgroup")?;
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .with_context(|| format!("setting oomScoreAdj {adj}"))?;
    }
    Ok(())
}

/// Send the plan and follow the stage: the process's pid when it was
/// forked into the pid namespace, the agent's message, and `Execing` then
/// the channel closing, which means the process runs.
fn drive(
    chan: &Channel,
    plan: ExecPlan,
    stage: &mut Stage,
    c: &Container,
    spec: &Spec,
) -> Result<()> {
    let sent = chan.send(&ToInit::Exec(Box::new(plan)));
    let mut execing = false;
    loop {
        match chan.recv::<FromInit>() {
            Ok(FromInit::InitPid(p)) => {
                let fd = sys::pidfd_open(p).context("pidfd_open of the exec'd process")?;
                stage.process = Some((p, fd));
                // The stage is done: reap it.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(stage.pid), None);
            }
            Ok(FromInit::NeedAgentMessage) => {
                let pid = stage.process.as_ref().map_or(stage.pid, |p| p.0);
                chan.send(&ToInit::AgentMessage(agent_message(c, spec, pid)))?;
            }
            Ok(FromInit::Execing) => execing = true,
            Ok(FromInit::Error(e)) => return Err(anyhow!(e.msg)),
            Ok(other) => bail!("unexpected message from the exec stage: {other:?}"),
            Err(ChannelError::Closed) if execing => return Ok(()),
            Err(ChannelError::Closed) => {
                return Err(sent.err().map_or_else(
                    || anyhow!("the exec stage exited before starting the process"),
                    Into::into,
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The CLONE_NEW* flags of the container's namespaces that are not also
/// hull's (those it shares with the host are not joined).
fn namespaces_to_join(spec: &Spec, pid: i32) -> Result<u64> {
    let mut join = 0u64;
    for ns in namespaces::namespaces(spec) {
        let name = proc_ns_name(ns.typ());
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
            .with_context(|| format!("the container's {name} namespace"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .with_context(|| format!("hull's {name} namespace"))?;
        if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
            continue;
        }
        join |= namespaces::flag(ns.typ()).bits() as u64;
    }
    Ok(join)
}

/// A restored container's time namespace (CRIU makes one the config does
/// not name), when it is not hull's.
fn restored_time_ns(pid: i32) -> Result<u64> {
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/time"))
        .context("the container's time namespace")?;
    let ours = std::fs::metadata("/proc/self/ns/time").context("hull's time namespace")?;
    Ok(
        match (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
            true => 0,
            false => libc::CLONE_NEWTIME as u64,
        },
    )
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
