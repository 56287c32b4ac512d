//! What the parent hands a child (the init plan, the exec plan), and the
//! pure readers of config.json that both sides share. Nothing here makes a syscall that changes the host or
//! imports a stage (launch, init, rootfs, cgroups, process): the stages
//! import this.

pub mod cgroup_path;
pub mod cpu_list;
pub mod devices;
pub mod idmap;
pub mod mount_options;
pub mod mounts;
pub mod systemd_unit;

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
    /// Wait for `start` to connect to this listening socket; None for
    /// `run`, which starts at once.
    pub start_socket_fd: Option<RawFd>,
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
    /// hull itself proxies the pty (foreground `run -t`): clear ONLCR.
    pub raw_output: bool,
    /// linux.mountLabel, when SELinux is on to apply it.
    pub mount_label: Option<String>,
    /// Once in its final namespaces, the init must stop and let the parent
    /// move network devices in and build id-mapped mount sources.
    pub parent_setup: bool,
    /// Inherited fd of the socket connected to the seccomp agent
    /// (linux.seccomp.listenerPath), for a profile with NOTIFY rules.
    pub seccomp_agent_fd: Option<RawFd>,
    /// There are hooks before the exec (prestart, createRuntime,
    /// createContainer, startContainer): before pivot_root the init stops
    /// for the parent to run its own and to learn the state they get.
    pub hooks: bool,
    /// cgroup v1 directories made while the init stage exec'd: right after
    /// the plan their `tasks` files arrive (fds, in this order), and the
    /// init moves itself in before anything else.
    #[serde(default)]
    pub cgroup_joins: Vec<PathBuf>,
}

/// Everything the exec stage needs, sent once by `hull exec`: which of the
/// container init's namespaces to join (through its pidfd), and the
/// container's config with `process` set to the process to start.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecPlan {
    pub id: String,
    /// The container's config.json as `create` saw it, with the exec'd
    /// process in place of the container's own.
    pub config: String,
    /// Inherited pidfd of the container's init.
    pub init_pidfd: RawFd,
    /// Inherited O_PATH fd of the init's root (/proc/PID/root, opened by
    /// the parent): the stage chroots there, whatever mount namespace.
    pub init_root: RawFd,
    /// CLONE_NEW* flags of the init's namespaces that differ from hull's.
    /// With CLONE_NEWPID the stage forks (CLONE_PARENT: the process is
    /// hull's child) once it is in all of them.
    pub join: u64,
    /// Inherited fd of the connected console socket, if a pty is wanted.
    pub console_fd: Option<RawFd>,
    /// hull itself proxies the pty (foreground `exec -t`): clear ONLCR.
    pub raw_output: bool,
    /// fds 3.. that pass into the process (LISTEN_FDS + --preserve-fds).
    pub extra_fds: u32,
    pub extra_env: Vec<String>,
    /// Whether the container's user namespace allows setgroups(2), read
    /// by the parent from the host's /proc.
    pub setgroups: bool,
    /// `create --no-new-keyring` was given.
    pub no_new_keyring: bool,
    /// The connected seccomp agent socket, for a profile with NOTIFY
    /// rules (the stage asks for its message once its pid is final).
    pub seccomp_agent_fd: Option<RawFd>,
}
