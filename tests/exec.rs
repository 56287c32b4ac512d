//! `hull exec`: a new process in a running container, set up from the
//! config `create` saw, with every flag runc has. Each test drives the real
//! binary on a real container and checks what a caller sees.

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A started container running `sleep 1000`.
fn running(edit: impl FnOnce(&mut Bundle)) -> (Bundle, String) {
    let mut b = Bundle::new(&["sleep", "1000"]);
    edit(&mut b);
    b.save();
    let id = b.id("exec");
    b.create(&id);
    b.ok(&["start", &id]);
    b.wait_status(&id, "running");
    (b, id)
}

/// `hull exec ARGS`, output captured.
fn exec(b: &Bundle, args: &[&str]) -> std::process::Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    b.hull(&all)
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn exit_status_output_and_signals() {
    require_root!();
    let (b, id) = running(|_| {});
    let o = exec(&b, &[&id, "echo", "hello", "world"]);
    assert_eq!(
        (o.status.code(), out(&o).as_str()),
        (Some(0), "hello world\n")
    );
    let o = exec(&b, &[&id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = exec(&b, &[&id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137), "128+SIGKILL");
    // Flags after the id belong to the command, as with runc.
    let o = exec(&b, &[&id, "ls", "-d", "/"]);
    assert_eq!(out(&o), "/\n");
    let o = exec(&b, &[&id, "--", "echo", "-n", "x"]);
    assert_eq!(out(&o), "x");
    // A program that is not there: runc's exit status and message.
    let o = exec(&b, &[&id, "no-such-program"]);
    assert_eq!(o.status.code(), Some(255));
    let e = err(&o);
    assert!(
        e.contains("exec failed: ")
            && e.contains("no-such-program")
            && e.contains("executable file not found in $PATH"),
        "{e}"
    );
    assert!(exec(&b, &[&id]).status.code() == Some(255));
}

#[test]
fn stdin_is_passed_through() {
    require_root!();
    let (b, id) = running(|_| {});
    let mut child = b
        .cmd()
        .args(["exec", &id, "sh", "-c", "tr a-z A-Z; echo end"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "PIPED IN\nend\n");
}

#[test]
fn signals_are_forwarded_to_the_process() {
    require_root!();
    let (b, id) = running(|_| {});
    let mut child = b
        .cmd()
        .args([
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(3));
}

#[test]
fn joins_every_namespace_of_the_init() {
    require_root!();
    let (b, id) = running(|b| {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    });
    let init = b.state(&id)["pid"].as_i64().unwrap();
    let script = "for n in pid mnt net ipc uts cgroup user; do readlink /proc/self/ns/$n; done";
    let o = exec(&b, &[&id, "sh", "-c", script]);
    assert!(o.status.success(), "{}", err(&o));
    let want: String = ["pid", "mnt", "net", "ipc", "uts", "cgroup", "user"]
        .iter()
        .map(|n| {
            format!(
                "{}\n",
                std::fs::read_link(format!("/proc/{init}/ns/{n}"))
                    .unwrap()
                    .display()
            )
        })
        .collect();
    assert_eq!(out(&o), want);
    // Really inside the pid namespace: a small pid, the init is 1.
    let o = exec(&b, &[&id, "sh", "-c", "echo $$; cat /proc/1/cmdline"]);
    let text = out(&o);
    let mut lines = text.lines();
    let pid: i64 = lines.next().unwrap().parse().unwrap();
    assert!(pid > 1 && pid < 100, "pid {pid}");
    assert_eq!(lines.next(), Some("sleep\u{0}1000\u{0}"));
    // And in its cgroup.
    let o = exec(&b, &[&id, "cat", "/proc/self/cgroup"]);
    let host = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert_eq!(out(&o).lines().count(), host.lines().count());
}

#[test]
fn env_cwd_user_and_groups() {
    require_root!();
    let (b, id) = running(|b| {
        b.config["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FROM_CONFIG=1"));
    });
    let o = exec(
        &b,
        &[
            "--env",
            "A=b c",
            "-e",
            "FROM_CONFIG=2",
            "--cwd",
            "/tmp",
            &id,
            "sh",
            "-c",
            "echo $A; echo $FROM_CONFIG; pwd; echo $HOME",
        ],
    );
    assert_eq!(out(&o), "b c\n2\n/tmp\n/root\n", "{}", err(&o));
    let o = exec(
        &b,
        &[
            "--user",
            "1000:1000",
            "--additional-gids",
            "10",
            "-g",
            "20",
            &id,
            "sh",
            "-c",
            "id -u; id -g; id -G; echo $HOME",
        ],
    );
    assert_eq!(out(&o), "1000\n1000\n1000 10 20\n/\n", "{}", err(&o));
    let o = exec(&b, &["-u", "65534", &id, "id", "-u"]);
    assert_eq!(out(&o), "65534\n");
    let o = exec(&b, &["-g", "-1", &id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(err(&o).contains("additional-gids must be a positive number -1"));
}

fn status_line(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn capabilities_and_no_new_privs() {
    require_root!();
    let (b, id) = running(|b| {
        b.config["process"]["noNewPrivileges"] = json!(false);
    });
    let o = exec(&b, &[&id, "cat", "/proc/self/status"]);
    let base = out(&o);
    assert_eq!(status_line(&base, "CapEff"), "0000000020000420");
    assert_eq!(status_line(&base, "NoNewPrivs"), "0");
    let o = exec(
        &b,
        &[
            "--cap",
            "CAP_NET_ADMIN",
            "-c",
            "sys_ptrace",
            "--no-new-privs",
            &id,
            "cat",
            "/proc/self/status",
        ],
    );
    let text = out(&o);
    // NET_ADMIN is bit 12, SYS_PTRACE bit 19.
    let want = format!("{:016x}", 0x20000420u64 | 1 << 12 | 1 << 19);
    for f in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_line(&text, f), want, "{f}");
    }
    // No inheritable set in the config: no ambient ones either (runc).
    assert_eq!(status_line(&text, "CapAmb"), "0000000000000000");
    assert_eq!(status_line(&text, "NoNewPrivs"), "1");
    let o = exec(&b, &["--cap", "CAP_NOPE", &id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(err(&o).contains("unknown capability"), "{}", err(&o));
}

#[test]
fn process_json_is_used_as_is() {
    require_root!();
    let (b, id) = running(|_| {});
    let p = b.dir.join("process.json");
    std::fs::write(
        &p,
        json!({
            "terminal": false,
            "user": {"uid": 5, "gid": 6},
            "args": ["sh", "-c", "id -u; id -g; pwd; echo $X"],
            "env": ["X=from-json", "PATH=/bin"],
            "cwd": "/dev",
            "noNewPrivileges": true
        })
        .to_string(),
    )
    .unwrap();
    let o = exec(&b, &["--process", p.to_str().unwrap(), &id]);
    assert_eq!(out(&o), "5\n6\n/dev\nfrom-json\n", "{}", err(&o));
    std::fs::write(&p, json!({"args": ["true"], "cwd": "rel"}).to_string()).unwrap();
    let o = exec(&b, &["-p", p.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        err(&o).contains("Cwd must be an absolute path"),
        "{}",
        err(&o)
    );
    std::fs::write(&p, "{not json").unwrap();
    assert_eq!(
        exec(&b, &["-p", p.to_str().unwrap(), &id]).status.code(),
        Some(255)
    );
}

#[test]
fn the_config_create_saw_is_used() {
    require_root!();
    let (mut b, id) = running(|b| {
        b.config["process"]["env"] = json!(["PATH=/bin", "SEEN=at-create"]);
    });
    b.config["process"]["env"] = json!(["PATH=/bin", "SEEN=changed-later"]);
    b.save();
    let o = exec(&b, &[&id, "sh", "-c", "echo $SEEN"]);
    assert_eq!(out(&o), "at-create\n");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    let o = exec(&b, &[&id, "true"]);
    assert!(o.status.success(), "the bundle is not needed: {}", err(&o));
}

#[test]
fn detached_with_pid_file_and_pidfd_socket() {
    require_root!();
    let (b, id) = running(|_| {});
    let pidfile = b.dir.join("exec.pid");
    let sock = b.dir.join("pidfd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let o = exec(
        &b,
        &[
            "-d",
            "--pid-file",
            pidfile.to_str().unwrap(),
            "--pidfd-socket",
            sock.to_str().unwrap(),
            &id,
            "sleep",
            "100",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert!(alive(pid as i64));
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\u{0}100\u{0}");
    // Reparented away from hull, which has exited.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(ppid, o.status.code().unwrap_or(0));
    let (fd, _) = receive_fd(&listener);
    // SAFETY: pidfd_send_signal with signal 0 only checks the target.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            0,
            0,
            0,
        )
    };
    assert_eq!(r, 0, "the pidfd refers to the exec'd process");
    // It is in the container: killing the container takes it along.
    b.ok(&["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    for _ in 0..200 {
        if !alive(pid as i64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid as i64));
}

#[test]
fn tty_through_a_console_socket_and_in_the_foreground() {
    require_root!();
    let (b, id) = running(|_| {});
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let o = exec(
        &b,
        &[
            "-t",
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "tty; sleep 2",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let (fd, name) = receive_fd(&listener);
    assert_eq!(name, "/dev/ptmx");
    let mut m = std::fs::File::from(fd);
    let text = read_until(&mut m, "\n", Duration::from_secs(5));
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    // Detached without a socket: refused, as runc.
    let o = exec(&b, &["-t", "-d", &id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        err(&o).contains("cannot allocate tty if hull will detach without setting console socket")
    );
    // A console socket without a tty: refused.
    let o = exec(
        &b,
        &["--console-socket", sock.to_str().unwrap(), &id, "true"],
    );
    assert_eq!(o.status.code(), Some(255));
    // Foreground: hull proxies the pty; lines end in "\n" (ONLCR off).
    let o = exec(&b, &["-t", &id, "sh", "-c", "tty; echo a; echo b"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(
        text.ends_with("\na\nb\n") && !text.contains('\r'),
        "{text:?}"
    );
}

#[test]
fn paused_container_is_refused_unless_ignore_paused() {
    require_root!();
    let (b, id) = running(|_| {});
    b.ok(&["pause", &id]);
    let o = exec(&b, &[&id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        err(&o).contains("cannot exec in a paused container (use --ignore-paused to override)")
    );
    // With --ignore-paused the process is born frozen, and runs on resume.
    let mut child = b
        .cmd()
        .args(["exec", "--ignore-paused", &id, "echo", "thawed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "frozen until resume");
    b.ok(&["resume", &id]);
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "thawed\n");
    // A stopped container.
    b.ok(&["kill", &id, "KILL"]);
    b.wait_status(&id, "stopped");
    let o = exec(&b, &[&id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(err(&o).contains("cannot exec in a stopped container"));
    let o = exec(&b, &["no-such-container", "true"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(err(&o).contains("container does not exist"));
}

#[test]
fn created_container_takes_exec_as_runc_does() {
    require_root!();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = b.id("created");
    b.create(&id);
    let o = exec(&b, &[&id, "echo", "in-created"]);
    assert_eq!(out(&o), "in-created\n", "{}", err(&o));
    assert_eq!(b.status(&id), "created");
}

#[test]
fn seccomp_profile_of_the_container_applies() {
    require_root!();
    let (b, id) = running(|b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let o = exec(
        &b,
        &[
            &id,
            "sh",
            "-c",
            "mkdir /tmp/x; grep Seccomp: /proc/self/status",
        ],
    );
    assert!(err(&o).contains("Operation not permitted"), "{}", err(&o));
    assert!(out(&o).contains("Seccomp:\t2"), "{}", out(&o));
}

#[test]
fn user_namespace_container() {
    require_root!();
    let (b, id) = running(|b| b.add_user_namespace(100000, 65536));
    let init = b.state(&id)["pid"].as_i64().unwrap();
    let o = exec(
        &b,
        &[
            &id,
            "sh",
            "-c",
            "id -u; readlink /proc/self/ns/user; touch /dev/shm/f; stat -c %u /dev/shm/f",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let ns = std::fs::read_link(format!("/proc/{init}/ns/user")).unwrap();
    assert_eq!(out(&o), format!("0\n{}\n0\n", ns.display()));
    let o = exec(&b, &["-u", "1000", &id, "id", "-u"]);
    assert_eq!(out(&o), "1000\n", "{}", err(&o));
}

#[test]
fn container_that_joined_a_pid_namespace_by_path() {
    require_root!();
    let (a, ida) = running(|_| {});
    let apid = a.state(&ida)["pid"].as_i64().unwrap();
    let (b, idb) = running(|b| {
        for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "pid" {
                ns["path"] = format!("/proc/{apid}/ns/pid").into();
            }
        }
    });
    let o = exec(
        &b,
        &[
            &idb,
            "sh",
            "-c",
            "readlink /proc/self/ns/pid; cat /proc/1/cmdline",
        ],
    );
    let want = std::fs::read_link(format!("/proc/{apid}/ns/pid")).unwrap();
    assert_eq!(
        out(&o),
        format!("{}\nsleep\u{0}1000\u{0}", want.display()),
        "{}",
        err(&o)
    );
}

#[test]
fn cwd_through_a_host_fd_is_refused() {
    require_root!();
    let (b, id) = running(|_| {});
    for cwd in [
        "/proc/self/fd/3",
        "/proc/self/fd/4",
        "/proc/self/fd/5",
        "/proc/self/fd/7",
    ] {
        let o = exec(&b, &["--cwd", cwd, &id, "pwd"]);
        assert_eq!(o.status.code(), Some(255), "{cwd}: {}", out(&o));
        assert!(out(&o).is_empty(), "{cwd}: ran in {}", out(&o));
    }
    // Only stdio crosses into the process.
    let o = exec(&b, &[&id, "ls", "/proc/self/fd"]);
    assert_eq!(out(&o), "0\n1\n2\n3\n", "ls holds fd 3 for the directory");
}

#[test]
fn preserve_fds_and_sub_cgroups() {
    require_root!();
    let (b, id) = running(|_| {});
    let file = std::fs::File::create(b.dir.join("fd3")).unwrap();
    let mut cmd = b.cmd();
    cmd.args([
        "exec",
        "--preserve-fds",
        "1",
        &id,
        "sh",
        "-c",
        "echo via-fd3 >&3",
    ])
    .stdin(Stdio::null());
    inherit_as_fd3(&mut cmd, &file);
    let o = output_of(&mut cmd);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string(b.dir.join("fd3")).unwrap(),
        "via-fd3\n"
    );
    // --cgroup: an existing sub-cgroup of the container's.
    let dirs = cgroup_dirs(&id);
    for d in &dirs {
        let _ = std::fs::create_dir(d.join("sub"));
        // A v1 cpuset cgroup takes tasks only once it has cpus and mems
        // (on v2 the files exist only where the controller is enabled).
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let sub = d.join("sub").join(f);
            let empty = std::fs::read_to_string(&sub).is_ok_and(|v| v.trim().is_empty());
            if let (true, Ok(v)) = (empty, std::fs::read_to_string(d.join(f))) {
                std::fs::write(&sub, v.trim()).unwrap();
            }
        }
    }
    let o = exec(&b, &["--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    assert!(o.status.success(), "{}", err(&o));
    for line in out(&o)
        .lines()
        .filter(|l| !l.contains("name=") && !l.ends_with(':'))
    {
        assert!(line.ends_with("/sub"), "{line}");
    }
    let o = exec(&b, &["--cgroup", "nope", &id, "true"]);
    assert_eq!(o.status.code(), Some(255));
    // runc's words (issue 25, item 10): the cgroup.procs it would write.
    assert!(
        err(&o).contains("/nope/cgroup.procs: no such file or directory"),
        "{}",
        err(&o)
    );
    let o = exec(&b, &["--cgroup", "../..", &id, "true"]);
    assert!(err(&o).contains("is not a sub cgroup path"), "{}", err(&o));
    for d in &dirs {
        let _ = std::fs::remove_dir(d.join("sub"));
    }
}

#[test]
fn lsm_flags_fail_clearly_without_the_lsm() {
    require_root!();
    let (b, id) = running(|_| {});
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        let o = exec(
            &b,
            &[
                "--process-label",
                "system_u:system_r:container_t:s0",
                &id,
                "true",
            ],
        );
        assert_eq!(o.status.code(), Some(255));
        assert!(err(&o).contains("selinux"), "{}", err(&o));
    } else {
        eprintln!("SELinux is on here: the refusal path is not exercised");
    }
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'));
    if !apparmor {
        let o = exec(&b, &["--apparmor", "unconfined", &id, "true"]);
        assert_eq!(o.status.code(), Some(255));
        assert!(err(&o).contains("AppArmor"), "{}", err(&o));
    } else {
        eprintln!("AppArmor is on here: the refusal path is not exercised");
    }
}

#[test]
fn twenty_concurrent_execs() {
    require_root!();
    let (b, id) = running(|_| {});
    let hull = hull_bin();
    let kids: Vec<_> = (0..20)
        .map(|i| {
            Command::new(&hull)
                .arg("--root")
                .arg(&b.root)
                .args(["exec", &id, "sh", "-c", &format!("echo out-{i}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, k) in kids.into_iter().enumerate() {
        let o = k.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("out-{i}\n"));
    }
    // Nothing is left behind: only the init remains in the container.
    let dir = cgroup_dirs(&id)
        .into_iter()
        .find(|d| d.join("cgroup.procs").exists())
        .unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.lines().count(), 1, "{procs}");
    assert_eq!(b.status(&id), "running");
}

#[test]
fn a_process_json_without_capabilities_gets_the_containers_not_hulls() {
    require_root!();
    let (b, id) = running(|_| {});
    let init = b.state(&id)["pid"].as_i64().unwrap();
    let want = status_line(
        &std::fs::read_to_string(format!("/proc/{init}/status")).unwrap(),
        "CapEff",
    );
    let p = b.dir.join("nocaps.json");
    std::fs::write(
        &p,
        json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"]}).to_string(),
    )
    .unwrap();
    let o = exec(&b, &["-p", p.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert_eq!(
        status_line(&text, "CapEff"),
        want,
        "the container's capabilities"
    );
    assert_eq!(status_line(&text, "CapBnd"), want);
    assert_eq!(
        status_line(&text, "NoNewPrivs"),
        "1",
        "the container's no_new_privileges"
    );
}

#[test]
fn the_container_never_sees_a_process_of_ours_with_the_hosts_view() {
    require_root!();
    let (b, id) = running(|_| {});
    // A watcher in the container looks for any process in its pid
    // namespace whose mount namespace is not the container's.
    let o = exec(
        &b,
        &[
            "-d",
            &id,
            "sh",
            "-c",
            "me=$(readlink /proc/self/ns/mnt); while :; do for p in /proc/[0-9]*; do \
             l=$(readlink $p/ns/mnt 2>/dev/null) && [ \"$l\" != \"$me\" ] && echo \"$p $l\" >> /dev/shm/seen; \
             done; done",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    for _ in 0..20 {
        assert!(exec(&b, &[&id, "true"]).status.success());
    }
    let o = exec(
        &b,
        &[&id, "sh", "-c", "cat /dev/shm/seen 2>/dev/null; true"],
    );
    assert_eq!(out(&o), "", "seen in the container: {}", out(&o));
}
