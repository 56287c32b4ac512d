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
