//! The stages hull runs in a child: hull exec'd from its protected copy
//! (never the host binary: CVE-2019-5736) as `hull init`, with the channel
//! fd in `_HULL_INIT`. The first message says which stage: the container's
//! init (`standard`), or a process `exec` starts in a running container
//! (`setns`, runc's name for it). Every failure travels back to the parent as one `ChildError`
//! naming the root cause.

mod namespaces;
mod setns;
mod shared;
mod standard;

use std::os::fd::RawFd;

use crate::channel::{Channel, ChildError, FromInit, ToInit};
use crate::error::StageError;

/// The environment variable carrying the channel fd into the init stage.
pub const INIT_ENV: &str = "_HULL_INIT";
/// The signal mask (hex, a bit per signal) to restore first: the parent
/// blocks every signal while a child shares its memory (`sys::vfork`).
pub const SIGMASK_ENV: &str = "_HULL_SIGMASK";

/// The channel fd when this process is the init stage: exec'd with exactly
/// `init` as its argument, the variable set, and a socket at that number.
/// A `_HULL_INIT` leaked into a normal invocation's environment is ignored.
pub fn stage_fd() -> Option<RawFd> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != "init") || args.next().is_some() {
        return None;
    }
    let fd: RawFd = std::env::var_os(INIT_ENV)?.to_str()?.parse().ok()?;
    // SAFETY: fstat only fills the struct; a bad fd just fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    let ok = fd > 2 && unsafe { libc::fstat(fd, &mut st) } == 0;
    (ok && st.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(fd)
}

/// Entry point when hull was exec'd as the init stage. Never returns.
pub fn main(fd: RawFd) -> ! {
    if let Some(bits) =
        std::env::var_os(SIGMASK_ENV).and_then(|v| u64::from_str_radix(v.to_str()?, 16).ok())
    {
        crate::sys::vfork::set_mask(bits);
    }
    // SAFETY: the parent passed this socket to us and nothing else owns it.
    let chan = unsafe { Channel::from_raw(fd) };
    let (err, report_to) = match chan.recv::<ToInit>() {
        Ok(ToInit::Plan(plan)) => standard::run(&chan, *plan),
        Ok(ToInit::Exec(plan)) => (setns::run(&chan, *plan), None),
        Ok(other) => (
            StageError::new(format!("unexpected message before the plan: {other:?}")),
            None,
        ),
        Err(e) => (
            StageError::new(format!("receiving the init plan: {e}")),
            None,
        ),
    };
    let report = FromInit::Error(ChildError {
        msg: err.msg.clone(),
        errno: err.errno.map(|e| e as i32),
    });
    if report_to.as_ref().unwrap_or(&chan).send(&report).is_err() {
        // After `ready` the parent is gone: the container's stderr is the
        // only place left to say what happened.
        eprintln!("hull init: {}", err.msg);
    }
    // SAFETY: leaving without running destructors is what we want here.
    unsafe { libc::_exit(1) }
}
