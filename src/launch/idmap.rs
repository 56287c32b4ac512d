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

/// Write both maps. Root (in whatever user namespace) writes them itself;
/// another user may write only the map of its own id, and for the gid map
/// must first deny setgroups(2) in the namespace (else it could drop a
/// group that denies it access). Any other map goes through the setuid
/// helpers `newuidmap`/`newgidmap`, which allow the ranges /etc/subuid and
/// /etc/subgid give this user (runc's way).
fn write_pair(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> std::io::Result<()> {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        write(pid, "uid_map", &render(uid))?;
        return write(pid, "gid_map", &render(gid));
    }
    let own = |maps: &[LinuxIdMapping], id: u32| matches!(maps, [m] if m.host_id() == id && m.size() == 1);
    if uid.is_empty() || own(uid, euid.as_raw()) {
        write(pid, "uid_map", &render(uid))?;
    } else {
        helper("newuidmap", "/etc/subuid", pid, uid)?;
    }
    if gid.is_empty() {
        return Ok(());
    }
    if own(gid, nix::unistd::getegid().as_raw()) {
        write(pid, "setgroups", "deny")?;
        write(pid, "gid_map", &render(gid))
    } else {
        helper("newgidmap", "/etc/subgid", pid, gid)
    }
}

/// Run `newuidmap`/`newgidmap PID ID HOST SIZE...`; its own message (it
/// names the range it refused) is the error's.
fn helper(tool: &str, ranges: &str, pid: i32, maps: &[LinuxIdMapping]) -> std::io::Result<()> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let failed = |why: String| {
        std::io::Error::other(format!(
            "{tool} {pid} {}: {why} (mapping ids other than your own needs {tool}, \
             Debian's uidmap package, and ranges in {ranges})",
            render(maps).trim().replace('\n', ", ")
        ))
    };
    let out = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    Err(failed(
        msg.lines().last().unwrap_or("failed").trim().to_string(),
    ))
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
