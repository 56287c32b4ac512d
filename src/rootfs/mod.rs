//! The container's filesystem: mounts, /dev, pivot_root, masked and
//! read-only paths, read-only root. Runs in the init stage, in the
//! container's mount namespace. `prepare` ends after pivot_root; the
//! console is set up in between; `finish` seals the view.

mod copyup;
mod devices;
mod masked;
mod mounts;
pub mod paths;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use mounts::{MountSource, clone_source};

use crate::error::{Ctx, Result, StageError};
use crate::plan::InitPlan;
use crate::sys;

/// The container root after pivot_root.
pub struct Mounted {
    root: OwnedFd,
    own_mntns: bool,
    mount_label: Option<String>,
}

impl Mounted {
    /// Open the ptmx of the container's own devpts instance, verified to be
    /// a devpts ptmx so a planted file or symlink cannot stand in for it.
    pub fn ptmx(&self) -> Result<OwnedFd> {
        open_ptmx(&self.root)
    }

    /// Bind the pty peer onto /dev/console (CVE-2025-52565: the target is
    /// resolved in-root with no symlinks, and the source is the peer fd
    /// itself, not a /dev/pts/N path the container could swap).
    pub fn bind_console(&self, peer: &OwnedFd) -> Result<()> {
        // No symlink anywhere on the way: the console goes on /dev/console
        // itself, never where a link in the image points.
        let open = || {
            sys::openat2(
                self.root.as_raw_fd(),
                c"dev/console",
                libc::O_PATH,
                0,
                paths::RESOLVE | libc::RESOLVE_NO_SYMLINKS,
            )
        };
        let target = match open() {
            Err(Errno::ENOENT) => {
                paths::create_in_root(
                    self.root.as_raw_fd(),
                    Path::new("/dev/console"),
                    paths::Kind::File,
                )
                .ctx(|| "creating /dev/console".into())?;
                open()
            }
            r => r,
        };
        let target = match target {
            Err(Errno::ELOOP) => return Err(StageError::new("/dev/console is a symlink")),
            r => r.ctx(|| "opening /dev/console".into())?,
        };
        let tree = sys::open_tree(
            peer.as_raw_fd(),
            c"",
            libc::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32,
        )
        .ctx(|| "cloning the pty for /dev/console".into())?;
        sys::move_mount(
            tree.as_raw_fd(),
            c"",
            target.as_raw_fd(),
            c"",
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .ctx(|| "bind mounting /dev/console".into())
    }
}

/// The ptmx of the devpts instance at /dev/pts under `root`, verified to
/// be a devpts ptmx so a planted file or symlink cannot stand in for it.
pub fn open_ptmx(root: &OwnedFd) -> Result<OwnedFd> {
    let fd = sys::openat2(
        root.as_raw_fd(),
        c"dev/pts/ptmx",
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        paths::RESOLVE | libc::RESOLVE_NO_SYMLINKS,
    )
    .ctx(|| "opening /dev/pts/ptmx (is devpts mounted at /dev/pts?)".into())?;
    let fs = nix::sys::statfs::fstatfs(&fd).ctx(|| "statfs /dev/pts/ptmx".into())?;
    if fs.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC {
        return Err(StageError::new(
            "/dev/pts/ptmx is not on a devpts filesystem",
        ));
    }
    Ok(fd)
}

/// pivot_root(".", ".") from the new root (our cwd), then detach the old
/// root, which the kernel stacks on top of the new one. Both steps act on
/// "." with the cwd moved onto the old root first (as runc): from the new
/// root, "." would be the new root's mount, and the recursive MS_SLAVE
/// would turn every mount of the container into a slave, so that a
/// Bidirectional (rshared) bind, which CSI drivers publish volumes
/// through, no longer reaches the host.
fn pivot() -> Result<()> {
    let none: Option<&str> = None;
    let old_root = open(
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening the old root".into())?;
    sys::pivot_root_dot().ctx(|| "pivot_root".into())?;
    nix::unistd::fchdir(&old_root).ctx(|| "chdir to the old root".into())?;
    // Detached without letting the unmount propagate anywhere.
    mount(none, ".", none, MsFlags::MS_SLAVE | MsFlags::MS_REC, none)
        .ctx(|| "making old root rslave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detaching old root".into())
}

/// Make the rootfs our root: pivot_root in our own mount namespace (the
/// old root detached), MS_MOVE + chroot for --no-pivot, chroot without a
/// mount namespace; then the asked root propagation. Returns "/", open.
fn enter_root(plan: &InitPlan, own_mntns: bool, requested: Option<MsFlags>) -> Result<OwnedFd> {
    let none: Option<&str> = None;
    let dir = open(
        &plan.rootfs,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening rootfs".into())?;
    nix::unistd::fchdir(&dir).ctx(|| "chdir to rootfs".into())?;
    // Without a mount namespace of its own the mounts below are the host's:
    // create refuses --no-pivot then, and no stage moves them.
    if plan.no_pivot && own_mntns {
        hide_host_proc_and_sys(&plan.rootfs)?;
        mount(Some("."), "/", none, MsFlags::MS_MOVE, none).ctx(|| "moving rootfs to /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    } else if own_mntns {
        pivot()?;
    } else {
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    }
    nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    if own_mntns && let Some(f) = requested {
        // The new root is a fresh bind mount: give it the asked propagation.
        mount(none, "/", none, f, none).ctx(|| "setting rootfsPropagation on /".into())?;
    }
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening /".into())?;
    Ok(root)
}

/// --no-pivot keeps the host's mounts under the new root, out of reach but
/// there: a full proc or sysfs among them would let a process in a new user
/// namespace mount another one (the kernel takes any visible full instance
/// as leave to). Detach them, or cover them where that fails (runc's
/// msMoveRoot).
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<()> {
    let mounts = crate::mountinfo::read().ctx(|| "reading mountinfo".into())?;
    let mut points: Vec<&Path> = mounts
        .iter()
        .filter(|e| matches!(e.fs_type.as_str(), "proc" | "sysfs"))
        .map(|e| e.mount_point.as_path())
        .filter(|p| !p.starts_with(rootfs))
        .collect();
    // Deepest first, so a covered parent does not hide a child from us.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let none: Option<&str> = None;
    for p in points {
        if umount2(p, MntFlags::MNT_DETACH).is_err() {
            mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, none)
                .ctx(|| format!("covering {} before moving the root", p.display()))?;
        }
    }
    Ok(())
}

/// linux.rootfsPropagation, if set.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .unwrap_or("");
    Ok(Some(match p {
        "" => return Ok(None),
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => {
            return Err(StageError::new(format!(
                "rootfsPropagation {other:?} is not valid"
            )));
        }
    }))
}

/// Mount everything into the rootfs and make it the root. Without a mount
/// namespace of its own (runc allows that) the container's mounts are made
/// in the caller's namespace under the rootfs, nothing else of the host's
/// mount tree is touched, and chroot replaces pivot_root.
/// `join_cgroups` puts us in the container's cgroups: called before their
/// mount and before the device nodes are made. `before_pivot` runs once
/// everything is mounted, right before pivot_root (the createContainer
/// hooks' moment).
pub fn prepare(
    spec: &Spec,
    plan: &InitPlan,
    from_parent: &MountSource<'_>,
    join_cgroups: &dyn Fn() -> Result<()>,
    before_pivot: &mut dyn FnMut() -> Result<()>,
) -> Result<Mounted> {
    let own_mntns = crate::namespaces::has(spec, LinuxNamespaceType::Mount);
    let requested = root_propagation(spec)?;
    let none: Option<&str> = None;
    if own_mntns {
        // Nothing we mount may propagate back to the host unless the spec
        // asks for shared propagation.
        // Only a shared request is applied up front (so our mounts do
        // propagate); every other mode starts from rslave, which also keeps
        // pivot_root working under a shared host tree, and is applied to
        // the new root after pivot_root.
        let first = match requested {
            Some(f) if f.contains(MsFlags::MS_SHARED) => f,
            _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        };
        mount(none, "/", none, first, none).ctx(|| "setting root propagation".into())?;
        if first.contains(MsFlags::MS_SHARED) {
            // pivot_root refuses a shared parent mount.
            make_parent_private(&plan.rootfs)?;
        }
        // pivot_root needs the new root to be a mount point.
        mount(
            Some(&plan.rootfs),
            &plan.rootfs,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .ctx(|| format!("bind mounting rootfs {}", plan.rootfs.display()))?;
    }
    let root = open(
        &plan.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening rootfs {}", plan.rootfs.display()))?;

    mounts::apply_all(&root, spec, plan, from_parent, join_cgroups)?;
    // The devices cgroup decides which nodes may be made.
    join_cgroups()?;
    // mknod needs the initial user namespace: in the container's own, or
    // in one the runtime was run in (rootless podman's, whose containers
    // share it), nodes are bound from the host, as runc does.
    let userns = crate::namespaces::has(spec, LinuxNamespaceType::User)
        || !crate::rootless::in_initial_userns();
    devices::create(&root, spec, userns)?;
    ensure_cwd(&root, spec)?;
    before_pivot()?;

    drop(root);
    let root = enter_root(plan, own_mntns, requested)?;
    Ok(Mounted {
        root,
        own_mntns,
        mount_label: plan.mount_label.clone(),
    })
}

/// A read-only /dev (tmpfs) is mounted writable for its nodes and made
/// read-only here, as runc does.
fn dev_read_only(spec: &Spec) -> bool {
    spec.mounts().as_deref().unwrap_or(&[]).iter().any(|m| {
        m.destination() == Path::new("/dev")
            && !crate::plan::devices::dev_is_bound(spec)
            && crate::plan::mount_options::parse(m.options().as_deref().unwrap_or(&[])).flags
                & libc::MS_RDONLY
                != 0
    })
}

pub fn finish(spec: &Spec, m: Mounted) -> Result<()> {
    let linux = spec.linux().as_ref();
    if m.own_mntns {
        reopen_dev_null(&m.root)?;
    }
    if dev_read_only(spec) {
        let dev = paths::open_in_root(m.root.as_raw_fd(), Path::new("/dev"), libc::O_PATH)
            .ctx(|| "opening /dev".into())?;
        sys::mount_set_readonly(dev.as_raw_fd(), false).ctx(|| "making /dev read-only".into())?;
    }
    masked::mask(
        &m.root,
        linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[]),
        m.mount_label.as_deref(),
    )?;
    masked::readonly(
        &m.root,
        linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[]),
    )?;
    // Without a mount namespace "/" would be the host's root mount: then
    // root.readonly is ignored (create warned), as runc ignores it.
    if m.own_mntns
        && spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        sys::mount_set_readonly(m.root.as_raw_fd(), false).ctx(|| "making / read-only".into())?;
    }
    Ok(())
}

/// Stdio that is the host's /dev/null becomes the container's own (runc's
/// reOpenDevNull): a file opened through a mount outside the container
/// cannot be checkpointed (CRIU finds no mount for it), and the process
/// has no business holding the host's /dev. Before the masks, which bind
/// the same /dev/null.
fn reopen_dev_null(root: &OwnedFd) -> Result<()> {
    let null_rdev = libc::makedev(1, 3);
    let is_null =
        |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null_rdev;
    let mut ours: Option<OwnedFd> = None;
    for fd in 0..3 {
        // SAFETY: fstat of an fd number (EBADF when it is closed) into a
        // zeroed stat of our own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `st` is live and writable.
        if unsafe { libc::fstat(fd, &mut st) } != 0 || !is_null(&st) {
            continue;
        }
        if ours.is_none() {
            let null = paths::open_in_root(
                root.as_raw_fd(),
                Path::new("/dev/null"),
                libc::O_RDWR | libc::O_CLOEXEC,
            )
            .ctx(|| "opening the container's /dev/null".into())?;
            let own = nix::sys::stat::fstat(&null).ctx(|| "stat /dev/null".into())?;
            if !is_null(&own) {
                // Not a null device: keep the host's rather than some file.
                return Ok(());
            }
            // Never at a closed stdio fd: that one stays closed.
            ours = Some(sys::fd_at_least(null, 3).ctx(|| "moving /dev/null above stdio".into())?);
        }
        let Some(null) = &ours else { continue };
        // SAFETY: dup3 onto one of our stdio fds from an fd above them.
        if unsafe { libc::dup3(null.as_raw_fd(), fd, 0) } < 0 {
            return Err(Errno::last()).ctx(|| format!("reopening /dev/null as fd {fd}"));
        }
    }
    Ok(())
}

/// runc creates the cwd if the image lacks it.
fn ensure_cwd(root: &OwnedFd, spec: &Spec) -> Result<()> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) else {
        return Ok(());
    };
    match paths::create_in_root(root.as_raw_fd(), cwd, paths::Kind::Dir) {
        Ok(_) => Ok(()),
        // A file there: let chdir report it as the user will understand.
        Err(Errno::ENOTDIR) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("creating cwd {}", cwd.display())),
    }
}

/// pivot_root refuses a new root whose parent mount is shared: make the
/// mount that holds the rootfs private (in our namespace only).
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mounts = crate::mountinfo::read().ctx(|| "reading mountinfo".into())?;
    let best = mounts
        .iter()
        .map(|e| &e.mount_point)
        .filter(|mp| rootfs.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len());
    if let Some(mp) = best {
        let none: Option<&str> = None;
        mount(none, mp, none, MsFlags::MS_PRIVATE, none)
            .ctx(|| format!("making {} private", mp.display()))?;
    }
    Ok(())
}
