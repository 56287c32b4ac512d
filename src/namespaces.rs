//! Which namespaces a container gets and in which order they are entered.
//!
//! The kernel makes every namespace created together with a user namespace
//! owned by it, and refuses `setns` into a namespace owned by an ancestor
//! user namespace once we are inside a new one. So namespaces joined by path
//! must be entered *before* a new user namespace is created, and the new pid
//! namespace only applies to children, which is why joining or creating one
//! after clone costs one extra fork. The common case (nothing joined) needs
//! none of that: all new namespaces are created by the single clone3.
//!
//! cgroup and time namespaces are never created by clone: the cgroup one must
//! be unshared after the process is placed in its cgroup (so the container's
//! cgroup becomes its root) and the time one before its offsets are written.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

/// How the init stage's namespaces come to be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NsPlan {
    /// Namespaces created by clone3 in the parent.
    pub clone_flags: u64,
    /// Namespaces to join by path in the child, user first.
    pub joins: Vec<Join>,
    /// Create a user namespace in the child after the joins (the parent then
    /// writes its id maps on request).
    pub unshare_user: bool,
    /// Namespaces to create in the child after the user namespace.
    pub unshare_flags: u64,
    /// The child must fork once more so the init lands in the pid namespace
    /// it created or joined.
    pub fork_for_pid: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Join {
    pub flag: u64,
    pub path: PathBuf,
}

/// The kernel's CLONE_NEW* flag for a namespace type.
pub fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name runc uses in errors and `features` ("network", "mount", ...).
pub fn spec_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Every namespace type hull supports, for `features`.
pub const ALL: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
];

pub fn namespaces(spec: &Spec) -> &[LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// True when the spec asks for a namespace of this type (new or joined).
pub fn has(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == typ)
}

/// The path a namespace is joined by; `"path": ""` means a new one, as
/// runc reads it.
pub fn join_path(ns: &LinuxNamespace) -> Option<&PathBuf> {
    ns.path().as_ref().filter(|p| !p.as_os_str().is_empty())
}

/// True when the spec asks for a *new* namespace of this type.
pub fn is_new(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec)
        .iter()
        .any(|n| n.typ() == typ && join_path(n).is_none())
}

/// Order and means of entering the spec's namespaces.
pub fn plan(spec: &Spec) -> NsPlan {
    let late = CloneFlags::CLONE_NEWCGROUP.bits() as u64 | libc::CLONE_NEWTIME as u64;
    let mut new = 0u64;
    let mut joins = Vec::new();
    for ns in namespaces(spec) {
        let f = flag(ns.typ()).bits() as u64;
        match join_path(ns) {
            Some(p) => joins.push(Join {
                flag: f,
                path: p.clone(),
            }),
            None => new |= f,
        }
    }
    // The user namespace first in the list; the init joins the others
    // before it where it can (see `init::namespaces::join_paths`).
    let user = CloneFlags::CLONE_NEWUSER.bits() as u64;
    let pid = CloneFlags::CLONE_NEWPID.bits() as u64;
    joins.sort_by_key(|j| j.flag != user);
    let joins_pid = joins.iter().any(|j| j.flag == pid);
    let joins_user = joins.iter().any(|j| j.flag == user);

    if joins.is_empty() || (new & user == 0 && !joins_user && !joins_pid) {
        // Everything new comes from clone3; joins (of non-owning types) are
        // done by the child, which still holds the host's capabilities.
        return NsPlan {
            clone_flags: new & !late,
            joins,
            unshare_user: false,
            unshare_flags: new & late,
            fork_for_pid: false,
        };
    }
    NsPlan {
        clone_flags: 0,
        joins,
        unshare_user: new & user != 0,
        unshare_flags: new & !user,
        fork_for_pid: new & pid != 0 || joins_pid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};

    fn spec(nss: &[(LinuxNamespaceType, Option<&str>)]) -> Spec {
        let nss: Vec<_> = nss
            .iter()
            .map(|(t, p)| {
                let mut b = LinuxNamespaceBuilder::default().typ(*t);
                if let Some(p) = p {
                    b = b.path(PathBuf::from(p));
                }
                b.build().unwrap()
            })
            .collect();
        SpecBuilder::default()
            .linux(LinuxBuilder::default().namespaces(nss).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn all_new_namespaces_come_from_clone() {
        use LinuxNamespaceType::*;
        let p = plan(&spec(&[
            (Pid, None),
            (Network, None),
            (Mount, None),
            (User, None),
            (Cgroup, None),
        ]));
        let want =
            (libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWNS | libc::CLONE_NEWUSER)
                as u64;
        assert_eq!(p.clone_flags, want);
        assert_eq!(p.unshare_flags, libc::CLONE_NEWCGROUP as u64);
        assert!(!p.fork_for_pid && !p.unshare_user && p.joins.is_empty());
    }

    #[test]
    fn joining_a_netns_keeps_the_single_clone() {
        use LinuxNamespaceType::*;
        let p = plan(&spec(&[
            (Pid, None),
            (Network, Some("/proc/1/ns/net")),
            (Mount, None),
        ]));
        assert_eq!(
            p.clone_flags,
            (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64
        );
        assert_eq!(p.joins.len(), 1);
        assert!(!p.fork_for_pid);
    }

    #[test]
    fn new_userns_with_a_join_creates_it_after_joining() {
        use LinuxNamespaceType::*;
        let p = plan(&spec(&[
            (User, None),
            (Network, Some("/x")),
            (Pid, None),
            (Mount, None),
        ]));
        assert_eq!(p.clone_flags, 0);
        assert!(p.unshare_user);
        assert_eq!(
            p.unshare_flags,
            (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64
        );
        assert!(p.fork_for_pid);
    }

    #[test]
    fn joined_userns_is_entered_first_and_pid_join_forks() {
        use LinuxNamespaceType::*;
        let p = plan(&spec(&[
            (Pid, Some("/p")),
            (User, Some("/u")),
            (Mount, None),
        ]));
        assert_eq!(p.joins[0].flag, libc::CLONE_NEWUSER as u64);
        assert!(p.fork_for_pid);
        assert_eq!(p.clone_flags, 0);
    }
}
