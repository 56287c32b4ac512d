//! The container process's identity and limits (rlimits, user, groups,
//! capabilities, no_new_privs, cwd) and the final execve.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use caps::{CapSet, CapsHashSet};
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process, Spec};

use super::{Ctx, InitError, Never, Result};
use crate::launch::InitPlan;
use crate::sys;

/// What execve needs, resolved before `start` so a missing program fails
/// `create` with a clear message instead of failing later in the dark.
pub struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// A filter to load right before execve (no_new_privs is set).
    seccomp: Option<libseccomp::ScmpFilterContext>,
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| InitError::new(format!("{what} contains a NUL byte: {s:?}")))
}

pub fn join_keyring(id: &str) -> Result<()> {
    let name = cstring(&format!("_ses.{id}"), "keyring name")?;
    match sys::join_session_keyring(&name) {
        // Keyrings disabled, or not permitted in this user namespace.
        Ok(_) | Err(Errno::ENOSYS) | Err(Errno::EPERM) | Err(Errno::EACCES)
        | Err(Errno::EDQUOT) => Ok(()),
        Err(e) => Err(e).ctx(|| "joining a new session keyring".into()),
    }
}

pub fn prepare(spec: &Spec, process: &Process, plan: &InitPlan) -> Result<Exec> {
    apply_rlimits(process)?;
    super::tuning::apply(spec, process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let mut seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::compile(s).map_err(InitError::new)?),
        None => None,
    };
    // From here on only stdio and the passed fds may cross execve: mark
    // everything else close-on-exec now, before a seccomp profile (which may
    // not allow close_range) is loaded. Signals likewise.
    sys::close_range(3 + plan.extra_fds, u32::MAX, libc::CLOSE_RANGE_CLOEXEC)
        .ctx(|| "close_range".into())?;
    reset_signals();
    if !nnp && let Some(filter) = seccomp.take() {
        // Without no_new_privs, loading needs CAP_SYS_ADMIN: do it while we
        // still have it.
        crate::seccomp::load(&filter).map_err(InitError::new)?;
    }

    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(plan.extra_env.iter().cloned());
    let user = process.user();
    let caps = process.capabilities().as_ref();
    // What we hold before the bounding set is narrowed: the rest cannot be
    // granted and is left out (see unavailable_caps). In a user namespace
    // made after exec the permitted set is full, so the bounding set counts.
    let held: CapsHashSet = if caps.is_some() {
        caps::read(None, CapSet::Permitted)
            .unwrap_or_default()
            .intersection(&caps::read(None, CapSet::Bounding).unwrap_or_default())
            .copied()
            .collect()
    } else {
        CapsHashSet::new()
    };
    if let Some(c) = caps {
        drop_bounding(c.bounding())?;
        sys::prctl(libc::PR_SET_KEEPCAPS, 1).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    }
    let mut groups: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|g| (*g).into())
        .collect();
    groups.dedup();
    let in_userns = crate::namespaces::has(spec, oci_spec::runtime::LinuxNamespaceType::User);
    if !(in_userns && setgroups_denied()) {
        nix::unistd::setgroups(&groups).ctx(|| "setgroups".into())?;
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setresgid({gid})"))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setresuid({uid})"))?;
    if let Some(c) = caps {
        sys::prctl(libc::PR_SET_KEEPCAPS, 0).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
        apply_caps(c, &held)?;
    }

    let cwd = process.cwd();
    nix::unistd::chdir(cwd)
        .ctx(|| format!("chdir to cwd ({:?}) set in config.json", cwd.display()))?;
    // CVE-2024-21626: a cwd that resolved through a leaked host fd would sit
    // outside our root; the kernel then reports it as "(unreachable)".
    let inside = match nix::unistd::getcwd() {
        Ok(p) => p.is_absolute(),
        // A seccomp profile already loaded (noNewPrivileges false) may deny
        // getcwd itself: climb ".." instead.
        Err(Errno::EPERM | Errno::EACCES | Errno::ENOSYS) => cwd_reaches_root(),
        Err(_) => false,
    };
    if !inside {
        return Err(InitError::new(format!(
            "current working directory {} is outside of the container root",
            cwd.display()
        )));
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    } else {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    }

    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(user.uid())));
    }
    if nnp {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())?;
    }

    let args = process.args().as_deref().unwrap_or(&[]);
    let arg0 = args
        .first()
        .ok_or_else(|| InitError::new("args must not be empty"))?;
    let path = look_path(arg0, &env)?;
    Ok(Exec {
        path: cstring(path.to_str().unwrap_or(arg0), "args[0]")?,
        args: args
            .iter()
            .map(|a| cstring(a, "args"))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|e| cstring(e, "env"))
            .collect::<Result<_>>()?,
        seccomp,
    })
}

pub fn exec(exec: Exec) -> Result<Never> {
    if let Some(filter) = &exec.seccomp {
        // The last thing before execve: a strict profile need allow nothing
        // but execve itself.
        crate::seccomp::load(filter).map_err(InitError::new)?;
    }
    let args: Vec<&std::ffi::CStr> = exec.args.iter().map(|a| a.as_c_str()).collect();
    let env: Vec<&std::ffi::CStr> = exec.env.iter().map(|a| a.as_c_str()).collect();
    let err = sys::execve(&exec.path, &args, &env);
    Err(InitError {
        msg: format!("exec {:?}: {}", exec.path, err.desc()),
        errno: Some(err),
    })
}

/// Resolve args[0] as execvp would, with the container's PATH, and check
/// that it is an executable regular file.
fn look_path(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> std::result::Result<(), Errno> {
        let md = std::fs::metadata(p)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
        if md.is_dir() {
            return Err(Errno::EACCES);
        }
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK)
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) => Err(InitError {
                msg: format!("exec: {arg0:?}: {}", e.desc()),
                errno: Some(e),
            }),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        match check(&p) {
            Ok(()) => return Ok(p),
            Err(Errno::EACCES) => denied = Some(p),
            Err(_) => {}
        }
    }
    match denied {
        Some(p) => Err(InitError {
            msg: format!("exec: {:?}: permission denied", p.display().to_string()),
            errno: Some(Errno::EACCES),
        }),
        None => Err(InitError {
            msg: format!("exec: {arg0:?}: executable file not found in $PATH"),
            errno: Some(Errno::ENOENT),
        }),
    }
}

/// HOME for `uid` from the container's /etc/passwd, "/" otherwise.
fn home_of(uid: u32) -> String {
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return "/".into();
    };
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into())
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn apply_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or(&[]) {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } < 0 {
            let e = Errno::last();
            return Err(InitError {
                msg: format!(
                    "setting rlimit type {}: {}",
                    serde_json::to_string(&r.typ())
                        .unwrap_or_default()
                        .trim_matches('"'),
                    e.desc()
                ),
                errno: Some(e),
            });
        }
    }
    Ok(())
}

/// Whether climbing ".." from the cwd meets our root. The kernel stops ".."
/// at the root, so a cwd inside it gets there; a directory reached through
/// a leaked host fd climbs to the top of its own tree (where ".." is itself)
/// without ever passing our root. Directories are told apart by mount and
/// inode, so the rootfs directory seen through another mount is not "root".
fn cwd_reaches_root() -> bool {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, fstat};
    use std::os::fd::{AsRawFd, OwnedFd};
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let id = |fd: &OwnedFd| -> Option<(u64, u64, u64)> {
        let st = fstat(fd).ok()?;
        Some((sys::mount_id(fd.as_raw_fd()).ok()?, st.st_dev, st.st_ino))
    };
    let Some(root) = open("/", flags, Mode::empty()).ok().as_ref().and_then(id) else {
        return false;
    };
    let Ok(mut dir) = open(".", flags, Mode::empty()) else {
        return false;
    };
    // PATH_MAX bounds the depth of any directory we could chdir into.
    for _ in 0..libc::PATH_MAX {
        let Some(here) = id(&dir) else { return false };
        if here == root {
            return true;
        }
        let Ok(up) = openat(&dir, "..", flags, Mode::empty()) else {
            return false;
        };
        match id(&up) {
            Some(parent) if parent == here => return false,
            Some(_) => dir = up,
            None => return false,
        }
    }
    false
}

fn to_caps(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<caps::Capability>().ok())
        .collect()
}

fn drop_bounding(bounding: &Option<Capabilities>) -> Result<()> {
    let keep = to_caps(bounding);
    let supported = caps::runtime::thread_all_supported();
    for cap in supported {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                InitError::new(format!("dropping {cap} from the bounding set: {e}"))
            })?;
        }
    }
    Ok(())
}

/// Requested capabilities hull cannot grant (not in its bounding set: the
/// host withholds them). runtime-spec 1.3, like runc, says to leave them
/// out with a warning rather than fail; the parent warns, once.
pub fn unavailable_caps(c: &oci_spec::runtime::LinuxCapabilities) -> Vec<String> {
    let held = caps::read(None, CapSet::Bounding).unwrap_or_default();
    let mut missing: Vec<String> = [
        c.bounding(),
        c.effective(),
        c.inheritable(),
        c.permitted(),
        c.ambient(),
    ]
    .into_iter()
    .flat_map(to_caps)
    .filter(|cap| !held.contains(cap))
    .map(|cap| cap.to_string())
    .collect();
    missing.sort();
    missing.dedup();
    missing
}

fn apply_caps(c: &oci_spec::runtime::LinuxCapabilities, held: &CapsHashSet) -> Result<()> {
    let set = |which: CapSet, caps: CapsHashSet| {
        let caps: CapsHashSet = caps.intersection(held).copied().collect();
        caps::set(None, which, &caps)
            .map_err(|e| InitError::new(format!("setting {which:?} capabilities: {e}")))
    };
    // Effective must stay a subset of permitted at every step.
    set(CapSet::Effective, to_caps(c.effective()))?;
    set(CapSet::Inheritable, to_caps(c.inheritable()))?;
    set(CapSet::Permitted, to_caps(c.permitted()))?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| InitError::new(format!("clearing ambient capabilities: {e}")))?;
    for cap in to_caps(c.ambient()) {
        // An ambient cap needs to be permitted and inheritable; runc skips
        // (with a warning) the ones that are not.
        let _ = caps::raise(None, CapSet::Ambient, cap);
    }
    Ok(())
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
    /// In a child (the test harness is multi-threaded: only syscalls, no
    /// allocation, between fork and _exit): chroot into `root` with the cwd
    /// at `cwd`, and report what cwd_reaches_root says.
    /// With `alias`, the cwd is `root` itself seen through a bind mount at
    /// `alias` (in a private mount namespace of the child).
    fn reaches_root_after_chroot(root: &std::ffi::CStr, cwd: &std::ffi::CStr, alias: bool) -> bool {
        // SAFETY: the child only makes syscalls and leaves with _exit.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: plain syscalls on NUL-terminated paths.
                let ok = unsafe {
                    let none = std::ptr::null();
                    (!alias
                        || (libc::unshare(libc::CLONE_NEWNS) == 0
                            && libc::mount(
                                none,
                                c"/".as_ptr(),
                                none,
                                libc::MS_REC | libc::MS_PRIVATE,
                                none.cast(),
                            ) == 0
                            && libc::mount(
                                root.as_ptr(),
                                cwd.as_ptr(),
                                none,
                                libc::MS_BIND,
                                none.cast(),
                            ) == 0))
                        && libc::chdir(cwd.as_ptr()) == 0
                        && libc::chroot(root.as_ptr()) == 0
                };
                let code = if !ok {
                    2
                } else if super::cwd_reaches_root() {
                    0
                } else {
                    1
                };
                // SAFETY: leaving the forked child without unwinding.
                unsafe { libc::_exit(code) }
            }
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 2);
                libc::WEXITSTATUS(status) == 0
            }
            _ => panic!("fork failed"),
        }
    }

    #[test]
    fn cwd_outside_the_root_does_not_reach_it() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chroot needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("hull-cwd-{}", std::process::id()));
        std::fs::create_dir_all(base.join("root/inside/deep")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::create_dir_all(base.join("alias")).unwrap();
        let c = |p: std::path::PathBuf| {
            std::ffi::CString::new(p.into_os_string().into_encoded_bytes()).unwrap()
        };
        let root = c(base.join("root"));
        assert!(reaches_root_after_chroot(
            &root,
            &c(base.join("root/inside/deep")),
            false
        ));
        assert!(!reaches_root_after_chroot(
            &root,
            &c(base.join("outside")),
            false
        ));
        // The rootfs directory itself, through another mount: same inode,
        // but not our root.
        assert!(!reaches_root_after_chroot(
            &root,
            &c(base.join("alias")),
            true
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
