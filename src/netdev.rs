//! `linux.netDevices`: move named host interfaces into the container's
//! network namespace, renamed if asked, with their permanent global
//! addresses, and bring them up. Done by the parent (it holds
//! CAP_NET_ADMIN in both namespaces) once the init is in its final network
//! namespace.
//!
//! Per runtime-spec (config-linux.md, "Namespace Lifecycle and Container
//! Termination") hull never moves a device back out: when the namespace
//! dies the kernel returns physical devices to the host and destroys
//! virtual ones; a namespace joined by path keeps its devices.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};

use crate::netlink::{Link, Route};

fn devices(spec: &Spec) -> Option<&HashMap<String, LinuxNetDevice>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .filter(|d| !d.is_empty())
}

pub fn requested(spec: &Spec) -> bool {
    devices(spec).is_some()
}

/// A name the kernel accepts for an interface (dev_valid_name): under
/// IFNAMSIZ, not "." or "..", no '/', ':' or whitespace.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.chars().any(char::is_whitespace)
}

/// Config checks, run before anything exists on the host.
pub fn validate(spec: &Spec) -> Result<(), String> {
    let Some(devs) = devices(spec) else {
        return Ok(());
    };
    if !crate::namespaces::has(spec, LinuxNamespaceType::Network) {
        return Err("unable to move network devices without a network namespace".into());
    }
    for (host, dev) in devs {
        if !valid_name(host) {
            return Err(format!("invalid network device name {host:?}"));
        }
        if let Some(n) = dev.name().as_deref().filter(|n| !n.is_empty())
            && !valid_name(n)
        {
            return Err(format!("invalid network device name {n:?}"));
        }
    }
    Ok(())
}

/// A netlink socket in the namespace `netns`: the socket stays bound to
/// the namespace it was created in, so we step in, make it, and step back.
fn socket_in(netns: &OwnedFd) -> Result<Route> {
    let home = open(
        "/proc/thread-self/ns/net",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening hull's own network namespace")?;
    setns(netns, CloneFlags::CLONE_NEWNET).context("entering the container's network namespace")?;
    let sock = Route::open();
    // Staying in the container's namespace would misdirect every later
    // host-side step: this must not fail silently.
    setns(&home, CloneFlags::CLONE_NEWNET).context("returning to hull's network namespace")?;
    sock.context("netlink socket in the container's network namespace")
}

/// Move every requested device into the network namespace of `pid`.
pub fn move_all(spec: &Spec, pid: i32) -> Result<()> {
    let Some(devs) = devices(spec) else {
        return Ok(());
    };
    let netns = open(
        format!("/proc/{pid}/ns/net").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening the container's network namespace")?;
    let mut host = Route::open().context("netlink socket")?;
    let mut inside = socket_in(&netns)?;
    // Sorted, so that errors and kernel-chosen names ("eth%d") are
    // deterministic.
    let mut names: Vec<&String> = devs.keys().collect();
    names.sort();
    for name in names {
        let dev = &devs[name];
        let new_name = dev
            .name()
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(name);
        move_one(&mut host, &mut inside, &netns, name, new_name)
            .with_context(|| format!("moving network device {name} into the container"))?;
    }
    Ok(())
}

fn move_one(
    host: &mut Route,
    inside: &mut Route,
    netns: &OwnedFd,
    name: &str,
    new_name: &str,
) -> Result<()> {
    let link = host
        .link(name)?
        .ok_or_else(|| anyhow!("no network device {name:?} on the host"))?;
    let index = link.index;
    let keep: Vec<_> = host
        .addresses(index)
        .context("listing its addresses")?
        .into_iter()
        .filter(|a| a.is_permanent_global())
        .collect();
    let before = inside.links().context("listing the container's links")?;
    let template = new_name.contains('%');
    if !template && before.iter().any(|l| l.name == new_name) {
        bail!("a device named {new_name:?} already exists in the container's network namespace");
    }
    // Down first, so nothing on the host uses it half-moved.
    host.set_up(index, false).context("setting it down")?;
    if let Err(e) = host.move_to(index, new_name, netns) {
        if link.up {
            let _ = host.set_up(index, true);
        }
        return Err(anyhow!("{}", e.desc())).context(format!("moving it as {new_name:?}"));
    }
    // The kernel keeps the index when it is free there, else picks one. By
    // name when we know it; a "%d" name is the kernel's choice: the newcomer.
    let moved = if template {
        inside.links()?.into_iter().find(|l| {
            !before
                .iter()
                .any(|b| b.index == l.index && b.name == l.name)
        })
    } else {
        inside.link(new_name)?
    };
    let Link {
        index: new_index,
        name: final_name,
        ..
    } = moved.ok_or_else(|| anyhow!("it did not appear in the container's namespace"))?;
    for a in &keep {
        inside
            .add_address(new_index, a)
            .with_context(|| format!("adding address {} to {final_name}", a.display()))?;
    }
    inside
        .set_up(new_index, true)
        .with_context(|| format!("setting {final_name} up"))?;
    crate::debug!("network device {name} moved into the container as {final_name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_follow_the_kernel() {
        for ok in ["eth0", "ctr%d", "a-b_c.d", "123456789012345"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "1234567890123456"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn needs_a_network_namespace() {
        let mut v = crate::spec::default_spec(false);
        v["linux"]["netDevices"] = serde_json::json!({"eth1": {"name": "ctr0"}});
        let s: Spec = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(validate(&s), Ok(()));
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
        let s: Spec = serde_json::from_value(v.clone()).unwrap();
        assert!(
            validate(&s)
                .unwrap_err()
                .contains("without a network namespace")
        );
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network"}));
        v["linux"]["netDevices"] = serde_json::json!({"eth1": {"name": "bad name"}});
        let s: Spec = serde_json::from_value(v).unwrap();
        assert!(
            validate(&s)
                .unwrap_err()
                .contains("invalid network device name")
        );
    }
}
