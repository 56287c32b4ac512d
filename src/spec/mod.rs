//! config.json: loading it from a bundle, checking it before anything is
//! created, and the default `hull spec` writes.

mod default;
mod validate;

pub use default::default_spec;
pub use validate::validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// The runtime-spec version hull implements.
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("JSON specification file {0} not found")]
    NotFound(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, SpecError>;

/// A loaded bundle: the parsed spec, the raw JSON (handed to the init stage
/// as is, so it is never re-serialized) and the absolute rootfs.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub raw: Vec<u8>,
    pub rootfs: PathBuf,
}

pub fn load_bundle(dir: &str) -> Result<Bundle> {
    let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
        path: dir.into(),
        source,
    })?;
    let path = dir.join("config.json");
    let raw = std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SpecError::NotFound("config.json".into())
        } else {
            SpecError::Read {
                path: path.clone(),
                source,
            }
        }
    })?;
    let spec = parse(&raw, &path)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root must be specified".into()))?;
    let rootfs = dir.join(root.path());
    let rootfs = rootfs
        .canonicalize()
        .map_err(|_| SpecError::Invalid(format!("rootfs ({}) does not exist", rootfs.display())))?;
    Ok(Bundle {
        dir,
        spec,
        raw,
        rootfs,
    })
}

pub fn parse(raw: &[u8], path: &Path) -> Result<Spec> {
    serde_json::from_slice(raw).map_err(|source| SpecError::Parse {
        path: path.to_path_buf(),
        source,
    })
}
