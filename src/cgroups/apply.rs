//! Which hierarchy drives each part of linux.resources, and applying them
//! in runc's order. On a v1 host every controller has its own hierarchy; on
//! v2 everything is in the one directory; on a hybrid host a controller
//! missing from v1 but bound to the v2 mount (hugetlb on our machines) is
//! driven through v2. A part with no controller anywhere is an error: a
//! container never runs without a limit it asked for.

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, CgroupPaths, Result, devices, ebpf, files, v1, v2};

/// Where one controller is driven.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// Create (everything, devices included) or update (a running container).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    /// Create, rootless: the device filter is tried and its failure only
    /// logged, as runc does (loading one needs the host's CAP_SYS_ADMIN;
    /// a container in a user namespace cannot make device nodes anyway).
    CreateRootless,
    Update,
}

/// The parts of linux.resources, with the v1 and v2 controller behind each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Memory,
    Cpu,
    Cpuset,
    Pids,
    BlockIo,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
    Devices,
    Unified,
}

impl Part {
    fn field(self) -> &'static str {
        match self {
            Part::Memory => "memory",
            Part::Cpu => "cpu",
            Part::Cpuset => "cpu.cpus/mems",
            Part::Pids => "pids",
            Part::BlockIo => "blockIO",
            Part::Hugetlb => "hugepageLimits",
            Part::NetCls => "network.classID",
            Part::NetPrio => "network.priorities",
            Part::Rdma => "rdma",
            Part::Devices => "devices",
            Part::Unified => "unified",
        }
    }
    fn v1(self) -> Option<&'static str> {
        Some(match self {
            Part::Memory => "memory",
            Part::Cpu => "cpu",
            Part::Cpuset => "cpuset",
            Part::Pids => "pids",
            Part::BlockIo => "blkio",
            Part::Hugetlb => "hugetlb",
            Part::NetCls => "net_cls",
            Part::NetPrio => "net_prio",
            Part::Rdma => "rdma",
            Part::Devices => "devices",
            Part::Unified => return None,
        })
    }
    /// The v2 controller; "" for what v2 does without one (devices are an
    /// eBPF program, `unified` names its own).
    fn v2(self) -> Option<&'static str> {
        Some(match self {
            Part::Memory => "memory",
            Part::Cpu => "cpu",
            Part::Cpuset => "cpuset",
            Part::Pids => "pids",
            Part::BlockIo => "io",
            Part::Hugetlb => "hugetlb",
            Part::Rdma => "rdma",
            Part::Devices | Part::Unified => "",
            Part::NetCls | Part::NetPrio => return None,
        })
    }
}

/// Whether `res` sets any limit (device rules aside): rootless, a
/// container that sets none may do without a cgroup of its own.
pub fn sets_limits(res: &LinuxResources) -> bool {
    !parts(res, Mode::Update).is_empty()
}

/// The v2 controllers `res` needs, those its unified keys name included.
pub fn v2_controllers_needed(res: &LinuxResources) -> Vec<String> {
    let mut out: Vec<String> = parts(res, Mode::Update)
        .into_iter()
        .filter_map(|p| p.v2())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    for k in res.unified().iter().flat_map(|u| u.keys()) {
        if let Some((c, _)) = k.split_once('.').filter(|(c, _)| *c != "cgroup")
            && !out.iter().any(|o| o == c)
        {
            out.push(c.to_string());
        }
    }
    out
}

/// The parts `res` sets, in runc's order of application.
fn parts(res: &LinuxResources, mode: Mode) -> Vec<Part> {
    let mut out = Vec::new();
    // Every container gets its device rules, none at all being the
    // default list; `update` leaves them as create made them.
    if mode != Mode::Update {
        out.push(Part::Devices);
    }
    if res.pids().as_ref().is_some_and(|p| p.limit() != 0) {
        out.push(Part::Pids);
    }
    if let Some(m) = res.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            crate::warn!("Kernel memory settings are ignored and will be removed");
        }
        let any = m.limit().is_some()
            || m.reservation().is_some()
            || m.swap().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
            || m.use_hierarchy().is_some();
        if any {
            out.push(Part::Memory);
        }
    }
    if let Some(b) = res.block_io() {
        let any = b.weight().is_some()
            || b.leaf_weight().is_some()
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
            || b.weight_device().as_ref().is_some_and(|l| !l.is_empty());
        if any {
            out.push(Part::BlockIo);
        }
    }
    if let Some(c) = res.cpu() {
        let any = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some();
        if any {
            out.push(Part::Cpu);
        }
        if c.cpus().as_ref().is_some_and(|s| !s.is_empty())
            || c.mems().as_ref().is_some_and(|s| !s.is_empty())
        {
            out.push(Part::Cpuset);
        }
    }
    if res
        .hugepage_limits()
        .as_ref()
        .is_some_and(|h| !h.is_empty())
    {
        out.push(Part::Hugetlb);
    }
    if let Some(n) = res.network() {
        if n.class_id().is_some() {
            out.push(Part::NetCls);
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            out.push(Part::NetPrio);
        }
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        out.push(Part::Rdma);
    }
    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        out.push(Part::Unified);
    }
    out
}

/// Apply `res` to the container's cgroups. `v2_fd` is the container's v2
/// directory (for the device program).
pub fn apply(
    paths: &CgroupPaths,
    res: &LinuxResources,
    v2_fd: Option<&OwnedFd>,
    mode: Mode,
) -> Result<()> {
    let spec_rules = res.devices().as_deref().unwrap_or(&[]);
    let parts = parts(res, mode);
    // The v2 hierarchy's controllers, read only when v2 is needed.
    let mut v2_ctrls: Option<Vec<String>> = None;
    let targets = targets(paths, &parts, &mut v2_ctrls)?;
    if let (Some(dir), Some(mount)) = (&paths.v2, &paths.v2_mount) {
        enable_v2(paths, dir, mount, res, &targets, &mut v2_ctrls, mode)?;
    }
    for (part, target) in targets {
        let r = apply_part(part, target, res, spec_rules, v2_fd, mode);
        match r {
            Err(e) if part == Part::Devices && mode == Mode::CreateRootless && denied(&e) => {
                crate::debug!("rootless: no device filter: {e}");
            }
            r => r.map_err(|e| in_field(part, e))?,
        }
    }
    Ok(())
}

/// A permission error: what rootless may meet loading a device filter.
fn denied(e: &CgroupError) -> bool {
    use nix::errno::Errno::{EACCES, EPERM};
    match e {
        CgroupError::Io { errno, .. } | CgroupError::Write { errno, .. } => {
            matches!(errno, EPERM | EACCES)
        }
        CgroupError::Invalid(m) => m.contains("EPERM") || m.contains("EACCES"),
    }
}

/// Where each part is driven: its v1 hierarchy, or v2 when v1 lacks it.
fn targets<'a>(
    paths: &'a CgroupPaths,
    parts: &[Part],
    v2_ctrls: &mut Option<Vec<String>>,
) -> Result<Vec<(Part, Target<'a>)>> {
    let pure_v2 = paths.v1.is_empty();
    let mut targets = Vec::with_capacity(parts.len());
    for &part in parts {
        if part == Part::Unified && !pure_v2 {
            // runc's v1 manager drives a hybrid host and refuses the map
            // there, whatever the v2 mount happens to have.
            return Err(CgroupError::Invalid(
                "invalid configuration: cannot use unified on cgroup v1".into(),
            ));
        }
        let v1_dir = part.v1().and_then(|c| v1::dir_of(&paths.v1, c));
        let target = match (v1_dir, &paths.v2, &paths.v2_mount) {
            (Some(d), _, _) => Target::V1(d),
            (None, Some(dir), Some(mount)) if part.v2().is_some() => {
                let name = part.v2().unwrap_or_default();
                if !name.is_empty() && !v2_has(mount, name, v2_ctrls)? {
                    return Err(no_controller(part, name, pure_v2));
                }
                Target::V2(dir)
            }
            _ => {
                let name = part.v1().unwrap_or_default();
                return Err(no_controller(part, name, pure_v2));
            }
        };
        targets.push((part, target));
    }
    Ok(targets)
}

/// Whether the v2 hierarchy at `mount` has controller `name` (read once).
fn v2_has(mount: &Path, name: &str, v2_ctrls: &mut Option<Vec<String>>) -> Result<bool> {
    if v2_ctrls.is_none() {
        *v2_ctrls = Some(v2::controllers(mount)?);
    }
    Ok(v2_ctrls.iter().flatten().any(|c| c == name))
}

/// Enable in the v2 tree the controllers the container's v2 parts need.
fn enable_v2(
    paths: &CgroupPaths,
    dir: &Path,
    mount: &Path,
    res: &LinuxResources,
    targets: &[(Part, Target)],
    v2_ctrls: &mut Option<Vec<String>>,
    mode: Mode,
) -> Result<()> {
    let mut required: Vec<String> = targets
        .iter()
        .filter(|(_, t)| matches!(t, Target::V2(_)))
        .filter_map(|(p, _)| p.v2())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    // Controllers the unified map names, when v2 has them.
    for k in res.unified().iter().flat_map(|u| u.keys()) {
        if let Some((c, _)) = k.split_once('.').filter(|(c, _)| *c != "cgroup")
            && v2_has(mount, c, v2_ctrls)?
            && !required.iter().any(|r| r == c)
        {
            required.push(c.to_string());
        }
    }
    // On pure v2 enable everything at creation, as runc does, so that
    // stats and later updates find their files; on a hybrid host only
    // what v2 must drive (the host's root cgroup is not ours to change
    // beyond that).
    let wanted: Vec<String> = if paths.v1.is_empty() && mode != Mode::Update {
        match v2_ctrls.take() {
            Some(c) => c,
            None => v2::controllers(mount)?,
        }
    } else {
        required.clone()
    };
    if !wanted.is_empty() {
        v2::enable_controllers(mount, dir, &wanted, &required)?;
    }
    Ok(())
}

fn no_controller(part: Part, name: &str, pure_v2: bool) -> CgroupError {
    let why = if pure_v2 && part.v2().is_none() {
        " (cgroup v2 has no such controller)"
    } else {
        ""
    };
    CgroupError::Invalid(format!(
        "linux.resources.{}: no {name} cgroup controller on this host{why}",
        part.field()
    ))
}

/// Prefix an error with the spec field it came from, unless it says so.
fn in_field(part: Part, e: CgroupError) -> CgroupError {
    match e {
        CgroupError::Invalid(m) if m.contains("linux.resources.") || part == Part::Unified => {
            CgroupError::Invalid(m)
        }
        e => CgroupError::Invalid(format!("linux.resources.{}: {e}", part.field())),
    }
}

fn apply_part(
    part: Part,
    target: Target,
    res: &LinuxResources,
    spec_rules: &[LinuxDeviceCgroup],
    v2_fd: Option<&OwnedFd>,
    mode: Mode,
) -> Result<()> {
    use Target::{V1, V2};
    match (part, target) {
        (Part::Devices, t) => set_devices(t, spec_rules, v2_fd),
        (Part::Pids, V1(d) | V2(d)) => {
            v1::set_pids(d, res.pids().as_ref().map_or(0, |p| p.limit()))
        }
        (Part::Memory, V1(d)) => res
            .memory()
            .as_ref()
            .map_or(Ok(()), |m| v1::set_memory(d, m)),
        (Part::Memory, V2(d)) => res
            .memory()
            .as_ref()
            .map_or(Ok(()), |m| v2::set_memory(d, m)),
        (Part::BlockIo, V1(d)) => res
            .block_io()
            .as_ref()
            .map_or(Ok(()), |b| v1::set_blkio(d, b)),
        (Part::BlockIo, V2(d)) => res.block_io().as_ref().map_or(Ok(()), |b| v2::set_io(d, b)),
        (Part::Cpu, V1(d)) => res.cpu().as_ref().map_or(Ok(()), |c| v1::set_cpu(d, c)),
        (Part::Cpu, V2(d)) => res
            .cpu()
            .as_ref()
            .map_or(Ok(()), |c| v2::set_cpu(d, c, mode == Mode::Update)),
        (Part::Cpuset, V1(d) | V2(d)) => {
            res.cpu().as_ref().map_or(Ok(()), |c| v1::set_cpuset(d, c))
        }
        (Part::Hugetlb, V1(d)) => {
            v1::set_hugetlb(d, res.hugepage_limits().as_deref().unwrap_or(&[]))
        }
        (Part::Hugetlb, V2(d)) => {
            v2::set_hugetlb(d, res.hugepage_limits().as_deref().unwrap_or(&[]))
        }
        (Part::NetCls, V1(d)) => res
            .network()
            .as_ref()
            .map_or(Ok(()), |n| v1::set_net_cls(d, n)),
        (Part::NetPrio, V1(d)) => res
            .network()
            .as_ref()
            .map_or(Ok(()), |n| v1::set_net_prio(d, n)),
        (Part::Rdma, V1(d) | V2(d)) => set_rdma(d, res),
        (Part::Unified, V2(d)) => res
            .unified()
            .as_ref()
            .map_or(Ok(()), |u| v2::set_unified(d, u)),
        (p, _) => Err(CgroupError::Invalid(format!(
            "linux.resources.{}: not supported on this cgroup version",
            p.field()
        ))),
    }
}

fn set_devices(
    target: Target,
    spec_rules: &[LinuxDeviceCgroup],
    v2_fd: Option<&OwnedFd>,
) -> Result<()> {
    let rules = devices::rules(spec_rules);
    match (target, v2_fd) {
        (Target::V1(d), _) => v1::set_devices(d, &rules),
        (Target::V2(d), Some(fd)) => ebpf::apply(fd, d, &rules),
        (Target::V2(d), None) => Err(CgroupError::Invalid(format!(
            "{}: not open for the device filter",
            d.display()
        ))),
    }
}

fn set_rdma(dir: &Path, res: &LinuxResources) -> Result<()> {
    let mut devs: Vec<_> = res.rdma().iter().flatten().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        files::write(dir, "rdma.max", &line)?;
    }
    Ok(())
}
