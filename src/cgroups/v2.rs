//! cgroup v2: one unified hierarchy. Controllers must be enabled in every
//! ancestor's cgroup.subtree_control before their files appear, and several
//! v1-shaped spec values are converted the way runc converts them (shares
//! to weight, memory+swap to swap, blkio weight to io weight).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxThrottleDevice,
};

use super::files::{self, write};
use super::{CgroupError, Result};

/// Enable `wanted` controllers on the path from `mount` down to `dir`'s
/// parent, writing only the ones missing at each level. Controllers in
/// `required` must succeed; the others (runc enables everything it can so
/// that stats and later updates work) are best effort.
pub(super) fn enable_controllers(
    mount: &Path,
    dir: &Path,
    wanted: &[String],
    required: &[String],
) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut level = mount.to_path_buf();
    let depth = rel.components().count();
    for (i, comp) in std::iter::once(None)
        .chain(rel.components().map(Some))
        .enumerate()
    {
        if let Some(c) = comp {
            level.push(c);
        }
        if i == depth {
            break;
        }
        let enabled = files::read(&level, "cgroup.subtree_control")?;
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| !enabled.contains(&w.as_str()))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let all = missing
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        if write(&level, "cgroup.subtree_control", &all).is_ok() {
            continue;
        }
        // One at a time, to tell which one the kernel refuses.
        for c in missing {
            if let Err(e) = write(&level, "cgroup.subtree_control", &format!("+{c}")) {
                if required.contains(c) {
                    return Err(e);
                }
                crate::debug!("enabling cgroup v2 controller {c}: {e}");
            }
        }
    }
    Ok(())
}

/// The controllers of the v2 hierarchy (those bound to it on a hybrid host).
pub(super) fn controllers(mount: &Path) -> Result<Vec<String>> {
    Ok(files::read(mount, "cgroup.controllers")?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// runc's cpu.shares → cpu.weight: a quadratic in log2(shares) through
/// (2, 1), (1024, 100) and (262144, 10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// blkio.weight [10, 1000] → io.weight [1, 10000], linearly.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// The spec's swap is memory+swap (v1); v2 limits swap alone.
pub fn swap_to_v2(swap: i64, memory: i64) -> Result<i64> {
    let err = |m: &str| Err(CgroupError::Invalid(m.to_string()));
    match (swap, memory) {
        (0, -1) => Ok(-1),
        (-1 | 0, _) => Ok(swap),
        (_, -1) => Ok(swap),
        (_, 0) => err("unable to set swap limit without memory limit"),
        (_, m) if m < 0 => err(&format!("invalid memory value: {m}")),
        (s, m) if s < m => err("memory+swap limit should be >= memory limit"),
        (s, m) => Ok(s - m),
    }
}

fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        v if v < 0 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

pub(super) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
    let reservation = m.reservation().unwrap_or(0);
    if m.swappiness().is_some() {
        return Err(CgroupError::Invalid(
            "linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness".into(),
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(CgroupError::Invalid(
            "linux.resources.memory.disableOOMKiller: the OOM killer cannot be disabled on cgroup v2"
                .into(),
        ));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(CgroupError::Invalid(
            "linux.resources.memory.useHierarchy: cgroup v2 is always hierarchical".into(),
        ));
    }
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    super::check_before_update(m, || files::read_u64(dir, "memory.current"))?;
    let v2swap = swap_to_v2(swap, limit)?;
    let swap_str = match num(v2swap) {
        // memory == memory+swap: no swap at all.
        None if swap > 0 => Some("0".to_string()),
        s => s,
    };
    if let Some(s) = swap_str {
        match write(dir, "memory.swap.max", &s) {
            // Without swap accounting there is no file: "no swap" and
            // "unlimited swap" are then already true.
            Err(e) if files::is_not_found(&e) && (s == "max" || s == "0") => {}
            r => r?,
        }
    }
    if let Some(l) = num(limit) {
        write(dir, "memory.max", &l)?;
    }
    if let Some(r) = num(reservation) {
        write(dir, "memory.low", &r)?;
    }
    Ok(())
}

/// cpu.max takes quota and period together; `current` supplies the one
/// an update leaves out.
pub(super) fn set_cpu(dir: &Path, c: &LinuxCpu, update: bool) -> Result<()> {
    if c.realtime_period().is_some_and(|p| p != 0) || c.realtime_runtime().is_some_and(|r| r != 0) {
        return Err(CgroupError::Invalid(
            "linux.resources.cpu.realtimePeriod/realtimeRuntime: cgroup v2 has no realtime group scheduling"
                .into(),
        ));
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    let weight = shares_to_weight(c.shares().unwrap_or(0));
    if weight != 0 {
        write(dir, "cpu.weight", &weight.to_string())?;
    }
    let (mut quota, mut period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
    let mut burst_pending = None;
    if let Some(b) = c.burst() {
        // A burst above the current quota is refused until the new quota
        // is in place.
        match write(dir, "cpu.max.burst", &b.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write {
                errno: nix::errno::Errno::EINVAL,
                ..
            }) if quota != 0 => burst_pending = Some(b),
            Err(e) => return Err(e),
        }
    }
    if quota != 0 || period != 0 {
        if update && (quota == 0 || period == 0) {
            let cur = files::read(dir, "cpu.max")?;
            let mut it = cur.split_whitespace();
            let (q, p) = (it.next().unwrap_or("max"), it.next().unwrap_or("100000"));
            if quota == 0 {
                quota = if q == "max" {
                    -1
                } else {
                    q.parse().unwrap_or(-1)
                };
            }
            if period == 0 {
                period = p.parse().unwrap_or(100_000);
            }
        }
        let q = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        let p = if period == 0 { 100_000 } else { period };
        write(dir, "cpu.max", &format!("{q} {p}"))?;
        if let Some(b) = burst_pending {
            write(dir, "cpu.max.burst", &b.to_string())?;
        }
    }
    Ok(())
}

fn io_max(dir: &Path, key: &str, list: &Option<Vec<LinuxThrottleDevice>>) -> Result<()> {
    for t in list.iter().flatten() {
        write(
            dir,
            "io.max",
            &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
        )?;
    }
    Ok(())
}

pub(super) fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some_and(|w| w != 0))
    {
        return Err(CgroupError::Invalid(
            "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights".into(),
        ));
    }
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(dir, "io.weight", &blkio_to_io_weight(w).to_string())?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        let Some(w) = wd.weight().filter(|&w| w != 0) else {
            continue;
        };
        if !bfq {
            return Err(CgroupError::Invalid(
                "linux.resources.blockIO.weightDevice: per-device weights need the BFQ I/O scheduler (io.bfq.weight)".into(),
            ));
        }
        write(
            dir,
            "io.bfq.weight",
            &format!("{}:{} {w}\n", wd.major(), wd.minor()),
        )?;
    }
    io_max(dir, "rbps", b.throttle_read_bps_device())?;
    io_max(dir, "wbps", b.throttle_write_bps_device())?;
    io_max(dir, "riops", b.throttle_read_iops_device())?;
    io_max(dir, "wiops", b.throttle_write_iops_device())?;
    Ok(())
}

/// hugetlb.<size>.max, and the reservation limit hugetlb.<size>.rsvd.max
/// (Linux 5.7+) with it so that reserved-but-unfaulted pages count too.
pub(super) fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    let mut rsvd = true;
    for l in limits {
        let v = if l.limit() < 0 {
            "max".to_string()
        } else {
            l.limit().to_string()
        };
        let prefix = format!("hugetlb.{}", l.page_size());
        write(dir, &format!("{prefix}.max"), &v)
            .map_err(|e| super::hugetlb_error(e, l.page_size()))?;
        if rsvd {
            match write(dir, &format!("{prefix}.rsvd.max"), &v) {
                Err(e) if files::is_not_found(&e) => rsvd = false,
                r => r?,
            }
        }
    }
    Ok(())
}

/// linux.resources.unified: raw v2 files, validated against what exists.
pub(super) fn set_unified(dir: &Path, unified: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for k in keys {
        if k.contains('/') || k.starts_with('.') || k.is_empty() {
            return Err(CgroupError::Invalid(format!(
                "unified resource {k:?} must be a file name (no slashes)"
            )));
        }
        let Some((ctrl, _)) = k.split_once('.') else {
            return Err(CgroupError::Invalid(format!(
                "unified resource {k:?} must be in the form CONTROLLER.PARAMETER"
            )));
        };
        for line in unified[k].split('\n').filter(|l| !l.is_empty()) {
            if let Err(e) = write(dir, k, line) {
                let missing_or_denied = matches!(
                    &e,
                    CgroupError::Write { errno, .. }
                        if matches!(errno, nix::errno::Errno::ENOENT | nix::errno::Errno::EPERM | nix::errno::Errno::EACCES)
                );
                if missing_or_denied && ctrl != "cgroup" {
                    let available = files::read(dir, "cgroup.controllers").unwrap_or_default();
                    if !available.split_whitespace().any(|c| c == ctrl) {
                        return Err(CgroupError::Invalid(format!(
                            "unified resource {k:?} can't be set: controller {ctrl:?} not available"
                        )));
                    }
                }
                return Err(CgroupError::Invalid(format!(
                    "unable to set unified resource {k:?}: {e}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(100), 17);
    }

    #[test]
    fn blkio_weight_converts_linearly() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn swap_conversion_follows_runc() {
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(500, -1).unwrap(), 500);
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(100, 0).is_err());
    }
}
