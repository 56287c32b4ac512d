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
use std::os::fd::{OwnedFd, RawFd};
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
/// for `Kind::File`, the final file. Every prefix of the path is resolved
/// from the root fd as a whole (RESOLVE_IN_ROOT: an absolute symlink met on
/// the way, such as Debian's /var/run -> /run, is taken relative to the
/// container's root, and ".." stops there), and each missing component is
/// made in the directory its prefix resolved to. A dangling symlink is
/// followed the same way: its target is made, inside the root.
pub fn create_in_root(root: RawFd, path: &Path, kind: Kind) -> nix::Result<OwnedFd> {
    create_depth(root, path, kind, 0)
}

/// Where to start making missing components: most often only the last one
/// is missing, so at its parent when that resolves, else at the root.
/// Returns the directory, its path (as written) and how many components
/// it covers.
fn start_at(root: RawFd, comps: &[Component]) -> nix::Result<(OwnedFd, std::path::PathBuf, usize)> {
    if let Some((_, init)) = comps.split_last().filter(|(_, init)| !init.is_empty()) {
        let parent: std::path::PathBuf = init.iter().collect();
        match open_in_root(root, &parent, libc::O_PATH) {
            Ok(fd) => return Ok((fd, parent, init.len())),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    let dir = open_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY)?;
    Ok((dir, std::path::PathBuf::new(), 0))
}

/// Symlinks followed to create through, at most (the kernel's MAXSYMLINKS).
const MAX_LINKS: u32 = 40;

fn create_depth(root: RawFd, path: &Path, kind: Kind, links: u32) -> nix::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<Component> = relative(path).components().collect();
    let (mut dir, mut prefix, skip) = start_at(root, &comps)?;
    // Started at the parent: the whole path was just found missing.
    let probed = skip + 1 == comps.len();
    for (i, c) in comps.iter().enumerate().skip(skip) {
        let last = i + 1 == comps.len();
        let next = prefix.join(c.as_os_str());
        let found = if last && probed {
            Err(Errno::ENOENT)
        } else {
            open_in_root(root, &next, libc::O_PATH)
        };
        match found {
            Ok(fd) => {
                dir = fd;
                prefix = next;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // Only a plain name can be missing: "." and ".." of a directory
        // that resolved always resolve.
        let Component::Normal(name) = c else {
            return Err(Errno::ENOENT);
        };
        let made = if last && kind == Kind::File {
            // mknodat never follows a symlink at the final component.
            nix::sys::stat::mknodat(
                &dir,
                *name,
                nix::sys::stat::SFlag::S_IFREG,
                Mode::from_bits_truncate(0o755),
                0,
            )
        } else {
            nix::sys::stat::mkdirat(&dir, *name, Mode::from_bits_truncate(0o755))
        };
        match made {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                // Made meanwhile (another container on the same rootfs)?
                match open_in_root(root, &next, libc::O_PATH) {
                    Ok(fd) => {
                        dir = fd;
                        prefix = next;
                        continue;
                    }
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e),
                }
                // There and not resolving: a dangling symlink. Create its
                // target instead, inside the root.
                if links >= MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                let target = nix::fcntl::readlinkat(&dir, *name)?;
                let mut rest = prefix.join(target);
                for c in &comps[i + 1..] {
                    rest.push(c.as_os_str());
                }
                return create_depth(root, &rest, kind, links + 1);
            }
            Err(e) => return Err(e),
        }
        dir = open_in_root(root, &next, libc::O_PATH)?;
        prefix = next;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A scratch root (removed on drop) and an O_PATH fd of it.
    struct Root(PathBuf, OwnedFd);
    impl Root {
        fn new(name: &str) -> Root {
            let dir =
                std::env::temp_dir().join(format!("hull-paths-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch root");
            let c = CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
            let fd = nix::fcntl::open(
                c.as_c_str(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .expect("open scratch root");
            Root(dir, fd)
        }
        fn create(&self, p: &str, kind: Kind) -> nix::Result<OwnedFd> {
            create_in_root(self.1.as_raw_fd(), Path::new(p), kind)
        }
    }
    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn missing_components_are_made_one_or_many() {
        let r = Root::new("many");
        r.create("/a/b/c", Kind::Dir).expect("nested");
        assert!(r.0.join("a/b/c").is_dir());
        r.create("/a/b/d", Kind::File).expect("last only");
        assert!(r.0.join("a/b/d").is_file());
        r.create("/a/b/c", Kind::Dir).expect("existing");
    }

    #[test]
    fn symlinks_on_the_way_resolve_inside_the_root() {
        let r = Root::new("links");
        std::fs::create_dir(r.0.join("run")).expect("run");
        std::fs::create_dir(r.0.join("var")).expect("var");
        // Debian's /var/run -> /run, and an escape attempt.
        symlink("/run", r.0.join("var/run")).expect("symlink");
        symlink("../../../../..", r.0.join("up")).expect("symlink");
        r.create("/var/run/secrets/token", Kind::File)
            .expect("through /var/run");
        assert!(r.0.join("run/secrets/token").is_file());
        r.create("/up/etc/hull-escape", Kind::Dir)
            .expect("through ..");
        assert!(r.0.join("etc/hull-escape").is_dir());
    }

    #[test]
    fn a_dangling_last_component_makes_its_target_inside() {
        let r = Root::new("dangling");
        std::fs::create_dir(r.0.join("dev")).expect("dev");
        symlink("/elsewhere/shm", r.0.join("dev/shm")).expect("symlink");
        r.create("/dev/shm", Kind::Dir).expect("dangling");
        assert!(r.0.join("elsewhere/shm").is_dir());
        // A file where a directory is needed is an error, not a walk around it.
        std::fs::write(r.0.join("f"), b"").expect("file");
        assert_eq!(r.create("/f/x", Kind::Dir).err(), Some(Errno::ENOTDIR));
    }
}
