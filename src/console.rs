//! Terminals: the init stage opens a pty from the container's own devpts
//! instance and hands the master to the caller over `--console-socket` with
//! SCM_RIGHTS (containerd, conmon and podman rely on exactly this), and a
//! foreground `hull run -t` proxies between its own terminal and the master.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Send `fd` over `sock` with SCM_RIGHTS; `name` is the payload runc sends
/// (the pty's path, or a label).
pub fn send_fd(sock: &impl AsRawFd, fd: RawFd, name: &str) -> nix::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receive one fd sent with SCM_RIGHTS.
pub fn recv_fd(sock: &UnixStream) -> nix::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(Errno::EBADMSG)
}

/// The pty master a stage sent us (foreground `run -t` / `exec -t`), made
/// ready to proxy (non-blocking).
pub fn recv_master(sock: &UnixStream) -> nix::Result<OwnedFd> {
    let m = recv_fd(sock)?;
    nix::fcntl::fcntl(
        &m,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok(m)
}

/// Stop the pty from turning "\n" into "\r\n" (one termios for the pair).
pub fn clear_onlcr(pty: &OwnedFd) -> nix::Result<()> {
    use nix::sys::termios::{OutputFlags, SetArg, tcgetattr, tcsetattr};
    let mut t = tcgetattr(pty)?;
    t.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(pty, SetArg::TCSANOW, &t)
}

/// In the init stage: open a new pty on the container's devpts (through the
/// ptmx fd, never a path the container controls for the peer), make the
/// peer our controlling terminal and stdio, and return the master.
pub fn open_pty(ptmx: OwnedFd) -> nix::Result<(OwnedFd, OwnedFd)> {
    let m = ptmx.as_raw_fd();
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int that lives across the call.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: TIOCGPTPEER opens the peer of this master without any path
    // lookup, so a symlink planted under /dev/pts cannot redirect it.
    let peer = unsafe {
        libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fresh descriptor from the kernel.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    Ok((ptmx, peer))
}

/// Make `peer` the controlling terminal and fds 0, 1 and 2.
pub fn become_tty_stdio(peer: &OwnedFd) -> nix::Result<()> {
    let fd = peer.as_raw_fd();
    for target in 0..3 {
        // SAFETY: dup2 onto stdio; `fd` is open for the duration.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(Errno::last());
        }
    }
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Set the window size of a terminal.
pub fn set_winsize(fd: BorrowedFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn get_winsize(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: zeroed winsize is valid; TIOCGWINSZ writes into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: pointer to a live winsize.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

/// Puts a terminal in raw mode and restores it on drop.
pub struct RawMode {
    fd: RawFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: stdin stays open for the life of the process.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = nix::sys::termios::tcgetattr(bfd).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(bfd, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in enter.
        let bfd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = nix::sys::termios::tcsetattr(bfd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Copy our terminal size to the container's pty.
pub fn sync_winsize(master: &OwnedFd) {
    if let Some(ws) = get_winsize(0) {
        let _ = set_winsize(master.as_fd(), ws.ws_row, ws.ws_col);
    }
}
