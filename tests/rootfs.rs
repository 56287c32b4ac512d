//! The container's filesystem: mounts, /dev, masked and read-only paths,
//! pivot_root and --no-pivot, and hostile rootfs contents that try to
//! redirect hull's mounts and writes onto the host.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A private copy of the test rootfs that a test may booby-trap.
fn own_rootfs(b: &mut Bundle) -> PathBuf {
    let dir = b.dir.join("rootfs");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs())
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    b.config["root"]["path"] = json!(dir.display().to_string());
    b.save();
    dir
}

fn run(b: &Bundle) -> (i32, String, String) {
    let out = b.run(&b.id("fs"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mountinfo_line<'a>(info: &'a str, mountpoint: &str) -> &'a str {
    info.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mountpoint))
        .unwrap_or_else(|| panic!("{mountpoint} not mounted:\n{info}"))
}

#[test]
fn mounts_get_their_options() {
    require_root!();
    let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
    let src = b.dir.join("shared");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
    mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700", "noatime"]}));
    mounts.push(json!({"destination": "/rel", "type": "bind", "source": "shared", "options": ["bind", "rro"]}));
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let data = mountinfo_line(&out, "/data");
    assert!(data.contains(" ro,nosuid,nodev,noexec"), "{data}");
    let scratch = mountinfo_line(&out, "/scratch");
    assert!(
        scratch.contains("noatime")
            && scratch.contains("size=1024k")
            && scratch.contains("mode=700"),
        "{scratch}"
    );
    assert!(
        mountinfo_line(&out, "/rel").contains(" ro,"),
        "relative bind source is taken from the bundle"
    );
    let root = mountinfo_line(&out, "/");
    assert!(root.contains(" ro,"), "root.readonly: {root}");
    for p in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        mountinfo_line(&out, p);
    }
}

#[test]
fn devices_and_symlinks() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "ls -ln /dev | tr -s ' '; for l in ptmx fd stdin; do readlink /dev/$l; done",
    ]);
    b.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 7, "gid": 8}]);
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no /dev/{name}:\n{out}"))
            .to_string()
    };
    for (name, maj, min) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let l = line(name);
        assert!(l.starts_with("crw-rw-rw- 1 0 0"), "{l}");
        assert!(l.contains(&format!(" {maj}, {min} ")), "{l}");
    }
    let fuse = line("fuse");
    assert!(fuse.starts_with("crw-r----- 1 7 8 10, 229"), "{fuse}");
    assert!(
        out.contains("pts/ptmx") && out.contains("/proc/self/fd"),
        "{out}"
    );
}

#[test]
fn masked_and_readonly_paths() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/keys | wc -c; ls /proc/acpi | wc -l; echo x > /proc/sys/kernel/hostname && echo WROTE; touch /proc/acpi/f && echo WROTE2; echo done",
    ]);
    b.config["linux"]["maskedPaths"] = json!(["/proc/keys", "/proc/acpi", "/proc/does-not-exist"]);
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "masked file reads empty");
    assert_eq!(lines[1].trim(), "0", "masked dir is empty");
    assert!(!out.contains("WROTE"), "{out}");
    assert!(out.ends_with("done\n"));
}

#[test]
fn many_masked_directories_share_one_tmpfs() {
    require_root!();
    let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
    b.config["linux"]["maskedPaths"] = json!([
        "/proc/acpi",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/tty",
        "/proc/driver"
    ]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let devs: std::collections::HashSet<&str> = [
        "/proc/acpi",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/tty",
        "/proc/driver",
    ]
    .iter()
    .filter(|p| out.lines().any(|l| l.split(' ').nth(4) == Some(p)))
    .map(|p| mountinfo_line(&out, p).split(' ').nth(2).unwrap())
    .collect();
    assert_eq!(devs.len(), 1, "one superblock for all masks:\n{out}");
}

#[test]
fn no_pivot_from_a_tmpfs_root() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "cat /proc/self/mountinfo; echo ok"]);
    let tmp = b.dir.join("tmpfsroot");
    std::fs::create_dir_all(&tmp).unwrap();
    assert!(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&tmp)
            .status()
            .unwrap()
            .success()
    );
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", rootfs().display()))
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(status.success());
    b.config["root"] = json!({"path": tmp.display().to_string(), "readonly": false});
    b.save();
    let id = b.id("nopivot");
    let out = b.output_of(b.cmd().args([
        "run",
        "--no-pivot",
        "--bundle",
        b.dir.to_str().unwrap(),
        &id,
    ]));
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(&tmp)
        .status();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("ok\n"));
}

#[test]
fn rootfs_propagation_modes() {
    require_root!();
    // A slave needs a shared master: only when the host's / is shared.
    let host_root_shared = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/") && l.contains(" shared:"));
    let slave_tag = if host_root_shared { "master:" } else { "" };
    for (mode, tag) in [
        ("shared", "shared:"),
        ("slave", slave_tag),
        ("private", ""),
        ("unbindable", "unbindable"),
    ] {
        let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
        b.config["linux"]["rootfsPropagation"] = json!(mode);
        b.save();
        let (code, out, err) = run(&b);
        assert_eq!(code, 0, "{mode}: {err}");
        let root = mountinfo_line(&out, "/");
        let optional: Vec<&str> = root
            .split(" - ")
            .next()
            .unwrap()
            .split(' ')
            .skip(6)
            .collect();
        if tag.is_empty() {
            assert!(optional.is_empty(), "{mode}: {root}");
        } else {
            assert!(
                optional.iter().any(|o| o.starts_with(tag)),
                "{mode}: {root}"
            );
        }
    }
}

#[test]
fn host_mount_propagates_into_a_shared_container() {
    require_root!();
    // rslave (the default): a mount made on the host under a bind source
    // after start shows up in the container.
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "for i in $(seq 100); do [ -e /vol/m/marker ] && echo SEEN && exit 0; sleep 0.05; done; exit 1",
    ]);
    let vol = b.dir.join("vol");
    std::fs::create_dir_all(vol.join("m")).unwrap();
    assert!(
        std::process::Command::new("mount")
            .args(["--bind", "--make-shared"])
            .arg(&vol)
            .arg(&vol)
            .status()
            .unwrap()
            .success()
    );
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "rslave"]}));
    b.save();
    let id = b.id("prop");
    let child = b
        .cmd()
        .args(["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    b.wait_status(&id, "running");
    let src = b.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("marker"), "x").unwrap();
    assert!(
        std::process::Command::new("mount")
            .arg("--bind")
            .arg(&src)
            .arg(vol.join("m"))
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let _ = std::process::Command::new("umount")
        .arg("-R")
        .arg(&vol)
        .status();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SEEN");
}

/// Assert that the host path was not touched by a hostile rootfs.
fn host_untouched(p: &Path, before: &std::fs::Metadata) {
    let after = std::fs::symlink_metadata(p).unwrap();
    assert_eq!(after.len(), before.len(), "{} changed", p.display());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(after.mtime(), before.mtime(), "{} changed", p.display());
}

#[test]
fn hostile_mount_destinations_stay_inside_the_rootfs() {
    require_root!();
    let host_etc = std::fs::symlink_metadata("/etc/hostname").unwrap();
    for target in ["/", "/etc", "../../..", "../../../../../../etc"] {
        let mut b = Bundle::new(&["sh", "-c", "ls /evil/ | head -3; echo ok"]);
        let root = own_rootfs(&mut b);
        std::os::unix::fs::symlink(target, root.join("evil")).unwrap();
        let mounts = b.config["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
        mounts.push(json!({"destination": "/evil/hostname", "type": "bind", "source": "/dev/null", "options": ["bind"]}));
        b.save();
        let (code, out, err) = run(&b);
        // Whatever happens inside, the host's / and /etc are never mounted on.
        let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !host_mounts
                .lines()
                .any(|l| matches!(l.split(' ').nth(4), Some("/etc") | Some("/etc/hostname"))),
            "{target}: host mount table changed"
        );
        host_untouched(Path::new("/etc/hostname"), &host_etc);
        let _ = (code, out, err);
    }
}

#[test]
fn dev_null_symlink_is_not_used_for_masking() {
    require_root!();
    // CVE-2025-31133 pattern: /dev is the image's own (bound), and its
    // null is a symlink to a host file.
    let mut b = Bundle::new(&["cat", "/proc/keys"]);
    let root = own_rootfs(&mut b);
    let dev = b.dir.join("devdir");
    std::fs::create_dir_all(&dev).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    mounts
        .push(json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}));
    b.config["linux"]["maskedPaths"] = json!(["/proc/keys"]);
    b.save();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let (code, _, err) = run(&b);
    assert_ne!(
        code, 0,
        "masking through a symlinked /dev/null must be refused"
    );
    assert!(err.contains("/dev/null"), "{err}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    let _ = root;
}

#[test]
fn console_target_symlink_is_refused() {
    require_root!();
    // CVE-2025-52565 pattern: /dev/console pre-planted as a symlink to a
    // host file in an image-provided /dev.
    let mut b = Bundle::new(&["true"]);
    own_rootfs(&mut b);
    let dev = b.dir.join("devdir");
    std::fs::create_dir_all(dev.join("pts")).unwrap();
    let victim = b.dir.join("victim");
    std::fs::write(&victim, "host data").unwrap();
    std::os::unix::fs::symlink(&victim, dev.join("console")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/dev");
    mounts.insert(
        0,
        json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}),
    );
    b.config["process"]["terminal"] = true.into();
    b.save();
    let sock = b.dir.join("c.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let _ = listener.accept();
    });
    let id = b.id("console");
    let out = b.hull(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(victim.to_str().unwrap()),
        "pty was bound over a host file"
    );
    if out.status.success() {
        b.ok(&["delete", "--force", &id]);
    }
}

#[test]
fn container_cannot_write_the_hull_binary() {
    require_root!();
    // CVE-2019-5736 pattern: the entrypoint is /proc/self/exe, then the
    // process tries to open its own executable for writing.
    let mut b = Bundle::new(&["/proc/self/exe", "--version"]);
    b.config["process"]["args"] = json!(["/proc/self/exe", "--version"]);
    b.save();
    let (code, out, _err) = run(&b);
    if code == 0 {
        // It ran the sealed copy of hull, not the host file.
        assert!(out.contains("hull"), "{out}");
    }
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "readlink /proc/1/exe; echo x >> /proc/1/exe && echo WROTE; echo done",
    ]);
    b.config["process"]["capabilities"] = json!({"bounding": ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"], "effective": ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"], "permitted": ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"]});
    b.save();
    let id = b.id("exe");
    b.create(&id);
    // The init (still hull, waiting for start) does not run from the host
    // file: a read-only overlay or a sealed memfd, never writable.
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let host_md = std::fs::metadata(hull_bin()).unwrap();
    assert!(
        exe.dev() != host_md.dev() || exe.ino() != host_md.ino(),
        "init runs the host binary"
    );
    if let Ok(mut w) = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{pid}/exe"))
    {
        use std::io::Write;
        assert!(w.write_all(b"x").is_err());
    }
    let host = std::fs::metadata(hull_bin()).unwrap();
    b.ok(&["delete", "--force", &id]);
    let after = std::fs::metadata(hull_bin()).unwrap();
    assert_eq!(host.len(), after.len());
}

#[test]
fn tmpcopyup_copies_the_image_directory() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "ls -ln /etc/copied | tr -s ' ' | cut -d' ' -f1,3,4,9-; cat /etc/copied/sub/file; readlink /etc/copied/link; touch /etc/copied/new && echo writable",
    ]);
    let root = own_rootfs(&mut b);
    let d = root.join("etc/copied");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/file"), "content").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
    std::os::unix::fs::chown(d.join("sub"), Some(12), Some(34)).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/etc/copied", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}));
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("drwxr-xr-x 12 34 sub"), "{out}");
    assert!(out.contains("content/etc/passwd\nwritable"), "{out}");
    // The image itself is unchanged.
    assert!(!d.join("new").exists());
}

/// Whether `dir`'s filesystem can be id-mapped on this kernel; if not, the
/// caller skips with the reason (the cgroup v2 VM runs from an initramfs).
fn idmap_capable(dir: &Path) -> bool {
    let fs = nix::sys::statfs::statfs(dir).unwrap().filesystem_type().0 as u64;
    // ext2/3/4, xfs, btrfs: idmapped mounts since 5.12-5.15.
    let ok = [0xEF53, 0x5846_5342, 0x9123_683E].contains(&fs);
    if !ok {
        eprintln!(
            "skipped: {} is on a filesystem ({fs:#x}) without idmapped mount support",
            dir.display()
        );
    }
    ok
}

/// Files owned by 0, 5 and 3000 on disk, as a bind source.
fn owned_files(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, id) in [("root0", 0), ("u5", 5), ("far", 3000)] {
        let f = dir.join(name);
        std::fs::write(&f, name).unwrap();
        std::os::unix::fs::chown(&f, Some(id), Some(id)).unwrap();
    }
}

/// A bundle running `script`, with `src/` holding `owned_files`; None
/// (skipped) when the filesystem cannot be id-mapped.
fn idmap_bundle(script: &str) -> Option<(Bundle, PathBuf)> {
    let b = Bundle::new(&["sh", "-c", script]);
    if !idmap_capable(&b.dir) {
        return None;
    }
    let src = b.dir.join("src");
    owned_files(&src);
    Some((b, src))
}

fn idmap(host: u32, size: u32) -> serde_json::Value {
    json!([{"containerID": 0, "hostID": host, "size": size}])
}

/// An id-mapped bind whose source lies under an earlier mount of the same
/// config (`<rootfs>/mnt/x` after a bind on `/mnt`): its source is built
/// when the init reaches it, in `mounts` order, as runc does (issue 25,
/// item 3c); built before any mount it did not exist (ENOENT).
#[test]
fn an_idmapped_source_under_an_earlier_mount_resolves() {
    require_root!();
    let Some((mut b, src)) = idmap_bundle("stat -c '%n %u' /data/root0") else {
        return;
    };
    let rootfs = std::fs::canonicalize(b.private_rootfs()).unwrap();
    std::fs::create_dir_all(rootfs.join("mnt")).unwrap();
    let parent = b.dir.join("parent");
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::rename(&src, parent.join("x")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/mnt", "type": "bind", "source": parent, "options": ["rbind"]}),
    );
    mounts.push(json!({"destination": "/data", "type": "bind",
        "source": rootfs.join("mnt/x"), "options": ["rbind", "idmap"],
        "uidMappings": idmap(1000, 10), "gidMappings": idmap(1000, 10)}));
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!((code, out.as_str()), (0, "/data/root0 1000\n"), "{err}");
}

/// In a new user namespace, a bind source the container's root cannot
/// reach (under a 0700 directory of the host's root) is opened by the
/// parent from the host's side and handed in, as runc does (issue 25,
/// item 3b): before, EACCES. Differential with runc.
#[test]
fn an_unreachable_bind_source_is_opened_from_the_host() {
    require_root!();
    // /tmp exists in the image: a rootfs the mapped root does not own
    // cannot get a new mount point.
    let mut b = Bundle::new(&["cat", "/tmp/f"]);
    b.add_user_namespace(100000, 65536);
    let locked = b.dir.join("locked");
    std::fs::create_dir_all(locked.join("inner")).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(locked.join("inner/f"), "reached\n").unwrap();
    std::fs::set_permissions(
        locked.join("inner/f"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp",
        "type": "bind", "source": locked.join("inner"), "options": ["rbind", "ro"]}));
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!((code, out.as_str()), (0, "reached\n"), "{err}");
    if let Some(r) = runc_run(&b, &b.id("unreachable-runc"), &[]) {
        assert_eq!(String::from_utf8_lossy(&r.stdout), "reached\n");
    }
}

#[test]
fn idmapped_mount_with_its_own_mappings() {
    require_root!();
    let Some((mut b, src)) = idmap_bundle(
        "cd /data && stat -c '%n %u %g' root0 u5 far; grep ' /data ' /proc/self/mountinfo",
    ) else {
        return;
    };
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "idmap", "nosuid"],
        "uidMappings": idmap(1000, 10), "gidMappings": idmap(2000, 10)}));
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    // On-disk 0 and 5 appear shifted by the mapping; 3000 is outside it.
    let lines: Vec<&str> = out.lines().take(3).collect();
    assert_eq!(
        lines,
        ["root0 1000 2000", "u5 1005 2005", "far 65534 65534"],
        "{out}"
    );
    let mnt = mountinfo_line(&out, "/data");
    assert!(mnt.contains("idmapped") && mnt.contains("nosuid"), "{mnt}");
}

#[test]
fn idmapped_mount_takes_the_container_user_namespace() {
    require_root!();
    let Some((mut b, src)) =
        idmap_bundle("stat -c '%n %u' /tmp/root0 /root/root0 && touch /tmp/made-inside")
    else {
        return;
    };
    b.add_user_namespace(100000, 65536);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    // Existing directories: the container's root may not create any in
    // the shared (host-owned) rootfs.
    mounts.push(
        json!({"destination": "/tmp", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
    );
    mounts.push(
        json!({"destination": "/root", "type": "bind", "source": src, "options": ["bind", "ro"]}),
    );
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    // Without the idmap the container's root sees the host's root as
    // nobody; through it, as itself, and its writes land as on-disk root.
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["/tmp/root0 0", "/root/root0 65534"]
    );
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(src.join("made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (0, 0));
}

/// Unmounts (lazily) on drop, so a failing test leaves no host mount.
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A destination that starts with the rootfs path is taken relative to the
/// rootfs, as runc has always done (issue 25, item 3a): differential.
#[test]
fn a_destination_under_the_rootfs_path_is_inside_the_rootfs() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "grep -c ' /mnt/in ' /proc/self/mountinfo"]);
    let rootfs = std::fs::canonicalize(b.private_rootfs()).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": rootfs.join("mnt/in"), "type": "tmpfs", "source": "tmpfs"
    }));
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!((code, out.as_str()), (0, "1\n"), "{err}");
    assert!(!rootfs.join(rootfs.strip_prefix("/").unwrap()).exists());
    if let Some(r) = runc_run(&b, &b.id("rootfsdest-runc"), &[]) {
        assert_eq!(String::from_utf8_lossy(&r.stdout), "1\n");
    }
}

/// The per-mount flags (field 6) of each mountpoint, from mountinfo.
fn vfs_flags(info: &str, points: &[&str]) -> Vec<String> {
    points
        .iter()
        .map(|p| {
            mountinfo_line(info, p)
                .split(' ')
                .nth(5)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// A tmpfs on the host mounted `ro,nosuid,noatime`, unmounted on drop.
fn flagged_source(b: &Bundle) -> (PathBuf, HostMount) {
    let src = b.dir.join("flagged");
    std::fs::create_dir_all(&src).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,nosuid,noatime,mode=755", "tmpfs"])
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mounting the flagged source");
    let guard = HostMount(src.clone());
    (src, guard)
}

/// Bind-mount flags as runc gives them (issue 25, item 2): a bind asking
/// any flag gets exactly the flags it asks (the source's `ro,nosuid` go),
/// keeps the source's atime mode unless it asks one, and a bind asking
/// nothing keeps the source's flags. Differential with runc where 1.1.5
/// agrees with runc ≥ 1.2; `["bind","rw"]` and `["bind","atime"]` are runc
/// ≥ 1.2's (1.1 does not remount for a cleared flag alone): hull alone.
#[test]
fn bind_mounts_get_exactly_the_flags_they_ask_for() {
    require_root!();
    let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
    let (src, _guard) = flagged_source(&b);
    let binds = [
        ("/a", json!(["bind", "nodev"])),
        ("/b", json!(["bind", "nodev", "strictatime"])),
        ("/c", json!(["bind"])),
        ("/d", json!(["bind", "rw"])),
        ("/e", json!(["bind", "atime"])),
    ];
    for (dest, opts) in &binds {
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
    }
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let got = vfs_flags(&out, &["/a", "/b", "/c", "/d", "/e"]);
    assert_eq!(
        got,
        [
            "rw,nodev,noatime",
            "rw,nodev",
            "ro,nosuid,noatime",
            "rw,noatime",
            "rw,noatime"
        ]
    );
    if let Some(r) = runc_run(&b, &b.id("bindflags-runc"), &[]) {
        let runc = vfs_flags(&String::from_utf8_lossy(&r.stdout), &["/a", "/b", "/c"]);
        assert_eq!(
            runc,
            got[..3],
            "runc: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

/// In a user namespace the source's flags are locked: a bind asking other
/// flags keeps the locked ones (EPERM, then retried with them, as runc),
/// and one that explicitly clears a locked flag fails rather than
/// silently staying read-only (issue 25, item 2).
#[test]
fn locked_bind_flags_are_kept_or_refused_when_cleared() {
    require_root!();
    let mut b = Bundle::new(&["cat", "/proc/self/mountinfo"]);
    b.add_user_namespace(0, 65536);
    let (src, _guard) = flagged_source(&b);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/a", "type": "bind", "source": src, "options": ["bind", "nodev"]}),
    );
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(vfs_flags(&out, &["/a"]), ["ro,nosuid,nodev,noatime"]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/b", "type": "bind", "source": src, "options": ["bind", "rw"]}),
    );
    b.save();
    let (code, _, err) = run(&b);
    assert_ne!(code, 0);
    assert!(err.contains("cannot clear locked flags ro"), "{err}");
}

#[test]
fn ridmap_maps_submounts_and_idmap_does_not() {
    require_root!();
    let Some((mut b, src)) =
        idmap_bundle("stat -c '%n %u' /r/root0 /r/sub/root0 /n/root0 /n/sub/root0")
    else {
        return;
    };
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let other = b.dir.join("other");
    owned_files(&other);
    assert!(
        std::process::Command::new("mount")
            .arg("--bind")
            .arg(&other)
            .arg(src.join("sub"))
            .status()
            .unwrap()
            .success()
    );
    let _guard = HostMount(src.join("sub"));
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for (dest, opt) in [("/r", "ridmap"), ("/n", "idmap")] {
        mounts.push(
            json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", opt],
            "uidMappings": idmap(1000, 10), "gidMappings": idmap(1000, 10)}),
        );
    }
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/r/root0 1000",
            "/r/sub/root0 1000",
            "/n/root0 1000",
            "/n/sub/root0 0"
        ]
    );
}

#[test]
fn idmap_without_mappings_or_user_namespace_is_refused() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}),
    );
    b.save();
    let id = b.id("idmap-bad");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("mount /data: idmap without uidMappings and gidMappings needs the container to have a user namespace"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id) && cgroup_dirs(&id).is_empty());
}

#[test]
fn devices_are_bound_from_the_host_in_a_user_namespace() {
    require_root!();
    // mknod is refused inside a user namespace: the host's node is bound.
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%F %t:%T' /dev/kmsg; grep -c ' /dev/kmsg ' /proc/self/mountinfo",
    ]);
    b.add_user_namespace(100000, 65536);
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["character special file 1:b", "1"],
        "{out}"
    );
}

#[test]
fn idmapped_mount_keeps_the_locks_of_the_container_mount_namespace() {
    require_root!();
    // A read-only host mount stays read-only for a container root in a user
    // namespace: the id-mapped clone is made inside the container's mount
    // namespace, where the kernel has locked that flag.
    let Some((mut b, src)) =
        idmap_bundle("mount -o remount,bind,rw /tmp 2>/dev/null && echo REMOUNTED || echo LOCKED")
    else {
        return;
    };
    for args in [
        vec!["--bind", src.to_str().unwrap(), src.to_str().unwrap()],
        vec!["-o", "remount,bind,ro", src.to_str().unwrap()],
    ] {
        assert!(
            std::process::Command::new("mount")
                .args(&args)
                .status()
                .unwrap()
                .success()
        );
    }
    let _guard = HostMount(src.clone());
    b.add_user_namespace(100000, 65536);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = json!(["CAP_SYS_ADMIN"]);
    }
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/tmp", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
    );
    b.save();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "LOCKED");
}
