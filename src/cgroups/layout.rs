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
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| CgroupError::io("read", Path::new("/proc/self/mountinfo"), e))?;
        Ok(Self::parse(&text))
    }

    pub fn parse(mountinfo: &str) -> Layout {
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let root = PathBuf::from(unescape(pre[3]));
            let mount = PathBuf::from(unescape(pre[4]));
            match post[0] {
                "cgroup2" if layout.v2.is_none() => layout.v2 = Some((mount, root)),
                "cgroup" => {
                    let controllers: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| is_controller(o))
                        .map(str::to_string)
                        .collect();
                    if !controllers.is_empty()
                        && !layout.v1.iter().any(|h| h.controllers == controllers)
                    {
                        layout.v1.push(V1Hierarchy {
                            mount,
                            root,
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

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// hull's own cgroup per hierarchy, from /proc/self/cgroup: the base for
/// relative cgroupsPath values. Key "" is the v2 entry.
pub fn own_cgroups() -> Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| CgroupError::io("read", Path::new("/proc/self/cgroup"), e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctrls.to_string(), PathBuf::from(path)))
        })
        .collect())
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
        let l = Layout::parse(HYBRID);
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
        let l = Layout::parse("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert!(l.v1.is_empty() && l.v2.is_some());
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
