//! runc's "-ENOSYS stub": libseccomp gives a syscall the profile does not
//! name the default action, typically EPERM. For a syscall *newer* than
//! every one the profile names (its author could not have known it), EPERM
//! makes a libc believe the call exists and failed, where -ENOSYS makes it
//! fall back to an older one (clone3 → clone, faccessat2 → faccessat...).
//! So, per architecture, a syscall number above the largest the profile
//! names gets -ENOSYS before the profile's filter runs. Skipped when the
//! default action lets everything through anyway (allow, log, trace) or is
//! already ENOSYS.

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 syscalls arrive as x86_64 ones with this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The largest syscall number the profile names, per kernel architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    Plain {
        audit: u32,
        max: u32,
    },
    /// x86_64 and x32 share AUDIT_ARCH_X86_64.
    Amd64 {
        native: Option<u32>,
        x32: Option<u32>,
    },
}

pub fn wanted(s: &LinuxSeccomp) -> bool {
    let permissive = matches!(
        s.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    );
    let enosys_already = s.default_action() == LinuxSeccompAction::ScmpActErrno
        && s.default_errno_ret() == Some(libc::ENOSYS as u32);
    !permissive && !enosys_already
}

fn largest(s: &LinuxSeccomp, arch: ScmpArch) -> Option<u32> {
    s.syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names())
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        // Names an architecture does not have (socketcall, ipc, _llseek on
        // x86_64) come back as libseccomp's negative pseudo-numbers.
        .filter_map(|sc| u32::try_from(i32::from(sc)).ok())
        .max()
}

/// The sections for the profile's architectures and the native one.
pub fn last_syscalls(s: &LinuxSeccomp, archs: &[ScmpArch]) -> Vec<Section> {
    let mut archs = archs.to_vec();
    let native = ScmpArch::native();
    if !archs.contains(&native) {
        archs.push(native);
    }
    let mut out = Vec::new();
    let (mut amd64, mut x32) = (None, None);
    for arch in archs {
        match arch {
            ScmpArch::X8664 => amd64 = largest(s, arch),
            ScmpArch::X32 => x32 = largest(s, arch).map(|n| n | X32_SYSCALL_BIT),
            ScmpArch::X86 | ScmpArch::Aarch64 | ScmpArch::Arm => {
                let audit = match arch {
                    ScmpArch::X86 => AUDIT_ARCH_I386,
                    ScmpArch::Aarch64 => AUDIT_ARCH_AARCH64,
                    _ => AUDIT_ARCH_ARM,
                };
                if let Some(max) = largest(s, arch) {
                    out.push(Section::Plain { audit, max });
                }
            }
            // Other architectures keep the profile's default action.
            _ => {}
        }
    }
    if amd64.is_some() || x32.is_some() {
        out.insert(0, Section::Amd64 { native: amd64, x32 });
    }
    out
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// offsetof(struct seccomp_data, nr) and (…, arch).
const NR: u32 = 0;
const ARCH: u32 = 4;

/// A jump target while the stub is assembled.
#[derive(Clone, Copy)]
enum To {
    Next,
    Enosys,
    Filter,
    At(usize),
}

enum Insn {
    Ld(u32),
    /// Conditional jump: opcode, k, true, false.
    Jmp(u16, u32, To, To),
    Ja(To),
    RetEnosys,
}

/// Prepend the stub for `sections` to libseccomp's program.
pub fn patch(
    sections: &[Section],
    prog: Vec<libc::sock_filter>,
) -> Result<Vec<libc::sock_filter>, String> {
    if sections.is_empty() {
        return Ok(prog);
    }
    let mut out = assemble(&stub(sections))?;
    out.extend(prog);
    if out.len() > libc::BPF_MAXINSNS as usize {
        return Err(format!(
            "seccomp: the filter has {} instructions, more than the kernel's {}",
            out.len(),
            libc::BPF_MAXINSNS
        ));
    }
    Ok(out)
}

/// ld arch; one jeq per section; ja filter; the sections; ret ENOSYS.
fn stub(sections: &[Section]) -> Vec<Insn> {
    let mut code = vec![Insn::Ld(ARCH)];
    let heads = 1 + sections.len() + 1;
    let mut starts = Vec::new();
    let mut at = heads;
    for s in sections {
        starts.push(at);
        at += match s {
            Section::Plain { .. } => 2,
            Section::Amd64 { .. } => 4,
        };
    }
    for (s, start) in sections.iter().zip(&starts) {
        let audit = match s {
            Section::Plain { audit, .. } => *audit,
            Section::Amd64 { .. } => AUDIT_ARCH_X86_64,
        };
        code.push(Insn::Jmp(JEQ_K, audit, To::At(*start), To::Next));
    }
    code.push(Insn::Ja(To::Filter));
    for s in sections {
        code.push(Insn::Ld(NR));
        match s {
            Section::Plain { max, .. } => {
                code.push(Insn::Jmp(JGT_K, *max, To::Enosys, To::Filter));
            }
            Section::Amd64 { native, x32 } => {
                let x32_check = code.len() + 2;
                code.push(Insn::Jmp(
                    JSET_K,
                    X32_SYSCALL_BIT,
                    To::At(x32_check),
                    To::Next,
                ));
                let check = |max: &Option<u32>| match max {
                    Some(m) => Insn::Jmp(JGT_K, *m, To::Enosys, To::Filter),
                    None => Insn::Ja(To::Filter),
                };
                code.push(check(native));
                code.push(check(x32));
            }
        }
    }
    code.push(Insn::RetEnosys);
    code
}

/// Resolve the labels: ENOSYS is the last stub instruction, the filter
/// starts right after it.
fn assemble(code: &[Insn]) -> Result<Vec<libc::sock_filter>, String> {
    let enosys = code.len() - 1;
    let filter = code.len();
    let offset = |from: usize, to: To| -> Result<usize, String> {
        let target = match to {
            To::Next => from + 1,
            To::Enosys => enosys,
            To::Filter => filter,
            To::At(i) => i,
        };
        target
            .checked_sub(from + 1)
            .ok_or_else(|| "seccomp: backward jump in the ENOSYS stub".to_string())
    };
    let short = |n: usize| u8::try_from(n).map_err(|_| "seccomp: ENOSYS stub too long".to_string());
    let ret_enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    code.iter()
        .enumerate()
        .map(|(pc, insn)| {
            Ok(match *insn {
                Insn::Ld(k) => filter_insn(LD_W_ABS, 0, 0, k),
                Insn::Jmp(op, k, t, f) => {
                    filter_insn(op, short(offset(pc, t)?)?, short(offset(pc, f)?)?, k)
                }
                Insn::Ja(to) => filter_insn(JA, 0, 0, offset(pc, to)? as u32),
                Insn::RetEnosys => filter_insn(RET_K, 0, 0, ret_enosys),
            })
        })
        .collect()
}

fn filter_insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the instructions seccomp programs use.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => a = if i.k == NR { nr } else { arch },
                JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
                JGT_K => pc += if a > i.k { i.jt } else { i.jf } as usize,
                JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
                JA => pc += i.k as usize,
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    /// Stands in for libseccomp's program: always "the profile's verdict".
    fn profile_filter() -> Vec<libc::sock_filter> {
        vec![filter_insn(RET_K, 0, 0, 0x7fff_0000)]
    }

    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const PROFILE: u32 = 0x7fff_0000;

    #[test]
    fn newer_syscalls_get_enosys_older_ones_the_profile() {
        let s = vec![
            Section::Amd64 {
                native: Some(334),
                x32: Some(X32_SYSCALL_BIT | 547),
            },
            Section::Plain {
                audit: AUDIT_ARCH_I386,
                max: 386,
            },
        ];
        let p = patch(&s, profile_filter()).unwrap();
        assert_eq!(run(&p, 0, AUDIT_ARCH_X86_64), PROFILE);
        assert_eq!(run(&p, 334, AUDIT_ARCH_X86_64), PROFILE);
        assert_eq!(run(&p, 335, AUDIT_ARCH_X86_64), ENOSYS);
        assert_eq!(run(&p, 1000, AUDIT_ARCH_X86_64), ENOSYS);
        assert_eq!(run(&p, X32_SYSCALL_BIT | 547, AUDIT_ARCH_X86_64), PROFILE);
        assert_eq!(run(&p, X32_SYSCALL_BIT | 548, AUDIT_ARCH_X86_64), ENOSYS);
        assert_eq!(run(&p, 386, AUDIT_ARCH_I386), PROFILE);
        assert_eq!(run(&p, 387, AUDIT_ARCH_I386), ENOSYS);
        // Another architecture: straight to the profile.
        assert_eq!(run(&p, 5000, AUDIT_ARCH_AARCH64), PROFILE);
    }

    #[test]
    fn x86_64_without_x32_leaves_x32_calls_to_the_profile() {
        let s = vec![Section::Amd64 {
            native: Some(100),
            x32: None,
        }];
        let p = patch(&s, profile_filter()).unwrap();
        assert_eq!(run(&p, 101, AUDIT_ARCH_X86_64), ENOSYS);
        assert_eq!(run(&p, X32_SYSCALL_BIT | 5, AUDIT_ARCH_X86_64), PROFILE);
    }

    #[test]
    fn sections_come_from_the_names_in_the_profile() {
        let p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["read", "write", "openat2", "socketcall", "_llseek"], "action": "SCMP_ACT_ALLOW"}]
        }))
        .unwrap();
        assert!(wanted(&p));
        let s = last_syscalls(&p, &[ScmpArch::X8664, ScmpArch::X86]);
        // openat2 is 437 on x86_64 and on i386.
        assert_eq!(
            s,
            vec![
                Section::Amd64 {
                    native: Some(437),
                    x32: None
                },
                Section::Plain {
                    audit: AUDIT_ARCH_I386,
                    max: 437
                }
            ]
        );
        let allow: LinuxSeccomp =
            serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"})).unwrap();
        assert!(!wanted(&allow));
        let enosys: LinuxSeccomp = serde_json::from_value(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}),
        )
        .unwrap();
        assert!(!wanted(&enosys));
    }
}
