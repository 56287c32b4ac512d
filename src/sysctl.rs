//! linux.sysctl: only keys that belong to a namespace the container has of
//! its own may be set (runc's rule), and they are written through a private
//! procfs instance (fsopen), never through the container's /proc, which a
//! hostile image could have shaped.

use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::namespaces;

/// The namespace a sysctl key belongs to, if any.
fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Some(LinuxNamespaceType::Ipc);
    }
    if key.starts_with("net.") {
        return Some(LinuxNamespaceType::Network);
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Some(LinuxNamespaceType::Uts);
    }
    None
}

/// Refuse keys that would change the host.
pub fn validate(spec: &Spec) -> Result<(), String> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for key in sysctl.keys() {
        let key = key.replace('/', ".");
        match namespace_of(&key) {
            Some(ns) if namespaces::has(spec, ns) => {}
            Some(ns) => {
                return Err(format!(
                    "sysctl {key:?} is not allowed as it is in a {} namespace the container does not have",
                    namespaces::spec_name(ns)
                ));
            }
            None => {
                return Err(format!(
                    "sysctl {key:?} is not in a separate kernel namespace"
                ));
            }
        }
        if key.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(format!("sysctl {key:?} is not a valid key"));
        }
    }
    Ok(())
}

/// Write the spec's sysctls inside the container's namespaces.
pub fn apply(spec: &Spec) -> Result<(), String> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc =
        private_procfs().map_err(|e| format!("mounting a private procfs for sysctl: {e}"))?;
    for (key, value) in sysctl {
        let rel = format!("sys/{}", key.replace('.', "/"));
        let c =
            std::ffi::CString::new(rel.clone()).map_err(|_| format!("sysctl {key:?}: NUL byte"))?;
        let resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        let fd = crate::sys::openat2(
            proc.as_raw_fd(),
            &c,
            libc::O_WRONLY | libc::O_TRUNC,
            0,
            resolve,
        )
        .map_err(|e| format!("opening sysctl {key}: {}", e.desc()))?;
        nix::unistd::write(&fd, value.as_bytes())
            .map_err(|e| format!("setting sysctl {key}={value}: {}", e.desc()))?;
    }
    Ok(())
}

fn private_procfs() -> nix::Result<OwnedFd> {
    let fs = crate::sys::fsopen(c"proc")?;
    crate::sys::fsconfig(fs.as_raw_fd(), libc::FSCONFIG_CMD_CREATE, None, None)?;
    crate::sys::fsmount(
        fs.as_raw_fd(),
        libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nss: &[&str], keys: &[&str]) -> Spec {
        let mut v = crate::spec::default_spec(false);
        v["linux"]["namespaces"] = nss.iter().map(|n| serde_json::json!({"type": n})).collect();
        v["linux"]["sysctl"] = keys
            .iter()
            .map(|k| (k.to_string(), serde_json::json!("1")))
            .collect::<serde_json::Map<_, _>>()
            .into();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn namespaced_keys_need_their_namespace() {
        assert!(
            validate(&spec(
                &["network", "uts", "mount"],
                &["net.ipv4.ip_forward"]
            ))
            .is_ok()
        );
        assert!(
            validate(&spec(&["uts", "mount"], &["net.ipv4.ip_forward"]))
                .unwrap_err()
                .contains("network")
        );
        assert!(
            validate(&spec(
                &["ipc", "uts", "mount"],
                &["kernel.shmmax", "fs.mqueue.msg_max"]
            ))
            .is_ok()
        );
        assert!(validate(&spec(&["uts", "mount"], &["kernel.shmmax"])).is_err());
    }

    #[test]
    fn host_wide_keys_are_refused() {
        let err = validate(&spec(
            &["network", "ipc", "uts", "mount"],
            &["kernel.panic"],
        ))
        .unwrap_err();
        assert!(err.contains("not in a separate kernel namespace"), "{err}");
        assert!(validate(&spec(&["network", "uts", "mount"], &["vm.swappiness"])).is_err());
    }
}
