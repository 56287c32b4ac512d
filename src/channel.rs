//! The typed channel between hull and the stage it runs in a child (the
//! container's init): length-prefixed JSON messages over a unix stream
//! socketpair, and descriptors passed beside them. A child that
//! fails sends `FromInit::Error`, so the user sees the root cause in one line
//! instead of "EOF reading from pipe".

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::plan::{ExecPlan, InitPlan};

/// The cause is part of the message (not a `source`), so that a chain
/// printed with `{:#}` says it once.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the other side closed the channel")]
    Closed,
    #[error("channel i/o: {0}")]
    Io(std::io::Error),
    #[error("channel message: {0}")]
    Codec(serde_json::Error),
    #[error("channel message of {0} bytes is over the limit")]
    TooLarge(usize),
}

/// The largest message either side accepts: the plan carries config.json
/// (and its copy of the process), a few MiB at the most; a length beyond
/// this is a broken or hostile peer, never an allocation to make.
pub const MAX_MESSAGE: usize = 64 << 20;

impl From<std::io::Error> for ChannelError {
    fn from(e: std::io::Error) -> Self {
        ChannelError::Io(e)
    }
}

impl From<serde_json::Error> for ChannelError {
    fn from(e: serde_json::Error) -> Self {
        ChannelError::Codec(e)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    Plan(Box<InitPlan>),
    /// Start a process in a running container (the exec stage).
    Exec(Box<ExecPlan>),
    MappingWritten,
    /// The parent's set-up after `FromInit::InNamespaces` is done.
    SetUpDone,
    /// The answer to `FromInit::JoinCgroups` when there are no files to
    /// join: the parent placed the init itself (in a systemd scope).
    CgroupsPlaced,
    /// The answer to `FromInit::NeedMountSource`: on Ok the detached tree
    /// follows as one fd (`Channel::recv_fds`), else why there is none.
    MountSource(Result<(), String>),
    /// The parent ran prestart and createRuntime; here is the state (JSON,
    /// status "creating") for createContainer and startContainer.
    HooksDone(String),
    /// The message the seccomp agent gets with the notify fd.
    AgentMessage(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// The child created a user namespace after joining others: the parent
    /// must write its uid/gid maps.
    NeedIdMaps,
    /// The child forked the real init (or the exec'd process) into its
    /// pid namespace.
    InitPid(i32),
    /// The child is in its final namespaces and about to mount: the parent
    /// moves the network devices in, answering with `ToInit::SetUpDone`.
    /// Sent only when there are any.
    InNamespaces,
    /// The source tree of `mounts[i]`, built by the parent from inside the
    /// container's mount namespace as it is now (the earlier mounts made):
    /// an id-mapped mount's, or a bind source the container's root cannot
    /// reach. Answered with `ToInit::MountSource`.
    NeedMountSource(usize),
    /// The init is about to need its cgroup v1 directories (to mount them,
    /// make device nodes, unshare a cgroup namespace, or go on to the
    /// hooks): the parent answers with their `tasks` files, once every
    /// directory and limit exists. Sent only when `InitPlan::cgroup_joins`
    /// has any.
    JoinCgroups,
    /// Mounts are made, pivot_root is next: time for the create hooks.
    /// Sent only when `InitPlan::hooks`.
    BeforePivot,
    /// The profile notifies an agent: what should it be told?
    NeedAgentMessage,
    /// Set-up is done; the init now waits for `start`.
    Ready,
    /// The last word before execve (the channel then closes with it): a
    /// channel that closes without it means the stage died.
    Execing,
    Error(ChildError),
}

/// A failure inside the init stage, with the errno when there was one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildError {
    pub msg: String,
    pub errno: Option<i32>,
}

pub struct Channel {
    sock: UnixStream,
}

impl Channel {
    /// A connected pair; both ends close-on-exec, placed at or above
    /// `min_fd` so they never land on an fd the container must inherit.
    pub fn pair(min_fd: RawFd) -> std::io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((
            Channel {
                sock: raise(a, min_fd)?,
            },
            Channel {
                sock: raise(b, min_fd)?,
            },
        ))
    }

    /// A channel over a connected stream (the start socket).
    pub fn from_stream(sock: UnixStream) -> Channel {
        Channel { sock }
    }

    /// Adopt an inherited channel fd.
    ///
    /// # Safety
    /// `fd` must be an open unix stream socket that nothing else owns.
    pub unsafe fn from_raw(fd: RawFd) -> Channel {
        // SAFETY: guaranteed by the caller.
        Channel {
            sock: unsafe { UnixStream::from_raw_fd(fd) },
        }
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ChannelError> {
        let body = serde_json::to_vec(msg)?;
        if body.len() > MAX_MESSAGE {
            return Err(ChannelError::TooLarge(body.len()));
        }
        let mut buf = Vec::with_capacity(body.len() + 4);
        buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
        buf.extend_from_slice(&body);
        (&self.sock).write_all(&buf)?;
        Ok(())
    }

    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ChannelError> {
        let mut len = [0u8; 4];
        match (&self.sock).read_exact(&mut len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ChannelError::Closed);
            }
            r => r?,
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_MESSAGE {
            return Err(ChannelError::TooLarge(len));
        }
        let mut body = vec![0u8; len];
        (&self.sock).read_exact(&mut body).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ChannelError::Closed
            } else {
                e.into()
            }
        })?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Wait until the stage at the other end execs: `Execing`, then the
    /// channel closes (close-on-exec). Anything else says why it did not.
    pub fn await_exec(&self) -> Result<(), String> {
        let mut execing = false;
        loop {
            match self.recv::<FromInit>() {
                Ok(FromInit::Execing) => execing = true,
                Ok(FromInit::Error(e)) => return Err(e.msg),
                Ok(other) => return Err(format!("unexpected message: {other:?}")),
                Err(ChannelError::Closed) if execing => return Ok(()),
                Err(ChannelError::Closed) => {
                    return Err("the container's init exited before starting the process".into());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Pass descriptors (SCM_RIGHTS, one marker byte per batch). Messages
    /// are read with exact lengths, so a marker is never swallowed by `recv`.
    pub fn send_fds(&self, fds: &[RawFd]) -> Result<(), ChannelError> {
        for batch in fds.chunks(MAX_FDS) {
            let cmsg = [ControlMessage::ScmRights(batch)];
            let iov = [IoSlice::new(b"F")];
            sendmsg::<()>(self.sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
                .map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    /// Receive exactly `n` descriptors sent by `send_fds` (close-on-exec).
    pub fn recv_fds(&self, n: usize) -> Result<Vec<OwnedFd>, ChannelError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut b = [0u8; 1];
            let mut iov = [IoSliceMut::new(&mut b)];
            let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
            let msg = recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            if msg.bytes == 0 {
                return Err(ChannelError::Closed);
            }
            if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
                // Some descriptors were dropped (RLIMIT_NOFILE?): the count
                // can never be reached, so fail rather than wait forever.
                return Err(
                    std::io::Error::other("descriptors lost in transit (MSG_CTRUNC)").into(),
                );
            }
            let before = out.len();
            for c in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    // SAFETY: the kernel installed these descriptors for us.
                    out.extend(
                        fds.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            if out.len() == before {
                return Err(std::io::Error::other("fd batch arrived without descriptors").into());
            }
        }
        Ok(out)
    }
}

/// SCM_MAX_FD: the most descriptors one message may carry.
const MAX_FDS: usize = 253;

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// Move `s` to the lowest free fd >= `min_fd` (close-on-exec).
pub fn raise<T: From<OwnedFd> + Into<OwnedFd>>(s: T, min_fd: RawFd) -> std::io::Result<T> {
    let fd: OwnedFd = s.into();
    if fd.as_raw_fd() >= min_fd {
        return Ok(T::from(fd));
    }
    let new = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min_fd))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that we own.
    Ok(T::from(unsafe { OwnedFd::from_raw_fd(new) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_messages() {
        let (a, b) = Channel::pair(3).unwrap();
        a.send(&FromInit::InitPid(42)).unwrap();
        a.send(&FromInit::Error(ChildError {
            msg: "boom".into(),
            errno: Some(2),
        }))
        .unwrap();
        assert!(matches!(
            b.recv::<FromInit>().unwrap(),
            FromInit::InitPid(42)
        ));
        match b.recv::<FromInit>().unwrap() {
            FromInit::Error(e) => assert_eq!((e.msg.as_str(), e.errno), ("boom", Some(2))),
            other => panic!("{other:?}"),
        }
        drop(a);
        assert!(matches!(b.recv::<FromInit>(), Err(ChannelError::Closed)));
    }

    #[test]
    fn passes_descriptors_between_messages() {
        let (a, b) = Channel::pair(3).unwrap();
        let files: Vec<std::fs::File> = (0..300)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        a.send(&ToInit::MountSource(Ok(()))).unwrap();
        a.send_fds(&raw).unwrap();
        a.send(&ToInit::MappingWritten).unwrap();
        assert!(matches!(
            b.recv::<ToInit>().unwrap(),
            ToInit::MountSource(Ok(()))
        ));
        assert_eq!(b.recv_fds(300).unwrap().len(), 300);
        assert!(matches!(
            b.recv::<ToInit>().unwrap(),
            ToInit::MappingWritten
        ));
    }

    #[test]
    fn fds_are_raised() {
        let (a, _b) = Channel::pair(100).unwrap();
        assert!(a.as_raw_fd() >= 100);
    }
}
