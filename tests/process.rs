//! The container's process and namespaces, observed from inside.

mod common;

use common::*;
use serde_json::json;

/// Run `script` in a container built from the default spec after `edit`.
fn run_in(edit: impl FnOnce(&mut serde_json::Value), script: &str) -> (i32, String, String) {
    let mut b = Bundle::new(&["sh", "-c", script]);
    edit(&mut b.config);
    b.save();
    let out = b.run(&b.id("proc"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn capabilities_and_no_new_privs() {
    require_root!();
    let (code, out, err) = run_in(
        |c| {
            let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
            c["process"]["capabilities"] = json!({"bounding": caps, "effective": ["CAP_KILL"], "permitted": caps, "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]});
            c["process"]["noNewPrivileges"] = true.into();
            // Not root: exec keeps exactly the ambient set.
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
        "cat /proc/self/status",
    );
    assert_eq!(code, 0, "{err}");
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5.
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000021");
    assert_eq!(
        status_field(&out, "CapPrm"),
        "0000000000000020",
        "ambient KILL survives exec"
    );
    assert_eq!(status_field(&out, "CapEff"), "0000000000000020");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000020");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000020");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
}

#[test]
fn capabilities_the_host_withholds_are_left_out_with_a_warning() {
    require_root!();
    // A capability missing from our bounding set (this host withholds
    // CAP_SYS_RESOURCE from everything it runs).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = u64::from_str_radix(&status_field(&status, "CapBnd"), 16).unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let Some(bit) = (0..=last).find(|b| bnd & (1 << b) == 0) else {
        eprintln!("skipped: no capability is withheld from hull on this host");
        return;
    };
    // capabilities(7) numbering, for the few a host plausibly withholds.
    let names = [
        (24, "CAP_SYS_RESOURCE"),
        (16, "CAP_SYS_MODULE"),
        (17, "CAP_SYS_RAWIO"),
        (25, "CAP_SYS_TIME"),
        (22, "CAP_SYS_BOOT"),
        (33, "CAP_MAC_ADMIN"),
        (32, "CAP_MAC_OVERRIDE"),
        (38, "CAP_PERFMON"),
        (39, "CAP_BPF"),
    ];
    let Some((_, name)) = names.iter().find(|(b, _)| *b == bit) else {
        eprintln!("skipped: withheld capability {bit} has no name in this test");
        return;
    };
    let (code, out, err) = run_in(
        |c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set] = json!(["CAP_CHOWN", name]);
            }
        },
        "grep CapEff /proc/self/status",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "ignoring unknown or unavailable capabilities: [{name}]"
        )),
        "{err}"
    );
    let eff = u64::from_str_radix(&status_field(&out, "CapEff"), 16).unwrap();
    assert_eq!(eff, 1 << 0, "only CAP_CHOWN: {out}");
}

#[test]
fn inheritable_capability_outside_the_bounding_set_is_refused() {
    require_root!();
    // The kernel refuses it (runc fails the same way): an impossible
    // request that hull holds is an error, not silently dropped.
    let (code, _, err) = run_in(
        |c| {
            c["process"]["capabilities"] = json!({"bounding": [],
                "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"],
                "inheritable": ["CAP_CHOWN"]});
        },
        "true",
    );
    assert_eq!(code, 1);
    assert!(err.contains("setting Inheritable capabilities"), "{err}");
}

#[test]
fn user_groups_and_umask() {
    require_root!();
    let (code, out, err) = run_in(
        |c| {
            c["process"]["user"] =
                json!({"uid": 1234, "gid": 5678, "additionalGids": [11, 12], "umask": 63})
        },
        "id -u; id -g; cat /proc/self/status | grep Groups; umask; echo $HOME",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1234");
    assert_eq!(lines[1], "5678");
    assert_eq!(
        lines[2].split_whitespace().skip(1).collect::<Vec<_>>(),
        ["11", "12"]
    );
    assert_eq!(lines[3], "0077");
    assert_eq!(
        lines[4], "/",
        "HOME defaults to / for a user without a passwd entry"
    );
}

#[test]
fn rlimits_are_applied_exactly() {
    require_root!();
    let (code, out, err) = run_in(
        |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 4000, "soft": 3000}, {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]),
        "cat /proc/self/limits",
    );
    assert_eq!(code, 0, "{err}");
    let open = out
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open.split_whitespace().skip(3).take(2).collect::<Vec<_>>(),
        ["3000", "4000"]
    );
    let core = out
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"]
    );
}

#[test]
fn unknown_rlimit_is_refused() {
    require_root!();
    let (code, _, err) = run_in(
        |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]),
        "true",
    );
    assert_eq!(code, 1);
    assert!(err.contains("RLIMIT_BOGUS"), "{err}");
}

#[test]
fn oom_score_adj_hostname_domainname_sysctl() {
    require_root!();
    let (code, out, err) = run_in(
        |c| {
            c["process"]["oomScoreAdj"] = 500.into();
            c["hostname"] = "box".into();
            c["domainname"] = "example.org".into();
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"});
        },
        "cat /proc/self/oom_score_adj; hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shmmni",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["500", "box", "example.org", "1", "2048"]
    );
    // The host is untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "2048"
    );
}

#[test]
fn host_wide_sysctl_is_refused_before_anything_exists() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    b.save();
    let id = b.id("sysctl");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("not in a separate kernel namespace"), "{err}");
    assert!(!b.state_dir_exists(&id) && cgroup_dirs(&id).is_empty());
}

#[test]
fn user_namespace_maps_root_to_the_host_id() {
    require_root!();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; sleep 100",
    ]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 200000, "size": 10}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
    b.save();
    let id = b.id("userns");
    b.create(&id);
    b.ok(&["start", &id]);
    b.wait_status(&id, "running");
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    // Seen from the host, the container's root is uid 100000.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_field(&status, "Uid").split_whitespace().next(),
        Some("100000")
    );
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let rows: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [["0", "100000", "1000"], ["1000", "200000", "10"]]);
}

#[test]
fn joins_namespaces_of_another_container_by_path() {
    require_root!();
    let a = Bundle::new(&["sleep", "100"]);
    let ida = a.id("nsa");
    a.create(&ida);
    let pa = a.state(&ida)["pid"].as_i64().unwrap();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "for n in net uts ipc; do readlink /proc/self/ns/$n; done; hostname",
    ]);
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"},
        {"type": "network", "path": format!("/proc/{pa}/ns/net")},
        {"type": "uts", "path": format!("/proc/{pa}/ns/uts")},
        {"type": "ipc", "path": format!("/proc/{pa}/ns/ipc")},
    ]);
    b.config.as_object_mut().unwrap().remove("hostname");
    b.save();
    let out = b.run(&b.id("nsb"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, ns) in ["net", "uts", "ipc"].iter().enumerate() {
        let want = std::fs::read_link(format!("/proc/{pa}/ns/{ns}")).unwrap();
        assert_eq!(stdout.lines().nth(i), want.to_str(), "{ns}");
    }
    assert_eq!(
        stdout.lines().nth(3),
        Some("hull"),
        "the joined uts namespace's hostname"
    );
}

#[test]
fn namespace_path_of_the_wrong_type_is_refused() {
    require_root!();
    let a = Bundle::new(&["sleep", "100"]);
    let ida = a.id("nsother");
    a.create(&ida);
    let pa = a.state(&ida)["pid"].as_i64().unwrap();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "ipc", "path": format!("/proc/{pa}/ns/net")}));
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n.get("path").is_some() || n["type"] != "ipc");
    b.save();
    let id = b.id("nstype");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("is not a ipc namespace"), "{err}");
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn time_namespace_offsets() {
    require_root!();
    let (code, out, err) = run_in(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 172800, "nanosecs": 0}});
        },
        "cat /proc/self/timens_offsets",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    assert!(out.contains("boottime") && out.contains("172800"), "{out}");
}

#[test]
fn personality_ioprio_scheduler_affinity() {
    require_root!();
    let (code, out, err) = run_in(
        |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
            // The runtime-spec's flag name (issue 25, item 9b), which the
            // oci-spec crate alone does not read.
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5,
                "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
            c["process"]["execCPUAffinity"] = json!({"final": "0"});
        },
        "cat /proc/self/personality; cat /proc/self/stat; grep Cpus_allowed_list /proc/self/status",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "00000008");
    let stat: Vec<&str> = lines[1].rsplit_once(") ").unwrap().1.split(' ').collect();
    // Fields after comm: nice is field 19 (index 16 here), policy 41 (38).
    assert_eq!(stat[16], "5", "nice");
    assert_eq!(stat[38], "3", "SCHED_BATCH");
    assert!(lines[2].ends_with("\t0"), "{}", lines[2]);
}

/// A deadline policy in a cpuset smaller than the root domain: the
/// kernel's EPERM said in runc's words (issue 25, item 10; runc ≥ 1.2,
/// Debian's 1.1 has no scheduler field).
#[test]
fn deadline_scheduler_with_a_cpuset_says_why() {
    require_root!();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: needs at least two CPUs (one is the whole root domain)");
        return;
    }
    let (code, _, err) = run_in(
        |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE",
                "runtime": 10000000u64, "deadline": 20000000u64, "period": 20000000u64});
            c["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
        },
        "true",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("process scheduler can't be used together with AllowedCPUs"),
        "{err}"
    );
}

/// args[0] is checked as execve checks it, with the effective ids and
/// capabilities: a user with CAP_DAC_OVERRIDE runs a root-owned 0744
/// program (issue 25, item 9a). Differential with runc.
#[test]
fn args0_is_checked_with_the_effective_capabilities() {
    require_root!();
    let mut b = Bundle::new(&["/bin/owner-only"]);
    let rootfs = b.private_rootfs();
    let prog = rootfs.join("bin/owner-only");
    std::fs::write(&prog, "#!/bin/sh\necho ran as $(id -u)\n").unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o744)).unwrap();
    let caps = json!(["CAP_DAC_OVERRIDE"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.save();
    let o = hull_run(&b, &b.id("eaccess"), &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "ran as 1000\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    if let Some(r) = runc_run(&b, &b.id("eaccess-runc"), &[]) {
        assert_eq!(String::from_utf8_lossy(&r.stdout), "ran as 1000\n");
    }
}

#[test]
fn inherited_cpu_affinity_is_reset() {
    require_root!();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: needs at least two CPUs");
        return;
    }
    let b = Bundle::new(&["sh", "-c", "grep Cpus_allowed_list /proc/self/status"]);
    let id = b.id("affinity");
    let out = output_of(
        std::process::Command::new("taskset")
            .args(["-c", "0"])
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["run", "--bundle", b.dir.to_str().unwrap(), &id]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = std::fs::read_to_string("/proc/self/status").unwrap();
    let want = want
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list"))
        .unwrap();
    assert_eq!(
        stdout.trim(),
        want,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cwd_is_created_and_must_stay_inside() {
    require_root!();
    let (code, out, err) = run_in(|c| c["process"]["cwd"] = "/work/dir".into(), "pwd");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "/work/dir");
    // CVE-2024-21626: a cwd through a leaked fd must never reach the host.
    let (code, _, err) = run_in(|c| c["process"]["cwd"] = "/proc/self/fd/7".into(), "pwd");
    assert_ne!(code, 0);
    assert!(!err.is_empty());
}

#[test]
fn lsm_labels_fail_clearly_without_the_lsm() {
    require_root!();
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
    {
        eprintln!("skipped: AppArmor is enabled on this host");
        return;
    }
    let (code, _, err) = run_in(
        |c| c["process"]["apparmorProfile"] = "docker-default".into(),
        "true",
    );
    assert_eq!(code, 1);
    assert!(err.contains("AppArmor is not enabled"), "{err}");
}

#[test]
fn selinux_labels_fail_clearly_without_selinux() {
    require_root!();
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skipped: SELinux is enabled on this host");
        return;
    }
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    let (code, _, err) = run_in(|c| c["linux"]["mountLabel"] = label.into(), "true");
    assert_eq!(code, 1);
    assert!(
        err.contains("linux.mountLabel is set but SELinux is not enabled on this host"),
        "{err}"
    );
    let (code, _, err) = run_in(|c| c["process"]["selinuxLabel"] = label.into(), "true");
    assert_eq!(code, 1);
    assert!(err.contains("process.selinuxLabel is set"), "{err}");
}

/// resctrl's mount point, if this host has one.
fn resctrl() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("resctrl "))
        })
        .and_then(|l| l.split(' ').nth(4).map(std::path::PathBuf::from))
}

#[test]
fn intel_rdt_joins_its_own_group_or_fails_clearly_without_resctrl() {
    require_root!();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.config["linux"]["intelRdt"] = json!({"enableMonitoring": false});
    b.save();
    let id = b.id("rdt");
    let Some(root) = resctrl() else {
        let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
        assert!(
            err.contains("linux.intelRdt is set but resctrl is not mounted on this host"),
            "{err}"
        );
        assert!(!b.state_dir_exists(&id) && cgroup_dirs(&id).is_empty());
        return;
    };
    b.create(&id);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let tasks = std::fs::read_to_string(root.join(&id).join("tasks")).unwrap();
    assert!(tasks.lines().any(|t| t == pid.to_string()), "{tasks}");
    b.ok(&["delete", "--force", &id]);
    assert!(!root.join(&id).exists(), "the group made for it is gone");
}

#[test]
fn exec_failure_names_the_program() {
    require_root!();
    let (code, _, err) = run_in(|c| c["process"]["args"] = json!(["/etc/passwd"]), "");
    assert_eq!(code, 1);
    assert!(
        err.contains("/etc/passwd") && err.contains("ermission denied"),
        "{err}"
    );
}

#[test]
fn a_process_without_capabilities_gets_none() {
    require_root!();
    // As runc: no `capabilities` is no capability, never hull's own set.
    let (code, out, err) = run_in(
        |c| {
            c["process"].as_object_mut().unwrap().remove("capabilities");
        },
        "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status",
    );
    assert_eq!(code, 0, "{err}");
    for f in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&out, f), "0000000000000000", "{f}: {out}");
    }
}
