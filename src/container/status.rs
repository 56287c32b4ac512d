//! A container's status is never stored: it is derived from the init
//! process (alive, and the same process by start time), the start socket
//! (still there until `start`) and the freezer.

use std::path::Path;

use super::state::State;

/// Present from create until `start`: the init waits for a connection on
/// it, and the connection closing tells `start` the process was exec'd.
pub const START_SOCKET: &str = "start.sock";

/// The start socket's name while `start` releases the init: renamed first,
/// removed once the init has its go. Left behind only by a `start` killed
/// half-way; then whether the init still listens tells the status.
pub const START_RELEASING: &str = "start.sock.releasing";

/// What `start` sends on its connection: go. A connection that closes
/// without it (a status probe, or a `start` killed half-way) leaves the
/// init waiting for the next one.
pub const START_BYTE: u8 = b's';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The start time of `pid` (clock ticks since boot) if it is alive and not
/// a zombie.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let path = format!("/proc/{pid}/stat");
    let stat = crate::procfs::read(Path::new(&path), 1024).ok()?;
    parse_stat(&stat)
}

/// The start time in `/proc/PID/stat`, None for a zombie or a dead task.
pub fn parse_stat(stat: &[u8]) -> Option<u64> {
    // comm is any 15 bytes the process chose (spaces, parentheses, a
    // character cut in half): fields start after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 2..)?;
    let mut fields = rest.split(|&b| b == b' ');
    let state = fields.next()?;
    if state == b"Z" || state == b"X" {
        return None;
    }
    // `state` is field 3; starttime is field 22, i.e. 19 further.
    crate::procfs::number(fields.nth(18)?)
}

/// Status of the container recorded in `state`.
pub fn derive(dir: &Path, state: &State, frozen: impl FnOnce() -> bool) -> Status {
    if !state.ready {
        return Status::Creating;
    }
    match proc_start_time(state.pid) {
        // Frozen comes first, created or not (as runc): a paused created
        // container says so, and `resume` can thaw it.
        Some(t) if t == state.start_time => {
            if frozen() {
                Status::Paused
            } else if dir.join(START_SOCKET).exists() || waiting_for_start(dir) {
                Status::Created
            } else {
                Status::Running
            }
        }
        _ => Status::Stopped,
    }
}

/// A `start` was killed while releasing the init: does the init still
/// listen? (It may have been released just before the kill.) A
/// non-blocking connect tells; the init takes a connection that sends
/// nothing for a probe. Only that leftover costs more than a stat.
fn waiting_for_start(dir: &Path) -> bool {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let path = dir.join(START_RELEASING);
    if !path.exists() {
        return false;
    }
    let Ok(addr) = UnixAddr::new(&path) else {
        // A path longer than sun_path holds: as before, the file decides.
        return true;
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let Ok(sock) = socket(AddressFamily::Unix, SockType::Stream, flags, None) else {
        return true;
    };
    // Refused: nothing listens any more. Full backlog (EAGAIN): it does.
    !matches!(
        connect(std::os::fd::AsRawFd::as_raw_fd(&sock), &addr),
        Err(nix::errno::Errno::ECONNREFUSED | nix::errno::Errno::ENOENT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_time_with_odd_comm() {
        let stat = b"42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 100 1";
        assert_eq!(parse_stat(stat), Some(987654));
    }

    #[test]
    fn zombie_is_not_alive() {
        let stat = b"42 (sh) Z 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 100 1";
        assert_eq!(parse_stat(stat), None);
    }

    #[test]
    fn a_name_cut_mid_character_is_still_alive() {
        // "программа" cut at 15 bytes by the kernel, with a ')' inside.
        let stat = b"7 (\xd0\xbf\xd1)\x80\xd0\xbe\xd0\xb3\xd1\x80\xd0) S 1 7 7 0 -1 4194560 \
                     100 0 0 0 0 0 0 0 20 0 1 0 55 100 1";
        assert_eq!(parse_stat(stat), Some(55));
        assert_eq!(parse_stat(b"7 (x)"), None);
    }

    #[test]
    fn own_process_is_alive() {
        assert!(proc_start_time(std::process::id() as i32).is_some());
    }
}
