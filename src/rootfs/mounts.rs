//! Applying config.json `mounts[]` inside the rootfs, before pivot_root.
//! Destinations are resolved (and created) with `paths`, and every mount is
//! made onto the resolved fd, never onto a path string.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::paths::{self, Kind};
use crate::error::{Ctx, Result, StageError};
use crate::plan::InitPlan;
use crate::plan::mount_options::{self as options, Parsed};
use crate::plan::mounts::{bind_source, is_bind};
use crate::sys;
use nix::errno::Errno;

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| StageError::new(format!("NUL byte in {s:?}")))
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| StageError::new(format!("NUL byte in {}", p.display())))
}

/// Asks the parent for the detached source tree of `mounts[i]`.
pub type MountSource<'a> = dyn Fn(usize) -> Result<OwnedFd> + 'a;

pub fn apply_all(
    root: &OwnedFd,
    spec: &Spec,
    plan: &InitPlan,
    from_parent: &MountSource<'_>,
    join_cgroups: &dyn Fn() -> Result<()>,
) -> Result<()> {
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            // The container's cgroup directories must exist to be bound.
            join_cgroups()?;
        }
        apply(root, m, spec, plan, &|| from_parent(i)).map_err(|e| StageError {
            msg: format!(
                "mounting {:?} to rootfs at {:?}: {}",
                m.source().as_deref().unwrap_or(Path::new("")),
                m.destination(),
                e.msg
            ),
            errno: e.errno,
        })?;
    }
    Ok(())
}

fn apply(
    root: &OwnedFd,
    m: &Mount,
    spec: &Spec,
    plan: &InitPlan,
    from_parent: &dyn Fn() -> Result<OwnedFd>,
) -> Result<()> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    // A network namespace of its own, new or joined, may mount a sysfs.
    let no_netns = !crate::namespaces::has(spec, LinuxNamespaceType::Network);

    // An id-mapped source is built by the parent, in order: it may lie
    // under an earlier mount of this config (runc prepares them so too).
    if crate::plan::idmap::of(m).is_some() {
        return attach(root, from_parent()?, dest, &opts);
    }
    if is_bind(m, &opts) {
        let src = bind_source(m, &plan.bundle)
            .ok_or_else(|| StageError::new("bind mount without a source"))?;
        let tree = match clone_source(&src, &opts) {
            Ok(tree) => tree,
            // In a user namespace the container's root may not reach the
            // source (a 0700 parent owned by the host's root): as runc,
            // the parent opens it, from the host's side.
            Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM)
                if crate::namespaces::has(spec, LinuxNamespaceType::User) =>
            {
                from_parent()?
            }
            Err(e) => return Err(e).ctx(|| format!("open_tree {}", src.display())),
        };
        return attach(root, tree, dest, &opts);
    }
    if matches!(typ, "proc" | "sysfs") {
        ordinary_directory(root, dest, typ)?;
    }
    match typ {
        // Without its own network namespace a container may not mount a
        // sysfs (the kernel refuses): bind the host's, read-only, as runc.
        "sysfs" if no_netns => {
            let mut o = opts.clone();
            o.flags |= libc::MS_BIND | libc::MS_REC;
            bind(root, Path::new("/sys"), dest, &o)
        }
        "cgroup" | "cgroup2" => mount_cgroup(root, dest, &opts, spec, plan),
        _ => new_filesystem(root, m, typ, &opts, plan),
    }
}

/// Any other filesystem: a fresh instance on the resolved destination.
fn new_filesystem(
    root: &OwnedFd,
    m: &Mount,
    typ: &str,
    opts: &Parsed,
    plan: &InitPlan,
) -> Result<()> {
    let dest = m.destination();
    let mut data = opts.data.clone();
    // A tmpfs over a directory the image has keeps that directory's mode
    // unless the options give one (runc, #4973).
    if typ == "tmpfs"
        && !data.iter().any(|d| d.starts_with("mode="))
        && let Some(mode) = existing_mode(root, dest)
    {
        data.push(format!("mode={mode:o}"));
    }
    let target = paths::create_in_root(root.as_raw_fd(), dest, Kind::Dir)
        .ctx(|| format!("creating {}", dest.display()))?;
    let source = m.source().as_deref().map(cpath).transpose()?;
    // As runc: proc and sysfs keep their own labels, and mqueue takes no
    // context= option (its root is labelled below).
    let label = plan.mount_label.as_deref();
    if let Some(l) = label
        && !matches!(typ, "proc" | "sysfs" | "mqueue")
    {
        data.push(context_option(l));
    }
    let data = (!data.is_empty())
        .then(|| cstr(&data.join(",")))
        .transpose()?;
    let mut flags = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if dest == Path::new("/dev") {
        // The device nodes go in first; `finish` makes it read-only.
        flags &= !libc::MS_RDONLY;
    }
    if opts.copy_up {
        return copy_up_mount(root, &target, dest, typ, flags, data.as_deref(), opts);
    }
    sys::mount_fd(
        source.as_deref().or(Some(c"none")),
        target.as_raw_fd(),
        Some(&cstr(typ)?),
        flags,
        data.as_deref(),
    )
    .ctx(|| "mount".into())?;
    if let Some(l) = label
        && typ == "mqueue"
    {
        let top = paths::open_in_root(root.as_raw_fd(), dest, libc::O_RDONLY | libc::O_DIRECTORY)
            .ctx(|| format!("reopening {}", dest.display()))?;
        sys::fsetxattr(top.as_raw_fd(), c"security.selinux", l.as_bytes())
            .ctx(|| "labelling the mqueue mount (linux.mountLabel)".into())?;
    }
    after_mount(root, dest, opts)
}

/// The permission bits of the directory at `dest`, if the image has one.
fn existing_mode(root: &OwnedFd, dest: &Path) -> Option<u32> {
    let fd = paths::open_in_root(root.as_raw_fd(), dest, libc::O_PATH | libc::O_DIRECTORY).ok()?;
    let st = nix::sys::stat::fstat(&fd).ok()?;
    Some(st.st_mode & 0o7777)
}

/// proc and sysfs go only on a real directory (or where nothing is yet):
/// never through a symlink the image planted there (runc's rule).
fn ordinary_directory(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(());
    };
    let dir = match paths::open_in_root(root.as_raw_fd(), parent, libc::O_PATH | libc::O_DIRECTORY)
    {
        Ok(d) => d,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("opening {}", parent.display())),
    };
    match nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => Err(StageError::new(format!(
            "filesystem {typ:?} must be mounted on ordinary directory"
        ))),
        _ => Ok(()),
    }
}

/// The mount option that labels a filesystem with linux.mountLabel, quoted
/// because MLS labels hold commas ("s0:c1,c2").
fn context_option(label: &str) -> String {
    format!("context=\"{label}\"")
}

/// A tmpfs that starts with a copy of the directory it covers.
fn copy_up_mount(
    root: &OwnedFd,
    target: &OwnedFd,
    dest: &Path,
    typ: &str,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
    opts: &Parsed,
) -> Result<()> {
    if typ != "tmpfs" {
        return Err(StageError::new("tmpcopyup is only valid for tmpfs mounts"));
    }
    let under = super::copyup::open_dir(target, c".")
        .ctx(|| format!("opening {} to copy it up", dest.display()))?;
    // Writable while we fill it; read-only afterwards if asked.
    sys::mount_fd(
        Some(c"tmpfs"),
        target.as_raw_fd(),
        Some(c"tmpfs"),
        flags & !libc::MS_RDONLY,
        data,
    )
    .ctx(|| "mount".into())?;
    let top = paths::open_in_root(root.as_raw_fd(), dest, libc::O_RDONLY | libc::O_DIRECTORY)
        .ctx(|| format!("reopening {}", dest.display()))?;
    super::copyup::copy_tree(&under, &top)
        .ctx(|| format!("copying {} up into the tmpfs", dest.display()))?;
    if flags & libc::MS_RDONLY != 0 {
        sys::mount_set_readonly(top.as_raw_fd(), false)
            .ctx(|| "making the tmpfs read-only".into())?;
    }
    after_mount(root, dest, opts)
}

/// Propagation and recursive attributes need the mount itself: re-resolve
/// the destination, which now lands on the new mount's root.
fn after_mount(root: &OwnedFd, dest: &Path, opts: &Parsed) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clear == 0 {
        return Ok(());
    }
    let fd = paths::open_in_root(root.as_raw_fd(), dest, libc::O_PATH)
        .ctx(|| format!("reopening {}", dest.display()))?;
    set_recursive(&fd, opts)?;
    for p in &opts.propagation {
        sys::mount_fd(None, fd.as_raw_fd(), None, *p, None)
            .ctx(|| "setting mount propagation".into())?;
    }
    Ok(())
}

fn set_recursive(fd: &OwnedFd, opts: &Parsed) -> Result<()> {
    if opts.rec_set == 0 && opts.rec_clear == 0 {
        return Ok(());
    }
    let mut attr = libc::mount_attr {
        attr_set: opts.rec_set,
        attr_clr: opts.rec_clear,
        propagation: 0,
        userns_fd: 0,
    };
    // The atime modes are one field: setting one (or clearing one, which
    // means back to the default relatime) replaces the whole field.
    if (attr.attr_set | attr.attr_clr) & (libc::MOUNT_ATTR_NOATIME | libc::MOUNT_ATTR_STRICTATIME)
        != 0
    {
        attr.attr_clr |= libc::MOUNT_ATTR__ATIME;
    }
    sys::mount_setattr(
        fd.as_raw_fd(),
        c"",
        (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as u32,
        &attr,
    )
    .ctx(|| "mount_setattr (recursive options)".into())
}

/// A bind mount through the new mount API: clone the source tree, set its
/// attributes while it is still detached, then attach it on the resolved
/// destination fd.
pub fn bind(root: &OwnedFd, src: &Path, dest: &Path, opts: &Parsed) -> Result<()> {
    let tree = clone_source(src, opts).ctx(|| format!("open_tree {}", src.display()))?;
    attach(root, tree, dest, opts)
}

/// A detached clone of a bind's source (its submounts with `rbind`).
pub fn clone_source(src: &Path, opts: &Parsed) -> nix::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE;
    if opts.flags & libc::MS_REC != 0 {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let path = CString::new(src.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    sys::open_tree(libc::AT_FDCWD, &path, flags)
}

/// The per-mount flags of a bind, as runc gives them: a bind that asks
/// for any flag (set or cleared) besides bind/rbind gets exactly the flags
/// it asks for (`mount --bind -o` as meant: the source's `ro`, `nosuid`,
/// `nodev`, `noexec`, `nosymfollow` go unless asked), and keeps the
/// source's atime mode unless it asks for one. A bind asking nothing keeps
/// the source's flags. When the kernel refuses (flags locked by a more
/// privileged mount namespace: EPERM), the locked flags of the source are
/// kept, unless the config explicitly cleared one: then it fails.
fn set_top_attrs(tree: &OwnedFd, opts: &Parsed) -> Result<()> {
    if opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT) == 0 && opts.cleared == 0 {
        return Ok(());
    }
    let requested = options::attrs_of(opts.flags);
    let atime_asked = opts.flags & ATIME_FLAGS != 0;
    let mut clear = PLAIN_ATTRS & !requested;
    if atime_asked {
        clear |= libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODIRATIME;
    }
    let apply = |set: u64, clear: u64| {
        let attr = libc::mount_attr {
            attr_set: set,
            attr_clr: clear & !set | (clear & libc::MOUNT_ATTR__ATIME),
            propagation: 0,
            userns_fd: 0,
        };
        sys::mount_setattr(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH as u32, &attr)
    };
    let refused = match apply(requested, clear) {
        Ok(()) => return Ok(()),
        Err(e @ nix::errno::Errno::EPERM) => e,
        Err(e) => return Err(e).ctx(|| "mount_setattr".into()),
    };
    let src = source_attrs(tree)?;
    let locked_clears = src & options::attrs_of(opts.cleared) & LOCKABLE_ATTRS;
    if locked_clears != 0 {
        return Err(StageError {
            msg: format!(
                "cannot clear locked flags {}: {}",
                attr_names(locked_clears),
                refused.desc()
            ),
            errno: Some(refused),
        });
    }
    let atime_of = |a: u64| a & (libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODIRATIME);
    if atime_asked && atime_of(requested) != atime_of(src) {
        return Err(StageError {
            msg: format!(
                "cannot change locked atime flags {}: {}",
                attr_names(atime_of(src)),
                refused.desc()
            ),
            errno: Some(refused),
        });
    }
    // The atime mode is the source's here (or asked and equal to it).
    let keep = src & LOCKABLE_ATTRS & !(libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODIRATIME);
    apply(requested | keep, clear & !keep).ctx(|| "mount_setattr (locked flags re-applied)".into())
}

/// The MS_* atime flags: asking for any replaces the source's atime mode.
const ATIME_FLAGS: libc::c_ulong =
    libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME | libc::MS_NODIRATIME;
/// The flags a bind's remount sets or drops, atime aside.
const PLAIN_ATTRS: u64 = libc::MOUNT_ATTR_RDONLY
    | libc::MOUNT_ATTR_NOSUID
    | libc::MOUNT_ATTR_NODEV
    | libc::MOUNT_ATTR_NOEXEC
    | libc::MOUNT_ATTR_NOSYMFOLLOW;
/// What the kernel locks on mounts a less privileged namespace inherits
/// (MNT_LOCK_*).
const LOCKABLE_ATTRS: u64 = libc::MOUNT_ATTR_RDONLY
    | libc::MOUNT_ATTR_NOSUID
    | libc::MOUNT_ATTR_NODEV
    | libc::MOUNT_ATTR_NOEXEC
    | libc::MOUNT_ATTR__ATIME
    | libc::MOUNT_ATTR_NODIRATIME;

/// The detached clone's flags (its source's), as MOUNT_ATTR_* bits.
fn source_attrs(tree: &OwnedFd) -> Result<u64> {
    use nix::sys::statvfs::FsFlags;
    let st = nix::sys::statvfs::fstatvfs(tree).ctx(|| "statfs of the bind source".into())?;
    let f = st.flags();
    let mut a = 0;
    for (st_flag, attr) in [
        (FsFlags::ST_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, libc::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (FsFlags::ST_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (FsFlags::ST_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
    ] {
        if f.contains(st_flag) {
            a |= attr;
        }
    }
    // Neither noatime nor relatime: strictatime.
    if !f.contains(FsFlags::ST_NOATIME) && !f.contains(FsFlags::ST_RELATIME) {
        a |= libc::MOUNT_ATTR_STRICTATIME;
    }
    Ok(a)
}

/// MOUNT_ATTR_* bits as mount(8) names them, for messages.
fn attr_names(a: u64) -> String {
    let names: Vec<&str> = [
        (libc::MOUNT_ATTR_RDONLY, "ro"),
        (libc::MOUNT_ATTR_NOSUID, "nosuid"),
        (libc::MOUNT_ATTR_NODEV, "nodev"),
        (libc::MOUNT_ATTR_NOEXEC, "noexec"),
        (libc::MOUNT_ATTR_NOATIME, "noatime"),
        (libc::MOUNT_ATTR_STRICTATIME, "strictatime"),
        (libc::MOUNT_ATTR_NODIRATIME, "nodiratime"),
    ]
    .into_iter()
    .filter(|(bit, _)| a & bit != 0)
    .map(|(_, n)| n)
    .collect();
    if names.is_empty() {
        "relatime".into()
    } else {
        names.join(",")
    }
}

/// Attach a detached tree at `dest` inside the rootfs, with its options.
fn attach(root: &OwnedFd, tree: OwnedFd, dest: &Path, opts: &Parsed) -> Result<()> {
    // The tree itself says whether it is a directory: no second lookup of
    // the source path that could race with a rename.
    let st = nix::sys::stat::fstat(&tree).ctx(|| "stat of the bind source".into())?;
    let kind = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        Kind::Dir
    } else {
        Kind::File
    };
    let target = paths::create_in_root(root.as_raw_fd(), dest, kind)
        .ctx(|| format!("creating {}", dest.display()))?;
    set_recursive(&tree, opts)?;
    set_top_attrs(&tree, opts)?;
    sys::move_mount(
        tree.as_raw_fd(),
        c"",
        target.as_raw_fd(),
        c"",
        libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx(|| "move_mount".into())?;
    for p in &opts.propagation {
        let attr = libc::mount_attr {
            attr_set: 0,
            attr_clr: 0,
            propagation: p & !libc::MS_REC,
            userns_fd: 0,
        };
        let rec = if p & libc::MS_REC != 0 {
            libc::AT_RECURSIVE
        } else {
            0
        };
        sys::mount_setattr(
            tree.as_raw_fd(),
            c"",
            (libc::AT_EMPTY_PATH | rec) as u32,
            &attr,
        )
        .ctx(|| "setting mount propagation".into())?;
    }
    Ok(())
}

/// /sys/fs/cgroup. On a v2-only host: with a new cgroup namespace a
/// cgroup2 mount of its own, whose root is the container's cgroup; where
/// the kernel refuses one (EPERM: a user namespace not owning the cgroup
/// namespace; EBUSY) a bind of the container's cgroup, as runc. Without a
/// cgroup namespace a bind of the host's /sys/fs/cgroup: the whole tree
/// runc's fresh mount shows (a privileged pod's tools find
/// /proc/self/cgroup's path under it), without that mount's side effect,
/// which resets the host's cgroup2 options (nsdelegate,
/// memory_recursiveprot) from the initial cgroup namespace (runc #5258).
/// On v1 and hybrid hosts, a tmpfs with a bind of the container's own
/// directory per hierarchy (runc's layout).
fn mount_cgroup(
    root: &OwnedFd,
    dest: &Path,
    opts: &Parsed,
    spec: &Spec,
    plan: &InitPlan,
) -> Result<()> {
    let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    let target = paths::create_in_root(root.as_raw_fd(), dest, Kind::Dir)
        .ctx(|| format!("creating {}", dest.display()))?;
    let cg = &plan.cgroup;
    if cg.v1.is_empty() {
        if crate::namespaces::is_new(spec, LinuxNamespaceType::Cgroup) {
            let cgroup2 = Some(c"cgroup2");
            match sys::mount_fd(cgroup2, target.as_raw_fd(), cgroup2, flags, None) {
                Err(Errno::EPERM | Errno::EBUSY) => {}
                r => return r.ctx(|| "mount cgroup2".into()),
            }
        }
        let dir = cg.v2_bind_source(crate::namespaces::has(spec, LinuxNamespaceType::Cgroup));
        let mut o = opts.clone();
        o.flags |= libc::MS_BIND | libc::MS_REC;
        return bind(root, &dir, dest, &o);
    }
    // v1 / hybrid: a tmpfs holding one directory per hierarchy.
    let data = match plan.mount_label.as_deref() {
        Some(l) => cstr(&format!("mode=755,{}", context_option(l)))?,
        None => c"mode=755".to_owned(),
    };
    sys::mount_fd(
        Some(c"tmpfs"),
        target.as_raw_fd(),
        Some(c"tmpfs"),
        flags & !libc::MS_RDONLY,
        Some(&data),
    )
    .ctx(|| "mount tmpfs for cgroups".into())?;
    let mut sub = opts.clone();
    sub.flags = (opts.flags
        & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC))
        | libc::MS_BIND;
    sub.propagation.clear();
    for (ctrls, dir) in &cg.v1 {
        let name = ctrls.strip_prefix("name=").unwrap_or(ctrls);
        bind(root, dir, &dest.join(name), &sub)?;
        // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct".
        if ctrls.contains(',') {
            let d = paths::open_in_root(root.as_raw_fd(), dest, libc::O_PATH)
                .ctx(|| "reopening cgroup tmpfs".into())?;
            for c in ctrls.split(',') {
                let _ = nix::unistd::symlinkat(name, &d, c);
            }
        }
    }
    if let Some(dir) = &cg.v2 {
        bind(root, dir, &dest.join("unified"), &sub)?;
    }
    if flags & libc::MS_RDONLY != 0 {
        let fd = paths::open_in_root(root.as_raw_fd(), dest, libc::O_PATH)
            .ctx(|| "reopening cgroup tmpfs".into())?;
        sys::mount_set_readonly(fd.as_raw_fd(), false)
            .ctx(|| "making cgroup tmpfs read-only".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_label_option_is_quoted() {
        assert_eq!(
            super::context_option("system_u:object_r:container_file_t:s0:c1,c2"),
            r#"context="system_u:object_r:container_file_t:s0:c1,c2""#
        );
    }
}
