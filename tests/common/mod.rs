//! Shared harness for the integration tests: they drive the real hull
//! binary as root on real bundles (a static busybox rootfs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The binary under test: cargo's, or $HULL_BIN (the cgroup v2 VM lane).
pub fn hull_bin() -> String {
    std::env::var("HULL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hull").to_string())
}

/// Skip (with the reason printed) when the test cannot run here.
#[macro_export]
macro_rules! require_root {
    () => {
        if !nix_is_root() {
            eprintln!("skipped: needs root (real namespaces, mounts and cgroups)");
            return;
        }
    };
}

pub fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// One busybox rootfs per test binary, shared read-only by every bundle.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/hull-test-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for d in ["proc", "sys", "dev", "etc", "tmp", "root"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("busybox-static is installed (make deps)");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        )
        .unwrap();
        dir
    })
}

/// A bundle (its own directory and config.json) and an isolated --root.
pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub config: Value,
    ids: std::cell::RefCell<Vec<String>>,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Bundle {
    /// `hull spec` defaults, a non-interactive `args`, and root.path pointing
    /// at the shared rootfs.
    pub fn new(args: &[&str]) -> Bundle {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/hull-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(hull_bin())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hull spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["root"]["path"] = Value::String(rootfs().display().to_string());
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = args.iter().map(|a| Value::String(a.to_string())).collect();
        // The same bundle on every host: `hull spec` (as runc's) adds a
        // cgroup namespace on a v2-only host, and the tests read their
        // container's cgroup path in /proc/self/cgroup. Tests of the
        // namespace ask for it.
        if let Some(ns) = config["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "cgroup");
        }
        let b = Bundle {
            root: dir.join("state"),
            dir,
            config,
            ids: Default::default(),
        };
        b.save();
        b
    }

    /// A new user namespace mapping container 0..size to host..host+size.
    pub fn add_user_namespace(&mut self, host: u32, size: u32) {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": host, "size": size}]);
        self.config["linux"]["uidMappings"] = map.clone();
        self.config["linux"]["gidMappings"] = map;
    }

    pub fn save(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// A unique container id for this bundle, deleted (forced) on drop.
    pub fn id(&self, name: &str) -> String {
        let id = format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        self.ids.borrow_mut().push(id.clone());
        id
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(hull_bin());
        c.arg("--root").arg(&self.root);
        c
    }

    /// Run hull with stdout and stderr captured through files, not pipes: a
    /// created container's init inherits hull's stdio (as with runc), so a
    /// pipe would stay open until the container exits.
    pub fn hull(&self, args: &[&str]) -> Output {
        self.output_of(self.cmd().args(args).stdin(Stdio::null()))
    }

    pub fn output_of(&self, cmd: &mut Command) -> Output {
        output_of(cmd)
    }

    /// Run a verb that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hull(args);
        assert!(
            out.status.success(),
            "hull {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a verb that must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.hull(args);
        assert!(
            !out.status.success(),
            "hull {args:?} unexpectedly succeeded"
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "hull {args:?}: exit {:?}",
            out.status.code()
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn create(&self, id: &str) {
        self.ok(&["create", "--bundle", self.dir.to_str().unwrap(), id]);
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// `hull run` in the foreground, capturing output.
    pub fn run(&self, id: &str) -> Output {
        self.output_of(
            self.cmd()
                .args(["run", "--bundle", self.dir.to_str().unwrap(), id])
                .stdin(Stdio::null()),
        )
    }

    /// Poll until the container reaches `status` (or panic after 5 s).
    pub fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..500 {
            let out = self.hull(&["state", id]);
            let st: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
            if st.is_some_and(|s| s["status"] == status) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{id} never reached {status}");
    }

    pub fn state_dir_exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.hull(&["delete", "--force", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every cgroup directory named `name` under the host's hierarchies.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let p = e.path().join(name);
            if p.exists() {
                out.push(p);
            }
        }
    }
    if Path::new("/sys/fs/cgroup").join(name).exists() {
        out.push(Path::new("/sys/fs/cgroup").join(name));
    }
    out
}

/// Whether a process with this pid is alive (and not a zombie).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s
                .rsplit_once(") ")
                .map(|(_, r)| r.chars().next().unwrap_or('X'))
                .unwrap_or('X');
            st != 'Z' && st != 'X'
        })
        .unwrap_or(false)
}

/// Run a command with stdout and stderr captured through files (see
/// `Bundle::hull` for why not pipes).
pub fn output_of(cmd: &mut Command) -> Output {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let base = format!("/tmp/hull-test-out-{}-{n}", std::process::id());
    let (out_p, err_p) = (format!("{base}.out"), format!("{base}.err"));
    let status = cmd
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap())
        .status()
        .unwrap();
    let out = Output {
        status,
        stdout: std::fs::read(&out_p).unwrap(),
        stderr: std::fs::read(&err_p).unwrap(),
    };
    let _ = std::fs::remove_file(out_p);
    let _ = std::fs::remove_file(err_p);
    out
}

/// Run hull with `--root root` and `args`, output captured.
pub fn hull_at(root: &Path, args: &[String]) -> Output {
    output_of(
        Command::new(hull_bin())
            .arg("--root")
            .arg(root)
            .args(args)
            .stdin(Stdio::null()),
    )
}

/// Accept one connection and receive one fd with SCM_RIGHTS.
pub fn receive_fd(listener: &std::os::unix::net::UnixListener) -> (std::os::fd::OwnedFd, String) {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    // SAFETY: the kernel installed this fd for us.
    let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd.expect("an fd was passed")) };
    (fd, String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Make `file` the child's fd 3, inheritable (hull then sees an fd 3).
pub fn inherit_as_fd3(cmd: &mut std::process::Command, file: &std::fs::File) {
    let raw = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: dup2 and fcntl in the forked child are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Read from `f` until `needle` shows up (or EOF, or the timeout).
pub fn read_until(f: &mut std::fs::File, needle: &str, timeout: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    let mut out = String::new();
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline && !out.contains(needle) {
        match std::io::Read::read(f, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    out
}

impl Bundle {
    /// Give this bundle a rootfs of its own (a copy of the shared one), to
    /// shape it; returns its path.
    pub fn private_rootfs(&mut self) -> PathBuf {
        let dst = self.dir.join("rootfs");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(rootfs())
            .arg(&dst)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "copying the rootfs");
        self.config["root"]["path"] = serde_json::Value::String(dst.display().to_string());
        self.save();
        dst
    }
}

/// Debian's runc, for differential tests; None when it is not installed.
pub fn runc_bin() -> Option<&'static str> {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// `hull run [flags] --bundle B ID`, foreground, output captured.
pub fn hull_run(b: &Bundle, id: &str, flags: &[&str]) -> Output {
    b.output_of(
        b.cmd()
            .arg("run")
            .args(flags)
            .args(["--bundle", b.dir.to_str().unwrap(), id])
            .stdin(Stdio::null()),
    )
}

/// The same with Debian's runc (its own --root in the bundle dir), the
/// container deleted afterwards; None when runc is not installed.
pub fn runc_run(b: &Bundle, id: &str, flags: &[&str]) -> Option<Output> {
    let runc = runc_bin()?;
    let root = b.dir.join("runc-state");
    let out = output_of(
        Command::new(runc)
            .arg("--root")
            .arg(&root)
            .arg("run")
            .args(flags)
            .args(["--bundle", b.dir.to_str().unwrap(), id])
            .stdin(Stdio::null()),
    );
    runc_cmd(b, &["delete", "--force", id]);
    Some(out)
}

/// Any runc verb on the bundle's runc root (runc must be installed).
pub fn runc_cmd(b: &Bundle, args: &[&str]) -> Output {
    output_of(
        Command::new(runc_bin().unwrap())
            .arg("--root")
            .arg(b.dir.join("runc-state"))
            .args(args)
            .stdin(Stdio::null()),
    )
}

/// `hull [global...] create` on `b` as `id` under strace's fault injector,
/// SIGKILLed at its `k`-th call of `syscall`; whether it was killed.
pub fn create_killed_at(b: &Bundle, id: &str, global: &[&str], syscall: &str, k: usize) -> bool {
    let out = output_of(
        Command::new("strace")
            .args(["-o", "/dev/null", "-e"])
            .arg(format!("trace={syscall}"))
            .arg("-e")
            .arg(format!("inject={syscall}:signal=KILL:when={k}"))
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args(global)
            .args(["create", "--bundle", b.dir.to_str().unwrap(), id])
            .stdin(Stdio::null()),
    );
    !out.status.success()
}
