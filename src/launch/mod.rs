//! The parent side of `create`: load and check the bundle, make the state
//! directory and cgroups, clone the init stage into its namespaces, feed it
//! its plan over the typed channel, and wait until it is ready. Any failure
//! undoes everything (`Cleanup`), so a failed create leaves no state
//! directory, cgroup or process behind.

mod channel;
mod idmap;
mod sealed;

use channel::raise as raise_fd;
pub use channel::{Channel, ChannelError, ChildError, FromInit, InitPlan, ToInit};

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cgroups::{self, FsManager, Layout, Manager};
use crate::container::{Lock, State, Store, proc_start_time};
use crate::namespaces;
use crate::spec;
use crate::sys;

/// What the caller of `create` asked for.
pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a str,
    pub console_socket: Option<&'a str>,
    pub pidfd_socket: Option<&'a str>,
    pub pid_file: Option<&'a str>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground: no exec fifo, the init starts at once, and
    /// hull stays the init's (sub)reaper.
    pub foreground: bool,
    /// For a foreground `run` with a terminal: the socket hull itself
    /// receives the pty master on.
    pub own_console: Option<UnixStream>,
}

/// A container whose init is set up (and, unless foreground, waiting for
/// `start`).
pub struct Created {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub lock: Lock,
}

/// Undo a half-made container on any failure path.
struct Cleanup<'a> {
    dir: &'a Path,
    cgroup: Option<FsManager>,
    rdt: Option<crate::intelrdt::RdtState>,
    child: Option<(i32, OwnedFd)>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((pid, pidfd)) = self.child.take() {
            let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            // A killed init's children may take a moment to leave.
            for pid in cg.pids().unwrap_or_default() {
                let _ =
                    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            if let Err(e) = cg.destroy() {
                crate::warn!("cleaning up cgroup: {e}");
            }
        }
        if let Some(rdt) = &self.rdt
            && let Err(e) = crate::intelrdt::remove(rdt)
        {
            crate::warn!("cleaning up resctrl group {}: {e}", rdt.group.display());
        }
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

pub fn create(store: &Store, opts: CreateOpts) -> Result<Created> {
    crate::container::validate_id(opts.id)?;
    let bundle = spec::load_bundle(opts.bundle)?;
    spec::validate(&bundle.spec)?;
    crate::features::reject_unimplemented(&bundle.spec)?;
    crate::init::check_lsm(&bundle.spec).map_err(|e| anyhow!(e))?;
    if let Some(c) = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    {
        let missing = crate::init::unavailable_caps(c);
        if !missing.is_empty() {
            crate::warn!(
                "ignoring unknown or unavailable capabilities: [{}]",
                missing.join(" ")
            );
        }
    }
    let process = bundle
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("process property must not be empty"))?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.own_console.is_none() {
        bail!("cannot allocate tty if hull will detach without setting console socket");
    }
    if !terminal && opts.console_socket.is_some() {
        bail!("cannot use console socket if hull will not detach or allocate tty");
    }

    // fds 3.. belong to the container: LISTEN_FDS (when addressed to us),
    // then --preserve-fds. Ours go above them.
    let listen_fds = listen_fds();
    let extra_fds = listen_fds + opts.preserve_fds;
    let min_fd = 3 + extra_fds as RawFd;
    let mut extra_env = Vec::new();
    if listen_fds > 0 {
        extra_env.push(format!("LISTEN_FDS={listen_fds}"));
        extra_env.push("LISTEN_PID=1".to_string());
    }

    // Made before the cleanup guard, so it is dropped after it: on failure
    // the init stage is killed before it could see the channel close and
    // report a second, confusing error of its own.
    let (parent_end, child_end) = Channel::pair(min_fd)?;
    let (dir, lock) = store.create_dir(opts.id)?;
    let mut cleanup = Cleanup {
        dir: &dir,
        cgroup: None,
        rdt: None,
        child: None,
        armed: true,
    };

    // The init blocks reading the exec fifo until `start` writes to it. We
    // open it here and hand the fd down, so the init needs no permission on
    // (or path lookup of) the state directory, whatever its user namespace.
    let exec_fifo = if opts.foreground {
        None
    } else {
        let fifo = dir.join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .with_context(|| format!("creating {}", fifo.display()))?;
        let fd = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening {}", fifo.display()))?;
        Some(raise_fd(fd, min_fd)?)
    };

    // cgroups first: the child is born into them.
    let linux = bundle.spec.linux().as_ref();
    let layout = Layout::detect()?;
    let cg_path = cgroups::requested_path(linux.and_then(|l| l.cgroups_path().as_deref()), opts.id);
    let mut cg = FsManager::new(&layout, &cg_path)?;
    cg.extra_device_rules = crate::rootfs::device_cgroup_rules(&bundle.spec);
    let created = cg.create(linux.and_then(|l| l.resources().as_ref()));
    cleanup.cgroup = Some(cg);
    created.context("creating cgroup")?;
    let cg = cleanup.cgroup.as_ref().expect("set above");

    let console: Option<OwnedFd> = match (opts.console_socket, &opts.own_console) {
        (Some(path), _) => {
            let s = UnixStream::connect(path)
                .with_context(|| format!("connecting to console socket {path}"))?;
            Some(raise_fd(OwnedFd::from(s), min_fd)?)
        }
        (None, Some(s)) => Some(raise_fd(OwnedFd::from(s.try_clone()?), min_fd)?),
        (None, None) => None,
    };

    let exe = raise_fd(
        sealed::protected_self(store.root())
            .context("protecting hull's binary for the init stage")?,
        min_fd,
    )?;
    let ns = namespaces::plan(&bundle.spec);
    let own_pid_ns = namespaces::has(&bundle.spec, oci_spec::runtime::LinuxNamespaceType::Pid);

    if opts.foreground {
        // The init may end up a grandchild (pid namespace joined by path):
        // make sure it is reparented to us, not to the host's init.
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).context("becoming child subreaper")?;
    }

    let env = CString::new(format!("_HULL_INIT={}", child_end.as_raw_fd()))?;
    let keep: Vec<RawFd> = [child_end.as_raw_fd()]
        .into_iter()
        .chain(console.as_ref().map(|c| c.as_raw_fd()))
        .chain(exec_fifo.as_ref().map(|f| f.as_raw_fd()))
        .collect();
    let (pid, pidfd) = match sys::clone3(ns.clone_flags, cg.clone_into()).context("clone")? {
        sys::Forked::Child => {
            let new_userns = ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0;
            exec_init(
                exe.as_raw_fd(),
                &env,
                &keep,
                extra_fds,
                &child_end,
                new_userns,
            )
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_end);
    crate::debug!(
        "init stage {pid} cloned (flags {:#x}) into {:?}",
        ns.clone_flags,
        cg.paths()
    );
    cleanup.child = Some((pid, pidfd));
    // The init stage has not run container code yet; whatever it forks
    // (the init itself, in a new pid namespace) inherits the group.
    if let Some(rdt) = linux.and_then(|l| l.intel_rdt().as_ref()) {
        let root = crate::intelrdt::mountpoint()
            .ok_or_else(|| anyhow!("linux.intelRdt is set but resctrl is not mounted"))?;
        cleanup.rdt = Some(
            crate::intelrdt::apply(&root, rdt, opts.id, pid)
                .map_err(|e| anyhow!("linux.intelRdt: {e}"))?,
        );
    }

    let result = drive_init(
        &parent_end,
        pid,
        cg,
        &bundle,
        &ns,
        InitPlan {
            id: opts.id.to_string(),
            config: String::from_utf8_lossy(&bundle.raw).into_owned(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            exec_fifo_fd: exec_fifo.as_ref().map(|f| f.as_raw_fd()),
            ns: ns.clone(),
            cgroup: cg.paths().clone(),
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            extra_fds,
            extra_env,
            console_fd: console.as_ref().map(|c| c.as_raw_fd()),
            mount_label: mount_label(&bundle.spec),
        },
    );
    drop(console);
    drop(exec_fifo);
    let InitProcess {
        pid: init_pid,
        start_time,
        pidfd,
    } = result?;

    // With a pid namespace joined or created after clone, the intermediate
    // stage forked the init and has exited: reap it and hold the init itself.
    let init_pidfd = match pidfd {
        None => cleanup
            .child
            .as_ref()
            .expect("child recorded")
            .1
            .try_clone()?,
        Some(fd) => {
            if let Some((p, _)) = cleanup.child.take() {
                let _ = waitpid(Pid::from_raw(p), None);
            }
            cleanup.child = Some((init_pid, fd.try_clone()?));
            fd
        }
    };

    let state = State {
        id: opts.id.to_string(),
        pid: init_pid,
        start_time,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::logging::rfc3339_nanos_now(),
        owner: String::new(),
        annotations: bundle
            .spec
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        cgroup: cg.paths().clone(),
        own_pid_ns,
        intel_rdt: cleanup.rdt.clone(),
    };
    state.save(&dir)?;
    crate::debug!("container {} ready, init pid {init_pid}", opts.id);
    if let Some(path) = opts.pid_file {
        write_pid_file(path, init_pid)?;
    }
    if let Some(path) = opts.pidfd_socket {
        send_fd(path, init_pidfd.as_raw_fd())
            .with_context(|| format!("sending pidfd to {path}"))?;
    }
    cleanup.armed = false;
    drop(cleanup);
    Ok(Created {
        pid: init_pid,
        pidfd: init_pidfd,
        lock,
    })
}

/// In the cloned child: make the fds the init stage needs survive exec, then
/// exec the sealed copy of hull. Never returns.
fn exec_init(
    exe: RawFd,
    env: &CString,
    keep: &[RawFd],
    extra_fds: u32,
    chan: &Channel,
    wait_for_maps: bool,
) -> ! {
    // If `hull create` dies before the init is ready, the init dies too.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    // In a new user namespace, execve computes our capabilities from our
    // uid there: exec before the parent wrote the maps and we would lose
    // them all. Wait for its "mapped" byte.
    if wait_for_maps {
        let mut b = [0u8; 1];
        if !matches!(nix::unistd::read(chan, &mut b), Ok(1)) {
            // SAFETY: as below.
            unsafe { libc::_exit(1) }
        }
        // Become the namespace's root, or exec would drop our capabilities.
        let root = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
        let _ = nix::unistd::setresgid(root.0, root.0, root.0);
        let _ = nix::unistd::setresuid(root.1, root.1, root.1);
    }
    let mut ok = keep.iter().all(|fd| sys::clear_cloexec(*fd).is_ok());
    for fd in 3..3 + extra_fds as RawFd {
        ok &= sys::clear_cloexec(fd).is_ok();
    }
    let err = if ok {
        sys::fexecve(exe, &[c"hull", c"init"], &[env.as_c_str()])
    } else {
        nix::errno::Errno::EBADF
    };
    let _ = chan.send(&FromInit::Error(ChildError {
        msg: format!("executing the init stage: {err}"),
        errno: Some(err as i32),
    }));
    // SAFETY: _exit is always safe; skip atexit handlers of the parent image.
    unsafe { libc::_exit(1) }
}

/// Parent half of the handshake. Returns the pid of the container's init.
fn drive_init(
    chan: &Channel,
    pid: i32,
    cg: &FsManager,
    bundle: &spec::Bundle,
    ns: &namespaces::NsPlan,
    plan: InitPlan,
) -> Result<InitProcess> {
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
    if ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0 {
        idmap::write_maps(pid, &bundle.spec)?;
        nix::unistd::write(chan, b"m").context("releasing the init stage")?;
    }
    // Read the start time while the init is sure to be alive: a foreground
    // container may have run and exited by the time it reports ready.
    let start =
        |p: i32| proc_start_time(p).ok_or_else(|| anyhow!("container init exited during creation"));
    let mut init = InitProcess {
        pid,
        start_time: start(pid)?,
        pidfd: None,
    };
    let fail = |e: ChannelError| -> anyhow::Error {
        match e {
            ChannelError::Closed => anyhow!("container init exited before it was ready"),
            e => e.into(),
        }
    };
    chan.send(&ToInit::Plan(Box::new(plan))).map_err(fail)?;
    loop {
        match chan.recv::<FromInit>().map_err(fail)? {
            FromInit::NeedIdMaps => {
                idmap::write_maps(pid, &bundle.spec)?;
                chan.send(&ToInit::MappingWritten).map_err(fail)?;
            }
            FromInit::InitPid(p) => {
                let pidfd = sys::pidfd_open(p).context("pidfd_open of the container init")?;
                init = InitProcess {
                    pid: p,
                    start_time: start(p)?,
                    pidfd: Some(pidfd),
                };
            }
            FromInit::InNamespaces => {
                crate::netdev::move_all(&bundle.spec, init.pid)?;
                let (idx, trees) = idmapped_sources(bundle, init.pid)?;
                chan.send(&ToInit::MountSources(idx)).map_err(fail)?;
                let raw: Vec<RawFd> = trees.iter().map(|t| t.as_raw_fd()).collect();
                chan.send_fds(&raw).map_err(fail)?;
            }
            FromInit::Ready => return Ok(init),
            FromInit::Error(e) => return Err(anyhow!(e.msg)),
        }
    }
}

/// The detached id-mapped tree of every id-mapped mount. Built by us, who
/// hold CAP_SYS_ADMIN over the source filesystems, but from inside the
/// container's mount namespace (a forked helper joins it): sources resolve
/// as the container's other binds do, and the clones keep the locks that
/// mount namespace puts on them (read-only, nosuid, … and locked
/// submounts, which a container root in a user namespace could otherwise
/// undo). `pid` is in the container's final namespaces; a mount without
/// mappings of its own takes that user namespace's.
fn idmapped_sources(bundle: &spec::Bundle, pid: i32) -> Result<(Vec<usize>, Vec<OwnedFd>)> {
    use crate::rootfs::idmap as mount_idmap;
    let mounts = bundle.spec.mounts().as_deref().unwrap_or(&[]);
    let idx = mount_idmap::indexes(&bundle.spec);
    let open_ns = |what: &str| {
        nix::fcntl::open(
            format!("/proc/{pid}/ns/{what}").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening the container's {what} namespace"))
    };
    // One user namespace per distinct mapping, made here: only a process
    // outside them may write their maps.
    let mut userns: Vec<(Option<String>, OwnedFd)> = Vec::new();
    let mut plan = Vec::with_capacity(idx.len());
    for &i in &idx {
        let m = &mounts[i];
        let maps = mount_idmap::of(m).and_then(|how| how.maps);
        let key = maps.map(|(u, g)| format!("{u:?}{g:?}"));
        let ns = match userns.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                let fd = match maps {
                    Some((u, g)) => idmap::userns_with(u, g)?,
                    None => open_ns("user")?,
                };
                userns.push((key, fd));
                userns.len() - 1
            }
        };
        let src = crate::rootfs::bind_source(m, &bundle.dir).ok_or_else(|| {
            anyhow!(
                "mount {}: bind mount without a source",
                m.destination().display()
            )
        })?;
        plan.push((m, src, ns));
    }
    let mntns = open_ns("mnt")?;
    let (ours, theirs) = Channel::pair(3)?;
    let Some(helper) = sys::fork().context("forking the idmapped-mount helper")? else {
        // The helper: join the container's mount namespace, build, hand
        // the trees over, leave.
        drop(ours);
        let built = nix::sched::setns(&mntns, nix::sched::CloneFlags::CLONE_NEWNS)
            .context("joining the container's mount namespace")
            .and_then(|()| {
                plan.iter()
                    .map(|(m, src, ns)| {
                        mount_idmap::source_tree(src, m, &userns[*ns].1).with_context(|| {
                            format!("mounting {:?} to rootfs at {:?}", src, m.destination())
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            });
        let code = match built {
            Ok(trees) => {
                let raw: Vec<RawFd> = trees.iter().map(|t| t.as_raw_fd()).collect();
                let sent =
                    theirs.send(&Ok::<(), String>(())).is_ok() && theirs.send_fds(&raw).is_ok();
                if sent { 0 } else { 1 }
            }
            Err(e) => {
                let _ = theirs.send(&Err::<(), String>(format!("{e:#}")));
                1
            }
        };
        // SAFETY: leave the forked helper without running the parent's
        // destructors or atexit handlers.
        unsafe { libc::_exit(code) }
    };
    drop(theirs);
    let result = ours
        .recv::<std::result::Result<(), String>>()
        .map_err(|e| anyhow!("idmapped-mount helper: {e}"))
        .and_then(|r| r.map_err(|e| anyhow!(e)))
        .and_then(|()| {
            ours.recv_fds(plan.len())
                .map_err(|e| anyhow!("idmapped-mount helper: {e}"))
        });
    let _ = waitpid(Pid::from_raw(helper), None);
    Ok((idx, result?))
}

/// linux.mountLabel labels the container's own filesystems. `check_lsm`
/// has already refused it on a host without SELinux.
fn mount_label(spec: &oci_spec::runtime::Spec) -> Option<String> {
    spec.linux()
        .as_ref()?
        .mount_label()
        .clone()
        .filter(|l| !l.is_empty())
}

/// The container's init as the handshake found it.
struct InitProcess {
    pid: i32,
    start_time: u64,
    /// Set when the init is a grandchild (forked into its pid namespace).
    pidfd: Option<OwnedFd>,
}

/// LISTEN_FDS is honoured only when LISTEN_PID names us (sd_listen_fds).
pub fn listen_fds() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !pid_ok {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Write the pid file atomically (temp file + rename), as runc does.
pub fn write_pid_file(path: &str, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("writing pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing pid file {}", path.display()))?;
    Ok(())
}

/// Connect to a unix socket and pass one fd with SCM_RIGHTS.
pub fn send_fd(path: &str, fd: RawFd) -> Result<()> {
    let s = UnixStream::connect(path)?;
    crate::console::send_fd(&s, fd, "pidfd")?;
    Ok(())
}
