//! The cgroupfs driver: creates directories under the host's v1 hierarchies
//! and/or its v2 mount and writes limits into their files.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::apply::{self, Mode};
use super::layout::{Layout, own_cgroups};
use super::{
    CgroupError, CgroupPaths, Manager, OomWatch, Result, Stats, files, freezer, stats, v1,
};

pub struct FsManager {
    paths: CgroupPaths,
    v2_fd: Option<OwnedFd>,
    /// Planned directories made so far, and whether the existing leaves
    /// were checked (before the first of them).
    made: Vec<PathBuf>,
    checked: bool,
    /// Rootless: the device filter's permission failure is only logged,
    /// and a limit on a controller the user was not delegated is refused
    /// by name.
    rootless: bool,
}

impl FsManager {
    /// A manager for the cgroup `path` (already resolved by
    /// `requested_path`) on the host's hierarchies.
    pub fn new(layout: &Layout, path: &Path) -> Result<FsManager> {
        let own = if path.is_absolute() {
            Vec::new()
        } else {
            own_cgroups()?
        };
        let base = |ctrls: &[String], root: &Path| -> PathBuf {
            if path.is_absolute() {
                return path.to_path_buf();
            }
            let key = ctrls.join(",");
            let mine = own
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, p)| p.as_path());
            // /proc/self/cgroup is relative to the namespace root; the
            // mount root tells where that is in the mounted hierarchy.
            let mine = mine.unwrap_or(Path::new("/"));
            let mine = mine.strip_prefix(root).unwrap_or(mine);
            Path::new("/").join(mine).join(path)
        };
        let mut paths = CgroupPaths::default();
        for h in &layout.v1 {
            let rel = base(&h.controllers, &h.root);
            let dir = h.mount.join(rel.strip_prefix("/").unwrap_or(&rel));
            paths.v1.push((h.controllers.join(","), dir));
        }
        if let Some((mount, root)) = &layout.v2 {
            let rel = base(&[], root);
            paths.v2 = Some(mount.join(rel.strip_prefix("/").unwrap_or(&rel)));
            paths.v2_mount = Some(mount.clone());
        }
        Ok(FsManager {
            paths,
            v2_fd: None,
            made: Vec::new(),
            checked: false,
            rootless: false,
        })
    }

    /// Open existing cgroups (a running container's, or a sub-cgroup of it)
    /// so that a new process can be cloned straight into them.
    pub fn open_existing(&mut self) -> Result<()> {
        for dir in self.leaves() {
            if !dir.is_dir() {
                // runc's words: the file it would have written the pid to.
                return Err(CgroupError::Invalid(format!(
                    "open {}: no such file or directory",
                    dir.join("cgroup.procs").display()
                )));
            }
        }
        if let Some(dir) = &self.paths.v2 {
            self.v2_fd = Some(open_dir(dir)?);
        }
        Ok(())
    }

    /// A manager for cgroups recorded in state.json.
    pub fn from_paths(paths: CgroupPaths) -> FsManager {
        FsManager {
            paths,
            v2_fd: None,
            made: Vec::new(),
            checked: false,
            rootless: false,
        }
    }

    /// Drive the cgroups as a rootless container's (see `rootless`).
    pub fn set_rootless(&mut self) {
        self.rootless = true;
    }

    /// Whether we may make (or join) every planned cgroup: the nearest
    /// existing directory on the way to each leaf is writable to us, or the
    /// leaf exists and we may move processes into it.
    pub fn writable(&self) -> bool {
        let can = writable_file;
        self.leaves()
            .all(|leaf| match leaf.ancestors().find(|d| d.exists()) {
                Some(d) if d == leaf => can(&leaf.join("cgroup.procs")) || can(&leaf.join("tasks")),
                Some(d) => can(d),
                None => false,
            })
    }

    /// Rootless on pure cgroup v2 with no cgroupsPath: runc's default, the
    /// container's cgroup beside our own (`<parent of ours>/<id>`). In a
    /// delegated subtree (hull run from `systemd-run --user --scope`) that
    /// is the user's to make. None on a host with v1 hierarchies.
    pub fn beside_own(layout: &Layout, id: &str) -> Result<Option<FsManager>> {
        let Some((_, root)) = layout.v2.as_ref().filter(|_| layout.v1.is_empty()) else {
            return Ok(None);
        };
        let own = own_cgroups()?;
        let Some((_, mine)) = own.iter().find(|(k, _)| k.is_empty()) else {
            return Ok(None);
        };
        let mine = mine.strip_prefix(root).unwrap_or(mine);
        let parent = Path::new("/").join(mine.parent().unwrap_or(Path::new("")));
        Ok(Some(FsManager::new(layout, &parent.join(id))?))
    }

    /// Whether we may move a process into the v2 leaf: that takes write
    /// access to cgroup.procs of the cgroup ours and the leaf have in
    /// common (a user outside its delegated subtree lacks it).
    pub fn may_move_into(&self) -> bool {
        let (Some(leaf), Some(mount)) = (&self.paths.v2, &self.paths.v2_mount) else {
            return true;
        };
        let Ok(own) = own_cgroups() else {
            return false;
        };
        let Some((_, mine)) = own.iter().find(|(k, _)| k.is_empty()) else {
            return true;
        };
        let mine = mount.join(mine.strip_prefix("/").unwrap_or(mine));
        leaf.ancestors()
            .find(|a| mine.starts_with(a))
            .is_some_and(|common| writable_file(&common.join("cgroup.procs")))
    }

    /// Rootless: the first controller `res` needs that the container's v2
    /// parent does not offer it (not delegated to this user).
    fn undelegated(&self, res: &LinuxResources) -> Option<String> {
        // What was delegated is what the nearest directory hull did not make
        // may enable: one hull made offers only what is enabled above it yet.
        let leaf = self.paths.v2.as_deref()?;
        let parent = leaf
            .ancestors()
            .skip(1)
            .find(|d| !self.paths.created.iter().any(|c| c == d))?;
        let offered = files::read(parent, "cgroup.controllers").ok()?;
        let offered: Vec<&str> = offered.split_whitespace().collect();
        super::apply::v2_controllers_needed(res)
            .into_iter()
            .find(|c| !offered.contains(&c.as_str()))
    }

    /// The container's own directories, one per hierarchy.
    fn leaves(&self) -> impl Iterator<Item = &Path> {
        self.paths
            .v1
            .iter()
            .map(|(_, d)| d.as_path())
            .chain(self.paths.v2.as_deref())
    }

    /// Make the planned directories `only` selects, parents first. One that
    /// appeared meanwhile (another container sharing a parent) is not ours.
    fn make_dirs(&mut self, only: impl Fn(&Path) -> bool) -> Result<()> {
        let planned = self.paths.created.clone();
        for d in planned {
            if self.made.contains(&d) || !only(&d) {
                continue;
            }
            match fs::create_dir(&d) {
                Ok(()) => self.made.push(d.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    self.paths.created.retain(|c| c != &d);
                    continue;
                }
                // The rest stays on the record for teardown.
                Err(e) => return Err(CgroupError::io("mkdir", &d, e)),
            }
        }
        Ok(())
    }

    /// Record the systemd scope the directories are (the systemd driver's).
    pub(super) fn set_systemd_unit(&mut self, unit: &str, user: bool) {
        self.paths.systemd_unit = Some(unit.to_string());
        self.paths.systemd_user = user;
    }

    /// Drop every path: they turned out to be someone else's.
    pub(super) fn forget(&mut self) {
        self.paths = CgroupPaths::default();
    }

    /// Keep only the planned directories `mine` selects (the others are
    /// someone else's to make).
    pub(super) fn keep_planned(&mut self, mine: impl Fn(&Path) -> bool) {
        self.paths.created.retain(|d| mine(d));
    }

    /// `check_existing_leaves` before the first directory is made (the
    /// init may already be in one by the second phase).
    pub(super) fn check_existing_leaves_once(&mut self) -> Result<()> {
        if !self.checked {
            self.check_existing_leaves()?;
            self.checked = true;
        }
        Ok(())
    }

    fn check_existing_leaves(&self) -> Result<()> {
        for dir in self.leaves() {
            if self.paths.created.iter().any(|c| c == dir) || !dir.exists() {
                continue;
            }
            let mut pids = Vec::new();
            collect_pids(dir, &mut pids)?;
            if !pids.is_empty() {
                return Err(CgroupError::Invalid(format!(
                    "container's cgroup is not empty: {} process(es) found in {}",
                    pids.len(),
                    dir.display()
                )));
            }
        }
        if self.is_frozen() {
            return Err(CgroupError::Invalid(
                "container's cgroup unexpectedly frozen".into(),
            ));
        }
        Ok(())
    }

    fn task_dir(&self) -> Option<&Path> {
        self.paths
            .v2
            .as_deref()
            .or_else(|| self.paths.v1.first().map(|(_, p)| p.as_path()))
    }
}

impl Manager for FsManager {
    fn plan(&mut self) {
        let mut planned: Vec<PathBuf> = Vec::new();
        for leaf in self.leaves() {
            let mut missing: Vec<PathBuf> = leaf
                .ancestors()
                .take_while(|d| !d.exists())
                .map(Path::to_path_buf)
                .collect();
            missing.reverse();
            for d in missing {
                if !planned.contains(&d) {
                    planned.push(d);
                }
            }
        }
        self.paths.created = planned;
    }

    fn create_for_clone(&mut self) -> Result<()> {
        self.check_existing_leaves_once()?;
        let Some(leaf) = self.paths.v2.clone() else {
            return Ok(());
        };
        self.make_dirs(|d| leaf.starts_with(d))?;
        self.v2_fd = Some(open_dir(&leaf)?);
        Ok(())
    }

    fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        self.check_existing_leaves_once()?;
        self.make_dirs(|_| true)?;
        if let Some(leaf) = v1::dir_of(&self.paths.v1, "cpuset") {
            v1::fill_cpuset(leaf)?;
        }
        if self.v2_fd.is_none()
            && let Some(dir) = self.paths.v2.clone()
        {
            self.v2_fd = Some(open_dir(&dir)?);
        }
        let empty = LinuxResources::default();
        let res = resources.unwrap_or(&empty);
        if self.rootless && self.leaves().next().is_none() {
            // Rootless without a cgroup of its own: nothing to apply.
            return Ok(());
        }
        if !self.rootless {
            return apply::apply(&self.paths, res, self.v2_fd.as_ref(), Mode::Create);
        }
        if self.paths.v1.is_empty()
            && let Some(c) = self.undelegated(res)
        {
            return Err(CgroupError::Invalid(not_delegated(&c)));
        }
        apply::apply(&self.paths, res, self.v2_fd.as_ref(), Mode::CreateRootless)
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        apply::apply(&self.paths, resources, None, Mode::Update)
    }

    fn clone_into(&self) -> Option<RawFd> {
        self.v2_fd.as_ref().map(|f| f.as_raw_fd())
    }

    fn self_join_files(&self) -> Result<Vec<(OwnedFd, PathBuf)>> {
        let open = |dir: &PathBuf| {
            let path = dir.join("tasks");
            fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map(|f| (OwnedFd::from(f), dir.clone()))
                .map_err(|e| CgroupError::io("open", &path, e))
        };
        self.paths.v1.iter().map(|(_, dir)| open(dir)).collect()
    }

    fn add_task(&mut self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        if self.v2_fd.is_none()
            && let Some(dir) = &self.paths.v2
        {
            files::write(dir, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.task_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        Ok(out)
    }

    fn is_frozen(&self) -> bool {
        if let Some(dir) = v1::dir_of(&self.paths.v1, "freezer") {
            return files::holds(dir, "freezer.state", b"FROZEN");
        }
        if let Some(dir) = &self.paths.v2 {
            return files::holds(dir, "cgroup.freeze", b"1");
        }
        false
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        if let Some(dir) = v1::dir_of(&self.paths.v1, "freezer") {
            return freezer::set_v1(dir, frozen);
        }
        match &self.paths.v2 {
            Some(dir) => freezer::set_v2(dir, frozen),
            None => Err(CgroupError::Invalid(
                "no freezer cgroup on this host".into(),
            )),
        }
    }

    fn kill_all(&self) -> Result<()> {
        // One write kills every process, those forking included (Linux
        // 5.14+; on a hybrid host the processes are in the v2 directory too).
        let killed = match &self.paths.v2 {
            Some(dir) => match files::write(dir, "cgroup.kill", "1") {
                Ok(()) => true,
                Err(e) if files::is_not_found(&e) => false,
                Err(e) => return Err(e),
            },
            None => false,
        };
        if !killed {
            // Pids read from cgroup.procs could be reused before the kill
            // lands; frozen, none of them can exit (or fork) meanwhile.
            let froze = !self.is_frozen() && self.freeze(true).is_ok();
            for pid in self.pids()? {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if froze {
                let _ = self.freeze(false);
            }
        }
        // A v1-frozen task dies only once thawed.
        if self.is_frozen() {
            let _ = self.freeze(false);
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        stats::collect(&self.paths)
    }

    fn oom_kills(&self) -> u64 {
        if let Some(dir) = v1::dir_of(&self.paths.v1, "memory") {
            return files::read_key(dir, "memory.oom_control", "oom_kill").unwrap_or(0);
        }
        self.paths.v2.as_deref().map_or(0, |dir| {
            files::read_key(dir, "memory.events", "oom_kill").unwrap_or(0)
        })
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        if let Some(dir) = v1::dir_of(&self.paths.v1, "memory") {
            return OomWatch::v1(dir);
        }
        match &self.paths.v2 {
            Some(dir) if dir.join("memory.events").exists() => OomWatch::v2(dir),
            _ => Ok(OomWatch::nothing()),
        }
    }

    fn destroy(&self) -> Result<()> {
        // Remove exactly what create made, deepest first: the container's
        // own cgroups with any the container made inside them, and parents
        // hull made only if nothing else lives in them now. A cgroup that
        // existed before (shared by several containers) is left alone.
        let mut first_err = None;
        for d in self.paths.created.iter().rev() {
            let r = if self.leaves().any(|l| l == d) {
                rmdir_tree(d)
            } else {
                rmdir_if_unused(d)
            };
            if let Err(e) = r
                && first_err.is_none()
            {
                first_err = Some(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }
}

/// Whether we may write `p` (faccessat with our effective ids).
fn writable_file(p: &Path) -> bool {
    use nix::unistd::{AccessFlags, faccessat};
    faccessat(
        nix::fcntl::AT_FDCWD,
        p,
        AccessFlags::W_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .is_ok()
}

/// A limit on controller `c`, which this user's cgroup does not have: the
/// words name the drop-in that gives it (runc's docs/cgroup-v2.md).
fn not_delegated(c: &str) -> String {
    format!(
        "rootless: the {c} controller is not delegated to uid {} (a limit needs it): \
         delegate it with a drop-in for user@.service: [Service] Delegate=cpu cpuset io memory pids",
        nix::unistd::geteuid()
    )
}

/// O_RDONLY, not O_PATH: bpf(BPF_PROG_ATTACH) refuses O_PATH fds; clone3
/// takes either.
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| CgroupError::Io {
        op: "open",
        path: dir.to_path_buf(),
        errno,
    })
}

/// Pids in `dir` and every cgroup below it (a container may make its own).
/// A cgroup removed meanwhile (by systemd, collecting an emptied scope)
/// has no processes: its files are gone, or answer ENODEV while it dies.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENODEV) =>
        {
            return Ok(());
        }
        Err(e) => return Err(CgroupError::io("read", &dir.join("cgroup.procs"), e)),
    }
    for sub in subdirs(dir) {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Remove a cgroup and any cgroups the container made below it.
fn rmdir_tree(dir: &Path) -> Result<()> {
    // Usually there is nothing below: one rmdir, no directory listing.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for sub in subdirs(dir) {
        rmdir_tree(&sub)?;
    }
    rmdir_retry(dir)
}

/// A parent cgroup hull made: removed unless another cgroup or a process
/// is in it (the kernel refuses with EBUSY then).
fn rmdir_if_unused(dir: &Path) -> Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) =>
        {
            Ok(())
        }
        Err(e) => Err(CgroupError::io("rmdir", dir, e)),
    }
}

/// rmdir, retrying while the kernel still holds the cgroup busy (a killed
/// task can linger for a moment after waitpid).
fn rmdir_retry(dir: &Path) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(1);
    for attempt in 0.. {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // About two seconds in all before giving up.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 50 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(CgroupError::io("rmdir", dir, e)),
        }
    }
    Ok(())
}
