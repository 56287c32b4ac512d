//! Resource limits, read back from the cgroup files on whichever layout the
//! host has (v1/hybrid here, pure v2 in the VM lane), limits that bite, and
//! the cgroup verbs: pause, resume, ps, events, update.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pure cgroup v2 (the VM lane) or v1/hybrid (our hosts).
fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Where the v1 hierarchy with `controller` is mounted, from the mount
/// table: a directory of that name under /sys/fs/cgroup proves nothing
/// (other tools leave plain directories on that tmpfs for controllers
/// that are not mounted).
fn v1_mount(controller: &str) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (fs, opts) = (post.next()?, post.nth(1)?);
        let has = fs == "cgroup" && opts.split(',').any(|o| o == controller);
        has.then(|| pre.split(' ').nth(4).map(PathBuf::from))?
    })
}

/// The container `id`'s directory for a v1 controller: its v1 hierarchy,
/// or v2 when the controller is bound there (pure v2, or hugetlb on a
/// hybrid host). Containers use the default cgroupsPath, /<id>.
fn cg_dir(v1_controller: &str, id: &str) -> PathBuf {
    if pure_v2() {
        return PathBuf::from("/sys/fs/cgroup").join(id);
    }
    match v1_mount(v1_controller) {
        Some(v1) => v1.join(id),
        None => PathBuf::from("/sys/fs/cgroup/unified").join(id),
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn with_resources(args: &[&str], res: Value) -> Bundle {
    let mut b = Bundle::new(args);
    for (k, v) in res.as_object().unwrap() {
        b.config["linux"]["resources"][k] = v.clone();
    }
    b.save();
    b
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn memory_limits_are_written() {
    require_root!();
    let mut mem = json!({"limit": 67108864, "reservation": 33554432, "swap": 134217728});
    if !pure_v2() {
        mem["swappiness"] = json!(10);
    }
    let b = with_resources(&["sleep", "100"], json!({ "memory": mem }));
    let id = b.id("mem");
    b.create(&id);
    let d = cg_dir("memory", &id);
    if pure_v2() {
        assert_eq!(read(&d, "memory.max"), "67108864");
        assert_eq!(read(&d, "memory.low"), "33554432");
        if d.join("memory.swap.max").exists() {
            // v2 limits swap alone: memory+swap minus memory.
            assert_eq!(read(&d, "memory.swap.max"), "67108864");
        }
    } else {
        assert_eq!(read(&d, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&d, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(&d, "memory.memsw.limit_in_bytes"), "134217728");
        assert_eq!(read(&d, "memory.swappiness"), "10");
    }
}

/// A memory limit the init stage itself cannot live within: create fails
/// with runc's words for it, and leaves nothing behind.
#[test]
fn an_init_killed_by_the_oom_killer_is_said_so() {
    require_root!();
    let b = with_resources(&["true"], json!({"memory": {"limit": 8192}}));
    let id = b.id("oom");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("container init was OOM-killed (memory limit too low?)"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

#[test]
fn kernel_memory_is_ignored_with_a_warning() {
    require_root!();
    let b = with_resources(
        &["true"],
        json!({"memory": {"kernel": 1048576, "kernelTCP": 1048576}}),
    );
    let id = b.id("kmem");
    let out = b.hull(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Kernel memory settings are ignored"),
        "{out:?}"
    );
}

#[test]
fn cpu_limits_are_written() {
    require_root!();
    let b = with_resources(
        &["sleep", "100"],
        json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0", "mems": "0"}}),
    );
    let id = b.id("cpu");
    b.create(&id);
    let d = cg_dir("cpu", &id);
    if pure_v2() {
        // runc's shares→weight conversion.
        assert_eq!(read(&d, "cpu.weight"), "59");
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        assert_eq!(read(&d, "cpu.max.burst"), "1000");
        assert_eq!(read(&d, "cpuset.cpus"), "0");
        assert_eq!(read(&d, "cpuset.mems"), "0");
    } else {
        assert_eq!(read(&d, "cpu.shares"), "512");
        assert_eq!(read(&d, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&d, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&d, "cpu.cfs_burst_us"), "1000");
        let s = cg_dir("cpuset", &id);
        assert_eq!(read(&s, "cpuset.cpus"), "0");
        assert_eq!(read(&s, "cpuset.mems"), "0");
    }
}

/// A v1 parent cpuset cgroup someone made and left with empty cpus and
/// mems (a pod's cgroup) is filled from its parent, as runc does, rather
/// than every task being refused with ENOSPC (issue 25, item 8a).
#[test]
fn an_empty_v1_cpuset_parent_is_filled() {
    require_root!();
    let Some(cpuset) = v1_mount("cpuset") else {
        eprintln!("skipped: no v1 cpuset hierarchy (pure cgroup v2)");
        return;
    };
    let parent = cpuset.join(format!("hull-empty-parent-{}", std::process::id()));
    std::fs::create_dir(&parent).unwrap();
    assert_eq!(read(&parent, "cpuset.cpus"), "");
    let mut b = Bundle::new(&["cat", "/proc/self/cgroup"]);
    let id = b.id("cpusetparent");
    b.config["linux"]["cgroupsPath"] = json!(format!(
        "/{}/{id}",
        parent.file_name().unwrap().to_str().unwrap()
    ));
    b.save();
    let out = b.run(&id);
    let err = String::from_utf8_lossy(&out.stderr);
    let filled = (read(&parent, "cpuset.cpus"), read(&parent, "cpuset.mems"));
    let _ = std::fs::remove_dir(&parent);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(filled.0, read(&cpuset, "cpuset.cpus"));
    assert_eq!(filled.1, read(&cpuset, "cpuset.mems"));
}

/// Lowering the realtime period below the runtime in place: the runtime
/// is written first when the period is refused, as runc does (item 8b).
#[test]
fn rt_period_and_runtime_are_lowered_together() {
    require_root!();
    let Some(cpu) = v1_mount("cpu").filter(|d| d.join("cpu.rt_period_us").exists()) else {
        eprintln!("skipped: no v1 cpu hierarchy with realtime group scheduling");
        return;
    };
    let b = with_resources(
        &["sleep", "100"],
        json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 500000}}),
    );
    let id = b.id("rt");
    b.create(&id);
    let d = cpu.join(&id);
    assert_eq!(read(&d, "cpu.rt_runtime_us"), "500000");
    b.ok(&[
        "update",
        "--cpu-rt-period",
        "200000",
        "--cpu-rt-runtime",
        "100000",
        &id,
    ]);
    assert_eq!(read(&d, "cpu.rt_period_us"), "200000");
    assert_eq!(read(&d, "cpu.rt_runtime_us"), "100000");
}

/// v1 devices.list shows the config's rules first and in the config's
/// order (the kernel lists exceptions as written): runtime-tools'
/// linux_cgroups_devices and linux_cgroups_relative_devices check exactly
/// that ("the runtime MUST apply entries in the listed order"; issue 25,
/// item 12). runc's defaults come after.
#[test]
fn v1_device_rules_are_listed_in_the_configs_order() {
    require_root!();
    let Some(devices) = v1_mount("devices") else {
        eprintln!("skipped: no v1 devices hierarchy (pure cgroup v2)");
        return;
    };
    let b = with_resources(
        &["sleep", "100"],
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 20, "access": "rw"},
            {"allow": true, "type": "b", "major": 10, "minor": 200, "access": "r"}
        ]}),
    );
    let id = b.id("devorder");
    b.create(&id);
    let list = read(&devices.join(&id), "devices.list");
    let first: Vec<&str> = list.lines().take(3).collect();
    assert_eq!(first, ["c 10:229 rwm", "b 8:20 rw", "b 10:200 r"], "{list}");
}

#[test]
fn pids_limit_and_minus_one() {
    require_root!();
    let b = with_resources(&["sleep", "100"], json!({"pids": {"limit": 42}}));
    let id = b.id("pids");
    b.create(&id);
    assert_eq!(read(&cg_dir("pids", &id), "pids.max"), "42");
    b.ok(&["update", "--pids-limit", "-1", &id]);
    assert_eq!(read(&cg_dir("pids", &id), "pids.max"), "max");
    // runtime-spec 1.3 (issue 25, item 14): in a config declaring 1.3, 0
    // is a limit, written as 1 as runc 1.4 does (systemd's TasksMax takes
    // no 0); declaring an older spec (Debian 12's podman writes 1.0.2-dev
    // and 0 for "unlimited"), and in `update`, 0 leaves the cgroup alone
    // as runc 1.1 does; an absent limit too.
    b.ok(&["update", "--pids-limit", "0", &id]);
    assert_eq!(read(&cg_dir("pids", &id), "pids.max"), "max");
    let zero = with_resources(&["sleep", "100"], json!({"pids": {"limit": 0}}));
    assert_eq!(zero.config["ociVersion"], "1.3.0");
    let zero_id = zero.id("pidszero");
    zero.create(&zero_id);
    assert_eq!(read(&cg_dir("pids", &zero_id), "pids.max"), "1");
    let mut old = with_resources(&["sleep", "100"], json!({"pids": {"limit": 0}}));
    old.config["ociVersion"] = json!("1.0.2-dev");
    old.save();
    let old_id = old.id("pidszeroold");
    old.create(&old_id);
    assert_eq!(read(&cg_dir("pids", &old_id), "pids.max"), "max");
    let unset = with_resources(&["sleep", "100"], json!({"pids": {}}));
    let unset_id = unset.id("pidsunset");
    unset.create(&unset_id);
    assert_eq!(read(&cg_dir("pids", &unset_id), "pids.max"), "max");
}

#[test]
fn hugetlb_limits_are_written() {
    require_root!();
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("skipped: this kernel has no 2MB huge pages");
        return;
    }
    let b = with_resources(
        &["sleep", "100"],
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    );
    let id = b.id("huge");
    b.create(&id);
    let d = cg_dir("hugetlb", &id);
    if d.join("hugetlb.2MB.limit_in_bytes").exists() {
        assert_eq!(read(&d, "hugetlb.2MB.limit_in_bytes"), "4194304");
    } else {
        // v2 (also on a hybrid host, where hugetlb is bound to v2).
        assert_eq!(read(&d, "hugetlb.2MB.max"), "4194304");
        if d.join("hugetlb.2MB.rsvd.max").exists() {
            assert_eq!(read(&d, "hugetlb.2MB.rsvd.max"), "4194304");
        }
    }
    // A page size the host does not have is refused and leaves nothing.
    let mut bad = Bundle::new(&["true"]);
    bad.config["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 1}]);
    bad.save();
    let bad_id = bad.id("badhuge");
    let err = bad.fails(&["create", "--bundle", bad.dir.to_str().unwrap(), &bad_id]);
    assert!(
        err.contains("3MB") && err.contains("not supported"),
        "{err}"
    );
    assert!(
        cgroup_dirs(&bad_id).is_empty(),
        "{:?}",
        cgroup_dirs(&bad_id)
    );
    assert!(!bad.state_dir_exists(&bad_id));
}

/// A block device the kernel throttles (a real disk, not a partition).
fn block_device() -> Option<String> {
    let rd = std::fs::read_dir("/sys/block").ok()?;
    rd.flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.starts_with("loop") && !n.starts_with("ram")
        })
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|s| s.trim().to_string())
}

#[test]
fn blkio_throttles_are_written() {
    require_root!();
    let Some(dev) = block_device() else {
        eprintln!("skipped: no block device to throttle on this machine");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let t = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let b = with_resources(
        &["sleep", "100"],
        json!({"blockIO": {
            "throttleReadBpsDevice": t(1048576),
            "throttleWriteBpsDevice": t(2097152),
            "throttleReadIOPSDevice": t(100),
            "throttleWriteIOPSDevice": t(200)
        }}),
    );
    let id = b.id("blkio");
    b.create(&id);
    let d = cg_dir("blkio", &id);
    if pure_v2() {
        let max = read(&d, "io.max");
        assert!(
            max.contains(&format!(
                "{dev} rbps=1048576 wbps=2097152 riops=100 wiops=200"
            )),
            "{max}"
        );
    } else {
        assert_eq!(
            read(&d, "blkio.throttle.read_bps_device"),
            format!("{dev} 1048576")
        );
        assert_eq!(
            read(&d, "blkio.throttle.write_bps_device"),
            format!("{dev} 2097152")
        );
        assert_eq!(
            read(&d, "blkio.throttle.read_iops_device"),
            format!("{dev} 100")
        );
        assert_eq!(
            read(&d, "blkio.throttle.write_iops_device"),
            format!("{dev} 200")
        );
    }
}

#[test]
fn network_without_a_controller_is_a_clear_error() {
    require_root!();
    if v1_mount("net_cls").is_some() {
        let b = with_resources(&["sleep", "100"], json!({"network": {"classID": 1048577}}));
        let id = b.id("netcls");
        b.create(&id);
        assert_eq!(read(&cg_dir("net_cls", &id), "net_cls.classid"), "1048577");
        return;
    }
    let b = with_resources(&["true"], json!({"network": {"classID": 1048577}}));
    let id = b.id("netcls");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("linux.resources.network.classID") && err.contains("no net_cls cgroup"),
        "{err}"
    );
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn unified_is_validated() {
    require_root!();
    if !pure_v2() {
        // runc drives a hybrid host with its v1 manager, which refuses the
        // map up front, whatever the v2 mount has (issue 25, item 8c);
        // nothing is left behind.
        let b = with_resources(&["true"], json!({"unified": {"cgroup.max.depth": "3"}}));
        let id = b.id("unified");
        let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(
            err.contains("invalid configuration: cannot use unified on cgroup v1"),
            "{err}"
        );
        assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
        assert!(!b.state_dir_exists(&id));
        if let Some(out) = runc_run(&b, &id, &[]) {
            let runc_err = String::from_utf8_lossy(&out.stderr);
            assert!(
                runc_err.contains("cannot use unified on cgroup v1"),
                "{runc_err}"
            );
        }
        return;
    }
    let b = with_resources(
        &["sleep", "100"],
        json!({"unified": {"cgroup.max.depth": "3"}}),
    );
    let id = b.id("unified");
    b.create(&id);
    assert_eq!(
        read(
            &PathBuf::from("/sys/fs/cgroup").join(&id),
            "cgroup.max.depth"
        ),
        "3"
    );

    let bad = with_resources(&["true"], json!({"unified": {"nosuch.file": "1"}}));
    let bad_id = bad.id("badunified");
    let err = bad.fails(&["create", "--bundle", bad.dir.to_str().unwrap(), &bad_id]);
    assert!(
        err.contains("nosuch") && err.contains("not available"),
        "{err}"
    );
    let slash = with_resources(&["true"], json!({"unified": {"../cgroup.procs": "1"}}));
    let slash_id = slash.id("slashunified");
    let err = slash.fails(&["create", "--bundle", slash.dir.to_str().unwrap(), &slash_id]);
    assert!(err.contains("must be a file name"), "{err}");
}

#[test]
fn v2_refuses_what_it_cannot_do() {
    require_root!();
    if !pure_v2() {
        eprintln!("skipped: cgroup v2 only (these fields work on v1)");
        return;
    }
    for (res, field) in [
        (json!({"memory": {"swappiness": 10}}), "swappiness"),
        (
            json!({"memory": {"disableOOMKiller": true}}),
            "disableOOMKiller",
        ),
        (json!({"cpu": {"realtimeRuntime": 1000}}), "realtime"),
        (json!({"network": {"classID": 1}}), "net_cls"),
    ] {
        let b = with_resources(&["true"], res);
        let id = b.id("v2refuse");
        let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(err.contains(field), "{field}: {err}");
        assert!(cgroup_dirs(&id).is_empty());
    }
}

#[test]
fn denied_device_cannot_be_opened() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "mknod /dev/n c 1 3 && : </dev/n && echo null-ok; mknod /dev/k c 1 11 && : </dev/k && echo kmsg-opened",
    ]);
    // mknod itself needs CAP_MKNOD; the device cgroup allows "m" on all.
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    b.save();
    let id = b.id("dev");
    let out = b.run(&id);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("null-ok"), "{stdout} {stderr}");
    assert!(!stdout.contains("kmsg-opened"), "{stdout} {stderr}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    require_root!();
    // ash dies on a failed fork: the bomb runs in an inner shell so the
    // container's init survives it.
    let b = with_resources(
        &[
            "sh",
            "-c",
            "sh -c 'while :; do sleep 100 & done' 2>/dev/null; sleep 100",
        ],
        json!({"pids": {"limit": 10}}),
    );
    let id = b.id("forkbomb");
    b.create(&id);
    b.ok(&["start", &id]);
    let d = cg_dir("pids", &id);
    let refused = || {
        std::fs::read_to_string(d.join("pids.events"))
            .ok()
            .and_then(|s| s.trim().strip_prefix("max ")?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    wait_for("a fork refused at pids.max", || refused() > 0);
    let current: u64 = read(&d, "pids.current").parse().unwrap();
    assert!((1..=10).contains(&current), "pids.current {current}");
    let ps: Vec<i64> = serde_json::from_str(&b.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(ps.len() <= 10, "{ps:?}");
    assert_eq!(b.status(&id), "running");
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    require_root!();
    // memory+swap equal to memory: no swap to escape to.
    let swap = json!(16777216);
    let b = with_resources(
        &[
            "sh",
            "-c",
            "sleep 0.5; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100",
        ],
        json!({"memory": {"limit": 16777216, "swap": swap}}),
    );
    let id = b.id("oom");
    b.create(&id);
    let log = b.dir.join("events.log");
    let mut events = b
        .cmd()
        .args(["events", "--interval", "100ms", &id])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    b.ok(&["start", &id]);
    // dd's one 64 MiB buffer, filled by read(2): a shell string grown by
    // realloc once ground for over two minutes at the limit under TCG (the
    // cgroup v2 lane) without an OOM kill. Up to two minutes all the same.
    let mut found = false;
    for _ in 0..2400 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["type"] == "oom" && v["id"] == id.as_str())
        {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = events.kill();
    let _ = events.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(found, "no oom event: {}", text.lines().last().unwrap_or(""));
    // Every line is a valid runc event.
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["type"] == "oom" || v["type"] == "stats", "{l}");
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    require_root!();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i >/dev/count; sleep 0.02; done",
    ]);
    let id = b.id("pause");
    b.create(&id);
    assert!(b.fails(&["resume", &id]).contains("container not paused"));
    b.ok(&["start", &id]);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let count = format!("/proc/{pid}/root/dev/count");
    let read_count = || std::fs::read_to_string(&count).unwrap_or_default();
    wait_for("the counter to start", || !read_count().is_empty());
    b.ok(&["pause", &id]);
    assert_eq!(b.status(&id), "paused");
    let frozen = if pure_v2() {
        read(&cg_dir("freezer", &id), "cgroup.events").contains("frozen 1")
    } else {
        read(&cg_dir("freezer", &id), "freezer.state") == "FROZEN"
    };
    assert!(frozen);
    let before = read_count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_count(), before, "the counter moved while paused");
    b.ok(&["resume", &id]);
    assert_eq!(b.status(&id), "running");
    wait_for("the counter to move again", || read_count() != before);
    // A paused container can be force-deleted.
    b.ok(&["pause", &id]);
    assert!(b.fails(&["delete", &id]).contains("paused"));
    b.ok(&["delete", "--force", &id]);
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(!alive(pid));
    // SIGKILL to a paused container kills it: the freezer is thawed, as
    // containerd's forced delete of a paused task expects.
    let id = b.id("pause-kill");
    b.create(&id);
    b.ok(&["start", &id]);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    b.ok(&["pause", &id]);
    b.ok(&["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    assert!(!alive(pid));
    b.ok(&["delete", &id]);
}

#[test]
fn update_changes_running_limits() {
    require_root!();
    let b = with_resources(
        &["sleep", "100"],
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}, "cpu": {"quota": 50000, "period": 100000}}),
    );
    let id = b.id("update");
    b.create(&id);
    b.ok(&["start", &id]);
    b.ok(&[
        "update",
        "--memory",
        "128m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "25000",
        &id,
    ]);
    let mem = cg_dir("memory", &id);
    let cpu = cg_dir("cpu", &id);
    if pure_v2() {
        assert_eq!(read(&mem, "memory.max"), "134217728");
        // The period the update left out is kept.
        assert_eq!(read(&cpu, "cpu.max"), "25000 100000");
    } else {
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "134217728");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "25000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(read(&cg_dir("pids", &id), "pids.max"), "20");

    // From a resources document, on stdin.
    let mut cmd = b.cmd();
    cmd.args(["update", "--resources", "-", &id])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 30}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(read(&cg_dir("pids", &id), "pids.max"), "30");

    b.ok(&["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    assert!(
        b.fails(&["update", "--pids-limit", "5", &id])
            .contains("not running")
    );
}

#[test]
fn events_stats_is_runc_json() {
    require_root!();
    let b = with_resources(
        &["sleep", "100"],
        json!({"pids": {"limit": 99}, "memory": {"limit": 67108864}}),
    );
    let id = b.id("stats");
    b.create(&id);
    b.ok(&["start", &id]);
    let out = b.ok(&["events", "--stats", &id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    let d = &v["data"];
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 99, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864u64, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    for k in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
    ] {
        assert!(d.get(k).is_some(), "missing {k}: {d}");
    }
    assert!(d["network_interfaces"].is_null());
    assert!(
        b.fails(&["events", "--interval", "0s", &id])
            .contains("greater than 0")
    );
}

#[test]
fn ps_lists_container_processes() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("ps");
    b.create(&id);
    b.ok(&["start", &id]);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let json: Vec<i64> = serde_json::from_str(&b.ok(&["ps", "-f", "json", &id])).unwrap();
    assert_eq!(json, vec![pid]);
    let table = b.ok(&["ps", &id]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"), "{table}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0].contains(&pid.to_string()) && rows[0].contains("sleep"),
        "{table}"
    );
    let custom = b.ok(&["ps", &id, "-o", "pid,comm"]);
    assert_eq!(
        custom
            .lines()
            .nth(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![pid.to_string().as_str(), "sleep"])
    );
}

#[test]
fn features_claim_what_is_implemented() {
    let out = std::process::Command::new(hull_bin())
        .arg("features")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cg = &v["linux"]["cgroup"];
    assert_eq!(cg["v1"], true);
    assert_eq!(cg["v2"], true);
    assert_eq!(cg["rdma"], true);
    assert_eq!(cg["systemd"], true);
    assert_eq!(cg["systemdUser"], true);
}

/// The host's cgroup2 superblock options (nsdelegate, memory_recursiveprot…).
fn cgroup2_super_options() -> String {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let point = pre.split(' ').nth(4)?;
            let mut fs = post.split(' ');
            (point == "/sys/fs/cgroup" && fs.next()? == "cgroup2")
                .then(|| fs.nth(1).map(str::to_string))?
        })
        .expect("a cgroup2 mount at /sys/fs/cgroup")
}

/// The container's /sys/fs/cgroup line of its mountinfo: (root, fstype).
fn cgroup_mount_seen(line: &str) -> (String, String) {
    let (pre, post) = line.split_once(" - ").expect(line);
    let root = pre.split(' ').nth(3).unwrap().to_string();
    (root, post.split(' ').next().unwrap().to_string())
}

/// Run `script` in a 32 MiB container, with a new cgroup namespace if
/// asked; the host's cgroup2 options must stay as they were. Its output
/// and id.
fn run_on_v2(script: &str, cgroupns: bool) -> (String, String) {
    let before = cgroup2_super_options();
    let mut b = with_resources(
        &["sh", "-c", script],
        json!({"memory": {"limit": 33554432}}),
    );
    if cgroupns {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
        b.save();
    }
    let id = b.id("v2mount");
    let out = b.run(&id);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cgroup2_super_options(), before, "the host's options");
    (String::from_utf8_lossy(&out.stdout).into_owned(), id)
}

/// On a v2-only host without a cgroup namespace the container sees the
/// whole tree at /sys/fs/cgroup, as runc's fresh cgroup2 mount shows it:
/// the path in its /proc/self/cgroup leads to its limits. hull binds the
/// host's mount for it: a cgroup2 mount made from the initial cgroup
/// namespace resets the host's options (nsdelegate, memory_recursiveprot;
/// runc #5258), and those stay as they were.
#[test]
fn v2_without_a_cgroup_namespace_sees_the_whole_tree_and_the_host_keeps_its_options() {
    require_root!();
    if !pure_v2() {
        eprintln!("skipped: cgroup v2 only (the v2 and systemd lanes run it)");
        return;
    }
    let (text, id) = run_on_v2(
        "p=$(sed -n 's/^0:://p' /proc/self/cgroup); echo \"$p\"; \
         cat \"/sys/fs/cgroup$p/memory.max\"; grep ' /sys/fs/cgroup ' /proc/self/mountinfo",
        false,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with(&id), "the host's path: {text}");
    assert_eq!(lines.get(1), Some(&"33554432"), "{text}");
    assert_eq!(
        cgroup_mount_seen(lines[2]),
        ("/".into(), "cgroup2".into()),
        "{text}"
    );
}

/// With a new cgroup namespace: a cgroup2 mount of the container's own,
/// its cgroup the root of both that mount and /proc/self/cgroup.
#[test]
fn v2_with_a_cgroup_namespace_sees_its_own_cgroup_as_the_root() {
    require_root!();
    if !pure_v2() {
        eprintln!("skipped: cgroup v2 only (the v2 and systemd lanes run it)");
        return;
    }
    let (text, _) = run_on_v2(
        "cat /proc/self/cgroup /sys/fs/cgroup/memory.max; \
         grep ' /sys/fs/cgroup ' /proc/self/mountinfo",
        true,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["0::/", "33554432"], "{text}");
    assert_eq!(
        cgroup_mount_seen(lines[2]),
        ("/".into(), "cgroup2".into()),
        "{text}"
    );
}
