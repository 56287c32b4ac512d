//! The parent side of `create`: load and check the bundle, record the
//! container, make its cgroups, clone the init stage into its namespaces,
//! feed it its plan over the typed channel, and wait until it is ready.
//!
//! Crash safety: the record (state.json) names each thing before it exists
//! (the cgroup directories before mkdir, the init right after clone, the
//! resctrl group before mkdir), so a `hull create` killed at any point
//! leaves `delete --force` everything it needs; and a create that fails
//! hands the record to the same teardown `delete` uses.

mod exec;
mod handoff;
mod handshake;
mod idmap;
mod record;
mod restore;
mod sealed;
mod spawn;

pub use exec::{ExecOpts, exec};
use handoff::PassedFds;
pub use handoff::check_passed_fds;
pub use restore::{RestoreOpts, Restored, restore};
pub use sealed::Protected;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::{FsManager, Layout, Manager, SystemdManager};
use crate::channel::{Channel, raise as raise_fd};
use crate::container::{HostMounts, Lock, State, Store, proc_start_time};
use crate::namespaces;
use crate::plan::InitPlan;
use crate::spec;
use crate::sys;
use record::Record;

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
    /// `run` in the foreground: no start socket, the init starts at once,
    /// hull stays the init's (sub)reaper, and proxies the terminal when the
    /// process has one and no console socket was given.
    pub foreground: bool,
    /// `--systemd-cgroup`: the container's cgroup is a systemd scope.
    pub systemd: bool,
    /// Rootless (`--rootless`, resolved): a cgroup the container did not
    /// ask for may be left out, the systemd driver uses the user's systemd.
    pub rootless: bool,
}

/// A container whose init is set up (and, unless foreground, waiting for
/// `start`).
pub struct Created {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub lock: Lock,
    /// Foreground: the channel stays open until the init execs (it closes)
    /// or fails after ready (it says why); see `wait_exec`.
    pub chan: Option<Channel>,
    /// Foreground with a terminal hull proxies: the pty master arrives here.
    pub console: Option<UnixStream>,
    /// Foreground: hull's protected copy, held until the init has exec'd,
    /// so that the last reference to its private mount (and the mount's
    /// teardown) is ours, not the init's execve's.
    pub protected: Option<Protected>,
}

/// For a foreground container: wait until its init has exec'd the process.
pub fn wait_exec(chan: &Channel) -> Result<()> {
    chan.await_exec().map_err(|e| anyhow!(e))
}

pub fn create(store: &Store, opts: CreateOpts) -> Result<Created> {
    crate::container::validate_id(opts.id)?;
    let bundle = load_checked(&opts)?;
    let fds = PassedFds::new(opts.preserve_fds)?;
    let terminal = wants_terminal(&bundle.spec);
    let (ours, theirs) = if opts.foreground && terminal && opts.console_socket.is_none() {
        let (x, y) = UnixStream::pair()?;
        (Some(x), Some(y))
    } else {
        (None, None)
    };
    // Made before the record, so it is dropped after it: on failure the
    // init stage is killed before it could see the channel close and
    // report a second, confusing error of its own.
    let (parent_end, child_end) = Channel::pair(fds.min_fd)?;
    let mut cg = plan_cgroups(&bundle, &opts)?;
    let mut rec = Record::begin(store, first_record(&opts, &bundle, &*cg)?, &bundle.raw)?;
    let made = build(
        &mut rec,
        &mut *cg,
        &bundle,
        &opts,
        &fds,
        &parent_end,
        child_end,
        theirs,
    )
    .and_then(|(pidfd, held)| finish(&mut rec, &opts, &pidfd).map(|()| (pidfd, held)));
    match made {
        Ok((pidfd, held)) => Ok(Created {
            pid: rec.state.pid,
            pidfd,
            lock: rec.into_lock(),
            chan: opts.foreground.then_some(parent_end),
            console: ours,
            protected: opts.foreground.then_some(held),
        }),
        Err(e) => {
            rec.abandon();
            Err(e)
        }
    }
}

/// Whether the container's process asked for a terminal.
fn wants_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// The bundle, checked as far as can be before anything exists on the host.
fn load_checked(opts: &CreateOpts) -> Result<spec::Bundle> {
    let bundle = spec::load_bundle(opts.bundle)?;
    spec::validate(&bundle.spec)?;
    crate::features::reject_unimplemented(&bundle.spec)?;
    crate::host::check_lsm(&bundle.spec).map_err(|e| anyhow!(e))?;
    let process = bundle
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("process property must not be empty"))?;
    if let Some(c) = process.capabilities().as_ref() {
        // An ambient capability needs to be inheritable too (runc warns).
        let inheritable = crate::capabilities::to_caps(c.inheritable());
        for cap in crate::capabilities::to_caps(c.ambient()) {
            if !inheritable.contains(&cap) {
                crate::warn!(
                    "can't raise ambient capability {cap}: it is not in the inheritable set"
                );
            }
        }
        let missing = crate::host::unavailable_caps(c);
        if !missing.is_empty() {
            crate::warn!(
                "ignoring unknown or unavailable capabilities: [{}]",
                missing.join(" ")
            );
        }
    }
    if opts.no_pivot && !namespaces::has(&bundle.spec, LinuxNamespaceType::Mount) {
        // It would detach the host's /proc and /sys and move the rootfs
        // over the host's root (runc does just that).
        bail!("--no-pivot needs a mount namespace: without one it would move the host's mounts");
    }
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.foreground {
        bail!("cannot allocate tty if hull will detach without setting console socket");
    }
    if !terminal && opts.console_socket.is_some() {
        bail!("cannot use console socket if hull will not detach or allocate tty");
    }
    Ok(bundle)
}

/// The container's cgroups and the directories create will make: worked
/// out (read-only) before the record is written. With `systemd`, runc's
/// checks in runc's order and words: the cgroupsPath grammar, then a
/// systemd to talk to.
fn plan_cgroups(bundle: &spec::Bundle, opts: &CreateOpts) -> Result<Box<dyn Manager>> {
    let linux = bundle.spec.linux().as_ref();
    let asked = linux.and_then(|l| l.cgroups_path().as_deref());
    let resources = linux.and_then(|l| l.resources().as_ref());
    let mut cg: Box<dyn Manager> = if opts.systemd {
        let path = asked.map(|p| p.to_string_lossy()).unwrap_or_default();
        // Rootless, the scope is the user's own systemd's, which sees us as
        // our uid outside any user namespace.
        // uid 0 of a user namespace mapped to the host's root has the
        // system's systemd (runc asks who owns the user bus: root).
        let user = match opts.rootless {
            true => match crate::rootless::host_uid() {
                Some(0) => None,
                Some(uid) => Some(uid),
                None => bail!("rootless: our uid has no mapping in /proc/self/uid_map"),
            },
            false => None,
        };
        let unit =
            crate::plan::systemd_unit::parse(&path, opts.id, user).map_err(anyhow::Error::msg)?;
        if !crate::host::systemd_running() {
            bail!("systemd not running on this host, cannot use systemd cgroups manager");
        }
        let layout = Layout::detect()?;
        if user.is_some() && !layout.v1.is_empty() {
            bail!(
                "rootless: the systemd cgroup driver needs a host on cgroup v2 (a user's systemd is delegated no v1 hierarchy)"
            );
        }
        let annotations = bundle.spec.annotations().as_ref();
        Box::new(SystemdManager::new(
            &layout,
            unit,
            resources,
            annotations,
            user.is_some(),
        )?)
    } else {
        let path = crate::plan::cgroup_path::requested_path(asked, opts.id)
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
        let layout = Layout::detect()?;
        let mut fs = FsManager::new(&layout, &path)?;
        if opts.rootless {
            fs = rootless_cgroups(fs, &layout, opts.id, asked, resources)?;
        }
        Box::new(fs)
    };
    cg.plan();
    Ok(cg)
}

/// Rootless with cgroupfs: the cgroups only where this user may make them
/// and move processes into them (a delegated subtree); without a
/// cgroupsPath, beside our own cgroup (runc's v2 default) when `/<id>` is
/// not ours. A container that asked for no cgroup and sets no limit runs
/// without one where it may not, as with runc; one that did is refused,
/// with the reason.
fn rootless_cgroups(
    mut fs: FsManager,
    layout: &Layout,
    id: &str,
    asked: Option<&std::path::Path>,
    res: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<FsManager> {
    let usable = |fs: &mut FsManager| {
        fs.set_rootless();
        fs.plan();
        fs.writable() && fs.may_move_into()
    };
    if usable(&mut fs) {
        return Ok(fs);
    }
    let explicit = asked.is_some_and(|p| !p.as_os_str().is_empty());
    if !explicit
        && let Some(mut beside) = FsManager::beside_own(layout, id)?
        && usable(&mut beside)
    {
        return Ok(beside);
    }
    let limits = res.is_some_and(crate::cgroups::sets_limits);
    if !explicit && !limits {
        crate::debug!("rootless: no writable cgroup, running without one");
        let mut none = FsManager::from_paths(Default::default());
        none.set_rootless();
        return Ok(none);
    }
    let what = if explicit {
        "linux.cgroupsPath"
    } else {
        "linux.resources"
    };
    bail!(
        "rootless: {what} needs a cgroup, and uid {} may not make {} (not a delegated subtree)",
        nix::unistd::geteuid(),
        fs.paths()
            .v2
            .as_ref()
            .or(fs.paths().v1.first().map(|(_, d)| d))
            .map_or(String::new(), |d| d.display().to_string())
    )
}

/// What is known before anything is made: the bundle, the planned cgroups,
/// and, for a container without a mount namespace, the host mounts that
/// are not its own.
fn first_record(opts: &CreateOpts, bundle: &spec::Bundle, cg: &dyn Manager) -> Result<State> {
    let spec = &bundle.spec;
    let mut state = State::creating(opts.id, &bundle.dir, &bundle.rootfs);
    state.annotations = spec
        .annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    state.own_pid_ns = namespaces::is_new(spec, LinuxNamespaceType::Pid);
    state.no_new_keyring = opts.no_new_keyring;
    state.cgroup = cg.paths().clone();
    let has = |phase| !crate::hooks::of(spec, phase).is_empty();
    state.late_hooks = Some(crate::container::LateHooks {
        poststart: has(crate::hooks::Phase::Poststart),
        poststop: has(crate::hooks::Phase::Poststop),
    });
    if !namespaces::has(spec, LinuxNamespaceType::Mount) {
        let before =
            crate::mountinfo::mounts_under(&bundle.rootfs).context("reading the mount table")?;
        state.host_mounts = Some(HostMounts {
            under: bundle.rootfs.clone(),
            before: before.into_iter().map(|(id, _)| id).collect(),
            made: None,
        });
    }
    Ok(state)
}

/// Make the container up to ready; every step recorded first. `own_console`
/// is the stage's end of the socket hull receives the pty master on.
#[allow(clippy::too_many_arguments)]
fn build(
    rec: &mut Record,
    cg: &mut dyn Manager,
    bundle: &spec::Bundle,
    opts: &CreateOpts,
    fds: &PassedFds,
    chan: &Channel,
    child_end: Channel,
    own_console: Option<UnixStream>,
) -> Result<(OwnedFd, sealed::Protected)> {
    let linux = bundle.spec.linux().as_ref();
    // What clone3 needs first; the rest is made while the init stage execs.
    let made = cg.create_for_clone();
    sync_cgroups(rec, cg, made)?;
    let start = start_socket(rec, opts, fds.min_fd)?;
    let proxied = own_console.is_some();
    let console = handoff::console_fd(opts.console_socket, &own_console, fds.min_fd)?;
    let agent = seccomp_agent(&bundle.spec, fds.min_fd)?;
    let protected = sealed::protected(&rec.root, fds.min_fd)
        .context("protecting hull's binary for the init stage")?;
    if opts.foreground {
        // The init may end up a grandchild (pid namespace joined by path):
        // make sure it is reparented to us, not to the host's init.
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).context("becoming child subreaper")?;
    }
    let ns = namespaces::plan(&bundle.spec);
    // A created init holds the private mount until its process execs, so
    // the mount's teardown is not `create`'s (at exit) but the exec's,
    // after the start connection closed; a foreground run holds it itself.
    let mount = (!opts.foreground)
        .then(|| protected.mount.as_ref().map(|m| m.as_raw_fd()))
        .flatten();
    let child = spawn::Child {
        exe: protected.exe.as_raw_fd(),
        keep: [child_end.as_raw_fd()]
            .into_iter()
            .chain(console.as_ref().map(|c| c.as_raw_fd()))
            .chain(start.as_ref().map(|f| f.as_raw_fd()))
            .chain(agent.as_ref().map(|f| f.as_raw_fd()))
            .chain(mount)
            .collect(),
        extra_fds: fds.count,
        chan: &child_end,
        parent_end: chan.as_raw_fd(),
        wait_for_maps: ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0,
        into_frozen: false,
        join: &[],
    };
    let (pid, pidfd) = spawn::spawn(&child, ns.clone_flags, cg.clone_into())?;
    drop(child_end);
    crate::debug!(
        "init stage {pid} cloned (flags {:#x}) into {:?}",
        ns.clone_flags,
        cg.paths()
    );
    rec.state.pid = pid;
    rec.state.start_time =
        proc_start_time(pid).ok_or_else(|| anyhow!("container init exited during creation"))?;
    rec.save()?;
    join_rdt(rec, linux, pid)?;
    let mut plan = init_plan(rec, bundle, opts, fds, ns.clone(), &start, &console, cg);
    plan.raw_output = proxied;
    plan.seccomp_agent_fd = agent.as_ref().map(|f| f.as_raw_fd());
    // The init joins these itself, when it first needs them.
    plan.cgroup_joins = cg.paths().v1.iter().map(|(_, d)| d.clone()).collect();
    handshake::send_plan(chan, rec, cg, bundle, &ns, plan)?;
    // The rest of the cgroups, while the init stage execs and mounts.
    let made = cg.create(linux.and_then(|l| l.resources().as_ref()));
    sync_cgroups(rec, cg, made)?;
    let join = spawn::cgroup_joins(cg, fds.min_fd)?;
    let grandchild = handshake::drive(chan, rec, cg, bundle, &join)?;
    drop((console, start, agent));
    Ok((grandchild.unwrap_or(pidfd), protected))
}

/// Put the cgroups as made on the record (a planned directory that
/// appeared meanwhile is not ours to remove), then report how making them
/// went.
fn sync_cgroups(
    rec: &mut Record,
    cg: &dyn Manager,
    made: crate::cgroups::Result<()>,
) -> Result<()> {
    if cg.paths() != &rec.state.cgroup {
        rec.state.cgroup = cg.paths().clone();
        rec.save()?;
    }
    made.context("creating cgroup")
}

/// The init waits on this listening socket until `start` connects; the
/// connection then tells `start` whether the process was exec'd (it closes
/// on execve) or why not. We make it here and hand the fd down, so the init
/// needs no permission on (or path lookup of) the state directory, whatever
/// its user namespace.
fn start_socket(rec: &Record, opts: &CreateOpts, min_fd: RawFd) -> Result<Option<OwnedFd>> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, listen, socket};
    if opts.foreground {
        return Ok(None);
    }
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating the start socket")?;
    let path = format!(
        "/proc/self/fd/{}/{}",
        rec.dir_fd().as_raw_fd(),
        crate::container::START_SOCKET
    );
    let addr = UnixAddr::new(path.as_str()).context("start socket address")?;
    // Only root may connect: the socket is made 0600 (umask at bind).
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = bind(sock.as_raw_fd(), &addr);
    nix::sys::stat::umask(old);
    bound.with_context(|| {
        format!(
            "binding {}",
            rec.dir.join(crate::container::START_SOCKET).display()
        )
    })?;
    listen(&sock, nix::sys::socket::Backlog::new(1).context("backlog")?)
        .context("listening on the start socket")?;
    Ok(Some(raise_fd(sock, min_fd)?))
}

/// For a profile with NOTIFY rules: connected here, to the agent's socket
/// in the runtime's namespace, and handed to the stage.
pub(crate) fn seccomp_agent(spec: &Spec, min_fd: RawFd) -> Result<Option<OwnedFd>> {
    let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    if !crate::seccomp::uses_agent(s) {
        return Ok(None);
    }
    let path = s
        .listener_path()
        .as_deref()
        .unwrap_or(std::path::Path::new(""));
    let sock = crate::seccomp::notify::connect(path).with_context(|| {
        format!(
            "failed to connect with seccomp agent specified in the seccomp profile: dial unix {}",
            path.display()
        )
    })?;
    Ok(Some(raise_fd(sock, min_fd)?))
}

/// linux.intelRdt: the groups are recorded, then made and joined, before
/// the init stage runs container code (whatever it forks inherits them).
fn join_rdt(rec: &mut Record, linux: Option<&oci_spec::runtime::Linux>, pid: i32) -> Result<()> {
    let Some(rdt) = linux.and_then(|l| l.intel_rdt().as_ref()) else {
        return Ok(());
    };
    let root = crate::intelrdt::mountpoint()
        .ok_or_else(|| anyhow!("linux.intelRdt is set but resctrl is not mounted"))?;
    let planned = crate::intelrdt::plan(&root, rdt, &rec.state.id)
        .map_err(|e| anyhow!("linux.intelRdt: {e}"))?;
    rec.state.intel_rdt = Some(planned.clone());
    rec.save()?;
    crate::intelrdt::enter(&root, &planned, rdt, pid).map_err(|e| anyhow!("linux.intelRdt: {e}"))
}

#[allow(clippy::too_many_arguments)]
fn init_plan(
    rec: &Record,
    bundle: &spec::Bundle,
    opts: &CreateOpts,
    fds: &PassedFds,
    ns: namespaces::NsPlan,
    start: &Option<OwnedFd>,
    console: &Option<OwnedFd>,
    cg: &dyn Manager,
) -> InitPlan {
    InitPlan {
        id: rec.state.id.clone(),
        config: String::from_utf8_lossy(&bundle.raw).into_owned(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        start_socket_fd: start.as_ref().map(|f| f.as_raw_fd()),
        ns,
        cgroup: cg.paths().clone(),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        extra_fds: fds.count,
        extra_env: fds.env.clone(),
        console_fd: console.as_ref().map(|c| c.as_raw_fd()),
        raw_output: false,
        mount_label: mount_label(&bundle.spec),
        parent_setup: crate::netdev::requested(&bundle.spec),
        hooks: crate::hooks::any_before_exec(&bundle.spec),
        cgroup_joins: Vec::new(),
        seccomp_agent_fd: None,
    }
}

/// Ready: say so on the record, then tell the caller (pid file, pidfd).
fn finish(rec: &mut Record, opts: &CreateOpts, pidfd: &OwnedFd) -> Result<()> {
    let pid = rec.state.pid;
    if let Some(m) = &mut rec.state.host_mounts {
        // The init has made its mounts (it is ready): these and no others
        // are the container's to unmount.
        let now = crate::mountinfo::mounts_under(&m.under).context("reading the mount table")?;
        m.made = Some(
            now.into_iter()
                .map(|(id, _)| id)
                .filter(|id| !m.before.contains(id))
                .collect(),
        );
    }
    rec.state.ready = true;
    rec.save()?;
    crate::debug!("container {} ready, init pid {pid}", rec.state.id);
    handoff::announce(opts.pid_file, opts.pidfd_socket, pid, pidfd)
}

/// linux.mountLabel labels the container's own filesystems. `check_lsm`
/// has already refused it on a host without SELinux.
fn mount_label(spec: &Spec) -> Option<String> {
    spec.linux()
        .as_ref()?
        .mount_label()
        .clone()
        .filter(|l| !l.is_empty())
}
