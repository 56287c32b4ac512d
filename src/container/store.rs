//! The store under `--root`: one directory per container, an id check that
//! keeps ids from naming anything outside it, and a per-container lock so
//! concurrent start/kill/delete on one id are serialized.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag, open};
use nix::sys::stat::Mode;

use super::{Container, ContainerError, Result, State, status};
use crate::cgroups::{FsManager, Manager};

pub const EXEC_FIFO: &str = "exec.fifo";

/// runc's id rule: `^[\w+\-.]+$`, and not "." or "..".
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(ContainerError::EmptyId);
    }
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if !ok || id == "." || id == ".." || id.len() > 1024 {
        return Err(ContainerError::InvalidId(id.to_string()));
    }
    Ok(())
}

/// An exclusive lock on a container directory, released on drop.
pub struct Lock {
    _flock: Flock<OwnedFd>,
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: &str) -> Store {
        Store {
            root: PathBuf::from(root),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make the container's directory; fails if the id is taken. Returns
    /// the directory locked.
    pub fn create_dir(&self, id: &str) -> Result<(PathBuf, Lock)> {
        validate_id(id)?;
        let mut b = fs::DirBuilder::new();
        b.mode(0o711);
        if let Err(e) = b.create(&self.root)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            b.recursive(true);
            b.create(&self.root)
                .map_err(|e| ContainerError::io("mkdir", &self.root, e))?;
        }
        let dir = self.dir(id);
        b.recursive(false);
        b.create(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ContainerError::Exists(id.to_string())
            } else {
                ContainerError::io("mkdir", &dir, e)
            }
        })?;
        let lock = lock_dir(&dir)?;
        Ok((dir, lock))
    }

    /// Lock a container's directory (waiting for a concurrent command).
    pub fn lock(&self, id: &str) -> Result<Lock> {
        validate_id(id)?;
        lock_dir(&self.dir(id))
    }

    /// Load a container and derive its status.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.dir(id);
        let state = match State::load(&dir) {
            Ok(s) => s,
            // A directory without state.json is a create still in progress.
            Err(ContainerError::NotExist) if dir.is_dir() => {
                return Ok(Container {
                    state: State::creating(id),
                    status: status::Status::Creating,
                    dir,
                });
            }
            Err(e) => return Err(e),
        };
        let status = status::derive(&dir, state.pid, state.start_time, || {
            FsManager::from_paths(state.cgroup.clone()).is_frozen()
        });
        Ok(Container { dir, state, status })
    }

    /// Ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ContainerError::io("read", &self.root, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(dir: &Path) -> Result<Lock> {
    let fd = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        if e == nix::errno::Errno::ENOENT {
            ContainerError::NotExist
        } else {
            ContainerError::io("open", dir, e.into())
        }
    })?;
    let flock = Flock::lock(fd, FlockArg::LockExclusive)
        .map_err(|(_, e)| ContainerError::io("lock", dir, e.into()))?;
    let _ = flock.as_fd();
    Ok(Lock { _flock: flock })
}

impl State {
    fn creating(id: &str) -> State {
        State {
            id: id.to_string(),
            pid: 0,
            start_time: 0,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            created: String::new(),
            owner: String::new(),
            annotations: None,
            cgroup: Default::default(),
            own_pid_ns: false,
            intel_rdt: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "abc-123", "A_b.c+d", "x..y"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
