//! Resolving paths inside the container's root without ever leaving it.
//!
//! A container image is untrusted: any component of a mount destination may
//! be a symlink to `/`, `../../..` or a host file, planted to redirect hull's
//! mounts and writes onto the host. Every lookup here goes through openat2
//! with RESOLVE_IN_ROOT (symlinks are resolved as if the rootfs were `/`)
//! and RESOLVE_NO_MAGICLINKS (no /proc/*/fd escapes), returning an O_PATH fd
//! that later operations use directly, so a symlink swapped in after the
//! check cannot redirect them.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::sys::stat::Mode;

use crate::sys;

pub const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

fn cpath(p: &Path) -> nix::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

/// Strip leading "/" so the path is relative to the root fd.
fn relative(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

/// Open `path` inside `root` with `flags` (O_PATH by default).
pub fn open_in_root(root: RawFd, path: &Path, flags: i32) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let c = if rel.as_os_str().is_empty() {
        CString::from(c".")
    } else {
        cpath(rel)?
    };
    sys::openat2(root, &c, flags, 0, RESOLVE)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
}

/// Open `path` inside `root`, creating missing directories (mode 0755) and,
/// for `Kind::File`, the final file. Each component is created relative to
/// the fd of its verified parent.
pub fn create_in_root(root: RawFd, path: &Path, kind: Kind) -> nix::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<Component> = relative(path).components().collect();
    let mut dir = open_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY)?;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let name = match c {
            Component::Normal(n) => Path::new(n),
            Component::ParentDir
            | Component::CurDir
            | Component::RootDir
            | Component::Prefix(_) => {
                // Walk ".." and friends with the in-root resolver: it clamps at the root.
                let next = sys::openat2(
                    dir.as_raw_fd(),
                    &cpath(Path::new(c.as_os_str()))?,
                    libc::O_PATH,
                    0,
                    RESOLVE,
                )?;
                dir = next;
                continue;
            }
        };
        let cname = cpath(name)?;
        match sys::openat2(dir.as_raw_fd(), &cname, libc::O_PATH, 0, RESOLVE) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if last && kind == Kind::File {
            // mknodat never follows a symlink at the final component.
            match nix::sys::stat::mknodat(
                &dir,
                name,
                nix::sys::stat::SFlag::S_IFREG,
                Mode::from_bits_truncate(0o755),
                0,
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        } else {
            match nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        dir = sys::openat2(dir.as_raw_fd(), &cname, libc::O_PATH, 0, RESOLVE)?;
    }
    Ok(dir)
}
