//! What crosses into the container: the pty over --console-socket, extra
//! fds (--preserve-fds, LISTEN_FDS), and the pidfd over --pidfd-socket.

mod common;

use common::*;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::Duration;

/// `hull run --preserve-fds 1` with `file` as the container's fd 3.
fn run_with_fd3(b: &Bundle, id: &str, file: &std::fs::File) -> std::process::Output {
    let mut cmd = b.cmd();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.dir.to_str().unwrap(),
        id,
    ])
    .stdin(Stdio::null());
    inherit_as_fd3(&mut cmd, file);
    b.output_of(&mut cmd)
}

#[test]
fn console_socket_receives_the_pty_master() {
    require_root!();
    let mut b = Bundle::new(&["sh"]);
    b.config["process"]["terminal"] = true.into();
    b.config["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 111});
    b.save();
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = b.id("console");
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    b.ok(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let (master, _name) = receiver.join().unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/self/fd/{}", master.as_raw_fd()))
            .unwrap()
            .to_str()
            .unwrap(),
        "/dev/pts/ptmx"
    );
    b.ok(&["start", &id]);
    let mut m = std::fs::File::from(master);
    m.write_all(b"tty; stty size; ls -l /dev/console; echo done-$((40+2))\n")
        .unwrap();
    let out = read_until(&mut m, "done-42", Duration::from_secs(5));
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 111"), "console size: {out}");
    assert!(out.contains("done-42"), "{out}");
    b.ok(&["delete", "--force", &id]);
}

#[test]
fn terminal_without_console_socket_is_refused_on_create() {
    require_root!();
    let mut b = Bundle::new(&["sh"]);
    b.config["process"]["terminal"] = true.into();
    b.save();
    let id = b.id("nosock");
    let err = b.fails(&["create", "--bundle", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("cannot allocate tty"), "{err}");
    let b = Bundle::new(&["true"]);
    let err = b.fails(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        "/nonexistent",
        &id,
    ]);
    assert!(err.contains("console socket"), "{err}");
    assert!(!b.state_dir_exists(&id));
}

#[test]
fn preserve_fds_pass_exactly_the_asked_fds() {
    require_root!();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3",
    ]);
    let id = b.id("fds");
    let data = b.dir.join("data");
    std::fs::write(&data, "via-fd-3").unwrap();
    let file = std::fs::File::open(&data).unwrap();
    let out = run_with_fd3(&b, &id, &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ls itself opens one fd for the directory it lists.
    let fds: Vec<&str> = stdout
        .split("via")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fds[..4],
        ["0", "1", "2", "3"],
        "fds in the container: {stdout}"
    );
    assert!(
        fds.len() <= 5,
        "unexpected fds leaked into the container: {stdout}"
    );
    assert!(stdout.ends_with("via-fd-3"), "{stdout}");
}

#[test]
fn without_preserve_fds_nothing_leaks() {
    require_root!();
    let b = Bundle::new(&["sh", "-c", "ls -l /proc/self/fd"]);
    let id = b.id("leak");
    let keep = std::fs::File::open("/etc/hostname").unwrap();
    let mut cmd = b.cmd();
    cmd.args(["run", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(Stdio::null());
    // An fd 3 without FD_CLOEXEC in hull's stdio, not asked to be passed.
    inherit_as_fd3(&mut cmd, &keep);
    let out = b.output_of(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("/etc/hostname"), "{stdout}");
    // 0, 1, 2, and the directory ls itself opened.
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains(" -> ") || l.ends_with(" 3"))
            .count()
            <= 4,
        "{stdout}"
    );
    assert!(
        !stdout.contains("memfd") && !stdout.contains("socket") && !stdout.contains("pipe"),
        "{stdout}"
    );
}

#[test]
fn a_created_container_holds_no_fd_the_caller_did_not_pass() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let id = b.id("held");
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).unwrap();
    let wr = std::fs::File::from(wr);
    let mut cmd = b.cmd();
    cmd.args(["create", "--bundle", b.dir.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // The write end of a pipe at fd 3 without FD_CLOEXEC, not asked to be
    // passed (as a shell's `exec 3>pipe` would leave it).
    inherit_as_fd3(&mut cmd, &wr);
    let out = b.output_of(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(wr);
    // No one holds the write end any more: the reader sees end-of-file,
    // though the container waits in "created". Not at once: a child another
    // test thread forks holds a copy of every fd of this process until its
    // exec, so the end-of-file is awaited (a held pipe never ends).
    let mut fds = [nix::poll::PollFd::new(
        rd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16));
    let mut buf = [0u8; 8];
    let got = nix::unistd::read(&rd, &mut buf);
    b.ok(&["delete", "--force", &id]);
    assert_eq!(got, Ok(0), "the created init holds the caller's pipe open");
}

#[test]
fn pidfd_socket_receives_a_pidfd_of_the_init() {
    require_root!();
    let b = Bundle::new(&["sleep", "100"]);
    let sock = b.dir.join("pidfd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = b.id("pidfd");
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    b.ok(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pidfd-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let (fd, _) = receiver.join().unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    assert!(link.to_str().unwrap().contains("pidfd"), "{link:?}");
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let pid = b.state(&id)["pid"].to_string();
    assert!(
        fdinfo
            .lines()
            .any(|l| l.starts_with("Pid:") && l.split_whitespace().nth(1) == Some(pid.as_str())),
        "{fdinfo}"
    );
}

#[test]
fn listen_fds_are_passed_when_addressed_to_hull() {
    require_root!();
    let b = Bundle::new(&["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"]);
    let id = b.id("listen");
    let data = b.dir.join("data");
    std::fs::write(&data, "socket-activated").unwrap();
    // LISTEN_PID must be hull's own pid: let a shell exec into hull.
    let script = format!(
        "LISTEN_PID=$$ LISTEN_FDS=1 exec {} --root {} run --bundle {} {id} 3<{}",
        hull_bin(),
        b.root.display(),
        b.dir.display(),
        data.display()
    );
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", &script]).stdin(Stdio::null());
    let out = b.output_of(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 1\nsocket-activated",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N, N a host directory handed to
/// the container, is refused; and a seccomp profile that denies getcwd(2)
/// (loaded before the cwd check when noNewPrivileges is false) does not
/// break the check for a good cwd (runtime-tools linux_seccomp).
#[test]
fn cwd_through_a_passed_host_directory_is_refused() {
    require_root!();
    let mut b = Bundle::new(&["ls"]);
    let host_dir = b.dir.join("host-secret");
    std::fs::create_dir_all(&host_dir).unwrap();
    let dir = std::fs::File::open(&host_dir).unwrap();
    let deny_getcwd = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]});
    b.config["process"]["noNewPrivileges"] = false.into();
    for seccomp in [None, Some(&deny_getcwd)] {
        if let Some(s) = seccomp {
            b.config["linux"]["seccomp"] = s.clone();
        }
        for (cwd, allowed) in [("/proc/self/fd/3", false), ("/tmp", true)] {
            b.config["process"]["cwd"] = cwd.into();
            b.save();
            let id = b.id("cwdfd");
            let out = run_with_fd3(&b, &id, &dir);
            let err = String::from_utf8_lossy(&out.stderr);
            let what = format!("cwd {cwd}, getcwd denied: {}", seccomp.is_some());
            assert_eq!(out.status.success(), allowed, "{what}: {err}");
            // Refused while resolving it inside the rootfs (no magic
            // links), before the chdir-time check is even reached.
            if !allowed {
                assert!(
                    err.contains("cwd /proc/self/fd/3: Too many symbolic links"),
                    "{what}: {err}"
                );
            }
        }
    }
}

#[test]
fn foreground_run_with_a_terminal_prints_plain_newlines() {
    require_root!();
    let mut b = Bundle::new(&["sh", "-c", "tty; echo one; echo two"]);
    b.config["process"]["terminal"] = serde_json::json!(true);
    b.save();
    let id = b.id("onlcr");
    let out = b.run(&id);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(
        text.ends_with("\none\ntwo\n") && !text.contains('\r'),
        "{text:?}"
    );
}

/// Started with stdout closed, hull opens /dev/null in its place before
/// anything else (as Rust's own start-up would, which hull skips): the
/// first file it opens, here the log, must not become its stdout and
/// receive what it prints.
#[test]
fn closed_stdout_becomes_dev_null() {
    let b = Bundle::new(&["true"]);
    let root = b.root.to_str().unwrap();
    let log = b.dir.join("hull.log");
    let script = format!(
        "exec 1>&-; {} --root {root} --log {} list",
        hull_bin(),
        log.display()
    );
    let st = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("STATUS"),
        "the table went into the log: {text}"
    );
}

/// A reader that went away (`hull list | head -1`): hull ends by SIGPIPE,
/// silently, as runc does (Go's runtime), not with a "failed printing"
/// abort on stderr.
#[test]
fn a_closed_stdout_pipe_ends_hull_by_sigpipe_as_runc() {
    use std::os::unix::process::ExitStatusExt;
    let b = Bundle::new(&["true"]);
    let root = b.root.to_str().unwrap().to_string();
    let mut runtimes = vec![hull_bin()];
    if let Some(runc) = runc_bin() {
        runtimes.push(runc.to_string());
    }
    for rt in runtimes {
        // The pipe's read end is gone before the runtime writes.
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        drop(r);
        let out = std::process::Command::new(&rt)
            .args(["--root", &root, "list"])
            .stdout(std::process::Stdio::from(w))
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{rt}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{rt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
