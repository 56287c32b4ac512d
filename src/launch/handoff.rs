//! What `create` hands its caller besides the container: the pid file,
//! written atomically, and the init's pidfd over `--pidfd-socket`; and the
//! descriptors the caller hands the container (LISTEN_FDS,
//! `--preserve-fds`).

use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result, anyhow, bail};

/// LISTEN_FDS is honoured only when LISTEN_PID names us (sd_listen_fds).
pub fn listen_fds() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !pid_ok {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How many fds from 3 up pass into the container: LISTEN_FDS plus
/// `preserve`. Refused when that cannot be, rather than wrapping around.
pub fn passed_fds(preserve: u32) -> Result<u32> {
    let listen = listen_fds();
    let total = listen
        .checked_add(preserve)
        .ok_or_else(|| anyhow!("--preserve-fds {preserve}: too many file descriptors"))?;
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    if u64::from(total) + 3 > limit {
        bail!(
            "--preserve-fds {preserve}{}: fds up to {} cannot be open (the open file limit is {limit})",
            if listen > 0 {
                format!(" with LISTEN_FDS={listen}")
            } else {
                String::new()
            },
            u64::from(total) + 2
        );
    }
    Ok(total)
}

/// Every fd the container is to inherit must be open when hull starts.
pub fn check_passed_fds(preserve: u32) -> Result<()> {
    let total = passed_fds(preserve)?;
    for fd in 3..3 + total as RawFd {
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            bail!("--preserve-fds/LISTEN_FDS: file descriptor {fd} is not open");
        }
    }
    Ok(())
}

/// Write the pid file atomically (temp file + rename), as runc does. The
/// temporary file is made with O_EXCL|O_NOFOLLOW: a symlink planted at its
/// name is never followed (one left by an earlier, killed hull is removed
/// first; unlink does not follow symlinks either).
pub fn write_pid_file(path: &str, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let mut f = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)
                .with_context(|| format!("removing stale {}", tmp.display()))?;
            open()
        }
        r => r,
    }
    .with_context(|| format!("writing pid file {}", tmp.display()))?;
    f.write_all(pid.to_string().as_bytes())
        .with_context(|| format!("writing pid file {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("writing pid file {}", path.display()))?;
    Ok(())
}

/// Tell the caller about a started process: its pid in the pid file, its
/// pidfd over the pidfd socket.
pub fn announce(
    pid_file: Option<&str>,
    pidfd_socket: Option<&str>,
    pid: i32,
    pidfd: &std::os::fd::OwnedFd,
) -> Result<()> {
    if let Some(path) = pid_file {
        write_pid_file(path, pid)?;
    }
    if let Some(path) = pidfd_socket {
        use std::os::fd::AsRawFd;
        send_fd(path, pidfd.as_raw_fd()).with_context(|| format!("sending pidfd to {path}"))?;
    }
    Ok(())
}

/// The console socket for a stage: the caller's (`--console-socket`),
/// or hull's own end for a foreground terminal it proxies.
pub fn console_fd(
    socket: Option<&str>,
    own: &Option<UnixStream>,
    min_fd: RawFd,
) -> Result<Option<std::os::fd::OwnedFd>> {
    use crate::channel::raise;
    use std::os::fd::OwnedFd;
    Ok(match (socket, own) {
        (Some(path), _) => {
            let s = UnixStream::connect(path)
                .with_context(|| format!("connecting to console socket {path}"))?;
            Some(raise(OwnedFd::from(s), min_fd)?)
        }
        (None, Some(s)) => Some(raise(OwnedFd::from(s.try_clone()?), min_fd)?),
        (None, None) => None,
    })
}

/// Connect to a unix socket and pass one fd with SCM_RIGHTS.
pub fn send_fd(path: &str, fd: RawFd) -> Result<()> {
    let s = UnixStream::connect(path)?;
    crate::console::send_fd(&s, fd, "pidfd")?;
    Ok(())
}

/// The fds 3.. that belong to the container, and what marks them.
pub struct PassedFds {
    /// LISTEN_FDS (when addressed to us), then --preserve-fds.
    pub count: u32,
    /// hull's own fds go at or above this.
    pub min_fd: RawFd,
    /// LISTEN_FDS/LISTEN_PID for the container.
    pub env: Vec<String>,
}

impl PassedFds {
    pub fn new(preserve: u32) -> Result<PassedFds> {
        let count = passed_fds(preserve)?;
        let listen = listen_fds();
        let env = if listen > 0 {
            vec![format!("LISTEN_FDS={listen}"), "LISTEN_PID=1".to_string()]
        } else {
            Vec::new()
        };
        Ok(PassedFds {
            count,
            min_fd: 3 + count as RawFd,
            env,
        })
    }
}
