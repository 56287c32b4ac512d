//! What real images and real callers' configs need (issue "compatibility"):
//! mount destinations through absolute symlinks (Debian's /var/run -> /run,
//! where Kubernetes puts the service-account token), dangling symlinks,
//! /proc on a symlink, containers without a mount namespace, pre-existing
//! cgroups, bind flags that clear what the source has, /dev/console as a
//! symlink, a read-only /dev. Where runc is installed, the same bundle runs
//! under it too and the results are compared.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;

#[test]
fn mount_under_an_absolute_symlink_like_var_run() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /var/run/secrets/kubernetes.io/serviceaccount/token; ls /run/secrets/kubernetes.io/serviceaccount",
    ]);
    let rootfs = b.private_rootfs();
    std::fs::create_dir_all(rootfs.join("var")).unwrap();
    std::fs::create_dir_all(rootfs.join("run")).unwrap();
    std::os::unix::fs::symlink("/run", rootfs.join("var/run")).unwrap();
    let sa = b.dir.join("serviceaccount");
    std::fs::create_dir(&sa).unwrap();
    std::fs::write(sa.join("token"), "the-token\n").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/var/run/secrets/kubernetes.io/serviceaccount",
        "type": "bind", "source": sa, "options": ["rbind", "ro"]
    }));
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let id = b.id("varrun");
    let o = b.run(&id);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "the-token\ntoken\n");
    // The directories were made inside the rootfs, through the link.
    assert!(
        rootfs
            .join("run/secrets/kubernetes.io/serviceaccount")
            .is_dir()
    );
    assert!(!std::path::Path::new("/run/secrets/kubernetes.io/serviceaccount/token").exists());
    if let Some(r) = runc_run(&b, &b.id("varrun-runc"), &[]) {
        assert_eq!(
            r.stdout,
            o.stdout,
            "runc: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

#[test]
fn a_dangling_symlink_target_is_made_inside_the_root() {
    require_root!();
    let mut b = Bundle::new(&["cat", "/etc/resolv.conf"]);
    let rootfs = b.private_rootfs();
    std::os::unix::fs::symlink(
        "/run/systemd/resolve/stub-resolv.conf",
        rootfs.join("etc/resolv.conf"),
    )
    .unwrap();
    let host = b.dir.join("resolv.conf");
    std::fs::write(&host, "nameserver 192.0.2.1\n").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/resolv.conf", "type": "bind", "source": host, "options": ["bind", "ro"]
    }));
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let o = b.run(&b.id("dangling"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "nameserver 192.0.2.1\n");
    assert!(
        rootfs
            .join("run/systemd/resolve/stub-resolv.conf")
            .is_file()
    );
    assert!(
        !std::path::Path::new("/run/systemd/resolve/stub-resolv.conf").exists()
            || std::fs::read_to_string("/run/systemd/resolve/stub-resolv.conf").unwrap_or_default()
                != "nameserver 192.0.2.1\n"
    );
}

#[test]
fn proc_on_a_symlink_is_refused_like_runc() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    let rootfs = b.private_rootfs();
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    std::fs::create_dir(rootfs.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", rootfs.join("proc")).unwrap();
    let id = b.id("procsym");
    let err = b.fails(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("filesystem \\\"proc\\\" must be mounted on ordinary directory"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    if let Some(r) = runc_run(&b, &b.id("procsym-runc"), &[]) {
        assert!(!r.status.success());
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("must be mounted on ordinary directory")
        );
    }
}

/// Mount points under `dir` in hull's (the host's) mount table.
fn host_mounts_under(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .map(String::from)
        .collect()
}

#[test]
fn without_a_mount_namespace_nothing_stays_mounted_on_the_host() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "ls /dev/null >/dev/null && echo fine"]);
    let rootfs = b.private_rootfs();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    // What needs a mount namespace is refused before anything is mounted.
    let id = b.id("nomnt");
    b.save();
    let err = b.fails(&["run", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("unable to restrict sys entries without a private MNT namespace"),
        "{err}"
    );
    assert!(
        host_mounts_under(&rootfs).is_empty(),
        "{:?}",
        host_mounts_under(&rootfs)
    );
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.save();
    // root.readonly is ignored there, as runc ignores it, with a warning:
    // the host's root mount is not made read-only.
    let o = b.run(&id);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("root.readonly is ignored without a private MNT namespace"),
        "{err}"
    );
    std::fs::write(rootfs.join("tmp/writable"), "yes").unwrap();
    assert!(host_mounts_under(&rootfs).is_empty());
    b.config["root"]["readonly"] = json!(false);
    b.save();
    // It runs, and delete takes its mounts off the host (runc leaves them).
    let o = b.run(&id);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "fine\n");
    assert!(
        host_mounts_under(&rootfs).is_empty(),
        "{:?}",
        host_mounts_under(&rootfs)
    );
    // A create that fails half-way through its mounts leaves none either.
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/broken", "type": "bind", "source": "/nonexistent/source", "options": ["bind"]
    }));
    b.save();
    let id = b.id("nomnt-fail");
    b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        host_mounts_under(&rootfs).is_empty(),
        "{:?}",
        host_mounts_under(&rootfs)
    );
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn a_frozen_or_busy_existing_cgroup_is_refused() {
    require_root!();
    let b = Bundle::new(&["true"]);
    let name = format!("hull-precg-{}", std::process::id());
    // Frozen: the v1 freezer where there is one, else cgroup.freeze.
    let (dir, file, value) = if std::path::Path::new("/sys/fs/cgroup/freezer").is_dir() {
        ("/sys/fs/cgroup/freezer", "freezer.state", "FROZEN")
    } else {
        ("/sys/fs/cgroup", "cgroup.freeze", "1")
    };
    let frozen = std::path::Path::new(dir).join(&name);
    std::fs::create_dir(&frozen).unwrap();
    std::fs::write(frozen.join(file), value).unwrap();
    let mut b = b;
    b.config["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    b.save();
    let id = b.id("frozen");
    let t = std::time::Instant::now();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "no hang");
    assert!(
        err.contains("container's cgroup unexpectedly frozen"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    assert!(frozen.is_dir(), "a cgroup hull did not make is left alone");
    std::fs::write(frozen.join(file), if value == "1" { "0" } else { "THAWED" }).unwrap();
    let _ = std::fs::remove_dir(&frozen);
    for d in cgroup_dirs(&name) {
        let _ = std::fs::remove_dir(d);
    }
    // Busy: a process of someone else's in the cgroup.
    let mut sleeper = Command::new("sleep").arg("100").spawn().unwrap();
    let layout = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let v2 = if layout.lines().count() == 1 {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    let busy = std::path::Path::new(v2).join(&name);
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let id = b.id("busy");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("container's cgroup is not empty: 1 process(es) found"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the refused create must not kill a process it did not start"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let _ = std::fs::remove_dir(&busy);
    for d in cgroup_dirs(&name) {
        let _ = std::fs::remove_dir(d);
    }
}

#[test]
fn bind_options_clear_what_the_source_has() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "grep ' /data ' /proc/self/mountinfo"]);
    let src = b.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    // A source mounted ro,nosuid,nodev,noexec,noatime on the host (our
    // test's own mount, removed at the end).
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "ro,nosuid,nodev,noexec,noatime",
            "tmpfs",
        ])
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": src,
        "options": ["bind", "rw", "suid", "dev", "exec", "atime"]
    }));
    b.save();
    let o = b.run(&b.id("clear"));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let _ = Command::new("umount").arg(&src).status();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // As runc ≥ 1.2: the bind gets exactly what it asks; "atime" asks no
    // atime mode, so the source's noatime stays (runc's remount keeps it;
    // issue 25, item 2).
    let opts = text.split(' ').nth(5).unwrap_or_default().to_string();
    assert_eq!(opts, "rw,noatime", "{text}");
}

#[test]
fn dev_console_as_a_symlink_is_refused() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    let rootfs = b.private_rootfs();
    // No /dev tmpfs: the image's /dev is used, with a planted link.
    b.config["mounts"].as_array_mut().unwrap().retain(|m| {
        m["destination"] != "/dev"
            && m["destination"] != "/dev/pts"
            && m["destination"] != "/dev/shm"
            && m["destination"] != "/dev/mqueue"
    });
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    }));
    b.config["process"]["terminal"] = json!(true);
    b.config["root"]["readonly"] = json!(false);
    b.save();
    std::os::unix::fs::symlink("/etc/passwd", rootfs.join("dev/console")).unwrap();
    let before = std::fs::read(rootfs.join("etc/passwd")).unwrap();
    let sock = b.dir.join("console.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = b.id("console");
    let err = b.fails(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    assert!(err.contains("/dev/console is a symlink"), "{err}");
    assert_eq!(std::fs::read(rootfs.join("etc/passwd")).unwrap(), before);
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn read_only_dev_still_has_its_nodes() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; touch /dev/new 2>/dev/null || echo ro",
    ]);
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    b.save();
    let o = b.run(&b.id("rodev"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "null-ok\nro\n");
}

#[test]
fn ambient_capabilities_without_inheritable_ones_are_warned_about() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    b.save();
    let o = b.run(&b.id("ambient"));
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("can't raise ambient capability CAP_KILL"),
        "{err}"
    );
    // The default config asks for none (as runc 1.2+ writes it): no warning.
    let b = Bundle::new(&["true"]);
    let o = b.run(&b.id("noambient"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("ambient"));
}
