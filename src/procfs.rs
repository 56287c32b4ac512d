//! Files of procfs and sysfs, whose size the kernel does not report.

use std::io::Read;
use std::path::Path;

/// The whole file, read with room for `expect` bytes from the start: two
/// reads where the standard library's probing makes one per doubling from
/// 32 bytes (eight for a mountinfo).
pub fn read(path: &Path, expect: usize) -> std::io::Result<String> {
    let mut text = String::with_capacity(expect);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}
