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
    // The cause is part of the message and not a `source` too: a chain
    // printed whole (`{:#}`) would say it twice.
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("parsing {path}: {cause}")]
    Parse {
        path: PathBuf,
        cause: serde_json::Error,
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
    let dir = std::path::absolute(dir).map_err(|cause| SpecError::Read {
        path: dir.into(),
        cause,
    })?;
    let path = dir.join("config.json");
    let raw = std::fs::read(&path).map_err(|cause| {
        if cause.kind() == std::io::ErrorKind::NotFound {
            SpecError::NotFound("config.json".into())
        } else {
            SpecError::Read {
                path: path.clone(),
                cause,
            }
        }
    })?;
    let (spec, raw) = match parse(&raw, &path) {
        Ok(spec) => (spec, raw),
        // runc ignores (with a warning) capability names it does not know,
        // so a config written for a newer kernel still runs.
        Err(e) => match without_unknown_caps(&raw) {
            Some((spec, cleaned)) => (spec, cleaned),
            None => return Err(e),
        },
    };
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
    serde_json::from_slice(raw).map_err(|cause| SpecError::Parse {
        path: path.to_path_buf(),
        cause,
    })
}

/// Drop unknown capability names from process.capabilities, warning about
/// each; Some only if that makes the config parse.
fn without_unknown_caps(raw: &[u8]) -> Option<(Spec, Vec<u8>)> {
    let mut v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let caps = v
        .get_mut("process")?
        .get_mut("capabilities")?
        .as_object_mut()?;
    let mut unknown = Vec::new();
    for set in caps.values_mut() {
        if let Some(list) = set.as_array_mut() {
            list.retain(|name| {
                let known =
                    serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
                if !known {
                    unknown.push(name.as_str().unwrap_or("?").to_string());
                }
                known
            });
        }
    }
    if unknown.is_empty() {
        return None;
    }
    unknown.sort();
    unknown.dedup();
    crate::warn!(
        "ignoring unknown or unavailable capabilities: [{}]",
        unknown.join(" ")
    );
    let cleaned = serde_json::to_vec(&v).ok()?;
    let spec = serde_json::from_slice(&cleaned).ok()?;
    Some((spec, cleaned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_capabilities_are_dropped() {
        let mut v = default_spec(false);
        v["process"]["capabilities"]["bounding"] =
            serde_json::json!(["CAP_KILL", "CAP_NOT_A_THING"]);
        let raw = serde_json::to_vec(&v).unwrap();
        assert!(parse(&raw, Path::new("config.json")).is_err());
        let (spec, cleaned) = without_unknown_caps(&raw).unwrap();
        let b = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap();
        assert_eq!(b.len(), 1);
        assert!(!String::from_utf8(cleaned).unwrap().contains("NOT_A_THING"));
    }

    #[test]
    fn other_parse_errors_stay_errors() {
        assert!(without_unknown_caps(b"{\"process\": 1}").is_none());
    }
}
