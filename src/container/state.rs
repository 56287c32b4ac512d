//! state.json: what hull must remember between commands. `create` writes it
//! in steps, each *before* the thing it names exists (the cgroup
//! directories before mkdir, the init's pid right after clone), so a hull
//! killed at any point leaves `delete -f` a complete list of what to undo.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ContainerError, Result};
use crate::plan::CgroupPaths;

pub const STATE_FILE: &str = "state.json";
/// The config.json `create` saw, kept for `exec` and the hooks of later
/// commands: the bundle may change or vanish after create.
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// False until the init reported ready: a create in progress, or one
    /// that died half-way.
    #[serde(default)]
    pub ready: bool,
    /// Pid of the container's init process in hull's pid namespace (before
    /// ready it may be the intermediate stage); 0 before the clone.
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
    /// The container has a pid namespace of its own: killing its init
    /// kills every process in it.
    #[serde(default)]
    pub own_pid_ns: bool,
    /// resctrl groups to remove on delete (linux.intelRdt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<crate::intelrdt::RdtState>,
    /// `create --no-new-keyring`: exec'd processes keep the caller's keyring
    /// too.
    #[serde(default)]
    pub no_new_keyring: bool,
    /// Set for a container without a mount namespace of its own, whose
    /// mounts hull makes in the host's namespace under the rootfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts: Option<HostMounts>,
    /// Which of the hooks run after create the saved config has: start,
    /// run and delete read and parse the config only for them. None in a
    /// record of an older hull: then they always read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_hooks: Option<LateHooks>,
    /// A restored container: CRIU put its processes in a time namespace
    /// of their own, which `exec` joins too (runc adds it to the config).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join_time_ns: bool,
}

/// The poststart and poststop hooks, present or not.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LateHooks {
    pub poststart: bool,
    pub poststop: bool,
}

/// What a container without its own mount namespace mounts on the host.
/// Once create is done these are exactly the mounts `made`; for a create
/// that never got that far, those under `under` that appeared meanwhile.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostMounts {
    pub under: PathBuf,
    /// Mount ids already present under `under` before create: not ours.
    pub before: Vec<u64>,
    /// The mounts create made, as found when the init was ready: whatever
    /// appears under the rootfs later (a host mount, or the container's own
    /// doing) is not hull's to unmount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made: Option<Vec<u64>>,
}

impl State {
    /// The first record of a container: nothing exists yet but the
    /// directory it is written into.
    pub fn creating(id: &str, bundle: &Path, rootfs: &Path) -> State {
        State {
            id: id.to_string(),
            ready: false,
            pid: 0,
            start_time: 0,
            bundle: bundle.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            created: crate::logging::rfc3339_nanos_now(),
            owner: String::new(),
            annotations: None,
            cgroup: Default::default(),
            own_pid_ns: false,
            intel_rdt: None,
            no_new_keyring: false,
            host_mounts: None,
            late_hooks: None,
            join_time_ns: false,
        }
    }

    /// The state a hook gets on stdin, with `status` and `pid` as the
    /// phase has them.
    pub fn hook_state(&self, status: &str, pid: i32) -> Vec<u8> {
        let s = crate::hooks::State {
            oci_version: crate::spec::OCI_VERSION,
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: self.annotations.as_ref().filter(|a| !a.is_empty()),
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }

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

    /// Write to a temporary file and rename it over state.json: readers see
    /// the old or the new state, never a torn one. No fsync: the record
    /// must survive hull being killed, which the page cache does; a power
    /// loss takes every container with it (and --root lives on tmpfs).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).map_err(|source| ContainerError::Corrupt {
            path: dir.join(STATE_FILE),
            source,
        })?;
        write_atomic(dir, STATE_FILE, &data)
    }
}

/// Keep the config.json `create` saw beside the state. Written once, into
/// the new directory, before the first state.json: nothing reads it before
/// that exists, so it needs no temporary file and rename.
pub fn write_config(dir: &Path, raw: &[u8]) -> Result<()> {
    write_new(&dir.join(CONFIG_FILE), raw)
}

/// The config.json `create` saw.
pub fn read_config(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(CONFIG_FILE);
    std::fs::read(&path).map_err(|e| ContainerError::io("read", &path, e))
}

/// Write `name` in `dir` through a fresh temporary file swapped in with
/// RENAME_EXCHANGE; the file it replaces is left under the temporary name
/// and unlinked at the next save (a reader still holding it keeps it
/// whole). On ext4 a rename over the old file (or reusing it truncated)
/// makes the kernel allocate and write out the new data at once
/// (auto_da_alloc): ~0.4 ms a save here, against ~0.1 ms this way. Writers
/// hold the container's lock.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ContainerError::io("unlink", &tmp, e)),
    }
    write_new(&tmp, data)?;
    match renameat2(
        AT_FDCWD,
        &tmp,
        AT_FDCWD,
        &path,
        RenameFlags::RENAME_EXCHANGE,
    ) {
        Ok(()) => Ok(()),
        // The first save, or a filesystem that cannot swap.
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => {
            std::fs::rename(&tmp, &path).map_err(|e| ContainerError::io("rename", &path, e))
        }
        Err(e) => Err(ContainerError::io("rename", &path, e.into())),
    }
}

/// Create `path` (0600, never through a symlink; it must not exist yet)
/// and write `data`.
fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ContainerError::io("create", path, e))?;
    f.write_all(data)
        .map_err(|e| ContainerError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn every_save_is_whole_and_an_open_reader_keeps_its_version() {
        let dir = std::env::temp_dir().join(format!("hull-state-save-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("scratch dir");
        let file = dir.join("state.json");
        super::write_atomic(&dir, "state.json", b"one").expect("first save");
        let mut reader = std::fs::File::open(&file).expect("open");
        for v in ["two", "three", "four"] {
            super::write_atomic(&dir, "state.json", v.as_bytes()).expect("save");
            assert_eq!(std::fs::read(&file).expect("read"), v.as_bytes());
        }
        let mut held = String::new();
        reader.read_to_string(&mut held).expect("read held");
        assert_eq!(held, "one");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
