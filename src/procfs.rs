//! Files of procfs and sysfs, whose size the kernel does not report.
//!
//! They are read as bytes: a process name (`/proc/PID/stat`) or a mount
//! point (`mountinfo`) is whatever bytes a user or a container chose, not
//! UTF-8. Reading them as text once let one odd byte make hull take a live
//! container for stopped, or fail every create on the node.

use std::io::Read;
use std::path::Path;

/// The whole file, read with room for `expect` bytes from the start: two
/// reads where the standard library's probing makes one per doubling from
/// 32 bytes (eight for a mountinfo).
pub fn read(path: &Path, expect: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(expect);
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Lines of `bytes`, without their '\n'.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// An ASCII decimal field (what the kernel writes for numbers).
pub fn number<T: std::str::FromStr>(field: &[u8]) -> Option<T> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The processes (host pids, ascending) in the pid namespace of `pid`:
/// those whose /proc/N/ns/pid is the same namespace. What a container
/// without a cgroup of its own (rootless) holds, when it has its own pid
/// namespace. Processes that cannot be inspected are left out.
pub fn same_pid_ns(pid: i32) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &str| {
        std::fs::metadata(format!("/proc/{p}/ns/pid"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let Some(want) = ns(&pid.to_string()) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<i32> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n: i32 = number(name.as_encoded_bytes())?;
            (ns(name.to_str()?) == Some(want)).then_some(n)
        })
        .collect();
    out.sort_unstable();
    out
}
