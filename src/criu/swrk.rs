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

use super::rpc::{Features, ReqType, Request, Response, Version};

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
    /// off (/dev/null) unless `stdio` (a restore: the restored process
    /// inherits what criu has at 0, 1 and 2 through `inherit_fd`).
    pub fn spawn(criu: &Path, extra: &[RawFd], stdio: bool) -> io::Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        // Above stdio (and fd 3): a hull started with a closed stdio fd
        // would get the socket there, which the child's stdio set-up would
        // overwrite before the socket reaches fd 3.
        let theirs = crate::sys::fd_at_least(theirs, 4 + extra.len() as RawFd)?;
        let theirs_fd = theirs.as_raw_fd();
        let extra: Vec<RawFd> = extra.to_vec();
        let mut cmd = Command::new(criu);
        cmd.args(["swrk", "3"]);
        if !stdio {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
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

    /// Send `req` and answer CRIU's notifications (`on_notify` gets the
    /// event, its pid and the fd it carries) until the reply to `req`.
    /// A reply that is not a success is runc's error, with CRIU's own
    /// message when it sent one.
    pub fn call(
        &self,
        req: &Request,
        mut on_notify: impl FnMut(&str, i32, Option<OwnedFd>) -> Result<(), String>,
    ) -> Result<Response, String> {
        let io = |e: io::Error| format!("talking to criu: {e}");
        self.send(req).map_err(io)?;
        loop {
            let (resp, fd) = self.recv().map_err(io)?;
            if resp.typ == ReqType::Notify {
                let (event, pid) = resp.notify.clone().unwrap_or_default();
                on_notify(&event, pid, fd)?;
                let mut ack = Request::new(ReqType::Notify);
                ack.notify_success = true;
                self.send(&ack).map_err(io)?;
                continue;
            }
            if resp.success && resp.typ == req.typ {
                return Ok(resp);
            }
            let mut e = format!(
                "criu failed: type {} errno {}",
                resp.typ.name(),
                resp.cr_errno.unwrap_or(0)
            );
            if let Some(m) = resp.cr_errmsg.as_deref().filter(|m| !m.is_empty()) {
                e.push_str(": ");
                e.push_str(m.trim_end());
            }
            return Err(e);
        }
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
    let swrk = Swrk::spawn(criu, &[], false)
        .map_err(|e| format!("CRIU version check failed: exec {}: {e}", criu.display()))?;
    let v = swrk.version();
    let _ = swrk.wait();
    v
}

impl Swrk {
    /// Ask this CRIU its version, keeping it for the next request.
    pub fn version(&self) -> Result<Version, String> {
        let mut req = Request::new(ReqType::Version);
        req.keep_open = true;
        let resp = self
            .call(&req, |_, _, _| Ok(()))
            .map_err(|e| format!("CRIU version check failed: {e}"))?;
        resp.version
            .ok_or_else(|| "CRIU version check failed: criu did not report its version".into())
    }

    /// FEATURE_CHECK: which of `want` this CRIU has, keeping it open.
    pub fn features(&self, want: Features) -> Result<Features, String> {
        let mut req = Request::new(ReqType::FeatureCheck);
        req.keep_open = true;
        req.features = Some(want);
        let resp = self
            .call(&req, |_, _, _| Ok(()))
            .map_err(|e| format!("CRIU feature check failed: {e}"))?;
        Ok(resp.features.unwrap_or_default())
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
