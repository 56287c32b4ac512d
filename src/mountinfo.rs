//! Reading /proc/self/mountinfo: the one parser for the cgroup layout, the
//! mount that holds a rootfs, resctrl's mount point and the host mounts a
//! container without its own mount namespace made.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
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
    Ok(parse(&bytes()?))
}

/// /proc/self/mountinfo as the kernel wrote it: bytes, since a mount point
/// is any name a user (FUSE needs no privilege) chose.
pub fn bytes() -> std::io::Result<Vec<u8>> {
    crate::procfs::read(Path::new("/proc/self/mountinfo"), 16 * 1024)
}

pub fn parse(text: &[u8]) -> Vec<Entry> {
    crate::procfs::lines(text).filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    // The optional fields end at a lone "-"; no field before it holds a
    // space (mountinfo escapes them).
    let mut fields = line.split(|&b| b == b' ');
    let pre: Vec<&[u8]> = fields.by_ref().take_while(|f| *f != b"-").collect();
    let post: Vec<&[u8]> = fields.collect();
    if pre.len() < 5 || post.len() < 3 {
        return None;
    }
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    Some(Entry {
        id: crate::procfs::number(pre[0])?,
        root: unescape(pre[3]),
        mount_point: unescape(pre[4]),
        fs_type: text(post[0]),
        super_options: text(post[2]),
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
pub fn unescape(b: &[u8]) -> PathBuf {
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
    PathBuf::from(OsStr::from_bytes(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let e = parse(
            b"36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
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
        assert_eq!(unescape(b"/a\\040b"), PathBuf::from("/a b"));
    }

    #[test]
    fn a_mount_point_need_not_be_utf8() {
        let e = parse(
            b"1 0 0:1 / / rw - ext4 /dev/vda rw\n\
              40 1 0:50 / /tmp/caf\xe9 rw,relatime shared:9 - tmpfs tmpfs rw\n\
              41 1 0:51 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].mount_point.as_os_str().as_bytes(), b"/tmp/caf\xe9");
        assert_eq!(e[2].fs_type, "cgroup2");
    }
}
