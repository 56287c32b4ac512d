//! linux.seccomp on real containers: errno actions and defaultErrnoRet,
//! kills, argument conditions, -ENOSYS for syscalls newer than the profile,
//! every filter flag passed to the kernel, and SCMP_ACT_NOTIFY with a small
//! agent of the test's own that answers the intercepted syscall.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};

/// The sysno helper (tests/helpers/sysno.c), built static once; None when
/// there is no C compiler here.
fn sysno() -> Option<std::path::PathBuf> {
    static BIN: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let out = std::path::PathBuf::from(format!("/tmp/hull-sysno-{}", std::process::id()));
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/sysno.c");
        let ok = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(src)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(out)
    })
    .clone()
}

/// A bundle whose container runs `args` with `profile` and /sysno bound in.
fn with_profile(args: &[&str], profile: Value) -> Option<Bundle> {
    let Some(helper) = sysno() else {
        eprintln!("skipped: no C compiler (cc) to build the sysno helper");
        return None;
    };
    let mut b = Bundle::new(args);
    b.config["linux"]["seccomp"] = profile;
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/sysno", "type": "bind", "source": helper, "options": ["bind", "ro"]
    }));
    b.save();
    Some(b)
}

fn run_out(b: &Bundle, tag: &str) -> (Option<i32>, String, String) {
    let id = b.id(tag);
    let o = b.run(&id);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// x86_64 numbers used below.
const SYS_MKDIR: &str = "83";
const SYS_GETPID: &str = "39";
const SYS_PERSONALITY: &str = "135";

#[test]
fn errno_actions_default_errno_and_arguments() {
    require_root!();
    let Some(b) = with_profile(
        &[
            "sh",
            "-c",
            &format!(
                "/sysno {SYS_MKDIR} /tmp/x 0; /sysno {SYS_GETPID}; /sysno {SYS_PERSONALITY} 0; /sysno {SYS_PERSONALITY} 8"
            ),
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]
        }),
    ) else {
        return;
    };
    let (code, out, err) = run_out(&b, "errno");
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "-1 EACCES", "errnoRet");
    assert_eq!(lines[1], "-1 EPERM", "SCMP_ACT_ERRNO defaults to EPERM");
    assert!(
        lines[2].ends_with(" 0"),
        "personality(0) allowed: {}",
        lines[2]
    );
    assert_eq!(lines[3], "-1 EPERM", "personality(8) matched the condition");
}

#[test]
fn kill_process_kills() {
    require_root!();
    let Some(b) = with_profile(
        &[
            "sh",
            "-c",
            &format!("/sysno {SYS_MKDIR} /tmp/x 0; echo survived"),
        ],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]
        }),
    ) else {
        return;
    };
    let (code, out, err) = run_out(&b, "kill");
    // sh survives: only the process making the call (sysno) is killed, by SIGSYS.
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "survived\n");
    let Some(b) = with_profile(
        &["/sysno", SYS_MKDIR, "/tmp/x", "0"],
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]
        }),
    ) else {
        return;
    };
    let (code, out, _) = run_out(&b, "kill-init");
    assert_eq!(code, Some(128 + libc::SIGSYS), "{out}");
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    require_root!();
    // An allow-list whose default is EPERM: syscall 1000 (none has that
    // number) and the largest named one + 1 get -ENOSYS; an older syscall
    // the profile leaves out gets the default EPERM.
    let allowed = [
        "read",
        "write",
        "openat",
        "close",
        "fstat",
        "newfstatat",
        "mmap",
        "munmap",
        "brk",
        "exit_group",
        "execve",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "mprotect",
        "readlink",
        "getrandom",
        "uname",
        "ioctl",
        "access",
    ];
    let Some(b) = with_profile(
        &["sh", "-c", "/sysno 1000; /sysno 39"],
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": allowed, "action": "SCMP_ACT_ALLOW"},
                {"names": ["wait4", "fork", "vfork", "clone", "clone3", "rt_sigaction",
                           "rt_sigprocmask", "rt_sigreturn", "getppid", "getuid", "geteuid",
                           "getgid", "getegid", "dup2", "fcntl", "stat", "lstat", "chdir",
                           "getcwd", "pipe", "pipe2", "sigaltstack", "exit"],
                 "action": "SCMP_ACT_ALLOW"}
            ]
        }),
    ) else {
        return;
    };
    let (code, out, err) = run_out(&b, "enosys");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "-1 ENOSYS\n-1 EPERM\n", "{err}");
    // defaultErrnoRet is the errno of older syscalls the profile leaves
    // out; newer ones still get -ENOSYS (as runc).
    let Some(b) = with_profile(
        &["sh", "-c", "/sysno 1000; /sysno 39"],
        json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
            "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"},
                         {"names": ["wait4", "fork", "vfork", "clone", "rt_sigaction",
                                    "rt_sigprocmask", "rt_sigreturn", "getppid", "getuid",
                                    "geteuid", "getgid", "getegid", "dup2", "fcntl", "stat",
                                    "lstat", "chdir", "getcwd", "pipe", "pipe2", "exit"],
                          "action": "SCMP_ACT_ALLOW"}]
        }),
    ) else {
        return;
    };
    let (_, out, err) = run_out(&b, "errnoret");
    assert_eq!(out, "-1 ENOSYS\n-1 EACCES\n", "{err}");
}

#[test]
fn every_filter_flag_reaches_the_kernel() {
    require_root!();
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed (make deps installs it)");
        return;
    }
    let b = Bundle::new(&["true"]);
    let mut b = b;
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    });
    b.save();
    let id = b.id("flags");
    let trace = b.dir.join("trace");
    let o = b.output_of(
        Command::new("strace")
            .args(["-f", "-e", "trace=seccomp", "-o"])
            .arg(&trace)
            .arg(hull_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["run", "--bundle", b.dir.to_str().unwrap(), &id])
            .stdin(Stdio::null()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = std::fs::read_to_string(&trace).unwrap();
    // libseccomp probes the kernel with NULL programs first; ours has one.
    let call = t
        .lines()
        .find(|l| l.contains("SECCOMP_SET_MODE_FILTER") && !l.contains("NULL"))
        .unwrap_or_else(|| panic!("no seccomp(2) call in {t}"));
    for f in [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    ] {
        assert!(call.contains(f), "{f} missing in {call}");
    }
    assert!(call.contains("= 0"), "{call}");
}

/// The agent side of runc's protocol: one message, JSON plus an fd.
fn receive_notify_fd(listener: &UnixListener) -> (Value, OwnedFd) {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
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
    let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
    // SAFETY: the kernel installed this fd for us.
    (state, unsafe {
        OwnedFd::from_raw_fd(fd.expect("a notify fd"))
    })
}

/// Answer `count` notifications on `fd` with success (return value 0),
/// without doing the call: a "fake" mkdir. Returns the syscall numbers seen.
fn answer_with_success(fd: &OwnedFd, count: usize) -> Vec<i32> {
    let mut seen = Vec::new();
    for _ in 0..count {
        // SAFETY: zeroed notif/resp structs are valid; the ioctls fill and
        // read them.
        unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            assert_eq!(
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req),
                0
            );
            seen.push(req.data.nr);
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            resp.val = 0;
            resp.error = 0;
            assert_eq!(
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp),
                0
            );
        }
    }
    seen
}

#[test]
fn notify_hands_the_fd_to_an_agent_that_answers() {
    require_root!();
    // With no_new_privs the filter is loaded right before execve (after
    // start); without, during create: the agent gets the fd either way.
    for nnp in [true, false] {
        notify_round(nnp);
    }
}

fn notify_round(nnp: bool) {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "mkdir /tmp/faked && echo made; ls -d /tmp/faked 2>/dev/null || echo absent; sleep 100",
    ]);
    let sock = b.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "from-the-test",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.config["process"]["noNewPrivileges"] = json!(nnp);
    b.save();
    let id = b.id("notify");
    let agent = std::thread::spawn(move || {
        let (msg, fd) = receive_notify_fd(&listener);
        let seen = answer_with_success(&fd, 1);
        (msg, seen, listener)
    });
    b.create(&id);
    let pid = b.state(&id)["pid"].as_i64().unwrap();
    let o = b.output_of(b.cmd().args(["start", &id]).stdin(Stdio::null()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (msg, seen, listener) = agent.join().unwrap();
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "from-the-test");
    assert_eq!(msg["pid"], pid);
    assert_eq!(msg["state"]["id"], id.as_str());
    assert_eq!(msg["state"]["pid"], pid);
    assert_eq!(msg["ociVersion"], "1.3.0");
    assert!(
        seen == vec![83] || seen == vec![258],
        "mkdir or mkdirat: {seen:?}"
    );
    // exec'd processes get the profile too, and the agent a new fd.
    let agent = std::thread::spawn(move || {
        let (msg, fd) = receive_notify_fd(&listener);
        answer_with_success(&fd, 1);
        msg
    });
    let o = b.hull(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/again && echo made-in-exec; ls -d /tmp/again 2>/dev/null || echo absent",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "made-in-exec\nabsent\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let msg = agent.join().unwrap();
    assert_eq!(msg["state"]["status"], "running");
    assert_ne!(msg["pid"], pid, "the exec'd process's pid");
}

#[test]
fn notify_without_a_listener_is_refused_clearly() {
    require_root!();
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.save();
    let id = b.id("nolistener");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    // A listener nobody listens on: create fails and leaves nothing.
    b.config["linux"]["seccomp"]["listenerPath"] = json!(b.dir.join("nobody.sock"));
    b.save();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    // runc's words (issue 25, item 10), which callers match.
    assert!(
        err.contains("failed to connect with seccomp agent specified in the seccomp profile"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
    assert!(cgroup_dirs(&id).is_empty());
    // NOTIFY on write, and as the default action: refused as runc does.
    b.config["linux"]["seccomp"]["syscalls"] =
        json!([{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]);
    b.save();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{err}"
    );
    b.config["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    b.config["linux"]["seccomp"]["syscalls"] = json!([]);
    b.save();
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(
        err.contains("SCMP_ACT_NOTIFY cannot be used as default action"),
        "{err}"
    );
    assert!(!b.state_dir_exists(&id));
}

/// A profile loaded before the user switch (no noNewPrivileges) that does
/// not know faccessat2 and answers EPERM for it, as runtime-tools' default
/// profile and Docker's before 20.10 do: args[0] is still found and run
/// (the check falls back to the mode bits, as Go's does).
#[test]
fn a_profile_without_faccessat2_still_runs_the_process() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "echo ran"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.save();
    let out = b.run(&b.id("nofaccessat2"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ran\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
