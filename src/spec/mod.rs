//! config.json: loading it from a bundle, checking it before anything is
//! created, and the default `hull spec` writes.

mod default;
mod validate;

pub use default::default_spec;
pub use validate::validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// The runtime-spec version hull implements.
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("JSON specification file {0} not found")]
    NotFound(String),
    // The cause is part of the message and not a `source` too: a chain
    // printed whole (`{:#}`) would say it twice.
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("parsing {path}: {cause}")]
    Parse {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, SpecError>;

/// A loaded bundle: the parsed spec, the raw JSON (handed to the init stage
/// as is, so it is never re-serialized) and the absolute rootfs.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub raw: Vec<u8>,
    pub rootfs: PathBuf,
}

pub fn load_bundle(dir: &str) -> Result<Bundle> {
    let dir = std::path::absolute(dir).map_err(|cause| SpecError::Read {
        path: dir.into(),
        cause,
    })?;
    let path = dir.join("config.json");
    let raw = std::fs::read(&path).map_err(|cause| {
        if cause.kind() == std::io::ErrorKind::NotFound {
            SpecError::NotFound("config.json".into())
        } else {
            SpecError::Read {
                path: path.clone(),
                cause,
            }
        }
    })?;
    let (spec, raw) = match parse(&raw, &path) {
        Ok(spec) => (spec, raw),
        Err(e) => match repaired(&raw) {
            Some((spec, cleaned)) => (spec, cleaned),
            None => return Err(e),
        },
    };
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root must be specified".into()))?;
    let rootfs = dir.join(root.path());
    let rootfs = rootfs
        .canonicalize()
        .map_err(|_| SpecError::Invalid(format!("rootfs ({}) does not exist", rootfs.display())))?;
    let (spec, raw) = if needs_runc_reading(&spec, &rootfs) {
        runc_reading(spec, raw, &rootfs)
    } else {
        (spec, raw)
    };
    Ok(Bundle {
        dir,
        spec,
        raw,
        rootfs,
    })
}

/// Whether the config has something runc reads otherwise than the oci-spec
/// crate does (see `runc_reading`): one pass over the parsed config.
fn needs_runc_reading(spec: &Spec, rootfs: &Path) -> bool {
    let pids_zero = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref()?.pids().as_ref())
        .is_some_and(|p| p.limit() == 0)
        && at_least_1_3(spec.version());
    let empty_ns_path = crate::namespaces::namespaces(spec)
        .iter()
        .any(|n| n.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()));
    let dest_in_rootfs = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination().starts_with(rootfs));
    pids_zero || empty_ns_path || dest_in_rootfs
}

/// Rare path: the config re-read as a JSON value and rewritten the way runc
/// reads it, so the parent and the init (which gets the raw JSON) agree:
/// - `pids.limit` 0 is a limit in a config declaring runtime-spec 1.3 or
///   later, an absent one is not (the crate reads both as 0; see
///   `pids_zero_is_a_limit`);
/// - a namespace with `"path": ""` is a new one (Go's empty string);
/// - a mount destination that starts with the rootfs path is taken
///   relative to the rootfs (`<bundle>/rootfs/mnt` is `/mnt`), as runc
///   has always done.
fn runc_reading(spec: Spec, raw: Vec<u8>, rootfs: &Path) -> (Spec, Vec<u8>) {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&raw) else {
        return (spec, raw);
    };
    if let Some(res) = v.pointer_mut("/linux/resources") {
        pids_zero_is_a_limit(res);
    }
    if let Some(nss) = v
        .pointer_mut("/linux/namespaces")
        .and_then(|n| n.as_array_mut())
    {
        for ns in nss.iter_mut().filter_map(|n| n.as_object_mut()) {
            if ns.get("path").is_some_and(|p| p == "") {
                ns.remove("path");
            }
        }
    }
    if let Some(mounts) = v.pointer_mut("/mounts").and_then(|m| m.as_array_mut()) {
        for dest in mounts.iter_mut().filter_map(|m| m.get_mut("destination")) {
            let inside = dest
                .as_str()
                .and_then(|d| Path::new(d).strip_prefix(rootfs).ok())
                .map(|rest| Path::new("/").join(rest));
            if let Some(inside) = inside.as_ref().and_then(|p| p.to_str()) {
                *dest = serde_json::json!(inside);
            }
        }
    }
    match serde_json::to_vec(&v).map(|b| (serde_json::from_slice(&b), b)) {
        Ok((Ok(spec), cleaned)) => (spec, cleaned),
        _ => (spec, raw),
    }
}

/// Whether a config's `ociVersion` is runtime-spec 1.3 or later.
fn at_least_1_3(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| {
        let digits = p.bytes().take_while(u8::is_ascii_digit).count();
        p[..digits].parse::<u64>().unwrap_or(0)
    });
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 1 || (major == 1 && minor >= 3)
}

/// runtime-spec 1.3: `pids.limit` 0 is a real limit. Before 1.3 the spec's
/// own Go type could not tell 0 from unset, runc 1.1 left the cgroup
/// alone, and callers still write it so: Debian 12's podman turns
/// `--pids-limit=-1` ("unlimited") into 0 in a config declaring 1.0.2.
/// So a config declaring 1.3 or later gets the spec's meaning, written as
/// 1 as runc 1.4 does (the value systemd's TasksMax can also take, so the
/// cgroupfs and systemd drivers agree: the init, and no fork); an older
/// one keeps runc 1.1's. `resources` is a LinuxResources object; true if
/// it was changed.
fn pids_zero_is_a_limit(resources: &mut serde_json::Value) -> bool {
    match resources.get_mut("pids").and_then(|p| p.get_mut("limit")) {
        Some(limit) if limit.as_i64() == Some(0) => {
            *limit = serde_json::json!(1);
            true
        }
        _ => false,
    }
}

pub fn parse(raw: &[u8], path: &Path) -> Result<Spec> {
    serde_json::from_slice(raw).map_err(|cause| SpecError::Parse {
        path: path.to_path_buf(),
        cause,
    })
}

/// A config that failed to parse, repaired as runc reads it; Some only if
/// the repair makes it parse (the repaired JSON is what the init reads).
fn repaired(raw: &[u8]) -> Option<(Spec, Vec<u8>)> {
    let mut v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let process = v.get_mut("process")?;
    let caps = without_unknown_caps(process);
    let flags = scheduler_flag_names(process);
    if !caps && !flags {
        return None;
    }
    let cleaned = serde_json::to_vec(&v).ok()?;
    let spec = serde_json::from_slice(&cleaned).ok()?;
    Some((spec, cleaned))
}

/// runc ignores (with a warning) capability names it does not know, so a
/// config written for a newer kernel still runs; true if any was dropped.
fn without_unknown_caps(process: &mut serde_json::Value) -> bool {
    let Some(caps) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return false;
    };
    let mut unknown = Vec::new();
    for set in caps.values_mut() {
        if let Some(list) = set.as_array_mut() {
            list.retain(|name| {
                let known =
                    serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
                if !known {
                    unknown.push(name.as_str().unwrap_or("?").to_string());
                }
                known
            });
        }
    }
    if unknown.is_empty() {
        return false;
    }
    unknown.sort();
    unknown.dedup();
    crate::warn!(
        "ignoring unknown or unavailable capabilities: [{}]",
        unknown.join(" ")
    );
    true
}

/// `process.scheduler.flags` as the runtime-spec names them
/// (`SCHED_FLAG_RESET_ON_FORK`, `SCHED_FLAG_DL_OVERRUN`), where the
/// oci-spec crate reads other names: each is replaced by the crate's own
/// spelling of the same flag. Also for `exec --process`. True if any was.
pub fn scheduler_flag_names(process: &mut serde_json::Value) -> bool {
    use oci_spec::runtime::LinuxSchedulerFlag as F;
    let Some(flags) = process
        .get_mut("scheduler")
        .and_then(|s| s.get_mut("flags"))
        .and_then(|f| f.as_array_mut())
    else {
        return false;
    };
    let mut changed = false;
    for flag in flags {
        let spec_flag = match flag.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => F::SchedResetOnFork,
            Some("SCHED_FLAG_RECLAIM") => F::SchedFlagReclaim,
            Some("SCHED_FLAG_DL_OVERRUN") => F::SchedFlagDLOverrun,
            Some("SCHED_FLAG_KEEP_POLICY") => F::SchedFlagKeepPolicy,
            Some("SCHED_FLAG_KEEP_PARAMS") => F::SchedFlagKeepParams,
            Some("SCHED_FLAG_UTIL_CLAMP_MIN") => F::SchedFlagUtilClampMin,
            Some("SCHED_FLAG_UTIL_CLAMP_MAX") => F::SchedFlagUtilClampMax,
            _ => continue,
        };
        if let Ok(crate_name) = serde_json::to_value(spec_flag) {
            changed |= *flag != crate_name;
            *flag = crate_name;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_capabilities_are_dropped() {
        let mut v = default_spec(false);
        v["process"]["capabilities"]["bounding"] =
            serde_json::json!(["CAP_KILL", "CAP_NOT_A_THING"]);
        let raw = serde_json::to_vec(&v).unwrap();
        assert!(parse(&raw, Path::new("config.json")).is_err());
        let (spec, cleaned) = repaired(&raw).unwrap();
        let b = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap();
        assert_eq!(b.len(), 1);
        assert!(!String::from_utf8(cleaned).unwrap().contains("NOT_A_THING"));
    }

    #[test]
    fn other_parse_errors_stay_errors() {
        assert!(repaired(b"{\"process\": 1}").is_none());
    }

    #[test]
    fn spec_versions_from_1_3() {
        for (v, want) in [
            ("1.3.0", true),
            ("1.3.0-rc.1", true),
            ("1.10.0", true),
            ("2.0.0", true),
            ("1.2.1", false),
            ("1.0.2-dev", false),
            ("", false),
            ("junk", false),
        ] {
            assert_eq!(at_least_1_3(v), want, "{v}");
        }
    }

    /// The runtime-spec's flag names, which the crate alone refuses.
    #[test]
    fn scheduler_flags_take_the_runtime_spec_names() {
        let mut v = default_spec(false);
        v["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_OTHER",
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN",
                      "SCHED_FLAG_UTIL_CLAMP_MIN"]});
        let raw = serde_json::to_vec(&v).unwrap();
        assert!(parse(&raw, Path::new("config.json")).is_err());
        let (spec, _) = repaired(&raw).unwrap();
        let s = spec
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .clone()
            .unwrap();
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        assert_eq!(
            s.flags().as_deref(),
            Some(
                &[
                    F::SchedResetOnFork,
                    F::SchedFlagDLOverrun,
                    F::SchedFlagUtilClampMin
                ][..]
            )
        );
    }
}
