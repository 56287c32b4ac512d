//! `linux.intelRdt`: cache and memory-bandwidth allocation through the
//! resctrl filesystem. The container's init joins a CLOS group (closID, or
//! one named after the container), whose schemata are written from the
//! config, plus a monitoring group when asked. As runc: a group hull made
//! for the container is removed on delete; a named closID is someone
//! else's and is left alone (only our monitoring group inside it goes).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use oci_spec::runtime::LinuxIntelRdt;

/// Where resctrl is mounted, from our mount table.
pub fn mountpoint() -> Option<PathBuf> {
    crate::mountinfo::read()
        .ok()?
        .into_iter()
        .find(|e| e.fs_type == "resctrl")
        .map(|e| e.mount_point)
}

/// What `delete` must undo, recorded in state.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdtState {
    /// The CLOS group the init joined.
    pub group: PathBuf,
    /// The group was made by hull for this container (no closID).
    pub remove_group: bool,
    /// Our monitoring group, if enableMonitoring.
    pub mon: Option<PathBuf>,
}

/// closID as given: None when unset or empty; "/" is the root group.
fn clos_id(rdt: &LinuxIntelRdt) -> Option<&str> {
    rdt.clos_id().as_deref().filter(|c| !c.is_empty())
}

fn valid_clos(id: &str) -> bool {
    id == "/" || (id != "." && id != ".." && !id.contains('/'))
}

/// Config checks, before anything exists.
pub fn validate(rdt: &LinuxIntelRdt) -> Result<(), String> {
    if let Some(c) = clos_id(rdt)
        && !valid_clos(c)
    {
        return Err(format!(
            "linux.intelRdt.closID {c:?} is not a valid group name"
        ));
    }
    Ok(())
}

/// One schemata line, "L3:0=ff;1=f0", as resource and (domain, value)s.
/// Values are compared as numbers: the kernel reads back "000ff" for "ff"
/// (cache masks are hex, bandwidth decimal).
fn parse_line(line: &str) -> Option<(String, Vec<(String, u64)>)> {
    let (res, doms) = line.trim().split_once(':')?;
    let radix = if res.trim().starts_with("MB") { 10 } else { 16 };
    let doms = doms
        .split(';')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let (id, v) = d.split_once('=')?;
            Some((
                id.trim().to_string(),
                u64::from_str_radix(v.trim(), radix).ok()?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((res.trim().to_string(), doms))
}

/// Requested lines that an existing group's schemata does not match.
fn mismatches(requested: &str, existing: &str) -> Vec<String> {
    let have: Vec<_> = existing.lines().filter_map(parse_line).collect();
    requested
        .lines()
        .filter(|want| {
            let Some((res, doms)) = parse_line(want) else {
                return true;
            };
            let Some((_, cur)) = have.iter().find(|(r, _)| *r == res) else {
                return true;
            };
            doms.iter().any(|d| !cur.contains(d))
        })
        .map(str::to_string)
        .collect()
}

/// The schemata file content the config asks for (empty: leave it alone).
fn schemata(rdt: &LinuxIntelRdt) -> String {
    [
        rdt.l3_cache_schema().as_deref(),
        rdt.mem_bw_schema().as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(rdt.schemata().iter().flatten().map(String::as_str))
    .filter(|s| !s.is_empty())
    .map(|s| format!("{s}\n"))
    .collect()
}

/// The kernel explains a refused write in info/last_cmd_status.
fn explain(root: &Path, what: String, e: std::io::Error) -> String {
    match std::fs::read_to_string(root.join("info/last_cmd_status")) {
        Ok(s) if !s.trim().is_empty() && s.trim() != "ok" => {
            format!("{what}: {e} ({})", s.trim())
        }
        _ => format!("{what}: {e}"),
    }
}

/// Put `pid` into the container's resctrl groups under `root`, undoing
/// what it made on failure (what `create` does in two recorded steps).
#[cfg(test)]
fn apply(root: &Path, rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<RdtState, String> {
    let state = plan(root, rdt, id)?;
    if let Err(e) = enter(root, &state, rdt, pid) {
        let _ = remove(&state);
        return Err(e);
    }
    Ok(state)
}

/// The groups the container will use and which of them hull will make,
/// decided before anything is created, so that state.json can record what
/// `delete` must remove even if hull dies half-way through `enter`.
pub fn plan(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> Result<RdtState, String> {
    let clos = clos_id(rdt);
    let group = match clos {
        Some("/") => root.to_path_buf(),
        c => root.join(c.unwrap_or(id)),
    };
    let schemata = schemata(rdt);
    if clos.is_some() && group.is_dir() {
        // Someone else's group, maybe shared: never rewrite its limits,
        // only check they are the ones asked for (runtime-spec).
        if !schemata.is_empty() {
            let existing = std::fs::read_to_string(group.join("schemata"))
                .map_err(|e| format!("reading {}/schemata: {e}", group.display()))?;
            let differ = mismatches(&schemata, &existing);
            if !differ.is_empty() {
                return Err(format!(
                    "closID group {} exists with schemata that do not match {:?}",
                    group.display(),
                    differ.join("; ")
                ));
            }
        }
    } else if clos.is_some() && schemata.is_empty() {
        return Err(format!(
            "intelRdt closID group {} does not exist (it must be pre-created when no schemata are given)",
            group.display()
        ));
    }
    Ok(RdtState {
        remove_group: clos.is_none() && !group.is_dir(),
        mon: rdt
            .enable_monitoring()
            .unwrap_or(false)
            .then(|| group.join("mon_groups").join(id)),
        group,
    })
}

/// Make the planned groups, write the schemata of a group that is ours to
/// configure, and move `pid` in. On failure the caller removes what the
/// plan says (the container's one teardown path).
pub fn enter(root: &Path, state: &RdtState, rdt: &LinuxIntelRdt, pid: i32) -> Result<(), String> {
    let group = &state.group;
    let existed = match std::fs::create_dir(group) {
        Ok(()) => false,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
        Err(e) => return Err(explain(root, format!("creating {}", group.display()), e)),
    };
    let schemata = schemata(rdt);
    // A closID group that existed was compared by `plan`, never written.
    let theirs = existed && clos_id(rdt).is_some();
    if !schemata.is_empty() && !theirs {
        std::fs::write(group.join("schemata"), &schemata)
            .map_err(|e| explain(root, format!("writing schemata {:?}", schemata.trim()), e))?;
    }
    std::fs::write(group.join("tasks"), pid.to_string())
        .map_err(|e| explain(root, format!("adding pid {pid} to {}", group.display()), e))?;
    if let Some(mon) = &state.mon {
        match std::fs::create_dir(mon) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(explain(root, format!("creating {}", mon.display()), e)),
        }
        std::fs::write(mon.join("tasks"), pid.to_string())
            .map_err(|e| explain(root, format!("adding pid {pid} to {}", mon.display()), e))?;
    }
    Ok(())
}

/// Undo `apply`: our monitoring group, and the group if we made it.
pub fn remove(state: &RdtState) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    };
    if let Some(mon) = &state.mon {
        gone(std::fs::remove_dir(mon))?;
    }
    if state.remove_group {
        gone(std::fs::remove_dir(&state.group))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(v: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(v).unwrap()
    }

    /// A directory standing in for /sys/fs/resctrl (real resctrl needs CPU
    /// support this machine lacks); directories are plain ones here.
    fn fake_root(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hull-resctrl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("info")).unwrap();
        d
    }

    #[test]
    fn schemata_tasks_and_monitoring_group() {
        let root = fake_root("own");
        let r = rdt(
            serde_json::json!({"l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50",
            "schemata": ["L2:0=f"], "enableMonitoring": true}),
        );
        // The kernel gives every real group a mon_groups directory; a plain
        // one has none, so the monitoring step fails.
        let err = apply(&root, &r, "ctr", 42).unwrap_err();
        assert!(err.contains("mon_groups"), "{err}");

        std::fs::create_dir_all(root.join("ctr/mon_groups")).unwrap();
        let s = apply(&root, &r, "ctr", 42).unwrap();
        assert!(!s.remove_group, "the group already existed: not ours");
        assert_eq!(
            std::fs::read_to_string(root.join("ctr/schemata")).unwrap(),
            "L3:0=ff\nMB:0=50\nL2:0=f\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("ctr/tasks")).unwrap(),
            "42"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("ctr/mon_groups/ctr/tasks")).unwrap(),
            "42"
        );
        std::fs::remove_file(root.join("ctr/mon_groups/ctr/tasks")).unwrap();
        remove(&s).unwrap();
        assert!(!root.join("ctr/mon_groups/ctr").exists() && root.join("ctr").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn group_made_for_the_container_is_removed() {
        let root = fake_root("made");
        let s = apply(&root, &rdt(serde_json::json!({})), "c1", 7).unwrap();
        assert_eq!(s.group, root.join("c1"));
        assert!(s.remove_group);
        std::fs::remove_file(root.join("c1/tasks")).unwrap();
        remove(&s).unwrap();
        assert!(!root.join("c1").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn named_clos_must_exist_without_schemata_and_is_never_removed() {
        let root = fake_root("clos");
        let r = rdt(serde_json::json!({"closID": "shared"}));
        let err = apply(&root, &r, "c1", 7).unwrap_err();
        assert!(err.contains("must be pre-created"), "{err}");
        std::fs::create_dir(root.join("shared")).unwrap();
        let s = apply(&root, &r, "c1", 7).unwrap();
        assert!(!s.remove_group);
        remove(&s).unwrap();
        assert!(root.join("shared").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn refused_writes_carry_the_kernel_status() {
        let root = fake_root("status");
        std::fs::write(
            root.join("info/last_cmd_status"),
            "Unknown or unsupported resource\n",
        )
        .unwrap();
        // schemata is a directory: the write fails like a refused one.
        std::fs::create_dir_all(root.join("c1/schemata")).unwrap();
        let err = apply(
            &root,
            &rdt(serde_json::json!({"schemata": ["X:0=1"]})),
            "c1",
            7,
        )
        .unwrap_err();
        assert!(err.contains("(Unknown or unsupported resource)"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn clos_names_are_checked() {
        for bad in [".", "..", "a/b", "/x"] {
            assert!(
                validate(&rdt(serde_json::json!({"closID": bad}))).is_err(),
                "{bad}"
            );
        }
        for ok in ["gold", "/", ""] {
            assert!(
                validate(&rdt(serde_json::json!({"closID": ok}))).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn existing_clos_schemata_are_compared_never_written() {
        let root = fake_root("cmp");
        std::fs::create_dir(root.join("gold")).unwrap();
        let current = "    L3:0=000ff;1=000f0\n    MB:0=100;1= 50\n";
        std::fs::write(root.join("gold/schemata"), current).unwrap();
        let ok = rdt(
            serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=ff;1=f0",
            "memBwSchema": "MB:1=50"}),
        );
        assert!(!apply(&root, &ok, "c1", 7).unwrap().remove_group);
        let bad = rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:0=f"}));
        let err = apply(&root, &bad, "c2", 8).unwrap_err();
        assert!(err.contains("do not match \"L3:0=f\""), "{err}");
        assert_eq!(
            std::fs::read_to_string(root.join("gold/schemata")).unwrap(),
            current,
            "the shared group's limits are untouched"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn root_clos_is_the_default_group() {
        let root = fake_root("rootclos");
        let s = apply(&root, &rdt(serde_json::json!({"closID": "/"})), "c1", 9).unwrap();
        assert_eq!(s.group, root);
        assert!(!s.remove_group);
        assert_eq!(std::fs::read_to_string(root.join("tasks")).unwrap(), "9");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
