//! Starting a stage in a child: clone3 straight into the new namespaces
//! (and into the cgroup v2 directory, so it never runs outside its limits),
//! then, in the child, nothing but async-signal-safe syscalls until it
//! execs hull's protected copy as `hull init`. Everything the child needs
//! (argv, envp, the error report) is built before the clone.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};

use crate::channel::Channel;
use crate::sys;

/// What the child needs, all prepared in the parent.
pub struct Child<'a> {
    /// hull's protected copy, opened for execveat.
    pub exe: RawFd,
    /// fds that must survive exec besides 3..3+extra_fds.
    pub keep: Vec<RawFd>,
    pub extra_fds: u32,
    /// The child's end of the channel (its fd is in `_HULL_INIT`).
    pub chan: &'a Channel,
    /// The parent's end, closed in the child at once: then a dead parent
    /// shows as end-of-file on the channel.
    pub parent_end: RawFd,
    /// Wait for the parent's "maps written" byte, then become root of the
    /// new user namespace, before exec (which computes capabilities).
    pub wait_for_maps: bool,
    /// The cgroup the child goes into is frozen (exec into a paused
    /// container): the child stops there before its exec, so the parent
    /// must not be suspended until then, as vfork would leave it (only
    /// SIGKILL would end hull).
    pub into_frozen: bool,
    /// cgroup v1 `tasks` files, opened by the parent, that the child writes
    /// "0" to first of all (see `CgroupJoin`).
    pub join: &'a [CgroupJoin],
}

/// A cgroup v1 hierarchy the child moves itself into. Moving another
/// process by pid takes the kernel's global threadgroup lock for writing,
/// which waits for an RCU grace period (5-15 ms here, per hierarchy burst);
/// a single-threaded task moving itself ("0" into `tasks`) skips it. The
/// kernel checks the credentials of whoever opened the file (ours), so
/// this works from a new user namespace too.
pub struct CgroupJoin {
    pub tasks: OwnedFd,
    /// "joining cgroup DIR", JSON-escaped, for the error report.
    pub what: Vec<u8>,
}

/// The joins for the hierarchies of `cg`, their fds at `min_fd` or above
/// (below are the caller's preserved fds).
pub fn cgroup_joins(
    cg: &(impl crate::cgroups::Manager + ?Sized),
    min_fd: RawFd,
) -> Result<Vec<CgroupJoin>> {
    let files = cg
        .self_join_files()
        .context("opening the cgroup's tasks file")?;
    files
        .into_iter()
        .map(|(fd, dir)| Ok(CgroupJoin::new(crate::channel::raise(fd, min_fd)?, &dir)))
        .collect()
}

impl CgroupJoin {
    pub fn new(tasks: OwnedFd, dir: &std::path::Path) -> CgroupJoin {
        let mut text = format!("joining cgroup {}", dir.display());
        if text.len() > 400 {
            let mut cut = 400;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let quoted = serde_json::to_string(&text).unwrap_or_default();
        let what = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or("joining cgroup")
            .as_bytes()
            .to_vec();
        CgroupJoin { tasks, what }
    }
}

/// Clone the child with `flags`, into `cgroup` when given. Returns its pid
/// and a pidfd in the parent; the child never returns.
pub fn spawn(child: &Child, flags: u64, cgroup: Option<RawFd>) -> Result<(i32, OwnedFd)> {
    let argv = sys::CArray::new(vec![c"hull".to_owned(), c"init".to_owned()]);
    // In a new pid namespace our parent is outside it: getppid says 0
    // whether it lives or not.
    let parent = (flags & libc::CLONE_NEWPID as u64 == 0).then_some(std::process::id() as i32);
    if !child.wait_for_maps && !child.into_frozen {
        // The child borrows our memory until it execs (no page tables
        // copied, no copy-on-write faults after). Not when it must wait for
        // the user namespace's maps: we write them, and we are suspended.
        let blocked = sys::vfork::AllBlocked::new().context("blocking signals")?;
        let envp = environment(child, Some(blocked.before()))?;
        let start = Start {
            child,
            parent,
            argv: &argv,
            envp: &envp,
        };
        let arg = &start as *const Start as *const libc::c_void;
        // SAFETY: `child_main` only runs `run_child`, which makes
        // async-signal-safe calls, writes nothing but its stack and errno,
        // and ends in execveat or _exit; `start` lives until the call
        // returns (after the child left our memory); signals are blocked.
        match unsafe { sys::vfork::clone_vfork(flags, cgroup, child_main, arg) } {
            Err(nix::errno::Errno::ENOSYS) => {}
            r => return r.context("clone"),
        }
    }
    let envp = environment(child, None)?;
    match sys::clone3(flags, cgroup).context("clone")? {
        sys::Forked::Child => run_child(child, parent, &argv, &envp),
        sys::Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
    }
}

/// The init stage's environment: the channel's fd, and the signal mask to
/// go back to when the clone blocked every signal.
fn environment(child: &Child, mask: Option<u64>) -> Result<sys::CArray> {
    let mut env = vec![CString::new(format!(
        "{}={}",
        crate::init::INIT_ENV,
        child.chan.as_raw_fd()
    ))?];
    if let Some(bits) = mask {
        env.push(CString::new(format!(
            "{}={bits:x}",
            crate::init::SIGMASK_ENV
        ))?);
    }
    Ok(sys::CArray::new(env))
}

/// What `child_main` gets, on the (suspended) parent's stack.
struct Start<'a> {
    child: &'a Child<'a>,
    parent: Option<libc::pid_t>,
    argv: &'a sys::CArray,
    envp: &'a sys::CArray,
}

extern "C" fn child_main(arg: *const libc::c_void) -> ! {
    // SAFETY: `arg` is the `Start` that `spawn` keeps alive until the child
    // has exec'd or exited; it is only read.
    let s = unsafe { &*(arg as *const Start) };
    run_child(s.child, s.parent, s.argv, s.envp)
}

fn run_child(
    child: &Child,
    parent: Option<libc::pid_t>,
    argv: &sys::CArray,
    envp: &sys::CArray,
) -> ! {
    // Into our cgroups before anything else runs in this process.
    for j in child.join {
        // SAFETY: write is async-signal-safe; the buffer is a static byte.
        if unsafe { libc::write(j.tasks.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
            report_failure(child.chan, &j.what, nix::errno::Errno::last_raw());
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(1) }
        }
    }
    // SAFETY: close is async-signal-safe; the fd is our copy of the
    // parent's end, which nothing in this process uses.
    unsafe { libc::close(child.parent_end) };
    // If `hull create` dies before the init is ready, the init dies too;
    // if it died before we got here, leave now (in a new pid namespace the
    // channel tells instead: the stage's first read sees end-of-file).
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    // SAFETY: getppid has no preconditions.
    if parent.is_some_and(|p| unsafe { libc::getppid() } != p) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(1) }
    }
    // In a new user namespace, execve computes our capabilities from our
    // uid there: exec before the parent wrote the maps and we would lose
    // them all. Wait for its "mapped" byte.
    if child.wait_for_maps {
        let mut b = [0u8; 1];
        if !matches!(nix::unistd::read(child.chan, &mut b), Ok(1)) {
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
        // Become the namespace's root, or exec would drop our capabilities.
        let root = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
        let _ = nix::unistd::setresgid(root.0, root.0, root.0);
        let _ = nix::unistd::setresuid(root.1, root.1, root.1);
    }
    // Whatever else the caller left open without FD_CLOEXEC must not live
    // on in the init stage (a created container would hold the caller's
    // pipes open): only the passed fds and ours survive the exec.
    // close_range is a plain syscall; without CLOSE_RANGE_CLOEXEC (kernel
    // < 5.11) the container's exec still closes them.
    let _ = sys::close_range(3 + child.extra_fds, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    let mut ok = child.keep.iter().all(|fd| sys::clear_cloexec(*fd).is_ok());
    for fd in 3..3 + child.extra_fds as RawFd {
        ok &= sys::clear_cloexec(fd).is_ok();
    }
    let err = if ok {
        sys::fexecve_prepared(child.exe, argv, envp)
    } else {
        nix::errno::Errno::EBADF
    };
    report_failure(child.chan, b"executing the init stage", err as i32);
    // SAFETY: _exit skips the parent image's atexit handlers.
    unsafe { libc::_exit(1) }
}

/// Send `FromInit::Error` "WHAT: strerror" for a failure in the child,
/// formatted on the stack: the channel's framing (u32 length, JSON)
/// without allocating. `what` is JSON-escaped already; the descriptions
/// are static strings without characters JSON would escape.
fn report_failure(chan: &Channel, what: &[u8], errno: i32) {
    let mut body = [0u8; 600];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        let end = (n + bytes.len()).min(body.len());
        body[n..end].copy_from_slice(&bytes[..end - n]);
        n = end;
    };
    let mut digits = [0u8; 12];
    let num = decimal(errno, &mut digits);
    put(br#"{"Error":{"msg":""#);
    put(&what[..what.len().min(440)]);
    put(b": ");
    put(nix::errno::Errno::from_raw(errno).desc().as_bytes());
    put(br#"","errno":"#);
    put(num);
    put(b"}}");
    let mut frame = [0u8; 604];
    frame[..4].copy_from_slice(&(n as u32).to_le_bytes());
    frame[4..4 + n].copy_from_slice(&body[..n]);
    let _ = nix::unistd::write(chan, &frame[..4 + n]);
}

/// `v` in decimal, written into `buf`.
fn decimal(v: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::FromInit;

    #[test]
    fn exec_failure_report_is_a_channel_message() {
        let (a, b) = Channel::pair(3).unwrap();
        report_failure(&a, b"executing the init stage", 13);
        match b.recv::<FromInit>().unwrap() {
            FromInit::Error(e) => {
                assert_eq!(e.errno, Some(13));
                assert_eq!(e.msg, "executing the init stage: Permission denied");
            }
            other => panic!("{other:?}"),
        }
        let dir = std::path::Path::new("/sys/fs/cgroup/cpu/a\"b");
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let join = CgroupJoin::new(devnull.into(), dir);
        report_failure(&a, &join.what, libc::ENOSPC);
        match b.recv::<FromInit>().unwrap() {
            FromInit::Error(e) => assert_eq!(
                e.msg,
                "joining cgroup /sys/fs/cgroup/cpu/a\"b: No space left on device"
            ),
            other => panic!("{other:?}"),
        }
        let mut buf = [0u8; 12];
        assert_eq!(decimal(-2147483648, &mut buf), b"-2147483648");
        assert_eq!(decimal(0, &mut buf), b"0");
    }
}
