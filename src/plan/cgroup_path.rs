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
    /// The systemd driver's transient scope (`prefix-name.scope`), on the
    /// record before systemd is first asked for it: teardown stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// That scope is the user's own systemd's (rootless), reached over the
    /// session bus.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd_user: bool,
}

impl CgroupPaths {
    /// What a v2-only host's cgroup mount binds when it is not a cgroup2
    /// mount of its own (rootfs/mounts.rs; checkpoint's external mounts):
    /// the container's directory under a cgroup namespace (new or joined),
    /// else the host's whole /sys/fs/cgroup.
    pub fn v2_bind_source(&self, cgroupns: bool) -> PathBuf {
        match &self.v2 {
            Some(d) if cgroupns => d.clone(),
            _ => PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// The cgroup path a spec asks for, runc's way: absolute paths are taken as
/// is, relative ones are placed under hull's own cgroup, and an empty one
/// becomes `/<id>`. A path that cleans to a hierarchy's root (`/`, `/..`)
/// or to hull's own cgroup (`.`, `x/..`) is refused: the container's
/// cgroup is the set of processes its teardown kills, and those would be
/// every process on the host, or the caller and its siblings.
pub fn requested_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf, String> {
    let path = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => clean(p),
        _ => PathBuf::from("/").join(id),
    };
    let shown = cgroups_path.unwrap_or(Path::new("")).display();
    if path == Path::new("/") {
        return Err(format!(
            "cgroupsPath {shown:?} is the root cgroup: a container needs a cgroup of its own"
        ));
    }
    if path.as_os_str().is_empty() {
        return Err(format!(
            "cgroupsPath {shown:?} is the runtime's own cgroup: a container needs a cgroup of its own"
        ));
    }
    Ok(path)
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

/// `exec --cgroup`: the sub-cgroups (which must exist) an exec'd process
/// goes into, runc's way: `PATH` for every hierarchy, or
/// `CONTROLLER[,CONTROLLER]:PATH` for those controllers' hierarchies.
/// Paths are taken below the container's own cgroup and may not leave it.
pub fn sub_cgroups(paths: &CgroupPaths, args: &[String]) -> Result<CgroupPaths, String> {
    let mut all: Option<&str> = None;
    let mut by_ctrl: Vec<(&str, &str)> = Vec::new();
    for a in args {
        match a.split_once(':') {
            Some((ctrls, path)) => {
                for c in ctrls.split(',') {
                    if c.is_empty() {
                        return Err(format!(
                            "invalid --cgroup argument: {a} (empty <controller> prefix)"
                        ));
                    }
                    if by_ctrl.iter().any(|(x, _)| *x == c) {
                        return Err(format!(
                            "invalid --cgroup argument(s): controller {c} specified multiple times"
                        ));
                    }
                    by_ctrl.push((c, path));
                }
            }
            None if args.len() == 1 => all = Some(a),
            None => {
                return Err(format!(
                    "invalid --cgroup argument: {a} (missing <controller>: prefix)"
                ));
            }
        }
    }
    let below = |dir: &Path, add: &str| -> Result<PathBuf, String> {
        let sub = clean(&dir.join(add.trim_start_matches('/')));
        if sub.starts_with(dir) {
            Ok(sub)
        } else {
            Err(format!("{add} is not a sub cgroup path"))
        }
    };
    let mut out = paths.clone();
    out.created.clear();
    if let Some(add) = all {
        for (_, dir) in &mut out.v1 {
            *dir = below(dir, add)?;
        }
        if let Some(dir) = &mut out.v2 {
            *dir = below(dir, add)?;
        }
    }
    for (ctrl, add) in by_ctrl {
        let hit = out
            .v1
            .iter_mut()
            .find(|(ctrls, _)| ctrls.split(',').any(|c| c == ctrl));
        match hit {
            Some((_, dir)) => *dir = below(dir, add)?,
            None => return Err(format!("unknown controller {ctrl}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_slash_id() {
        assert_eq!(requested_path(None, "abc"), Ok(PathBuf::from("/abc")));
        assert_eq!(
            requested_path(Some(Path::new("")), "abc"),
            Ok(PathBuf::from("/abc"))
        );
    }

    #[test]
    fn dotdot_cannot_escape() {
        assert_eq!(
            requested_path(Some(Path::new("/a/../../../etc")), "x"),
            Ok(PathBuf::from("/etc"))
        );
        assert_eq!(
            requested_path(Some(Path::new("a/../../b")), "x"),
            Ok(PathBuf::from("b"))
        );
    }

    #[test]
    fn the_root_and_our_own_cgroup_are_refused() {
        for p in ["/", "//", "/..", "/a/..", "/./"] {
            let e = requested_path(Some(Path::new(p)), "x").unwrap_err();
            assert!(e.contains("is the root cgroup"), "{p}: {e}");
        }
        for p in [".", "..", "x/..", "./", "a/b/../.."] {
            let e = requested_path(Some(Path::new(p)), "x").unwrap_err();
            assert!(e.contains("the runtime's own cgroup"), "{p}: {e}");
        }
    }

    fn paths() -> CgroupPaths {
        CgroupPaths {
            v1: vec![
                ("cpu,cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct/c".into()),
                ("memory".into(), "/sys/fs/cgroup/memory/c".into()),
            ],
            v2: Some("/sys/fs/cgroup/unified/c".into()),
            v2_mount: Some("/sys/fs/cgroup/unified".into()),
            created: vec!["/sys/fs/cgroup/memory/c".into()],
            systemd_unit: None,
            systemd_user: false,
        }
    }

    #[test]
    fn sub_cgroups_like_runc() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = sub_cgroups(&paths(), &s(&["sub"])).unwrap();
        assert_eq!(p.v1[0].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c/sub"));
        assert_eq!(p.v2, Some(PathBuf::from("/sys/fs/cgroup/unified/c/sub")));
        assert!(p.created.is_empty());
        let p = sub_cgroups(&paths(), &s(&["memory:m", "cpu:x"])).unwrap();
        assert_eq!(p.v1[0].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c/x"));
        assert_eq!(p.v1[1].1, PathBuf::from("/sys/fs/cgroup/memory/c/m"));
        assert_eq!(p.v2, Some(PathBuf::from("/sys/fs/cgroup/unified/c")));
        for (bad, why) in [
            (vec!["../x"], "not a sub cgroup"),
            (vec!["a", "b"], "missing <controller>"),
            (vec![":x"], "empty <controller>"),
            (vec!["memory:a", "memory:b"], "multiple times"),
            (vec!["nope:a"], "unknown controller nope"),
        ] {
            let e = sub_cgroups(&paths(), &s(&bad)).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
