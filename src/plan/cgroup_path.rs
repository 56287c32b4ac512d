//! Where a container's cgroups are: the path rule that turns
//! linux.cgroupsPath into a directory per hierarchy, and the record of
//! those directories that state.json keeps.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Where the v2 hierarchy is mounted: its controllers and the
    /// subtree_control files on the way down start there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2_mount: Option<PathBuf>,
    /// Directories hull created, in creation order; only these are removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<PathBuf>,
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
