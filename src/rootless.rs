//! Rootless mode: whether hull runs without the host's root, runc's rules
//! for deciding it (`--rootless true|false|auto`) and for the state root it
//! then defaults to (`$XDG_RUNTIME_DIR/hull`).
//!
//! Rootless changes what hull may expect of the host, never what it checks:
//! a cgroup it cannot make is left out only when the container asked for
//! none (no cgroupsPath, no limits), as runc does; a device cgroup program
//! (which needs the host's CAP_SYS_ADMIN) is not loaded; the systemd driver
//! talks to the user's own systemd.

/// Whether we run in the initial user namespace: its uid map is the whole
/// range, `0 0 4294967295`. Read as bytes; a kernel without user
/// namespaces has no such file (runc's rule: then there is only one).
pub fn in_initial_userns() -> bool {
    match std::fs::read("/proc/self/uid_map") {
        Ok(map) => {
            let mut words = map
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty());
            words.next() == Some(b"0")
                && words.next() == Some(b"0")
                && words.next() == Some(b"4294967295")
                && words.next().is_none()
        }
        Err(_) => true,
    }
}

/// The host's uid for our effective uid: what a daemon outside our user
/// namespace sees us as (the user whose systemd a rootless container's
/// scope belongs to). Read from /proc/self/uid_map as bytes.
pub fn host_uid() -> Option<u32> {
    let euid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read("/proc/self/uid_map").ok()?;
    crate::procfs::lines(&map).find_map(|line| {
        let mut w = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let inside: u32 = crate::procfs::number(w.next()?)?;
        let outside: u32 = crate::procfs::number(w.next()?)?;
        let count: u32 = crate::procfs::number(w.next()?)?;
        let off = euid.checked_sub(inside).filter(|&o| o < count)?;
        outside.checked_add(off)
    })
}

/// Whether this hull is rootless: `--rootless true|false` (Some), or
/// runc's `auto` (None), "not the host's root": an effective uid other
/// than 0, or uid 0 in a user namespace another program made (rootless
/// podman runs its runtime that way).
pub fn detect(flag: Option<bool>) -> bool {
    flag.unwrap_or_else(|| !nix::unistd::geteuid().is_root() || !in_initial_userns())
}

/// The state root when `--root` is not given: runc's rule. A user other
/// than root keeps its containers under `$XDG_RUNTIME_DIR`; so does uid 0
/// in a user namespace unless `$USER` says root (a root login outside one
/// keeps /run, whatever its XDG_RUNTIME_DIR).
pub fn default_root() -> String {
    const ROOT: &str = "/run/hull";
    let xdg = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !x.is_empty() => x,
        _ => return ROOT.into(),
    };
    let honour = if !nix::unistd::geteuid().is_root() {
        true
    } else if in_initial_userns() {
        false
    } else {
        std::env::var_os("USER").is_none_or(|u| u != "root")
    };
    if honour {
        format!("{}/hull", xdg.to_string_lossy())
    } else {
        ROOT.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_flags_win() {
        assert!(detect(Some(true)));
        assert!(!detect(Some(false)));
    }

    #[test]
    fn the_host_uid_is_ours_outside_a_user_namespace() {
        if in_initial_userns() {
            assert_eq!(host_uid(), Some(nix::unistd::geteuid().as_raw()));
        }
    }

    #[test]
    fn auto_is_false_for_the_hosts_root() {
        // The test suite runs as the host's root, in the initial namespace.
        if nix::unistd::geteuid().is_root() && in_initial_userns() {
            assert!(!detect(None));
            assert_eq!(default_root(), "/run/hull");
        }
    }
}
