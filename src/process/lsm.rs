//! LSM labels for the execve that starts the container's program
//! (process.apparmorProfile, process.selinuxLabel). The attribute file is
//! per task and only the task itself may write it, so it is opened by the
//! very process that will execve (after any pid-namespace fork), through a
//! handle on the host's procfs taken before the namespaces changed: never
//! through a /proc the container could have shaped.

use std::os::fd::OwnedFd;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;

use crate::error::{Ctx, Result};

/// The opened attribute files and what to write into each.
pub struct LsmExec {
    labels: Vec<(std::fs::File, String)>,
}

fn open_attr(proc: &OwnedFd, path: &str) -> Result<std::fs::File> {
    openat(
        proc,
        path,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map(std::fs::File::from)
    .ctx(|| format!("opening /proc/{path}"))
}

impl LsmExec {
    /// `proc` is the host's procfs; "self" there is this process.
    pub fn open(proc: &OwnedFd, process: &Process) -> Result<LsmExec> {
        let mut labels = Vec::new();
        if let Some(p) = process
            .apparmor_profile()
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            let f = open_attr(proc, "self/attr/apparmor/exec")
                .or_else(|_| open_attr(proc, "self/attr/exec"))?;
            labels.push((f, format!("exec {p}")));
        }
        if let Some(l) = process.selinux_label().as_deref().filter(|s| !s.is_empty()) {
            labels.push((open_attr(proc, "self/attr/exec")?, l.to_string()));
        }
        Ok(LsmExec { labels })
    }

    /// Set the labels the next execve switches to.
    pub fn apply(self) -> Result<()> {
        use std::io::Write;
        for (mut f, v) in self.labels {
            f.write_all(v.as_bytes())
                .ctx(|| format!("setting exec label {v:?}"))?;
        }
        Ok(())
    }
}
