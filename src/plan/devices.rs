//! What linux.devices implies beyond the nodes themselves: whether /dev is
//! the container's own tmpfs or a bind from the host that hull must leave
//! alone. (Access to the nodes is linux.resources.devices' alone.)

use std::path::Path;

use oci_spec::runtime::Spec;

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
