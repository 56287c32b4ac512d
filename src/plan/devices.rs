//! What linux.devices implies beyond the nodes themselves: the cgroup
//! rules that allow them, and whether /dev is the container's own tmpfs or
//! a bind from the host that hull must leave alone.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, Spec};

/// Cgroup allow rules implied by linux.devices (runc allows each node).
pub fn cgroup_rules(spec: &Spec) -> Vec<LinuxDeviceCgroup> {
    let devs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    // A fifo needs no device permission: only block and char nodes get rules.
    devs.iter()
        .filter(|d| !matches!(d.typ(), LinuxDeviceType::P | LinuxDeviceType::A))
        .filter_map(|d| {
            oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(d.typ())
                .major(d.major())
                .minor(d.minor())
                .access("rwm")
                .build()
                .ok()
        })
        .collect()
}

/// Whether hull owns /dev (a fresh tmpfs) and must populate it, or /dev is
/// a bind mount from the host and must be left alone.
pub fn dev_is_bound(spec: &Spec) -> bool {
    spec.mounts().as_deref().unwrap_or(&[]).iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}
