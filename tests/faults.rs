//! A `hull create` killed at any point leaves nothing that `delete --force`
//! cannot remove. strace's fault injector (`-e inject=S:signal=KILL:when=K`)
//! delivers SIGKILL to hull at the K-th call of each syscall it makes
//! (K = 1, 2); after each kill, `hull delete --force ID`, as every caller
//! runs it after a failed create, must leave no process, cgroup, mount or
//! state directory, and the id must be creatable again.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};

/// The syscalls `hull create` makes (not its children), from `strace -c`.
fn syscalls_of_create(b: &Bundle, id: &str) -> Vec<String> {
    let summary = b.dir.join("strace-summary");
    let out = output_of(
        Command::new("strace")
            .arg("-c")
            .arg("-o")
            .arg(&summary)
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["create", "--bundle", b.dir.to_str().unwrap(), id])
            .stdin(Stdio::null()),
    );
    assert!(
        out.status.success(),
        "create under strace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.ok(&["delete", "--force", id]);
    let text = std::fs::read_to_string(&summary).unwrap();
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('%') && !l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| *n != "total" && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(String::from)
        .collect();
    assert!(names.len() > 20, "too few syscalls seen: {names:?}\n{text}");
    names.into_iter().collect()
}

/// Reap the zombies the subreaper inherited; the live children remain.
fn live_children() -> Vec<i32> {
    loop {
        // SAFETY: waitpid with WNOHANG on any child only reaps.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
    let me = std::process::id() as i64;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, r)| r.split(' ').collect())
            .unwrap_or_default();
        if fields.get(1).and_then(|p| p.parse::<i64>().ok()) == Some(me) && fields[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

/// What is left of container `id` on the host, described; empty when none.
fn leftovers(b: &Bundle, id: &str, before: &[i32]) -> Vec<String> {
    let mut left = Vec::new();
    if b.state_dir_exists(id) {
        left.push(format!("state directory {}", b.root.join(id).display()));
    }
    for d in cgroup_dirs(id) {
        left.push(format!("cgroup {}", d.display()));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let bundle = b.dir.to_str().unwrap();
    for l in mounts.lines().filter(|l| l.contains(bundle)) {
        left.push(format!("mount {l}"));
    }
    for pid in live_children() {
        if !before.contains(&pid) {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            left.push(format!("process {pid} ({})", cmd.replace('\0', " ")));
        }
    }
    left
}

#[test]
fn killed_create_leaves_nothing_after_delete_force() {
    require_root!();
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed (make deps installs it)");
        return;
    }
    // Whatever a killed create orphans is reparented to us, so it can be
    // seen (and is never lost to the host's init).
    // SAFETY: prctl with integer arguments.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("fault");
    let calls = syscalls_of_create(&b, &id);
    let before = live_children();
    let mut failures = Vec::new();
    let mut killed = 0;
    for call in &calls {
        for k in [1, 2] {
            if create_killed_at(&b, &id, &[], call, k) {
                killed += 1;
            }
            let del = b.hull(&["delete", "--force", &id]);
            let mut left = leftovers(&b, &id, &before);
            if !del.status.success() {
                left.push(format!(
                    "delete --force failed: {}",
                    String::from_utf8_lossy(&del.stderr).trim()
                ));
            }
            // The id is free again: a new create works and is removable.
            let again = b.hull(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
            if !again.status.success() {
                left.push(format!(
                    "create again failed: {}",
                    String::from_utf8_lossy(&again.stderr).trim()
                ));
            }
            b.hull(&["delete", "--force", &id]);
            left.extend(leftovers(&b, &id, &before));
            if !left.is_empty() {
                failures.push(format!("killed at {call} #{k}: {}", left.join("; ")));
            }
        }
    }
    eprintln!(
        "{} kill points over {} syscalls, {killed} of them killed create",
        calls.len() * 2,
        calls.len()
    );
    assert!(killed > calls.len(), "the fault injector did not kill hull");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
