//! Writing a child's uid_map and gid_map from the parent, while the child
//! waits: only a process outside the new user namespace may map host ids.

use oci_spec::runtime::{LinuxIdMapping, Spec};

pub fn write_maps(pid: i32, spec: &Spec) -> std::io::Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let render = |m: &Option<Vec<LinuxIdMapping>>| -> String {
        m.as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let uid = render(linux.uid_mappings());
    let gid = render(linux.gid_mappings());
    write(pid, "uid_map", &uid)?;
    write(pid, "gid_map", &gid)
}

fn write(pid: i32, file: &str, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    // One write(2): the kernel accepts a map only whole.
    std::fs::write(&path, text.as_bytes()).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("writing {path} ({}): {e}", text.trim().replace('\n', ", ")),
        )
    })
}
