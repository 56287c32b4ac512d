//! Many hull processes at once: one id hammered by start/kill/delete, and
//! fifty containers created and deleted in parallel. Nothing may be left:
//! no state directory, cgroup or process.

mod common;

use common::*;

#[test]
fn concurrent_start_kill_delete_on_one_id() {
    require_root!();
    for round in 0..5 {
        let b = Bundle::new(&["sleep", "100"]);
        let id = b.id(&format!("race{round}"));
        b.create(&id);
        let pid = b.state(&id)["pid"].as_i64().unwrap();
        let root = b.root.clone();
        let verbs: Vec<Vec<String>> = vec![
            vec!["start".into(), id.clone()],
            vec!["kill".into(), id.clone(), "KILL".into()],
            vec!["delete".into(), "--force".into(), id.clone()],
            vec!["start".into(), id.clone()],
            vec!["state".into(), id.clone()],
        ];
        let handles: Vec<_> = verbs
            .into_iter()
            .map(|args| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let out = hull_at(&root, &args);
                    // Every outcome is a clean success or a clean error.
                    let err = String::from_utf8_lossy(&out.stderr).into_owned();
                    assert!(
                        out.status.code() == Some(0) || out.status.code() == Some(1),
                        "{args:?}: {err}"
                    );
                    assert!(!err.contains("panicked"), "{args:?}: {err}");
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // The forced delete won or ran after the others: all gone.
        b.ok(&["delete", "--force", &id]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!b.state_dir_exists(&id));
        assert!(!alive(pid), "init {pid} survived");
        assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    }
}

#[test]
fn fifty_parallel_creates_and_deletes_leave_nothing() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let ids: Vec<String> = (0..50).map(|i| b.id(&format!("par{i}"))).collect();
    let bundle = b.dir.to_str().unwrap().to_string();
    let run = |args: Vec<String>| {
        let root = b.root.clone();
        std::thread::spawn(move || {
            let out = hull_at(&root, &args);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    };
    let hs: Vec<_> = ids
        .iter()
        .map(|id| {
            run(vec![
                "create".into(),
                "--bundle".into(),
                bundle.clone(),
                id.clone(),
            ])
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    let pids: Vec<i64> = ids
        .iter()
        .map(|id| b.state(id)["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(b.ok(&["list", "-q"]).lines().count(), 50);
    let hs: Vec<_> = ids
        .iter()
        .map(|id| run(vec!["delete".into(), "--force".into(), id.clone()]))
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(b.ok(&["list", "-q"]).trim(), "");
    for (id, pid) in ids.iter().zip(pids) {
        assert!(!b.state_dir_exists(id));
        assert!(!alive(pid), "{id}: init {pid} survived");
        assert!(cgroup_dirs(id).is_empty(), "{id}: {:?}", cgroup_dirs(id));
    }
}

/// Run hull with `args` on `root`, killed (and reported) past `limit`.
fn bounded(root: &std::path::Path, args: &[String], limit: std::time::Duration) -> Option<i32> {
    let mut child = std::process::Command::new(hull_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("hull {args:?} did not end within {limit:?}");
}

#[test]
fn every_verb_at_once_on_one_id_ends_in_bounded_time() {
    require_root!();
    let limit = std::time::Duration::from_secs(20);
    for round in 0..6 {
        let b = Bundle::new(&["sleep", "100"]);
        let id = b.id(&format!("all{round}"));
        let bundle = b.dir.to_str().unwrap().to_string();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        // Half the rounds start from a created container, half from none.
        if round % 2 == 0 {
            b.create(&id);
        }
        let mut verbs = vec![
            s(&["create", "--bundle", &bundle, &id]),
            s(&["start", &id]),
            s(&["state", &id]),
            s(&["pause", &id]),
            s(&["resume", &id]),
            s(&["kill", &id, "TERM"]),
            s(&["exec", &id, "true"]),
            s(&["exec", "--ignore-paused", "-d", &id, "true"]),
            s(&["ps", &id]),
            s(&["events", "--stats", &id]),
            s(&["delete", &id]),
            s(&["delete", "--force", &id]),
            s(&["list"]),
        ];
        // A different order each round.
        let n = verbs.len();
        verbs.rotate_left(round * 3 % n);
        let handles: Vec<_> = verbs
            .into_iter()
            .map(|args| {
                let root = b.root.clone();
                std::thread::spawn(move || {
                    let code = bounded(&root, &args, limit);
                    // Success, a clean error, or (exec) runc's 255 for
                    // "could not exec"; a foreground exec whose process the
                    // concurrent kill or forced delete ended exits as runc's
                    // does, 128 + the signal.
                    let killed = args[0] == "exec" && matches!(code, Some(137 | 143));
                    assert!(
                        killed || matches!(code, Some(0 | 1 | 255)),
                        "{args:?}: exit {code:?}"
                    );
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // Whatever won, the container is in a state hull can name, and one
        // forced delete takes everything away.
        let out = b.hull(&["state", &id]);
        if out.status.success() {
            let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let status = st["status"].as_str().unwrap();
            assert!(
                ["creating", "created", "running", "paused", "stopped"].contains(&status),
                "{status}"
            );
            let pid = st["pid"].as_i64().unwrap_or(0);
            assert_eq!(
                bounded(&b.root, &s(&["delete", "--force", &id]), limit),
                Some(0)
            );
            assert!(pid <= 0 || !alive(pid), "init {pid} survived");
        }
        assert!(!b.state_dir_exists(&id));
        assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    }
}
