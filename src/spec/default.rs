//! The config.json `hull spec` writes: the same defaults runc (1.2 and
//! later) writes, so a bundle made for one runs unchanged on the other.

use serde_json::{Value, json};

pub fn default_spec(rootless: bool) -> Value {
    spec_for(rootless, is_cgroup2_only())
}

/// runc's `IsCgroup2UnifiedMode`: a v2-only host gets a cgroup namespace.
fn spec_for(rootless: bool, cgroup2_only: bool) -> Value {
    let mut spec = base_spec();
    if cgroup2_only && let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.push(json!({"type": "cgroup"}));
    }
    if rootless {
        make_rootless(&mut spec);
    }
    spec
}

/// /sys/fs/cgroup is a cgroup2 mount (a v2-only host, runc's test).
fn is_cgroup2_only() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn base_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": super::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "hull",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// runc's `spec --rootless` changes: a user namespace mapping the caller
/// (last, after the others kept in their order), no network namespace,
/// sysfs bound from the host, no resources.
fn make_rootless(spec: &mut Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let linux = &mut spec["linux"];
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network" && n["type"] != "user");
        ns.push(json!({"type": "user"}));
    }
    let mounts = spec["mounts"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut out = Vec::new();
    for mut m in mounts {
        if m["destination"] == "/sys" {
            out.push(
                json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
            );
            continue;
        }
        // No uid= or gid= option: the ids may not exist in the namespace.
        // (get_mut: indexing a missing key would add `"options": null`.)
        if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
            opts.retain(|o| {
                !o.as_str()
                    .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
            });
        }
        out.push(m);
    }
    spec["mounts"] = Value::Array(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses_as_oci_spec() {
        let s: oci_spec::runtime::Spec = serde_json::from_value(default_spec(false)).unwrap();
        assert_eq!(s.hostname().as_deref(), Some("hull"));
        assert_eq!(
            s.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["sh"]
        );
        let r: oci_spec::runtime::Spec = serde_json::from_value(default_spec(true)).unwrap();
        assert!(r.linux().as_ref().unwrap().uid_mappings().is_some());
    }

    fn namespaces(spec: &Value) -> Vec<&str> {
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        ns.iter().map(|n| n["type"].as_str().unwrap()).collect()
    }

    /// runc's lists and order: the cgroup namespace appended on a v2-only
    /// host; --rootless drops network and appends user.
    #[test]
    fn a_v2_only_host_gets_a_cgroup_namespace_as_with_runc() {
        let all = ["pid", "network", "ipc", "uts", "mount"];
        assert_eq!(namespaces(&spec_for(false, false)), all);
        assert_eq!(
            namespaces(&spec_for(false, true)),
            [&all[..], &["cgroup"]].concat()
        );
        assert_eq!(
            namespaces(&spec_for(true, false)),
            ["pid", "ipc", "uts", "mount", "user"]
        );
        assert_eq!(
            namespaces(&spec_for(true, true)),
            ["pid", "ipc", "uts", "mount", "cgroup", "user"]
        );
    }
}
