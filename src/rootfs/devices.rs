//! /dev: the default device nodes every container gets, `linux.devices`,
//! and the standard symlinks. Nodes are made with mknodat relative to the
//! verified /dev fd; inside a user namespace, where mknod is not allowed,
//! the host's node is bind-mounted instead.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};

use super::paths::{self, Kind};
use crate::error::{Ctx, Result, StageError};

/// (path, major, minor) of the devices runc gives every container.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

struct Node {
    path: PathBuf,
    typ: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn from_spec(d: &LinuxDevice) -> Result<Node> {
    let typ = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(StageError::new(format!(
                "device {}: type \"a\" is not a device node",
                d.path().display()
            )));
        }
    };
    Ok(Node {
        path: d.path().clone(),
        typ,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

pub fn create(root: &OwnedFd, spec: &Spec, userns: bool) -> Result<()> {
    let mut nodes: Vec<Node> = Vec::new();
    let bound = crate::plan::devices::dev_is_bound(spec);
    if !bound {
        for &(p, major, minor) in DEFAULT_DEVICES {
            nodes.push(Node {
                path: p.into(),
                typ: SFlag::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            });
        }
    }
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[])
    {
        let n = from_spec(d)?;
        nodes.retain(|x| x.path != n.path);
        nodes.push(n);
    }
    // Most nodes share a directory (/dev): resolve it once for them all.
    let mut dir: Option<(&Path, OwnedFd)> = None;
    for n in &nodes {
        make_node(root, n, userns, &mut dir)
            .ctx(|| format!("creating device {}", n.path.display()))?;
    }
    if !bound {
        let dev = match dir {
            Some((p, fd)) if p == Path::new("/dev") => fd,
            _ => paths::create_in_root(root.as_raw_fd(), Path::new("/dev"), Kind::Dir)
                .ctx(|| "opening /dev".into())?,
        };
        for (target, name) in SYMLINKS.iter().chain([("pts/ptmx", "ptmx")].iter()) {
            match nix::unistd::symlinkat(*target, &dev, *name) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).ctx(|| format!("symlink /dev/{name}")),
            }
        }
        // runc's /dev/core, meaningful only with a /proc in the container
        // and a kernel with /proc/kcore (CONFIG_PROC_KCORE; runc checks the
        // host's, as here: the init has not pivoted yet).
        let has_proc = Path::new("/proc/kcore").exists()
            && spec
                .mounts()
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|m| m.destination() == Path::new("/proc"));
        if has_proc {
            let _ = nix::unistd::symlinkat("/proc/kcore", &dev, "core");
        }
    }
    Ok(())
}

/// `dir`: the directory the last node went into, kept for the next.
fn make_node<'a>(
    root: &OwnedFd,
    n: &'a Node,
    userns: bool,
    dir: &mut Option<(&'a Path, OwnedFd)>,
) -> nix::Result<()> {
    let parent = n.path.parent().unwrap_or(Path::new("/"));
    let name = n.path.file_name().ok_or(Errno::EINVAL)?;
    let dir = match dir.take() {
        Some((p, fd)) if p == parent => &dir.insert((p, fd)).1,
        _ => {
            let fd = paths::create_in_root(root.as_raw_fd(), parent, Kind::Dir)?;
            &dir.insert((parent, fd)).1
        }
    };
    if userns {
        // mknod is refused in a user namespace: bind the host's node.
        let host = n.path.clone();
        let target = paths::create_in_root(root.as_raw_fd(), &n.path, Kind::File)?;
        let c = std::ffi::CString::new(host.as_os_str().as_encoded_bytes())
            .map_err(|_| Errno::EINVAL)?;
        let tree = crate::sys::open_tree(libc::AT_FDCWD, &c, libc::OPEN_TREE_CLONE)?;
        return crate::sys::move_mount(
            tree.as_raw_fd(),
            c"",
            target.as_raw_fd(),
            c"",
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        );
    }
    let dev = makedev(n.major, n.minor);
    let mode = Mode::from_bits_truncate(n.mode);
    match mknodat(dir, name, n.typ, mode, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Replace whatever the image put there (it may be a symlink).
            nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
            mknodat(dir, name, n.typ, mode, dev)?;
        }
        Err(e) => return Err(e),
    }
    nix::unistd::fchownat(
        dir,
        name,
        Some(n.uid.into()),
        Some(n.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}
