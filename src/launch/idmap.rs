//! User namespace id maps, written from the parent: only a process outside
//! a new user namespace may map host ids. Used for the container's own
//! user namespace (while its init waits) and for the throw-away namespaces
//! that carry an id-mapped mount's mappings.

use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxIdMapping, Spec};

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
