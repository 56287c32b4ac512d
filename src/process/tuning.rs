//! Per-process kernel settings the spec can ask for: CPU affinity, I/O
//! priority, scheduler, NUMA memory policy and personality; the LSM exec
//! labels are in lsm.rs. Each is applied by the stage (and inherited across execve);
//! the ones that need privileges run before capabilities are dropped.

use nix::sched::CpuSet;
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process, Spec,
};

use crate::error::{Ctx, Result, StageError};
use crate::sys;

pub use crate::plan::cpu_list::parse as parse_list;

fn cpuset(list: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for cpu in parse_list(list).map_err(|e| StageError::new(format!("execCPUAffinity: {e}")))? {
        set.set(cpu)
            .map_err(|_| StageError::new(format!("execCPUAffinity: cpu {cpu} is out of range")))?;
    }
    Ok(set)
}

/// The affinity the set-up runs with: `execCPUAffinity.initial`, or every
/// CPU, so that a runtime pinned by its caller does not pin the container.
pub fn initial_affinity(process: &Process) -> Result<()> {
    let set = match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
    {
        Some(list) => cpuset(list)?,
        None => {
            let mut all = CpuSet::new();
            for cpu in 0..CpuSet::count() {
                let _ = all.set(cpu);
            }
            all
        }
    };
    // The kernel intersects with the cgroup's cpuset.
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .ctx(|| "setting the initial CPU affinity".into())
}

/// `execCPUAffinity.final`, applied right before execve.
pub fn final_affinity(process: &Process) -> Result<()> {
    if let Some(list) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
    {
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpuset(list)?)
            .ctx(|| "setting the final CPU affinity".into())?;
    }
    Ok(())
}

/// I/O priority, scheduler, memory policy, personality: before caps drop.
pub fn apply(spec: &Spec, process: &Process) -> Result<()> {
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        if !(0..=7).contains(&io.priority()) {
            return Err(StageError::new(format!(
                "ioPriority.priority {} is out of range [0, 7]",
                io.priority()
            )));
        }
        sys::ioprio_set((class << 13) | io.priority() as i32)
            .ctx(|| "setting the I/O priority".into())?;
    }
    if let Some(s) = process.scheduler() {
        let mut attr = sys::SchedAttr {
            sched_policy: match s.policy() {
                LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER as u32,
                LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO as u32,
                LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR as u32,
                LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH as u32,
                LinuxSchedulerPolicy::SchedIso => 4,
                LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE as u32,
                LinuxSchedulerPolicy::SchedDeadline => 6,
            },
            sched_nice: s.nice().unwrap_or(0),
            sched_priority: s.priority().unwrap_or(0) as u32,
            sched_runtime: s.runtime().unwrap_or(0),
            sched_deadline: s.deadline().unwrap_or(0),
            sched_period: s.period().unwrap_or(0),
            ..Default::default()
        };
        for f in s.flags().as_deref().unwrap_or(&[]) {
            attr.sched_flags |= match f {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            };
        }
        let cpuset = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref()?.cpu().as_ref()?.cpus().as_deref())
            .is_some_and(|c| !c.is_empty());
        match sys::sched_setattr(&mut attr) {
            // runc's words: a deadline policy is refused in a cgroup whose
            // cpuset is not the root domain's.
            Err(nix::errno::Errno::EPERM) if cpuset => {
                return Err(StageError::new(
                    "process scheduler can't be used together with AllowedCPUs",
                ));
            }
            r => r.ctx(|| format!("sched_setattr ({:?})", s.policy()))?,
        }
    }
    let linux = spec.linux().as_ref();
    if let Some(mp) = linux.and_then(|l| l.memory_policy().as_ref()) {
        memory_policy(mp)?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(StageError::new("linux.personality.flags are not supported"));
        }
        let persona = match p.domain() {
            LinuxPersonalityDomain::PerLinux => 0x0000,
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        sys::personality(persona).ctx(|| "setting the personality".into())?;
    }
    Ok(())
}

/// The `linux.memoryPolicy` modes and flags hull applies, sorted, as
/// `hull features` reports them (a unit test ties them to the match below).
pub const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_BIND",
    "MPOL_DEFAULT",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
pub const MEMORY_POLICY_FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

fn memory_policy(mp: &LinuxMemoryPolicy) -> Result<()> {
    let mut mode = match mp.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    for f in mp.flags().as_deref().unwrap_or(&[]) {
        mode |= match f {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let nodes = match mp.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(n) => {
            parse_list(n).map_err(|e| StageError::new(format!("memoryPolicy.nodes: {e}")))?
        }
        None => Vec::new(),
    };
    let bits = std::mem::size_of::<libc::c_ulong>() * 8;
    let max = nodes.iter().max().map_or(0, |m| m + 1);
    let mut mask = vec![0 as libc::c_ulong; max.div_ceil(bits)];
    for n in &nodes {
        mask[n / bits] |= 1 << (n % bits);
    }
    // The kernel's maxnode counts one past the highest bit it reads.
    let maxnode = if nodes.is_empty() {
        0
    } else {
        (max + 1) as u64
    };
    sys::set_mempolicy(mode, &mask, maxnode).ctx(|| format!("set_mempolicy ({:?})", mp.mode()))
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    /// Every name `hull features` lists is one the config parser reads,
    /// and every mode and flag the crate knows is listed.
    #[test]
    fn memory_policy_names_are_the_parsers() {
        use oci_spec::runtime::{MemoryPolicyFlagType, MemoryPolicyModeType};
        for m in super::MEMORY_POLICY_MODES {
            serde_json::from_value::<MemoryPolicyModeType>(m.into()).unwrap();
        }
        for f in super::MEMORY_POLICY_FLAGS {
            serde_json::from_value::<MemoryPolicyFlagType>(f.into()).unwrap();
        }
        let mut sorted = super::MEMORY_POLICY_MODES;
        sorted.sort();
        assert_eq!(sorted, super::MEMORY_POLICY_MODES);
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_list("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_list("5").unwrap(), vec![5]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("x").is_err());
        assert!(parse_list("").is_err());
    }
}
