//! What can go wrong when finding, reading or writing a container's record.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error(
        "container with id exists: {0} (a create of it did not finish: `delete --force {0}` removes what it left)"
    )]
    Leftover(String),
    #[error("unsafe --root: {0}")]
    UnsafeRoot(String),
    #[error("invalid id format: {0}")]
    InvalidId(String),
    #[error("container id cannot be empty")]
    EmptyId,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl ContainerError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ContainerError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ContainerError>;
