//! CVE-2019-5736: a container process that can open the runtime binary
//! through /proc/<pid>/exe (of the init stage, or of itself after exec'ing
//! /proc/self/exe) could overwrite it on the host. The init stage therefore
//! never runs from the host binary: the parent copies hull into a sealed
//! memfd (no write, grow, shrink, or further sealing) and the cloned child
//! execs that. Only the path that enters the container pays for the copy;
//! `state`, `list`, `kill` and friends never do.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::sys;

pub fn sealed_self() -> nix::Result<OwnedFd> {
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
