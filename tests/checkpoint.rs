//! `hull checkpoint` and `hull restore` with CRIU. The tests that dump run
//! in the systemd lane (`make test-systemd`: Debian's CRIU 3.17 works on
//! its 6.1 kernel, not on the 6.18 of our machines); elsewhere they say
//! they skipped, and the lane fails if one does there. The refusals run
//! everywhere: they happen before CRIU is asked anything.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// CRIU as the tests use it: installed and passing `criu check`.
fn criu_works() -> bool {
    Command::new("criu")
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

macro_rules! require_criu {
    () => {
        require_root!();
        if !criu_works() {
            eprintln!(
                "skipped: criu is missing or `criu check` fails here (the systemd lane runs this)"
            );
            return;
        }
    };
}

/// A container counting in a shell variable, writing the count to a host
/// directory bound at /out: a restored counter goes on from where it was
/// (a fresh one would start again at 1). Each count is written beside and
/// renamed into place: a dump may stop the shell between truncating a
/// file and writing it, and nobody would write it again.
fn counter() -> (Bundle, PathBuf) {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /out/count.new; mv /out/count.new /out/count; sleep 0.05; done",
    ]);
    let out = b.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]
    }));
    b.save();
    (b, out)
}

fn count(out: &Path) -> u64 {
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(out.join("count"))
            && let Ok(n) = s.trim().parse()
        {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = std::fs::read_to_string(out.join("err")).unwrap_or_default();
    panic!("no count in {} (the container said: {err})", out.display());
}

/// Wait until the count passes `n`.
fn count_passes(out: &Path, n: u64) -> u64 {
    for _ in 0..300 {
        let c = count(out);
        if c > n {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the count stayed at or below {n}");
}

/// The stdio a container manager gives a detached container: pipes (conmon,
/// containerd's shim). CRIU dumps pipes whose other end is outside as
/// external, and restore gives it the new ones; a file of the host (a
/// capture file, the host's /dev/null) it could not reach from the
/// container. The ends are kept open until the test ends.
struct Pipes(Vec<std::process::Child>);

static PIPES: std::sync::Mutex<Pipes> = std::sync::Mutex::new(Pipes(Vec::new()));

/// After a restore: the count goes on from `stopped`, never below it on
/// the way (a counter started afresh would count 1, 2, 3 first).
fn goes_on_from(out: &Path, stopped: u64) -> u64 {
    for _ in 0..300 {
        let c = count(out);
        assert!(
            c >= stopped,
            "the counter started again: {c} after {stopped}"
        );
        if c > stopped {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the count stayed at {stopped}");
}

/// hull with pipes as stdio; what it said on stderr once it exited.
fn hull_quiet(b: &Bundle, args: &[&str]) -> std::process::Output {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let mut child = b
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = Vec::new();
    if let Some(e) = child.stderr.as_mut() {
        // The container may hold the pipe open: read what is there.
        let fd = e.as_raw_fd();
        // SAFETY: setting O_NONBLOCK on a pipe we own.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        let _ = e.read_to_end(&mut stderr);
    }
    PIPES.lock().unwrap().0.push(child);
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}

fn ok_quiet(b: &Bundle, args: &[&str]) {
    let out = hull_quiet(b, args);
    assert!(
        out.status.success(),
        "hull {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_counter(b: &Bundle, id: &str) {
    ok_quiet(
        b,
        &["run", "--detach", "--bundle", b.dir.to_str().unwrap(), id],
    );
}

fn checkpoint(b: &Bundle, id: &str, image: &Path, extra: &[&str]) {
    let mut args = vec![
        "checkpoint",
        "--manage-cgroups-mode",
        "ignore",
        "--image-path",
        image.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(id);
    ok_quiet(b, &args);
}

/// `hull restore` of `image` as `id` (CRIU's cgroups left alone), with
/// `extra` flags; its exit status and stderr.
fn restore_output(b: &Bundle, id: &str, image: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "restore",
        "--manage-cgroups-mode",
        "ignore",
        "--image-path",
        image.to_str().unwrap(),
        "--bundle",
        b.dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(id);
    hull_quiet(b, &args)
}

fn restore(b: &Bundle, id: &str, image: &Path, extra: &[&str]) {
    let mut with = vec!["--detach"];
    with.extend_from_slice(extra);
    let out = restore_output(b, id, image, &with);
    assert!(
        out.status.success(),
        "hull restore {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pid_of(b: &Bundle, id: &str) -> i64 {
    b.state(id)["pid"].as_i64().unwrap()
}

#[test]
fn a_counter_goes_on_after_restore_into_a_new_id() {
    require_criu!();
    let (b, out) = counter();
    let id = b.id("cr");
    start_counter(&b, &id);
    let before = count_passes(&out, 3);
    let image = b.dir.join("image");
    checkpoint(&b, &id, &image, &[]);
    // The dump ended the container: gone, as with runc.
    assert!(
        !b.state_dir_exists(&id),
        "the checkpointed container is still recorded"
    );
    let stopped = count(&out);
    assert!(stopped >= before);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&out), stopped, "the counter ran on after the dump");
    assert!(image.join("descriptors.json").exists());
    assert!(image.join("dump.log").exists());

    let new = b.id("restored");
    let pidfile = b.dir.join("restored.pid");
    restore(&b, &new, &image, &["--pid-file", pidfile.to_str().unwrap()]);
    let st = b.state(&new);
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );
    let after = goes_on_from(&out, stopped);
    assert!(after > stopped, "restored at {after}, stopped at {stopped}");
    // exec joins the restored tree (its time namespace too).
    let said = b.ok(&["exec", &new, "cat", "/out/count"]);
    assert!(said.trim().parse::<u64>().unwrap() > stopped, "{said}");
    b.ok(&["kill", &new, "KILL"]);
    b.wait_status(&new, "stopped");
    b.ok(&["delete", &new]);
    assert!(!b.state_dir_exists(&new));
    assert!(cgroup_dirs(&new).is_empty(), "{:?}", cgroup_dirs(&new));
    assert!(!alive(pid));
}

/// The count of a counter kept in the container's own /dev/shm (a tmpfs
/// CRIU dumps with its content): a file of the host the container keeps
/// writing after a dump would no longer match the image.
fn shm_count(b: &Bundle, id: &str) -> u64 {
    for _ in 0..100 {
        let out = b.hull(&["exec", id, "cat", "/dev/shm/count"]);
        if let Ok(n) = String::from_utf8_lossy(&out.stdout).trim().parse() {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no count in {id}'s /dev/shm");
}

fn shm_count_passes(b: &Bundle, id: &str, n: u64) -> u64 {
    for _ in 0..300 {
        let c = shm_count(b, id);
        if c > n {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the count stayed at or below {n}");
}

#[test]
fn leave_running_keeps_the_container_and_its_image_restores() {
    require_criu!();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.05; done",
    ]);
    let id = b.id("leave");
    start_counter(&b, &id);
    shm_count_passes(&b, &id, 30);
    let image = b.dir.join("image");
    let pid = pid_of(&b, &id);
    let before = shm_count(&b, &id);
    checkpoint(&b, &id, &image, &["--leave-running"]);
    assert_eq!(b.status(&id), "running");
    assert_eq!(pid_of(&b, &id), pid);
    let dumped = shm_count(&b, &id);
    let later = shm_count_passes(&b, &id, dumped + 20);
    b.ok(&["delete", "--force", &id]);
    restore(&b, &id, &image, &[]);
    assert_eq!(b.status(&id), "running");
    // From the image: at least where it was before the dump (a counter
    // started afresh would be near 1), below what the first one reached.
    let restored = shm_count(&b, &id);
    assert!(
        restored >= before && restored < later,
        "restored at {restored}: dumped after {before}, the first ran to {later}"
    );
    shm_count_passes(&b, &id, restored);
    b.ok(&["delete", "--force", &id]);
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn pre_dump_then_dump_with_its_parent_restores() {
    require_criu!();
    let (b, out) = counter();
    let id = b.id("pre");
    start_counter(&b, &id);
    count_passes(&out, 2);
    let parent = b.dir.join("images/parent");
    let last = b.dir.join("images/last");
    checkpoint(&b, &id, &parent, &["--pre-dump"]);
    assert_eq!(b.status(&id), "running", "pre-dump leaves it running");
    checkpoint(&b, &id, &last, &["--parent-path", "../parent"]);
    assert!(!b.state_dir_exists(&id));
    let stopped = count(&out);
    restore(&b, &id, &last, &[]);
    goes_on_from(&out, stopped);
    b.ok(&["delete", "--force", &id]);
}

#[test]
fn a_bad_parent_path_is_refused_and_the_container_runs_on() {
    require_criu!();
    let (b, out) = counter();
    let id = b.id("badparent");
    start_counter(&b, &id);
    let image = b.dir.join("image");
    let e = b.fails(&[
        "checkpoint",
        "--image-path",
        image.to_str().unwrap(),
        "--parent-path",
        "/abs",
        &id,
    ]);
    assert!(e.contains("--parent-path must be relative"), "{e}");
    let e = b.fails(&[
        "checkpoint",
        "--image-path",
        image.to_str().unwrap(),
        "--parent-path",
        "../none",
        &id,
    ]);
    assert!(e.contains("invalid --parent-path"), "{e}");
    assert_eq!(b.status(&id), "running");
    let at = count(&out);
    count_passes(&out, at);
}

/// A network namespace held by a child of ours, its loopback up: what a
/// container manager's CNI gives a container by path.
struct NetNs(std::process::Child);

impl NetNs {
    fn new() -> NetNs {
        let child = Command::new("unshare")
            .args(["--net", "/bin/busybox", "sh", "-c"])
            .arg("/bin/busybox ip link set lo up && exec /bin/busybox sleep 1000")
            .spawn()
            .unwrap();
        let ns = NetNs(child);
        // Until its loopback is up (::1 on lo), for at most 5 s.
        let inet6 = format!("/proc/{}/net/if_inet6", ns.0.id());
        for _ in 0..500 {
            if std::fs::read_to_string(&inet6).is_ok_and(|s| s.contains(" lo")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ns
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_tcp_connection_in_a_namespace_given_by_path_survives() {
    require_criu!();
    // A server and a client in the container, over loopback in a network
    // namespace the container joins by path (external to the image: CRIU
    // gets it back from hull on restore); the client writes what it reads.
    let netns = NetNs::new();
    let (mut b, out) = counter();
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "exec 2>/out/err; nc -l -p 7000 -e sh -c 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done' & sleep 0.3; nc 127.0.0.1 7000 | while read l; do echo $l > /out/count.new; mv /out/count.new /out/count; done"
    ]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(netns.path());
        }
    }
    b.save();
    let id = b.id("tcp");
    start_counter(&b, &id);
    count_passes(&out, 3);
    let image = b.dir.join("image");
    // Without --tcp-established CRIU refuses the open connection.
    let refused = hull_quiet(
        &b,
        &[
            "checkpoint",
            "--manage-cgroups-mode",
            "ignore",
            "--image-path",
            image.to_str().unwrap(),
            &id,
        ],
    );
    assert!(!refused.status.success());
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("criu failed"), "{e}");
    assert!(e.contains("dump.log"), "{e}");
    assert_eq!(
        b.status(&id),
        "running",
        "a failed dump leaves the container running"
    );
    let at = count(&out);
    count_passes(&out, at);
    checkpoint(&b, &id, &image, &["--tcp-established"]);
    let stopped = count(&out);
    // As a container manager does: the old namespace is torn down (CRIU
    // left its network lock there), the container restored into a new
    // one, given by its new path.
    drop(netns);
    let netns = NetNs::new();
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(netns.path());
        }
    }
    b.save();
    restore(&b, &id, &image, &["--tcp-established"]);
    let after = goes_on_from(&out, stopped);
    assert!(after > stopped);
    b.ok(&["delete", "--force", &id]);
}

#[test]
fn restore_with_the_systemd_driver_starts_a_scope() {
    require_criu!();
    if !Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: systemd is not PID 1 here (the systemd lane runs this)");
        return;
    }
    let (mut b, out) = counter();
    let id = b.id("crsd");
    b.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hull:{id}"));
    b.config["linux"]["resources"] = json!({"pids": {"limit": 99}});
    b.save();
    let sd = |args: &[&str]| {
        let mut v = vec!["--systemd-cgroup"];
        v.extend_from_slice(args);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = sd(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), &id]);
    ok_quiet(&b, &args.iter().map(String::as_str).collect::<Vec<_>>());
    count_passes(&out, 2);
    let image = b.dir.join("image");
    checkpoint(&b, &id, &image, &[]);
    let unit = format!("hull-{id}.scope");
    let active = || {
        let o = output_of(Command::new("systemctl").args(["is-active", &unit]));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // CRIU's default cgroup mode (soft), as podman and CRI-O restore.
    let restore_args = sd(&[
        "restore",
        "--detach",
        "--image-path",
        image.to_str().unwrap(),
        "--bundle",
        b.dir.to_str().unwrap(),
        &id,
    ]);
    ok_quiet(
        &b,
        &restore_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(active(), "active");
    let pid = pid_of(&b, &id);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&unit), "{cg}");
    // The pids controller's directory: v2, or the v1 hierarchy (hybrid).
    let dir = [
        "/sys/fs/cgroup/system.slice",
        "/sys/fs/cgroup/pids/system.slice",
    ]
    .iter()
    .map(|d| Path::new(d).join(&unit))
    .find(|d| d.join("pids.max").exists())
    .expect("the scope's pids directory");
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "99"
    );
    let at = count(&out);
    count_passes(&out, at);
    b.ok(&["delete", "--force", &id]);
    assert_ne!(active(), "active");
}

// The refusals: before CRIU is asked anything, so they run everywhere.

#[test]
fn a_missing_criu_is_named_with_the_version_needed() {
    require_root!();
    let b = Bundle::new(&["sleep", "60"]);
    let id = b.id("nocriu");
    b.ok(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), &id]);
    let image = b.dir.join("image");
    let e = b.fails(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        image.to_str().unwrap(),
        &id,
    ]);
    assert!(e.contains("CRIU version check failed"), "{e}");
    assert!(e.contains("CRIU 3.0 or newer"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert_eq!(b.status(&id), "running");
}

#[test]
fn a_created_container_cannot_be_checkpointed() {
    require_root!();
    let b = Bundle::new(&["sleep", "60"]);
    let id = b.id("created");
    b.create(&id);
    let e = b.fails(&["checkpoint", &id]);
    assert!(
        e.contains("Container cannot be checkpointed in created state"),
        "{e}"
    );
    assert_eq!(b.status(&id), "created");
    let e = b.fails(&["checkpoint", "nosuch"]);
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn restore_refuses_a_missing_image_and_an_existing_id_leaving_nothing() {
    require_root!();
    let b = Bundle::new(&["sleep", "60"]);
    let id = b.id("noimage");
    let refused = |image: &Path| {
        b.fails(&[
            "restore",
            "--image-path",
            image.to_str().unwrap(),
            "--bundle",
            b.dir.to_str().unwrap(),
            "--detach",
            &id,
        ])
    };
    let gone = b.dir.join("no-such-image");
    let e = refused(&gone);
    assert!(e.contains("no-such-image"), "{e}");
    assert!(!gone.exists(), "restore made the image directory");
    assert!(!b.state_dir_exists(&id));
    assert!(cgroup_dirs(&id).is_empty());
    // A directory that holds no checkpoint.
    let empty = b.dir.join("empty-image");
    std::fs::create_dir_all(&empty).unwrap();
    let e = refused(&empty);
    assert!(e.contains("holds no checkpoint"), "{e}");
    assert!(!b.state_dir_exists(&id));
    // A descriptors.json no checkpoint would write: not read whole.
    std::fs::write(empty.join("descriptors.json"), vec![b' '; 1 << 20]).unwrap();
    let e = refused(&empty);
    assert!(e.contains("larger than 65536 bytes"), "{e}");
    assert!(!b.state_dir_exists(&id));
    // An id that exists: refused, and the container left as it was.
    std::fs::write(empty.join("descriptors.json"), "[]").unwrap();
    b.ok(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), &id]);
    let pid = pid_of(&b, &id);
    let e = refused(&empty);
    assert!(e.contains("exists"), "{e}");
    assert_eq!(b.status(&id), "running");
    assert_eq!(pid_of(&b, &id), pid);
}

#[test]
fn the_probes_podman_and_cri_o_run_answer_as_runc() {
    let help = Command::new(hull_bin())
        .args(["checkpoint", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--image-path",
        "--leave-running",
        "--pre-dump",
        "--manage-cgroups-mode",
    ] {
        assert!(text.contains(flag), "{flag}: {text}");
    }
    let probe = Command::new(hull_bin())
        .args(["restore", "--lsm-mount-context"])
        .output()
        .unwrap();
    assert!(!probe.status.success());
    let said = String::from_utf8_lossy(&probe.stdout).into_owned()
        + &String::from_utf8_lossy(&probe.stderr);
    assert!(said.contains("flag needs an argument"), "{said}");
    // containerd's shim passes -no-subreaper with a single dash.
    let b = Bundle::new(&["true"]);
    let e = b.fails(&[
        "restore",
        "-no-subreaper",
        "-detach",
        "-image-path",
        "/nonexistent/image",
        "-bundle",
        b.dir.to_str().unwrap(),
        "x",
    ]);
    assert!(e.contains("/nonexistent/image"), "{e}");
    let features: Value = serde_json::from_slice(
        &Command::new(hull_bin())
            .arg("features")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        features["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
        "true"
    );
}

#[test]
fn a_terminal_container_is_restored_with_a_new_console() {
    require_criu!();
    let (mut b, out) = counter();
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /out/count.new; mv /out/count.new /out/count; echo tick$i; sleep 0.05; done"
    ]);
    b.save();
    let id = b.id("tty");
    let sock = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let s = sock.to_str().unwrap();
    let taker = std::thread::spawn(move || receive_fd(&listener));
    ok_quiet(
        &b,
        &[
            "run",
            "--detach",
            "--console-socket",
            s,
            "--bundle",
            b.dir.to_str().unwrap(),
            &id,
        ],
    );
    let (first, _) = taker.join().unwrap();
    count_passes(&out, 2);
    let image = b.dir.join("image");
    checkpoint(&b, &id, &image, &[]);
    drop(first);
    let stopped = count(&out);
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let taker = std::thread::spawn(move || receive_fd(&listener));
    restore(&b, &id, &image, &["--console-socket", s]);
    let (master, _) = taker.join().unwrap();
    goes_on_from(&out, stopped);
    // The restored process writes to the new console.
    let mut f = std::fs::File::from(master);
    let seen = read_until(&mut f, "tick", Duration::from_secs(5));
    assert!(seen.contains("tick"), "{seen:?}");
    let pid = pid_of(&b, &id);
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    assert!(tty.starts_with("/dev/pts"), "{}", tty.display());
    b.ok(&["delete", "--force", &id]);
}

#[test]
fn a_restore_criu_fails_leaves_nothing_and_the_rootfs_whole() {
    require_criu!();
    let (b, out) = counter();
    let id = b.id("failing");
    start_counter(&b, &id);
    count_passes(&out, 2);
    let image = b.dir.join("image");
    checkpoint(&b, &id, &image, &[]);
    // The bind mount's source is gone: CRIU cannot remount /out.
    let moved = b.dir.join("out-moved");
    std::fs::rename(&out, &moved).unwrap();
    let failed = restore_output(&b, &id, &image, &["--detach"]);
    assert!(!failed.status.success());
    let e = String::from_utf8_lossy(&failed.stderr);
    assert!(e.contains("criu failed: type RESTORE"), "{e}");
    assert!(e.contains("restore.log"), "{e}");
    assert!(!e.contains("cleaning up"), "the teardown failed: {e}");
    // The rootfs was bound inside the state directory while CRIU ran.
    assert!(
        rootfs().join("bin/busybox").exists(),
        "the rootfs was emptied"
    );
    assert!(!b.state_dir_exists(&id));
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    let procs = output_of(Command::new("pgrep").args(["-f", "criu swrk"]));
    assert!(procs.stdout.is_empty(), "criu is still running");
    std::fs::rename(&moved, &out).unwrap();
}

#[test]
fn stdio_on_the_hosts_dev_null_becomes_the_containers_own() {
    require_root!();
    // conmon gives a container without -i the host's /dev/null as stdin:
    // runc reopens it inside (CRIU cannot dump a file of a mount the
    // container does not have).
    use std::os::unix::fs::MetadataExt;
    let b = Bundle::new(&["sleep", "60"]);
    let id = b.id("devnull");
    let status = b
        .cmd()
        .args(["run", "--detach", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid = pid_of(&b, &id);
    let host = std::fs::metadata("/dev/null").unwrap();
    for fd in 0..3 {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(link, Path::new("/dev/null"));
        let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(m.rdev(), host.rdev(), "fd {fd} is a null device");
        assert_ne!(m.dev(), host.dev(), "fd {fd} is still the host's /dev/null");
    }
}

#[test]
fn restore_in_the_foreground_waits_and_exits_with_the_container() {
    require_criu!();
    let (mut b, out) = counter();
    b.config["process"]["args"] = json!([
        "sh",
        "-c",
        "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo $i > /out/count.new; mv /out/count.new /out/count; sleep 0.05; done; exit 7"
    ]);
    b.save();
    let id = b.id("fg");
    start_counter(&b, &id);
    count_passes(&out, 3);
    let image = b.dir.join("image");
    checkpoint(&b, &id, &image, &[]);
    let stopped = count(&out);
    assert!(stopped < 40, "the counter finished before the dump");
    // Without --detach: hull stays until the restored process exits, with
    // its status, and removes the container.
    let done = restore_output(&b, &id, &image, &[]);
    assert_eq!(
        done.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(count(&out), 40);
    assert!(!b.state_dir_exists(&id));
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn a_restore_into_another_containers_cgroup_is_refused_and_kills_nobody() {
    require_root!();
    // Restoring a second copy from the same bundle (its cgroupsPath is the
    // running container's) must fail before the record names a process:
    // the teardown of the refused restore would kill what is in there.
    let mut b = Bundle::new(&["sleep", "60"]);
    let shared = format!("/hull-cr-shared-{}", std::process::id());
    b.config["linux"]["cgroupsPath"] = json!(shared);
    b.save();
    let first = b.id("first");
    b.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.dir.to_str().unwrap(),
        &first,
    ]);
    let pid = pid_of(&b, &first);
    let image = b.dir.join("image");
    std::fs::create_dir_all(&image).unwrap();
    std::fs::write(image.join("descriptors.json"), "[]").unwrap();
    let second = b.id("second");
    let refused = restore_output(&b, &second, &image, &["--detach"]);
    assert_eq!(refused.status.code(), Some(1));
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("cgroup is not empty"), "{e}");
    assert!(
        alive(pid),
        "the refused restore killed the running container"
    );
    assert_eq!(b.status(&first), "running");
    assert!(!b.state_dir_exists(&second));
}
