//! `clone3` with CLONE_VM | CLONE_VFORK, as posix_spawn does: the child
//! borrows the parent's address space until it execs, so no copy of the
//! parent's page tables is made (and torn down again by the child's exec,
//! with a TLB shootdown to every CPU the copy ran on), and the parent takes
//! no copy-on-write faults afterwards. The parent is suspended until the
//! child has exec'd or exited.
//!
//! The child runs `entry(arg)` on a stack of its own (below). It shares
//! every byte of memory with the suspended parent, so `entry` may only make
//! async-signal-safe calls, must write nothing but its own stack (and
//! errno), and must end in execve or _exit, never return. The caller blocks
//! every signal around the call, so no handler of the parent's can run in
//! the child either.

use std::cell::UnsafeCell;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Big enough for any `entry` by far (the init stage's needs a few KiB):
/// it lives in .bss, so only the pages the child touches are ever backed.
const STACK_SIZE: usize = 256 * 1024;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: only `clone_vfork` hands the stack out, to one child at a time:
// hull is single-threaded and CLONE_VFORK suspends it until that child
// has left the shared address space.
unsafe impl Sync for Stack {}

static STACK: Stack = Stack(UnsafeCell::new([0; STACK_SIZE]));

/// The child's entry: runs on `STACK`, must never return.
pub type Entry = extern "C" fn(*const libc::c_void) -> !;

/// clone3(flags | CLONE_VM | CLONE_VFORK) running `entry(arg)` in the
/// child, into the cgroup v2 directory `cgroup` when given. Returns the
/// child's pid and a pidfd once the child has exec'd or exited.
///
/// # Safety
///
/// `entry` must keep the rules in the module's comment, `arg` must stay
/// valid until this returns, and every signal must be blocked.
#[cfg(target_arch = "x86_64")]
pub unsafe fn clone_vfork(
    flags: u64,
    cgroup: Option<RawFd>,
    entry: Entry,
    arg: *const libc::c_void,
) -> nix::Result<(i32, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone_args is plain old data; zeroed is a valid value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64;
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    args.stack = STACK.0.get() as u64;
    args.stack_size = STACK_SIZE as u64;
    if let Some(fd) = cgroup {
        args.flags |= super::CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    let ret: i64;
    // SAFETY: the kernel starts the child with its stack pointer at the top
    // of STACK (16-byte aligned) and every other register as the parent
    // had it, so r12 and r13 still hold `arg` and `entry`. The child calls
    // `entry`, which never returns (ud2 marks the path that cannot be); the
    // parent falls through with the pid, or a negative errno, in rax.
    // syscall clobbers rcx and r11 only, and the parent's path touches no
    // stack. `args` and `pidfd` outlive the call.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &mut args as *mut libc::clone_args,
            in("rsi") std::mem::size_of::<libc::clone_args>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(Errno::from_raw(-ret as i32));
    }
    // SAFETY: the kernel returned a fresh pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((ret as i32, pidfd))
}

/// Other architectures: not written yet; the caller clones fork-style.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn clone_vfork(
    _flags: u64,
    _cgroup: Option<RawFd>,
    _entry: Entry,
    _arg: *const libc::c_void,
) -> nix::Result<(i32, OwnedFd)> {
    Err(Errno::ENOSYS)
}

/// Every signal blocked until dropped, then the mask as before. Around a
/// CLONE_VM child, so that no handler of the parent's runs in it.
pub struct AllBlocked(libc::sigset_t);

impl AllBlocked {
    pub fn new() -> nix::Result<AllBlocked> {
        // SAFETY: sigset_t is plain old data; sigfillset initialises `all`,
        // and pthread_sigmask writes the old mask into `old`.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) {
                0 => Ok(AllBlocked(old)),
                e => Err(Errno::from_raw(e)),
            }
        }
    }

    /// The mask before, as a bit per signal (bit N-1 for signal N).
    pub fn before(&self) -> u64 {
        (1..=64).fold(0, |bits, sig| {
            // SAFETY: sigismember only reads the set.
            match unsafe { libc::sigismember(&self.0, sig) } {
                1 => bits | 1 << (sig - 1),
                _ => bits,
            }
        })
    }
}

impl Drop for AllBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Set the signal mask to `bits` (as `AllBlocked::before` gives them).
pub fn set_mask(bits: u64) {
    // SAFETY: sigset_t is plain old data; sigemptyset initialises it and
    // sigaddset only sets bits of it; pthread_sigmask reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in 1..=64 {
            if bits & 1 << (sig - 1) != 0 {
                libc::sigaddset(&mut set, sig);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn exit_with(arg: *const libc::c_void) -> ! {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(arg as usize as i32) }
    }

    /// The child runs on its own stack in our memory, and we get its pid
    /// and a pidfd back once it has left.
    #[test]
    fn child_runs_entry_and_parent_gets_its_pid() {
        let _blocked = AllBlocked::new().unwrap();
        // SAFETY: `exit_with` only calls _exit; signals are blocked.
        let (pid, _pidfd) = unsafe { clone_vfork(0, None, exit_with, 7 as *const _) }.unwrap();
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 7)
        );
    }

    #[test]
    fn mask_bits_round_trip() {
        let blocked = AllBlocked::new().unwrap();
        let before = blocked.before();
        drop(blocked);
        set_mask(1 << (libc::SIGUSR1 - 1));
        let now = AllBlocked::new().unwrap();
        assert_eq!(now.before(), 1 << (libc::SIGUSR1 - 1));
        drop(now);
        set_mask(before);
    }
}
