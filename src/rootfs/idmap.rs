//! Id-mapped bind mounts (`idmap`, `ridmap`, a mount's uidMappings and
//! gidMappings). Only a process with CAP_SYS_ADMIN over the source
//! filesystem's user namespace may id-map a mount, and the init stage may
//! already be inside the container's user namespace: so the parent builds
//! each detached, id-mapped tree and hands its fd down; the init stage
//! attaches it like any other bind.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::options;

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

/// Indexes (into `mounts[]`) of the id-mapped mounts, in order.
pub fn indexes(spec: &Spec) -> Vec<usize> {
    spec.mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .filter(|(_, m)| of(m).is_some())
        .map(|(i, _)| i)
        .collect()
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

/// In the parent: a detached copy of the mount's source, id-mapped through
/// `userns`. Its other options are applied by the init stage on attach.
pub fn source_tree(src: &Path, m: &Mount, userns: &OwnedFd) -> anyhow::Result<OwnedFd> {
    use anyhow::Context;
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let recursive = of(m).is_some_and(|i| i.recursive);
    let mut flags = libc::OPEN_TREE_CLONE;
    if opts.flags & libc::MS_REC != 0 {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let path = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
        .with_context(|| format!("NUL byte in {}", src.display()))?;
    let tree = crate::sys::open_tree(libc::AT_FDCWD, &path, flags)
        .with_context(|| format!("open_tree {}", src.display()))?;
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    crate::sys::mount_setattr(
        tree.as_raw_fd(),
        c"",
        (libc::AT_EMPTY_PATH | rec) as u32,
        &attr,
    )
    .map_err(|e| match e {
        nix::errno::Errno::EINVAL => anyhow::anyhow!(
            "id-mapping {}: the filesystem does not support idmapped mounts (EINVAL)",
            src.display()
        ),
        e => anyhow::anyhow!("id-mapping {}: {}", src.display(), e.desc()),
    })?;
    Ok(tree)
}
