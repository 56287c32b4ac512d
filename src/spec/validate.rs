//! Checks on a parsed spec that must fail `create` before anything exists
//! on the host: a bad config never leaves a cgroup, mount or process behind.

use std::collections::HashSet;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{Result, SpecError};
use crate::namespaces;

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(SpecError::Invalid(msg.into()))
}

pub fn validate(spec: &Spec) -> Result<()> {
    process(spec)?;
    namespace_list(spec)?;
    namespace_needs(spec)?;
    let linux = spec.linux().as_ref();
    let userns = namespaces::has(spec, LinuxNamespaceType::User);
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        crate::plan::idmap::validate(m, userns).map_err(SpecError::Invalid)?;
    }
    if let Some(l) = linux.and_then(|l| l.mount_label().as_deref())
        && l.contains('"')
    {
        // It goes into mount data as context="<label>".
        return invalid(format!("linux.mountLabel {l:?} must not contain '\"'"));
    }
    crate::netdev::validate(spec).map_err(SpecError::Invalid)?;
    if let Some(rdt) = linux.and_then(|l| l.intel_rdt().as_ref()) {
        crate::intelrdt::validate(rdt).map_err(SpecError::Invalid)?;
    }
    crate::sysctl::validate(spec).map_err(SpecError::Invalid)?;
    crate::hooks::validate(spec).map_err(SpecError::Invalid)?;
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        crate::seccomp::validate(s).map_err(SpecError::Invalid)?;
    }
    if spec.root().as_ref().is_none() {
        return invalid("root must be specified");
    }
    numbers(spec)
}

/// Numbers that would otherwise be cut short or wrap on their way to the
/// kernel, or a size that is joined into a cgroup file name.
fn numbers(spec: &Spec) -> Result<()> {
    if let Some(size) = spec.process().as_ref().and_then(|p| p.console_size()) {
        for (what, v) in [("height", size.height()), ("width", size.width())] {
            if v > u64::from(u16::MAX) {
                return invalid(format!(
                    "process.consoleSize.{what} {v} is out of range (0-65535)"
                ));
            }
        }
    }
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    // dev_t holds a 12-bit major and a 20-bit minor.
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        for (what, v, max) in [
            ("major", d.major(), 4095),
            ("minor", d.minor(), (1 << 20) - 1),
        ] {
            if !(0..=max).contains(&v) {
                return invalid(format!(
                    "linux.devices[{i}] ({}): {what} {v} is out of range (0-{max})",
                    d.path().display()
                ));
            }
        }
    }
    let Some(res) = linux.resources().as_ref() else {
        return Ok(());
    };
    crate::cgroups::check_device_rules(res.devices().as_deref().unwrap_or(&[]))
        .map_err(SpecError::Invalid)?;
    for (i, d) in res.devices().iter().flatten().enumerate() {
        // -1 is runc's wildcard, as an absent number is.
        for (what, v) in [("major", d.major()), ("minor", d.minor())] {
            if let Some(v) = v
                && !(-1..=i64::from(u32::MAX)).contains(&v)
            {
                return invalid(format!(
                    "linux.resources.devices[{i}]: {what} {v} is out of range"
                ));
            }
        }
    }
    for l in res.hugepage_limits().iter().flatten() {
        let size = l.page_size();
        let digits = size.trim_end_matches(['K', 'M', 'G', 'T', 'B']);
        let unit = &size[digits.len()..];
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !matches!(unit, "KB" | "MB" | "GB" | "TB")
        {
            return invalid(format!(
                "linux.resources.hugepageLimits: pageSize {size:?} is not a size such as \"2MB\""
            ));
        }
    }
    Ok(())
}

fn process(spec: &Spec) -> Result<()> {
    let Some(process) = spec.process() else {
        return invalid("process property must not be empty");
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return invalid("args must not be empty");
    }
    if !process.cwd().is_absolute() {
        return invalid(format!("cwd {:?} is not an absolute path", process.cwd()));
    }
    if process.user().username().is_some() {
        return invalid("process.user.username is not supported on Linux");
    }
    if let Some(adj) = process.oom_score_adj()
        && !(-1000..=1000).contains(&adj)
    {
        return invalid(format!("oomScoreAdj {adj} is out of range [-1000, 1000]"));
    }
    Ok(())
}

/// Each type at most once; paths absolute.
fn namespace_list(spec: &Spec) -> Result<()> {
    let mut seen = HashSet::new();
    for ns in namespaces::namespaces(spec) {
        if !seen.insert(ns.typ()) {
            return invalid(format!(
                "malformed spec file: duplicated ns {:?}",
                namespaces::spec_name(ns.typ())
            ));
        }
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            return invalid(format!(
                "namespace {} path {:?} must be absolute",
                namespaces::spec_name(ns.typ()),
                p
            ));
        }
    }
    Ok(())
}

/// What needs a namespace of its own: the hostname a UTS one, id maps a
/// user one, masks and a read-only root a mount one.
fn namespace_needs(spec: &Spec) -> Result<()> {
    // A UTS namespace joined by path is private enough (runc agrees).
    let own_uts = namespaces::has(spec, LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !own_uts {
        return invalid("unable to set hostname without a private UTS namespace");
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !own_uts {
        return invalid("unable to set domainname without a private UTS namespace");
    }
    let linux = spec.linux().as_ref();
    let has_maps = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    let new_user = namespaces::is_new(spec, LinuxNamespaceType::User);
    if new_user && !has_maps {
        return invalid("user namespaces enabled, but no user mapping found");
    }
    if has_maps && !namespaces::has(spec, LinuxNamespaceType::User) {
        return invalid("user namespaces not enabled, but user mapping found");
    }
    // Without a mount namespace every mount would be the host's: what
    // needs one is refused before anything is mounted.
    if !namespaces::has(spec, LinuxNamespaceType::Mount) {
        let nonempty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
        if nonempty(linux.and_then(|l| l.masked_paths().as_ref()))
            || nonempty(linux.and_then(|l| l.readonly_paths().as_ref()))
        {
            return invalid("unable to restrict sys entries without a private MNT namespace");
        }
        if spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly() == Some(true))
        {
            // runc ignores it silently; a caller's config keeps working,
            // and the user learns why the root is writable.
            crate::warn!("root.readonly is ignored without a private MNT namespace");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(f: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = super::super::default_spec(false);
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn default_is_valid() {
        validate(&spec(|_| {})).unwrap();
    }

    #[test]
    fn rejects_bad_specs() {
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["process"]["args"] = serde_json::json!([])),
                "args must not be empty",
            ),
            (Box::new(|v| v["process"]["cwd"] = "rel".into()), "absolute"),
            (
                Box::new(|v| v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}])),
                "hostname without a private UTS",
            ),
            (
                Box::new(|v| {
                    v["linux"]["namespaces"] = serde_json::json!([{"type": "uts"}, {"type": "uts"}])
                }),
                "duplicated ns",
            ),
            (
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type": "user"}))
                }),
                "no user mapping",
            ),
            (
                Box::new(|v| {
                    v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                        {"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}))
                }),
                "needs the container to have a user namespace",
            ),
            (
                Box::new(|v| {
                    v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                        {"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                         "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                         "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}))
                }),
                "only supported on bind mounts",
            ),
            (
                Box::new(|v| {
                    v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                        {"destination": "/x", "type": "bind", "source": "/tmp", "options": ["bind"],
                         "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}))
                }),
                "must be given together",
            ),
        ];
        let res = |v: &mut serde_json::Value, key: &str, val: serde_json::Value| {
            v["linux"]["resources"][key] = val;
        };
        let cases: Vec<(Edit, &str)> = cases
            .into_iter()
            .chain([
                (
                    Box::new(|v: &mut serde_json::Value| {
                        v["process"]["consoleSize"] =
                            serde_json::json!({"height": 65536, "width": 80})
                    }) as Edit,
                    "consoleSize.height 65536 is out of range",
                ),
                (
                    Box::new(|v| {
                        v["linux"]["devices"] = serde_json::json!(
                            [{"path": "/dev/x", "type": "c", "major": -1, "minor": 3}])
                    }),
                    "linux.devices[0] (/dev/x): major -1 is out of range (0-4095)",
                ),
                (
                    Box::new(|v| {
                        v["linux"]["devices"] = serde_json::json!(
                            [{"path": "/dev/x", "type": "b", "major": 8, "minor": 1048576}])
                    }),
                    "minor 1048576 is out of range",
                ),
                (
                    Box::new(move |v| {
                        res(
                            v,
                            "devices",
                            serde_json::json!(
                            [{"allow": true, "type": "c", "major": -2, "access": "r"}]),
                        )
                    }),
                    "linux.resources.devices[0]: major -2 is out of range",
                ),
                (
                    Box::new(move |v| {
                        res(
                            v,
                            "hugepageLimits",
                            serde_json::json!(
                            [{"pageSize": "../../memory/x", "limit": 1}]),
                        )
                    }),
                    "pageSize \"../../memory/x\" is not a size",
                ),
                (
                    Box::new(move |v| {
                        res(
                            v,
                            "hugepageLimits",
                            serde_json::json!([{"pageSize": "MB", "limit": 1}]),
                        )
                    }),
                    "is not a size",
                ),
            ])
            .collect();
        for (f, want) in cases {
            let err = validate(&spec(f)).unwrap_err().to_string();
            assert!(err.contains(want), "{err} !~ {want}");
        }
    }
}
