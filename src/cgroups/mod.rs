//! Placing a container in its cgroups and tearing them down.
//!
//! One `Manager` trait hides how cgroups are driven; today the only driver is
//! cgroupfs (`fs::FsManager`), which covers cgroup v1, v2 and hybrid hosts:
//! on a hybrid host every v1 hierarchy is used and the controllers bound to
//! the v2 mount (hugetlb on our CI machines) are driven through v2. A systemd
//! driver will implement the same trait.

mod devices;
mod fs;
mod layout;
mod v1;
mod v2;

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use fs::FsManager;
pub use layout::Layout;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {errno}")]
    Io {
        op: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is not implemented yet")]
    Unsupported(String),
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

/// Where a container's cgroups are, as recorded in state.json so that every
/// later command finds them without re-deriving anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupPaths {
    /// v1 hierarchies: (mount point, absolute directory of the container).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v1: Vec<(String, PathBuf)>,
    /// The container's directory in the v2 hierarchy, if the host has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2: Option<PathBuf>,
    /// Directories hull created, in creation order; only these are removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<PathBuf>,
}

/// What a runtime needs from a cgroup driver.
pub trait Manager {
    /// Create the container's cgroups and apply the resource limits.
    fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()>;
    /// A directory fd for clone3's CLONE_INTO_CGROUP, when the driver has one.
    fn clone_into(&self) -> Option<RawFd>;
    /// Move `pid` into every hierarchy clone3 did not already place it in.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Processes in the container's cgroup.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Whether the container's cgroup is frozen.
    fn is_frozen(&self) -> bool;
    /// Remove the container's cgroups (they must be empty).
    fn destroy(&self) -> Result<()>;
    /// The paths to record in state.json.
    fn paths(&self) -> &CgroupPaths;
}

/// The cgroup path a spec asks for, runc's way: absolute paths are taken as
/// is, relative ones are placed under hull's own cgroup, and an empty one
/// becomes `/<id>`.
pub fn requested_path(cgroups_path: Option<&Path>, id: &str) -> PathBuf {
    match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => clean(p),
        _ => PathBuf::from("/").join(id),
    }
}

/// Lexically clean a cgroup path so that it can never climb out of a
/// hierarchy with `..`.
fn clean(p: &Path) -> PathBuf {
    let mut out = if p.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => out.push(s),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_slash_id() {
        assert_eq!(requested_path(None, "abc"), PathBuf::from("/abc"));
        assert_eq!(
            requested_path(Some(Path::new("")), "abc"),
            PathBuf::from("/abc")
        );
    }

    #[test]
    fn dotdot_cannot_escape() {
        assert_eq!(
            requested_path(Some(Path::new("/a/../../../etc")), "x"),
            PathBuf::from("/etc")
        );
        assert_eq!(
            requested_path(Some(Path::new("a/../../b")), "x"),
            PathBuf::from("b")
        );
    }
}
