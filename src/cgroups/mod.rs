//! Placing a container in its cgroups and tearing them down.
//!
//! One `Manager` trait hides how cgroups are driven. The cgroupfs driver
//! (`fs::FsManager`) covers cgroup v1, v2 and hybrid hosts: on a hybrid
//! host every v1 hierarchy is used and the controllers bound to the v2
//! mount (hugetlb on our CI machines) are driven through v2. The systemd
//! driver (`systemd::SystemdManager`, `--systemd-cgroup`) has systemd make
//! the container's cgroup, a transient scope, and then drives it through
//! an `FsManager` like any other.

mod apply;
mod devices;
mod ebpf;
mod files;
mod freezer;
mod fs;
mod layout;
mod oom;
mod stats;
mod systemd;
pub mod systemd_props;
mod v1;
mod v2;

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub use crate::plan::CgroupPaths;
pub use apply::sets_limits;
pub use fs::FsManager;
pub use layout::{Layout, parse_own as parse_own_cgroups};
pub use oom::OomWatch;
pub use stats::Stats;
pub use systemd::{SystemdManager, attach_to_scope, stop_scope, update as update_scope};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {errno}")]
    Io {
        op: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("failed to write {value:?} to {path}: {errno}")]
    Write {
        path: PathBuf,
        value: String,
        errno: nix::errno::Errno,
    },
    #[error("{0}")]
    Invalid(String),
}

impl CgroupError {
    pub fn io(op: &'static str, path: &Path, err: std::io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.to_path_buf(),
            errno: nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// What a runtime needs from a cgroup driver.
pub trait Manager {
    /// Work out which directories `create` will make, into `paths()`, so
    /// they can be recorded before any of them exists.
    fn plan(&mut self);
    /// Check the leaves, then make only what clone3 needs to place a child
    /// at birth (the v2 directory and its planned parents), so the child can
    /// start while `create` makes the rest.
    fn create_for_clone(&mut self) -> Result<()>;
    /// Create the (remaining) planned cgroups and apply the resource limits.
    fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()>;
    /// A directory fd for clone3's CLONE_INTO_CGROUP, when the driver has one.
    fn clone_into(&self) -> Option<RawFd>;
    /// The hierarchies a new task joins by itself, before it runs anything
    /// else: cgroup v1 `tasks` files, opened write-only with our
    /// credentials, each with its directory.
    fn self_join_files(&self) -> Result<Vec<(OwnedFd, PathBuf)>>;
    /// Move `pid` into every hierarchy neither clone3 placed it in nor it
    /// joined by itself (through `self_join_files`).
    fn add_task(&mut self, pid: i32) -> Result<()>;
    /// Change the limits of a running container (devices excepted: the
    /// rules set at creation stay, as with runc).
    fn update(&self, resources: &LinuxResources) -> Result<()>;
    /// Processes in the container's cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Whether the container's cgroup is frozen.
    fn is_frozen(&self) -> bool;
    /// Freeze (or thaw) every process, returning once the kernel says done.
    fn freeze(&self, frozen: bool) -> Result<()>;
    /// SIGKILL every process in the cgroup (cgroup.kill on v2).
    fn kill_all(&self) -> Result<()>;
    /// Usage statistics, in runc's `events --stats` shape.
    fn stats(&self) -> Result<Stats>;
    /// A pollable notification of OOM kills in the container.
    fn oom_watch(&self) -> Result<OomWatch>;
    /// How many processes the kernel's OOM killer has killed in the
    /// container's memory cgroup (0 when that cannot be read).
    fn oom_kills(&self) -> u64;
    /// Remove the container's cgroups (they must be empty).
    fn destroy(&self) -> Result<()>;
    /// The paths to record in state.json.
    fn paths(&self) -> &CgroupPaths;
}

/// pids.limit as runc (1.1) reads it: 0 leaves the limit alone (callers
/// skip it), a negative value means no limit.
fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

/// memory.checkBeforeUpdate: refuse a limit at or below current usage
/// instead of letting the kernel OOM-kill the container.
fn check_before_update(
    m: &oci_spec::runtime::LinuxMemory,
    usage: impl FnOnce() -> Result<u64>,
) -> Result<()> {
    if m.check_before_update() != Some(true) {
        return Ok(());
    }
    let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
    if limit <= 0 && swap <= 0 {
        return Ok(());
    }
    let Ok(usage) = usage() else { return Ok(()) };
    if swap > 0 && swap as u64 <= usage {
        return Err(CgroupError::Invalid(format!(
            "rejecting memory+swap limit {swap} <= usage {usage}"
        )));
    }
    if limit > 0 && limit as u64 <= usage {
        return Err(CgroupError::Invalid(format!(
            "rejecting memory limit {limit} <= usage {usage}"
        )));
    }
    Ok(())
}

/// linux.resources.devices, checked before anything exists on the host:
/// what the v2 device program (and so the v1 rules) could not express.
pub fn check_device_rules(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> std::result::Result<(), String> {
    ebpf::reduce(&devices::rules(rules))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Huge page sizes this host supports, as the spec spells them ("2MB").
pub fn hugepage_sizes() -> Vec<String> {
    let mut out: Vec<(u64, String)> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let kb: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, page_size_name(kb)))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

fn page_size_name(kb: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    let (mut v, mut i) = (kb, 0);
    while v >= 1024 && v % 1024 == 0 && i + 1 < UNITS.len() {
        v /= 1024;
        i += 1;
    }
    format!("{v}{}", UNITS[i])
}

/// A missing hugetlb file means the page size does not exist here.
fn hugetlb_error(e: CgroupError, size: &str) -> CgroupError {
    if files::is_not_found(&e) {
        return CgroupError::Invalid(format!(
            "huge page size {size:?} is not supported on this host (supported: {})",
            hugepage_sizes().join(", ")
        ));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_named_like_the_spec() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1048576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }

    #[test]
    fn pids_limit_meanings() {
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(42), "42");
    }
}
