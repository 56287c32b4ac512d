//! OOM notifications for `events`: v1 registers an eventfd on
//! memory.oom_control through cgroup.event_control; v2 watches memory.events
//! with inotify and reports each increase of its oom_kill counter. Both give
//! one fd to poll, so `events` stays single-threaded.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::files;
use super::{CgroupError, Result};

enum Kind {
    V1 {
        efd: EventFd,
        /// Kept open: the registration lives as long as this fd.
        _oom_control: std::fs::File,
        dir: PathBuf,
    },
    V2 {
        ino: Inotify,
        memory_events: WatchDescriptor,
        dir: PathBuf,
        last: u64,
    },
    /// No memory controller: nothing will ever be reported.
    Nothing,
}

pub struct OomWatch(Kind);

/// What one readable fd meant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OomNews {
    pub ooms: u64,
    /// The cgroup is gone or empty: no more events will come.
    pub ended: bool,
}

impl OomWatch {
    pub fn nothing() -> OomWatch {
        OomWatch(Kind::Nothing)
    }

    pub fn v1(dir: &Path) -> Result<OomWatch> {
        let ctl = dir.join("memory.oom_control");
        let oom_control =
            std::fs::File::open(&ctl).map_err(|e| CgroupError::io("open", &ctl, e))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(|errno| CgroupError::Io {
            op: "eventfd",
            path: ctl.clone(),
            errno,
        })?;
        use std::os::fd::AsRawFd;
        files::write(
            dir,
            "cgroup.event_control",
            &format!("{} {}", efd.as_fd().as_raw_fd(), oom_control.as_raw_fd()),
        )?;
        Ok(OomWatch(Kind::V1 {
            efd,
            _oom_control: oom_control,
            dir: dir.to_path_buf(),
        }))
    }

    pub fn v2(dir: &Path) -> Result<OomWatch> {
        let io = |errno, p: &Path| CgroupError::Io {
            op: "inotify",
            path: p.to_path_buf(),
            errno,
        };
        let ino = Inotify::init(InitFlags::IN_CLOEXEC).map_err(|e| io(e, dir))?;
        let mem = dir.join("memory.events");
        let memory_events = ino
            .add_watch(&mem, AddWatchFlags::IN_MODIFY)
            .map_err(|e| io(e, &mem))?;
        let cg = dir.join("cgroup.events");
        ino.add_watch(&cg, AddWatchFlags::IN_MODIFY)
            .map_err(|e| io(e, &cg))?;
        let last = files::read_key(dir, "memory.events", "oom_kill")?;
        Ok(OomWatch(Kind::V2 {
            ino,
            memory_events,
            dir: dir.to_path_buf(),
            last,
        }))
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.0 {
            Kind::V1 { efd, .. } => Some(efd.as_fd()),
            Kind::V2 { ino, .. } => Some(ino.as_fd()),
            Kind::Nothing => None,
        }
    }

    /// Consume what made the fd readable.
    pub fn read(&mut self) -> Result<OomNews> {
        match &mut self.0 {
            Kind::V1 { efd, dir, .. } => {
                let n = efd.read().unwrap_or(0);
                // The eventfd also fires when the cgroup is removed.
                if !dir.join("cgroup.event_control").exists() {
                    return Ok(OomNews {
                        ooms: 0,
                        ended: true,
                    });
                }
                Ok(OomNews {
                    ooms: n,
                    ended: false,
                })
            }
            Kind::V2 {
                ino,
                memory_events,
                dir,
                last,
            } => {
                let events = ino.read_events().unwrap_or_default();
                let mut news = OomNews::default();
                if events.iter().any(|e| e.wd == *memory_events)
                    && let Ok(n) = files::read_key(dir, "memory.events", "oom_kill")
                {
                    news.ooms = n.saturating_sub(*last);
                    *last = n;
                }
                match files::read_key(dir, "cgroup.events", "populated") {
                    Ok(0) | Err(_) => news.ended = true,
                    Ok(_) => {}
                }
                Ok(news)
            }
            Kind::Nothing => Ok(OomNews::default()),
        }
    }
}
