//! `hull features`: the runtime-spec features document, built from the same
//! tables the config parser and appliers use. containerd and
//! Kubernetes read this to decide what to enable, so it must never claim
//! more than hull does.

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::namespaces;
use crate::plan::mount_options as options;

/// Refuse what the config asks for and this host cannot do, before
/// anything exists (the rest of the spec's fields are all implemented).
pub fn reject_unimplemented(spec: &Spec) -> anyhow::Result<()> {
    if spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.intel_rdt().is_some())
        && crate::intelrdt::mountpoint().is_none()
    {
        anyhow::bail!("linux.intelRdt is set but resctrl is not mounted on this host");
    }
    Ok(())
}

pub fn document() -> Value {
    let mount_options: Vec<&str> = {
        let mut v: Vec<&str> = options::TABLE.iter().map(|(n, _)| *n).collect();
        v.sort();
        v
    };
    let mut nss: Vec<&str> = namespaces::ALL
        .iter()
        .map(|t| namespaces::spec_name(*t))
        .collect();
    nss.sort();
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": crate::hooks::Phase::ALL.map(|p| p.name()),
        "mountOptions": mount_options,
        "linux": {
            "namespaces": nss,
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": true,
                "systemdUser": true,
                "rdma": true
            },
            "seccomp": {
                "enabled": true,
                "actions": crate::seccomp::ACTIONS,
                "operators": crate::seccomp::OPERATORS,
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": crate::seccomp::FLAGS,
                "supportedFlags": crate::seccomp::FLAGS
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            // What hull implements, irrespective of the host (the spec's
            // words, and runc's): a host without resctrl fails at create.
            "intelRdt": {"enabled": true, "schemata": true, "monitoring": true},
            "memoryPolicy": {
                "modes": crate::process::tuning::MEMORY_POLICY_MODES,
                "flags": crate::process::tuning::MEMORY_POLICY_FLAGS
            },
            "netDevices": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "potentiallyUnsafeConfigAnnotations": ["bundle", "org.systemd.property.", "org.criu.config"],
        "annotations": {
            "io.github.hull.version": env!("CARGO_PKG_VERSION"),
            "io.github.hull.commit": crate::version::COMMIT,
            // runc's: a caller may offer checkpoint/restore when it says so.
            "org.opencontainers.runc.checkpoint.enabled": "true"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_come_from_the_table() {
        let doc = document();
        let opts: Vec<&str> = doc["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for o in ["ro", "rbind", "rslave", "rro", "nosymfollow"] {
            assert!(opts.contains(&o), "{o}");
        }
        assert!(opts.contains(&"tmpcopyup") && opts.contains(&"ridmap"));
        for o in &opts {
            assert!(options::TABLE.iter().any(|(n, _)| n == o));
        }
    }

    #[test]
    fn hooks_are_listed() {
        let doc = document();
        assert_eq!(
            doc["hooks"],
            json!([
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ])
        );
    }
}
