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
/// and cgroup (below a hierarchy's root).
fn created_in(slice: &str, resources: serde_json::Value) -> (Bundle, String, String, String) {
    let (mut b, id) = bundle_in(slice, &["sleep", "100"]);
    b.config["linux"]["resources"] = resources;
    b.save();
    create(&b, &id);
    let unit = format!("hull-{id}.scope");
    let path = match slice {
        "" => "/system.slice".to_string(),
        s => plan_path(s),
    };
    let rel = format!("{path}/{unit}");
    (b, id, unit, rel)
}

/// Pure cgroup v2 (else systemd's hybrid layout: v1 controllers).
fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The directory of cgroup `rel` in every hierarchy.
fn dirs_of(rel: &str) -> Vec<PathBuf> {
    if v2() {
        return vec![PathBuf::from(format!("/sys/fs/cgroup{rel}"))];
    }
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| PathBuf::from(format!("{}{rel}", e.path().display())))
        .collect()
}

/// A limit of cgroup `rel` by its v2 file name, read from that file or
/// its v1 counterpart.
fn limit(rel: &str, file: &str) -> String {
    if v2() {
        return read(Path::new(&format!("/sys/fs/cgroup{rel}")), file);
    }
    let (ctrl, v1) = match file {
        "memory.max" => ("memory", "memory.limit_in_bytes"),
        "pids.max" => ("pids", "pids.max"),
        other => panic!("no v1 file for {other}"),
    };
    read(Path::new(&format!("/sys/fs/cgroup/{ctrl}{rel}")), v1)
}

/// The memory limit property systemd shows for the host's layout.
fn memory_prop() -> &'static str {
    if v2() { "MemoryMax" } else { "MemoryLimit" }
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

/// What is left of scope `unit` at cgroup `rel`: the unit loaded, a
/// directory, a failed unit; empty when nothing (systemd collects an
/// emptied scope by itself, a moment later: waited for).
fn left_of(unit: &str, rel: &str) -> Vec<String> {
    let gone =
        || show(unit, "LoadState") == "not-found" && !dirs_of(rel).iter().any(|d| d.exists());
    for _ in 0..200 {
        if gone() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut left = Vec::new();
    if show(unit, "LoadState") != "not-found" {
        left.push(format!("unit {unit} ({})", show(unit, "ActiveState")));
    }
    for d in dirs_of(rel).into_iter().filter(|d| d.exists()) {
        left.push(format!("cgroup {}", d.display()));
    }
    if failed_units().contains(unit) {
        left.push(format!("failed unit {unit}"));
    }
    left
}

/// After delete: no unit loaded, no directory, nothing failed.
fn assert_gone(unit: &str, rel: &str) {
    let left = left_of(unit, rel);
    assert!(left.is_empty(), "left behind: {left:?}");
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
    let (mut b, id, unit, rel) = created_in("hulltest-sub.slice", limits);
    assert_eq!(rel, format!("/hulltest.slice/hulltest-sub.slice/{unit}"));
    assert_eq!(show(&unit, "ControlGroup"), rel);
    assert_eq!(show(&unit, "ActiveState"), "active");
    // In every hierarchy (on v1, systemd's and those hull makes).
    let in_scope = |text: &str| text.lines().all(|l| l.ends_with(&format!(":{rel}")));
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(in_scope(&own), "{own}");
    assert_eq!(limit(&rel, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(show(&unit, memory_prop()), (64u64 << 20).to_string());
    assert_eq!(limit(&rel, "pids.max"), "50");
    assert_eq!(show(&unit, "TasksMax"), "50");
    b.ok(&["start", &id]);
    let out = b.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(in_scope(&out), "exec'd process: {out}");
    // containerd passes the flag to every verb; it changes nothing there.
    sd(&b, &["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    b.ok(&["delete", &id]);
    assert_gone(&unit, &rel);

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
        show(&runit, memory_prop()),
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
/// high/min, cpusets, pids; on cgroup v1 also the device rules, which it
/// opens up to "allow everything" without a device policy).
#[test]
fn limits_survive_a_daemon_reload() {
    require_systemd!();
    let mut limits = json!({
        "memory": {"limit": 96u64 << 20, "reservation": 32u64 << 20, "swap": 96u64 << 20},
        "cpu": {"shares": 512, "quota": 12345, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 77}
    });
    // A v1 weight needs an I/O scheduler with weights (BFQ).
    let v1_weight = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .any(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists());
    if v2() || v1_weight {
        limits["blockIO"] = json!({"weight": 500});
    }
    if v2() {
        limits["unified"] = json!({"memory.high": "83886080", "memory.min": "4194304"});
    }
    let (b, id, unit, rel) = created_in("hulltest.slice", limits);
    let at = |ctrl: &str, file: &str| {
        let base = if v2() {
            String::new()
        } else {
            format!("/{ctrl}")
        };
        PathBuf::from(format!("/sys/fs/cgroup{base}{rel}/{file}"))
    };
    let mb = |n: u64| (n << 20).to_string();
    // (file, what the config asked; None: only unchanged by the reload)
    let mut files: Vec<(PathBuf, Option<String>)> = if v2() {
        vec![
            (at("", "memory.max"), Some(mb(96))),
            (at("", "memory.low"), Some(mb(32))),
            (at("", "memory.high"), Some("83886080".into())),
            (at("", "memory.min"), Some("4194304".into())),
            // swap == memory: no swap at all.
            (at("", "memory.swap.max"), Some("0".into())),
            (at("", "cpu.weight"), Some("59".into())),
            // The quota systemd can express (whole percents), as runc.
            (at("", "cpu.max"), Some("13000 100000".into())),
            (at("", "cpuset.cpus"), Some("0".into())),
            (at("", "cpuset.mems"), Some("0".into())),
            (at("", "pids.max"), Some("77".into())),
            (at("", "io.weight"), Some("default 4950".into())),
        ]
    } else {
        vec![
            (at("memory", "memory.limit_in_bytes"), Some(mb(96))),
            (at("memory", "memory.soft_limit_in_bytes"), Some(mb(32))),
            (at("memory", "memory.memsw.limit_in_bytes"), Some(mb(96))),
            (at("cpu,cpuacct", "cpu.shares"), Some("512".into())),
            (at("cpu,cpuacct", "cpu.cfs_quota_us"), Some("13000".into())),
            (
                at("cpu,cpuacct", "cpu.cfs_period_us"),
                Some("100000".into()),
            ),
            (at("cpuset", "cpuset.cpus"), Some("0".into())),
            (at("cpuset", "cpuset.mems"), Some("0".into())),
            (at("pids", "pids.max"), Some("77".into())),
            (at("blkio", "blkio.bfq.weight"), Some("500".into())),
            (at("devices", "devices.list"), None),
        ]
    };
    // Files this kernel does not have (swap accounting, BFQ, io).
    files.retain(|(f, _)| f.exists());
    let snapshot = || -> Vec<String> {
        files
            .iter()
            .map(|(f, _)| {
                let mut lines: Vec<String> = std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect();
                lines.sort();
                format!("{}: {}", f.display(), lines.join(" | "))
            })
            .collect()
    };
    let before = snapshot();
    for (f, want) in &files {
        if let Some(want) = want {
            assert_eq!(
                &std::fs::read_to_string(f).unwrap().trim(),
                want,
                "{}",
                f.display()
            );
        }
    }
    if !v2() {
        let list = std::fs::read_to_string(at("devices", "devices.list")).unwrap();
        assert!(!list.contains("a *:*"), "devices: {list}");
    }
    reload();
    assert_eq!(snapshot(), before, "a daemon-reload changed the limits");
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &rel);
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
    let (b, id, unit, rel) = created_in("hulltest.slice", limits);
    b.ok(&["update", "--memory", "100000000", "--pids-limit", "60", &id]);
    assert_eq!(limit(&rel, "memory.max"), "99999744");
    assert_eq!(show(&unit, memory_prop()), "100000000");
    reload();
    assert_eq!(limit(&rel, "pids.max"), "60");
    assert_eq!(show(&unit, "TasksMax"), "60");
    assert_eq!(limit(&rel, "memory.max"), "99999744");
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &rel);
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
    assert_gone(&unit, &format!("/system.slice/{unit}"));
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
    let rel = format!("/hulltest.slice/{unit}");
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
    assert_gone(&unit, &rel);

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
    assert_gone(&unit, &rel);
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
    let rel = format!("/hulltest.slice/{unit}");
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
            left.extend(left_of(&unit, &rel));
            if !left.is_empty() {
                failures.push(format!("killed at {call} #{k}: {}", left.join("; ")));
            }
        }
    }
    // The id is free again.
    create(&b, &id);
    b.ok(&["delete", "--force", &id]);
    assert_gone(&unit, &rel);
    eprintln!("{killed} of the kill points killed create: {counts:?}");
    assert!(killed > 3, "the fault injector did not kill hull");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
