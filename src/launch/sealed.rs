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
    let empty = scratch.join("@empty-layer");
    match std::fs::create_dir(&empty) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    }
    let lower = format!("{}:{}", dir.display(), empty.display());
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
