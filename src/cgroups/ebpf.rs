//! Device access control on cgroup v2: the rule list (devices.rs) compiled
//! to a BPF_PROG_TYPE_CGROUP_DEVICE program and attached to the container's
//! cgroup before its first process is born into it.
//!
//! Threat: without it a container on a v2 host may mknod and open any
//! device the capabilities allow (raw disks, /dev/mem, /dev/kmsg...). The
//! rules are first reduced the way the v1 devices controller reduces its
//! writes (a default plus exceptions, later rules overriding earlier ones),
//! so one config means the same thing on v1 and v2, as with runc.

use std::os::fd::AsRawFd;

use super::devices::Rule;
use super::{CgroupError, Result};
use crate::sys::bpf::{self, Insn};

const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One exception to the default, in the kernel's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exception {
    typ: i32,
    major: Option<i32>,
    minor: Option<i32>,
    access: u8,
}

/// What the v1 controller would end up with after the writes: a default
/// and the exceptions to it (allows under deny, denies under allow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    default_allow: bool,
    exceptions: Vec<Exception>,
}

fn access_bits(s: &str) -> Result<u8> {
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(CgroupError::Invalid(format!(
                    "linux.resources.devices: invalid access {s:?}"
                )));
            }
        };
    }
    if bits == 0 {
        return Err(CgroupError::Invalid(
            "linux.resources.devices: access cannot be empty".into(),
        ));
    }
    Ok(bits)
}

/// A device number from the spec: absent or negative is a wildcard.
fn devnum(n: Option<i64>) -> Result<Option<i32>> {
    match n {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        Some(v) => i32::try_from(v).map(Some).map_err(|_| {
            CgroupError::Invalid(format!(
                "linux.resources.devices: device number {v} out of range"
            ))
        }),
    }
}

/// Reduce the ordered rules the way the v1 devices controller does.
pub fn reduce(rules: &[Rule]) -> Result<Effective> {
    // Everything denied until a rule allows it (runc's whitelist).
    let mut eff = Effective {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for r in rules {
        let access = access_bits(&r.access)?;
        let typ = match r.typ {
            'a' => {
                eff.default_allow = r.allow;
                eff.exceptions.clear();
                continue;
            }
            'b' => DEV_BLOCK,
            'c' => DEV_CHAR,
            // The device hook only ever sees block and char devices.
            _ => continue,
        };
        let ex = Exception {
            typ,
            major: devnum(r.major)?,
            minor: devnum(r.minor)?,
            access,
        };
        let same = |e: &Exception| e.typ == ex.typ && e.major == ex.major && e.minor == ex.minor;
        if r.allow == eff.default_allow {
            // A rule agreeing with the default removes access from the
            // exception with exactly that key.
            for e in eff.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !access;
            }
            eff.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = eff.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= access;
        } else {
            eff.exceptions.push(ex);
        }
    }
    Ok(eff)
}

impl Effective {
    /// Everything allowed: no program is needed.
    pub fn allows_all(&self) -> bool {
        self.default_allow && self.exceptions.is_empty()
    }
}

// Instruction encodings (include/uapi/linux/bpf_common.h, bpf.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JSET_K: u8 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// Registers after the prologue: r2 device type, r3 requested access,
/// r4 major, r5 minor (struct bpf_cgroup_dev_ctx { access_type, major,
/// minor }, access_type = access << 16 | type).
fn prologue() -> Vec<Insn> {
    vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV32_X, 3, 2, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ]
}

/// Compile the reduced rules: one block per exception that returns the
/// opposite of the default when it matches, then the default.
pub fn compile(eff: &Effective) -> Vec<Insn> {
    let mut prog = prologue();
    for ex in &eff.exceptions {
        // Conditions jump past the block ("skip"); fixed up below.
        let mut block: Vec<(Insn, bool)> = Vec::new();
        block.push((insn(JNE_K, 2, 0, 0, ex.typ), true));
        if let Some(m) = ex.major {
            block.push((insn(JNE_K, 4, 0, 0, m), true));
        }
        if let Some(m) = ex.minor {
            block.push((insn(JNE_K, 5, 0, 0, m), true));
        }
        if ex.access != ACC_ALL {
            if eff.default_allow {
                // A deny exception matches any overlap with the request.
                block.push((insn(MOV32_X, 1, 3, 0, 0), false));
                block.push((insn(AND32_K, 1, 0, 0, i32::from(ex.access)), false));
                block.push((insn(JEQ_K, 1, 0, 0, 0), true));
            } else {
                // An allow exception must cover the whole request.
                block.push((insn(JSET_K, 3, 0, 0, i32::from(!ex.access & ACC_ALL)), true));
            }
        }
        block.push((insn(MOV64_K, 0, 0, 0, i32::from(!eff.default_allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, skip)) in block.into_iter().enumerate() {
            if skip {
                ins.off = (len - i - 1) as i16;
            }
            prog.push(ins);
        }
    }
    prog.push(insn(MOV64_K, 0, 0, 0, i32::from(eff.default_allow)));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// Compile `rules` and attach the program to the cgroup v2 directory `dir`
/// (an O_RDONLY directory fd). Nothing is attached when the rules allow
/// every device.
pub fn apply(dir: &impl AsRawFd, path: &std::path::Path, rules: &[Rule]) -> Result<()> {
    let eff = reduce(rules)?;
    if eff.allows_all() {
        return Ok(());
    }
    let prog = compile(&eff);
    let fd = bpf::load_device_program(&prog).map_err(|(errno, log)| {
        CgroupError::Invalid(format!(
            "loading the cgroup v2 device filter: {errno}{}{log}",
            if log.is_empty() { "" } else { ": " }
        ))
    })?;
    bpf::attach_device_program(dir, &fd).map_err(|errno| CgroupError::Io {
        op: "attaching the device filter to",
        path: path.to_path_buf(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program the way the kernel would for one device access:
    /// an interpreter for exactly the instructions `compile` emits.
    fn run(prog: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm64 = i.imm as i64 as u64;
            let mut next = pc + 1;
            let jump = |cond: bool| {
                if cond {
                    pc + 1 + i.off as usize
                } else {
                    pc + 1
                }
            };
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                MOV32_X => r[dst] = r[src] & 0xffff_ffff,
                AND32_K => r[dst] = (r[dst] & i.imm as u32 as u64) & 0xffff_ffff,
                RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV64_K => r[dst] = imm64,
                JEQ_K => next = jump(r[dst] == imm64),
                JNE_K => next = jump(r[dst] != imm64),
                JSET_K => next = jump(r[dst] & imm64 != 0),
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
            pc = next;
        }
    }

    fn rule(allow: bool, typ: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access: access.into(),
        }
    }

    fn default_rules() -> Vec<Rule> {
        super::super::devices::rules(&[oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap()])
    }

    const R: u8 = ACC_READ;
    const W: u8 = ACC_WRITE;
    const M: u8 = ACC_MKNOD;

    #[test]
    fn default_spec_allows_only_runcs_list() {
        let prog = compile(&reduce(&default_rules()).unwrap());
        let ok = |t, a, ma, mi| run(&prog, t, a, ma, mi) == 1;
        assert!(ok(DEV_CHAR, R | W, 1, 3), "/dev/null");
        assert!(ok(DEV_CHAR, R, 1, 9), "/dev/urandom");
        assert!(ok(DEV_CHAR, R | W, 136, 7), "/dev/pts/7");
        assert!(ok(DEV_CHAR, R | W, 5, 2), "/dev/ptmx");
        assert!(ok(DEV_CHAR, M, 8, 0), "mknod of any char device");
        assert!(ok(DEV_BLOCK, M, 8, 0), "mknod of any block device");
        assert!(!ok(DEV_BLOCK, R, 8, 0), "reading /dev/sda");
        assert!(!ok(DEV_CHAR, R, 1, 1), "/dev/mem");
        assert!(!ok(DEV_CHAR, W, 1, 11), "/dev/kmsg");
        assert!(!ok(DEV_CHAR, R | M, 4, 1), "m alone does not cover r");
    }

    #[test]
    fn later_rules_override_earlier_ones() {
        let mut rules = default_rules();
        rules.push(rule(false, 'c', Some(1), Some(3), "w"));
        let prog = compile(&reduce(&rules).unwrap());
        assert_eq!(run(&prog, DEV_CHAR, R, 1, 3), 1);
        assert_eq!(run(&prog, DEV_CHAR, W, 1, 3), 0);
        assert_eq!(run(&prog, DEV_CHAR, R | W, 1, 3), 0);
        rules.push(rule(true, 'a', None, None, "rwm"));
        assert!(reduce(&rules).unwrap().allows_all());
    }

    #[test]
    fn allow_all_then_deny_some() {
        let rules = vec![
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'b', Some(8), None, "rw"),
        ];
        let prog = compile(&reduce(&rules).unwrap());
        assert_eq!(run(&prog, DEV_BLOCK, R, 8, 1), 0, "any overlap is denied");
        assert_eq!(run(&prog, DEV_BLOCK, M, 8, 1), 1);
        assert_eq!(run(&prog, DEV_CHAR, R, 8, 1), 1, "type must match");
        assert_eq!(run(&prog, DEV_BLOCK, R | W, 9, 0), 1);
    }

    #[test]
    fn no_rules_deny_everything() {
        assert!(!reduce(&[]).unwrap().allows_all());
        let prog = compile(&reduce(&[]).unwrap());
        assert_eq!(run(&prog, DEV_BLOCK, M, 8, 0), 0);
        assert_eq!(run(&prog, DEV_CHAR, R, 1, 3), 0);
        // No spec rule at all: runc's defaults, and nothing more.
        let prog = compile(&reduce(&super::super::devices::rules(&[])).unwrap());
        assert_eq!(run(&prog, DEV_CHAR, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, DEV_BLOCK, R, 8, 0), 0, "/dev/sda");
        assert_eq!(run(&prog, DEV_CHAR, W, 1, 11), 0, "/dev/kmsg");
        assert!(
            reduce(&[rule(true, 'a', None, None, "rwm")])
                .unwrap()
                .allows_all()
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(reduce(&[rule(true, 'c', Some(1), Some(3), "rx")]).is_err());
        assert!(reduce(&[rule(true, 'c', Some(1 << 40), None, "r")]).is_err());
    }

    #[test]
    fn loads_into_the_kernel() {
        // The verifier is the final judge of the encoding.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: loading a BPF program needs root");
            return;
        }
        let prog = compile(&reduce(&default_rules()).unwrap());
        if let Err((e, log)) = bpf::load_device_program(&prog) {
            panic!("verifier rejected the program: {e}\n{log}");
        }
    }

    #[test]
    fn attached_filter_denies_open() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: attaching a BPF program needs root");
            return;
        }
        let Some((mount, _)) = crate::cgroups::Layout::detect().unwrap().v2 else {
            eprintln!("skipped: no cgroup v2 mount on this host");
            return;
        };
        let dir = mount.join(format!("hull-ebpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let fd = std::fs::File::open(&dir).unwrap();
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rw"),
        ];
        apply(&fd, &dir, &rules).unwrap();
        // The shell joins the cgroup, then each command opens a device.
        let procs = dir.join("cgroup.procs");
        let sh = |cmd: &str| {
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("echo $$ > {} && {cmd}", procs.display()))
                .output()
                .unwrap()
        };
        let null = sh("echo x > /dev/null");
        let zero = sh("head -c1 /dev/zero >/dev/null");
        let _ = std::fs::remove_dir(&dir);
        assert!(null.status.success(), "{null:?}");
        assert!(!zero.status.success(), "/dev/zero was opened: {zero:?}");
        assert!(
            String::from_utf8_lossy(&zero.stderr).contains("Operation not permitted"),
            "{zero:?}"
        );
    }
}
