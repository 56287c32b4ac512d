//! What a bad config, a hostile container or a crash must not do to the
//! host or to other containers: each test is one way it once could.

mod common;

use common::*;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs this test mounted on the host, unmounted when dropped.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path, options: &str) -> HostMount {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs at {}", at.display());
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_process_name_that_is_not_utf8_does_not_stop_the_container() {
    require_root!();
    // The init names itself "прог" cut mid-character, as the kernel cuts a
    // long name at 15 bytes; it stays the same process (no exec).
    let b = Bundle::new(&[
        "sh",
        "-c",
        r"printf '\320\277\321' > /proc/self/comm; while true; do sleep 1; done",
    ]);
    let id = b.id("comm");
    b.create(&id);
    b.ok(&["start", &id]);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let comm = format!("/proc/{pid}/comm");
    for _ in 0..500 {
        if std::fs::read(&comm).is_ok_and(|c| c == b"\xd0\xbf\xd1\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read(&comm).unwrap(), b"\xd0\xbf\xd1\n");
    let st = b.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid));
    assert!(b.ok(&["list"]).contains("running"));
    b.ok(&["exec", &id, "true"]);
    b.ok(&["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    assert!(!alive(pid));
}

#[test]
fn a_mount_point_that_is_not_utf8_breaks_no_create() {
    require_root!();
    let b = Bundle::new(&["true"]);
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let _m = HostMount::tmpfs(&b.dir.join(name), "size=1m");
    let out = b.run(&b.id("mountinfo"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_refused_create_kills_nobody_in_a_cgroup_it_did_not_make() {
    require_root!();
    let shared = format!("/hull-shared-{}", std::process::id());
    let mut a = Bundle::new(&["sleep", "100"]);
    a.config["linux"]["cgroupsPath"] = shared.clone().into();
    a.save();
    let ida = a.id("owner");
    a.create(&ida);
    a.ok(&["start", &ida]);
    let pid = a.state(&ida)["pid"].as_i64().unwrap();
    let b = Bundle::new(&["true"]);
    let mut config = a.config.clone();
    config["root"] = b.config["root"].clone();
    std::fs::write(b.dir.join("config.json"), config.to_string()).unwrap();
    let idb = b.id("intruder");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &idb]);
    assert!(err.contains("container's cgroup is not empty"), "{err}");
    assert!(!b.state_dir_exists(&idb));
    assert!(alive(pid), "the running container's init survives");
    assert_eq!(a.status(&ida), "running");
    // The directories are the first container's, and go with it.
    let name = shared.trim_start_matches('/');
    assert!(!cgroup_dirs(name).is_empty());
    a.ok(&["delete", "--force", &ida]);
    assert_eq!(cgroup_dirs(name), Vec::<PathBuf>::new());
}

#[test]
fn the_root_cgroup_and_our_own_are_refused() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    let id = b.id("rootcg");
    for (path, says) in [
        ("/", "is the root cgroup"),
        ("/a/..", "is the root cgroup"),
        (".", "the runtime's own cgroup"),
        ("..", "the runtime's own cgroup"),
        ("x/..", "the runtime's own cgroup"),
    ] {
        b.config["linux"]["cgroupsPath"] = path.into();
        b.save();
        let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(err.contains(says), "{path}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!b.state_dir_exists(&id));
    }
}

/// Drop the namespace of `typ` from the bundle's config.
fn without_namespace(b: &mut Bundle, typ: &str) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

#[test]
fn no_pivot_without_a_mount_namespace_is_refused_and_moves_nothing() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    without_namespace(&mut b, "mount");
    for key in ["maskedPaths", "readonlyPaths"] {
        b.config["linux"].as_object_mut().unwrap().remove(key);
    }
    b.config["mounts"] = serde_json::json!([]);
    b.config["root"]["readonly"] = false.into();
    b.save();
    let id = b.id("nopivot");
    // In a scratch mount namespace: were the mounts touched, only it suffers.
    let script = format!(
        "{} --root {} run --no-pivot --bundle {} {id}; echo rc=$?; \
         test -r /proc/self/stat && echo proc-ok; test -d /sys/kernel && echo sys-ok",
        hull_bin(),
        b.root.display(),
        b.dir.display()
    );
    let out = output_of(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(&script),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("rc=1"), "{text} {err}");
    assert!(
        text.contains("proc-ok") && text.contains("sys-ok"),
        "{text}"
    );
    assert!(err.contains("--no-pivot needs a mount namespace"), "{err}");
    assert!(!b.state_dir_exists(&id));
}

/// Whether a container may open /dev/kmsg for writing (no capability
/// needed, so only the device rules decide), given its device rules (None:
/// no rule at all) and a /dev/kmsg node in linux.devices; hull's answer,
/// then runc's on the same bundle.
fn kmsg_access(rules: Option<serde_json::Value>) -> (String, Option<String>) {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "(echo x > /dev/kmsg) 2>/dev/null && echo write-ok || echo write-denied; \
         (true < /dev/null) && echo null-ok",
    ]);
    let res = &mut b.config["linux"]["resources"];
    match rules {
        Some(r) => res["devices"] = r,
        None => {
            res.as_object_mut().unwrap().remove("devices");
        }
    }
    b.config["linux"]["devices"] = serde_json::json!([
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644}
    ]);
    b.save();
    let id = b.id("kmsg");
    let out = hull_run(&b, &id, &[]);
    assert!(out.status.success(), "{out:?}");
    let runc = runc_run(&b, &format!("{id}-runc"), &[])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    (String::from_utf8_lossy(&out.stdout).into_owned(), runc)
}

#[test]
fn a_listed_device_node_gets_no_access_its_rules_deny() {
    require_root!();
    let deny_all = serde_json::json!({"allow": false, "access": "rwm"});
    let kmsg = |access: &str| serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": access});
    for (rules, want) in [
        // No rule at all: runc's default list, which has no /dev/kmsg.
        (None, "write-denied\nnull-ok\n"),
        (
            Some(serde_json::json!([deny_all])),
            "write-denied\nnull-ok\n",
        ),
        // Docker's `--device /dev/kmsg:/dev/kmsg:r`: read, and only read.
        (
            Some(serde_json::json!([deny_all, kmsg("r")])),
            "write-denied\nnull-ok\n",
        ),
        (
            Some(serde_json::json!([deny_all, kmsg("w")])),
            "write-ok\nnull-ok\n",
        ),
    ] {
        let (hull, runc) = kmsg_access(rules.clone());
        assert_eq!(hull, want, "rules {rules:?}");
        if let Some(runc) = runc {
            assert_eq!(hull, runc, "hull and runc differ with rules {rules:?}");
        }
    }
}

#[test]
fn a_paused_created_container_says_so_and_resumes() {
    require_root!();
    let b = Bundle::new(&["sh", "-c", "echo started"]);
    let id = b.id("pausecreated");
    b.create(&id);
    b.ok(&["pause", &id]);
    assert_eq!(b.status(&id), "paused");
    let t = std::time::Instant::now();
    let err = b.fails(&["start", &id]);
    assert!(t.elapsed() < Duration::from_secs(5), "start must not block");
    assert!(
        err.contains("cannot start a container in the paused state"),
        "{err}"
    );
    b.ok(&["resume", &id]);
    assert_eq!(b.status(&id), "created");
    b.ok(&["start", &id]);
    b.wait_status(&id, "stopped");
    // Paused again, then deleted by force: nothing blocks.
    let id2 = b.id("pausedelete");
    b.create(&id2);
    b.ok(&["pause", &id2]);
    let pid = b.state(&id2)["pid"].as_i64().unwrap();
    b.ok(&["delete", "--force", &id2]);
    assert!(!alive(pid));
    assert!(!b.state_dir_exists(&id2));
}

#[test]
fn a_huge_hook_timeout_is_no_deadline() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    let hook = serde_json::json!([{"path": "/bin/true", "timeout": i64::MAX}]);
    b.config["hooks"] = serde_json::json!({"prestart": hook, "poststart": hook, "poststop": hook});
    b.save();
    let id = b.id("hooktimeout");
    let out = b.run(&id);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!b.state_dir_exists(&id));
}

/// Mount points under `dir` in the host's mount table.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read("/proc/self/mountinfo").unwrap();
    info.split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b' ').nth(4))
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

#[test]
fn delete_without_a_mount_namespace_unmounts_only_what_create_mounted() {
    require_root!();
    let mut b = Bundle::new(&["sleep", "100"]);
    let rootfs = b.private_rootfs();
    without_namespace(&mut b, "mount");
    for key in ["maskedPaths", "readonlyPaths"] {
        b.config["linux"].as_object_mut().unwrap().remove(key);
    }
    b.config["root"]["readonly"] = false.into();
    b.config["mounts"] = serde_json::json!([
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
    ]);
    b.save();
    let id = b.id("nomntns");
    b.create(&id);
    assert_eq!(mounts_under(&rootfs), vec![rootfs.join("tmp")]);
    // Someone else's mount under the rootfs, made after create.
    let _theirs = HostMount::tmpfs(&rootfs.join("mnt"), "size=1m");
    b.ok(&["delete", "--force", &id]);
    assert_eq!(mounts_under(&rootfs), vec![rootfs.join("mnt")]);
}

/// `hull run` of the bundle in the foreground, in the background of the
/// test, its stdout to `out`.
fn spawn_run(b: &Bundle, id: &str, out: std::process::Stdio) -> std::process::Child {
    b.cmd()
        .args(["run", "--bundle", b.dir.to_str().unwrap(), id])
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .spawn()
        .unwrap()
}

/// A container whose init leaves on signal 37 (SIGRTMIN+3, systemd's stop
/// signal) with exit code 3, once it says it is ready.
fn rt_bundle() -> Bundle {
    Bundle::new(&[
        "sh",
        "-c",
        "trap 'echo got-rt; exit 3' 37; echo ready; while true; do sleep 0.05; done",
    ])
}

#[test]
fn real_time_signals_reach_the_container() {
    require_root!();
    let b = rt_bundle();
    for sig in ["37", "SIGRTMIN+3", "rtmin+3"] {
        let id = b.id("rt");
        b.create(&id);
        b.ok(&["start", &id]);
        let pid = b.state(&id)["pid"].as_i64().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        b.ok(&["kill", &id, sig]);
        for _ in 0..500 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(pid), "{sig} reached the init");
    }
    let err = b.fails(&["kill", "nosuch", "RTMIN+99"]);
    assert!(err.contains("unknown signal"), "{err}");
}

#[test]
fn a_foreground_run_forwards_real_time_signals() {
    require_root!();
    let b = rt_bundle();
    let id = b.id("rtrun");
    let out_path = b.dir.join("run.out");
    let mut run = spawn_run(&b, &id, std::fs::File::create(&out_path).unwrap().into());
    for _ in 0..500 {
        if std::fs::read_to_string(&out_path).is_ok_and(|s| s.contains("ready")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(run.id() as i32, 37) }, 0);
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(3), "hull run ends as its container did");
    assert!(
        std::fs::read_to_string(&out_path)
            .unwrap()
            .contains("got-rt")
    );
}

/// CPU time (user + system, in clock ticks) `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
    let close = stat.iter().rposition(|&b| b == b')').unwrap();
    let fields: Vec<&[u8]> = stat[close + 2..].split(|&b| b == b' ').collect();
    // utime and stime are fields 14 and 15; fields[0] is field 3.
    let n = |i: usize| -> u64 { std::str::from_utf8(fields[i]).unwrap().parse().unwrap() };
    n(11) + n(12)
}

#[test]
fn a_foreground_terminal_closed_by_its_process_does_not_spin() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "exec </dev/null >/dev/null 2>&1; sleep 2"]);
    b.config["process"]["terminal"] = true.into();
    b.save();
    let id = b.id("ttyclosed");
    let mut run = spawn_run(&b, &id, std::process::Stdio::null());
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(run.id());
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // A spinning loop burns ~150 ticks in that time.
    assert!(
        used < 30,
        "hull used {used} ticks while its container slept"
    );
}

/// The child's exit status, or None (and the child killed) when it has
/// not ended within `limit`.
fn wait_or_kill(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn an_exec_waiting_on_a_paused_container_can_be_interrupted() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("execpaused");
    b.create(&id);
    b.ok(&["start", &id]);
    b.ok(&["pause", &id]);
    let mut exec = b
        .cmd()
        .args(["exec", "--ignore-paused", &id, "true"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(exec.try_wait().unwrap().is_none(), "it waits for resume");
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(exec.id() as i32, libc::SIGTERM) }, 0);
    let ended = wait_or_kill(&mut exec, Duration::from_secs(3));
    assert!(
        ended.is_some(),
        "hull exec ignored SIGTERM while the container was paused"
    );
    b.ok(&["resume", &id]);
    assert_eq!(b.status(&id), "running");
}

#[test]
fn a_fifo_for_etc_passwd_hangs_nothing() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "echo HOME=$HOME"]);
    let rootfs = b.private_rootfs();
    std::fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    let ok = Command::new("mkfifo")
        .arg(rootfs.join("etc/passwd"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let id = b.id("fifo");
    let out_path = b.dir.join("out");
    let mut run = spawn_run(&b, &id, std::fs::File::create(&out_path).unwrap().into());
    let status = wait_or_kill(&mut run, Duration::from_secs(5));
    let status = status.expect("hull run hung on a FIFO at /etc/passwd");
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "HOME=/\n");
}

#[test]
fn an_init_killed_before_ready_is_reported_as_killed() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    // The hook gets the state (with the init stage's pid) on stdin.
    let kill = r#"read -r s; p=${s#*\"pid\":}; p=${p%%[,\}]*}; kill -9 "$p"; sleep 0.2"#;
    b.config["hooks"] = serde_json::json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", kill]}]
    });
    b.save();
    let id = b.id("killed");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("container init was killed by signal SIGKILL before it was ready"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn start_container_hooks_run_under_the_containers_seccomp_filter() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    // A program of the image, run in the container before its process.
    b.config["hooks"] = serde_json::json!({
        "startContainer": [{"path": "/bin/mkdir", "args": ["mkdir", "/dev/shm/hooked"]}]
    });
    b.save();
    let id = b.id("hookseccomp");
    let out = hull_run(&b, &id, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the hook's mkdir must be refused"
    );
    assert!(err.contains("startContainer"), "{err}");
    if let Some(runc) = runc_run(&b, &format!("{id}-runc"), &[]) {
        assert_ne!(runc.status.code(), Some(0), "runc refuses it too");
    }
}

#[test]
fn a_foreground_run_deleted_by_force_keeps_its_exit_code() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("rundeleted");
    let mut run = spawn_run(&b, &id, std::process::Stdio::inherit());
    b.wait_status(&id, "running");
    b.ok(&["delete", "--force", &id]);
    let status = wait_or_kill(&mut run, Duration::from_secs(5)).expect("hull run ended");
    assert_eq!(status.code(), Some(137), "SIGKILL's 128+9, as runc");
    assert!(!b.state_dir_exists(&id));
}

/// `hull start ID` killed by strace at the `n`-th call of `syscall`.
fn start_killed_at(b: &Bundle, id: &str, syscall: &str, n: u32) {
    let out = output_of(
        Command::new("strace")
            .args(["-qq", "-o", "/dev/null", "-e", &format!("trace={syscall}")])
            .args(["-e", &format!("inject={syscall}:signal=KILL:when={n}")])
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["start", id]),
    );
    assert_ne!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_start_killed_half_way_leaves_the_status_true() {
    require_root!();
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed (make deps installs it)");
        return;
    }
    let b = Bundle::new(&["sleep", "100"]);
    // Killed right after the init was released, before the socket's name
    // was gone: the process runs, and the status says so.
    let id = b.id("startkilled");
    b.create(&id);
    start_killed_at(&b, &id, "unlink,unlinkat", 1);
    assert!(b.root.join(&id).join("start.sock.releasing").exists());
    b.wait_status(&id, "running");
    let err = b.fails(&["start", &id]);
    assert!(
        err.contains("cannot start an already running container"),
        "{err}"
    );
    // Killed before it connected: still created, and the next start works.
    let id = b.id("startkilled-early");
    b.create(&id);
    start_killed_at(&b, &id, "connect", 1);
    for _ in 0..3 {
        assert_eq!(b.status(&id), "created", "a status probe takes nothing");
    }
    b.ok(&["start", &id]);
    assert_eq!(b.status(&id), "running");
}
