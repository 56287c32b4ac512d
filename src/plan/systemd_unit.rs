//! The systemd cgroup driver's names, runc's way: `cgroupsPath` is
//! `slice:prefix:name`, the container gets the transient scope
//! `prefix-name.scope` in `slice`, and its cgroup is the slice's expanded
//! path plus the scope (`a-b.slice` is `/a.slice/a-b.slice`): exactly
//! where the kubelet, CRI-O and cAdvisor look for it.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The slice the scope goes into (`system.slice` when none is given).
    pub slice: String,
    /// The scope's unit name.
    pub name: String,
    /// The cgroup below the hierarchy's root: expanded slice + scope.
    pub path: PathBuf,
}

/// The unit for `cgroups_path` (empty: `system.slice`, prefix `hull`, the
/// container id, as runc does with its own name) in the system's manager,
/// or with `user` in that user's own systemd (rootless), whose units live
/// under its `user@UID.service` and whose default slice is `user.slice`.
pub fn parse(cgroups_path: &str, id: &str, user: Option<u32>) -> Result<Unit, String> {
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        ("", "hull", id)
    } else {
        match cgroups_path.split(':').collect::<Vec<_>>()[..] {
            [slice, prefix, name] => (slice, prefix, name),
            _ => {
                return Err(format!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {cgroups_path:?} instead"
                ));
            }
        }
    };
    let slice = match (slice.is_empty(), user) {
        (false, _) => slice,
        (true, None) => "system.slice",
        (true, Some(_)) => "user.slice",
    };
    if name.ends_with(".slice") {
        // runc would make a slice unit; a slice holds no processes, so the
        // container could not be placed in it.
        return Err(format!(
            "cgroupsPath {cgroups_path:?}: the name may not be a slice (a slice cannot hold the container's processes)"
        ));
    }
    // runc's name, also when the prefix is empty ("-name.scope").
    let unit = format!("{prefix}-{name}.scope");
    valid_unit_name(&unit)?;
    valid_unit_name(slice)?;
    let mut path = match user {
        Some(uid) => PathBuf::from(format!("/user.slice/user-{uid}.slice/user@{uid}.service")),
        None => PathBuf::from("/"),
    };
    path.push(expand_slice(slice)?.trim_start_matches('/'));
    path.push(&unit);
    Ok(Unit {
        slice: slice.to_string(),
        name: unit,
        path,
    })
}

/// systemd's slice hierarchy: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice` the root.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let invalid = || Err(format!("invalid slice name: {slice}"));
    let Some(stem) = slice.strip_suffix(".slice") else {
        return invalid();
    };
    if stem.is_empty() || slice.contains('/') {
        return invalid();
    }
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return invalid();
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(component);
        path.push_str(".slice");
        prefix.push_str(component);
        prefix.push('-');
    }
    Ok(path)
}

/// What systemd accepts as a unit name: 255 bytes at most, of letters,
/// digits and `:-_.\`, with a suffix after a dot.
fn valid_unit_name(name: &str) -> Result<(), String> {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\".contains(&b));
    let stem_ok = name
        .rsplit_once('.')
        .is_some_and(|(stem, _)| !stem.is_empty());
    if name.len() > 255 || !chars_ok || !stem_ok {
        return Err(format!("invalid systemd unit name {name:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_runcs() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(
            expand_slice("kubepods-burstable-pod1234.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice"
        );
        for bad in [
            "",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            "a.scope",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn callers_paths_land_where_they_look() {
        let u = parse(
            "kubepods-besteffort-pod9.slice:cri-containerd:abc",
            "x",
            None,
        )
        .unwrap();
        assert_eq!(u.name, "cri-containerd-abc.scope");
        assert_eq!(
            u.path,
            PathBuf::from(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/cri-containerd-abc.scope"
            )
        );
        let u = parse("machine.slice:libpod:abc", "x", None).unwrap();
        assert_eq!(u.path, PathBuf::from("/machine.slice/libpod-abc.scope"));
        let u = parse(":docker:abc", "x", None).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("system.slice", "docker-abc.scope")
        );
        let u = parse("", "c1", None).unwrap();
        assert_eq!(u.path, PathBuf::from("/system.slice/hull-c1.scope"));
        let u = parse("-.slice:p:n", "x", None).unwrap();
        assert_eq!(u.path, PathBuf::from("/p-n.scope"));
        let u = parse("", "c1", Some(1000)).unwrap();
        assert_eq!(
            u.path,
            PathBuf::from("/user.slice/user-1000.slice/user@1000.service/user.slice/hull-c1.scope")
        );
        assert_eq!(u.slice, "user.slice");
    }

    #[test]
    fn other_paths_are_refused_in_runcs_words() {
        for bad in ["/system.slice/x", "a:b", "a:b:c:d"] {
            let e = parse(bad, "x", None).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {bad:?} instead"
                )
            );
        }
        assert!(parse("system.slice:p:n.slice", "x", None).is_err());
        assert!(parse("system.slice:p:a/b", "x", None).is_err());
        assert!(parse("system.slice:p:a b", "x", None).is_err());
        assert!(parse("bad:p:n", "x", None).is_err());
        assert!(parse(&format!("system.slice:p:{}", "x".repeat(300)), "x", None).is_err());
    }
}
