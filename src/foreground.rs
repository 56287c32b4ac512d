//! A foreground `hull run`: forward signals to the container's init, proxy
//! the terminal when there is one, reap the init and turn its end into our
//! exit status (the code, or 128+N for signal N), as runc does.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::console;
use crate::sys;

/// Signals a foreground run takes over (to forward them): the real-time
/// ones too, whose default would kill hull and orphan the container;
/// everything else keeps its default.
fn handled() -> SigSet {
    let mut s = with_real_time();
    for sig in Signal::iterator() {
        if !matches!(
            sig,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGTSTP
                | Signal::SIGTTIN
                | Signal::SIGTTOU
        ) {
            s.add(sig);
        }
    }
    s
}

/// SIGRTMIN..=SIGRTMAX, which nix's Signal has no names for.
fn with_real_time() -> SigSet {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset takes numbers
    // within the range the C library reports.
    unsafe {
        libc::sigemptyset(raw.as_mut_ptr());
        for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            libc::sigaddset(raw.as_mut_ptr(), sig);
        }
        SigSet::from_sigset_t_unchecked(raw.assume_init())
    }
}

/// Block the handled signals now (before the container exists, so none is
/// lost) and return a signalfd for them.
pub fn take_signals() -> nix::Result<SignalFd> {
    let set = handled();
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

fn exit_code(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Run until the init (`pid`) exits; returns the exit status to use.
pub fn wait(pid: i32, pidfd: &OwnedFd, sigfd: SignalFd, master: Option<OwnedFd>) -> i32 {
    let _raw = master.as_ref().and_then(|_| console::RawMode::enter(0));
    if let Some(m) = &master {
        console::sync_winsize(m);
    }
    let mut stdin_open = master.is_some();
    // Once every holder of the pty's other side has closed it, the master
    // reports hangup on every poll: it is no longer polled (it would spin
    // at 100% CPU while the process lives on without its terminal).
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let stdin = std::io::stdin();
        // Where the master and stdin are in `fds`, each when still polled.
        let mut slots = [None, None];
        if let Some(m) = master.as_ref().filter(|_| master_open) {
            slots[0] = Some(fds.len());
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if master.is_some() && stdin_open {
            slots[1] = Some(fds.len());
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let is_ready = |slot: Option<usize>| slot.is_some_and(|i| ready[i]);
        if let Some(m) = &master {
            // EOF (every holder of the pty gone) ends nothing by itself:
            // the init's exit, reaped below, does.
            if is_ready(slots[0]) && !copy(m.as_raw_fd(), 1, &mut buf) {
                master_open = false;
            }
            if is_ready(slots[1]) && !copy(0, m.as_raw_fd(), &mut buf) {
                stdin_open = false;
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let sig = info.ssi_signo as i32;
                match Signal::try_from(sig) {
                    Ok(Signal::SIGCHLD) => {
                        if let Some(code) = reap(pid) {
                            if let Some(m) = &master {
                                while copy(m.as_raw_fd(), 1, &mut buf) {}
                            }
                            return code;
                        }
                    }
                    Ok(Signal::SIGWINCH) => {
                        if let Some(m) = &master {
                            console::sync_winsize(m);
                        }
                    }
                    _ => {
                        let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), sig);
                    }
                }
            }
        }
    }
    reap_blocking(pid)
}

/// Reap every exited child (we are a subreaper); Some(status) once the init
/// is among them.
pub fn reap(pid: i32) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(st) => {
                if st.pid() == Some(Pid::from_raw(pid)) {
                    result = exit_code(st).or(result);
                }
            }
        }
    }
}

fn reap_blocking(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(st) => {
                if let Some(c) = exit_code(st) {
                    return c;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// Copy what is available from `from` to `to`; false on EOF or error.
fn copy(from: i32, to: i32, buf: &mut [u8]) -> bool {
    // SAFETY: both fds stay open for the duration of the call.
    let (rf, wf) = unsafe {
        (
            std::os::fd::BorrowedFd::borrow_raw(from),
            std::os::fd::BorrowedFd::borrow_raw(to),
        )
    };
    match nix::unistd::read(rf, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(wf, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_signals_are_forwarded_not_fatal() {
        let set = handled();
        // SAFETY: sigismember only reads the initialised set.
        let has = |sig| unsafe { libc::sigismember(set.as_ref(), sig) } == 1;
        assert!(has(libc::SIGRTMIN() + 3));
        assert!(has(libc::SIGRTMAX()));
        assert!(has(libc::SIGTERM));
        assert!(!has(libc::SIGKILL) && !has(libc::SIGTSTP));
    }
}
