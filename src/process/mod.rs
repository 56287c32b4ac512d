//! The container's process, from its identity and limits (rlimits, user,
//! groups, capabilities, no_new_privs, cwd, scheduling, LSM labels) to the
//! final execve. Shared by the container's init and by `exec`, so the two
//! can never set up a process differently.

mod cwd;
mod exec;
mod identity;
mod lsm;
mod rlimits;
pub mod tuning;

use oci_spec::runtime::{Process, Spec};

pub use exec::{Exec, cstring, exec};
pub use identity::setgroups_allowed;
pub use lsm::LsmExec;

use crate::error::{Ctx, Result, StageError};
use crate::sys;

/// What the stage passes besides the spec and the process.
pub struct Settings<'a> {
    /// fds 3.. that cross execve (LISTEN_FDS + --preserve-fds).
    pub extra_fds: u32,
    /// Environment added to process.env (LISTEN_FDS, LISTEN_PID).
    pub extra_env: &'a [String],
    /// Whether the user namespace allows setgroups(2).
    pub setgroups: bool,
    /// The seccomp agent, when the profile has SCMP_ACT_NOTIFY rules.
    pub agent: Option<crate::seccomp::notify::Agent>,
}

/// Everything up to the execve itself: after this the process is the
/// container's user with its limits, in its cwd, holding only stdio and the
/// passed fds across exec. `spec` gives the container-wide settings
/// (seccomp, personality, memory policy), `process` the process's own.
pub fn prepare(spec: &Spec, process: &Process, s: Settings) -> Result<Exec> {
    rlimits::apply(process)?;
    tuning::apply(spec, process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let mut seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(p) => Some(crate::seccomp::compile(p).map_err(StageError::new)?),
        None => None,
    };
    // From here on only stdio and the passed fds may cross execve: mark
    // everything else close-on-exec now, before a seccomp profile (which may
    // not allow close_range) is loaded. Signals likewise.
    sys::close_range(3 + s.extra_fds, u32::MAX, libc::CLOSE_RANGE_CLOEXEC)
        .ctx(|| "close_range".into())?;
    reset_signals();
    let mut agent = s.agent;
    if !nnp && let Some(filter) = seccomp.take() {
        // Without no_new_privs, loading needs CAP_SYS_ADMIN: do it while we
        // still have it.
        exec::load_seccomp(&filter, agent.take())?;
    }
    let user = process.user();
    let entered = cwd::before_user(process.cwd())?;
    identity::become_user(user, process.capabilities().as_ref(), s.setgroups)?;
    cwd::after_user(process.cwd(), entered)?;
    let mask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(s.extra_env.iter().cloned());
    let mut env = dedup_env(env);
    // An empty HOME is no HOME (runc): the user's, from the image.
    env.retain(|e| e != "HOME=");
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", exec::home_of(user.uid())));
    }
    if nnp {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())?;
    }
    exec::resolve(process, env, seccomp, agent)
}

/// One entry per name, the last one given winning, in the order of those
/// last entries (Go's os/exec, and so runc): `["A=1", "B=2", "A=3"]` is
/// `["B=2", "A=3"]`.
fn dedup_env(env: Vec<String>) -> Vec<String> {
    let name = |e: &String| e.split_once('=').map_or(e.clone(), |(n, _)| n.to_string());
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = env
        .into_iter()
        .rev()
        .filter(|e| seen.insert(name(e)))
        .collect();
    out.reverse();
    out
}

/// The container starts with default signal dispositions and an empty mask,
/// whatever hull inherited or set (Rust ignores SIGPIPE, a foreground `run`
/// blocks the signals it forwards).
fn reset_signals() {
    use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    let _ = SigSet::empty().thread_set_mask();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_of_a_name_wins() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(dedup_env(v(&["A=1", "B=2", "A=3"])), v(&["B=2", "A=3"]));
        assert_eq!(dedup_env(v(&["ONE=two", "ONE="])), v(&["ONE="]));
        assert_eq!(dedup_env(v(&["X", "X=1", "Y=="])), v(&["X=1", "Y=="]));
    }
}
