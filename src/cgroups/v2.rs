//! cgroup v2: one unified hierarchy; controllers must be enabled in every
//! ancestor's cgroup.subtree_control before their files appear.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, Result};

/// Resource fields hull does not drive yet: refuse them rather than run a
/// container without the limits its caller asked for.
pub(super) fn reject_unsupported(res: &LinuxResources) -> Result<()> {
    let set = [
        ("memory", res.memory().is_some()),
        ("cpu", res.cpu().is_some()),
        ("pids", res.pids().is_some()),
        ("blockIO", res.block_io().is_some()),
        (
            "hugepageLimits",
            res.hugepage_limits()
                .as_ref()
                .is_some_and(|h| !h.is_empty()),
        ),
        ("network", res.network().is_some()),
        ("rdma", res.rdma().as_ref().is_some_and(|r| !r.is_empty())),
        (
            "unified",
            res.unified().as_ref().is_some_and(|u| !u.is_empty()),
        ),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((name, _)) => Err(CgroupError::Unsupported(format!("linux.resources.{name}"))),
        None => Ok(()),
    }
}

/// Apply `res` on a pure v2 host.
pub(super) fn apply(
    _dir: &Path,
    res: &LinuxResources,
    extra_devices: &[LinuxDeviceCgroup],
) -> Result<()> {
    reject_unsupported(res)?;
    let devices = res.devices().as_deref().unwrap_or(&[]);
    if !devices.is_empty() || !extra_devices.is_empty() {
        return Err(CgroupError::Unsupported(
            "linux.resources.devices on cgroup v2 (eBPF)".into(),
        ));
    }
    Ok(())
}

/// Apply the controllers a hybrid host binds to v2 (hugetlb here).
pub(super) fn apply_hybrid(_dir: &Path, _res: &LinuxResources) -> Result<()> {
    Ok(())
}
