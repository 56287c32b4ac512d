//! maskedPaths and readonlyPaths, applied after pivot_root inside the
//! container root. Files are masked with a bind of /dev/null that is first
//! verified to be the real character device 1:3 (CVE-2025-31133: a rootfs
//! could make /dev/null a symlink to a host file, turning the "mask" into a
//! writable bind of that file). All masked directories share one read-only
//! tmpfs (Kubernetes masks hundreds of paths). Everything goes through the
//! new mount API on resolved fds, never through the container's /proc.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{SFlag, fstat, major, minor};

use super::paths;
use crate::error::{Ctx, Result, StageError};
use crate::sys;

const MOVE: u32 = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;

fn clone_tree(fd: &OwnedFd, recursive: bool) -> nix::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    sys::open_tree(fd.as_raw_fd(), c"", flags)
}

/// The container's /dev/null, only if it really is the null device.
fn verified_dev_null(root: &OwnedFd) -> Result<OwnedFd> {
    let fd = sys::openat2(
        root.as_raw_fd(),
        c"dev/null",
        libc::O_PATH,
        0,
        paths::RESOLVE | libc::RESOLVE_NO_SYMLINKS,
    )
    .ctx(|| "opening /dev/null for masking".into())?;
    let st = fstat(&fd).ctx(|| "stat /dev/null".into())?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(StageError::new(
            "/dev/null is not the null device (1:3): refusing to use it to mask paths",
        ));
    }
    Ok(fd)
}

fn empty_ro_tmpfs(label: Option<&str>) -> Result<OwnedFd> {
    let fs = sys::fsopen(c"tmpfs").ctx(|| "fsopen tmpfs".into())?;
    if let Some(l) = label {
        let l = std::ffi::CString::new(l)
            .map_err(|_| StageError::new("NUL byte in linux.mountLabel"))?;
        sys::fsconfig(
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            Some(c"context"),
            Some(&l),
        )
        .ctx(|| "fsconfig context (linux.mountLabel)".into())?;
    }
    sys::fsconfig(
        fs.as_raw_fd(),
        libc::FSCONFIG_SET_STRING,
        Some(c"mode"),
        Some(c"0755"),
    )
    .ctx(|| "fsconfig".into())?;
    sys::fsconfig(
        fs.as_raw_fd(),
        libc::FSCONFIG_SET_STRING,
        Some(c"size"),
        Some(c"0"),
    )
    .ctx(|| "fsconfig".into())?;
    sys::fsconfig(fs.as_raw_fd(), libc::FSCONFIG_CMD_CREATE, None, None)
        .ctx(|| "fsconfig create".into())?;
    let attrs = libc::MOUNT_ATTR_RDONLY
        | libc::MOUNT_ATTR_NOSUID
        | libc::MOUNT_ATTR_NODEV
        | libc::MOUNT_ATTR_NOEXEC;
    sys::fsmount(fs.as_raw_fd(), attrs).ctx(|| "fsmount tmpfs".into())
}

pub fn mask(root: &OwnedFd, masked: &[String], label: Option<&str>) -> Result<()> {
    if masked.is_empty() {
        return Ok(());
    }
    let mut dev_null: Option<OwnedFd> = None;
    // The first masked directory gets the tmpfs itself; later ones a clone
    // of it once attached (cloning a detached mount needs Linux 6.15+).
    let mut dir_mask: Option<OwnedFd> = None;
    for p in masked {
        let target = match paths::open_in_root(root.as_raw_fd(), Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("opening masked path {p}")),
        };
        let st = fstat(&target).ctx(|| format!("stat {p}"))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        let tree = if is_dir {
            match &dir_mask {
                Some(first) => {
                    clone_tree(first, false).ctx(|| format!("cloning the mask tmpfs for {p}"))?
                }
                None => empty_ro_tmpfs(label)?,
            }
        } else {
            if dev_null.is_none() {
                dev_null = Some(verified_dev_null(root)?);
            }
            clone_tree(dev_null.as_ref().expect("set above"), false)
                .ctx(|| "cloning /dev/null".into())?
        };
        sys::move_mount(tree.as_raw_fd(), c"", target.as_raw_fd(), c"", MOVE)
            .ctx(|| format!("masking {p}"))?;
        if is_dir && dir_mask.is_none() {
            dir_mask = Some(tree);
        }
    }
    Ok(())
}

pub fn readonly(root: &OwnedFd, paths_: &[String]) -> Result<()> {
    for p in paths_ {
        let target = match paths::open_in_root(root.as_raw_fd(), Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("opening readonly path {p}")),
        };
        let tree = clone_tree(&target, true).ctx(|| format!("bind {p}"))?;
        sys::mount_set_readonly(tree.as_raw_fd(), true).ctx(|| format!("making {p} read-only"))?;
        sys::move_mount(tree.as_raw_fd(), c"", target.as_raw_fd(), c"", MOVE)
            .ctx(|| format!("mounting {p} read-only"))?;
    }
    Ok(())
}
