//! Reading one `mounts[]` entry: where a bind mount's source is, and
//! whether an entry is a bind at all.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::mount_options::Parsed;

/// A bind mount's source on the host: relative sources are taken from the
/// bundle directory.
pub fn bind_source(m: &Mount, bundle: &Path) -> Option<PathBuf> {
    let src = m.source().as_deref()?;
    Some(if src.is_absolute() {
        src.to_path_buf()
    } else {
        bundle.join(src)
    })
}

pub fn is_bind(m: &Mount, p: &Parsed) -> bool {
    m.typ().as_deref() == Some("bind") || p.flags & libc::MS_BIND != 0
}
