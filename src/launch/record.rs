//! The record of a container being created: its locked directory and the
//! state.json in it, saved before each thing it names is made. On failure
//! `abandon` hands it to the container's one teardown.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::container::{Lock, State, Store};

pub struct Record {
    /// The store's root (--root): scratch space hull owns.
    pub root: PathBuf,
    pub dir: PathBuf,
    pub state: State,
    lock: Lock,
}

impl Record {
    /// Make the container's directory (locked) and write the config.json
    /// copy and the first state, which already names the cgroups to come.
    pub fn begin(store: &Store, state: State, config: &[u8]) -> Result<Record> {
        let (dir, lock) = store.create_dir(&state.id)?;
        let rec = Record {
            root: store.root().to_path_buf(),
            dir,
            state,
            lock,
        };
        let written = crate::container::write_config(&rec.dir, config)
            .and_then(|()| rec.state.save(&rec.dir));
        if let Err(e) = written {
            rec.abandon();
            return Err(e).context("recording the container");
        }
        Ok(rec)
    }

    /// The container directory, open (paths through /proc/self/fd/N stay
    /// short whatever --root is: unix socket paths are limited to 108).
    pub fn dir_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lock.dir()
    }

    pub fn save(&self) -> Result<()> {
        self.state
            .save(&self.dir)
            .context("recording the container")
    }

    /// Undo everything the record names. A failure here leaves the record
    /// for `delete --force`, and is said, not hidden.
    pub fn abandon(self) {
        if let Err(e) = crate::container::destroy(&self.dir, &self.state) {
            crate::warn!(
                "cleaning up after the failed create: {e} (`delete --force {}` retries)",
                self.state.id
            );
        }
        drop(self.lock);
    }

    /// The container is made: keep the lock for the caller.
    pub fn into_lock(self) -> Lock {
        self.lock
    }
}
