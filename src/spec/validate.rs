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
            return invalid("root.readonly requires a private MNT namespace");
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
        for (f, want) in cases {
            let err = validate(&spec(f)).unwrap_err().to_string();
            assert!(err.contains(want), "{err} !~ {want}");
        }
    }
}
