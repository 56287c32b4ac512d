//! OCI hooks (config.md, "POSIX-platform Hooks"): programs run at fixed
//! points of the lifecycle with the container's state on stdin. Where and
//! when each phase runs is the caller's business (prestart and
//! createRuntime in `create`'s parent, createContainer and startContainer
//! in the init stage, poststart in `start`, poststop in teardown); this
//! module runs one phase's list in order: `path` executed exactly as given,
//! `args` as its argv, `env` as its whole environment (none of hull's), the
//! state JSON on stdin, stdout and stderr kept for the error, `timeout`
//! enforced with SIGKILL. No threads: one poll(2) loop per hook.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::{Hook, Hooks, Spec};
use serde::Serialize;

use crate::sys;

/// The lifecycle points, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Prestart,
        Phase::CreateRuntime,
        Phase::CreateContainer,
        Phase::StartContainer,
        Phase::Poststart,
        Phase::Poststop,
    ];

    /// The spec's name ("createRuntime"), for messages and `features`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    fn of(self, h: &Hooks) -> &[Hook] {
        let list = match self {
            Phase::Prestart => h.prestart(),
            Phase::CreateRuntime => h.create_runtime(),
            Phase::CreateContainer => h.create_container(),
            Phase::StartContainer => h.start_container(),
            Phase::Poststart => h.poststart(),
            Phase::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// The hooks of `phase` in `spec` (none when unset).
pub fn of(spec: &Spec, phase: Phase) -> &[Hook] {
    spec.hooks().as_ref().map_or(&[], |h| phase.of(h))
}

/// Whether any hook runs between create's start and the container's exec.
pub fn any_before_exec(spec: &Spec) -> bool {
    [
        Phase::Prestart,
        Phase::CreateRuntime,
        Phase::CreateContainer,
        Phase::StartContainer,
    ]
    .iter()
    .any(|p| !of(spec, *p).is_empty())
}

/// Config checks, before anything exists: absolute paths, positive
/// timeouts, no NUL bytes.
pub fn validate(spec: &Spec) -> Result<(), String> {
    for phase in Phase::ALL {
        for (i, h) in of(spec, phase).iter().enumerate() {
            let at = format!("hooks.{}[{i}]", phase.name());
            if !h.path().is_absolute() {
                return Err(format!("{at}.path {:?} must be an absolute path", h.path()));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(format!("{at}.timeout must be greater than zero"));
            }
            let strings = h.args().iter().flatten().chain(h.env().iter().flatten());
            if strings
                .chain([&h.path().to_string_lossy().into_owned()])
                .any(|s| s.contains('\0'))
            {
                return Err(format!("{at} contains a NUL byte"));
            }
        }
    }
    Ok(())
}

/// The state hooks get on stdin: runtime-spec's state, nothing more.
#[derive(Serialize)]
pub struct State<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::BTreeMap<String, String>>,
}

/// What a hook that does not say runs with, as runc's (Go's exec.Cmd): a
/// hook without `env` gets the environment of whoever runs it (hull's for
/// the runtime's hooks, the container process's for those the init runs),
/// and createContainer hooks run in the rootfs (NVIDIA-style hooks write
/// `./lib/...`).
#[derive(Default)]
pub struct Defaults<'a> {
    /// None: hull's own environment.
    pub env: Option<&'a [String]>,
    pub cwd: Option<&'a std::path::Path>,
}

/// Run the hooks of `phase`, in order, with `state` (JSON) on stdin; the
/// first failure stops the list.
pub fn run(spec: &Spec, phase: Phase, state: &[u8]) -> Result<(), String> {
    run_with(spec, phase, state, &Defaults::default())
}

/// `run`, with what the hooks inherit when they do not say.
pub fn run_with(spec: &Spec, phase: Phase, state: &[u8], d: &Defaults) -> Result<(), String> {
    let _pipe = IgnoreSigpipe::new();
    for (i, h) in of(spec, phase).iter().enumerate() {
        run_one(h, state, d)
            .map_err(|e| format!("error running {} hook #{i}: {e}", phase.name()))?;
    }
    Ok(())
}

/// Run a list whose failures are only warned about (poststop).
pub fn run_warning(spec: &Spec, phase: Phase, state: &[u8]) {
    let _pipe = IgnoreSigpipe::new();
    for (i, h) in of(spec, phase).iter().enumerate() {
        if let Err(e) = run_one(h, state, &Defaults::default()) {
            crate::warn!("error running {} hook #{i}: {e}", phase.name());
        }
    }
}

/// A hook may close its stdin before reading the state: the write must
/// fail with EPIPE, not kill us (the init stage has default signals by
/// then). The disposition is restored on drop.
struct IgnoreSigpipe(Option<nix::sys::signal::SigAction>);

impl IgnoreSigpipe {
    fn new() -> IgnoreSigpipe {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_IGN installs no handler code.
        IgnoreSigpipe(unsafe { sigaction(Signal::SIGPIPE, &ignore) }.ok())
    }
}

impl Drop for IgnoreSigpipe {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: restores the disposition saved in `new`.
            let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGPIPE, old) };
        }
    }
}

/// What a hook printed is kept up to this much, for the error message.
const KEEP: usize = 8192;

fn cstrings<'a>(v: impl IntoIterator<Item = &'a String>) -> Result<Vec<CString>, String> {
    v.into_iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("NUL byte in {s:?}")))
        .collect()
}

fn run_one(h: &Hook, state: &[u8], d: &Defaults) -> Result<(), String> {
    let path = CString::new(h.path().as_os_str().as_encoded_bytes())
        .map_err(|_| "NUL byte in the path".to_string())?;
    let path_str = h.path().to_string_lossy().into_owned();
    let args = match h.args().as_deref() {
        Some(a) if !a.is_empty() => cstrings(a)?,
        _ => cstrings([&path_str])?,
    };
    let argv = sys::CArray::new(args);
    let envp = match (h.env(), d.env) {
        (Some(env), _) => cstrings(env)?,
        (None, Some(env)) => cstrings(env)?,
        (None, None) => std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend(v.into_encoded_bytes());
                CString::new(kv).ok()
            })
            .collect(),
    };
    let envp = sys::CArray::new(envp);
    let cwd = match d.cwd {
        Some(p) => Some(
            CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|_| "NUL byte in the working directory".to_string())?,
        ),
        None => None,
    };
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // fork(2), not clone3: startContainer hooks may run under a seccomp
    // profile that refuses clone3 (Docker's and containerd's do).
    let pid = match sys::fork().map_err(|e| format!("fork: {e}"))? {
        None => {
            let fds = [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
            exec_child(&fds, cwd.as_deref(), &path, &argv, &envp)
        }
        Some(pid) => pid,
    };
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = reap(pid);
            return Err(format!("pidfd_open of the hook: {e}"));
        }
    };
    drop((in_r, out_w, err_w));
    let timeout = h.timeout().map(|t| Duration::from_secs(t as u64));
    let outcome = supervise(&pidfd, in_w, &out_r, &err_r, state, timeout);
    let status = reap(pid);
    match outcome {
        Supervised::TimedOut => Err(format!(
            "hook ran past specified timeout of {:.1}s",
            timeout.unwrap_or_default().as_secs_f64()
        )),
        Supervised::Exited { out, err } => match status {
            Some(0) => Ok(()),
            Some(code) => Err(format!(
                "{}, stdout: {}, stderr: {}",
                describe(code),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            )),
            None => Err("waiting for the hook failed".into()),
        },
    }
}

/// In the forked child: pipes to stdio, default signals, nothing else
/// open, then execve. Only async-signal-safe calls.
fn exec_child(
    fds: &[i32; 3],
    cwd: Option<&std::ffi::CStr>,
    path: &CString,
    argv: &sys::CArray,
    envp: &sys::CArray,
) -> ! {
    for (target, fd) in fds.iter().enumerate() {
        // SAFETY: dup2 onto stdio of this forked child; when the pipe end
        // already has that number (hull started with it closed), dup2 does
        // nothing, so its close-on-exec flag is cleared instead.
        let ok = unsafe {
            if *fd == target as i32 {
                libc::fcntl(*fd, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(*fd, target as i32) >= 0
            }
        };
        if !ok {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(127) }
        }
    }
    // SAFETY: an empty mask and default dispositions, set with plain
    // syscalls; close_range closes what the hook must not inherit.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        if let Some(dir) = cwd
            && libc::chdir(dir.as_ptr()) != 0
        {
            libc::_exit(127);
        }
    }
    let _ = sys::execve_prepared(path, argv, envp);
    // SAFETY: as above; 127 is what a shell says for "could not exec".
    unsafe { libc::_exit(127) }
}

enum Supervised {
    Exited { out: Vec<u8>, err: Vec<u8> },
    TimedOut,
}

/// How long to poll before `deadline`; None once it has passed.
fn time_left(deadline: Option<Instant>) -> Option<PollTimeout> {
    let Some(d) = deadline else {
        return Some(PollTimeout::NONE);
    };
    let left = d.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    // Rounded up, so the hook is not polled again just before.
    let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128);
    Some(PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX))
}

/// Feed stdin, collect stdout and stderr, until the hook exits or runs out
/// of time (then it is killed).
fn supervise(
    pidfd: &OwnedFd,
    stdin: OwnedFd,
    out_r: &OwnedFd,
    err_r: &OwnedFd,
    state: &[u8],
    timeout: Option<Duration>,
) -> Supervised {
    // A timeout past what the clock can hold (a config may say i64::MAX
    // seconds) is no deadline at all.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut stdin = Some(stdin);
    let mut written = 0;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut open = [true, true];
    // Our ends only: the hook's ends stay blocking, as any program expects.
    set_nonblocking(stdin.as_ref());
    set_nonblocking(Some(out_r));
    set_nonblocking(Some(err_r));
    loop {
        if written == state.len() {
            stdin = None; // EOF for the hook
        }
        let readers = [out_r, err_r];
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        for (i, r) in readers.iter().enumerate() {
            if open[i] {
                fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
            }
        }
        if let Some(w) = &stdin {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
        }
        let Some(wait) = time_left(deadline) else {
            let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
            return Supervised::TimedOut;
        };
        match poll(&mut fds, wait) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return Supervised::Exited { out, err },
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let exited = ready(&fds[0]);
        let mut k = 1;
        for (i, (r, buf)) in [(out_r, &mut out), (err_r, &mut err)]
            .into_iter()
            .enumerate()
        {
            if open[i] {
                if ready(&fds[k]) && !drain(r, buf) {
                    open[i] = false;
                }
                k += 1;
            }
        }
        if let Some(w) = &stdin
            && ready(&fds[k])
        {
            match nix::unistd::write(w, &state[written..]) {
                Ok(n) => written += n,
                // The hook does not read stdin (EPIPE): that is its right.
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => written = state.len(),
            }
        }
        if exited {
            // Whatever is left in the pipes (a grandchild may hold them
            // open: take what is there now, do not wait for it).
            drain(out_r, &mut out);
            drain(err_r, &mut err);
            return Supervised::Exited { out, err };
        }
    }
}

/// Read what is available; false on EOF.
fn drain(fd: &OwnedFd, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                let room = KEEP.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn set_nonblocking(fd: Option<&OwnedFd>) {
    if let Some(fd) = fd {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
}

/// The hook's wait status as a code: exit status, or 128 + signal.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => return Some(c),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => return Some(128 + s as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Go's exec.ExitError wording, which runc's messages carry.
fn describe(code: i32) -> String {
    if code > 128 {
        match nix::sys::signal::Signal::try_from(code - 128) {
            Ok(s) => format!("signal: {}", signal_name(s)),
            Err(_) => format!("exit status {code}"),
        }
    } else {
        format!("exit status {code}")
    }
}

fn signal_name(s: nix::sys::signal::Signal) -> &'static str {
    use nix::sys::signal::Signal::*;
    match s {
        SIGKILL => "killed",
        SIGTERM => "terminated",
        SIGSEGV => "segmentation fault",
        SIGABRT => "aborted",
        SIGINT => "interrupt",
        SIGHUP => "hangup",
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(hooks: serde_json::Value) -> Spec {
        let mut v = crate::spec::default_spec(false);
        v["hooks"] = hooks;
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn runs_in_order_with_state_args_and_env() {
        let dir = std::env::temp_dir().join(format!("hull-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let script = format!(
            "echo \"$0 $1 ${{X:-unset}} ${{HOME:-nohome}} $(cat)\" >> {}",
            log.display()
        );
        let s = spec(serde_json::json!({"poststart": [
            {"path": "/bin/sh", "args": ["sh", "-c", script.clone(), "first", "a1"], "env": ["X=1"]},
            {"path": "/bin/sh", "args": ["sh", "-c", script.clone(), "second", "a2"], "env": []},
            {"path": "/bin/sh", "args": ["sh", "-c", script, "third", "a3"]}
        ]}));
        run(&s, Phase::Poststart, br#"{"id":"c"}"#).unwrap();
        // No `env` at all: the runner's own environment (Go's exec.Cmd).
        let home = std::env::var("HOME").unwrap_or_else(|_| "nohome".into());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!(
                "first a1 1 nohome {{\"id\":\"c\"}}\nsecond a2 unset nohome {{\"id\":\"c\"}}\n\
                 third a3 unset {home} {{\"id\":\"c\"}}\n"
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_says_which_hook_and_what_it_printed() {
        let s = spec(serde_json::json!({"prestart": [
            {"path": "/bin/true"},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
        ]}));
        let e = run(&s, Phase::Prestart, b"{}").unwrap_err();
        assert_eq!(
            e,
            "error running prestart hook #1: exit status 3, stdout: out\n, stderr: err\n"
        );
        let s = spec(serde_json::json!({"prestart": [{"path": "/nonexistent/hook"}]}));
        assert!(
            run(&s, Phase::Prestart, b"{}")
                .unwrap_err()
                .contains("exit status 127")
        );
    }

    #[test]
    fn timeout_kills_the_hook() {
        let s = spec(serde_json::json!({"createRuntime": [
            {"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}
        ]}));
        let t = Instant::now();
        let e = run(&s, Phase::CreateRuntime, b"{}").unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(e.contains("hook ran past specified timeout of 1.0s"), "{e}");
    }

    #[test]
    fn a_timeout_past_the_clock_is_no_deadline() {
        let s = spec(serde_json::json!({"createRuntime": [
            {"path": "/bin/true", "timeout": i64::MAX}
        ]}));
        assert_eq!(run(&s, Phase::CreateRuntime, b"{}"), Ok(()));
    }

    #[test]
    fn big_state_and_a_hook_that_ignores_stdin() {
        let big = vec![b'x'; 1 << 20];
        let s = spec(serde_json::json!({"poststop": [{"path": "/bin/true"}]}));
        run(&s, Phase::Poststop, &big).unwrap();
        let s = spec(serde_json::json!({"poststop": [
            {"path": "/bin/sh", "args": ["sh", "-c", "wc -c"]}
        ]}));
        run(&s, Phase::Poststop, &big).unwrap();
    }

    #[test]
    fn bad_hooks_are_refused_up_front() {
        for (h, want) in [
            (
                serde_json::json!({"prestart": [{"path": "rel/hook"}]}),
                "absolute",
            ),
            (
                serde_json::json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}),
                "greater than zero",
            ),
        ] {
            assert!(validate(&spec(h)).unwrap_err().contains(want));
        }
        validate(&spec(serde_json::json!({}))).unwrap();
        validate(&spec(serde_json::json!({"prestart": []}))).unwrap();
    }
}
