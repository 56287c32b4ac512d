//! cgroup v1: one hierarchy per controller set; limits go into the
//! directory of the hierarchy that carries the controller.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, Result, devices};

pub(super) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    fs::write(&p, value).map_err(|e| CgroupError::io("write", &p, e))
}

/// A new v1 cpuset cgroup starts with empty cpus and mems and refuses tasks:
/// copy them from the parent, as runc does.
pub(super) fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let p = parent.join(f);
            let v = fs::read_to_string(&p).map_err(|e| CgroupError::io("read", &p, e))?;
            write(dir, f, v.trim())?;
        }
    }
    Ok(())
}

/// The container's directory in the hierarchy carrying `controller`.
pub(super) fn dir_of<'a>(dirs: &'a [(String, PathBuf)], controller: &str) -> Option<&'a Path> {
    dirs.iter()
        .find(|(c, _)| c.split(',').any(|x| x == controller))
        .map(|(_, p)| p.as_path())
}

/// Apply `res` to the v1 hierarchies (`dirs`: controllers → directory).
pub(super) fn apply(
    dirs: &[(String, PathBuf)],
    res: &LinuxResources,
    extra_devices: &[LinuxDeviceCgroup],
) -> Result<()> {
    super::v2::reject_unsupported(res)?;
    let spec_rules = res.devices().as_deref().unwrap_or(&[]);
    if !spec_rules.is_empty() || !extra_devices.is_empty() {
        let Some(dir) = dir_of(dirs, "devices") else {
            return Err(CgroupError::Invalid(
                "linux.resources.devices: no devices cgroup on this host".into(),
            ));
        };
        for rule in devices::rules(spec_rules, extra_devices) {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(dir, file, &rule.v1_text())?;
        }
    }
    Ok(())
}
