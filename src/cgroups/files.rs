//! Reading and writing cgroup interface files, with errors that name the
//! file, the value and the errno.

use std::path::Path;

use super::{CgroupError, Result};

/// Write `value` to `dir/file` in one write(2), as the kernel expects.
/// Never O_CREAT: cgroupfs answers EACCES to that where a missing file
/// should be ENOENT.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    open_for_write(&p, value).and_then(|f| write_to(&f, &p, value))
}

fn open_for_write(path: &Path, value: &str) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| write_failed(path, value, e))
}

fn write_to(mut f: &std::fs::File, path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    f.write_all(value.as_bytes())
        .map_err(|e| write_failed(path, value, e))
}

fn write_failed(path: &Path, value: &str, e: std::io::Error) -> CgroupError {
    CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Several writes into files of one directory, each file opened once.
pub struct Writer<'a> {
    dir: &'a Path,
    open: Vec<(&'static str, std::fs::File)>,
}

impl<'a> Writer<'a> {
    pub fn new(dir: &'a Path) -> Self {
        Writer {
            dir,
            open: Vec::new(),
        }
    }

    /// One write() of `value` into `file`, as `write` does.
    pub fn write(&mut self, file: &'static str, value: &str) -> Result<()> {
        let p = self.dir.join(file);
        let i = match self.open.iter().position(|(f, _)| *f == file) {
            Some(i) => i,
            None => {
                self.open.push((file, open_for_write(&p, value)?));
                self.open.len() - 1
            }
        };
        write_to(&self.open[i].1, &p, value)
    }
}

/// Whether a file of a few bytes (a freezer's state) reads `want`, after
/// trimming: one open, one read, one close, on every `state` and `list`.
pub fn holds(dir: &Path, file: &str, want: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(dir.join(file)) else {
        return false;
    };
    let mut buf = [0u8; 16];
    match f.read(&mut buf) {
        Ok(n) => buf[..n].trim_ascii() == want,
        Err(_) => false,
    }
}

pub fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    std::fs::read_to_string(&p).map_err(|e| CgroupError::io("read", &p, e))
}

/// A file holding one number ("max" reads as u64::MAX, as runc does).
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(s.trim()).ok_or_else(|| {
        CgroupError::Invalid(format!(
            "{}: unexpected content {s:?}",
            dir.join(file).display()
        ))
    })
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// The value of `key` in a flat-keyed file ("key value" lines).
pub fn read_key(dir: &Path, file: &str, key: &str) -> Result<u64> {
    let s = read(dir, file)?;
    Ok(s.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| parse_u64(v.trim()))
        .unwrap_or(0))
}

/// "key value" lines as pairs.
pub fn key_values(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, parse_u64(v.trim())?))
    })
}

pub fn is_not_found(e: &CgroupError) -> bool {
    matches!(
        e,
        CgroupError::Io {
            errno: nix::errno::Errno::ENOENT,
            ..
        } | CgroupError::Write {
            errno: nix::errno::Errno::ENOENT,
            ..
        }
    )
}
