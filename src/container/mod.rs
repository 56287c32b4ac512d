//! A container as hull remembers it: its directory under `--root`, the
//! state.json in it, and the status derived from the live process.

mod ops;
mod state;
mod status;
mod store;

pub use ops::parse_signal;
pub use state::State;
pub use status::{Status, proc_start_time};
pub use store::{Lock, Store, validate_id};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with id exists: {0}")]
    Exists(String),
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

/// A container loaded from the store, with its live status.
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
    pub status: Status,
}

impl Container {
    pub fn exec_fifo(&self) -> PathBuf {
        self.dir.join(store::EXEC_FIFO)
    }

    /// The OCI state document, with runc's extra fields, in runc's order.
    pub fn oci_state(&self) -> OciState<'_> {
        let s = &self.state;
        OciState {
            oci_version: crate::spec::OCI_VERSION,
            id: &s.id,
            pid: if matches!(self.status, Status::Stopped | Status::Creating) {
                0
            } else {
                s.pid
            },
            status: self.status.as_str(),
            bundle: &s.bundle,
            rootfs: &s.rootfs,
            created: &s.created,
            owner: &s.owner,
            annotations: s.annotations.as_ref().filter(|a| !a.is_empty()),
        }
    }
}

#[derive(serde::Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a std::path::Path,
    pub rootfs: &'a std::path::Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::BTreeMap<String, String>>,
}
