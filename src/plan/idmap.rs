//! Reading id-mapped bind mounts (`idmap`, `ridmap`, a mount's uidMappings
//! and gidMappings) from the spec. The parent builds the trees
//! (launch::idmap), the init stage attaches them (rootfs).

use oci_spec::runtime::{LinuxIdMapping, Mount};

use super::mount_options as options;

/// How one mount is id-mapped.
pub struct IdMapped<'a> {
    /// `ridmap`: submounts of an rbind are mapped too.
    pub recursive: bool,
    /// The mount's own mappings; None means the container's user namespace.
    pub maps: Option<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])>,
}

fn nonempty(m: &Option<Vec<LinuxIdMapping>>) -> Option<&[LinuxIdMapping]> {
    m.as_deref().filter(|m| !m.is_empty())
}

/// The id mapping a mount asks for, if any. Mappings without an `idmap`
/// option still map (non-recursively), as runc does: ignoring them would
/// silently show the container the wrong owners.
pub fn of(m: &Mount) -> Option<IdMapped<'_>> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let uid = nonempty(m.uid_mappings());
    let gid = nonempty(m.gid_mappings());
    if opts.idmap.is_none() && uid.is_none() && gid.is_none() {
        return None;
    }
    Some(IdMapped {
        recursive: opts.idmap == Some(true),
        maps: uid.zip(gid),
    })
}

/// Config checks, run before anything exists on the host.
pub fn validate(m: &Mount, has_userns: bool) -> Result<(), String> {
    let uid = nonempty(m.uid_mappings()).is_some();
    let gid = nonempty(m.gid_mappings()).is_some();
    let Some(id) = of(m) else {
        return Ok(());
    };
    let dest = m.destination().display();
    if uid != gid {
        return Err(format!(
            "mount {dest}: uidMappings and gidMappings must be given together"
        ));
    }
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    if m.typ().as_deref() != Some("bind") && opts.flags & libc::MS_BIND == 0 {
        return Err(format!(
            "mount {dest}: idmap and ridmap are only supported on bind mounts"
        ));
    }
    if id.maps.is_none() && !has_userns {
        return Err(format!(
            "mount {dest}: idmap without uidMappings and gidMappings needs the container to have a user namespace"
        ));
    }
    Ok(())
}
