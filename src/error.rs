//! The error of the stages that run in a child of hull (the container's
//! init, and later the process `exec` starts): what was being done, and the
//! errno when a syscall failed, so the parent can report the root cause in
//! one line and a caller can still tell EPERM from ENOENT.

use nix::errno::Errno;

#[derive(Debug)]
pub struct StageError {
    pub msg: String,
    pub errno: Option<Errno>,
}

impl StageError {
    pub fn new(msg: impl Into<String>) -> StageError {
        StageError {
            msg: msg.into(),
            errno: None,
        }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for StageError {}

pub type Result<T> = std::result::Result<T, StageError>;

/// Attach context to a failing syscall result.
pub trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| StageError {
            msg: format!("{}: {}", what(), e.desc()),
            errno: Some(e),
        })
    }
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| StageError {
            msg: format!("{}: {e}", what()),
            errno: e.raw_os_error().map(Errno::from_raw),
        })
    }
}
