//! Hostile or absurd surroundings: a symlink planted at the pid file's
//! temporary name, an unsafe --root, a container directory replaced while
//! a command waited for its lock, a leaked `_HULL_INIT`, values that would
//! overflow. Each is refused cleanly or handled, never followed or aborted.

mod common;

use common::*;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn pid_file_temp_symlink_is_not_followed() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("pidlink");
    let victim = b.dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, b.dir.join(".pid.tmp")).unwrap();
    let pidfile = b.dir.join("pid");
    b.ok(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert!(
        !std::fs::symlink_metadata(pidfile).unwrap().is_symlink(),
        "the pid file must be a regular file"
    );
}

#[test]
fn unsafe_root_is_refused() {
    require_root!();
    let b = Bundle::new(&["true"]);
    let id = b.id("root");
    let bundle = b.dir.to_str().unwrap().to_string();
    // A file where the root should be.
    let file = b.dir.join("rootfile");
    std::fs::write(&file, "").unwrap();
    let out = hull_at(&file, &["list".into()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
    // A directory anyone may write into: anyone could plant a state.json.
    let open = b.dir.join("open-root");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = hull_at(
        &open,
        &[
            "create".into(),
            "--bundle".into(),
            bundle.clone(),
            id.clone(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by group or others"), "{err}");
    assert!(!open.join(&id).exists(), "nothing may be made in it");
    // Owned by someone else.
    let theirs = b.dir.join("their-root");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let out = hull_at(&theirs, &["state".into(), id.clone()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is owned by uid 65534"), "{err}");
    // A root hull makes itself is fine.
    let fresh = b.dir.join("fresh/root");
    let out = hull_at(
        &fresh,
        &["create".into(), "--bundle".into(), bundle, id.clone()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hull_at(&fresh, &["delete".into(), "--force".into(), id]);
    assert!(out.status.success());
}

/// flock a directory from the test, as a concurrent hull command would.
fn lock(dir: &std::path::Path) -> std::fs::File {
    let f = std::fs::File::open(dir).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

#[test]
fn a_command_that_waited_for_the_lock_locks_the_directory_it_acts_on() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("relock");
    b.create(&id);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let dir = b.root.join(&id);
    let old = lock(&dir);
    let mut kill = b
        .cmd()
        .args(["kill", &id, "KILL"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Meanwhile the container directory is replaced by a new one, whose
    // owner (a create, say) holds its lock.
    let moved = b.root.join(format!("{id}.old"));
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::create_dir(&dir).unwrap();
    for f in ["state.json", "config.json"] {
        std::fs::copy(moved.join(f), dir.join(f)).unwrap();
    }
    let new = lock(&dir);
    drop(old);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        kill.try_wait().unwrap().is_none(),
        "kill acted without the lock of the directory it read"
    );
    assert!(alive(pid));
    drop(new);
    assert!(kill.wait().unwrap().success());
    for _ in 0..200 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid));
    std::fs::remove_dir_all(&moved).unwrap();
}

#[test]
fn leaked_init_variable_does_not_enter_init_mode() {
    require_root!();
    let b = Bundle::new(&["true"]);
    for fd in ["0", "1", "2", "3"] {
        let out = output_of(
            b.cmd()
                .arg("list")
                .env("_HULL_INIT", fd)
                .stdin(Stdio::null()),
        );
        assert!(out.status.success(), "_HULL_INIT={fd}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ID"));
    }
    // Even `hull init` by hand is only the init stage with a socket there.
    let out = output_of(
        Command::new(hull_bin())
            .arg("init")
            .env("_HULL_INIT", "0")
            .stdin(Stdio::null()),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

#[test]
fn absurd_numbers_are_clean_errors() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("absurd");
    b.create(&id);
    for interval in ["99999999999999999999h", "1e9999s", "-5s"] {
        let out = b.hull(&["events", "--interval", interval, &id]);
        assert_eq!(out.status.code(), Some(1), "--interval {interval}: {out:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let id2 = b.id("fds");
    for n in ["4294967295", "4294967293", "2147483647"] {
        let err = b.fails(&[
            "create",
            "--bundle",
            b.dir.to_str().unwrap(),
            "--preserve-fds",
            n,
            &id2,
        ]);
        assert!(err.contains("--preserve-fds"), "{n}: {err}");
        assert!(!b.state_dir_exists(&id2));
    }
}

#[test]
fn joined_pid_namespace_is_not_the_containers_own() {
    require_root!();
    // The first container owns a pid namespace; the second joins it, so
    // its init is not that namespace's init: killing it would leave its
    // children running, and kill must reach every process in its cgroup.
    let a = Bundle::new(&["sleep", "100"]);
    let ida = a.id("owner");
    a.create(&ida);
    let apid = a.state(&ida)["pid"].as_i64().unwrap();
    let mut b = Bundle::new(&["sh", "-c", "sleep 100 & wait"]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = format!("/proc/{apid}/ns/pid").into();
        }
    }
    b.save();
    let idb = b.id("joiner");
    b.create(&idb);
    b.ok(&["start", &idb]);
    let cg = cgroup_dirs(&idb)
        .into_iter()
        .find(|d| d.join("cgroup.procs").exists())
        .unwrap();
    let procs = |d: &std::path::Path| {
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap()
            .lines()
            .count()
    };
    for _ in 0..200 {
        if procs(&cg) == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(procs(&cg), 2, "sh and its sleep");
    b.ok(&["kill", &idb, "KILL"]);
    for _ in 0..200 {
        if procs(&cg) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(procs(&cg), 0, "every process of the container is killed");
    assert!(alive(apid), "the other container is untouched");
}
