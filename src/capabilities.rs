//! Capabilities: the spec's names turned into the kernel's sets, and the
//! sets applied in the order the kernel allows (bounding first, while we
//! still hold CAP_SETPCAP; effective always a subset of permitted).

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Result, StageError};

pub fn to_caps(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<caps::Capability>().ok())
        .collect()
}

/// Narrow the bounding set to `bounding`; `current` is the set as read
/// (read once: each capability takes a prctl to read).
pub fn drop_bounding(bounding: &Option<Capabilities>, current: &CapsHashSet) -> Result<()> {
    let keep = to_caps(bounding);
    for &cap in current {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                StageError::new(format!("dropping {cap} from the bounding set: {e}"))
            })?;
        }
    }
    Ok(())
}

pub fn apply(c: &LinuxCapabilities, held: &CapsHashSet) -> Result<()> {
    let set = |which: CapSet, caps: CapsHashSet| {
        let caps: CapsHashSet = caps.intersection(held).copied().collect();
        caps::set(None, which, &caps)
            .map_err(|e| StageError::new(format!("setting {which:?} capabilities: {e}")))
    };
    // Effective must stay a subset of permitted at every step.
    set(CapSet::Effective, to_caps(c.effective()))?;
    set(CapSet::Inheritable, to_caps(c.inheritable()))?;
    set(CapSet::Permitted, to_caps(c.permitted()))?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| StageError::new(format!("clearing ambient capabilities: {e}")))?;
    for cap in to_caps(c.ambient()) {
        // An ambient cap needs to be permitted and inheritable; runc skips
        // (with a warning) the ones that are not.
        let _ = caps::raise(None, CapSet::Ambient, cap);
    }
    Ok(())
}
