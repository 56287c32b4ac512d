//! The systemd driver's unit properties (cgroup v2): what a transient
//! scope is started with, runc's list with its conversions, each value in
//! the D-Bus type systemd reads for that property (a table test checks
//! them). Limits systemd manages must be properties, or a daemon-reload
//! rewrites the files hull wrote; the driver still writes every limit
//! through cgroupfs after the scope exists.

use oci_spec::runtime::LinuxResources;

use crate::dbus::Value;

/// One property: its name and value.
pub type Prop = (&'static str, Value);

/// What every scope gets: the slice, delegation of its subtree, the
/// process, no implicit dependencies, and accounting on.
/// `legacy`: systemd drives the controllers through cgroup v1 (a v1 or
/// hybrid host), where I/O accounting has its v1 name.
pub fn base(description: &str, slice: &str, pid: u32, legacy: bool) -> Vec<Prop> {
    vec![
        ("Description", Value::Str(description.into())),
        ("Slice", Value::Str(slice.into())),
        ("Delegate", Value::Bool(true)),
        ("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])),
        ("DefaultDependencies", Value::Bool(false)),
        ("MemoryAccounting", Value::Bool(true)),
        ("CPUAccounting", Value::Bool(true)),
        (
            if legacy {
                "BlockIOAccounting"
            } else {
                "IOAccounting"
            },
            Value::Bool(true),
        ),
        ("TasksAccounting", Value::Bool(true)),
    ]
}

/// The resource properties on a host where systemd drives cgroup v1: the
/// limits it rewrites there, in their v1 forms (runc's v1 list).
pub fn legacy_resources(res: &LinuxResources) -> Vec<Prop> {
    let mut out = Vec::new();
    if let Some(l) = res
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .filter(|&l| l != 0)
    {
        out.push(("MemoryLimit", Value::U64(limit(l))));
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            out.push(("CPUShares", Value::U64(s)));
        }
        cpu_quota(c, &mut out);
    }
    tasks_max(res, &mut out);
    if let Some(w) = blkio_weight(res) {
        out.push(("BlockIOWeight", Value::U64(u64::from(w))));
    }
    out
}

/// The device rules as systemd's v1 device policy: without one, systemd
/// writes "allow everything" whenever it re-realizes a delegated scope.
/// `proc_devices` is /proc/devices (the names systemd knows a major by).
/// Deny-all with exceptions becomes `DevicePolicy=strict` and a
/// `DeviceAllow` per exception; what systemd cannot name (a wildcard
/// major with a fixed minor, a major without a name) is left out, so a
/// reload can only take access away, never give it. Allow-all is every
/// char and block device; deny rules under it cannot be said to systemd
/// (a reload would lift them): refused.
pub fn legacy_devices(
    rules: &[super::devices::Rule],
    proc_devices: &str,
) -> Result<Vec<Prop>, String> {
    let mut st = super::devices::V1State::default();
    for r in rules {
        st.apply(r);
    }
    let strict = |allow: Vec<Value>| {
        vec![
            ("DevicePolicy", Value::Str("strict".into())),
            ("DeviceAllow", Value::Array("(ss)".into(), allow)),
        ]
    };
    let entry = |path: &str, access: &str| {
        Value::Struct(vec![Value::Str(path.into()), Value::Str(access.into())])
    };
    if st.allow_all {
        if !st.exceptions.is_empty() {
            return Err("linux.resources.devices: deny rules under \"allow all\" cannot be kept by systemd on cgroup v1 (a daemon-reload would lift them); use the cgroupfs driver".into());
        }
        return Ok(strict(vec![
            entry("char-*", "rwm"),
            entry("block-*", "rwm"),
        ]));
    }
    let mut allow = Vec::new();
    for ((typ, major, minor), access) in &st.exceptions {
        let kind = match typ {
            'c' => "char",
            'b' => "block",
            _ => continue,
        };
        let path = match (major, minor) {
            (None, None) => format!("{kind}-*"),
            (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
            (Some(ma), None) => match device_group(proc_devices, kind, *ma) {
                Some(name) => format!("{kind}-{name}"),
                None => continue,
            },
            (None, Some(_)) => continue,
        };
        let access: String = "rwm".chars().filter(|c| access.contains(c)).collect();
        allow.push(entry(&path, &access));
    }
    Ok(strict(allow))
}

/// The driver name of a major in /proc/devices' "Character devices:" or
/// "Block devices:" section.
fn device_group(proc_devices: &str, kind: &str, major: i64) -> Option<String> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    proc_devices
        .split("\n\n")
        .find(|sec| sec.trim_start().starts_with(header))?
        .lines()
        .skip(1)
        .find_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            (n.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

/// systemd's "infinity" for the u64 limits.
const INFINITY: u64 = u64::MAX;

fn limit(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

/// The resource properties for `res`.
pub fn resources(res: &LinuxResources) -> Result<Vec<Prop>, String> {
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit().filter(|&l| l != 0) {
            out.push(("MemoryMax", Value::U64(limit(l))));
        }
        if let Some(r) = m.reservation().filter(|&r| r != 0) {
            out.push(("MemoryLow", Value::U64(limit(r))));
        }
        // v2 swap is what goes beyond memory (runc's conversion); stated
        // also when 0, or a daemon-reload would lift "no swap".
        if let Some(s) = m.swap() {
            let swap = match (s, m.limit()) {
                (-1, _) => INFINITY,
                (s, Some(l)) if l > 0 && s >= l => (s - l) as u64,
                (s, _) if s >= 0 => s as u64,
                _ => return Err(format!("memory.swap {s} is invalid")),
            };
            out.push(("MemorySwapMax", Value::U64(swap)));
        }
    }
    if let Some(c) = res.cpu() {
        cpu(c, &mut out)?;
    }
    tasks_max(res, &mut out);
    // systemd writes io.weight whenever it realizes the unit (100 unless
    // told): the weight hull writes must be the property.
    if let Some(w) = blkio_weight(res) {
        out.push(("IOWeight", Value::U64(super::v2::blkio_to_io_weight(w))));
    }
    if let Some(u) = res.unified() {
        // Sorted: the same list whatever the map's order.
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            unified(k, &u[k], &mut out)?;
        }
    }
    Ok(out)
}

/// A `unified` entry for a file systemd manages, as its property (runc's
/// list, plus io.weight and cpu.idle, which systemd also rewrites).
fn unified(key: &str, value: &str, out: &mut Vec<Prop>) -> Result<(), String> {
    let v = value.trim();
    let bad = || format!("unified.{key}: invalid value {value:?}");
    let num = |s: &str| -> Result<u64, String> {
        if s == "max" {
            return Ok(INFINITY);
        }
        s.parse::<u64>().map_err(|_| bad())
    };
    let name = match key {
        "memory.max" => "MemoryMax",
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        "cpu.idle" => {
            if v == "1" {
                out.push(("CPUWeight", Value::U64(0)));
            }
            return Ok(());
        }
        "io.weight" => {
            let w = v.strip_prefix("default ").unwrap_or(v);
            out.push(("IOWeight", Value::U64(num(w)?)));
            return Ok(());
        }
        "cpu.max" => {
            let mut it = v.split_whitespace();
            let quota = it.next().ok_or_else(bad)?;
            let period = it.next().map(num).transpose()?.unwrap_or(100_000);
            if period != 100_000 {
                out.push(("CPUQuotaPeriodUSec", Value::U64(period)));
            }
            let quota = if quota == "max" {
                -1
            } else {
                i64::try_from(num(quota)?).map_err(|_| bad())?
            };
            out.push((
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            ));
            return Ok(());
        }
        "cpuset.cpus" => {
            out.push(("AllowedCPUs", bitmask(v)?));
            return Ok(());
        }
        "cpuset.mems" => {
            out.push(("AllowedMemoryNodes", bitmask(v)?));
            return Ok(());
        }
        _ => return Ok(()),
    };
    out.push((name, Value::U64(num(v)?)));
    Ok(())
}

fn cpu(c: &oci_spec::runtime::LinuxCpu, out: &mut Vec<Prop>) -> Result<(), String> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        out.push(("CPUWeight", Value::U64(super::v2::shares_to_weight(s))));
    }
    cpu_quota(c, out);
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        out.push(("AllowedCPUs", bitmask(cpus)?));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        out.push(("AllowedMemoryNodes", bitmask(mems)?));
    }
    Ok(())
}

/// pids.limit as TasksMax (0 leaves it alone, as the cgroupfs driver).
fn tasks_max(res: &LinuxResources, out: &mut Vec<Prop>) {
    if let Some(p) = res.pids().as_ref().filter(|p| p.limit() != 0) {
        out.push(("TasksMax", Value::U64(limit(p.limit()))));
    }
}

fn blkio_weight(res: &LinuxResources) -> Option<u16> {
    res.block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|&w| w != 0)
}

/// The CPU quota and its period (the same properties on v1 and v2).
fn cpu_quota(c: &oci_spec::runtime::LinuxCpu, out: &mut Vec<Prop>) {
    let period = c.period().unwrap_or(0);
    if period != 0 {
        out.push(("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    let quota = c.quota().unwrap_or(0);
    if quota != 0 || period != 0 {
        out.push((
            "CPUQuotaPerSecUSec",
            Value::U64(quota_per_sec(quota, period)),
        ));
    }
}

/// runc's CPUQuotaPerSecUSec: the quota per second of CPU, rounded up to
/// 10 ms (systemd keeps whole percents); no quota is infinity.
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    let Ok(quota) = u64::try_from(quota) else {
        return INFINITY;
    };
    if quota == 0 {
        return INFINITY;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = quota.saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000).saturating_mul(10_000)
}

/// A cpuset list ("0-3,8") as the little-endian byte mask systemd reads
/// for AllowedCPUs and AllowedMemoryNodes (`ay`).
pub fn bitmask(list: &str) -> Result<Value, String> {
    let ids = crate::plan::cpu_list::parse(list)?;
    let top = ids.iter().max().copied().unwrap_or(0);
    if top >= 1 << 16 {
        return Err(format!("cpuset {list:?}: {top} is out of range"));
    }
    let mut bytes = vec![0u8; top / 8 + 1];
    for id in ids {
        bytes[id / 8] |= 1 << (id % 8);
    }
    Ok(Value::Array(
        "y".into(),
        bytes.into_iter().map(Value::Byte).collect(),
    ))
}

/// The properties as StartTransientUnit's `a(sv)`.
pub fn as_dbus<'a>(props: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Value {
    let items = props
        .into_iter()
        .map(|(name, v)| {
            Value::Struct(vec![
                Value::Str(name.into()),
                Value::Variant(Box::new(v.clone())),
            ])
        })
        .collect();
    Value::Array("(sv)".into(), items)
}

/// The `org.systemd.property.NAME` annotations, runc's way: NAME is
/// letters only, the value GVariant text (`true`, `'text'`, `uint64 5`,
/// `['a', 'b']`; a bare number is an int32), and a `...Sec` property
/// (lowercase letter before "Sec") is sent as `...USec`, in microseconds.
pub fn from_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for (key, text) in annotations {
        let Some(name) = key.strip_prefix("org.systemd.property.") else {
            continue;
        };
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "annotation {key}: invalid systemd property name {name:?}"
            ));
        }
        let bad = |why: String| format!("annotation {key}={text} value parse error: {why}");
        let mut value = gvariant(text.trim()).map_err(bad)?;
        let mut name = name.to_string();
        if let Some(stem) = name.strip_suffix("Sec")
            && stem.ends_with(|c: char| c.is_ascii_lowercase())
        {
            let usec = match value {
                Value::Byte(v) => u64::from(v).checked_mul(1_000_000),
                Value::U32(v) => u64::from(v).checked_mul(1_000_000),
                Value::U64(v) => v.checked_mul(1_000_000),
                Value::I32(v) => u64::try_from(v).ok().and_then(|v| v.checked_mul(1_000_000)),
                Value::I64(v) => u64::try_from(v).ok().and_then(|v| v.checked_mul(1_000_000)),
                _ => None,
            };
            value = Value::U64(usec.ok_or_else(|| bad("not a number of seconds".into()))?);
            name = format!("{stem}USec");
        }
        out.push((name, value));
    }
    // The same list whatever the map's order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The GVariant text forms systemd properties take.
fn gvariant(text: &str) -> Result<Value, String> {
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(s) = quoted(text) {
        return Ok(Value::Str(s.to_string()));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| quoted(i).map(|s| Value::Str(s.to_string())))
            .collect::<Option<Vec<_>>>()
            .ok_or("only arrays of strings are supported")?;
        return Ok(Value::Array("s".into(), items));
    }
    let (ty, num) = text.split_once(' ').unwrap_or(("int32", text));
    let num = num.trim();
    let int = |r: Result<Value, std::num::ParseIntError>| r.map_err(|e| format!("{num:?}: {e}"));
    match ty {
        "byte" => int(num.parse().map(Value::Byte)),
        "int32" => int(num.parse().map(Value::I32)),
        "uint32" => int(num.parse().map(Value::U32)),
        "int64" => int(num.parse().map(Value::I64)),
        "uint64" => int(num.parse().map(Value::U64)),
        _ => Err(format!("unsupported GVariant value {text:?}")),
    }
}

fn quoted(text: &str) -> Option<&str> {
    let s = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .or_else(|| text.strip_prefix('"').and_then(|t| t.strip_suffix('"')))?;
    (!s.contains(['\'', '"', '\\'])).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The D-Bus type systemd reads for each property hull sends
    /// (systemd's dbus-cgroup.c, dbus-unit.c, dbus-scope.c).
    const SYSTEMD_SIGNATURES: &[(&str, &str)] = &[
        ("Description", "s"),
        ("Slice", "s"),
        ("Delegate", "b"),
        ("PIDs", "au"),
        ("DefaultDependencies", "b"),
        ("MemoryAccounting", "b"),
        ("CPUAccounting", "b"),
        ("IOAccounting", "b"),
        ("BlockIOAccounting", "b"),
        ("MemoryLimit", "t"),
        ("CPUShares", "t"),
        ("BlockIOWeight", "t"),
        ("DevicePolicy", "s"),
        ("DeviceAllow", "a(ss)"),
        ("TasksAccounting", "b"),
        ("MemoryMax", "t"),
        ("MemoryLow", "t"),
        ("MemorySwapMax", "t"),
        ("CPUWeight", "t"),
        ("CPUQuotaPeriodUSec", "t"),
        ("CPUQuotaPerSecUSec", "t"),
        ("AllowedCPUs", "ay"),
        ("AllowedMemoryNodes", "ay"),
        ("TasksMax", "t"),
        ("IOWeight", "t"),
        ("MemoryHigh", "t"),
        ("MemoryMin", "t"),
    ];

    #[test]
    fn every_property_has_systemds_type() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1i64 << 30, "reservation": 1i64 << 29, "swap": 2i64 << 30},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 100},
            "blockIO": {"weight": 500},
            "unified": {"memory.high": "max", "memory.min": "4096"}
        }))
        .unwrap();
        let mut props = base("hull container", "system.slice", 1, false);
        props.extend(resources(&res).unwrap());
        let v2 = props.len();
        props.extend(base("hull container", "system.slice", 1, true));
        props.extend(legacy_resources(&res));
        props.extend(legacy_devices(&super::super::devices::rules(&[]), "").unwrap());
        let mut names: Vec<&str> = props.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SYSTEMD_SIGNATURES.len(), "{names:?}");
        for (name, v) in &props {
            let want = SYSTEMD_SIGNATURES.iter().find(|(n, _)| n == name);
            assert_eq!(
                want.map(|(_, s)| *s),
                Some(v.signature().as_str()),
                "{name}"
            );
        }
        let props = &props[..v2];
        let swap = props.iter().find(|(n, _)| *n == "MemorySwapMax").unwrap();
        assert_eq!(swap.1, Value::U64(1 << 30), "v2 swap = swap - memory");
        let weight = props.iter().find(|(n, _)| *n == "CPUWeight").unwrap();
        assert_eq!(weight.1, Value::U64(59));
    }

    #[test]
    fn unified_files_systemd_manages_become_properties() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "unified": {
                "cpu.max": "25000 50000", "cpu.idle": "1", "io.weight": "default 300",
                "pids.max": "max", "memory.swap.max": "0", "hugetlb.2MB.max": "0"
            }
        }))
        .unwrap();
        let props = resources(&res).unwrap();
        let get = |n: &str| props.iter().find(|(p, _)| *p == n).map(|(_, v)| v.clone());
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(50_000)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(0)));
        assert_eq!(get("IOWeight"), Some(Value::U64(300)));
        assert_eq!(get("TasksMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(0)));
        assert_eq!(props.len(), 6, "{props:?}");
        let bad: LinuxResources =
            serde_json::from_value(serde_json::json!({"unified": {"memory.max": "lots"}})).unwrap();
        assert!(resources(&bad).is_err());
    }

    #[test]
    fn annotations_are_properties_as_runc_reads_them() {
        let a: std::collections::HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopUSec", "uint64 123456789"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.RuntimeMaxSec", "uint64 5"),
            ("org.systemd.property.Wants", "['a.service', \"b.service\"]"),
            ("org.systemd.property.SendSIGHUP", "true"),
            ("org.systemd.property.Nice", "5"),
            ("io.kubernetes.other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let props = from_annotations(&a).unwrap();
        let get = |n: &str| props.iter().find(|(p, _)| p == n).map(|(_, v)| v.clone());
        assert_eq!(get("TimeoutStopUSec"), Some(Value::U64(123_456_789)));
        assert_eq!(
            get("CollectMode"),
            Some(Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(get("RuntimeMaxUSec"), Some(Value::U64(5_000_000)));
        assert_eq!(get("SendSIGHUP"), Some(Value::Bool(true)));
        assert_eq!(get("Nice"), Some(Value::I32(5)));
        assert_eq!(get("Wants").map(|v| v.signature()), Some("as".to_string()));
        assert_eq!(props.len(), 6);
        for (k, v) in [
            ("org.systemd.property.Bad-Name", "true"),
            ("org.systemd.property.X", "true"),
            ("org.systemd.property.Nice", "lots"),
            ("org.systemd.property.Nice", "uint64 -1"),
            ("org.systemd.property.RuntimeMaxSec", "'soon'"),
            (
                "org.systemd.property.RuntimeMaxSec",
                "uint64 18446744073709551615",
            ),
            ("org.systemd.property.Wants", "[1, 2]"),
        ] {
            let one = std::collections::HashMap::from([(k.to_string(), v.to_string())]);
            assert!(from_annotations(&one).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn v1_device_rules_become_a_strict_policy() {
        let proc_devices =
            "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n";
        let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_value(serde_json::json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "access": "r"},
                {"allow": true, "type": "c", "minor": 3, "access": "r"}
            ]))
            .unwrap();
        let props = legacy_devices(&super::super::devices::rules(&spec), proc_devices).unwrap();
        assert_eq!(props[0], ("DevicePolicy", Value::Str("strict".into())));
        let Value::Array(sig, allow) = &props[1].1 else {
            panic!()
        };
        assert_eq!(sig, "(ss)");
        let allow: Vec<String> = allow
            .iter()
            .map(|v| match v {
                Value::Struct(f) => {
                    format!("{} {}", f[0].as_str().unwrap(), f[1].as_str().unwrap())
                }
                _ => panic!(),
            })
            .collect();
        assert!(allow.contains(&"block-sd r".to_string()), "{allow:?}");
        assert!(allow.contains(&"char-pts rwm".to_string()), "{allow:?}");
        assert!(
            allow.contains(&"/dev/char/1:3 rwm".to_string()),
            "{allow:?}"
        );
        assert!(allow.contains(&"char-* m".to_string()), "{allow:?}");
        // "c *:3" has no systemd name: left out (less access, never more).
        assert!(
            !allow
                .iter()
                .any(|a| a.contains(":3 r") && a.starts_with("char-"))
        );
        let all: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_value(serde_json::json!([{"allow": true, "access": "rwm"}])).unwrap();
        let all = legacy_devices(&super::super::devices::rules(&all), proc_devices).unwrap();
        assert_eq!(all.len(), 2, "char-* and block-*: {all:?}");
        let but: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_value(
            serde_json::json!([{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 4, "minor": 1, "access": "rwm"}]),
        )
        .unwrap();
        assert!(legacy_devices(&super::super::devices::rules(&but), proc_devices).is_err());
    }

    #[test]
    fn quota_rounds_up_to_whole_percents() {
        assert_eq!(quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(quota_per_sec(-1, 100_000), u64::MAX);
        assert_eq!(quota_per_sec(0, 100_000), u64::MAX);
        assert_eq!(quota_per_sec(25_000, 0), 250_000);
        // Absurd quotas saturate to no limit, never wrap.
        assert_eq!(quota_per_sec(i64::MAX, 1), u64::MAX);
    }

    #[test]
    fn cpusets_are_little_endian_byte_masks() {
        let bytes = |v: Value| match v {
            Value::Array(_, b) => b,
            _ => panic!(),
        };
        assert_eq!(bytes(bitmask("0").unwrap()), [Value::Byte(1)]);
        assert_eq!(
            bytes(bitmask("0-1,9").unwrap()),
            [Value::Byte(3), Value::Byte(2)]
        );
        assert!(bitmask("70000").is_err());
        assert!(bitmask("x").is_err());
    }
}
