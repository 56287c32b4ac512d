//! state.json: what hull must remember between commands, written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ContainerError, Result};
use crate::cgroups::CgroupPaths;

pub const STATE_FILE: &str = "state.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Pid of the container's init process in hull's pid namespace.
    pub pid: i32,
    /// Start time of that process (field 22 of /proc/PID/stat): a pid that
    /// was reused by another process never matches it.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time, as runc reports it.
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub cgroup: CgroupPaths,
    /// The container has its own pid namespace: killing its init kills all.
    #[serde(default)]
    pub own_pid_ns: bool,
    /// resctrl groups to remove on delete (linux.intelRdt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<crate::intelrdt::RdtState>,
}

impl State {
    pub fn load(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        let data = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ContainerError::NotExist
            } else {
                ContainerError::io("read", &path, e)
            }
        })?;
        serde_json::from_slice(&data).map_err(|source| ContainerError::Corrupt { path, source })
    }

    /// Write to a temporary file, fsync it, rename over state.json: readers
    /// see the old or the new state, never a torn one.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE_FILE);
        let data = serde_json::to_vec(self).map_err(|source| ContainerError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| ContainerError::io("create", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| ContainerError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| ContainerError::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ContainerError::io("rename", &path, e))
    }
}
