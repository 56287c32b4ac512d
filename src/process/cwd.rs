//! process.cwd: entered, and checked to be inside the container's root.
//! CVE-2024-21626: a cwd that resolves through a file descriptor leaked from
//! the host (/proc/self/fd/N) would put the container's process in a host
//! directory; the kernel then shows it as "(unreachable)".

use std::path::Path;

use nix::errno::Errno;

use crate::error::{Ctx, Result, StageError};
use crate::sys;

fn chdir(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).ctx(|| format!("chdir to cwd ({:?}) set in config.json", cwd.display()))
}

/// Before the user changes, as runc: a cwd only root can reach still
/// works. Ok(false) when that was refused (EACCES, EPERM): the container's
/// user may reach it (a volume chowned to it), so `after_user` tries again.
pub fn before_user(cwd: &Path) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => Ok(true),
        Err(Errno::EACCES | Errno::EPERM) => Ok(false),
        Err(e) => Err(e).ctx(|| format!("chdir to cwd ({:?}) set in config.json", cwd.display())),
    }
}

/// The second try if the first was refused, then the check that we are
/// inside our root.
pub fn after_user(cwd: &Path, entered: bool) -> Result<()> {
    if !entered {
        chdir(cwd)?;
    }
    let inside = match nix::unistd::getcwd() {
        Ok(p) => p.is_absolute(),
        // A seccomp profile already loaded (noNewPrivileges false) may deny
        // getcwd itself: climb ".." instead.
        Err(Errno::EPERM | Errno::EACCES | Errno::ENOSYS) => reaches_root(),
        Err(_) => false,
    };
    if !inside {
        return Err(StageError::new(format!(
            "current working directory {} is outside of the container root",
            cwd.display()
        )));
    }
    Ok(())
}

/// Whether climbing ".." from the cwd meets our root. The kernel stops ".."
/// at the root, so a cwd inside it gets there; a directory reached through
/// a leaked host fd climbs to the top of its own tree (where ".." is itself)
/// without ever passing our root. Directories are told apart by mount and
/// inode, so the rootfs directory seen through another mount is not "root".
fn reaches_root() -> bool {
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
                } else if super::reaches_root() {
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
