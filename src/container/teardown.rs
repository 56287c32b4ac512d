//! The one teardown of a container, whatever state it died in: used by a
//! failed `create`, `delete`, `delete --force` and a foreground `run`. It
//! reads only the record (state.json), which names everything before it
//! exists, so it also finishes what a killed `hull create` left: a
//! half-made cgroup, a live or dead init, host mounts, a resctrl group.
//!
//! Every step is attempted even when an earlier one failed; the directory
//! (and so the record) is removed only when all of them succeeded, so a
//! failed teardown can be retried with `delete --force`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ops::{OpError, init_pidfd, wait_exit};
use super::state::{HostMounts, State};
use crate::cgroups::{FsManager, Manager};
use crate::sys;

/// Kill every process of the container and remove all it holds on the host.
pub fn destroy(dir: &Path, state: &State) -> Result<(), OpError> {
    // The poststop hooks come from the config create saw; read it while
    // the directory is still there.
    let none = state.late_hooks.is_some_and(|h| !h.poststop);
    let spec: Option<oci_spec::runtime::Spec> = (!none)
        .then(|| super::state::read_config(dir).ok())
        .flatten()
        .and_then(|raw| serde_json::from_slice(&raw).ok());
    let cg = FsManager::from_paths(state.cgroup.clone());
    kill_init(state, &cg);
    // The cgroups are the container's to empty only once its init was
    // cloned into them: that happens after create checked that a cgroup
    // it did not make held no process. A create refused before then (a
    // cgroup shared with a running container) kills nobody.
    let mut first: Option<OpError> = if state.pid > 0 {
        empty_cgroups(&cg).err()
    } else {
        None
    };
    let mut keep = |r: Result<(), OpError>| {
        if let Err(e) = r
            && first.is_none()
        {
            first = Some(e);
        }
    };
    if let Some(m) = &state.host_mounts {
        keep(unmount_host(m));
    }
    keep(cg.destroy().map_err(OpError::from));
    if state.pid > 0 {
        // A systemd scope is asked for once the init has a pid.
        keep(crate::cgroups::stop_scope(&state.cgroup).map_err(OpError::from));
    }
    if let Some(rdt) = &state.intel_rdt {
        keep(crate::intelrdt::remove(rdt).map_err(|e| OpError::Remove(rdt.group.clone(), e)));
    }
    if let Some(e) = first {
        return Err(e);
    }
    match remove_state_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(OpError::Remove(dir.to_path_buf(), e)),
    }
    // After the container is deleted, before delete returns; a failure is
    // a warning (runtime-spec lifecycle step 13).
    if let Some(spec) = spec {
        let hook_state = state.hook_state("stopped", 0);
        crate::hooks::run_warning(&spec, crate::hooks::Phase::Poststop, &hook_state);
    }
    Ok(())
}

/// Remove the container's directory, never past a mount inside it: a
/// restore binds the rootfs at `criu-root` in hull's own mount namespace,
/// and a walk into it (std's remove_dir_all) would empty the rootfs.
fn remove_state_dir(dir: &Path) -> std::io::Result<()> {
    let top = std::fs::File::open(dir)?;
    let mnt = sys::mount_id(top.as_raw_fd())?;
    remove_within(dir, mnt)
}

fn remove_within(dir: &Path, mnt: u64) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            let sub = std::fs::File::open(&path)?;
            if sys::mount_id(sub.as_raw_fd())? != mnt {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ResourceBusy,
                    format!("{} is a mount point", path.display()),
                ));
            }
            remove_within(&path, mnt)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::remove_dir(dir)
}

/// SIGKILL the recorded init (if it is still the process we started) and
/// wait for it; in its own pid namespace that takes every process along.
fn kill_init(state: &State, cg: &FsManager) {
    let Some(fd) = init_pidfd(state) else {
        return;
    };
    let _ = sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
    // A task frozen by the v1 freezer dies only once thawed.
    if cg.is_frozen() {
        let _ = cg.freeze(false);
    }
    wait_exit(&fd, Duration::from_secs(10));
}

/// Processes that joined the cgroup but not the pid namespace, or those of
/// a container sharing the host's pid namespace: cgroup.kill on v2, SIGKILL
/// to each on v1, until the kernel has let them all go.
fn empty_cgroups(cg: &FsManager) -> Result<(), OpError> {
    for round in 0..500 {
        // A cgroup.procs that cannot be read is not an empty cgroup: kill
        // what can be killed and fail, so delete can be tried again.
        let pids = cg.pids().inspect_err(|_| {
            let _ = cg.kill_all();
        })?;
        if pids.is_empty() {
            return Ok(());
        }
        if round % 50 == 0 {
            let _ = cg.kill_all();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(OpError::Busy(
        "processes are still in the container's cgroup",
    ))
}

/// Unmount what a container without its own mount namespace mounted on the
/// host: the mounts create made, deepest first, detached so that a busy
/// one goes too.
fn unmount_host(m: &HostMounts) -> Result<(), OpError> {
    let ours = |id: &u64| match &m.made {
        Some(made) => made.contains(id),
        // A create killed before it was done: what appeared meanwhile.
        None => !m.before.contains(id),
    };
    let mut ours: Vec<(u64, PathBuf)> = crate::mountinfo::mounts_under(&m.under)
        .map_err(|e| OpError::Remove(m.under.clone(), e))?
        .into_iter()
        .filter(|(id, _)| ours(id))
        .collect();
    // Deeper mount points first; later mounts on the same point first.
    ours.sort_by(|a, b| {
        let depth = |p: &Path| p.components().count();
        depth(&b.1).cmp(&depth(&a.1)).then(b.0.cmp(&a.0))
    });
    let mut first = None;
    for (id, point) in ours {
        if let Err(e) = unmount_exact(&point, id) {
            first.get_or_insert(OpError::Remove(point, e.into()));
        }
    }
    first.map_or(Ok(()), Err)
}

/// Unmount mount `id` at `point`, and nothing else: the rootfs is the
/// container's, so a directory on the way may have become a symlink since
/// mountinfo was read. The point is opened without following any symlink,
/// checked to be that very mount, and unmounted through the fd.
fn unmount_exact(point: &Path, id: u64) -> nix::Result<()> {
    let c = std::ffi::CString::new(point.as_os_str().as_encoded_bytes())
        .map_err(|_| nix::errno::Errno::EINVAL)?;
    let fd = match sys::openat2(
        libc::AT_FDCWD,
        &c,
        libc::O_PATH,
        0,
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Gone already (a parent mount was detached with it).
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if sys::mount_id(fd.as_raw_fd())? != id {
        // Already gone, or another mount now covers the path.
        return Ok(());
    }
    match nix::mount::umount2(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        nix::mount::MntFlags::MNT_DETACH,
    ) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_process_list_is_not_an_empty_cgroup() {
        let dir = std::env::temp_dir().join(format!("hull-procs-{}", std::process::id()));
        // A directory where cgroup.procs should be: reading it fails.
        std::fs::create_dir_all(dir.join("cgroup.procs")).unwrap();
        let cg = FsManager::from_paths(crate::cgroups::CgroupPaths {
            v2: Some(dir.clone()),
            ..Default::default()
        });
        let r = empty_cgroups(&cg);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn removing_a_state_directory_stops_at_a_mount_inside_it() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let base = std::env::temp_dir().join(format!("hull-rm-{}", std::process::id()));
        let (dir, other) = (base.join("state"), base.join("rootfs"));
        std::fs::create_dir_all(dir.join("criu-root")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("precious"), "x").unwrap();
        std::fs::write(dir.join("state.json"), "{}").unwrap();
        let mounted = nix::mount::mount(
            Some(&other),
            &dir.join("criu-root"),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
        if mounted.is_err() {
            return;
        }
        let r = remove_state_dir(&dir);
        let _ = nix::mount::umount2(&dir.join("criu-root"), nix::mount::MntFlags::MNT_DETACH);
        assert!(
            other.join("precious").exists(),
            "the walk went into the mount"
        );
        let e = r.unwrap_err();
        assert!(e.to_string().ends_with("criu-root is a mount point"), "{e}");
        remove_state_dir(&dir).unwrap();
        assert!(!dir.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
