//! What this host can do for a container, checked before anything is
//! created and reported by `features`: LSMs present, capabilities hull
//! holds and so can grant.

use caps::CapSet;
use oci_spec::runtime::{LinuxCapabilities, Spec};

/// Whether the kernel has AppArmor enabled.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuse an LSM label the host cannot apply (checked in the parent, before
/// anything is created).
pub fn check_lsm(spec: &Spec) -> std::result::Result<(), String> {
    let p = spec.process().as_ref();
    if p.and_then(|p| p.apparmor_profile().as_deref())
        .is_some_and(|s| !s.is_empty())
        && !apparmor_enabled()
    {
        return Err(
            "process.apparmorProfile is set but AppArmor is not enabled on this host".into(),
        );
    }
    let labels = [
        (
            "process.selinuxLabel",
            p.and_then(|p| p.selinux_label().as_deref()),
        ),
        (
            "linux.mountLabel",
            spec.linux()
                .as_ref()
                .and_then(|l| l.mount_label().as_deref()),
        ),
    ];
    match labels
        .iter()
        .find(|(_, l)| l.is_some_and(|s| !s.is_empty()))
    {
        Some((field, _)) if !selinux_enabled() => Err(format!(
            "{field} is set but SELinux is not enabled on this host"
        )),
        _ => Ok(()),
    }
}

/// Requested capabilities hull cannot grant (not in its bounding set: the
/// host withholds them). runtime-spec 1.3, like runc, says to leave them
/// out with a warning rather than fail; the parent warns, once.
pub fn unavailable_caps(c: &LinuxCapabilities) -> Vec<String> {
    let held = caps::read(None, CapSet::Bounding).unwrap_or_default();
    let mut missing: Vec<String> = [
        c.bounding(),
        c.effective(),
        c.inheritable(),
        c.permitted(),
        c.ambient(),
    ]
    .into_iter()
    .flat_map(crate::capabilities::to_caps)
    .filter(|cap| !held.contains(cap))
    .map(|cap| cap.to_string())
    .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// Whether systemd is PID 1 here, as runc and sd_booted(3) tell: it made
/// /run/systemd/system (a directory).
pub fn systemd_running() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}
