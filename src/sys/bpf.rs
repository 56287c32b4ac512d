//! bpf(2): load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to a
//! cgroup v2 directory. Only the two commands hull needs, with the
//! attribute layouts from include/uapi/linux/bpf.h.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// One eBPF instruction (struct bpf_insn): the register nibbles are packed
/// as dst in the low four bits, src in the high four.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD member of union bpf_attr, up to the fields we set
/// (the kernel accepts a shorter attr and treats the rest as zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH member of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: `attr` is a live #[repr(C)] value of the layout the kernel
    // expects for `cmd`, and its exact size is passed; any pointers inside
    // it point to buffers the caller keeps alive across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

/// Load a cgroup device program. On a verifier rejection the error carries
/// the verifier's log.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, (Errno, String)> {
    let license = c"Apache-2.0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..9].copy_from_slice(b"hull_dev\0");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel returned a new program fd that we now own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e @ (Errno::EACCES | Errno::EINVAL)) => {
            // Load again with the verifier log, only to explain the failure.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr).map(|fd| {
                // SAFETY: unexpected success: take ownership so it is closed.
                drop(unsafe { OwnedFd::from_raw_fd(fd as i32) })
            });
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_string()))
        }
        Err(e) => Err((e, String::new())),
    }
}

/// Attach a device program to a cgroup v2 directory (opened O_RDONLY, not
/// O_PATH), alongside any programs already there (BPF_F_ALLOW_MULTI).
pub fn attach_device_program(cgroup_dir: &impl AsRawFd, prog: &impl AsRawFd) -> nix::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup_dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr)?;
    Ok(())
}
