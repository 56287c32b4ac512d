//! User namespace id maps, written from the parent: only a process outside
//! a new user namespace may map host ids. Used for the container's own
//! user namespace (while its init waits) and for the throw-away namespaces
//! that carry an id-mapped mount's mappings.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::sys;

pub fn write_maps(pid: i32, spec: &Spec) -> std::io::Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    write_pair(
        pid,
        linux.uid_mappings().as_deref().unwrap_or(&[]),
        linux.gid_mappings().as_deref().unwrap_or(&[]),
    )
}

fn write_pair(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> std::io::Result<()> {
    write(pid, "uid_map", &render(uid))?;
    write(pid, "gid_map", &render(gid))
}

fn render(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write(pid: i32, file: &str, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    // One write(2): the kernel accepts a map only whole.
    std::fs::write(&path, text.as_bytes()).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("writing {path} ({}): {e}", text.trim().replace('\n', ", ")),
        )
    })
}

/// A user namespace with exactly these maps, held by the returned fd. A
/// short-lived child creates it and waits on a pipe until we have the
/// namespace open; it exits (and is reaped) before we return, or as soon
/// as we die, so it never outlives this call.
pub fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let pid = match sys::clone3(libc::CLONE_NEWUSER as u64, None)
        .context("creating a user namespace for an idmapped mount")?
    {
        sys::Forked::Child => {
            // Only async-signal-safe calls until _exit.
            drop(wr);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&rd, &mut b);
            // SAFETY: _exit is async-signal-safe and skips the parent's
            // atexit handlers.
            unsafe { libc::_exit(0) }
        }
        sys::Forked::Parent { pid, .. } => pid,
    };
    drop(rd);
    let ns = write_pair(pid, uid, gid)
        .context("mapping the idmapped mount's user namespace")
        .and_then(|()| {
            nix::fcntl::open(
                format!("/proc/{pid}/ns/user").as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .context("opening the idmapped mount's user namespace")
        });
    drop(wr);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    ns
}

/// In the parent: a detached copy of the mount's source, id-mapped through
/// `userns`. Its other options are applied by the init stage on attach.
pub fn source_tree(src: &Path, m: &Mount, userns: &OwnedFd) -> anyhow::Result<OwnedFd> {
    use anyhow::Context;
    let opts = crate::plan::mount_options::parse(m.options().as_deref().unwrap_or(&[]));
    let recursive = crate::plan::idmap::of(m).is_some_and(|i| i.recursive);
    let mut flags = libc::OPEN_TREE_CLONE;
    if opts.flags & libc::MS_REC != 0 {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let path = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
        .with_context(|| format!("NUL byte in {}", src.display()))?;
    let tree = crate::sys::open_tree(libc::AT_FDCWD, &path, flags)
        .with_context(|| format!("open_tree {}", src.display()))?;
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    crate::sys::mount_setattr(
        tree.as_raw_fd(),
        c"",
        (libc::AT_EMPTY_PATH | rec) as u32,
        &attr,
    )
    .map_err(|e| match e {
        nix::errno::Errno::EINVAL => anyhow::anyhow!(
            "id-mapping {}: the filesystem does not support idmapped mounts (EINVAL)",
            src.display()
        ),
        e => anyhow::anyhow!("id-mapping {}: {}", src.display(), e.desc()),
    })?;
    Ok(tree)
}
