//! Rootless mode: hull run by a user other than root (here `nobody`, or
//! the systemd lane's `hulltest` with its own systemd), and by uid 0 in a
//! user namespace another program made (`unshare --user --map-root-user`,
//! as rootless podman runs its runtime). The harness is root and drops to
//! the user for each hull call.

mod common;

use common::*;
use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A user hull runs as: its ids, its XDG_RUNTIME_DIR, a copy of hull it
/// may execute, and one bundle made by `hull spec --rootless` as that user.
struct User {
    uid: u32,
    gid: u32,
    xdg: PathBuf,
    dir: PathBuf,
    hull: PathBuf,
    bundle: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl User {
    /// `nobody`, with a private XDG_RUNTIME_DIR.
    fn nobody(args: &[&str]) -> User {
        let n = next();
        let dir = PathBuf::from(format!("/tmp/hull-rootless-{}-{n}", std::process::id()));
        let xdg = dir.join("xdg");
        User::new(65534, 65534, dir, xdg, args)
    }

    fn new(uid: u32, gid: u32, dir: PathBuf, xdg: PathBuf, args: &[&str]) -> User {
        let _ = std::fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        for d in [&dir, &bundle, &xdg] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in [&bundle, &xdg] {
            std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        let hull = user_hull();
        let u = User {
            uid,
            gid,
            xdg,
            dir,
            hull,
            bundle,
            ids: Default::default(),
        };
        let out = u.hull(&["spec", "--rootless", "--bundle", u.bundle.to_str().unwrap()]);
        assert!(out.status.success(), "spec --rootless: {out:?}");
        let mut config = u.config();
        config["root"]["path"] = json!(rootfs().display().to_string());
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        u.save(&config);
        u
    }

    fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.bundle.join("config.json")).unwrap()).unwrap()
    }

    fn save(&self, config: &Value) {
        let path = self.bundle.join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        std::os::unix::fs::chown(&path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// A command run as this user (no supplementary groups: std drops
    /// them when root sets a uid), in its environment, from its bundle.
    fn as_user(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.uid(self.uid)
            .gid(self.gid)
            .current_dir(&self.bundle)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", &self.xdg)
            .stdin(Stdio::null());
        c
    }

    /// hull as this user, without --root: the rootless default.
    fn hull(&self, args: &[&str]) -> Output {
        output_of(self.as_user(&self.hull).args(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.hull(args);
        assert!(out.status.success(), "hull {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.hull(args);
        assert_eq!(out.status.code(), Some(1), "hull {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn id(&self, name: &str) -> String {
        let id = format!("{name}-{}-{}", std::process::id(), next());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn state_root(&self) -> PathBuf {
        self.xdg.join("hull")
    }
}

impl Drop for User {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.hull(&["delete", "--force", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// hull where any user may execute it (the build tree may be closed to
/// them), copied once per test binary by cp(1): a copy written by this
/// process could be open for writing in a child another test forks
/// meanwhile, and exec would fail with ETXTBSY.
fn user_hull() -> PathBuf {
    static HULL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HULL.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/hull-rootless-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hull = dir.join("hull");
        let ok = Command::new("cp").arg(hull_bin()).arg(&hull).status();
        assert!(ok.is_ok_and(|s| s.success()), "copying hull");
        hull
    })
    .clone()
}

fn next() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// Whether user namespaces can be made here by a user other than root.
fn userns_for_users() -> bool {
    let u = User::nobody(&["true"]);
    let out = output_of(
        u.as_user(Path::new("/usr/bin/unshare"))
            .args(["--user", "true"]),
    );
    out.status.success()
}

macro_rules! require_rootless {
    () => {
        require_root!();
        if !userns_for_users() {
            eprintln!("skipped: this kernel does not let users make user namespaces");
            return;
        }
    };
}

#[test]
fn spec_rootless_maps_the_caller() {
    require_rootless!();
    let u = User::nobody(&["true"]);
    let c = u.config();
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": 65534, "size": 1}])
    );
    assert_eq!(
        c["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": 65534, "size": 1}])
    );
    assert!(c["linux"].get("resources").is_none(), "{c}");
    let types: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
}

#[test]
fn a_user_runs_a_container_in_its_own_user_namespace() {
    require_rootless!();
    let u = User::nobody(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/setgroups",
    ]);
    let id = u.id("rl");
    let out = u.ok(&["run", &id]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "65534", "1", "deny"], "{out}");
    // The state went under $XDG_RUNTIME_DIR/hull, the user's, and is gone.
    let md = std::fs::metadata(u.state_root()).unwrap();
    assert_eq!(md.uid(), 65534);
    assert!(!u.state_root().join(&id).exists());
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

#[test]
fn every_verb_works_without_a_cgroup() {
    require_rootless!();
    let u = User::nobody(&["sleep", "100"]);
    let id = u.id("verbs");
    u.ok(&["create", &id]);
    u.ok(&["start", &id]);
    let st: Value = serde_json::from_str(&u.ok(&["state", &id])).unwrap();
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    let list: Value = serde_json::from_str(&u.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(
        (&list[0]["id"], &list[0]["owner"]),
        (&json!(id), &json!("nobody"))
    );
    assert_eq!(u.ok(&["exec", &id, "id", "-u"]).trim(), "0");
    // ps: the processes of the container's pid namespace, as it has no cgroup.
    let ps: Vec<i64> = serde_json::from_str(&u.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps, [pid]);
    // What needs a cgroup says so.
    for verb in ["pause", "update"] {
        let mut args = vec![verb];
        if verb == "update" {
            args.extend(["--memory", "100M"]);
        }
        args.push(&id);
        let err = u.fails(&args);
        assert!(
            err.contains(&format!(
                "cannot {verb}: the container has no cgroup of its own"
            )),
            "{err}"
        );
    }
    u.ok(&["kill", "--all", &id, "KILL"]);
    for _ in 0..500 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(pid));
    u.ok(&["delete", &id]);
    assert!(!u.state_root().join(&id).exists());
}

#[test]
fn the_container_cannot_reach_a_writable_hull() {
    require_rootless!();
    // The user's own hull is writable by the user, and so by the
    // container's root: the init stage runs from a sealed copy instead.
    let u = User::nobody(&["true"]);
    let id = u.id("sealed");
    u.ok(&["create", &id]);
    let st: Value = serde_json::from_str(&u.ok(&["state", &id])).unwrap();
    let exe = format!("/proc/{}/exe", st["pid"]);
    let target = std::fs::read_link(&exe).unwrap();
    assert!(
        target.to_string_lossy().starts_with("/memfd:"),
        "{}",
        target.display()
    );
    let write = std::fs::OpenOptions::new().write(true).open(&exe);
    assert!(write.is_err(), "the init's executable opened for writing");
    u.ok(&["delete", "--force", &id]);
}

#[test]
fn limits_without_a_delegated_cgroup_are_refused_and_leave_nothing() {
    require_rootless!();
    let u = User::nobody(&["true"]);
    let mut c = u.config();
    c["linux"]["resources"] = json!({"memory": {"limit": 104857600}});
    u.save(&c);
    let id = u.id("limits");
    let err = u.fails(&["run", &id]);
    assert!(
        err.contains("rootless: linux.resources needs a cgroup, and uid 65534 may not make"),
        "{err}"
    );
    assert!(!u.state_root().join(&id).exists());
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn rootless_false_keeps_the_cgroups_of_root() {
    require_rootless!();
    let u = User::nobody(&["true"]);
    let id = u.id("notrootless");
    // runc's --rootless=false: no cgroup error is forgiven.
    let err = u.fails(&["--rootless", "false", "run", &id]);
    assert!(err.contains("creating cgroup"), "{err}");
    assert!(!u.state_root().join(&id).exists());
    u.ok(&["--rootless", "true", "run", &id]);
}

#[test]
fn maps_beyond_the_users_own_id_need_the_helpers() {
    require_rootless!();
    let u = User::nobody(&["true"]);
    let mut c = u.config();
    c["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": 65534, "size": 1},
        {"containerID": 1, "hostID": 200000, "size": 10}
    ]);
    u.save(&c);
    let id = u.id("maps");
    let err = u.fails(&["run", &id]);
    assert!(
        err.contains("newuidmap") && err.contains("/etc/subuid"),
        "{err}"
    );
    assert!(!u.state_root().join(&id).exists());
}

#[test]
fn root_in_a_user_namespace_is_rootless() {
    require_rootless!();
    let u = User::nobody(&["id", "-u"]);
    let id = u.id("unshare");
    // The harness is root: map it as itself, as rootless podman maps its user.
    let mut c = u.config();
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    u.save(&c);
    // An XDG_RUNTIME_DIR of root's: the user's is closed to it in there.
    let xdg = u.dir.join("xdg-root");
    std::fs::create_dir_all(&xdg).unwrap();
    let out = output_of(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--"])
            .arg(&u.hull)
            .args(["run", &id])
            .current_dir(&u.bundle)
            .env("XDG_RUNTIME_DIR", &xdg)
            .env_remove("USER")
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    // Rootless: the state root is $XDG_RUNTIME_DIR/hull, not /run/hull.
    assert!(xdg.join("hull").is_dir());
    assert!(!Path::new("/run/hull").join(&id).exists());
}

#[test]
fn runc_and_hull_agree_on_a_rootless_container() {
    require_rootless!();
    let Some(runc_path) = runc_bin() else {
        eprintln!("skipped: runc is not installed");
        return;
    };
    let u = User::nobody(&[
        "sh",
        "-c",
        "id; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; ls /dev; echo caps $(grep CapEff /proc/self/status)",
    ]);
    let id = u.id("diff");
    let hull = u.hull(&["run", &id]);
    let runc = output_of(
        u.as_user(Path::new(runc_path))
            .args(["--root"])
            .arg(u.xdg.join("runc"))
            .args(["run", &id]),
    );
    let _ = output_of(
        u.as_user(Path::new(runc_path))
            .args(["--root"])
            .arg(u.xdg.join("runc"))
            .args(["delete", "--force", &id]),
    );
    assert_eq!(runc.status.code(), Some(0), "runc: {runc:?}");
    assert_eq!(hull.status.code(), Some(0), "hull: {hull:?}");
    assert_eq!(
        String::from_utf8_lossy(&hull.stdout),
        String::from_utf8_lossy(&runc.stdout)
    );
}

// ---- With the user's own systemd: the systemd lane's `hulltest`. ----

/// The lane's test user, when its systemd (and session bus) is running.
fn lane_user(args: &[&str]) -> Option<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("hulltest:"))?;
    let f: Vec<&str> = line.split(':').collect();
    let (uid, gid): (u32, u32) = (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
    let xdg = PathBuf::from(format!("/run/user/{uid}"));
    if !xdg.join("bus").exists() {
        return None;
    }
    let dir = PathBuf::from(format!(
        "/tmp/hull-rootless-{}-{}",
        std::process::id(),
        next()
    ));
    Some(User::new(uid, gid, dir, xdg, args))
}

macro_rules! require_user_systemd {
    ($args:expr) => {{
        require_root!();
        match lane_user($args) {
            Some(u) => u,
            None => {
                eprintln!(
                    "skipped: no user hulltest with a running user systemd (the systemd lane has one)"
                );
                return;
            }
        }
    }};
}

/// `systemctl --user` as the lane's user.
fn user_systemctl(u: &User, args: &[&str]) -> String {
    let out = output_of(
        u.as_user(Path::new("/usr/bin/systemctl"))
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/bus", u.xdg.display()),
            )
            .arg("--user")
            .args(args),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_users_container_gets_a_scope_of_the_users_systemd() {
    let u = require_user_systemd!(&["sleep", "100"]);
    let mut c = u.config();
    c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    u.save(&c);
    let id = u.id("scope");
    u.ok(&["--systemd-cgroup", "create", &id]);
    let st: Value = serde_json::from_str(&u.ok(&["state", &id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let unit = format!("hull-{id}.scope");
    let dir = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{0}.slice/user@{0}.service/user.slice/{unit}",
        u.uid
    ));
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.trim().ends_with(&format!("user.slice/{unit}")), "{cg}");
    assert_eq!(user_systemctl(&u, &["is-active", &unit]), "active");
    assert_eq!(
        std::fs::read_to_string(dir.join("memory.max"))
            .unwrap()
            .trim(),
        "67108864"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "50"
    );
    u.ok(&["start", &id]);
    u.ok(&["pause", &id]);
    let st: Value = serde_json::from_str(&u.ok(&["state", &id])).unwrap();
    assert_eq!(st["status"], "paused");
    u.ok(&["resume", &id]);
    // Without XDG_RUNTIME_DIR (a caller's cleanup may run hull so), the
    // user's bus is found at /run/user/UID.
    let out = output_of(
        u.as_user(&u.hull)
            .env_remove("XDG_RUNTIME_DIR")
            .arg("--root")
            .arg(u.state_root())
            .args(["update", "--memory", "128M", &id]),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("memory.max"))
            .unwrap()
            .trim(),
        "134217728"
    );
    assert_eq!(
        user_systemctl(&u, &["show", "-p", "MemoryMax", "--value", &unit]),
        "134217728"
    );
    // An exec'd process joins the scope: the user's systemd moves it there
    // (the harness's cgroup is root's, which the user may not leave). It
    // sees its cgroup as the init's (relative to the cgroup namespace
    // `spec --rootless` gives on a v2-only host).
    let out = u.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; cat /proc/self/cgroup; echo --; cat /proc/1/cgroup",
    ]);
    let (own, init) = out.split_once("--\n").unwrap_or_default();
    assert!(own.starts_with("0\n") && own[2..] == *init, "{out}");
    let ps: Vec<i64> = serde_json::from_str(&u.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps, [pid]);
    u.ok(&["delete", "--force", &id]);
    assert!(!dir.exists());
    assert_ne!(user_systemctl(&u, &["is-active", &unit]), "active");
}

#[test]
fn a_limit_on_a_controller_not_delegated_names_the_drop_in() {
    let u = require_user_systemd!(&["true"]);
    let mut c = u.config();
    // hugetlb: no user@.service drop-in delegates it.
    c["linux"]["resources"] = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]});
    u.save(&c);
    let id = u.id("undelegated");
    let err = u.fails(&["--systemd-cgroup", "run", &id]);
    assert!(
        err.contains("the hugetlb controller is not delegated to uid")
            && err.contains("Delegate=cpu cpuset io memory pids"),
        "{err}"
    );
    assert!(!u.state_root().join(&id).exists());
    let unit = format!("hull-{id}.scope");
    assert_ne!(user_systemctl(&u, &["is-active", &unit]), "active");
}

#[test]
fn maps_of_subordinate_ids_go_through_newuidmap() {
    let u = require_user_systemd!(&["cat", "/proc/self/uid_map", "/proc/self/gid_map"]);
    let mut c = u.config();
    let map = |own: u32| {
        json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": 100000, "size": 65536}
        ])
    };
    c["linux"]["uidMappings"] = map(u.uid);
    c["linux"]["gidMappings"] = map(u.gid);
    u.save(&c);
    let id = u.id("subids");
    let out = u.ok(&["run", &id]);
    let words: Vec<&str> = out.split_whitespace().collect();
    let (uid, gid) = (u.uid.to_string(), u.gid.to_string());
    assert_eq!(
        words,
        [
            "0", &uid, "1", "1", "100000", "65536", "0", &gid, "1", "1", "100000", "65536"
        ],
        "{out}"
    );
}

#[test]
fn in_a_delegated_subtree_the_cgroup_is_made_beside_hulls_own() {
    let u = require_user_systemd!(&[
        "sh",
        "-c",
        "p=$(sed -n 's/^0:://p' /proc/self/cgroup); echo \"$p\"; cat \"/sys/fs/cgroup$p/memory.max\"",
    ]);
    let mut c = u.config();
    c["linux"]["resources"] = json!({"memory": {"limit": 33554432}});
    // The host's path in /proc/self/cgroup: no cgroup namespace (which
    // `spec --rootless` gives on a v2-only host); /sys/fs/cgroup is then
    // the host's whole tree, as with runc.
    if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "cgroup");
    }
    u.save(&c);
    let id = u.id("beside");
    // hull in a scope of the user's systemd: its parent (app.slice) is the
    // user's, as runc's default path beside its own cgroup needs.
    let out = output_of(
        u.as_user(Path::new("/usr/bin/systemd-run"))
            .args(["--user", "--scope", "--quiet", "--"])
            .arg(&u.hull)
            .args(["run", &id]),
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let cg = lines.next().unwrap_or_default().to_string();
    assert!(
        cg.starts_with(&format!(
            "/user.slice/user-{0}.slice/user@{0}.service/",
            u.uid
        )) && cg.ends_with(&format!("/{id}")),
        "{text}"
    );
    assert_eq!(lines.next(), Some("33554432"), "{text}");
    assert!(!Path::new(&format!("/sys/fs/cgroup{cg}")).exists());
}
