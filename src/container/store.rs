//! The store under `--root`: one directory per container, an id check that
//! keeps ids from naming anything outside it, and a per-container lock so
//! concurrent start/kill/delete on one id are serialized.

use std::cell::OnceCell;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag, open};
use nix::sys::stat::Mode;

use super::error::{ContainerError, Result};
use super::handle::Container;
use super::state::State;
use super::status;
use crate::cgroups::{FsManager, Manager};

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
    flock: Flock<OwnedFd>,
}

impl Lock {
    /// The locked directory, open.
    pub fn dir(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&*self.flock)
    }
}

pub struct Store {
    root: PathBuf,
    /// The outcome of checking an existing root, done once per command.
    checked: OnceCell<std::result::Result<(), String>>,
}

impl Store {
    pub fn new(root: &str) -> Store {
        Store {
            root: PathBuf::from(root),
            checked: OnceCell::new(),
        }
    }

    /// An existing --root must be a directory owned by us that nobody else
    /// may write: whoever can plant a state.json there chooses which pids
    /// hull signals and which cgroups it removes. A missing root is fine
    /// (create makes it; other verbs then find no container).
    fn check_root(&self) -> Result<()> {
        let verdict = self.checked.get_or_init(|| {
            let md = match fs::metadata(&self.root) {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(format!("{}: {e}", self.root.display())),
            };
            let euid = nix::unistd::geteuid().as_raw();
            if !md.is_dir() {
                Err(format!("{} is not a directory", self.root.display()))
            } else if md.uid() != euid {
                Err(format!(
                    "{} is owned by uid {}, not by us (uid {euid})",
                    self.root.display(),
                    md.uid()
                ))
            } else if md.mode() & 0o022 != 0 {
                Err(format!(
                    "{} is writable by group or others (mode {:o})",
                    self.root.display(),
                    md.mode() & 0o7777
                ))
            } else {
                Ok(())
            }
        });
        verdict.clone().map_err(ContainerError::UnsafeRoot)
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
        self.check_root()?;
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
                self.exists_error(id)
            } else {
                ContainerError::io("mkdir", &dir, e)
            }
        })?;
        let lock = lock_dir(&dir)?;
        Ok((dir, lock))
    }

    /// The id is taken: by a container, or by what a create that did not
    /// finish left behind.
    fn exists_error(&self, id: &str) -> ContainerError {
        let unfinished = self
            .load(id)
            .is_ok_and(|c| c.status == status::Status::Creating);
        if unfinished {
            ContainerError::Leftover(id.to_string())
        } else {
            ContainerError::Exists(id.to_string())
        }
    }

    /// Lock a container's directory (waiting for a concurrent command).
    pub fn lock(&self, id: &str) -> Result<Lock> {
        validate_id(id)?;
        self.check_root()?;
        lock_dir(&self.dir(id))
    }

    /// Load a container and derive its status.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        self.check_root()?;
        let dir = self.dir(id);
        let state = match State::load(&dir) {
            Ok(s) => s,
            // A directory without state.json: a create that has not
            // written its first record yet (it holds nothing else).
            Err(ContainerError::NotExist) if dir.is_dir() => {
                return Ok(Container {
                    state: State::creating(id, Path::new(""), Path::new("")),
                    status: status::Status::Creating,
                    dir,
                });
            }
            Err(e) => return Err(e),
        };
        let status = status::derive(&dir, &state, || {
            FsManager::from_paths(state.cgroup.clone()).is_frozen()
        });
        Ok(Container { dir, state, status })
    }

    /// Ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        self.check_root()?;
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

/// Lock `dir`. A command that waited for the lock checks that the path
/// still names the directory it locked: a delete and a new create of the
/// same id in between would otherwise leave it holding the lock of a
/// directory that no longer exists, unserialized with the new container.
fn lock_dir(dir: &Path) -> Result<Lock> {
    for _ in 0..100 {
        let fd = open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
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
        let held = nix::sys::stat::fstat(&*flock)
            .map_err(|e| ContainerError::io("stat", dir, e.into()))?;
        match fs::symlink_metadata(dir) {
            Ok(now) if now.dev() == held.st_dev && now.ino() == held.st_ino => {
                return Ok(Lock { flock });
            }
            // Replaced while we waited: lock the new one.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotExist);
            }
            Err(e) => return Err(ContainerError::io("stat", dir, e)),
        }
    }
    Err(ContainerError::io(
        "lock",
        dir,
        std::io::Error::other("the directory kept being replaced"),
    ))
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
