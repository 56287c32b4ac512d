//! Checkpoint and restore through CRIU, as runc drives it: what both verbs
//! give CRIU from the container's config (external mounts, masked files,
//! namespaces given by path, the criu config file), its version check,
//! its log. `dump.rs` is `hull checkpoint`; `restore` makes a container,
//! so it lives with create in `launch/restore.rs` and uses this module.
//! docs/design/checkpoint-restore.md has the research behind it.

pub mod dump;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::criu::rpc::{CgMode, Opts};
use crate::criu::swrk::Swrk;
use crate::plan::CgroupPaths;

/// The oldest CRIU runc works with (3.0); Debian 12 has 3.17.
pub const MIN_VERSION: i64 = 30000;

/// The init's stdio as it was at the checkpoint (`/proc/PID/fd/0..2`):
/// restore hands the new stdio to CRIU in place of those that were pipes.
pub const DESCRIPTORS: &str = "descriptors.json";

/// The CRIU to run: `--criu`, else `criu` from $PATH.
pub fn criu_binary(flag: Option<&str>) -> PathBuf {
    PathBuf::from(flag.unwrap_or("criu"))
}

/// `criu swrk` started and its version checked (runc's rule and words);
/// the version as runc numbers it.
pub fn start(criu: &Path, extra: &[std::os::fd::RawFd], stdio: bool) -> Result<(Swrk, i64)> {
    let swrk = Swrk::spawn(criu, extra, stdio).map_err(|e| {
        anyhow!(
            "CRIU version check failed: exec {}: {e} (checkpoint and restore need CRIU {} or newer: install the criu package)",
            criu.display(),
            version_name(MIN_VERSION)
        )
    })?;
    let v = swrk.version().map_err(|e| anyhow!(e))?;
    if v.number() < MIN_VERSION {
        bail!(
            "CRIU version {} must be {MIN_VERSION} or higher (CRIU {} or newer)",
            v.number(),
            version_name(MIN_VERSION)
        );
    }
    crate::debug!("criu {} (pid {})", v.number(), swrk.pid());
    Ok((swrk, v.number()))
}

fn version_name(n: i64) -> String {
    format!("{}.{}", n / 10000, n / 100 % 100)
}

/// `--manage-cgroups-mode`, in runc's words when it is none of its values.
pub fn cg_mode(s: &str) -> Result<CgMode> {
    CgMode::parse(s).map_err(|e| anyhow!(e))
}

/// `--empty-ns`: the network namespace always (hull does not manage
/// network devices, so CRIU must not restore them); runc names no other.
pub fn empty_ns(names: &[String]) -> Result<u32> {
    if let Some(n) = names.iter().find(|n| n.as_str() != "network") {
        bail!("namespace {n:?} is not supported");
    }
    Ok(libc::CLONE_NEWNET as u32)
}

/// The `org.criu.config` annotation: absent is runc's default file, empty
/// is none.
pub fn config_file(spec: &Spec) -> Option<String> {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        None => Some("/etc/criu/runc.conf".into()),
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p.clone()),
    }
}

/// The name CRIU knows a namespace by (/proc/PID/ns).
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        other => crate::namespaces::spec_name(other),
    }
}

/// Where the key of an external namespace comes from (runc's names).
pub fn external_ns_key(t: LinuxNamespaceType) -> Option<&'static str> {
    match t {
        LinuxNamespaceType::Network => Some("extRootNetNS"),
        LinuxNamespaceType::Pid => Some("extRootPidNS"),
        _ => None,
    }
}

/// Mounts CRIU must treat as external (it neither dumps nor remakes
/// them: the runtime binds them): every bind mount and device node, each
/// by its destination as resolved inside the rootfs; on dump its value is
/// the destination again, on restore the source to bind. Masked files are
/// binds of /dev/null (runc's way); a cgroup mount is binds unless it is
/// a cgroup2 mount under a new cgroup namespace (`cgroup_binds`).
pub fn external_mounts(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    cgroup: &CgroupPaths,
    dump: bool,
) -> Vec<(String, String)> {
    let root = std::fs::File::open(rootfs).ok();
    let resolve = |dest: &Path| -> String {
        let fallback = dest.to_string_lossy().into_owned();
        let Some(root) = &root else { return fallback };
        resolve_in_root(root.as_raw_fd(), rootfs, dest).unwrap_or(fallback)
    };
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if m.typ().as_deref() == Some("cgroup") {
            let dest = resolve(m.destination());
            for (key, dir) in cgroup_binds(&dest, cgroup, spec) {
                let val = if dump { key.clone() } else { dir };
                out.push((key, val));
            }
            continue;
        }
        let opts = crate::plan::mount_options::parse(m.options().as_deref().unwrap_or_default());
        if !crate::plan::mounts::is_bind(m, &opts) {
            continue;
        }
        let dest = resolve(m.destination());
        let val = match (dump, crate::plan::mounts::bind_source(m, bundle)) {
            (false, Some(src)) => src.to_string_lossy().into_owned(),
            _ => dest.clone(),
        };
        out.push((dest, val));
    }
    let linux = spec.linux().as_ref();
    for d in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
    {
        let dest = resolve(d.path());
        out.push((dest.clone(), dest));
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    if dump {
        for p in masked {
            let is_file = root.as_ref().is_some_and(|r| {
                crate::rootfs::paths::open_in_root(r.as_raw_fd(), Path::new(p), libc::O_PATH)
                    .ok()
                    .and_then(|fd| nix::sys::stat::fstat(&fd).ok())
                    .is_some_and(|st| st.st_mode & libc::S_IFMT != libc::S_IFDIR)
            });
            if is_file {
                out.push((p.clone(), "/dev/null".into()));
            }
        }
    } else if !masked.is_empty() {
        out.push(("/dev/null".into(), "/dev/null".into()));
    }
    out
}

/// The binds hull makes for a cgroup mount at `dest` (rootfs/mounts.rs):
/// on a v2-only host none under a new cgroup namespace (a mount of its
/// own, which CRIU remakes), else the container's v2 directory (a joined
/// namespace) or the host's /sys/fs/cgroup (none) at `dest`; on v1 and
/// hybrid hosts one bind per v1 hierarchy and the v2 one at `dest/unified`.
fn cgroup_binds(dest: &str, cg: &CgroupPaths, spec: &Spec) -> Vec<(String, String)> {
    let path = |d: &PathBuf| d.to_string_lossy().into_owned();
    if cg.v1.is_empty() {
        if crate::namespaces::is_new(spec, LinuxNamespaceType::Cgroup) {
            return Vec::new();
        }
        let cgroupns = crate::namespaces::has(spec, LinuxNamespaceType::Cgroup);
        return vec![(dest.to_string(), path(&cg.v2_bind_source(cgroupns)))];
    }
    let mut out: Vec<(String, String)> = cg
        .v1
        .iter()
        .map(|(point, dir)| {
            let base = Path::new(point).file_name().map(|n| n.to_string_lossy());
            let base = base.unwrap_or_default();
            let name = base.strip_prefix("name=").unwrap_or(&base);
            (format!("{dest}/{name}"), path(dir))
        })
        .collect();
    if let Some(dir) = &cg.v2 {
        out.push((format!("{dest}/unified"), path(dir)));
    }
    out
}

/// `dest` as it resolves inside the rootfs (a symlink on the way taken as
/// the container sees it), as an absolute path in the container.
fn resolve_in_root(root: std::os::fd::RawFd, rootfs: &Path, dest: &Path) -> Option<String> {
    let fd = crate::rootfs::paths::open_in_root(root, dest, libc::O_PATH).ok()?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let real_root = std::fs::canonicalize(rootfs).ok()?;
    let inner = real.strip_prefix(&real_root).ok()?;
    Some(Path::new("/").join(inner).to_string_lossy().into_owned())
}

/// The options every dump and restore sets (runc's `criuOptions`).
pub fn base_opts(images: &OwnedFd, work: &OwnedFd, log: &str, mode: CgMode) -> Opts {
    Opts {
        images_dir_fd: images.as_raw_fd(),
        work_dir_fd: Some(work.as_raw_fd()),
        log_level: Some(4),
        log_file: Some(log.into()),
        manage_cgroups: true,
        manage_cgroups_mode: Some(mode),
        notify_scripts: true,
        orphan_pts_master: true,
        ..Opts::default()
    }
}

/// A directory for CRIU, opened (it reads it through /proc/<hull>/fd).
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if !f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        bail!("{} is not a directory", path.display());
    }
    Ok(f.into())
}

/// Make `path` (and its parents) as a directory only root may read.
pub fn make_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// CRIU's error as hull says it: its reply, then the last error line of
/// its log and where the whole log is.
pub fn failed(err: String, dir: &Path, log: &str) -> anyhow::Error {
    let path = dir.join(log);
    match last_error_line(&path) {
        Some(line) => anyhow!("{err}: {line} (log: {})", path.display()),
        None => anyhow!("{err} (log: {})", path.display()),
    }
}

/// The last line of a CRIU log that says `Error`, without its timestamp.
fn last_error_line(path: &Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let line = data
        .split(|&b| b == b'\n')
        .rfind(|l| l.windows(5).any(|w| w == b"Error"))?;
    let text = String::from_utf8_lossy(line);
    let text = match text.trim_start().strip_prefix('(') {
        Some(rest) => rest.split_once(')').map_or(rest, |(_, t)| t),
        None => &text,
    };
    Some(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_namespace_is_always_empty() {
        assert_eq!(empty_ns(&[]).unwrap(), libc::CLONE_NEWNET as u32);
        let named = empty_ns(&["network".into()]).unwrap();
        assert_eq!(named, libc::CLONE_NEWNET as u32);
        for other in ["ipc", "bogus"] {
            assert_eq!(
                empty_ns(&[other.into()]).unwrap_err().to_string(),
                format!("namespace \"{other}\" is not supported")
            );
        }
    }

    #[test]
    fn the_criu_error_names_the_last_error_of_its_log() {
        let dir = std::env::temp_dir().join(format!("hull-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("dump.log"),
            "(00.001) Dumping\n(00.002) Error (criu/cr-dump.c:1): first\n(00.003) Error (criu/mount.c:9): Mount 42 ./x is not external\n(00.004) Unlock\n",
        )
        .unwrap();
        let e = failed("criu failed: type DUMP errno 0".into(), &dir, "dump.log").to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.starts_with(
                "criu failed: type DUMP errno 0: Error (criu/mount.c:9): Mount 42 ./x is not external (log: "
            ),
            "{e}"
        );
    }
}
