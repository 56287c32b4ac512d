//! Usage statistics in the JSON shape of runc's `events` (types/events.go):
//! the same field names, the same omissions of zero values, so tools that
//! parse runc's output parse ours. Collected from whichever hierarchy
//! carries each controller (v1, v2, or both on a hybrid host).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::files::{self, key_values, read, read_u64};
use super::{CgroupPaths, Result, hugepage_sizes, v1};

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

impl PsiData {
    fn is_zero(&self) -> bool {
        *self == PsiData::default()
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Psi {
    #[serde(skip_serializing_if = "PsiData::is_zero")]
    pub some: PsiData,
    #[serde(skip_serializing_if = "PsiData::is_zero")]
    pub full: PsiData,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    #[serde(skip_serializing_if = "is_default")]
    pub usage: CpuUsage,
    #[serde(skip_serializing_if = "is_default")]
    pub throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    #[serde(skip_serializing_if = "is_default")]
    pub usage: MemoryEntry,
    #[serde(skip_serializing_if = "is_default")]
    pub swap: MemoryEntry,
    #[serde(skip_serializing_if = "is_default")]
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP", skip_serializing_if = "is_default")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

/// runc's types.Stats.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Only set by runc for libcontainer-configured veth networks, which an
    /// OCI bundle cannot ask for: always null.
    pub network_interfaces: Option<Vec<()>>,
}

/// Where each controller's files are.
enum At<'a> {
    V1(&'a Path),
    V2(&'a Path),
    Nowhere,
}

fn at<'a>(paths: &'a CgroupPaths, v1name: &str) -> At<'a> {
    if let Some(d) = v1::dir_of(&paths.v1, v1name) {
        return At::V1(d);
    }
    match &paths.v2 {
        Some(d) => At::V2(d),
        None => At::Nowhere,
    }
}

pub fn collect(paths: &CgroupPaths) -> Result<Stats> {
    let mut s = Stats::default();
    match at(paths, "cpuacct") {
        At::V1(d) => cpuacct_v1(d, &mut s.cpu),
        At::V2(d) => cpu_v2(d, &mut s.cpu),
        At::Nowhere => {}
    }
    if let At::V1(d) = at(paths, "cpu") {
        throttling_v1(d, &mut s.cpu.throttling);
    }
    if let At::V1(d) = at(paths, "cpuset") {
        cpuset_v1(d, &mut s.cpuset);
    }
    match at(paths, "memory") {
        At::V1(d) => memory_v1(d, &mut s.memory),
        At::V2(d) => memory_v2(d, &mut s.memory),
        At::Nowhere => {}
    }
    match at(paths, "pids") {
        At::V1(d) | At::V2(d) => {
            s.pids.current = read_u64(d, "pids.current").unwrap_or(0);
            s.pids.limit = read_u64(d, "pids.max")
                .ok()
                .filter(|&m| m != u64::MAX)
                .unwrap_or(0);
        }
        At::Nowhere => {}
    }
    match at(paths, "blkio") {
        At::V1(d) => blkio_v1(d, &mut s.blkio),
        At::V2(d) => io_v2(d, &mut s.blkio),
        At::Nowhere => {}
    }
    let sizes = hugepage_sizes();
    match at(paths, "hugetlb") {
        At::V1(d) => {
            for size in sizes {
                let f = |x: &str| read_u64(d, &format!("hugetlb.{size}.{x}")).unwrap_or(0);
                let h = Hugetlb {
                    usage: f("usage_in_bytes"),
                    max: f("max_usage_in_bytes"),
                    failcnt: f("failcnt"),
                };
                s.hugetlb.insert(size, h);
            }
        }
        At::V2(d)
            if d.join(format!(
                "hugetlb.{}.current",
                sizes.first().map_or("", |s| s)
            ))
            .exists() =>
        {
            for size in sizes {
                let usage = read_u64(d, &format!("hugetlb.{size}.rsvd.current"))
                    .or_else(|_| read_u64(d, &format!("hugetlb.{size}.current")))
                    .unwrap_or(0);
                let failcnt =
                    files::read_key(d, &format!("hugetlb.{size}.events"), "max").unwrap_or(0);
                s.hugetlb.insert(
                    size,
                    Hugetlb {
                        usage,
                        max: 0,
                        failcnt,
                    },
                );
            }
        }
        _ => {}
    }
    Ok(s)
}

fn psi(dir: &Path, file: &str) -> Option<Psi> {
    let text = read(dir, file).ok()?;
    let mut p = Psi::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let which = match it.next() {
            Some("some") => &mut p.some,
            Some("full") => &mut p.full,
            _ => continue,
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => which.avg10 = v.parse().unwrap_or(0.0),
                "avg60" => which.avg60 = v.parse().unwrap_or(0.0),
                "avg300" => which.avg300 = v.parse().unwrap_or(0.0),
                "total" => which.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    Some(p)
}

fn cpu_v2(d: &Path, cpu: &mut Cpu) {
    let text = read(d, "cpu.stat").unwrap_or_default();
    for (k, v) in key_values(&text) {
        match k {
            "usage_usec" => cpu.usage.total = v * 1000,
            "user_usec" => cpu.usage.user = v * 1000,
            "system_usec" => cpu.usage.kernel = v * 1000,
            "nr_periods" => cpu.throttling.periods = v,
            "nr_throttled" => cpu.throttling.throttled_periods = v,
            "throttled_usec" => cpu.throttling.throttled_time = v * 1000,
            _ => {}
        }
    }
    cpu.psi = psi(d, "cpu.pressure");
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn cpuacct_v1(d: &Path, cpu: &mut Cpu) {
    cpu.usage.total = read_u64(d, "cpuacct.usage").unwrap_or(0);
    cpu.usage.percpu = numbers(&read(d, "cpuacct.usage_percpu").unwrap_or_default());
    // cpuacct.stat counts clock ticks.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let stat = read(d, "cpuacct.stat").unwrap_or_default();
    for (k, v) in key_values(&stat) {
        match k {
            "user" => cpu.usage.user = v * 1_000_000_000 / hz,
            "system" => cpu.usage.kernel = v * 1_000_000_000 / hz,
            _ => {}
        }
    }
    // "cpu user system" per line, nanoseconds.
    let all = read(d, "cpuacct.usage_all").unwrap_or_default();
    for line in all.lines().skip(1) {
        let n = numbers(line);
        if n.len() == 3 {
            cpu.usage.percpu_user.push(n[1]);
            cpu.usage.percpu_kernel.push(n[2]);
        }
    }
}

fn throttling_v1(d: &Path, t: &mut Throttling) {
    let text = read(d, "cpu.stat").unwrap_or_default();
    for (k, v) in key_values(&text) {
        match k {
            "nr_periods" => t.periods = v,
            "nr_throttled" => t.throttled_periods = v,
            "throttled_time" => t.throttled_time = v,
            _ => {}
        }
    }
}

/// "0-3,5" → [0, 1, 2, 3, 5]
fn cpu_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn cpuset_v1(d: &Path, c: &mut CpuSet) {
    let n = |f: &str| read_u64(d, &format!("cpuset.{f}")).unwrap_or(0);
    c.cpus = cpu_list(&read(d, "cpuset.cpus").unwrap_or_default());
    c.mems = cpu_list(&read(d, "cpuset.mems").unwrap_or_default());
    c.cpu_exclusive = n("cpu_exclusive");
    c.mem_hardwall = n("mem_hardwall");
    c.mem_exclusive = n("mem_exclusive");
    c.memory_migrate = n("memory_migrate");
    c.memory_spread_page = n("memory_spread_page");
    c.memory_spread_slab = n("memory_spread_slab");
    c.memory_pressure = n("memory_pressure");
    c.sched_load_balance = n("sched_load_balance");
    c.sched_relax_domain_level = read(d, "cpuset.sched_relax_domain_level")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
}

fn memory_v1(d: &Path, m: &mut Memory) {
    let text = read(d, "memory.stat").unwrap_or_default();
    m.raw = key_values(&text).map(|(k, v)| (k.to_string(), v)).collect();
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    let entry = |prefix: &str| {
        let f = |x: &str| read_u64(d, &format!("{prefix}.{x}")).unwrap_or(0);
        MemoryEntry {
            limit: f("limit_in_bytes"),
            usage: f("usage_in_bytes"),
            max: f("max_usage_in_bytes"),
            failcnt: f("failcnt"),
        }
    };
    m.usage = entry("memory");
    m.swap = entry("memory.memsw");
    m.kernel = entry("memory.kmem");
    m.kernel_tcp = entry("memory.kmem.tcp");
}

fn memory_v2(d: &Path, m: &mut Memory) {
    let text = read(d, "memory.stat").unwrap_or_default();
    m.raw = key_values(&text).map(|(k, v)| (k.to_string(), v)).collect();
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    m.usage = MemoryEntry {
        usage: read_u64(d, "memory.current").unwrap_or(0),
        limit: read_u64(d, "memory.max").unwrap_or(0),
        max: read_u64(d, "memory.peak").unwrap_or(0),
        failcnt: 0,
    };
    // runc reports swap as memory+swap, as v1 did.
    if let Ok(swap) = read_u64(d, "memory.swap.current") {
        let limit = read_u64(d, "memory.swap.max").unwrap_or(u64::MAX);
        m.swap = MemoryEntry {
            usage: swap + m.usage.usage,
            limit: if limit == u64::MAX {
                limit
            } else {
                limit.saturating_add(m.usage.limit)
            },
            max: 0,
            failcnt: 0,
        };
    }
    m.psi = psi(d, "memory.pressure");
}

/// v1 blkio: BFQ's files when the scheduler is in use, else the throttle
/// layer's (CFQ's are gone since Linux 5.0).
fn blkio_v1(d: &Path, b: &mut Blkio) {
    let pick = |bfq: &str, throttle: &str| {
        let t = read(d, bfq).unwrap_or_default();
        if t.lines().any(|l| l.split_whitespace().count() == 3) {
            t
        } else {
            read(d, throttle).unwrap_or_default()
        }
    };
    let parse = |text: String| -> Vec<BlkioEntry> {
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let [dev, op, v] = f.as_slice() else {
                    return None;
                };
                let (ma, mi) = dev.split_once(':')?;
                Some(BlkioEntry {
                    major: ma.parse().ok()?,
                    minor: mi.parse().ok()?,
                    op: op.to_string(),
                    value: v.parse().ok()?,
                })
            })
            .collect()
    };
    b.io_service_bytes_recursive = parse(pick(
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ));
    b.io_serviced_recursive = parse(pick(
        "blkio.bfq.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    ));
}

fn io_v2(d: &Path, b: &mut Blkio) {
    let text = read(d, "io.stat").unwrap_or_default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (table, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    b.psi = psi(d, "io.pressure");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand() {
        assert_eq!(cpu_list("0-3,5\n"), vec![0, 1, 2, 3, 5]);
        assert_eq!(cpu_list(""), Vec::<u16>::new());
    }

    #[test]
    fn zero_values_are_omitted_like_runc() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"], serde_json::json!({}));
        assert_eq!(v["memory"], serde_json::json!({}));
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(v["network_interfaces"], serde_json::Value::Null);
        assert_eq!(v["cpuset"]["cpu_exclusive"], 0);
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.memory.usage.limit = 7;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"total": 5, "kernel": 0, "user": 0})
        );
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 7, "failcnt": 0})
        );
    }
}
