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
