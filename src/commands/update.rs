use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value, json};

use crate::cgroups::Manager;
use crate::cli::UpdateArgs;
use crate::container::{Status, Store};

/// Change the limits of a running (or created, or paused) container, from
/// a LinuxResources JSON document or from runc's individual flags.
pub fn run(store: &Store, a: &UpdateArgs) -> Result<()> {
    let res = resources(a)?;
    let _lock = store.lock(&a.id)?;
    let c = store.load(&a.id)?;
    if matches!(c.status, Status::Stopped | Status::Creating) {
        bail!("container not running");
    }
    match &c.state.cgroup.systemd_unit {
        Some(unit) => crate::cgroups::update_scope(unit, &c.cgroup(), &res)?,
        None => c.own_cgroup("update")?.update(&res)?,
    }
    Ok(())
}

fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    if let Some(path) = &a.resources {
        return from_file(path);
    }
    if a.l3_cache_schema.is_some() {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if a.mem_bw_schema.is_some() {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    let mut doc = Map::new();
    let memory = memory_flags(a)?;
    if !memory.is_empty() {
        doc.insert("memory".into(), Value::Object(memory));
    }
    let cpu = cpu_flags(a);
    if !cpu.is_empty() {
        doc.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(w) = a.blkio_weight.filter(|&w| w != 0) {
        doc.insert("blockIO".into(), json!({ "weight": w }));
    }
    if let Some(p) = a.pids_limit {
        doc.insert("pids".into(), json!({ "limit": p }));
    }
    let res: LinuxResources = serde_json::from_value(Value::Object(doc))?;
    warn_kernel_memory(&res);
    Ok(res)
}

/// A LinuxResources document (`-` for stdin). As with runc, it makes every
/// other flag moot.
fn from_file(path: &str) -> Result<LinuxResources> {
    let mut text = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading resources from stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    }
    let res: LinuxResources =
        serde_json::from_str(&text).with_context(|| format!("decoding resources from {path}"))?;
    warn_kernel_memory(&res);
    Ok(res)
}

fn memory_flags(a: &UpdateArgs) -> Result<Map<String, Value>> {
    let mut memory = Map::new();
    for (key, val) in [
        ("limit", &a.memory),
        ("swap", &a.memory_swap),
        ("reservation", &a.memory_reservation),
        ("kernel", &a.kernel_memory),
        ("kernelTCP", &a.kernel_memory_tcp),
    ] {
        if let Some(v) = val {
            let flag = match key {
                "limit" => "memory",
                "swap" => "memory-swap",
                "reservation" => "memory-reservation",
                "kernel" => "kernel-memory",
                _ => "kernel-memory-tcp",
            };
            let n = if v == "-1" {
                -1
            } else {
                ram_in_bytes(v).map_err(|e| anyhow!("invalid value for {flag}: {e}"))?
            };
            memory.insert(key.into(), json!(n));
        }
    }
    Ok(memory)
}

fn cpu_flags(a: &UpdateArgs) -> Map<String, Value> {
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_share.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("burst", a.cpu_burst.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("idle", a.cpu_idle.map(|v| json!(v)));
    put(
        "cpus",
        a.cpuset_cpus
            .clone()
            .filter(|s| !s.is_empty())
            .map(Value::from),
    );
    put(
        "mems",
        a.cpuset_mems
            .clone()
            .filter(|s| !s.is_empty())
            .map(Value::from),
    );
    cpu
}

fn warn_kernel_memory(res: &LinuxResources) {
    if res
        .memory()
        .as_ref()
        .is_some_and(|m| m.kernel().is_some() || m.kernel_tcp().is_some())
    {
        crate::warn!("Kernel memory settings are ignored and will be removed");
    }
}

/// docker/go-units RAMInBytes: "64m", "1.5g", "512KiB", "100" (bytes);
/// binary multiples.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid size: '{s}'"))?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid suffix: '{unit}'"),
    };
    Ok((n * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("2 MB").unwrap(), 2 << 20);
        assert!(ram_in_bytes("12x").is_err());
        assert!(ram_in_bytes("m").is_err());
    }
}
