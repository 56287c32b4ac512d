//! The cgroupfs driver: creates directories under the host's v1 hierarchies
//! and/or its v2 mount and writes limits into their files.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::layout::{Layout, own_cgroups};
use super::{CgroupError, CgroupPaths, Manager, Result, v1, v2};

pub struct FsManager {
    paths: CgroupPaths,
    v2_fd: Option<OwnedFd>,
    /// Extra device rules implied by linux.devices.
    pub extra_device_rules: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
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
        }
        Ok(FsManager {
            paths,
            v2_fd: None,
            extra_device_rules: Vec::new(),
        })
    }

    /// A manager for cgroups recorded in state.json.
    pub fn from_paths(paths: CgroupPaths) -> FsManager {
        FsManager {
            paths,
            v2_fd: None,
            extra_device_rules: Vec::new(),
        }
    }

    fn mkdir_p(&mut self, dir: &Path, init_cpuset: bool) -> Result<()> {
        let mut missing = Vec::new();
        let mut cur = dir;
        while !cur.exists() {
            missing.push(cur.to_path_buf());
            match cur.parent() {
                Some(p) => cur = p,
                None => break,
            }
        }
        for d in missing.into_iter().rev() {
            match fs::create_dir(&d) {
                Ok(()) => self.paths.created.push(d.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(CgroupError::io("mkdir", &d, e)),
            }
            if init_cpuset {
                v1::inherit_cpuset(&d)?;
            }
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
    fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        let v1 = self.paths.v1.clone();
        for (ctrls, dir) in &v1 {
            let cpuset = ctrls.split(',').any(|c| c == "cpuset");
            self.mkdir_p(dir, cpuset)?;
        }
        if let Some(dir) = self.paths.v2.clone() {
            self.mkdir_p(&dir, false)?;
            let fd = nix::fcntl::open(
                &dir,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|errno| CgroupError::Io {
                op: "open",
                path: dir.clone(),
                errno,
            })?;
            self.v2_fd = Some(fd);
        }
        let Some(res) = resources else { return Ok(()) };
        let pure_v2 = self.paths.v1.is_empty();
        if pure_v2 {
            let dir = self.paths.v2.clone().unwrap_or_default();
            v2::apply(&dir, res, &self.extra_device_rules)
        } else {
            v1::apply(&self.paths.v1, res, &self.extra_device_rules)?;
            if let Some(dir) = &self.paths.v2 {
                v2::apply_hybrid(dir, res)?;
            }
            Ok(())
        }
    }

    fn clone_into(&self) -> Option<RawFd> {
        self.v2_fd.as_ref().map(|f| f.as_raw_fd())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for (_, dir) in &self.paths.v1 {
            let f = dir.join("cgroup.procs");
            fs::write(&f, &pid).map_err(|e| CgroupError::io("write", &f, e))?;
        }
        if self.v2_fd.is_none()
            && let Some(dir) = &self.paths.v2
        {
            let f = dir.join("cgroup.procs");
            fs::write(&f, &pid).map_err(|e| CgroupError::io("write", &f, e))?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.task_dir() else {
            return Ok(Vec::new());
        };
        let f = dir.join("cgroup.procs");
        match fs::read_to_string(&f) {
            Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(CgroupError::io("read", &f, e)),
        }
    }

    fn is_frozen(&self) -> bool {
        if let Some(dir) = v1::dir_of(&self.paths.v1, "freezer") {
            return fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN");
        }
        if let Some(dir) = &self.paths.v2 {
            return fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        }
        false
    }

    fn destroy(&self) -> Result<()> {
        // Remove exactly what create made, deepest first: a cgroup that
        // existed before (shared by several containers) is left alone.
        let mut first_err = None;
        for d in self.paths.created.iter().rev() {
            if let Err(e) = rmdir_retry(d)
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

/// rmdir, retrying while the kernel still holds the cgroup busy (a killed
/// task can linger for a moment after waitpid).
fn rmdir_retry(dir: &Path) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(1);
    for attempt in 0.. {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 8 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(CgroupError::io("rmdir", dir, e)),
        }
    }
    Ok(())
}
