//! Which cgroup hierarchies the host has: v1 (one mount per controller set),
//! v2 (one unified mount) or hybrid (both). Read from /proc/self/mountinfo
//! once per command that needs it.

use std::path::{Path, PathBuf};

use super::{CgroupError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount: PathBuf,
    /// The cgroup that mount shows as its root (non-"/" when hull itself
    /// runs inside a container).
    pub root: PathBuf,
    /// Controllers bound to it, e.g. ["cpu", "cpuacct"] or ["name=systemd"].
    pub controllers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub v1: Vec<V1Hierarchy>,
    pub v2: Option<(PathBuf, PathBuf)>,
}

impl Layout {
    pub fn detect() -> Result<Layout> {
        let text = crate::mountinfo::bytes()
            .map_err(|e| CgroupError::io("read", Path::new("/proc/self/mountinfo"), e))?;
        Ok(Self::parse(&text))
    }

    pub fn parse(mountinfo: &[u8]) -> Layout {
        let mut layout = Layout::default();
        for e in crate::mountinfo::parse(mountinfo) {
            match e.fs_type.as_str() {
                "cgroup2" if layout.v2.is_none() => layout.v2 = Some((e.mount_point, e.root)),
                "cgroup" => {
                    let controllers: Vec<String> = e
                        .super_options
                        .split(',')
                        .filter(|o| is_controller(o))
                        .map(str::to_string)
                        .collect();
                    if !controllers.is_empty()
                        && !layout.v1.iter().any(|h| h.controllers == controllers)
                    {
                        layout.v1.push(V1Hierarchy {
                            mount: e.mount_point,
                            root: e.root,
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }
        layout
    }
}

fn is_controller(opt: &str) -> bool {
    const KNOWN: &[&str] = &[
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "net_cls",
        "net_prio",
        "hugetlb",
        "perf_event",
        "rdma",
        "misc",
    ];
    opt.starts_with("name=") || KNOWN.contains(&opt)
}

/// hull's own cgroup per hierarchy, from /proc/self/cgroup: the base for
/// relative cgroupsPath values. Key "" is the v2 entry.
pub fn own_cgroups() -> Result<Vec<(String, PathBuf)>> {
    let path = Path::new("/proc/self/cgroup");
    let text = crate::procfs::read(path, 1024).map_err(|e| CgroupError::io("read", path, e))?;
    Ok(parse_own(&text))
}

/// Lines of /proc/self/cgroup: `ID:CONTROLLERS:PATH`, the path being any
/// bytes a cgroup's creator chose.
pub fn parse_own(text: &[u8]) -> Vec<(String, PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    crate::procfs::lines(text)
        .filter_map(|l| {
            let mut it = l.splitn(3, |&b| b == b':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
            Some((String::from_utf8_lossy(ctrls).into_owned(), path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn parses_hybrid() {
        let l = Layout::parse(HYBRID.as_bytes());
        assert_eq!(l.v1.len(), 4);
        assert_eq!(l.v1[1].mount, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(l.v1[3].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            l.v2.as_ref().unwrap().0,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn parses_pure_v2() {
        let l = Layout::parse(b"30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert!(l.v1.is_empty() && l.v2.is_some());
    }

    #[test]
    fn own_cgroup_paths_are_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let own = parse_own(b"4:memory:/k8s/caf\xe9\n0::/a:b\n");
        assert_eq!(own[0].0, "memory");
        assert_eq!(own[0].1.as_os_str().as_bytes(), b"/k8s/caf\xe9");
        assert_eq!(own[1], (String::new(), PathBuf::from("/a:b")));
    }
}
