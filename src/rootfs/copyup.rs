//! The `tmpcopyup` mount option: a tmpfs mounted over a directory of the
//! image starts with a copy of what the directory held. The source is the
//! untrusted image, so the copy walks it only through directory fds with
//! O_NOFOLLOW and *at() calls: no symlink in it is ever followed.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};

const NOFOLLOW: OFlag = OFlag::O_NOFOLLOW.union(OFlag::O_CLOEXEC);

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Open a directory for reading (from an O_PATH fd or a parent dir fd).
pub fn open_dir(parent: impl AsFd, name: &CStr) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | NOFOLLOW,
        Mode::empty(),
    )
}

fn own(dst: &OwnedFd, name: &OsStr, st: &FileStat) -> nix::Result<()> {
    fchownat(
        dst,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// Copy the contents of directory `src` into directory `dst`.
pub fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> nix::Result<()> {
    // A duplicate: Dir takes ownership of the fd it reads.
    let dup = nix::unistd::dup(src)?;
    let mut dir = nix::dir::Dir::from_fd(dup)?;
    let names: Vec<CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let os = OsStr::from_bytes(name.as_bytes());
        let st = fstatat(src, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        match kind(&st) {
            SFlag::S_IFDIR => {
                mkdirat(dst, name.as_c_str(), mode)?;
                let (s, d) = (open_dir(src, &name)?, open_dir(dst, &name)?);
                copy_tree(&s, &d)?;
                fchmod(&d, mode)?;
            }
            SFlag::S_IFREG => {
                let from = openat(
                    src,
                    name.as_c_str(),
                    OFlag::O_RDONLY | NOFOLLOW,
                    Mode::empty(),
                )?;
                let to = openat(
                    dst,
                    name.as_c_str(),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | NOFOLLOW,
                    mode,
                )?;
                // SAFETY: both fds are freshly opened and owned here.
                let (mut f, mut t) = unsafe {
                    (
                        std::fs::File::from_raw_fd(into_raw(from)),
                        std::fs::File::from_raw_fd(into_raw(to)),
                    )
                };
                std::io::copy(&mut f, &mut t)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                fchmod(&t, mode)?;
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(src, name.as_c_str())?;
                symlinkat(target.as_os_str(), dst, name.as_c_str())?;
            }
            other => mknodat(dst, name.as_c_str(), other, mode, st.st_rdev)?,
        }
        own(dst, os, &st)?;
    }
    Ok(())
}

fn into_raw(fd: OwnedFd) -> i32 {
    use std::os::fd::IntoRawFd;
    let raw = fd.as_raw_fd();
    let _ = fd.into_raw_fd();
    raw
}
