//! What the parent hands a child, and the pure readers of config.json that
//! both sides share. Nothing here makes a syscall that changes the host or
//! imports a stage (launch, init, rootfs, cgroups, process): the stages
//! import this.

pub mod cgroup_path;
pub mod devices;
pub mod idmap;
pub mod mount_options;
pub mod mounts;

use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use cgroup_path::CgroupPaths;

use crate::namespaces::NsPlan;

/// Everything the init stage needs, sent once by the parent. Its arrival is
/// also the signal that the child's cgroups and id maps are in place.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitPlan {
    pub id: String,
    /// config.json exactly as read from the bundle.
    pub config: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Block on this fifo until `start`; None for `run`, which starts at once.
    pub exec_fifo_fd: Option<RawFd>,
    pub ns: NsPlan,
    pub cgroup: CgroupPaths,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3.. that pass into the container (LISTEN_FDS + --preserve-fds).
    pub extra_fds: u32,
    /// Extra environment (LISTEN_FDS, LISTEN_PID).
    pub extra_env: Vec<String>,
    /// Inherited fd of the connected console socket, if a pty is wanted.
    pub console_fd: Option<RawFd>,
    /// linux.mountLabel, when SELinux is on to apply it.
    pub mount_label: Option<String>,
    /// Once in its final namespaces, the init must stop and let the parent
    /// move network devices in and build id-mapped mount sources.
    pub parent_setup: bool,
}
