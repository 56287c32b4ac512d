//! cgroup v1: one hierarchy per controller set; each limit goes into the
//! directory of the hierarchy that carries its controller, in the kernel's
//! own units (the OCI spec was written for v1, so no conversions here).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxThrottleDevice,
};

use super::files::{self, write};
use super::{CgroupError, Result, devices};

/// A v1 cpuset cgroup with empty cpus or mems refuses tasks (ENOSPC), and
/// a new one starts so: fill `dir` and every ancestor left empty from its
/// parent, top down, as runc does. An empty ancestor is one someone made
/// and left unusable (a pod's cgroup); filling it is the only way in.
pub(super) fn fill_cpuset(dir: &Path) -> Result<()> {
    let mut empty = Vec::new();
    let mut d = dir;
    loop {
        let missing: Vec<&str> = ["cpuset.cpus", "cpuset.mems"]
            .into_iter()
            .filter(|f| files::read(d, f).map_or(true, |v| v.trim().is_empty()))
            .collect();
        if missing.is_empty() {
            break;
        }
        // The hierarchy's root always has both; above it is no cpuset.
        let Some(parent) = d.parent().filter(|p| p.join("cpuset.cpus").exists()) else {
            break;
        };
        empty.push((d, parent, missing));
        d = parent;
    }
    for (d, parent, missing) in empty.into_iter().rev() {
        for f in missing {
            let v = files::read(parent, f)?;
            write(d, f, v.trim())?;
        }
    }
    Ok(())
}

/// The kernel lists a cgroup's exceptions in the order they were written:
/// write them in the order of the rules (the config's, then runc's default
/// list), so devices.list shows the config's entries in its order
/// (runtime-tools checks "the runtime MUST apply entries in the listed
/// order"). Still "a" first and every new exception before any dropped
/// one: while moving, nothing allowed is denied.
fn in_config_order(
    mut writes: Vec<devices::Rule>,
    rules: &[devices::Rule],
    allow_all: bool,
) -> Vec<devices::Rule> {
    let pos = |w: &devices::Rule| {
        rules
            .iter()
            .position(|r| (r.typ, r.major, r.minor) == (w.typ, w.major, w.minor))
            .unwrap_or(usize::MAX)
    };
    writes.sort_by_key(|w| (w.typ != 'a', w.allow == allow_all, pos(w)));
    writes
}

/// The container's directory in the hierarchy carrying `controller`.
pub(super) fn dir_of<'a>(dirs: &'a [(String, PathBuf)], controller: &str) -> Option<&'a Path> {
    dirs.iter()
        .find(|(c, _)| c.split(',').any(|x| x == controller))
        .map(|(_, p)| p.as_path())
}

/// Write only the change from the cgroup's current rules to `rules`'
/// outcome (see `devices::V1State`).
pub(super) fn set_devices(dir: &Path, rules: &[devices::Rule]) -> Result<()> {
    let current = devices::V1State::parse(&files::read(dir, "devices.list")?);
    // The rules apply to "deny everything" (runc's whitelist emulator), not
    // to what the cgroup inherited: only the writes are minimal.
    let mut target = devices::V1State::default();
    for r in rules {
        target.apply(r);
    }
    // One open per file: the kernel takes each write as one rule.
    let mut files = files::Writer::new(dir);
    for rule in in_config_order(current.transition(&target), rules, target.allow_all) {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        files.write(file, &rule.v1_text())?;
    }
    Ok(())
}

fn set_memory_limit(dir: &Path, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    write(dir, "memory.limit_in_bytes", &limit.to_string()).map_err(|e| match e {
        CgroupError::Write {
            errno: nix::errno::Errno::EBUSY,
            ..
        } => {
            let usage = files::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0);
            let peak = files::read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0);
            CgroupError::Invalid(format!(
                "unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})"
            ))
        }
        e => e,
    })
}

fn set_swap_limit(dir: &Path, swap: i64) -> Result<()> {
    if swap == 0 {
        return Ok(());
    }
    write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())
}

/// runc's order for memory and memory+swap: the kernel refuses a memory
/// limit above memsw and a memsw below memory, so raise memsw first when
/// growing.
pub(super) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if limit == -1 && swap == 0 && dir.join("memory.memsw.limit_in_bytes").exists() {
        swap = -1;
    }
    super::check_before_update(m, || files::read_u64(dir, "memory.usage_in_bytes"))?;
    let mut done = false;
    if limit != 0 && swap != 0 {
        let cur = files::read_u64(dir, "memory.limit_in_bytes")?;
        if swap == -1 || cur < swap as u64 {
            set_swap_limit(dir, swap)?;
            set_memory_limit(dir, limit)?;
            done = true;
        }
    }
    if !done {
        set_memory_limit(dir, limit)?;
        set_swap_limit(dir, swap)?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::Invalid(format!(
                "invalid memory swappiness value: {s} (valid range is 0-100)"
            )));
        }
        write(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(h) = m.use_hierarchy() {
        write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

pub(super) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    // Realtime first: a task with a realtime policy cannot join a cgroup
    // that has no realtime budget.
    let runtime = c.realtime_runtime().filter(|&r| r != 0);
    let mut rt_period_pending = None;
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        // A shorter period than the runtime in place is refused (EINVAL):
        // runc then writes the runtime first, as here.
        match write(dir, "cpu.rt_period_us", &p.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write {
                errno: nix::errno::Errno::EINVAL,
                ..
            }) if runtime.is_some() => rt_period_pending = Some(p),
            Err(e) => return Err(e),
        }
    }
    if let Some(r) = runtime {
        write(dir, "cpu.rt_runtime_us", &r.to_string())?;
        if let Some(p) = rt_period_pending {
            write(dir, "cpu.rt_period_us", &p.to_string())?;
        }
    }
    if let Some(shares) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.shares", &shares.to_string())?;
        // The kernel clamps out-of-range shares silently; runc reports it.
        let got = files::read_u64(dir, "cpu.shares")?;
        if shares > got {
            return Err(CgroupError::Invalid(format!(
                "the maximum allowed cpu-shares is {got}"
            )));
        } else if shares < got {
            return Err(CgroupError::Invalid(format!(
                "the minimum allowed cpu-shares is {got}"
            )));
        }
    }
    let quota = c.quota().unwrap_or(0);
    let mut period_pending = None;
    if let Some(p) = c.period().filter(|&p| p != 0) {
        // A smaller period can be refused (EINVAL) while the old quota is
        // still in place: retry after the quota when one is coming.
        match write(dir, "cpu.cfs_period_us", &p.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write {
                errno: nix::errno::Errno::EINVAL,
                ..
            }) if quota != 0 => period_pending = Some(p),
            Err(e) => return Err(e),
        }
    }
    if quota != 0 {
        write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if let Some(p) = period_pending {
            write(dir, "cpu.cfs_period_us", &p.to_string())?;
        }
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// cpuset.cpus and cpuset.mems: the same file names on v1 and v2.
pub(super) fn set_cpuset(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// pids.max, same file on v1 and v2.
pub(super) fn set_pids(dir: &Path, limit: i64) -> Result<()> {
    write(dir, "pids.max", &super::pids_max(limit))
}

fn throttle(dir: &Path, file: &str, list: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for t in list.iter().flatten() {
        write(
            dir,
            file,
            &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
        )?;
    }
    Ok(())
}

pub(super) fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // With the BFQ scheduler the weights live under blkio.bfq.* (CFQ, and
    // with it blkio.weight, is gone since Linux 5.0).
    let bfq = dir.join("blkio.bfq.weight").exists();
    let (weight, weight_device) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        write(dir, weight, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|&w| w != 0) {
            write(
                dir,
                weight_device,
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
        if let Some(w) = wd.leaf_weight().filter(|&w| w != 0) {
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    throttle(
        dir,
        "blkio.throttle.read_bps_device",
        b.throttle_read_bps_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.write_bps_device",
        b.throttle_write_bps_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.read_iops_device",
        b.throttle_read_iops_device(),
    )?;
    throttle(
        dir,
        "blkio.throttle.write_iops_device",
        b.throttle_write_iops_device(),
    )?;
    Ok(())
}

pub(super) fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
        write(dir, &file, &l.limit().to_string())
            .map_err(|e| super::hugetlb_error(e, l.page_size()))?;
    }
    Ok(())
}

pub(super) fn set_net_cls(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    match n.class_id() {
        Some(id) => write(dir, "net_cls.classid", &id.to_string()),
        None => Ok(()),
    }
}

pub(super) fn set_net_prio(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    for p in n.priorities().iter().flatten() {
        write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::devices::{Rule, V1State};

    fn rule(allow: bool, typ: char, major: i64, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            typ,
            major: Some(major),
            minor,
            access: access.into(),
        }
    }

    /// runtime-tools' linux_cgroups_devices: from deny-all, the config's
    /// allows are written first and in its order, runc's defaults after.
    #[test]
    fn device_rules_are_written_in_the_configs_order() {
        let rules = vec![
            rule(true, 'c', 10, Some(229), "rwm"),
            rule(true, 'b', 8, Some(20), "rw"),
            rule(true, 'b', 10, Some(200), "r"),
            rule(true, 'c', 1, Some(3), "rwm"),
        ];
        let mut target = V1State::default();
        for r in &rules {
            target.apply(r);
        }
        let writes = super::in_config_order(V1State::default().transition(&target), &rules, false);
        let texts: Vec<String> = writes.iter().map(Rule::v1_text).collect();
        // (Letters in set order; the kernel reads them in any.)
        assert_eq!(
            texts,
            ["c 10:229 mrw", "b 8:20 rw", "b 10:200 r", "c 1:3 mrw"]
        );
    }
}
