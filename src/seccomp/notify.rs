//! SCMP_ACT_NOTIFY: the filter's notify fd goes to the seccomp agent at
//! linux.seccomp.listenerPath in runc's format, so existing agents work:
//! one message on the unix socket, the JSON of runtime-spec's
//! ContainerProcessState as data and the fd as SCM_RIGHTS. The parent
//! connects to the agent (the path is in the runtime's namespace) and
//! renders the message; the stage that loads the filter sends it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::Serialize;

/// runtime-spec's ContainerProcessState.
#[derive(Serialize)]
struct ContainerProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: serde_json::Value,
}

/// The agent's message for process `pid` of a container whose OCI state
/// (JSON) is `state`.
pub fn message(state: &[u8], pid: i32, metadata: &str) -> Vec<u8> {
    let msg = ContainerProcessState {
        oci_version: crate::spec::OCI_VERSION,
        fds: ["seccompFd"],
        pid,
        metadata,
        state: serde_json::from_slice(state).unwrap_or_default(),
    };
    serde_json::to_vec(&msg).unwrap_or_default()
}

/// Connect to the agent's socket (in the parent, before the stage runs).
pub fn connect(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    std::os::unix::net::UnixStream::connect(path).map(OwnedFd::from)
}

/// The agent's connected socket and the message it gets, as a stage has
/// them until it loads the filter.
pub struct Agent {
    pub sock: OwnedFd,
    pub msg: Vec<u8>,
}

impl Agent {
    /// Hand the notify fd over; after this the filter's NOTIFY rules have
    /// someone to answer them.
    pub fn hand_over(&self, notify_fd: &OwnedFd) -> Result<(), String> {
        send(&self.sock, &self.msg, notify_fd.as_raw_fd())
            .map_err(|e| format!("sending the seccomp notify fd to the agent: {}", e.desc()))
    }
}

/// Hand the notify fd to the agent.
pub fn send(agent: &OwnedFd, msg: &[u8], notify_fd: RawFd) -> nix::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [notify_fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(msg)];
    sendmsg::<()>(agent.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_has_runcs_shape() {
        let m = super::message(
            br#"{"ociVersion":"1.3.0","id":"c","status":"creating","pid":7,"bundle":"/b"}"#,
            7,
            "meta",
        );
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(v["pid"], 7);
        assert_eq!(v["metadata"], "meta");
        assert_eq!(v["state"]["id"], "c");
        assert_eq!(v["ociVersion"], "1.3.0");
    }
}
