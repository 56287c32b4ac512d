//! `criu swrk 3`: CRIU as hull's child, speaking its RPC over a
//! SOCK_SEQPACKET socket at its fd 3 (one message per packet; a reply may
//! carry an fd, the console master of a restored terminal).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, recv, recvmsg, send,
    socketpair,
};

use super::rpc::{ReqType, Request, Response, Version};

/// A running `criu swrk` and our end of its socket.
pub struct Swrk {
    sock: OwnedFd,
    child: Child,
}

/// The largest message accepted from CRIU (its replies are small; runc
/// reads into 40 KiB).
const MAX_MESSAGE: usize = 1 << 20;

impl Swrk {
    /// Start `criu swrk 3`: its fd 3 is the socket, `extra` become its
    /// fds 4, 5, … (what `inherit_fd` options name); its stdio is closed
    /// off (/dev/null).
    pub fn spawn(criu: &Path, extra: &[RawFd]) -> io::Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let theirs_fd = theirs.as_raw_fd();
        let extra: Vec<RawFd> = extra.to_vec();
        let mut cmd = Command::new(criu);
        cmd.args(["swrk", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and
        // makes only async-signal-safe calls (dup2, fcntl) on fds; `extra`
        // was collected before the fork, nothing is allocated. Callers pass
        // fds at or above 4 + extra.len() (hull raises its fds), so no
        // target overwrites a source not yet duplicated.
        unsafe {
            cmd.pre_exec(move || {
                keep_at(theirs_fd, 3)?;
                for (i, &fd) in extra.iter().enumerate() {
                    keep_at(fd, 4 + i as RawFd)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(theirs);
        Ok(Swrk { sock: ours, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&self, req: &Request) -> io::Result<()> {
        send(self.sock.as_raw_fd(), &req.encode(), MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// The next message, and the fd it carries if any. EOF (CRIU exited
    /// without answering) is an error.
    pub fn recv(&self) -> io::Result<(Response, Option<OwnedFd>)> {
        let fd = self.sock.as_raw_fd();
        // The packet's whole size, without taking it.
        let mut probe = [0u8; 1];
        let size = recv(fd, &mut probe, MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC)?;
        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "criu closed its socket without an answer",
            ));
        }
        if size > MAX_MESSAGE {
            return Err(io::Error::other(format!("criu sent a {size}-byte message")));
        }
        let mut buf = vec![0u8; size];
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let mut passed = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just installed this fd for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                    passed.get_or_insert(owned);
                }
            }
        }
        let n = msg.bytes;
        let resp = Response::decode(&buf[..n.min(size)]).map_err(io::Error::other)?;
        Ok((resp, passed))
    }

    /// Wait for CRIU to exit (after its last answer).
    pub fn wait(mut self) -> io::Result<std::process::ExitStatus> {
        drop(self.sock);
        self.child.wait()
    }
}

/// In the child before exec: `fd` at `target`, open across exec. Only
/// async-signal-safe calls.
fn keep_at(fd: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: plain fd syscalls on fds the child owns; a dup2 onto itself
    // would keep FD_CLOEXEC, so that case clears the flag instead.
    let r = unsafe {
        if fd == target {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, target)
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The version of the CRIU at `criu` (runc's check runs before any dump or
/// restore): a VERSION request to a `criu swrk` of its own.
pub fn version(criu: &Path) -> Result<Version, String> {
    let failed = |e: &dyn std::fmt::Display| format!("CRIU version check failed: {e}");
    let swrk =
        Swrk::spawn(criu, &[]).map_err(|e| failed(&format!("exec {}: {e}", criu.display())))?;
    let answer = swrk
        .send(&Request::new(ReqType::Version))
        .and_then(|()| swrk.recv());
    let _ = swrk.wait();
    let (resp, _) = answer.map_err(|e| failed(&e))?;
    match resp.version {
        Some(v) if resp.success && resp.typ == ReqType::Version => Ok(v),
        _ => Err(failed(&"criu did not report its version")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_criu_is_a_clear_error() {
        let e = version(Path::new("/nonexistent/criu")).unwrap_err();
        assert!(
            e.starts_with("CRIU version check failed: exec /nonexistent/criu"),
            "{e}"
        );
    }

    #[test]
    fn criu_answers_its_version() {
        let criu = ["/usr/sbin/criu", "/sbin/criu"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists());
        let Some(criu) = criu else {
            eprintln!("skipped: criu is not installed (the systemd lane has it)");
            return;
        };
        let v = version(criu).unwrap();
        // Debian 12 has 3.17; runc needs at least 3.0.
        assert!(v.number() >= 30000, "{v:?}");
    }
}
