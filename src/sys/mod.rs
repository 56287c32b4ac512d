//! The syscall boundary: thin, typed wrappers over the raw calls that `nix`
//! does not cover (clone3, openat2, the new mount API, pidfds, memfd sealing).
//! Every `unsafe` block of hull that talks to the kernel lives here, each with
//! the invariant that makes it sound. Callers get `nix::Result` so the errno
//! travels with the error.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub mod bpf;
pub mod vfork;

/// clone3's flag to start the child in a cgroup v2 directory (Linux 5.7).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What hull needs of Rust's start-up, which it skips (see main.rs): fds
/// 0-2 open (a closed one gets /dev/null, or the first file hull opens
/// would become its stdout), and SIGPIPE ignored, so that a closed pipe is
/// an EPIPE error, as everywhere in Rust, not death.
pub fn start_up() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is an array of three pollfds that poll may write to.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0;
    for p in fds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: fcntl(F_GETFD) only inspects the descriptor.
            let flags = unsafe { libc::fcntl(p.fd, libc::F_GETFD) };
            flags < 0
        };
        // SAFETY: open takes a NUL-terminated path; the lowest free number
        // is the one just found closed (the lower ones are open).
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } < 0 {
            // Nowhere to say it: std aborts the same way.
            std::process::abort();
        }
    }
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// End the process by SIGPIPE, as a write to a closed pipe does when the
/// signal is not ignored (hull ignores it, see `start_up`).
pub fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{SigSet, Signal};
    // SAFETY: SIG_DFL installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    let _ = pipe.thread_unblock();
    let _ = nix::sys::signal::raise(Signal::SIGPIPE);
    std::process::exit(128 + libc::SIGPIPE)
}

fn check(ret: libc::c_long) -> nix::Result<libc::c_long> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

/// Result of `clone3`: in the parent the child's pid and a pidfd for it.
pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// fork-like `clone3`: no shared memory, the child continues on a copy of
/// the caller's stack. `cgroup` places the child in a cgroup v2 directory
/// at birth (CLONE_INTO_CGROUP), so it never runs outside its limits.
pub fn clone3(flags: u64, cgroup: Option<RawFd>) -> nix::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone_args is plain old data; zeroed is a valid value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    // With CLONE_PARENT the child inherits our exit signal (clone3 refuses
    // one of its own then).
    if flags & libc::CLONE_PARENT as u64 == 0 {
        args.exit_signal = libc::SIGCHLD as u64;
    }
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: without CLONE_VM the child gets a copy-on-write image of this
    // single-threaded process, exactly like fork(2); `args` outlives the call
    // and `pidfd` is written by the kernel before clone3 returns in the parent.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    })?;
    if ret == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: the kernel returned a fresh pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent {
        pid: ret as i32,
        pidfd,
    })
}

/// Plain fork for the intermediate stage that must enter a pid namespace.
pub fn fork() -> nix::Result<Option<i32>> {
    // SAFETY: hull is single-threaded, so the child inherits no held locks.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Some(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(None),
    }
}

/// openat2(2) with the given resolve flags, always O_CLOEXEC.
pub fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    // SAFETY: open_how is plain old data; zeroed is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = resolve;
    loop {
        // SAFETY: `path` is NUL-terminated and `how` lives across the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match check(ret) {
            // SAFETY: the kernel returned a new descriptor we now own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// open_tree(2): a detached copy of the mount (tree) at `path`.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> nix::Result<OwnedFd> {
    // SAFETY: NUL-terminated path; returns a new fd or -1.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags | libc::OPEN_TREE_CLOEXEC,
        )
    })?;
    // SAFETY: fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// move_mount(2) of a detached mount fd onto `to_dirfd`/`to_path`.
pub fn move_mount(
    from: RawFd,
    from_path: &CStr,
    to_dirfd: RawFd,
    to_path: &CStr,
    flags: u32,
) -> nix::Result<()> {
    // SAFETY: both paths are NUL-terminated; no memory is retained.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            from_path.as_ptr(),
            to_dirfd,
            to_path.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// Make the mount `fd` refers to read-only (and its submounts, if
/// `recursive`), keeping its other attributes.
pub fn mount_set_readonly(fd: RawFd, recursive: bool) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    mount_setattr(fd, c"", (libc::AT_EMPTY_PATH | rec) as u32, &attr)
}

/// mount_setattr(2): change mount attributes, optionally recursively.
pub fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: u32,
    attr: &libc::mount_attr,
) -> nix::Result<()> {
    // SAFETY: `attr` is a valid mount_attr for the duration of the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// pidfd_send_signal(2): signal exactly the process the pidfd refers to.
pub fn pidfd_send_signal(pidfd: RawFd, sig: i32) -> nix::Result<()> {
    // SAFETY: null siginfo is allowed; no memory is retained.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// kill(2) with any signal number, real-time ones included (nix's Signal
/// has no names for those).
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill takes plain integers and retains nothing.
    check(unsafe { libc::kill(pid, sig) } as libc::c_long)?;
    Ok(())
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    let ret = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// close_range(2) with flags (0 or CLOSE_RANGE_CLOEXEC).
pub fn close_range(first: u32, last: u32, flags: u32) -> nix::Result<()> {
    // SAFETY: closing descriptors is memory-safe; callers own the range.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) })?;
    Ok(())
}

/// memfd_create(2).
pub fn memfd_create(name: &CStr, flags: u32) -> nix::Result<OwnedFd> {
    // SAFETY: NUL-terminated name.
    let ret = check(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) })?;
    // SAFETY: fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// An argv or envp array built before fork, so that the child can exec
/// without allocating (only async-signal-safe work between clone and exec).
pub struct CArray {
    _strs: Vec<std::ffi::CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CArray {
    pub fn new(strs: Vec<std::ffi::CString>) -> CArray {
        let ptrs = strs
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        CArray { _strs: strs, ptrs }
    }

    /// The strings, as text (lossy).
    pub fn strings(&self) -> Vec<String> {
        self._strs
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }
}

/// execveat(2) with AT_EMPTY_PATH on arrays built before fork. Returns only
/// on failure; allocates nothing.
pub fn fexecve_prepared(fd: RawFd, argv: &CArray, envp: &CArray) -> Errno {
    // SAFETY: both arrays are NULL-terminated arrays of NUL-terminated
    // strings owned by the CArrays, which outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.ptrs.as_ptr(),
            envp.ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): the notify fd when
/// `flags` asks for a listener.
pub fn seccomp_set_filter(
    flags: libc::c_ulong,
    prog: &[libc::sock_filter],
) -> nix::Result<Option<OwnedFd>> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| Errno::E2BIG)?,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel
    // copies the program.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    })?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a new fd we own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    Ok(None)
}

/// execve(2) on arrays built before fork. Returns only on failure;
/// allocates nothing.
pub fn execve_prepared(path: &CStr, argv: &CArray, envp: &CArray) -> Errno {
    // SAFETY: NUL-terminated path; NULL-terminated arrays owned by the
    // CArrays, which outlive the call.
    unsafe {
        libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr());
    }
    Errno::last()
}

/// setns(2) into the namespace `fd` refers to, checking its type.
pub fn setns(fd: RawFd, nstype: i32) -> nix::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setns(fd, nstype) } as libc::c_long)?;
    Ok(())
}

/// `fd` at the lowest free number at or above `min` (close-on-exec): kept
/// when it is there already, else duplicated and the original closed.
pub fn fd_at_least(fd: OwnedFd, min: RawFd) -> nix::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    let new = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Bring the interface `name` up with SIOCSIFFLAGS on a datagram socket,
/// in the caller's network namespace. The flags written are IFF_UP alone:
/// the kernel keeps a device's own flags (IFF_LOOPBACK, IFF_RUNNING...), so
/// this suits a fresh device, not one whose flags someone else changed.
pub fn set_link_up(name: &CStr) -> nix::Result<()> {
    let bytes = name.to_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    // SAFETY: socket(2) with constant arguments; the fd is owned at once.
    let fd = check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
            as libc::c_long,
    )?;
    // SAFETY: the kernel just returned this descriptor to us.
    let sock = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads a struct ifreq, which `req` is, NUL-ended.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } as libc::c_long)?;
    Ok(())
}

/// prctl(2) with integer arguments.
pub fn prctl(option: i32, arg2: libc::c_ulong) -> nix::Result<i32> {
    // SAFETY: the options hull uses take integer arguments only.
    let ret = check(unsafe { libc::prctl(option, arg2, 0, 0, 0) } as libc::c_long)?;
    Ok(ret as i32)
}

/// Clear FD_CLOEXEC so `fd` survives execve.
pub fn clear_cloexec(fd: impl AsRawFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: the caller keeps `fd` open for the duration.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) };
    fcntl(bfd, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok(())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name).
pub fn join_session_keyring(name: &CStr) -> nix::Result<i32> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: NUL-terminated name; keyctl copies it.
    let ret = check(unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr())
    })?;
    Ok(ret as i32)
}

/// pivot_root(2) with "." for both arguments (the trick runc uses to avoid
/// a temporary directory for the old root).
pub fn pivot_root_dot() -> nix::Result<()> {
    // SAFETY: static NUL-terminated strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    Ok(())
}

/// sethostname/setdomainname.
pub fn set_domainname(name: &[u8]) -> nix::Result<()> {
    // SAFETY: pointer and length describe a live slice.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } as libc::c_long)?;
    Ok(())
}

/// fsopen(2): a new filesystem context.
pub fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    // SAFETY: NUL-terminated type name.
    let ret =
        check(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    // SAFETY: fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// fsconfig(2) with a string value, a flag (value None), or a command.
pub fn fsconfig(
    fsfd: RawFd,
    cmd: u32,
    key: Option<&CStr>,
    value: Option<&CStr>,
) -> nix::Result<()> {
    let k = key.map_or(std::ptr::null(), |k| k.as_ptr());
    let v = value.map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: key/value are NUL-terminated or null as the command expects.
    check(unsafe { libc::syscall(libc::SYS_fsconfig, fsfd, cmd, k, v, 0) })?;
    Ok(())
}

/// The mount an fd lies on (statx STATX_MNT_ID): with the inode, it tells
/// a directory from the same directory seen through another mount.
pub fn mount_id(fd: RawFd) -> nix::Result<u64> {
    // SAFETY: statx is plain old data; zeroed is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: empty NUL-terminated path with AT_EMPTY_PATH; `stx` is live.
    check(unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        ) as libc::c_long
    })?;
    Ok(stx.stx_mnt_id)
}

/// fsetxattr(2): set an extended attribute on an open file.
pub fn fsetxattr(fd: RawFd, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: name is NUL-terminated; value is a live buffer of its length.
    check(unsafe {
        libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) as libc::c_long
    })?;
    Ok(())
}

/// fsmount(2): turn a configured context into a detached mount.
pub fn fsmount(fsfd: RawFd, attrs: u64) -> nix::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let ret =
        check(unsafe { libc::syscall(libc::SYS_fsmount, fsfd, libc::FSMOUNT_CLOEXEC, attrs) })?;
    // SAFETY: fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// mount(2) onto the object `target` refers to, through the host's
/// /proc/self/fd (used only before pivot_root, when /proc is the host's).
pub fn mount_fd(
    source: Option<&CStr>,
    target: RawFd,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> nix::Result<()> {
    let t = std::ffi::CString::new(format!("/proc/self/fd/{target}")).map_err(|_| Errno::EINVAL)?;
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: all pointers are NUL-terminated strings or null.
    check(
        unsafe { libc::mount(p(source), t.as_ptr(), p(fstype), flags, p(data).cast()) }
            as libc::c_long,
    )?;
    Ok(())
}

/// sched_setattr(2) with the kernel's struct sched_attr (size 56, v1).
#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}

pub fn sched_setattr(attr: &mut SchedAttr) -> nix::Result<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid, sized sched_attr for the call's duration.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) })?;
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, prio).
pub fn ioprio_set(prio: i32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: i32 = 1;
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })?;
    Ok(())
}

/// set_mempolicy(2) with a node mask.
pub fn set_mempolicy(mode: i32, mask: &[libc::c_ulong], maxnode: u64) -> nix::Result<()> {
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `mask` holds at least `maxnode` bits (or is null with 0).
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) })?;
    Ok(())
}

/// personality(2).
pub fn personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: integer argument only.
    check(unsafe { libc::personality(persona) } as libc::c_long)?;
    Ok(())
}

/// Give back what a process that will sleep for long (the init waiting
/// for `start`) holds only because it ran: free heap goes back to the
/// kernel, and the page-table entries of every read-only segment of the
/// loaded objects (code, read-only data) are dropped. Those pages stay in
/// the page cache, shared with every other hull; touching one again maps
/// it back from there. Segments the loader may have written (data, RELRO)
/// are left alone: for them the private copy is the only copy.
pub fn shed_mapped_memory() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    // SAFETY: dl_iterate_phdr calls `drop_readonly` with valid program
    // headers of each loaded object while holding the loader's lock; the
    // callback touches nothing but those headers and makes one syscall.
    unsafe { libc::dl_iterate_phdr(Some(drop_readonly), std::ptr::null_mut()) };
}

extern "C" fn drop_readonly(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    _data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid dl_phdr_info whose dlpi_phdr points
    // at dlpi_phnum program headers (see dl_iterate_phdr(3)).
    let (base, phdrs) = unsafe {
        let info = &*info;
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        (
            info.dlpi_addr as usize,
            std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize),
        )
    };
    let page = 4096usize;
    for ph in phdrs {
        if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_W != 0 || ph.p_memsz == 0 {
            continue;
        }
        // Only whole pages inside the segment: a page shared with a writable
        // neighbour must keep its private copy.
        let start = (base + ph.p_vaddr as usize).div_ceil(page) * page;
        let end = (base + (ph.p_vaddr + ph.p_filesz) as usize) / page * page;
        if end > start {
            // SAFETY: [start, end) lies inside a read-only, file-backed
            // segment of a loaded object: MADV_DONTNEED only drops page-table
            // entries there, and any later access faults the unchanged file
            // contents back in.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
    0
}
