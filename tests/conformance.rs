//! hull next to runc on the same bundle, and `hull features` checked
//! against what hull actually accepts.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Command;

fn runc() -> Option<&'static str> {
    runc_bin()
}

fn runc_at(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    output_of(
        Command::new(runc().unwrap())
            .arg("--root")
            .arg(root)
            .args(args)
            .stdin(std::process::Stdio::null()),
    )
}

fn shape(v: &Value) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let t = match v {
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Object(_) => "object",
                Value::Array(_) => "array",
                Value::Bool(_) => "bool",
                Value::Null => "null",
            };
            (k.clone(), t)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn state_matches_runc_through_the_lifecycle() {
    require_root!();
    if runc().is_none() {
        eprintln!("skipped: runc is not installed (make deps installs it)");
        return;
    }
    let mut b = Bundle::new(&["sleep", "100"]);
    // runc 1.1 refuses newer spec versions; the bundle is otherwise the same.
    b.config["ociVersion"] = json!("1.0.2");
    b.save();
    let id = b.id("diff");
    let runc_root = b.dir.join("runc-state");
    let bundle = b.dir.to_str().unwrap();
    let step = |args: &[&str]| {
        let h = b.hull(args);
        let r = runc_at(&runc_root, args);
        assert_eq!(
            h.status.code(),
            r.status.code(),
            "{args:?}: hull {:?} / runc {:?}",
            String::from_utf8_lossy(&h.stderr),
            String::from_utf8_lossy(&r.stderr)
        );
    };
    let states = || {
        let h: Value = serde_json::from_slice(&b.hull(&["state", &id]).stdout).unwrap();
        let r: Value =
            serde_json::from_slice(&runc_at(&runc_root, &["state", &id]).stdout).unwrap();
        (h, r)
    };
    step(&["create", "--bundle", bundle, &id]);
    let (h, r) = states();
    assert_eq!(shape(&h), shape(&r));
    for k in ["id", "status", "bundle", "rootfs"] {
        assert_eq!(h[k], r[k], "{k}");
    }
    step(&["start", &id]);
    step(&["start", &id]);
    let (h, r) = states();
    assert_eq!(
        (h["status"].clone(), shape(&h)),
        (r["status"].clone(), shape(&r))
    );
    step(&["delete", &id]);
    step(&["kill", &id, "KILL"]);
    for _ in 0..200 {
        let (h, r) = states();
        if h["status"] == "stopped" && r["status"] == "stopped" {
            assert_eq!(h["pid"], r["pid"]);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    step(&["kill", &id, "KILL"]);
    step(&["delete", &id]);
    step(&["state", &id]);
    step(&["delete", "--force", &id]);
}

#[test]
fn spec_matches_runc_spec() {
    require_root!();
    if runc().is_none() {
        eprintln!("skipped: runc is not installed (make deps installs it)");
        return;
    }
    let b = Bundle::new(&["true"]);
    let dir = b.dir.join("specs");
    // The default and the rootless example (runc's ToRootless).
    for flags in [&[][..], &["--rootless"][..]] {
        let (r_dir, h_dir) = (
            dir.join(format!("r{}", flags.len())),
            dir.join(format!("h{}", flags.len())),
        );
        std::fs::create_dir_all(&r_dir).unwrap();
        std::fs::create_dir_all(&h_dir).unwrap();
        assert!(
            Command::new(runc().unwrap())
                .arg("spec")
                .args(flags)
                .current_dir(&r_dir)
                .status()
                .unwrap()
                .success()
        );
        let mut args = vec!["spec", "--bundle", h_dir.to_str().unwrap()];
        args.extend(flags);
        b.ok(&args);
        let load = |p: &std::path::Path| -> Value {
            serde_json::from_slice(&std::fs::read(p.join("config.json")).unwrap()).unwrap()
        };
        let (mut h, mut r) = (load(&h_dir), load(&r_dir));
        for v in [&mut h, &mut r] {
            v.as_object_mut().unwrap().remove("ociVersion");
            v.as_object_mut().unwrap().remove("hostname");
        }
        // runc 1.2 stopped writing ambient capabilities (they are never raised
        // without inheritable ones); Debian's runc 1.1 still does.
        if let Some(c) = r["process"]["capabilities"].as_object_mut() {
            c.remove("ambient");
        }
        assert_eq!(h, r, "spec {flags:?}");
    }
    std::fs::create_dir_all(dir.join("h")).unwrap();
    b.ok(&["spec", "--bundle", dir.join("h").to_str().unwrap()]);
    assert!(
        b.fails(&["spec", "--bundle", dir.join("h").to_str().unwrap()])
            .contains("exists")
    );
}

#[test]
fn features_claims_hold() {
    require_root!();
    let doc: Value = serde_json::from_str(&Bundle::new(&["true"]).ok(&["features"])).unwrap();
    assert_eq!(doc["ociVersionMax"], "1.3.0");
    // Every hook listed is exercised by tests/hooks.rs.
    assert_eq!(
        doc["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
    // runtime-spec 1.3's features (issue 25, item 14): what hull applies,
    // irrespective of the host, as runc reports it. Each memory policy
    // mode and flag listed is read from a config: a run either applies it
    // or fails in the kernel, never as an unknown name.
    assert_eq!(
        doc["linux"]["intelRdt"],
        json!({"enabled": true, "schemata": true, "monitoring": true})
    );
    let policy = &doc["linux"]["memoryPolicy"];
    assert_eq!(
        policy["modes"].as_array().map(Vec::len),
        Some(7),
        "{policy}"
    );
    assert_eq!(
        policy["flags"].as_array().map(Vec::len),
        Some(3),
        "{policy}"
    );
    let b = Bundle::new(&["true"]);
    for mode in policy["modes"].as_array().unwrap() {
        let mut c = b.config.clone();
        let nodes = if mode == "MPOL_DEFAULT" || mode == "MPOL_LOCAL" {
            ""
        } else {
            "0"
        };
        c["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": nodes,
            "flags": if nodes.is_empty() { json!([]) } else { json!([policy["flags"][2]]) }});
        std::fs::write(b.dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        let out = b.run(&b.id("mpol"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("parsing") && !err.contains("unknown variant"),
            "{mode}: {err}"
        );
    }
    // Every per-mount option claimed is accepted on a real mount.
    let opts: Vec<String> = doc["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let skip = [
        "bind",
        "rbind",
        "remount",
        "mand",
        "acl",
        "noacl",
        "iversion",
        "noiversion",
        // Bind mounts only; tests/rootfs.rs covers them.
        "idmap",
        "ridmap",
    ];
    let mut b = Bundle::new(&["true"]);
    for chunk in opts
        .iter()
        .filter(|o| !skip.contains(&o.as_str()))
        .collect::<Vec<_>>()
        .chunks(8)
    {
        let mounts: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, o)| json!({"destination": format!("/opt{i}"), "type": "tmpfs", "source": "tmpfs", "options": [o]}))
            .collect();
        let mut c = b.config.clone();
        c["mounts"].as_array_mut().unwrap().extend(mounts);
        std::fs::write(b.dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        let out = b.run(&b.id("feat"));
        assert!(
            out.status.success(),
            "{chunk:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every namespace claimed can be created.
    let nss: Vec<Value> = doc["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| *n != "user")
        .map(|n| json!({"type": n}))
        .collect();
    b.config["linux"]["namespaces"] = Value::Array(nss);
    b.save();
    let out = b.run(&b.id("allns"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Seccomp actions claimed are accepted (NOTIFY with an agent's socket).
    let agent = b.dir.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    for a in doc["linux"]["seccomp"]["actions"].as_array().unwrap() {
        b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat"], "action": a}]});
        if a == "SCMP_ACT_NOTIFY" {
            b.config["linux"]["seccomp"]["listenerPath"] = json!(agent);
        }
        b.save();
        let out = b.run(&b.id("scmp"));
        assert!(
            out.status.success(),
            "{a}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
