//! linux.netDevices: host interfaces moved into the container's network
//! namespace, renamed, with their permanent global addresses, and up.
//! Uses veth pairs (virtual: the kernel destroys them with the namespace).

mod common;

use common::*;
use serde_json::json;
use std::process::Command;

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().unwrap()
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A veth pair on the host; both ends are removed on drop (if still there).
struct Veth {
    a: String,
    b: String,
}

impl Veth {
    /// None (after printing why) when this machine cannot make one.
    fn new(tag: &str) -> Option<Veth> {
        // busybox's ip (the cgroup v2 VM) lacks netns, nodad and more.
        let version = ip(&["-V"]);
        if !String::from_utf8_lossy(&version.stdout).contains("iproute2") {
            eprintln!("skipped: needs iproute2's ip");
            return None;
        }
        let n = std::process::id() % 100_000;
        let v = Veth {
            a: format!("h{tag}{n}a"),
            b: format!("h{tag}{n}b"),
        };
        let out = ip(&["link", "add", &v.a, "type", "veth", "peer", "name", &v.b]);
        if !out.status.success() {
            eprintln!(
                "skipped: cannot create a veth pair here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(v)
    }

    fn on_host(name: &str) -> bool {
        ip(&["link", "show", "dev", name]).status.success()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for d in [&self.a, &self.b] {
            let _ = ip(&["link", "del", d]);
        }
    }
}

/// A named network namespace (ip netns), deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new(tag: &str) -> Option<NetNs> {
        let name = format!("hull-{tag}-{}", std::process::id());
        let out = ip(&["netns", "add", &name]);
        if !out.status.success() {
            eprintln!(
                "skipped: `ip netns add` is not available here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(NetNs(name))
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn with_net_devices(b: &mut Bundle, devices: serde_json::Value) {
    b.config["linux"]["netDevices"] = devices;
    b.save();
}

#[test]
fn device_moves_in_renamed_with_its_global_addresses_and_up() {
    require_root!();
    let Some(v) = Veth::new("mv") else { return };
    ip_ok(&["addr", "add", "10.77.1.1/24", "dev", &v.a]);
    ip_ok(&["addr", "add", "fd77:1::1/64", "dev", &v.a, "nodad"]);
    ip_ok(&[
        "addr",
        "add",
        "169.254.7.1/16",
        "dev",
        &v.a,
        "scope",
        "link",
    ]);
    ip_ok(&["link", "set", &v.a, "up"]);
    let mut b = Bundle::new(&["sh", "-c", "ip -o link show ctr0; ip -o addr show dev ctr0"]);
    with_net_devices(&mut b, json!({ v.a.clone(): {"name": "ctr0"} }));
    let out = b.run(&b.id("netdev"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = stdout.lines().next().unwrap_or("");
    assert!(
        link.contains(": ctr0") && link.contains(",UP"),
        "renamed and up: {stdout}"
    );
    assert!(
        stdout.contains("inet 10.77.1.1/24") && stdout.contains("inet6 fd77:1::1/64"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("169.254.7.1"),
        "link-scope addresses stay behind: {stdout}"
    );
    // The namespace died with the container: the kernel destroys the
    // virtual device (and its peer), asynchronously; hull never moves
    // devices back out.
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !Veth::on_host(&v.a) && !Veth::on_host(&v.b)
    });
    assert!(gone, "the veth pair outlived the container's namespace");
}

#[test]
fn device_in_a_joined_namespace_stays_there_with_a_kernel_chosen_name() {
    require_root!();
    let Some(ns) = NetNs::new("join") else { return };
    let Some(v) = Veth::new("jn") else { return };
    let mut b = Bundle::new(&["sh", "-c", "ip -o link show"]);
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(ns.path());
        }
    }
    with_net_devices(&mut b, json!({ v.a.clone(): {"name": "eth%d"} }));
    let out = b.run(&b.id("netjoin"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": eth0"));
    // After delete, the namespace (held by `ip netns`) still has it.
    let inside = ip(&["-n", &ns.0, "-o", "link", "show", "eth0"]);
    assert!(
        inside.status.success(),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    assert!(!Veth::on_host(&v.a) && Veth::on_host(&v.b));
}

#[test]
fn name_clash_in_the_container_is_refused_and_leaves_the_device_alone() {
    require_root!();
    let Some(ns) = NetNs::new("clash") else {
        return;
    };
    let Some(v) = Veth::new("cl") else { return };
    ip_ok(&[
        "-n", &ns.0, "link", "add", "dup0", "type", "veth", "peer", "name", "dup1",
    ]);
    ip_ok(&["link", "set", &v.a, "up"]);
    let mut b = Bundle::new(&["true"]);
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(ns.path());
        }
    }
    with_net_devices(&mut b, json!({ v.a.clone(): {"name": "dup0"} }));
    let id = b.id("netclash");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains(&format!("moving network device {}", v.a))
            && err.contains("\\\"dup0\\\" already exists"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id) && cgroup_dirs(&id).is_empty());
    let host =
        String::from_utf8_lossy(&ip(&["-o", "link", "show", "dev", &v.a]).stdout).into_owned();
    assert!(host.contains(",UP"), "still on the host and up: {host}");
}

#[test]
fn missing_device_or_network_namespace_is_refused() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    with_net_devices(&mut b, json!({"hullnosuch0": {}}));
    let id = b.id("netmissing");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("no network device \\\"hullnosuch0\\\" on the host"),
        "{err}"
    );
    // One error, from the parent: the init stage is gone before it could
    // add a confusing one of its own.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!b.state_dir_exists(&id) && cgroup_dirs(&id).is_empty());

    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    b.save();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("unable to move network devices without a network namespace"),
        "{err}"
    );
}
