//! Who the container's process is: supplementary groups, gid, uid, and the
//! capabilities that survive the change of user.

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::User;

use crate::error::{Ctx, Result};
use crate::sys;

/// No capabilities at all: what a process without `capabilities` gets, as
/// with runc (never hull's own full set).
fn none() -> oci_spec::runtime::LinuxCapabilities {
    let empty = oci_spec::runtime::Capabilities::new;
    let mut c = oci_spec::runtime::LinuxCapabilities::default();
    c.set_bounding(Some(empty()));
    c.set_effective(Some(empty()));
    c.set_inheritable(Some(empty()));
    c.set_permitted(Some(empty()));
    c.set_ambient(Some(empty()));
    c
}

/// Become `user` with capabilities `caps` (none when None). `setgroups` is
/// false when the user namespace denies setgroups(2) (decided from the
/// host's /proc).
pub fn become_user(
    user: &User,
    caps: Option<&oci_spec::runtime::LinuxCapabilities>,
    setgroups: bool,
) -> Result<()> {
    let nothing = none();
    let caps = Some(caps.unwrap_or(&nothing));
    // What we hold before the bounding set is narrowed: the rest cannot be
    // granted and is left out (see host::unavailable_caps). In a user
    // namespace made after exec the permitted set is full, so the bounding
    // set counts.
    let bounding = caps::read(None, CapSet::Bounding).unwrap_or_default();
    let held: CapsHashSet = caps::read(None, CapSet::Permitted)
        .unwrap_or_default()
        .intersection(&bounding)
        .copied()
        .collect();
    if let Some(c) = caps {
        crate::capabilities::drop_bounding(c.bounding(), &bounding)?;
        sys::prctl(libc::PR_SET_KEEPCAPS, 1).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    }
    let mut groups: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|g| (*g).into())
        .collect();
    groups.dedup();
    if setgroups {
        nix::unistd::setgroups(&groups).ctx(|| "setgroups".into())?;
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setresgid({gid})"))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setresuid({uid})"))?;
    if let Some(c) = caps {
        sys::prctl(libc::PR_SET_KEEPCAPS, 0).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
        crate::capabilities::apply(c, &held)?;
    }
    Ok(())
}

/// Whether our user namespace allows setgroups(2), read through the host's
/// procfs (`proc`): a rootfs cannot fake the answer.
pub fn setgroups_allowed(proc: &std::os::fd::OwnedFd) -> bool {
    let Ok(fd) = nix::fcntl::openat(
        proc,
        "self/setgroups",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return true;
    };
    let mut buf = [0u8; 16];
    let n = nix::unistd::read(&fd, &mut buf).unwrap_or(0);
    buf[..n].trim_ascii() != b"deny"
}
