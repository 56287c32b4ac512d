//! linux.seccomp. libseccomp compiles the spec's profile (so a bad profile
//! fails `create`); hull then exports the BPF, prepends runc's "-ENOSYS
//! stub" (a syscall newer than every one the profile names gets -ENOSYS
//! instead of the default errno, so a libc can fall back, `enosys.rs`), and
//! loads it itself with seccomp(2), which takes every filter flag the spec
//! names whatever libseccomp's version, and returns the notify fd for
//! SCMP_ACT_NOTIFY (handed to the agent at listenerPath, `notify.rs`).
//!
//! The filter is loaded as late as the kernel allows: just before execve
//! when no_new_privs is set, otherwise before capabilities are dropped
//! (loading without NNP needs CAP_SYS_ADMIN). Nothing that a strict
//! allow-list profile would deny (openat2, fsopen, close_range...) runs
//! after it.

mod enosys;
pub mod notify;

use std::os::fd::{AsRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

/// Actions hull implements, by their spec names (for `features`).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A compiled filter, ready to load.
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl Filter {
    /// The profile has SCMP_ACT_NOTIFY rules: loading yields a notify fd.
    #[cfg(test)]
    pub fn notifies(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }
}

fn is_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Whether the profile hands a notify fd to an agent.
pub fn uses_agent(s: &LinuxSeccomp) -> bool {
    is_notify(s) && s.listener_path().is_some()
}

/// Config checks, before anything exists.
pub fn validate(s: &LinuxSeccomp) -> Result<(), String> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err("SCMP_ACT_NOTIFY cannot be used as default action".into());
    }
    // As runc: an agent that must handle the stage's own writes could
    // hang the start (runc's sync pipe); refused the same way here.
    let notified_write = s.syscalls().iter().flatten().any(|r| {
        r.action() == LinuxSeccompAction::ScmpActNotify && r.names().iter().any(|n| n == "write")
    });
    if notified_write {
        return Err("SCMP_ACT_NOTIFY cannot be used for the write syscall".into());
    }
    let flags = s.flags().as_deref().unwrap_or(&[]);
    if is_notify(s) {
        match s.listener_path() {
            None => {
                return Err(
                    "seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the seccomp agent's socket)"
                        .into(),
                );
            }
            Some(p) if !p.is_absolute() => {
                return Err(format!(
                    "seccomp: listenerPath {} must be an absolute path",
                    p.display()
                ));
            }
            Some(_) => {}
        }
    } else if flags.contains(&LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv) {
        return Err(
            "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only applies to a profile with SCMP_ACT_NOTIFY rules"
                .into(),
        );
    }
    Ok(())
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    match a {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        // runc's SCMP_ACT_KILL kills the thread, as libseccomp's does.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn op(o: LinuxSeccompOperator, value: u64) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

fn err(what: &str, e: libseccomp::error::SeccompError) -> String {
    format!("seccomp: {what}: {e}")
}

/// The profile's architectures (the spec's names), as libseccomp's.
fn architectures(s: &LinuxSeccomp) -> Result<Vec<ScmpArch>, String> {
    s.architectures()
        .iter()
        .flatten()
        .map(|arch| {
            let name = serde_json::to_value(arch)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            name.parse()
                .map_err(|_| format!("seccomp: unknown architecture {name}"))
        })
        .collect()
}

/// Compile the spec's profile into a patched BPF program; nothing is
/// loaded yet.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, String> {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| err("creating filter", e))?;
    // no_new_privs is the spec's call (process.noNewPrivileges), not libseccomp's.
    ctx.set_ctl_nnp(false)
        .map_err(|e| err("NNP attribute", e))?;
    let archs = architectures(s)?;
    for a in &archs {
        ctx.add_arch(*a)
            .map_err(|e| err(&format!("adding architecture {a:?}"), e))?;
    }
    for rule in s.syscalls().as_deref().unwrap_or(&[]) {
        add_rule(&mut ctx, rule, default)?;
    }
    let prog = export(&ctx)?;
    let prog = match enosys::wanted(s) {
        true => enosys::patch(&enosys::last_syscalls(s, &archs), prog)?,
        false => prog,
    };
    Ok(Filter {
        prog,
        flags: flags(s),
    })
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &oci_spec::runtime::LinuxSyscall,
    default: ScmpAction,
) -> Result<(), String> {
    let act = action(rule.action(), rule.errno_ret());
    // libseccomp refuses rules that repeat the default action.
    if act == default {
        return Ok(());
    }
    let args = rule.args().as_deref().unwrap_or(&[]);
    let conds: Vec<ScmpArgCompare> = args
        .iter()
        .map(|a| match a.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpArgCompare::new(
                a.index() as u32,
                op(a.op(), a.value()),
                a.value_two().unwrap_or(0),
            ),
            o => ScmpArgCompare::new(a.index() as u32, op(o, a.value()), a.value()),
        })
        .collect();
    // Conditions on one argument index must be separate rules (runc).
    let mut indices: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indices.sort_unstable();
    let repeated = indices.windows(2).any(|w| w[0] == w[1]);
    for name in rule.names() {
        // Syscalls this libseccomp or architecture does not know are
        // skipped, as runc does.
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let r = if conds.is_empty() {
            ctx.add_rule(act, sc).map(|_| ())
        } else if repeated {
            conds.iter().try_for_each(|c| {
                ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                    .map(|_| ())
            })
        } else {
            ctx.add_rule_conditional(act, sc, &conds).map(|_| ())
        };
        r.map_err(|e| err(&format!("adding rule for {name}"), e))?;
    }
    Ok(())
}

/// libseccomp's BPF program, through a memfd (no size limit, no blocking).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, String> {
    use std::io::{Read, Seek};
    let fd = crate::sys::memfd_create(c"hull-seccomp", libc::MFD_CLOEXEC)
        .map_err(|e| format!("seccomp: memfd: {e}"))?;
    ctx.export_bpf(&fd)
        .map_err(|e| err("exporting the filter", e))?;
    let mut f = std::fs::File::from(fd);
    let mut raw = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut raw))
        .map_err(|e| format!("seccomp: reading the exported filter: {e}"))?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// seccomp(2) flags: the spec's, plus a listener for NOTIFY rules. No
/// `flags` at all means SPEC_ALLOW, as with runc (and Docker): the filter
/// does not force the speculative-store-bypass mitigation on the process.
fn flags(s: &LinuxSeccomp) -> libc::c_ulong {
    let Some(list) = s.flags().as_deref() else {
        return libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW | listener(s, 0);
    };
    let mut f: libc::c_ulong = 0;
    for flag in list {
        f |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    f | listener(s, f)
}

/// The flags a NOTIFY profile adds to `f`.
fn listener(s: &LinuxSeccomp, f: libc::c_ulong) -> libc::c_ulong {
    if !is_notify(s) {
        return 0;
    }
    // TSYNC with a listener needs TSYNC_ESRCH (we are single-threaded:
    // there is nothing to synchronize, but the flag is honoured).
    if f & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
    } else {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    }
}

/// Load the filter into this process; the notify fd when it has NOTIFY
/// rules.
pub fn load(f: &Filter) -> Result<Option<OwnedFd>, String> {
    let fd = crate::sys::seccomp_set_filter(f.flags, &f.prog)
        .map_err(|e| format!("loading seccomp filter: {}", e.desc()))?;
    Ok(fd.filter(|fd| fd.as_raw_fd() >= 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_a_typical_profile() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
            ]
        }));
        let f = compile(&p).unwrap();
        assert!(!f.notifies());
        assert!(f.prog.len() > 10);
    }

    #[test]
    fn notify_needs_a_listener_and_sets_one_up() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(validate(&p).unwrap_err().contains("listenerPath"));
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        validate(&p).unwrap();
        let f = compile(&p).unwrap();
        assert!(f.notifies());
        assert_ne!(f.flags & libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH, 0);
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        }));
        assert!(validate(&p).unwrap_err().contains("WAIT_KILLABLE_RECV"));
    }

    #[test]
    fn flags_map_to_the_kernels() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
        }));
        assert_eq!(
            flags(&p),
            libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                | libc::SECCOMP_FILTER_FLAG_TSYNC
        );
        let none = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert_eq!(flags(&none), libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
        let empty = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}));
        assert_eq!(flags(&empty), 0);
    }
}
