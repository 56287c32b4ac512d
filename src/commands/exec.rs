//! `exec`: the process comes from `--process` or from the container's own
//! process (in the config `create` saw) with the flags applied, as runc
//! builds it; then it is started in the container, in the foreground
//! (stdio, signals and the terminal proxied, its exit status ours) or
//! detached. Every failure is "exec failed: …" with exit status 255, as
//! runc's.

use std::os::unix::net::UnixStream;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{Process, Spec};

use crate::cli::ExecArgs;
use crate::container::{Status, Store};
use crate::launch::{self, ExecOpts};

/// The exit status of a failed exec, as runc's.
pub const FAILED: i32 = 255;

pub fn run(store: &Store, a: &ExecArgs) -> Result<i32> {
    match exec(store, a) {
        Ok(code) => Ok(code),
        Err(e) => {
            let msg = format!("exec failed: {e:#}");
            crate::logging::log(crate::logging::Level::Error, &msg);
            if crate::logging::logs_to_file() {
                eprintln!("{msg}");
            }
            Ok(FAILED)
        }
    }
}

fn exec(store: &Store, a: &ExecArgs) -> Result<i32> {
    let c = store.load(a.id())?;
    match c.status {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Creating => bail!("cannot exec in a container that is still being created"),
        Status::Paused if !a.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    let mut spec: Spec = c.saved_spec()?;
    let process = process_of(a, spec.process().clone())?;
    validate(&process)?;
    let tty = process.terminal().unwrap_or(false);
    if tty && a.detach && a.console_socket.is_none() {
        bail!("cannot allocate tty if hull will detach without setting console socket");
    }
    if !tty && a.console_socket.is_some() {
        bail!("cannot use console socket if hull will not detach or allocate tty");
    }
    spec.set_process(Some(process));
    // Foreground: signals are ours to forward from before the process
    // exists, and a terminal without a console socket is ours to proxy.
    // In a paused container the exec stage is frozen until `resume`: hull
    // waits for it with the default dispositions then, so that Ctrl-C or
    // SIGTERM still end that wait (the stage dies with its parent).
    let take = || crate::foreground::take_signals().context("setting up signal forwarding");
    let frozen = c.status == Status::Paused;
    let mut sigfd = if a.detach || frozen {
        None
    } else {
        Some(take()?)
    };
    let (ours, theirs) = if tty && a.console_socket.is_none() {
        let (x, y) = UnixStream::pair()?;
        (Some(x), Some(y))
    } else {
        (None, None)
    };
    let (pid, pidfd) = launch::exec(
        &c,
        &spec,
        ExecOpts {
            console_socket: a.console_socket.as_deref(),
            own_console: theirs,
            pidfd_socket: a.pidfd_socket.as_deref(),
            pid_file: a.pid_file.as_deref(),
            preserve_fds: a.preserve_fds,
            sub_cgroups: &a.cgroup,
            root: store.root(),
        },
    )?;
    if frozen && !a.detach {
        sigfd = Some(take()?);
        // Its SIGCHLD may have come before it was blocked: then it is lost.
        if let Some(code) = crate::foreground::reap(pid) {
            return Ok(code);
        }
    }
    let Some(sigfd) = sigfd else {
        return Ok(0);
    };
    let master = match ours {
        Some(s) => Some(crate::console::recv_master(&s).context("receiving the pty master")?),
        None => None,
    };
    Ok(crate::foreground::wait(pid, &pidfd, sigfd, master))
}

/// runc's getProcess: `--process` as given, or the container's process
/// with the command line's changes.
fn process_of(a: &ExecArgs, base: Option<Process>) -> Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        let mut v: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("parsing {path}"))?;
        // As runc's Go struct reads it: a missing user is uid 0, gid 0, and
        // a missing cwd is empty (which validation then refuses).
        if let Some(o) = v.as_object_mut() {
            o.entry("user")
                .or_insert(serde_json::json!({"uid": 0, "gid": 0}));
            o.entry("cwd").or_insert(serde_json::json!(""));
            inherit_from(o, base.as_ref());
        }
        crate::spec::scheduler_flag_names(&mut v);
        return serde_json::from_value(v).with_context(|| format!("parsing {path}"));
    }
    let mut p = base.ok_or_else(|| anyhow!("process property must not be empty"))?;
    let cmd = a.command();
    if cmd.is_empty() {
        bail!("exec args cannot be empty");
    }
    p.set_args(Some(cmd.to_vec()));
    if let Some(cwd) = a.cwd.as_deref().filter(|c| !c.is_empty()) {
        p.set_cwd(cwd.into());
    }
    if let Some(ap) = a.apparmor.as_deref().filter(|s| !s.is_empty()) {
        p.set_apparmor_profile(Some(ap.to_string()));
    }
    if let Some(l) = a.process_label.as_deref().filter(|s| !s.is_empty()) {
        p.set_selinux_label(Some(l.to_string()));
    }
    if !a.cap.is_empty() {
        add_caps(&mut p, &a.cap)?;
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(a.tty));
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        if let Some(g) = gid {
            user.set_gid(g.parse().map_err(|e| anyhow!("bad gid: {e}"))?);
        }
        user.set_uid(uid.parse().map_err(|e| anyhow!("bad uid: {e}"))?);
    }
    let mut gids = user.additional_gids().clone().unwrap_or_default();
    for &g in &a.additional_gids {
        let g = u32::try_from(g)
            .map_err(|_| anyhow!("additional-gids must be a positive number {g}"))?;
        gids.push(g);
    }
    if !gids.is_empty() {
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    Ok(p)
}

/// What a `--process` document leaves out comes from the container's own
/// process, as runc fills its init config: the capabilities (never hull's
/// full set), no_new_privileges, the LSM labels, the rlimits.
fn inherit_from(p: &mut serde_json::Map<String, serde_json::Value>, base: Option<&Process>) {
    let Some(base) = base.and_then(|b| serde_json::to_value(b).ok()) else {
        return;
    };
    for key in [
        "capabilities",
        "noNewPrivileges",
        "apparmorProfile",
        "selinuxLabel",
        "rlimits",
    ] {
        let missing = match p.get(key) {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::String(s)) => s.is_empty(),
            Some(serde_json::Value::Array(a)) => a.is_empty() && key == "rlimits",
            Some(_) => false,
        };
        if missing && let Some(v) = base.get(key) {
            p.insert(key.to_string(), v.clone());
        }
    }
}

/// `--cap`: added to the bounding, effective and permitted sets (and the
/// ambient one when the process has an inheritable set), as runc.
fn add_caps(p: &mut Process, names: &[String]) -> Result<()> {
    let mut caps = p.capabilities().clone().unwrap_or_default();
    let parse = |n: &String| -> Result<oci_spec::runtime::Capability> {
        let full = if n.to_ascii_uppercase().starts_with("CAP_") {
            n.to_ascii_uppercase()
        } else {
            format!("CAP_{}", n.to_ascii_uppercase())
        };
        serde_json::from_value(serde_json::Value::String(full))
            .map_err(|_| anyhow!("unknown capability {n:?}"))
    };
    let ambient = caps.inheritable().is_some();
    for n in names {
        let cap = parse(n)?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        if ambient {
            caps.set_ambient(add(caps.ambient()));
        }
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

/// runc's validateProcessSpec.
fn validate(p: &Process) -> Result<()> {
    if p.cwd().as_os_str().is_empty() {
        bail!("Cwd property must not be empty");
    }
    if !p.cwd().is_absolute() {
        bail!("Cwd must be an absolute path");
    }
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("args must not be empty");
    }
    if p.selinux_label().as_ref().is_some_and(|l| !l.is_empty()) && !crate::host::selinux_enabled()
    {
        bail!("selinux label is specified in config, but selinux is disabled or not supported");
    }
    if p.apparmor_profile().as_ref().is_some_and(|l| !l.is_empty())
        && !crate::host::apparmor_enabled()
    {
        bail!("apparmor profile is specified, but AppArmor is not enabled on this host");
    }
    Ok(())
}
