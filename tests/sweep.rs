//! The hostile-config sweep: every field of a valid config, one at a time,
//! made huge, negative, empty, of the wrong type, very long, or odd, then
//! `create` and `delete --force`. hull must answer with success or a
//! one-line error (never abort or hang) and leave nothing behind: no state
//! directory, cgroup or process, and the host's /proc and /sys intact. Each
//! case runs in a scratch mount namespace, so a bug hurts only that.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Command;

/// The values a field of this kind is replaced with.
fn mutations(v: &Value) -> Vec<Value> {
    let long = "x".repeat(64 * 1024);
    let mut out = vec![json!(null), json!({"unexpected": [1]})];
    match v {
        Value::Number(_) => out.extend([
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1e300),
            json!("1"),
        ]),
        Value::String(_) => out.extend([
            json!(""),
            json!(long),
            json!("../../../../../.."),
            json!("\u{fffd}\u{0}\u{1b}[2J"),
            json!(7),
        ]),
        Value::Bool(_) => out.extend([json!("true"), json!(1)]),
        Value::Array(a) => {
            out.extend([json!([]), json!("x"), json!([null])]);
            if let Some(first) = a.first() {
                // The same entry twice.
                out.push(json!([first.clone(), first.clone()]));
            }
        }
        Value::Object(_) => out.extend([json!([]), json!("x")]),
        Value::Null => {}
    }
    out
}

/// Every leaf and inner node of `v`, as a JSON pointer.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    if !at.is_empty() {
        out.push(at);
    }
}

/// A valid config that reaches much of create: resources, devices, a
/// bind, sysctl, rlimits, a hook. The init only waits.
fn base(b: &Bundle) -> Value {
    let mut c = b.config.clone();
    c["process"]["args"] = json!(["sleep", "100"]);
    c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]);
    c["process"]["consoleSize"] = json!({"height": 24, "width": 80});
    c["linux"]["resources"] = json!({
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
        "memory": {"limit": 268435456},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 64}
    });
    c["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}
    ]);
    c["linux"]["sysctl"] = json!({"kernel.msgmax": "8192"});
    c["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/data", "type": "bind", "source": b.dir.join("data"),
         "options": ["rbind", "ro", "nosuid"]}
    ));
    c["hooks"] = json!({"createRuntime": [{"path": "/bin/true", "timeout": 5}]});
    c
}

#[test]
fn every_field_mutated_is_a_clean_answer_and_leaves_nothing() {
    require_root!();
    let b = Bundle::new(&["true"]);
    std::fs::create_dir_all(b.dir.join("data")).unwrap();
    let good = base(&b);
    let mut at = Vec::new();
    pointers(&good, String::new(), &mut at);
    let mut cases = 0;
    let mut refused = 0;
    let mut failures = Vec::new();
    for p in &at {
        let original = good.pointer(p).unwrap().clone();
        for m in mutations(&original) {
            let mut c = good.clone();
            *c.pointer_mut(p).unwrap() = m.clone();
            std::fs::write(b.dir.join("config.json"), c.to_string()).unwrap();
            let id = format!("sweep-{}-{cases}", std::process::id());
            cases += 1;
            match one_case(&b, &id) {
                Ok(true) => {}
                Ok(false) => refused += 1,
                Err(why) => failures.push(format!("{p} = {}: {why}", short(&m))),
            }
        }
    }
    eprintln!(
        "{cases} mutated configs, {refused} refused, {} failures",
        failures.len()
    );
    assert!(cases > 300, "the sweep covered too little: {cases}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..40])
    } else {
        s
    }
}

/// create + delete --force in a scratch mount namespace, each bounded in
/// time. Ok(created?) when hull behaved, Err(what went wrong) otherwise.
fn one_case(b: &Bundle, id: &str) -> Result<bool, String> {
    let hull = format!("{} --root {}", hull_bin(), b.root.display());
    let script = format!(
        "timeout -s KILL 20 {hull} create --bundle {bundle} {id} >/dev/null 2>{err}; \
         echo create=$?; \
         timeout -s KILL 20 {hull} delete --force {id} >/dev/null 2>&1; echo delete=$?; \
         test -r /proc/self/stat && test -d /sys/kernel && echo host-ok",
        bundle = b.dir.display(),
        err = b.dir.join("err").display(),
    );
    let out = output_of(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(&script),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = std::fs::read_to_string(b.dir.join("err")).unwrap_or_default();
    let code = |what: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{what}=")))
            .and_then(|c| c.trim().parse::<i32>().ok())
    };
    // Warnings may precede it (runc's too): the error is one line.
    let errors = err.lines().filter(|l| !l.contains("level=warning")).count();
    let created = match code("create") {
        Some(0) => true,
        Some(1) if errors == 1 => false,
        Some(1) => return Err(format!("not a one-line error: {err:?}")),
        c => return Err(format!("create exit {c:?} (134 abort, 137 hang): {err}")),
    };
    if !matches!(code("delete"), Some(0 | 1)) {
        return Err(format!("delete --force: {text}"));
    }
    if !text.contains("host-ok") {
        return Err("the namespace's /proc or /sys is gone".into());
    }
    if b.state_dir_exists(id) {
        return Err("state directory left".into());
    }
    if !cgroup_dirs(id).is_empty() {
        return Err(format!("cgroups left: {:?}", cgroup_dirs(id)));
    }
    Ok(created)
}
