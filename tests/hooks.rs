//! OCI hooks on real containers: every phase fires in order, at its moment,
//! in its namespaces, with the state on stdin; timeouts; and what each
//! failure does (create and start fail and leave nothing, a failed
//! poststart stops the container, a failed poststop is only a warning).

mod common;

use common::*;
use serde_json::{Value, json};

/// A hook that appends "<name> <state> mnt:<ns> pid:<ns>" to `log`, run by
/// `sh` at `sh` (the host's busybox, or the container's /bin/sh).
fn logging_hook(sh: &str, name: &str, log: &str) -> Value {
    json!({
        "path": sh,
        "args": ["sh", "-c", format!(
            "echo \"{name} $(cat) mnt:$(readlink /proc/self/ns/mnt) pid:$(readlink /proc/self/ns/pid)\" >> {log}"
        )]
    })
}

fn ns_of(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// Lines of the hook log: (name, state, mnt ns, pid ns).
fn log_lines(path: &std::path::Path) -> Vec<(String, Value, String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (name, rest) = l.split_once(' ').unwrap();
            let (state, ns) = rest.split_once("} mnt:").unwrap();
            let (mnt, pid) = ns.split_once(" pid:").unwrap();
            (
                name.to_string(),
                serde_json::from_str(&format!("{state}}}")).unwrap(),
                mnt.to_string(),
                pid.to_string(),
            )
        })
        .collect()
}

#[test]
fn every_hook_fires_in_order_in_its_namespaces() {
    require_root!();
    let mut b = Bundle::new(&["sleep", "100"]);
    let logdir = b.dir.join("hooklog");
    std::fs::create_dir(&logdir).unwrap();
    let log = logdir.join("log");
    let host_log = log.to_str().unwrap().to_string();
    b.config["annotations"] = json!({"org.example/k": "v"});
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/hooklog", "type": "bind", "source": logdir, "options": ["rbind", "rw"]
    }));
    let mut hooks = serde_json::Map::new();
    for phase in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        hooks.insert(
            phase.into(),
            json!([logging_hook("/bin/busybox", phase, &host_log)]),
        );
    }
    // startContainer's path resolves in the container: its own /bin/sh,
    // writing through the bind mount.
    hooks.insert(
        "startContainer".into(),
        json!([logging_hook("/bin/sh", "startContainer", "/hooklog/log")]),
    );
    b.config["hooks"] = Value::Object(hooks);
    b.save();
    let id = b.id("hooks");
    b.create(&id);
    let pid = b.state(&id)["pid"].as_i64().unwrap().to_string();
    let (cmnt, cpid) = (ns_of(&pid, "mnt"), ns_of(&pid, "pid"));
    let (hmnt, hpid) = (ns_of("self", "mnt"), ns_of("self", "pid"));
    let names = |l: &[(String, Value, String, String)]| -> Vec<String> {
        l.iter().map(|x| x.0.clone()).collect()
    };
    assert_eq!(
        names(&log_lines(&log)),
        ["prestart", "createRuntime", "createContainer"]
    );
    b.ok(&["start", &id]);
    assert_eq!(
        names(&log_lines(&log)).len(),
        5,
        "start returns after poststart"
    );
    b.ok(&["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    b.ok(&["delete", &id]);
    let lines = log_lines(&log);
    assert_eq!(
        names(&lines),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    for (name, state, mnt, pidns) in &lines {
        let (status, in_container) = match name.as_str() {
            "prestart" | "createRuntime" => ("creating", false),
            "createContainer" => ("creating", true),
            "startContainer" => ("created", true),
            "poststart" => ("running", false),
            _ => ("stopped", false),
        };
        assert_eq!(state["status"], status, "{name}");
        assert_eq!(state["id"], id.as_str(), "{name}");
        assert_eq!(state["bundle"], b.dir.to_str().unwrap(), "{name}");
        assert_eq!(state["annotations"]["org.example/k"], "v", "{name}");
        assert_eq!(state["ociVersion"], "1.3.0", "{name}");
        if name != "poststop" {
            assert_eq!(state["pid"].as_i64().unwrap().to_string(), pid, "{name}");
        }
        let (want_mnt, want_pid) = if in_container {
            (&cmnt, &cpid)
        } else {
            (&hmnt, &hpid)
        };
        assert_eq!((mnt, pidns), (want_mnt, want_pid), "{name}'s namespaces");
    }
}

#[test]
fn hooks_get_exactly_their_args_and_env() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    let out = b.dir.join("env-out");
    b.config["hooks"] = json!({"prestart": [{
        "path": "/bin/busybox",
        "args": ["sh", "-c", format!("echo \"$0|$1\" > {0}; env | sort >> {0}", out.display()), "zero", "one"],
        "env": ["ONLY=this", "AND=that"]
    }]});
    b.save();
    let id = b.id("env");
    let o = b.output_of(
        b.cmd()
            .args(["run", "--bundle", b.dir.to_str().unwrap(), &id])
            .env("HULL_TEST_MARKER", "must-not-leak")
            .stdin(std::process::Stdio::null()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    // argv exactly as given: busybox found its "sh" applet by argv[0].
    assert_eq!(lines.next(), Some("zero|one"));
    // What the shell adds itself (PWD, SHLVL, its default PATH) aside, the
    // environment is the hook's env and nothing of hull's.
    let shells_own = ["PWD=", "SHLVL=", "PATH=/sbin:/usr/sbin:/bin:/usr/bin"];
    let env: Vec<&str> = lines
        .filter(|l| !shells_own.iter().any(|p| l.starts_with(p)))
        .collect();
    assert_eq!(
        env,
        ["AND=that", "ONLY=this"],
        "nothing of hull's environment"
    );
    assert!(!text.contains("must-not-leak"));
}

#[test]
fn a_docker_style_prestart_hook_reads_the_state() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    // As libnetwork-setkey does: parse the state, act on the bundle.
    b.config["hooks"] = json!({"prestart": [{
        "path": "/bin/busybox",
        "args": ["sh", "-c",
            "s=$(cat); id=${s#*\\\"id\\\":\\\"}; id=${id%%\\\"*}; b=${s#*\\\"bundle\\\":\\\"}; b=${b%%\\\"*}; echo $id > $b/hook-was-here"]
    }]});
    b.save();
    let id = b.id("docker");
    let o = b.run(&id);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(b.dir.join("hook-was-here")).unwrap(),
        format!("{id}\n")
    );
}

/// Nothing of container `id` is left on the host.
fn nothing_left(b: &Bundle, id: &str) {
    assert!(!b.state_dir_exists(id), "state directory left");
    assert!(
        cgroup_dirs(id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(id)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(b.dir.to_str().unwrap()), "mounts left");
}

#[test]
fn failing_create_hooks_fail_create_and_leave_nothing() {
    require_root!();
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new(&["sh", "-c", "touch /dev/shm/ran"]);
        b.config["hooks"] = json!({ phase: [
            {"path": "/bin/true"},
            {"path": "/bin/busybox", "args": ["sh", "-c", "echo broken >&2; exit 4"]}
        ]});
        b.save();
        let id = b.id("createfail");
        let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(
            err.contains(&format!("error running {phase} hook #1: exit status 4"))
                && err.contains("broken"),
            "{phase}: {err}"
        );
        nothing_left(&b, &id);
        assert!(b.fails(&["state", &id]).contains("does not exist"));
    }
}

#[test]
fn a_hook_that_runs_over_its_timeout_is_killed_and_fails() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/busybox", "args": ["sleep", "30"], "timeout": 1}
    ]});
    b.save();
    let id = b.id("timeout");
    let t = std::time::Instant::now();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        err.contains("hook ran past specified timeout of 1.0s"),
        "{err}"
    );
    nothing_left(&b, &id);
    // A zero timeout is refused before anything exists.
    b.config["hooks"] = json!({"poststop": [{"path": "/bin/true", "timeout": 0}]});
    b.save();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("timeout must be greater than zero"), "{err}");
    b.config["hooks"] = json!({"poststop": [{"path": "bin/true"}]});
    b.save();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("must be an absolute path"), "{err}");
}

#[test]
fn failing_start_container_hook_fails_start_and_the_process_never_runs() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "touch /dev/shm/ran; sleep 100"]);
    b.config["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}
    ]});
    b.save();
    let id = b.id("startfail");
    b.create(&id);
    let err = b.fails(&["start", &id]);
    assert!(
        err.contains("error running startContainer hook #0: exit status 9"),
        "{err}"
    );
    b.wait_status(&id, "stopped");
    b.ok(&["delete", &id]);
    nothing_left(&b, &id);
}

#[test]
fn failing_poststart_hook_fails_start_and_stops_the_container() {
    require_root!();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.config["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    b.save();
    let id = b.id("poststartfail");
    b.create(&id);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let err = b.fails(&["start", &id]);
    assert!(
        err.contains("error running poststart hook #0: exit status 1"),
        "{err}"
    );
    b.wait_status(&id, "stopped");
    assert!(!alive(pid));
    b.ok(&["delete", &id]);
    nothing_left(&b, &id);
    // The same through a foreground run.
    let id = b.id("poststartfail-run");
    let o = b.run(&id);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("poststart hook #0"));
    nothing_left(&b, &id);
}

#[test]
fn failing_poststop_hook_is_a_warning_and_delete_completes() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    let after = b.dir.join("second-ran");
    b.config["hooks"] = json!({"poststop": [
        {"path": "/bin/false"},
        {"path": "/bin/busybox", "args": ["touch", after]}
    ]});
    b.save();
    let id = b.id("poststopfail");
    b.create(&id);
    let o = b.hull(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("level=warning"));
    assert!(after.exists(), "the remaining poststop hooks still run");
    nothing_left(&b, &id);
}

#[test]
fn empty_hooks_are_accepted() {
    require_root!();
    for hooks in [json!({}), json!({"prestart": [], "poststop": []})] {
        let mut b = Bundle::new(&["true"]);
        b.config["hooks"] = hooks;
        b.save();
        let id = b.id("empty");
        let o = b.run(&id);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn a_start_container_hook_that_ignores_a_big_state_does_not_kill_the_init() {
    require_root!();
    // The state (with 200 KiB of annotations) outgrows the pipe; the hook
    // exits without reading it. The init must survive the EPIPE.
    let mut b = Bundle::new(&["sh", "-c", "echo ran > /dev/shm/ran; sleep 100"]);
    b.config["annotations"] = json!({"big": "x".repeat(200 * 1024)});
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
    b.save();
    let id = b.id("bigstate");
    b.create(&id);
    b.ok(&["start", &id]);
    b.wait_status(&id, "running");
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    for _ in 0..200 {
        if std::fs::read_to_string(format!("/proc/{pid}/root/dev/shm/ran")).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/root/dev/shm/ran")).unwrap(),
        "ran\n"
    );
}

#[test]
fn start_container_hooks_run_under_a_profile_that_refuses_clone3() {
    require_root!();
    // Docker's and containerd's profiles answer clone3 with ENOSYS; with
    // noNewPrivileges false the filter is on when startContainer runs.
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
    b.save();
    let id = b.id("noclone3");
    let o = b.run(&id);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
