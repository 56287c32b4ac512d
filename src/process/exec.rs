//! The final step: args[0] found as execvp would, and the execve, with the
//! seccomp filter loaded right before it.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Result, StageError};
use crate::sys;

/// What execve needs, resolved before `start` so a missing program fails
/// `create` with a clear message instead of failing later in the dark.
pub struct Exec {
    path: CString,
    /// argv and envp, laid out before the filter is loaded: after it,
    /// nothing but the hand-over to the agent, the last word and execve.
    argv: sys::CArray,
    envp: sys::CArray,
    /// A filter to load right before execve (no_new_privs is set).
    seccomp: Option<crate::seccomp::Filter>,
    agent: Option<crate::seccomp::notify::Agent>,
}

/// Find args[0] with the container's PATH and freeze what execve needs.
pub fn resolve(
    process: &oci_spec::runtime::Process,
    env: Vec<String>,
    seccomp: Option<crate::seccomp::Filter>,
    agent: Option<crate::seccomp::notify::Agent>,
) -> Result<Exec> {
    let args = process.args().as_deref().unwrap_or(&[]);
    let arg0 = args
        .first()
        .ok_or_else(|| StageError::new("args must not be empty"))?;
    let path = look_path(arg0, &env)?;
    Ok(Exec {
        path: cstring(path.to_str().unwrap_or(arg0), "args[0]")?,
        argv: sys::CArray::new(
            args.iter()
                .map(|a| cstring(a, "args"))
                .collect::<Result<_>>()?,
        ),
        envp: sys::CArray::new(
            env.iter()
                .map(|e| cstring(e, "env"))
                .collect::<Result<_>>()?,
        ),
        seccomp,
        agent,
    })
}

impl Exec {
    /// The process's environment, as it will exec with it.
    pub fn env(&self) -> Vec<String> {
        self.envp.strings()
    }

    /// Load the seccomp filter now rather than right before execve: the
    /// startContainer hooks run under it (as with runc).
    pub fn load_seccomp_early(&mut self) -> Result<()> {
        match self.seccomp.take() {
            Some(filter) => load_seccomp(&filter, self.agent.take()),
            None => Ok(()),
        }
    }
}

/// Load the filter, and hand its notify fd (NOTIFY rules) to the agent
/// before anything else runs under it.
pub fn load_seccomp(
    filter: &crate::seccomp::Filter,
    agent: Option<crate::seccomp::notify::Agent>,
) -> Result<()> {
    let notify_fd = crate::seccomp::load(filter).map_err(StageError::new)?;
    match (notify_fd, agent) {
        (Some(fd), Some(agent)) => agent.hand_over(&fd).map_err(StageError::new),
        (Some(_), None) => Err(StageError::new(
            "seccomp: a notify fd but no agent to hand it to",
        )),
        _ => Ok(()),
    }
}

pub fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| StageError::new(format!("{what} contains a NUL byte: {s:?}")))
}

/// Say so on `announce` (whoever waits to learn that the process runs),
/// load the filter, execve. Returns only on failure.
pub fn exec(exec: Exec, announce: Option<&crate::channel::Channel>) -> StageError {
    if let Some(chan) = announce {
        // Best effort: a gone listener is no reason not to run.
        let _ = chan.send(&crate::channel::FromInit::Execing);
    }
    if let Some(filter) = &exec.seccomp {
        // The last thing before execve: a strict profile need allow nothing
        // but execve itself (and sendmsg, for a NOTIFY profile's agent).
        if let Err(e) = load_seccomp(filter, exec.agent) {
            return e;
        }
    }
    let err = sys::execve_prepared(&exec.path, &exec.argv, &exec.envp);
    StageError {
        msg: format!("exec {}: {}", exec.path.to_string_lossy(), go_desc(err)),
        errno: Some(err),
    }
}

/// An errno as Go spells it (`no such file or directory`): runc's messages
/// do, and callers match them (Docker turns "no such file or directory"
/// and "permission denied" from exec into exit codes 127 and 126).
pub fn go_desc(e: Errno) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => desc.to_string(),
    }
}

/// execve's check, from the mode bits and the effective ids, groups and
/// CAP_DAC_OVERRIDE (which allows a file any x bit allows). ACLs aside.
fn executable_by_mode(md: &std::fs::Metadata) -> std::result::Result<(), Errno> {
    use std::os::unix::fs::MetadataExt;
    let mode = md.mode();
    if mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    let in_group = nix::unistd::getegid().as_raw() == md.gid()
        || nix::unistd::getgroups().is_ok_and(|g| g.iter().any(|g| g.as_raw() == md.gid()));
    let bits = if nix::unistd::geteuid().as_raw() == md.uid() {
        mode >> 6
    } else if in_group {
        mode >> 3
    } else {
        mode
    };
    let dac_override = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_DAC_OVERRIDE,
    );
    if bits & 1 != 0 || dac_override.unwrap_or(false) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Resolve args[0] as execvp would, with the container's PATH, and check
/// that it is an executable regular file.
fn look_path(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> std::result::Result<(), Errno> {
        let md = std::fs::metadata(p)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
        if md.is_dir() {
            return Err(Errno::EACCES);
        }
        // With the effective ids and capabilities, as execve will check
        // (access(2) takes the real ids and drops a non-root user's
        // capabilities: CAP_DAC_OVERRIDE over a root-owned 0744 binary).
        match nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            p,
            nix::unistd::AccessFlags::X_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        ) {
            // A seccomp profile loaded already (no no_new_privs) that does
            // not know faccessat2 answers EPERM (glibc falls back only on
            // ENOSYS): decide from the mode, as Go does.
            Err(Errno::EPERM) => executable_by_mode(&md),
            r => r,
        }
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) => Err(StageError {
                msg: format!("exec {arg0}: {}", go_desc(e)),
                errno: Some(e),
            }),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        match check(&p) {
            Ok(()) => return Ok(p),
            Err(Errno::EACCES) => denied = Some(p),
            Err(_) => {}
        }
    }
    match denied {
        Some(p) => Err(StageError {
            msg: format!("exec: {:?}: permission denied", p.display().to_string()),
            errno: Some(Errno::EACCES),
        }),
        None => Err(StageError {
            msg: format!("exec: {arg0:?}: executable file not found in $PATH"),
            errno: Some(Errno::ENOENT),
        }),
    }
}

/// HOME for `uid` from the container's /etc/passwd, "/" otherwise. The
/// file is the image's: it is read only if it is a regular file (a FIFO
/// there would hang the container's start), and only its first megabyte.
pub fn home_of(uid: u32) -> String {
    home_in(&read_passwd().unwrap_or_default(), uid).unwrap_or_else(|| "/".into())
}

fn read_passwd() -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const LIMIT: u64 = 1 << 20;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open("/etc/passwd")
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(LIMIT).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn home_in(passwd: &[u8], uid: u32) -> Option<String> {
    crate::procfs::lines(passwd)
        .map(|l| l.split(|&b| b == b':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && crate::procfs::number::<u32>(f[2]) == Some(uid))
        .and_then(|f| String::from_utf8(f[5].to_vec()).ok())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_are_spelled_as_go_does() {
        assert_eq!(go_desc(Errno::ENOENT), "no such file or directory");
        assert_eq!(go_desc(Errno::EACCES), "permission denied");
        assert_eq!(go_desc(Errno::ENOEXEC), "exec format error");
    }

    #[test]
    fn home_comes_from_the_users_line() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nbad\xff:x:7:7::/h\xe9:/bin/sh\n\
                       app:x:1000:1000::/home/app:/bin/sh\nnohome:x:5:5:::/bin/sh\n";
        assert_eq!(home_in(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(home_in(passwd, 1000).as_deref(), Some("/home/app"));
        assert_eq!(home_in(passwd, 7), None, "not UTF-8");
        assert_eq!(home_in(passwd, 5), None, "empty");
        assert_eq!(home_in(passwd, 42), None);
    }
}
