//! A container as a command sees it: its directory, its record, and the
//! status derived from the live process; and the OCI state document
//! `state` and `list` print.

use std::path::PathBuf;

use super::state::State;
use super::status::Status;

/// A container loaded from the store, with its live status.
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
    pub status: Status,
}

impl Container {
    /// The config.json `create` saw, parsed.
    pub fn saved_spec(&self) -> super::Result<oci_spec::runtime::Spec> {
        let raw = super::state::read_config(&self.dir)?;
        serde_json::from_slice(&raw).map_err(|source| super::ContainerError::Corrupt {
            path: self.dir.join(super::state::CONFIG_FILE),
            source,
        })
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
