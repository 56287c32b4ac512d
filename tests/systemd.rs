//! The systemd cgroup driver (`--systemd-cgroup`) against a real systemd:
//! these run in the systemd lane (`make test-systemd`, systemd 252 as PID
//! 1 in a VM). Elsewhere each says it skipped, and the lane fails if one
//! does there.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

macro_rules! require_systemd {
    () => {
        require_root!();
        if !Path::new("/run/systemd/system").is_dir() {
            eprintln!("skipped: systemd is not PID 1 here (the systemd lane runs this)");
            return;
        }
    };
}

/// `systemctl show -p PROP --value UNIT`.
fn show(unit: &str, prop: &str) -> String {
    let out = output_of(Command::new("systemctl").args(["show", "-p", prop, "--value", unit]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn systemctl(args: &[&str]) {
    let out = output_of(Command::new("systemctl").args(args));
    assert!(out.status.success(), "systemctl {args:?}: {out:?}");
}

/// `systemctl daemon-reload`, and time for systemd to re-realize the
/// units' cgroups (queued behind the reload).
fn reload() {
    systemctl(&["daemon-reload"]);
    systemctl(&["list-units", "--no-legend", "hull*"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
}

/// The failed units systemd lists.
fn failed_units() -> String {
    let out = output_of(Command::new("systemctl").args([
        "list-units",
        "--failed",
        "--plain",
        "--no-legend",
    ]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bundle whose container goes into `slice` as `hull-<id>.scope`.
fn bundle_in(slice: &str, args: &[&str]) -> (Bundle, String) {
    let mut b = Bundle::new(args);
    let id = b.id("sd");
    b.config["linux"]["cgroupsPath"] = json!(format!("{slice}:hull:{id}"));
    b.save();
    (b, id)
}

/// A created container in `slice` with `resources`: its bundle, id, unit
/// and cgroup directory.
fn created_in(slice: &str, resources: serde_json::Value) -> (Bundle, String, String, PathBuf) {
    let (mut b, id) = bundle_in(slice, &["sleep", "100"]);
    b.config["linux"]["resources"] = resources;
    b.save();
    create(&b, &id);
    let unit = format!("hull-{id}.scope");
    let path = match slice {
        "" => "/system.slice".to_string(),
        s => plan_path(s),
    };
    let dir = PathBuf::from(format!("/sys/fs/cgroup{path}/{unit}"));
    (b, id, unit, dir)
}

/// `a-b.slice` → `/a.slice/a-b.slice` (what the test expects, spelled out).
fn plan_path(slice: &str) -> String {
    let stem = slice.trim_end_matches(".slice");
    let mut out = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        prefix.push_str(part);
        out.push_str(&format!("/{prefix}.slice"));
        prefix.push('-');
    }
    out
}

fn sd(b: &Bundle, args: &[&str]) -> String {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    b.ok(&all)
}

/// `hull --systemd-cgroup run` in the foreground, output captured.
fn sd_run(b: &Bundle, id: &str) -> std::process::Output {
    output_of(
        b.cmd()
            .args([
                "--systemd-cgroup",
                "run",
                "--bundle",
                b.dir.to_str().unwrap(),
                id,
            ])
            .stdin(Stdio::null()),
    )
}

fn create(b: &Bundle, id: &str) {
    sd(b, &["create", "--bundle", b.dir.to_str().unwrap(), id]);
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// After delete: no unit loaded, no directory, nothing failed.
fn assert_gone(unit: &str, dir: &Path) {
    for _ in 0..200 {
        if show(unit, "LoadState") == "not-found" && !dir.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        show(unit, "LoadState"),
        "not-found",
        "{unit} is still loaded"
    );
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(
        !failed_units().contains(unit),
        "{unit} failed: {}",
        failed_units()
    );
}

/// The scope lands exactly where the kubelet, CRI-O and cAdvisor compute
/// it (nested slices expanded), systemd reports that path, the init and an
/// exec'd process are in it, and delete (without the flag: the driver is
/// on the record) stops it. Differential with Debian's runc on the same
/// bundle: the same path shape and the same limits systemd reports.
#[test]
fn the_scope_is_where_callers_look_and_goes_with_delete() {
    require_systemd!();
    let limits = json!({"memory": {"limit": 64u64 << 20}, "pids": {"limit": 50}});
    let (mut b, id, unit, dir) = created_in("hulltest-sub.slice", limits);
    let rel = format!("/hulltest.slice/hulltest-sub.slice/{unit}");
    assert_eq!(show(&unit, "ControlGroup"), rel);
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(dir, PathBuf::from(format!("/sys/fs/cgroup{rel}")));
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(own.trim(), format!("0::{rel}"));
    assert_eq!(read(&dir, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(show(&unit, "MemoryMax"), (64u64 << 20).to_string());
    assert_eq!(read(&dir, "pids.max"), "50");
    assert_eq!(show(&unit, "TasksMax"), "50");
    b.ok(&["start", &id]);
    let out = b.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(out.trim(), format!("0::{rel}"), "exec'd process");
    // containerd passes the flag to every verb; it changes nothing there.
    sd(&b, &["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    b.ok(&["delete", &id]);
    assert_gone(&unit, &dir);

    let Some(_) = runc_bin() else { return };
    let rid = format!("rc{id}");
    b.config["linux"]["cgroupsPath"] = json!(format!("hulltest-sub.slice:runc:{rid}"));
    b.save();
    let out = output_of(
        Command::new(runc_bin().unwrap())
            .arg("--root")
            .arg(b.dir.join("runc-state"))
            .args([
                "--systemd-cgroup",
                "create",
                "--bundle",
                b.dir.to_str().unwrap(),
                &rid,
            ])
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "runc: {out:?}");
    let runit = format!("runc-{rid}.scope");
    let theirs = (
        show(&runit, "ControlGroup"),
        show(&runit, "MemoryMax"),
        show(&runit, "TasksMax"),
    );
    runc_cmd(&b, &["delete", "--force", &rid]);
    assert_eq!(
        theirs,
        (
            format!("/hulltest.slice/hulltest-sub.slice/{runit}"),
            (64u64 << 20).to_string(),
            "50".to_string()
        )
    );
}

/// Every limit file as the config asked, and still so after `systemctl
/// daemon-reload` (systemd rewrites the controllers it manages from the
/// unit's properties: swap, io weight, cpu quota and weight, memory
/// high/min, cpusets, pids).
#[test]
fn limits_survive_a_daemon_reload() {
    require_systemd!();
    let limits = json!({
        "memory": {"limit": 96u64 << 20, "reservation": 32u64 << 20, "swap": 96u64 << 20},
        "cpu": {"shares": 512, "quota": 12345, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 77},
        "blockIO": {"weight": 500},
        "unified": {"memory.high": "83886080", "memory.min": "4194304"}
    });
    let (b, id, unit, dir) = created_in("hulltest.slice", limits);
    let files = [
        ("memory.max", (96u64 << 20).to_string()),
        ("memory.low", (32u64 << 20).to_string()),
        ("memory.high", "83886080".to_string()),
        ("memory.min", "4194304".to_string()),
        // swap == memory: no swap at all.
        ("memory.swap.max", "0".to_string()),
        ("cpu.weight", "59".to_string()),
        // The quota systemd can express (whole percents), as runc.
        ("cpu.max", "13000 100000".to_string()),
        ("cpuset.cpus", "0".to_string()),
        ("cpuset.mems", "0".to_string()),
        ("pids.max", "77".to_string()),
    ];
    let io = dir.join("io.weight").exists();
    let snapshot = || {
        let mut v: Vec<(String, String)> = files
            .iter()
            .map(|(f, _)| (f.to_string(), read(&dir, f)))
            .collect();
        if io {
            v.push(("io.weight".into(), read(&dir, "io.weight")));
        }
        v
    };
    let before = snapshot();
    for (f, want) in &files {
        assert_eq!(&read(&dir, f), want, "{f}");
    }
    if io {
        assert_eq!(read(&dir, "io.weight"), "default 4950");
    }
    reload();
    assert_eq!(snapshot(), before, "a daemon-reload changed the limits");
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &dir);
}

/// `org.systemd.property.*` annotations become the scope's properties
/// (runc's GVariant text and Sec → USec); a malformed one fails create
/// before anything exists.
#[test]
fn annotations_set_unit_properties() {
    require_systemd!();
    let (mut b, id) = bundle_in("hulltest.slice", &["sleep", "100"]);
    b.config["annotations"] = json!({
        "org.systemd.property.TimeoutStopSec": "uint64 123",
        "org.systemd.property.CollectMode": "'inactive-or-failed'"
    });
    b.save();
    create(&b, &id);
    let unit = format!("hull-{id}.scope");
    assert_eq!(show(&unit, "TimeoutStopUSec"), "2min 3s");
    assert_eq!(show(&unit, "CollectMode"), "inactive-or-failed");
    b.ok(&["delete", "--force", &id]);
    b.config["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "soon"});
    b.save();
    let err = b.fails(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        &id,
    ]);
    assert!(
        err.contains("org.systemd.property.TimeoutStopSec=soon value parse error"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    assert_eq!(show(&unit, "LoadState"), "not-found");
}

/// `update` changes the unit's properties too, so a reload keeps the new
/// limits.
#[test]
fn update_goes_through_systemd_and_survives_a_reload() {
    require_systemd!();
    let limits = json!({"memory": {"limit": 64u64 << 20}, "pids": {"limit": 50}});
    let (b, id, unit, dir) = created_in("hulltest.slice", limits);
    b.ok(&["update", "--memory", "100000000", "--pids-limit", "60", &id]);
    assert_eq!(read(&dir, "memory.max"), "99999744");
    assert_eq!(show(&unit, "MemoryMax"), "100000000");
    reload();
    assert_eq!(read(&dir, "pids.max"), "60");
    assert_eq!(show(&unit, "TasksMax"), "60");
    assert_eq!(read(&dir, "memory.max"), "99999744");
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &dir);
}

/// `run` in the foreground: the exit code is the process's, and the
/// scope is gone when run returns.
#[test]
fn run_reports_the_exit_code_and_leaves_no_unit() {
    require_systemd!();
    let (b, id) = bundle_in(
        "",
        &["sh", "-c", "grep -q hull-sd /proc/self/cgroup && exit 3"],
    );
    let out = sd_run(&b, &id);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let unit = format!("hull-{id}.scope");
    assert_gone(
        &unit,
        &PathBuf::from(format!("/sys/fs/cgroup/system.slice/{unit}")),
    );
    assert!(!b.state_dir_exists(&id));
}

/// The same id run again and again, back to back (as a benchmark or a
/// restarting caller does): each run finds the previous scope being
/// collected by systemd (its cgroup files answering ENODEV, its unit
/// still loaded a moment), and every one of them must succeed.
#[test]
fn back_to_back_runs_of_one_id_all_succeed() {
    require_systemd!();
    let (b, id) = bundle_in("", &["true"]);
    let mut failed = Vec::new();
    for i in 0..150 {
        let out = sd_run(&b, &id);
        if !out.status.success() {
            failed.push(format!(
                "run {i}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            b.hull(&["delete", "--force", &id]);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A second container asking for a scope in use fails, and leaves the
/// first one (its processes, directory and unit) alone.
#[test]
fn a_scope_in_use_is_refused_and_left_alone() {
    require_systemd!();
    let (b, id) = bundle_in("hulltest.slice", &["sleep", "100"]);
    create(&b, &id);
    let unit = format!("hull-{id}.scope");
    let other = b.id("other");
    let err = b.fails(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        &other,
    ]);
    assert!(
        err.contains("not empty") || err.contains("already exists"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&other));
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(b.status(&id), "created");
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    assert!(alive(pid));
    b.ok(&["delete", "--force", &id]);
}

/// With the bus daemon unreachable, hull talks to systemd's own socket;
/// with a bus that never answers, create fails within its bounded wait,
/// saying so, and leaves nothing.
#[test]
fn a_missing_or_silent_bus_never_hangs_create() {
    require_systemd!();
    let (b, id) = bundle_in("hulltest.slice", &["sleep", "100"]);
    let unit = format!("hull-{id}.scope");
    let dir = PathBuf::from(format!("/sys/fs/cgroup/hulltest.slice/{unit}"));
    let create_with = |bus: &str| {
        output_of(
            b.cmd()
                .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
                .args([
                    "--systemd-cgroup",
                    "create",
                    "--bundle",
                    b.dir.to_str().unwrap(),
                    &id,
                ])
                .stdin(Stdio::null()),
        )
    };
    let out = create_with("unix:path=/nonexistent/bus");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(show(&unit, "ActiveState"), "active");
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &dir);

    // Accepts (the backlog does) and never says a word.
    let sock = b.dir.join("silent-bus");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::time::Instant::now();
    let out = create_with(&format!("unix:path={}", sock.display()));
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no answer from the bus in time"), "{err}");
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    assert!(!b.state_dir_exists(&id));
    assert_gone(&unit, &dir);
}

/// How many times `hull create` (not its children) calls each of `calls`.
fn call_counts(b: &Bundle, id: &str, calls: &str) -> Vec<(String, usize)> {
    let summary = b.dir.join("strace-summary");
    let out = output_of(
        Command::new("strace")
            .args(["-c", "-e"])
            .arg(format!("trace={calls}"))
            .arg("-o")
            .arg(&summary)
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args([
                "--systemd-cgroup",
                "create",
                "--bundle",
                b.dir.to_str().unwrap(),
                id,
            ])
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "create under strace: {out:?}");
    b.ok(&["delete", "--force", id]);
    let text = std::fs::read_to_string(&summary).unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.last()?;
            let n = f.get(3)?.parse().ok()?;
            calls
                .split(',')
                .any(|c| c == *name)
                .then(|| (name.to_string(), n))
        })
        .collect()
}

/// `hull create` killed at every step of its D-Bus exchange (each
/// connect, write and read it makes: the bus's and the rest) leaves what
/// `delete --force` removes entirely: no state, unit, scope or process;
/// and the id can be created again.
#[test]
fn create_killed_at_each_bus_step_leaves_nothing_after_delete_force() {
    require_systemd!();
    if Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is in the systemd lane's image");
    }
    let (b, id) = bundle_in("hulltest.slice", &["sleep", "100"]);
    let unit = format!("hull-{id}.scope");
    let dir = PathBuf::from(format!("/sys/fs/cgroup/hulltest.slice/{unit}"));
    let counts = call_counts(&b, &id, "connect,write,read");
    assert!(
        counts.iter().any(|(c, n)| c == "connect" && *n >= 1),
        "{counts:?}"
    );
    let mut failures = Vec::new();
    let mut killed = 0;
    for (call, n) in &counts {
        for k in 1..=*n {
            if create_killed_at(&b, &id, &["--systemd-cgroup"], call, k) {
                killed += 1;
            }
            let del = b.hull(&["delete", "--force", &id]);
            let mut left = Vec::new();
            if !del.status.success() {
                left.push(format!(
                    "delete --force: {}",
                    String::from_utf8_lossy(&del.stderr).trim()
                ));
            }
            if b.state_dir_exists(&id) {
                left.push("state directory".to_string());
            }
            // systemd collects an emptied scope by itself, a moment later.
            for _ in 0..100 {
                if show(&unit, "LoadState") == "not-found" && !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if show(&unit, "LoadState") != "not-found" {
                left.push(format!("unit {unit} ({})", show(&unit, "ActiveState")));
            }
            if dir.exists() {
                left.push(format!("cgroup {}", dir.display()));
            }
            if failed_units().contains(&unit) {
                left.push("a failed unit".to_string());
            }
            if !left.is_empty() {
                failures.push(format!("killed at {call} #{k}: {}", left.join("; ")));
            }
        }
    }
    // The id is free again.
    create(&b, &id);
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &dir);
    eprintln!("{killed} of the kill points killed create: {counts:?}");
    assert!(killed > 3, "the fault injector did not kill hull");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
