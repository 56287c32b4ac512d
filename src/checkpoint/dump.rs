//! `hull checkpoint`: CRIU dumps the container's process tree into an
//! image directory, as runc asks it to. Without `--leave-running` or
//! `--pre-dump` the container is gone afterwards (CRIU killed its
//! processes; hull removes the rest, as `delete` would).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::{
    DESCRIPTORS, base_opts, cg_mode, empty_ns, external_mounts, failed, make_dir, open_dir,
};
use crate::cli::CheckpointArgs;
use crate::container::{Container, Status, Store};
use crate::criu::rpc::{Features, Opts, ReqType, Request};

pub fn checkpoint(store: &Store, a: &CheckpointArgs, criu: &Path) -> Result<()> {
    let _lock = store.lock(&a.id)?;
    let c = store.load(&a.id)?;
    if !matches!(c.status, Status::Running | Status::Paused) {
        bail!(
            "Container cannot be checkpointed in {} state",
            c.status.as_str()
        );
    }
    if !nix::unistd::geteuid().is_root() {
        crate::warn!("hull checkpoint is untested with rootless containers");
    }
    let mode = cg_mode(&a.manage_cgroups_mode)?;
    let empty = empty_ns(&a.empty_ns)?;
    let page_server = page_server(&a.page_server)?;
    if a.status_fd >= 0 {
        writable_fd(a.status_fd)?;
    }
    let spec = c.saved_spec()?;
    let (image, work) = paths(&a.image_path, &a.work_path)?;
    if !a.parent_path.is_empty() {
        check_parent(&image, &a.parent_path)?;
    }
    let images = open_dir(&image)?;
    let work_fd = open_dir(&work)?;
    let (swrk, version) = super::start(criu, &[], false)?;
    if a.pre_dump || a.lazy_pages {
        need_features(&swrk, a.pre_dump, a.lazy_pages)?;
    }
    let mut opts = base_opts(&images, &work_fd, "dump.log", mode);
    opts.pid = Some(c.state.pid);
    opts.root = Some(c.state.rootfs.to_string_lossy().into_owned());
    opts.leave_running = a.leave_running;
    opts.tcp_established = a.tcp_established;
    opts.tcp_skip_in_flight = a.tcp_skip_in_flight;
    opts.link_remap = a.link_remap;
    opts.ext_unix_sk = a.ext_unix_sk;
    opts.shell_job = a.shell_job;
    opts.file_locks = a.file_locks;
    opts.auto_dedup = a.auto_dedup;
    opts.lazy_pages = a.lazy_pages;
    opts.empty_ns = Some(empty);
    opts.page_server = page_server;
    opts.config_file = super::config_file(&spec);
    if !a.parent_path.is_empty() {
        opts.parent_img = Some(a.parent_path.clone());
        opts.track_mem = true;
    }
    // CRIU before 3.15 writes the status byte itself.
    if a.status_fd >= 0 && version < 31500 {
        opts.status_fd = Some(a.status_fd);
    }
    container_opts(&mut opts, &c, &spec, version)?;
    write_descriptors(&image, c.state.pid)?;
    let typ = if a.pre_dump {
        ReqType::PreDump
    } else {
        ReqType::Dump
    };
    dump(swrk, typ, opts, a.status_fd, &work)?;
    if !a.leave_running
        && !a.pre_dump
        && let Err(e) = crate::container::destroy(&c.dir, &c.state)
    {
        // The image is whole and CRIU ended the processes: the checkpoint
        // succeeded (runc only logs this too); `delete` can finish.
        crate::warn!(
            "removing the checkpointed container: {e} (`delete --force {}` retries)",
            a.id
        );
    }
    Ok(())
}

/// What CRIU is told of the container itself: its external mounts and
/// namespaces, the cgroup to freeze.
fn container_opts(
    opts: &mut Opts,
    c: &Container,
    spec: &oci_spec::runtime::Spec,
    version: i64,
) -> Result<()> {
    let s = &c.state;
    opts.ext_mnt = external_mounts(spec, &s.bundle, &s.rootfs, &s.cgroup, true);
    opts.external = external_namespaces(spec, version)?;
    opts.freeze_cgroup = freezer(c, version);
    Ok(())
}

/// Send the request, answer CRIU's notifications, and wait for it.
fn dump(
    swrk: crate::criu::swrk::Swrk,
    typ: ReqType,
    opts: Opts,
    status_fd: i32,
    work: &Path,
) -> Result<()> {
    let mut req = Request::new(typ);
    req.opts = Some(opts);
    let pre_dump = typ == ReqType::PreDump;
    let answer = swrk.call(&req, |event, _, _| {
        if event == "status-ready" && status_fd >= 0 {
            // SAFETY: writing one byte from a live buffer to an fd the
            // caller passed (checked writable above).
            let n = unsafe { libc::write(status_fd, c"".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(format!(
                    "writing to --status-fd {status_fd}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        Ok(())
    });
    let exited = swrk.wait();
    answer.map_err(|e| failed(e, work, "dump.log"))?;
    match exited {
        // After a pre-dump CRIU waits for the final dump, which is another
        // hull's: it ends on the closed socket (runc ignores its status).
        Ok(s) if s.success() || pre_dump => Ok(()),
        Ok(s) => Err(failed(format!("criu failed: {s}"), work, "dump.log")),
        Err(e) => Err(anyhow!("waiting for criu: {e}")),
    }
}

/// The image directory (default `./checkpoint`) and the work directory
/// (default: the image directory), made if missing.
pub fn paths(image: &str, work: &str) -> Result<(PathBuf, PathBuf)> {
    let image = match image {
        "" => std::env::current_dir()
            .context("the current directory")?
            .join("checkpoint"),
        p => PathBuf::from(p),
    };
    make_dir(&image)?;
    let work = match work {
        "" => image.clone(),
        p => PathBuf::from(p),
    };
    make_dir(&work)?;
    Ok((image, work))
}

/// `--parent-path`: relative to the image directory, and there.
fn check_parent(image: &Path, parent: &str) -> Result<()> {
    if Path::new(parent).is_absolute() {
        bail!("--parent-path must be relative");
    }
    let p = image.join(parent);
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("invalid --parent-path: {} is not a directory", p.display()),
        Err(e) => bail!("invalid --parent-path: stat {}: {e}", p.display()),
    }
}

/// `--page-server ADDRESS:PORT`, in runc's words when it is not that.
fn page_server(s: &str) -> Result<Option<(String, i32)>> {
    if s.is_empty() {
        return Ok(None);
    }
    let Some((addr, port)) = s.rsplit_once(':') else {
        bail!("Use --page-server ADDRESS:PORT to specify page server");
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() || port.is_empty() {
        bail!("Use --page-server ADDRESS:PORT to specify page server");
    }
    let port: u16 = port.parse().map_err(|_| anyhow!("Invalid port number"))?;
    Ok(Some((addr.to_string(), i32::from(port))))
}

fn writable_fd(fd: i32) -> Result<()> {
    // SAFETY: F_GETFL only reads the flags of an fd number.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 || fl & libc::O_ACCMODE == libc::O_RDONLY {
        bail!("invalid --status-fd argument {fd}: not writable");
    }
    Ok(())
}

/// Pre-dump needs CRIU's memory tracking, lazy pages its userfaultfd.
fn need_features(swrk: &crate::criu::swrk::Swrk, mem: bool, lazy: bool) -> Result<()> {
    let want = Features {
        mem_track: mem.then_some(true),
        lazy_pages: lazy.then_some(true),
    };
    let got = swrk.features(want).map_err(|e| anyhow!(e))?;
    let mut missing = Vec::new();
    if mem && got.mem_track != Some(true) {
        missing.push("MemTrack");
    }
    if lazy && got.lazy_pages != Some(true) {
        missing.push("LazyPages");
    }
    if !missing.is_empty() {
        bail!("criu is missing features: [{}]", missing.join(" "));
    }
    Ok(())
}

/// Network and pid namespaces the container joined by path: CRIU leaves
/// them out of the image and restore hands them back.
fn external_namespaces(spec: &oci_spec::runtime::Spec, version: i64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for ns in crate::namespaces::namespaces(spec) {
        let (Some(key), Some(path)) = (super::external_ns_key(ns.typ()), ns.path().as_ref()) else {
            continue;
        };
        let needed = match ns.typ() {
            oci_spec::runtime::LinuxNamespaceType::Network => 31100,
            _ => 31500,
        };
        let name = super::ns_name(ns.typ());
        if version < needed {
            bail!(
                "criu lacks support for external {name} namespace during checkpointing process (old criu version?)"
            );
        }
        let ino = std::fs::metadata(path)
            .with_context(|| format!("the {name} namespace {}", path.display()))?
            .ino();
        out.push(format!("{name}[{ino}]:{key}"));
    }
    Ok(out)
}

/// The cgroup CRIU freezes while it dumps: the freezer's on v1, the
/// container's own on v2 (which CRIU freezes from 3.14 on).
fn freezer(c: &Container, version: i64) -> Option<String> {
    let cg = &c.state.cgroup;
    let v1 = cg
        .v1
        .iter()
        .find(|(m, _)| Path::new(m).file_name().is_some_and(|n| n == "freezer"))
        .map(|(_, d)| d);
    let v2 = cg.v2.as_ref().filter(|_| version >= 31400);
    v1.or(v2).map(|d| d.to_string_lossy().into_owned())
}

/// descriptors.json: what the init's fds 0, 1 and 2 are now.
fn write_descriptors(image: &Path, pid: i32) -> Result<()> {
    let names: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = image.join(DESCRIPTORS);
    let data = serde_json::to_vec(&names)?;
    std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
    let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_addresses_as_runc_reads_them() {
        assert_eq!(
            page_server("10.0.0.1:27").unwrap(),
            Some(("10.0.0.1".into(), 27))
        );
        assert_eq!(page_server("[::1]:27").unwrap(), Some(("::1".into(), 27)));
        assert_eq!(page_server("").unwrap(), None);
        for bad in ["nope", ":27", "host:"] {
            assert_eq!(
                page_server(bad).unwrap_err().to_string(),
                "Use --page-server ADDRESS:PORT to specify page server"
            );
        }
        assert_eq!(
            page_server("host:99999").unwrap_err().to_string(),
            "Invalid port number"
        );
    }

    #[test]
    fn a_parent_path_is_relative_and_there() {
        let dir = std::env::temp_dir().join(format!("hull-parent-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("img/../pre")).unwrap();
        std::fs::create_dir_all(dir.join("img")).unwrap();
        assert!(check_parent(&dir.join("img"), "../pre").is_ok());
        let abs = check_parent(&dir.join("img"), "/pre")
            .unwrap_err()
            .to_string();
        let gone = check_parent(&dir.join("img"), "../gone")
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(abs, "--parent-path must be relative");
        assert!(gone.starts_with("invalid --parent-path: stat "), "{gone}");
    }
}
