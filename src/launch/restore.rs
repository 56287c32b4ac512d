//! `hull restore`: a container made from a checkpoint. The record,
//! checks and cgroups are create's; instead of cloning an init, hull runs
//! `criu swrk`, places it in the container's cgroups (a systemd scope is
//! started on its pid, as runc does), and CRIU rebuilds the process tree
//! as hull's child (`rst_sibling`). Its notifications run the prestart
//! and createRuntime hooks, pass the console master on, and name the
//! restored init, which goes on the record at once.
//!
//! CRIU wants the root as a mount point: hull binds the rootfs at
//! `<state dir>/criu-root`, in a private mount namespace of its own, so
//! that neither that bind nor the temporary mount points outlive hull,
//! whenever it dies.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxNamespaceType;

use super::{CreateOpts, Record, first_record, load_checked, plan_cgroups, sync_cgroups};
use crate::cgroups::Manager;
use crate::checkpoint::{self as cp, DESCRIPTORS};
use crate::container::{Lock, Store, proc_start_time};
use crate::criu::rpc::{Opts, ReqType, Request};
use crate::criu::swrk::Swrk;
use crate::namespaces;
use crate::spec::Bundle;

/// What the caller of `restore` asked for, beyond create's own.
pub struct RestoreOpts<'a> {
    pub create: CreateOpts<'a>,
    pub criu: &'a Path,
    pub image_path: &'a str,
    pub work_path: &'a str,
    pub manage_cgroups_mode: &'a str,
    pub empty_ns: &'a [String],
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub lsm_profile: &'a str,
    pub lsm_mount_context: &'a str,
}

/// A restored container, running.
pub struct Restored {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub lock: Lock,
    /// Foreground with a terminal: the pty master hull proxies.
    pub master: Option<OwnedFd>,
}

/// Where the image is, what it says the init's stdio was, where CRIU
/// writes its log: read before anything exists.
struct Images {
    dir: OwnedFd,
    work: PathBuf,
    work_fd: OwnedFd,
    descriptors: Vec<String>,
}

pub fn restore(store: &Store, o: RestoreOpts) -> Result<Restored> {
    crate::container::validate_id(o.create.id)?;
    let bundle = load_checked(&o.create)?;
    if !namespaces::is_new(&bundle.spec, LinuxNamespaceType::Mount) {
        bail!("restore needs a container with a mount namespace of its own");
    }
    let mode = cp::cg_mode(o.manage_cgroups_mode)?;
    let empty = cp::empty_ns(o.empty_ns)?;
    // First: the directories CRIU is given must be opened in the namespace
    // it runs in (it works in them: a mount through one opened outside it
    // fails with EINVAL).
    private_mount_ns()?;
    let images = images(&o)?;
    let mut cg = plan_cgroups(&bundle, &o.create)?;
    let mut rec = Record::begin(store, first_record(&o.create, &bundle, &*cg)?, &bundle.raw)?;
    let mut base = cp::base_opts(&images.dir, &images.work_fd, "restore.log", mode);
    base.empty_ns = Some(empty);
    let built = build(&mut rec, &mut *cg, &bundle, &o, &images, base).and_then(|made| {
        super::handoff::announce(o.create.pid_file, None, rec.state.pid, &made.0)?;
        Ok(made)
    });
    match built {
        Ok((pidfd, master)) => {
            let pid = rec.state.pid;
            Ok(Restored {
                pid,
                pidfd,
                lock: rec.into_lock(),
                master,
            })
        }
        Err(e) => {
            rec.abandon();
            Err(e)
        }
    }
}

/// The image directory must hold a checkpoint (a restore makes nothing
/// there); the work directory is made if missing.
fn images(o: &RestoreOpts) -> Result<Images> {
    let dir = match o.image_path {
        "" => std::env::current_dir()
            .context("the current directory")?
            .join("checkpoint"),
        p => PathBuf::from(p),
    };
    let fd = cp::open_dir(&dir).context("the checkpoint's image directory")?;
    let path = dir.join(DESCRIPTORS);
    let raw = read_small(&path).with_context(|| {
        format!(
            "{} holds no checkpoint: reading {}",
            dir.display(),
            path.display()
        )
    })?;
    let descriptors: Vec<String> = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not a list of names", path.display()))?;
    let work = match o.work_path {
        "" => dir,
        p => {
            let w = PathBuf::from(p);
            cp::make_dir(&w)?;
            w
        }
    };
    let work_fd = cp::open_dir(&work)?;
    Ok(Images {
        dir: fd,
        work,
        work_fd,
        descriptors,
    })
}

/// A file of the image that hull reads itself: three names, so at most
/// 64 KiB (the image is the caller's).
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const MAX: u64 = 64 * 1024;
    let mut raw = Vec::new();
    std::fs::File::open(path)?
        .take(MAX + 1)
        .read_to_end(&mut raw)?;
    if raw.len() as u64 > MAX {
        return Err(std::io::Error::other(format!("larger than {MAX} bytes")));
    }
    Ok(raw)
}

/// From the record to a running restored init; every step recorded first.
fn build(
    rec: &mut Record,
    cg: &mut dyn Manager,
    bundle: &Bundle,
    o: &RestoreOpts,
    images: &Images,
    mut opts: Opts,
) -> Result<(OwnedFd, Option<OwnedFd>)> {
    // As create: the leaves are checked (a cgroup in use by another
    // container is refused) before the record names a process, so a
    // refused restore's teardown kills nobody in them.
    let made = cg.create_for_clone();
    sync_cgroups(rec, cg, made)?;
    let criu_root = private_root(rec, bundle)?;
    prepare_mountpoints(bundle)?;
    let min_fd: RawFd = 16;
    let ns_files = external_namespaces(bundle, min_fd)?;
    let extra: Vec<RawFd> = ns_files.iter().map(|(_, f)| f.as_raw_fd()).collect();
    let terminal = super::wants_terminal(&bundle.spec);
    let (swrk, version) = cp::start(o.criu, &extra, !terminal)?;
    lsm_needs(o, version)?;
    let criu_pid = swrk.pid() as i32;
    // CRIU is the container's first process: teardown kills it and
    // empties the cgroups if the restore goes no further.
    rec.state.pid = criu_pid;
    rec.state.start_time =
        proc_start_time(criu_pid).ok_or_else(|| anyhow!("criu exited before the restore"))?;
    rec.save()?;
    place(rec, cg, bundle, criu_pid)?;
    opts.cg_root = cgroup_roots(criu_pid)?;
    opts.root = Some(criu_root.0.to_string_lossy().into_owned());
    opts.evasive_devices = true;
    opts.rst_sibling = true;
    opts.tcp_established = o.tcp_established;
    opts.ext_unix_sk = o.ext_unix_sk;
    opts.shell_job = o.shell_job;
    opts.file_locks = o.file_locks;
    opts.auto_dedup = o.auto_dedup;
    opts.lazy_pages = o.lazy_pages;
    opts.lsm_profile = Some(o.lsm_profile.to_string()).filter(|s| !s.is_empty());
    opts.lsm_mount_context = Some(o.lsm_mount_context.to_string()).filter(|s| !s.is_empty());
    opts.config_file = cp::config_file(&bundle.spec);
    opts.ext_mnt =
        cp::external_mounts(&bundle.spec, &bundle.dir, &bundle.rootfs, cg.paths(), false);
    opts.join_ns = join_namespaces(bundle)?;
    for (i, (key, _)) in ns_files.iter().enumerate() {
        opts.inherit_fd.push((key.to_string(), 4 + i as i32));
    }
    // The new stdio (criu's 0, 1, 2) in place of the pipes the init had.
    for (i, name) in images.descriptors.iter().enumerate().take(3) {
        if name.contains("pipe:") {
            opts.inherit_fd.push((name.clone(), i as i32));
        }
    }
    let master = run_restore(rec, bundle, o, images, swrk, opts)?;
    rec.state.ready = true;
    rec.save()?;
    let pidfd = crate::sys::pidfd_open(rec.state.pid)
        .map_err(|e| anyhow!("the restored init {}: {e}", rec.state.pid))?;
    if proc_start_time(rec.state.pid) != Some(rec.state.start_time) {
        bail!("the restored init exited at once");
    }
    crate::debug!(
        "container {} restored, init pid {}",
        rec.state.id,
        rec.state.pid
    );
    Ok((pidfd, master))
}

/// Send RESTORE and follow CRIU's notifications until it is done.
fn run_restore(
    rec: &mut Record,
    bundle: &Bundle,
    o: &RestoreOpts,
    images: &Images,
    swrk: Swrk,
    opts: Opts,
) -> Result<Option<OwnedFd>> {
    let mut req = Request::new(ReqType::Restore);
    req.opts = Some(opts);
    let mut master = None;
    let mut hooks_failed = None;
    let answer = swrk.call(&req, |event, pid, fd| {
        match event {
            "setup-namespaces" => {
                let state = rec.state.hook_state("creating", pid);
                for phase in [
                    crate::hooks::Phase::Prestart,
                    crate::hooks::Phase::CreateRuntime,
                ] {
                    if let Err(e) = crate::hooks::run(&bundle.spec, phase, &state) {
                        hooks_failed = Some(e.clone());
                        return Err(e);
                    }
                }
            }
            "orphan-pts-master" => {
                let fd = fd.ok_or("criu sent no console master")?;
                match o.create.console_socket {
                    Some(path) => send_master(path, &fd)?,
                    None => master = Some(fd),
                }
            }
            "post-restore" => {
                // The restored init, hull's child: on the record now, so
                // a hull killed from here on leaves it to `delete`.
                rec.state.pid = pid;
                rec.state.start_time = proc_start_time(pid).unwrap_or(0);
                rec.state.join_time_ns = true;
                rec.save().map_err(|e| format!("{e:#}"))?;
            }
            _ => {}
        }
        Ok(())
    });
    let exited = swrk.wait();
    if let Some(e) = hooks_failed {
        bail!("{e}");
    }
    answer.map_err(|e| cp::failed(e, &images.work, "restore.log"))?;
    match exited {
        Ok(s) if s.success() => Ok(master),
        Ok(s) => Err(cp::failed(
            format!("criu failed: {s}"),
            &images.work,
            "restore.log",
        )),
        Err(e) => Err(anyhow!("waiting for criu: {e}")),
    }
}

fn send_master(path: &str, fd: &OwnedFd) -> Result<(), String> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("connecting to console socket {path}: {e}"))?;
    crate::console::send_fd(&s, fd.as_raw_fd(), "/dev/ptmx")
        .map_err(|e| format!("sending the console to {path}: {e}"))
}

/// The rootfs bound at `criu-root`, seen only in hull's own mount
/// namespace: unmounted (and the directory removed) when dropped, before
/// anything could remove the state directory (teardown also never walks
/// into a mount).
struct CriuRoot(PathBuf);

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A mount namespace of hull's own, slave to the host's: nothing hull or
/// CRIU mounts reaches the host, and all of it goes with them.
fn private_mount_ns() -> Result<()> {
    use nix::mount::{MsFlags, mount};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("a mount namespace for criu")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("making hull's mounts private")
}

/// The rootfs bound at `criu-root` in the container's state directory,
/// in hull's own mount namespace.
fn private_root(rec: &Record, bundle: &Bundle) -> Result<CriuRoot> {
    use nix::mount::{MsFlags, mount};
    let root = rec.dir.join("criu-root");
    std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
    let guard = CriuRoot(root.clone());
    mount(
        Some(&bundle.rootfs),
        &root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding the rootfs at {}", root.display()))?;
    Ok(guard)
}

/// Every mount point of the config made in the rootfs (CRIU mounts on
/// them but makes none), resolved inside it as create does; not the
/// cgroup mounts, nor those under a tmpfs CRIU restores with its content.
fn prepare_mountpoints(bundle: &Bundle) -> Result<()> {
    use crate::rootfs::paths::{Kind, create_in_root};
    let root = std::fs::File::open(&bundle.rootfs)
        .with_context(|| format!("opening {}", bundle.rootfs.display()))?;
    let mounts = bundle.spec.mounts().as_deref().unwrap_or_default();
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    for m in mounts {
        let dest = m.destination();
        if m.typ().as_deref() == Some("cgroup")
            || tmpfs.iter().any(|t| dest != *t && dest.starts_with(t))
        {
            continue;
        }
        let file = crate::plan::mounts::bind_source(m, &bundle.dir)
            .is_some_and(|s| std::fs::metadata(s).is_ok_and(|md| !md.is_dir()));
        let kind = if file { Kind::File } else { Kind::Dir };
        create_in_root(root.as_raw_fd(), dest, kind)
            .with_context(|| format!("creating mount point {}", dest.display()))?;
    }
    Ok(())
}

/// The rest of the container's cgroups made (their leaves were checked),
/// its limits written, and CRIU placed in them (the restored tasks stay
/// where CRIU is); with the systemd driver the scope is started on CRIU's
/// pid.
fn place(rec: &mut Record, cg: &mut dyn Manager, bundle: &Bundle, pid: i32) -> Result<()> {
    let resources = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref());
    if cg.paths().systemd_unit.is_some() {
        cg.add_task(pid).context("starting the container's scope")?;
    }
    let made = cg.create(resources);
    sync_cgroups(rec, cg, made)?;
    let paths = cg.paths();
    for dir in paths.v2.iter().chain(paths.v1.iter().map(|(_, d)| d)) {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .with_context(|| format!("moving criu into {}", procs.display()))?;
    }
    Ok(())
}

/// `cg_root`: each of CRIU's cgroups (now the container's) as the root
/// the restored tasks' cgroups are taken relative to.
fn cgroup_roots(pid: i32) -> Result<Vec<(Option<String>, String)>> {
    let path = format!("/proc/{pid}/cgroup");
    let data = crate::procfs::read(Path::new(&path), 4096).with_context(|| path.clone())?;
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (_, ctrls, dir) = (parts.next(), parts.next(), parts.next());
        let (Some(ctrls), Some(dir)) = (ctrls, dir) else {
            continue;
        };
        let dir = String::from_utf8_lossy(dir).into_owned();
        for c in ctrls.split(|&b| b == b',') {
            out.push((Some(String::from_utf8_lossy(c).into_owned()), dir.clone()));
        }
    }
    Ok(out)
}

/// Network and pid namespaces given by path: opened for CRIU (fds 4..),
/// under the keys the dump named them by.
fn external_namespaces(bundle: &Bundle, min_fd: RawFd) -> Result<Vec<(&'static str, OwnedFd)>> {
    let mut out = Vec::new();
    for ns in namespaces::namespaces(&bundle.spec) {
        let (Some(key), Some(path)) = (cp::external_ns_key(ns.typ()), ns.path().as_ref()) else {
            continue;
        };
        let f = std::fs::File::open(path).map_err(|e| {
            anyhow!(
                "Requested {} namespace {} does not exist: {e}",
                cp::ns_name(ns.typ()),
                path.display()
            )
        })?;
        out.push((key, crate::channel::raise(OwnedFd::from(f), min_fd)?));
    }
    Ok(out)
}

/// Other namespaces given by path: CRIU joins them.
fn join_namespaces(bundle: &Bundle) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for ns in namespaces::namespaces(&bundle.spec) {
        let Some(path) = ns.path().as_ref() else {
            continue;
        };
        match ns.typ() {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {}
            LinuxNamespaceType::Cgroup => {
                bail!(
                    "Do not know how to handle namespace {}",
                    cp::ns_name(ns.typ())
                )
            }
            t => out.push((
                cp::ns_name(t).to_string(),
                path.to_string_lossy().into_owned(),
            )),
        }
    }
    Ok(out)
}

/// `--lsm-profile` and `--lsm-mount-context` need CRIU 3.16 (runc's words).
fn lsm_needs(o: &RestoreOpts, version: i64) -> Result<()> {
    for (flag, v) in [
        ("--lsm-profile", o.lsm_profile),
        ("--lsm-mount-context", o.lsm_mount_context),
    ] {
        if !v.is_empty() && version < 31600 {
            bail!("{flag} requires at least CRIU 3.16");
        }
    }
    Ok(())
}
