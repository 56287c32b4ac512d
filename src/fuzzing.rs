//! What hull reads from others, as fuzz targets: config.json (and the
//! readers create runs on it before anything exists), state.json, the
//! parent<->stage channel, /proc and mountinfo, cgroupsPath and `--cgroup`,
//! mount options. Each target takes arbitrary bytes and must return: no
//! panic, no abort, no unbounded allocation, touching nothing on the host.
//!
//! `fuzz/` drives them with libFuzzer (`cargo fuzz`, nightly); the tests
//! below run the same targets on stable in `cargo test`, over the corpus
//! kept in `fuzz/corpus/` and pseudo-random mutations of it, so the
//! guarantee does not depend on a nightly toolchain.

use std::path::Path;

/// A fuzz target: any bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and fuzz binary have.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("state", state),
    ("channel", channel),
    ("procfs", procfs),
    ("cgroup_path", cgroup_path),
    ("mount_options", mount_options),
];

/// config.json as `create` reads it, up to the last check before the host
/// is touched: parse, validate, the features gate, the namespace plan,
/// each mount's options and id maps, the cgroup path, hooks, seccomp.
pub fn config(data: &[u8]) {
    let Ok(spec) = crate::spec::parse(data, Path::new("config.json")) else {
        return;
    };
    let valid = crate::spec::validate(&spec).is_ok();
    let _ = crate::features::reject_unimplemented(&spec);
    let _ = crate::namespaces::plan(&spec);
    let userns = crate::namespaces::has(&spec, oci_spec::runtime::LinuxNamespaceType::User);
    for m in spec.mounts().iter().flatten() {
        let _ = crate::plan::mount_options::parse(m.options().as_deref().unwrap_or(&[]));
        let _ = crate::plan::idmap::validate(m, userns);
    }
    let linux = spec.linux().as_ref();
    let _ = crate::plan::cgroup_path::requested_path(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        "fuzz",
    );
    let _ = crate::cgroups::check_device_rules(
        linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().as_deref())
            .unwrap_or(&[]),
    );
    if valid && let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        let _ = crate::seccomp::compile(s);
    }
}

/// state.json as every verb reads it, and what is made of it.
pub fn state(data: &[u8]) {
    if let Ok(s) = serde_json::from_slice::<crate::container::State>(data) {
        let _ = s.hook_state("running", s.pid);
        let _ = serde_json::to_vec(&s);
    }
}

/// Frames on the parent<->stage channel (and the start connection), read
/// by the real receiver from a socket holding `data`; and the same bytes
/// as a CRIU RPC response (another peer's messages).
pub fn channel(data: &[u8]) {
    use crate::channel::{Channel, FromInit, ToInit};
    use std::io::Write;
    let _ = crate::criu::rpc::Response::decode(data);
    // A socket buffer holds at least this much: the write never blocks.
    let data = &data[..data.len().min(64 * 1024)];
    let Ok((a, b)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    if (&a).write_all(data).is_err() {
        return;
    }
    drop(a);
    let chan = Channel::from_stream(b);
    // A message of either direction, until the bytes run out.
    for i in 0.. {
        let more = if i % 2 == 0 {
            chan.recv::<FromInit>().is_ok()
        } else {
            chan.recv::<ToInit>().is_ok()
        };
        if !more {
            break;
        }
    }
}

/// mountinfo, /proc/self/cgroup and /proc/PID/stat, which hold names any
/// user or container chose.
pub fn procfs(data: &[u8]) {
    let _ = crate::mountinfo::parse(data);
    let _ = crate::cgroups::Layout::parse(data);
    let _ = crate::cgroups::parse_own_cgroups(data);
    let _ = crate::container::parse_stat(data);
}

/// linux.cgroupsPath, and `exec --cgroup` arguments (one per line after
/// the first NUL byte).
pub fn cgroup_path(data: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let (path, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let path = Path::new(std::ffi::OsStr::from_bytes(path));
    let _ = crate::plan::cgroup_path::requested_path(Some(path), "fuzz");
    let args: Vec<String> = String::from_utf8_lossy(rest)
        .lines()
        .map(String::from)
        .collect();
    let paths = crate::plan::CgroupPaths {
        v1: vec![("cpu,cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct/c".into())],
        v2: Some("/sys/fs/cgroup/unified/c".into()),
        v2_mount: Some("/sys/fs/cgroup/unified".into()),
        created: Vec::new(),
        systemd_unit: None,
        systemd_user: false,
    };
    if let Ok(sub) = crate::plan::cgroup_path::sub_cgroups(&paths, &args) {
        // However it is spelled, a sub-cgroup stays below the container's.
        for (_, dir) in &sub.v1 {
            assert!(dir.starts_with("/sys/fs/cgroup/cpu,cpuacct/c"), "{dir:?}");
        }
        if let Some(dir) = &sub.v2 {
            assert!(dir.starts_with("/sys/fs/cgroup/unified/c"), "{dir:?}");
        }
    }
}

/// A mount's options, comma-separated.
pub fn mount_options(data: &[u8]) {
    let options: Vec<String> = String::from_utf8_lossy(data)
        .split(',')
        .map(String::from)
        .collect();
    let _ = crate::plan::mount_options::parse(&options);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small, fast, seeded generator: runs are repeatable.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// A mutation of `seed`: bytes flipped, cut, duplicated, or replaced
    /// by the values that break parsers (huge and negative numbers, NUL,
    /// non-UTF-8, separators).
    fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
        const SPICE: &[&[u8]] = &[
            b"-1",
            b"18446744073709551616",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"1e999",
            b"\xff\xfe",
            b"\0",
            b"\"",
            b"..",
            b"/",
            b" - ",
            b")",
            b"[]",
            b"{}",
            b"null",
        ];
        let mut out = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(out.len() + 1);
            match rng.below(5) {
                0 if !out.is_empty() => {
                    let i = rng.below(out.len());
                    out[i] = rng.next() as u8;
                }
                1 => out.truncate(at),
                2 => {
                    let s = SPICE[rng.below(SPICE.len())];
                    out.splice(at..at, s.iter().copied());
                }
                3 if !out.is_empty() => {
                    let end = (at + rng.below(64)).min(out.len());
                    let copy = out[at.min(end)..end].to_vec();
                    out.splice(at..at, copy);
                }
                _ => {
                    let end = (at + rng.below(16)).min(out.len());
                    out.drain(at.min(end)..end);
                }
            }
        }
        out
    }

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .collect();
        seeds.push(Vec::new());
        seeds
    }

    #[test]
    fn every_target_has_a_corpus() {
        // The cgroup v2 VM gets the test binaries, not the source tree.
        if !Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").is_dir() {
            eprintln!("skipped: the source tree is not here (a VM or another machine)");
            return;
        }
        for (name, _) in TARGETS {
            assert!(corpus(name).len() > 1, "fuzz/corpus/{name} is empty");
        }
    }

    /// Mutations per target, spread over its seeds.
    const MUTATIONS: usize = 20_000;

    #[test]
    fn targets_survive_their_corpus_and_its_mutations() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for (name, target) in TARGETS {
            let seeds = corpus(name);
            for seed in &seeds {
                target(seed);
            }
            for _ in 0..MUTATIONS {
                let seed = &seeds[rng.below(seeds.len())];
                target(&mutate(seed, &mut rng));
            }
        }
    }
}
