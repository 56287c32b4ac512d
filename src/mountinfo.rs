//! Reading /proc/self/mountinfo: the one parser for the cgroup layout, the
//! mount that holds a rootfs, resctrl's mount point and the host mounts a
//! container without its own mount namespace made.

use std::path::{Path, PathBuf};

/// One line of mountinfo, the fields hull uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// The directory of the filesystem this mount shows as its root.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Superblock options (after the " - " separator and the source).
    pub super_options: String,
}

pub fn read() -> std::io::Result<Vec<Entry>> {
    Ok(parse(&text()?))
}

/// /proc/self/mountinfo as text.
pub fn text() -> std::io::Result<String> {
    crate::procfs::read(Path::new("/proc/self/mountinfo"), 16 * 1024)
}

pub fn parse(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let post: Vec<&str> = post.split(' ').collect();
    if pre.len() < 5 || post.len() < 3 {
        return None;
    }
    Some(Entry {
        id: pre[0].parse().ok()?,
        root: PathBuf::from(unescape(pre[3])),
        mount_point: PathBuf::from(unescape(pre[4])),
        fs_type: post[0].to_string(),
        super_options: post[2].to_string(),
    })
}

/// Mounts at or below `dir`, as (mount id, mount point).
pub fn mounts_under(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    Ok(read()?
        .into_iter()
        .filter(|e| e.mount_point.starts_with(dir))
        .map(|e| (e.id, e.mount_point))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as octal.
pub fn unescape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let e = parse(
            "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].id, 36);
        assert_eq!(e[0].root, PathBuf::from("/mnt1"));
        assert_eq!(e[0].mount_point, PathBuf::from("/mnt x"));
        assert_eq!(e[0].fs_type, "ext3");
        assert_eq!(e[0].super_options, "rw,errors=continue");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
