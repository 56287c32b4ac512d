//! CVE-2019-5736: a container process that can open the runtime binary
//! through /proc/<pid>/exe (of the init stage, or of itself after exec'ing
//! /proc/self/exe) could overwrite it on the host. The init stage therefore
//! never runs from the host binary. Preferred (as runc 1.2+): the binary is
//! opened through a private, detached, lower-only overlayfs mount, which no
//! one can make writable (there is no upper layer) — no copy, a handful of
//! syscalls. Fallback: a copy in a sealed memfd (no write, grow, shrink or
//! further sealing), ~2 ms for our binary. Only the path that enters the
//! container pays; `state`, `list`, `kill` and friends never do.

use std::path::Path;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::sys;

/// hull's protected copy: `exe` is an fd of hull that execveat can run and
/// nothing can write through. With the overlay, `mount` is the private
/// mount's root: closing the last fd of it dissolves the mount, and the
/// mount's (and later the overlay's) teardown waits for an expedited RCU
/// grace period, so whoever closes last should be off every path a caller
/// waits on (see docs/performance.md).
pub struct Protected {
    pub exe: OwnedFd,
    pub mount: Option<OwnedFd>,
}

/// `scratch` is a directory hull owns (the state root), where an empty
/// directory serves as the overlay's second lower layer.
pub fn protected_self(scratch: &Path) -> nix::Result<Protected> {
    match overlay_self(scratch) {
        Ok((exe, mount)) => Ok(Protected {
            exe,
            mount: Some(mount),
        }),
        Err(_) => Ok(Protected {
            exe: sealed_self()?,
            mount: None,
        }),
    }
}

/// `protected_self`, both fds at `min_fd` or above.
pub fn protected(scratch: &Path, min_fd: std::os::fd::RawFd) -> anyhow::Result<Protected> {
    let p = protected_self(scratch)?;
    Ok(Protected {
        exe: crate::channel::raise(p.exe, min_fd)?,
        mount: p
            .mount
            .map(|m| crate::channel::raise(m, min_fd))
            .transpose()?,
    })
}

fn overlay_self(scratch: &Path) -> nix::Result<(OwnedFd, OwnedFd)> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|_| Errno::ENOENT)?;
    let (dir, name) = (
        exe.parent().ok_or(Errno::ENOENT)?,
        exe.file_name().ok_or(Errno::ENOENT)?,
    );
    let empty = empty_layer(scratch)?;
    // The layer as the fd we checked: nothing can swap it in between.
    let lower = format!("{}:/proc/self/fd/{}", dir.display(), empty.as_raw_fd());
    // overlayfs option syntax: these would need escaping; use the fallback.
    if lower.matches(':').count() != 1 || lower.contains(',') || lower.contains('\\') {
        return Err(Errno::EINVAL);
    }
    let lower = std::ffi::CString::new(lower).map_err(|_| Errno::EINVAL)?;
    let fs = sys::fsopen(c"overlay")?;
    sys::fsconfig(
        fs.as_raw_fd(),
        libc::FSCONFIG_SET_STRING,
        Some(c"lowerdir"),
        Some(&lower),
    )?;
    sys::fsconfig(fs.as_raw_fd(), libc::FSCONFIG_CMD_CREATE, None, None)?;
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
    let mnt = sys::fsmount(fs.as_raw_fd(), attrs)?;
    let name = std::ffi::CString::new(name.as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let exe = sys::openat2(
        mnt.as_raw_fd(),
        &name,
        libc::O_PATH,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )?;
    Ok((exe, mnt))
}

/// The overlay's empty second layer, `@empty-layer` under the state root:
/// made if missing, then opened without following a symlink and checked
/// to be an empty directory of ours that no one else may write (whatever
/// were in it would show through the overlay). Anything else and the
/// sealed copy is used instead.
fn empty_layer(scratch: &Path) -> nix::Result<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    let path = scratch.join("@empty-layer");
    match nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = open(&path, flags, nix::sys::stat::Mode::empty())?;
    let st = nix::sys::stat::fstat(&fd)?;
    let ours = st.st_uid == nix::unistd::geteuid().as_raw();
    if !ours || st.st_mode & 0o022 != 0 {
        return Err(Errno::EPERM);
    }
    let mut dir = nix::dir::Dir::from_fd(nix::unistd::dup(&fd)?)?;
    let names = dir.iter().filter_map(|e| e.ok()).count();
    if names > 2 {
        // More than "." and "..".
        return Err(Errno::ENOTEMPTY);
    }
    Ok(fd)
}

fn sealed_self() -> nix::Result<OwnedFd> {
    let exe = File::open("/proc/self/exe")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let len = exe
        .metadata()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .len();
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let memfd = match sys::memfd_create(c"hull", flags | libc::MFD_EXEC) {
        Err(Errno::EINVAL) => sys::memfd_create(c"hull", flags)?, // kernel < 6.3
        r => r?,
    };
    let mut off: libc::off_t = 0;
    while (off as u64) < len {
        let want = (len - off as u64) as usize;
        let n = nix::sys::sendfile::sendfile(&memfd, &exe, Some(&mut off), want)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
    }
    let seals = libc::F_SEAL_SEAL
        | libc::F_SEAL_SHRINK
        | libc::F_SEAL_GROW
        | libc::F_SEAL_WRITE
        | libc::F_SEAL_FUTURE_WRITE;
    // SAFETY: F_ADD_SEALS takes an int argument and touches no memory.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(Errno::last());
    }
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::FromRawFd;

    #[test]
    fn overlay_copy_is_read_only() {
        let scratch = std::env::temp_dir().join(format!("hull-sealed-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        // Needs privileges to mount; the memfd fallback covers the rest.
        if let Ok((fd, _mount)) = overlay_self(&scratch) {
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let err = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }

    #[test]
    fn only_an_empty_private_directory_is_the_empty_layer() {
        let scratch = std::env::temp_dir().join(format!("hull-layer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        let layer = scratch.join("@empty-layer");
        assert!(empty_layer(&scratch).is_ok(), "made and accepted");
        if nix::unistd::geteuid().is_root() {
            let p = protected_self(&scratch).unwrap();
            assert!(p.mount.is_some(), "the overlay, through the checked layer");
        }
        std::fs::write(layer.join("hull"), "planted").unwrap();
        assert_eq!(empty_layer(&scratch).unwrap_err(), Errno::ENOTEMPTY);
        std::fs::remove_dir_all(&layer).unwrap();
        std::os::unix::fs::symlink("/", &layer).unwrap();
        let e = empty_layer(&scratch).unwrap_err();
        assert!(matches!(e, Errno::ELOOP | Errno::ENOTDIR), "{e}");
        std::fs::remove_file(&layer).unwrap();
        std::fs::create_dir(&layer).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&layer, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(empty_layer(&scratch).unwrap_err(), Errno::EPERM);
        // Whatever the layer, the protected copy is hull, read-only.
        let p = protected_self(&scratch).unwrap();
        assert!(p.mount.is_none(), "the sealed copy, not the overlay");
        std::fs::remove_dir_all(&scratch).unwrap();
    }

    #[test]
    fn copy_is_sealed_against_writes() {
        let fd = sealed_self().unwrap();
        // SAFETY: dup gives us our own descriptor for the File to own.
        let mut f = unsafe { File::from_raw_fd(libc::dup(fd.as_raw_fd())) };
        assert!(f.write_all(b"x").is_err());
        // A fresh writable open (what CVE-2019-5736 does through
        // /proc/<pid>/exe) cannot write either.
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(path) {
            assert!(w.write_all(b"x").is_err());
        }
    }
}
