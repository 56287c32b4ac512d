//! The parent half of the init stage's protocol: place the child in its
//! cgroups, write its id maps, send the plan, and answer its requests until
//! it reports ready. Everything the child makes known (its pid after a pid
//! namespace fork) goes on the record at once.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result, anyhow};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::idmap;
use super::record::Record;
use crate::cgroups::Manager;
use crate::channel::{Channel, ChannelError, FromInit, ToInit};
use crate::container::proc_start_time;
use crate::hooks::Phase;
use crate::namespaces::NsPlan;
use crate::plan::InitPlan;
use crate::spec;
use crate::sys;

/// Place the init stage `rec.state.pid`, write its id maps, and send it
/// its plan: it works through that while we make the rest of its cgroups.
pub fn send_plan(
    chan: &Channel,
    rec: &Record,
    cg: &mut dyn Manager,
    bundle: &spec::Bundle,
    ns: &NsPlan,
    plan: InitPlan,
) -> Result<()> {
    let pid = rec.state.pid;
    place(pid, cg, bundle)?;
    if ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0 {
        idmap::write_maps(pid, &bundle.spec)?;
        nix::unistd::write(chan, b"m").context("releasing the init stage")?;
    }
    if let Err(e) = chan.send(&ToInit::Plan(Box::new(plan))) {
        // The child may have failed before reading: its report says why.
        return Err(match chan.recv::<FromInit>() {
            Ok(FromInit::Error(e)) => anyhow!(e.msg),
            _ => died(e, cg, pid),
        });
    }
    Ok(())
}

/// Answer the init stage until it is ready; `join` are the `tasks` files
/// it asks for. Returns a pidfd of the init when it is not the child we
/// cloned (it was forked into its pid namespace); the record then holds
/// its pid.
pub fn drive(
    chan: &Channel,
    rec: &mut Record,
    cg: &dyn Manager,
    bundle: &spec::Bundle,
    join: &[super::spawn::CgroupJoin],
) -> Result<Option<OwnedFd>> {
    let mut init_pidfd = None;
    loop {
        let stage = rec.state.pid;
        let closed = |e| died(e, cg, stage);
        match chan.recv::<FromInit>().map_err(closed)? {
            FromInit::NeedIdMaps => {
                idmap::write_maps(rec.state.pid, &bundle.spec)?;
                chan.send(&ToInit::MappingWritten).map_err(closed)?;
            }
            FromInit::InitPid(p) => init_pidfd = Some(adopt(rec, p)?),
            FromInit::JoinCgroups if join.is_empty() => {
                chan.send(&ToInit::CgroupsPlaced).map_err(closed)?;
            }
            FromInit::JoinCgroups => {
                let fds: Vec<RawFd> = join.iter().map(|j| j.tasks.as_raw_fd()).collect();
                chan.send_fds(&fds).map_err(closed)?;
            }
            FromInit::InNamespaces => {
                crate::netdev::move_all(&bundle.spec, rec.state.pid)?;
                chan.send(&ToInit::SetUpDone).map_err(closed)?;
            }
            FromInit::NeedMountSource(i) => match mount_source(bundle, rec.state.pid, i) {
                Ok(tree) => {
                    chan.send(&ToInit::MountSource(Ok(()))).map_err(closed)?;
                    chan.send_fds(&[tree.as_raw_fd()]).map_err(closed)?;
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    chan.send(&ToInit::MountSource(Err(msg))).map_err(closed)?;
                }
            },
            FromInit::BeforePivot => {
                let state = rec.state.hook_state("creating", rec.state.pid);
                crate::hooks::run(&bundle.spec, Phase::Prestart, &state).map_err(|e| anyhow!(e))?;
                crate::hooks::run(&bundle.spec, Phase::CreateRuntime, &state)
                    .map_err(|e| anyhow!(e))?;
                let state = String::from_utf8(state).unwrap_or_default();
                chan.send(&ToInit::HooksDone(state)).map_err(closed)?;
            }
            FromInit::NeedAgentMessage => {
                let state = rec.state.hook_state("creating", rec.state.pid);
                let meta = bundle
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.seccomp().as_ref())
                    .and_then(|s| s.listener_metadata().clone())
                    .unwrap_or_default();
                let msg = crate::seccomp::notify::message(&state, rec.state.pid, &meta);
                let msg = String::from_utf8(msg).unwrap_or_default();
                chan.send(&ToInit::AgentMessage(msg)).map_err(closed)?;
            }
            FromInit::Ready => return Ok(init_pidfd),
            FromInit::Execing => return Err(anyhow!("the init stage exec'd before it was ready")),
            FromInit::Error(e) => return Err(anyhow!(e.msg)),
        }
    }
}

/// The init stage (`pid`) is gone before it was ready: say why when the
/// kernel knows (in runc's words for an OOM kill).
fn died(e: ChannelError, cg: &dyn Manager, pid: i32) -> anyhow::Error {
    // Closed, or a write into the dead stage's end (EPIPE).
    if !matches!(e, ChannelError::Closed | ChannelError::Io(_)) {
        return e.into();
    }
    if cg.oom_kills() > 0 {
        return anyhow!("container init was OOM-killed (memory limit too low?)");
    }
    match killed_by(pid) {
        Some(sig) => anyhow!("container init was killed by signal {sig} before it was ready"),
        None if matches!(e, ChannelError::Closed) => {
            anyhow!("container init exited before it was ready")
        }
        None => e.into(),
    }
}

/// The signal that ended `pid`, when it is our child (the stage we cloned)
/// and ends within a second; its status stays for teardown to reap.
fn killed_by(pid: i32) -> Option<nix::sys::signal::Signal> {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let fd = sys::pidfd_open(pid).ok()?;
    crate::container::wait_exit(&fd, std::time::Duration::from_secs(1));
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(sig),
        _ => None,
    }
}

/// Into the cgroups clone3 did not place it in, and oomScoreAdj.
fn place(pid: i32, cg: &mut dyn Manager, bundle: &spec::Bundle) -> Result<()> {
    cg.add_task(pid).context("joining cgroup")?;
    if let Some(adj) = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
    {
        // Written from outside: the init is not dumpable, and in a user
        // namespace it could not write its own /proc entry. Inherited by
        // every process of the container.
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .with_context(|| format!("setting oomScoreAdj {adj}"))?;
    }
    Ok(())
}

/// The intermediate stage forked the init into its pid namespace and
/// exits: record the init (it is in the cgroup already), reap the other.
fn adopt(rec: &mut Record, init: i32) -> Result<OwnedFd> {
    let pidfd = sys::pidfd_open(init).context("pidfd_open of the container init")?;
    let start_time =
        proc_start_time(init).ok_or_else(|| anyhow!("container init exited during creation"))?;
    let intermediate = std::mem::replace(&mut rec.state.pid, init);
    rec.state.start_time = start_time;
    rec.save()?;
    let _ = waitpid(Pid::from_raw(intermediate), None);
    Ok(pidfd)
}

/// The detached source tree of `mounts[i]`, as the init asks for it when
/// it reaches that mount: an id-mapped mount's, or a bind source the
/// container's root cannot reach. Built by us, who hold CAP_SYS_ADMIN over
/// the source filesystems, from inside the container's mount namespace as
/// it is now (a forked helper joins it): sources resolve as the
/// container's other binds do, under the mounts made before this one, and
/// the clones keep the locks that mount namespace puts on them (read-only,
/// nosuid, … and locked submounts, which a container root in a user
/// namespace could otherwise undo). `pid` is in the container's final
/// namespaces; a mount without mappings of its own takes its user
/// namespace's.
fn mount_source(bundle: &spec::Bundle, pid: i32, i: usize) -> Result<OwnedFd> {
    use crate::plan::idmap as mount_idmap;
    let m = bundle
        .spec
        .mounts()
        .as_deref()
        .and_then(|ms| ms.get(i))
        .ok_or_else(|| anyhow!("no mount {i} in the config"))?;
    let open_ns = |what: &str| {
        nix::fcntl::open(
            format!("/proc/{pid}/ns/{what}").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening the container's {what} namespace"))
    };
    // Made here: only a process outside a user namespace may write its maps.
    let userns = match mount_idmap::of(m) {
        Some(how) => Some(match how.maps {
            Some((u, g)) => idmap::userns_with(u, g)?,
            None => open_ns("user")?,
        }),
        None => None,
    };
    let src = crate::plan::mounts::bind_source(m, &bundle.dir)
        .ok_or_else(|| anyhow!("bind mount without a source"))?;
    let mntns = open_ns("mnt")?;
    let (ours, theirs) = Channel::pair(3)?;
    let Some(helper) = sys::fork().context("forking the mount-source helper")? else {
        drop(ours);
        build_in_mntns(&theirs, &mntns, m, &src, userns.as_ref())
    };
    drop(theirs);
    let result = ours
        .recv::<std::result::Result<(), String>>()
        .map_err(|e| anyhow!("mount-source helper: {e}"))
        .and_then(|r| r.map_err(|e| anyhow!(e)))
        .and_then(|()| {
            ours.recv_fds(1)
                .map_err(|e| anyhow!("mount-source helper: {e}"))
        });
    let _ = waitpid(Pid::from_raw(helper), None);
    result?
        .pop()
        .ok_or_else(|| anyhow!("mount-source helper: no tree"))
}

/// The helper: join the container's mount namespace, build the tree (an
/// id-mapped one through `userns`, else a plain clone), hand it over,
/// leave. Runs in a forked child of single-threaded hull.
fn build_in_mntns(
    chan: &Channel,
    mntns: &OwnedFd,
    m: &oci_spec::runtime::Mount,
    src: &std::path::Path,
    userns: Option<&OwnedFd>,
) -> ! {
    // If hull dies, so does its helper.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    let built = nix::sched::setns(mntns, nix::sched::CloneFlags::CLONE_NEWNS)
        .context("joining the container's mount namespace")
        .and_then(|()| match userns {
            Some(ns) => idmap::source_tree(src, m, ns),
            None => {
                let opts = crate::plan::mount_options::parse(m.options().as_deref().unwrap_or(&[]));
                crate::rootfs::clone_source(src, &opts)
                    .with_context(|| format!("open_tree {}", src.display()))
            }
        });
    let code = match built {
        Ok(tree) => {
            let sent = chan.send(&Ok::<(), String>(())).is_ok()
                && chan.send_fds(&[tree.as_raw_fd()]).is_ok();
            if sent { 0 } else { 1 }
        }
        Err(e) => {
            let _ = chan.send(&Err::<(), String>(format!("{e:#}")));
            1
        }
    };
    // SAFETY: leave the forked helper without running the parent's
    // destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}
