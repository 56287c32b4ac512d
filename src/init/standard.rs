//! The container's init: enter the namespaces, build the rootfs (with the
//! create hooks right before pivot_root), set up the console, sysctls and
//! hostname, report ready, wait for `start` to connect to the start socket,
//! run the startContainer hooks, and exec the container's process (runc's
//! "standard init").

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{Process, Spec};

use super::{namespaces, shared};
use crate::channel::{Channel, FromInit, ToInit};
use crate::error::{Ctx, Result, StageError};
use crate::plan::InitPlan;
use crate::sys;

/// The descriptors the parent passed at the numbers the plan names.
struct Inherited {
    start: Option<OwnedFd>,
    console: Option<OwnedFd>,
}

/// A container set up and ready, waiting for `start`.
struct Ready {
    spec: Spec,
    exec: crate::process::Exec,
    lsm: crate::process::LsmExec,
    start: Option<OwnedFd>,
    /// The state (status "creating") for startContainer hooks.
    hook_state: Option<String>,
}

/// Returns the failure, and the channel to report it on when that is not
/// the parent's: the connection `start` made.
pub fn run(chan: &Channel, plan: InitPlan) -> (StageError, Option<Channel>) {
    let ready = match set_up(chan, &plan) {
        Ok(r) => r,
        Err(e) => return (e, None),
    };
    if ready.start.is_some() {
        die_of_signals();
        // Waiting in "created" may last: hold no more memory than needed
        // (what runs after this faults its pages back in).
        sys::shed_mapped_memory();
    }
    let conn = match ready.start.as_ref().map(accept_start).transpose() {
        Ok(c) => c,
        Err(e) => return (e, None),
    };
    let err = match start(ready) {
        // Whoever waits to learn that the process runs: `start` on its
        // connection, or `run` on the channel.
        Ok(exec) => crate::process::exec(exec, Some(conn.as_ref().unwrap_or(chan))),
        Err(e) => e,
    };
    (err, conn)
}

fn set_up(chan: &Channel, plan: &InitPlan) -> Result<Ready> {
    let placed = plan.cgroup.systemd_unit.is_some();
    let cgroups = shared::CgroupJoin::new(chan, &plan.cgroup_joins, placed);
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
    namespaces::enter(chan, plan, &spec, &cgroups)?;
    // Opened by the process that will exec (after any pid-namespace fork):
    // the kernel lets only the task itself write its exec attribute.
    let lsm = crate::process::LsmExec::open(&host_proc, process)?;
    let setgroups = crate::process::setgroups_allowed(&host_proc);
    drop(host_proc);
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    // Modes in the spec are meant literally; process.user.umask applies later.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    // Joins the cgroups on the way, before the device nodes at the latest.
    let hook_state = build_rootfs(chan, plan, &spec, process, fds.console, &cgroups)?;
    set_names(&spec)?;
    if !plan.no_new_keyring {
        shared::join_keyring(&plan.id)?;
    }
    let exec = crate::process::prepare(
        &spec,
        process,
        crate::process::Settings {
            extra_fds: plan.extra_fds,
            extra_env: &plan.extra_env,
            setgroups,
            agent: shared::seccomp_agent(chan, plan.seccomp_agent_fd)?,
        },
    )?;
    report_ready(chan)?;
    Ok(Ready {
        spec,
        exec,
        lsm,
        start: fds.start,
        hook_state,
    })
}

/// After `start` (or at once for `run`): the startContainer hooks, in the
/// container, then the last settings before execve.
fn start(mut ready: Ready) -> Result<crate::process::Exec> {
    if let Some(state) = &ready.hook_state
        && !crate::hooks::of(&ready.spec, crate::hooks::Phase::StartContainer).is_empty()
    {
        // The hooks are the container's programs: confined like it.
        ready.exec.load_seccomp_early()?;
        let state = with_status(state, "created");
        let env = ready.exec.env();
        let inherit = crate::hooks::Defaults {
            env: Some(&env),
            cwd: None,
        };
        crate::hooks::run_with(
            &ready.spec,
            crate::hooks::Phase::StartContainer,
            &state,
            &inherit,
        )
        .map_err(StageError::new)?;
    }
    if let Some(p) = ready.spec.process() {
        crate::process::tuning::final_affinity(p)?;
    }
    ready.lsm.apply()?;
    Ok(ready.exec)
}

/// The state JSON (as the parent rendered it, status "creating") with
/// another status; the fields keep their order.
fn with_status(state: &str, status: &str) -> Vec<u8> {
    state
        .replacen(
            r#""status":"creating""#,
            &format!(r#""status":"{status}""#),
            1,
        )
        .into_bytes()
}

fn inherited(plan: &InitPlan) -> Result<Inherited> {
    // SAFETY: the parent passed the listening start socket at this number.
    let start = plan
        .start_socket_fd
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    if let Some(f) = &start {
        nix::fcntl::fcntl(
            f,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .ctx(|| "start socket".into())?;
    }
    // SAFETY: the parent passed the connected console socket at this number.
    let console = plan
        .console_fd
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(Inherited { start, console })
}

/// Mounts, the console, sysctls, then the masks and read-only views.
fn build_rootfs(
    chan: &Channel,
    plan: &InitPlan,
    spec: &Spec,
    process: &Process,
    console: Option<OwnedFd>,
    cgroups: &shared::CgroupJoin,
) -> Result<Option<String>> {
    parent_setup(chan, plan)?;
    let mut hook_state = None;
    let mut before_pivot = || -> Result<()> {
        if plan.hooks {
            hook_state = Some(create_hooks(chan, spec, &plan.rootfs)?);
        }
        Ok(())
    };
    let mounted = crate::rootfs::prepare(
        spec,
        plan,
        &|i| mount_source(chan, i),
        &|| cgroups.now(),
        &mut before_pivot,
    )?;
    if process.terminal().unwrap_or(false) {
        let sock = console
            .as_ref()
            .ok_or_else(|| StageError::new("terminal requested without a console socket"))?;
        set_up_console(&mounted, process, sock, plan.raw_output)?;
    }
    drop(console);
    // Before the read-only /proc/sys and masks go on, and before seccomp.
    crate::sysctl::apply(spec).map_err(StageError::new)?;
    crate::rootfs::finish(spec, mounted)?;
    Ok(hook_state)
}

/// Everything is mounted, pivot_root is next: the parent runs prestart and
/// createRuntime, we run createContainer here, in the container's
/// namespaces with the host's paths still in view.
fn create_hooks(chan: &Channel, spec: &Spec, rootfs: &std::path::Path) -> Result<String> {
    let fail = |e| StageError::new(format!("waiting for the create hooks: {e}"));
    chan.send(&FromInit::BeforePivot).map_err(fail)?;
    let state = match chan.recv::<ToInit>().map_err(fail)? {
        ToInit::HooksDone(state) => state,
        other => {
            return Err(StageError::new(format!(
                "expected the hook state, got {other:?}"
            )));
        }
    };
    // As runc: the process's environment (its env, not yet HOME) and the
    // rootfs as the working directory.
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let inherit = crate::hooks::Defaults {
        env: Some(&env),
        cwd: Some(rootfs),
    };
    crate::hooks::run_with(
        spec,
        crate::hooks::Phase::CreateContainer,
        state.as_bytes(),
        &inherit,
    )
    .map_err(StageError::new)?;
    Ok(state)
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

/// While it waits for `start`, a created init dies of the signals whose
/// default is to end a process (as runc's, whose Go runtime handles them):
/// as pid 1 of its namespace with default dispositions, the kernel would
/// drop them, and `kill ID TERM` (or the pidfd a caller got) would leave it
/// created for ever. The container's execve resets the handlers.
fn die_of_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn die(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    let act = SigAction::new(SigHandler::Handler(die), SaFlags::empty(), SigSet::empty());
    let fatal = [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGXCPU,
        Signal::SIGXFSZ,
        Signal::SIGIO,
        Signal::SIGPWR,
    ];
    for sig in fatal {
        // SAFETY: the handler only calls _exit.
        let _ = unsafe { sigaction(sig, &act) };
    }
    let handler = die as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: as above; real-time signals have no nix names.
        unsafe { libc::signal(sig, handler) };
    }
}

/// Wait for `start` to connect and say go; the connection (close-on-exec)
/// stays open until execve, or carries the reason we failed. A connection
/// that closes without the go byte (a status probe, a `start` killed
/// half-way) is dropped, and we wait for the next.
fn accept_start(listener: &OwnedFd) -> Result<Channel> {
    loop {
        let fd = match nix::sys::socket::accept4(
            listener.as_raw_fd(),
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        ) {
            // SAFETY: accept4 returned a new descriptor that we own.
            Ok(fd) => unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "waiting for start on the start socket".into()),
        };
        let mut go = [0u8; 1];
        loop {
            match nix::unistd::read(&fd, &mut go) {
                Err(Errno::EINTR) => continue,
                Ok(1) if go[0] == crate::container::START_BYTE => {
                    return Ok(Channel::from_stream(fd.into()));
                }
                _ => break,
            }
        }
    }
}

/// Now that we are in the container's final namespaces, let the parent do
/// what only it may: move network devices in.
fn parent_setup(chan: &Channel, plan: &InitPlan) -> Result<()> {
    if !plan.parent_setup {
        return Ok(());
    }
    let fail = |e| StageError::new(format!("waiting for the parent's set-up: {e}"));
    chan.send(&FromInit::InNamespaces).map_err(fail)?;
    match chan.recv::<ToInit>().map_err(fail)? {
        ToInit::SetUpDone => Ok(()),
        other => Err(StageError::new(format!(
            "expected the parent's set-up, got {other:?}"
        ))),
    }
}

/// The detached source tree of `mounts[i]`, built by the parent (see
/// `FromInit::NeedMountSource`).
fn mount_source(chan: &Channel, i: usize) -> Result<OwnedFd> {
    let fail = |e| StageError::new(format!("asking the parent for the mount source: {e}"));
    chan.send(&FromInit::NeedMountSource(i)).map_err(fail)?;
    match chan.recv::<ToInit>().map_err(fail)? {
        ToInit::MountSource(Ok(())) => chan
            .recv_fds(1)
            .map_err(fail)?
            .pop()
            .ok_or_else(|| StageError::new("the parent sent no mount source")),
        ToInit::MountSource(Err(msg)) => Err(StageError::new(msg)),
        other => Err(StageError::new(format!(
            "expected a mount source, got {other:?}"
        ))),
    }
}
