//! The systemd cgroup driver: the container's cgroup is a transient scope
//! systemd makes (`StartTransientUnit` over D-Bus, with the limits it
//! manages as properties, so a daemon-reload keeps them), and then every
//! limit is also written through cgroupfs into the scope, as the cgroupfs
//! driver would (systemd has no property for some of them). The other
//! verbs work on the scope's directories like on any other cgroup.
//!
//! The bus is talked to around the clone, never waited on before it: the
//! connection and its authentication go out before the init stage is
//! cloned, the scope is asked for as soon as the init has a pid, and the
//! answer is read while the init is setting up. The init waits for its
//! scope before anything that depends on its cgroup (a cgroup namespace,
//! a pid namespace's fork, the device nodes, the exec).

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::fs::FsManager;
use super::layout::Layout;
use super::systemd_props::{self, Prop};
use super::{CgroupError, CgroupPaths, Manager, OomWatch, Result, Stats};
use crate::dbus::{Bus, Value};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const OBJECT: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long hull waits for systemd in all, per command: a stopped or hung
/// bus fails the command instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// v1 hierarchies systemd makes a scope's directories in (and moves its
/// processes into); hull makes the others itself.
const SYSTEMD_V1: &[&str] = &["cpu", "cpuacct", "blkio", "memory", "devices", "pids"];

fn managed_by_systemd(controllers: &str) -> bool {
    controllers
        .split(',')
        .any(|c| c.starts_with("name=") || SYSTEMD_V1.contains(&c))
}

/// Whether systemd drives the controllers through cgroup v1 here (a v1 or
/// hybrid host: its v1 hierarchies hold the memory and cpu controllers).
fn legacy(layout: &Layout) -> bool {
    layout
        .v1
        .iter()
        .any(|h| h.controllers.iter().any(|c| c == "memory" || c == "cpu"))
}

/// The limit properties for `res`, in the forms of the hierarchy systemd
/// drives.
fn resource_props(res: &LinuxResources, legacy: bool) -> Result<Vec<Prop>> {
    if legacy {
        Ok(systemd_props::legacy_resources(res))
    } else {
        systemd_props::resources(res).map_err(CgroupError::Invalid)
    }
}

/// The scope's limit properties: on cgroup v1 also the device policy
/// (systemd opens the device controller up whenever it re-realizes a
/// delegated v1 scope without one).
fn limits(res: &LinuxResources, legacy: bool) -> Result<Vec<Prop>> {
    let mut props = resource_props(res, legacy)?;
    if !legacy {
        return Ok(props);
    }
    let rules = super::devices::rules(res.devices().as_deref().unwrap_or(&[]));
    let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    props.extend(
        systemd_props::legacy_devices(&rules, &proc_devices).map_err(CgroupError::Invalid)?,
    );
    Ok(props)
}

/// A connection to systemd's manager: the system bus, or, when the bus
/// daemon is down, systemd's own socket (root only; it needs no `Hello`
/// and sends every signal).
pub struct Systemd {
    bus: Bus,
    deadline: Instant,
}

impl Systemd {
    /// Connect and subscribe to job results, without waiting for answers:
    /// to the system's systemd, or with `user` to this user's own (rootless).
    pub fn connect(user: bool) -> Result<Systemd> {
        let deadline = Instant::now() + PATIENCE;
        let (bus, private) = if user {
            let dir = user_runtime_dir();
            let env = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
            let path = match env.as_deref().and_then(crate::dbus::socket_of) {
                Some(p) => PathBuf::from(p),
                None => dir.join("bus"),
            };
            let bus = Bus::connect(&path, true).map_err(|e| format!("{}: {e}", path.display()));
            (bus, dir.join("systemd/private"))
        } else {
            (
                Bus::system().map_err(|e| e.to_string()),
                PathBuf::from("/run/systemd/private"),
            )
        };
        let bus = match bus {
            Ok(mut bus) => {
                let rule = "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";
                let d = "org.freedesktop.DBus";
                bus.send(
                    d,
                    "/org/freedesktop/DBus",
                    d,
                    "AddMatch",
                    &[Value::Str(rule.into())],
                )
                .map_err(bus_error)?;
                bus
            }
            Err(e) => Bus::connect(&private, false).map_err(|e2| {
                let which = if user { "the user's systemd: session bus" } else { "systemd: system bus" };
                let hint = if user {
                    " (rootless: is the user's systemd running, with dbus-user-session, and XDG_RUNTIME_DIR set?)"
                } else {
                    ""
                };
                CgroupError::Invalid(format!(
                    "connecting to {which}: {e}; {}: {e2}{hint}",
                    private.display()
                ))
            })?,
        };
        Ok(Systemd { bus, deadline })
    }

    fn send(&mut self, member: &str, args: &[Value]) -> Result<u32> {
        self.bus
            .send(SYSTEMD, OBJECT, MANAGER, member, args)
            .map_err(bus_error)
    }

    fn reply(&mut self, serial: u32) -> crate::dbus::Result<Vec<Value>> {
        self.bus.wait_reply(serial, self.deadline)
    }

    /// Ask for the scope `unit` with `props` (an `a(sv)`); its job is
    /// waited for by `wait_started`.
    fn start(&mut self, unit: &str, props: Value) -> Result<u32> {
        let aux = Value::Array("(sa(sv))".into(), Vec::new());
        let args = [
            Value::Str(unit.into()),
            Value::Str("replace".into()),
            props,
            aux,
        ];
        self.send("StartTransientUnit", &args)
    }

    /// The job's end: "done", or why not.
    fn wait_job(&mut self, job: &str) -> Result<()> {
        let m = self
            .bus
            .wait_signal(
                |m| {
                    m.member.as_deref() == Some("JobRemoved")
                        && m.body.get(1).and_then(Value::as_str) == Some(job)
                },
                self.deadline,
            )
            .map_err(bus_error)?;
        match m.body.get(3).and_then(Value::as_str) {
            Some("done") => Ok(()),
            other => Err(CgroupError::Invalid(format!(
                "systemd job {job} ended {}",
                other.unwrap_or("without a result")
            ))),
        }
    }

    /// Stop the unit and wait for it to be gone; a unit systemd already
    /// collected (its processes are gone) is fine. A stop that did not end
    /// "done" may leave the unit failed: it is reset then (one more round
    /// trip, only then).
    pub fn stop(&mut self, unit: &str) -> Result<()> {
        let serial = self.send(
            "StopUnit",
            &[Value::Str(unit.into()), Value::Str("replace".into())],
        )?;
        match self.reply(serial) {
            Ok(body) => {
                let job = body
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                match self.wait_job(&job) {
                    Ok(()) => Ok(()),
                    // "canceled" when a concurrent stop superseded ours,
                    // "failed" and the like: whatever it left, reset.
                    Err(CgroupError::Invalid(_)) => self.reset_failed(unit),
                    Err(e) => Err(e),
                }
            }
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(bus_error(e)),
        }
    }

    /// Forget a failed unit, so its name can be used again.
    fn reset_failed(&mut self, unit: &str) -> Result<()> {
        let serial = self.send("ResetFailedUnit", &[Value::Str(unit.into())])?;
        match self.reply(serial) {
            Ok(_) => Ok(()),
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(bus_error(e)),
        }
    }

    /// Change a running unit's properties (runtime only, as runc).
    pub fn set_properties(&mut self, unit: &str, props: Vec<Prop>) -> Result<()> {
        let mut props = props;
        loop {
            if props.is_empty() {
                return Ok(());
            }
            let args = [
                Value::Str(unit.into()),
                Value::Bool(true),
                systemd_props::as_dbus(props.iter().map(|(n, v)| (*n, v))),
            ];
            let serial = self.send("SetUnitProperties", &args)?;
            match self.reply(serial) {
                Ok(_) => return Ok(()),
                Err(e) => drop_unknown(&mut props, e)?,
            }
        }
    }
}

/// A property this systemd does not know is left out (its limit is still
/// written through cgroupfs), as crun does; any other error stands.
fn drop_unknown(props: &mut Vec<Prop>, e: crate::dbus::Error) -> Result<()> {
    let unknown = match &e {
        crate::dbus::Error::Call { message, .. } => message
            .strip_prefix("Cannot set property ")
            .and_then(|m| m.strip_suffix(", or unknown property."))
            .map(str::to_string),
        _ => None,
    };
    match unknown {
        Some(name) if props.iter().any(|(n, _)| *n == name) => {
            crate::debug!("systemd does not know property {name}: written through cgroupfs only");
            props.retain(|(n, _)| *n != name);
            Ok(())
        }
        _ => Err(bus_error(e)),
    }
}

fn bus_error(e: crate::dbus::Error) -> CgroupError {
    CgroupError::Invalid(format!("systemd: {e}"))
}

/// The user's runtime directory, where its session bus and its systemd's
/// private socket are: `$XDG_RUNTIME_DIR`, else systemd's
/// `/run/user/UID` for our uid outside any user namespace (a caller's
/// cleanup may run hull without the variable).
fn user_runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let uid =
                crate::rootless::host_uid().unwrap_or_else(|| nix::unistd::geteuid().as_raw());
            PathBuf::from(format!("/run/user/{uid}"))
        }
    }
}

pub struct SystemdManager {
    fs: FsManager,
    unit: crate::plan::systemd_unit::Unit,
    /// The properties the scope starts with: every limit systemd manages.
    props: Vec<Prop>,
    /// Those the config's `org.systemd.property.*` annotations ask for
    /// (after the others: they win).
    asked: Vec<(String, Value)>,
    /// systemd drives the controllers through cgroup v1 here.
    legacy: bool,
    systemd: Option<Systemd>,
    /// The init's pid and the serial of the StartTransientUnit call.
    started: Option<(i32, u32)>,
    /// The scope is the user's own systemd's (rootless).
    user: bool,
}

impl SystemdManager {
    /// A manager for the scope `unit`, with `resources`' limits.
    pub fn new(
        layout: &Layout,
        unit: crate::plan::systemd_unit::Unit,
        resources: Option<&LinuxResources>,
        annotations: Option<&std::collections::HashMap<String, String>>,
        user: bool,
    ) -> Result<SystemdManager> {
        let asked = match annotations {
            Some(a) => systemd_props::from_annotations(a).map_err(CgroupError::Invalid)?,
            None => Vec::new(),
        };
        let mut fs = FsManager::new(layout, &unit.path)?;
        fs.set_systemd_unit(&unit.name, user);
        if user {
            fs.set_rootless();
        }
        let legacy = legacy(layout);
        let empty = LinuxResources::default();
        let props = limits(resources.unwrap_or(&empty), legacy)?;
        Ok(SystemdManager {
            fs,
            unit,
            props,
            asked,
            legacy,
            systemd: None,
            started: None,
            user,
        })
    }

    fn systemd(&mut self) -> Result<&mut Systemd> {
        if self.systemd.is_none() {
            self.systemd = Some(Systemd::connect(self.user)?);
        }
        self.systemd
            .as_mut()
            .ok_or_else(|| CgroupError::Invalid("no connection to systemd".into()))
    }

    /// Wait for the scope asked for in `add_task` and check that the init
    /// is where the scope is. A unit of the same name may be a stopped
    /// one systemd has not collected yet (a container of that name just
    /// deleted), or a failed one: it is reset and asked for again, for
    /// about a second, before it is taken for someone else's.
    fn wait_started(&mut self) -> Result<()> {
        let Some((pid, serial)) = self.started else {
            return Err(CgroupError::Invalid("the scope was never asked for".into()));
        };
        let name = self.unit.name.clone();
        let mut serial = serial;
        let mut pause = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        let job = loop {
            let reply = self.systemd()?.reply(serial);
            match reply {
                Ok(body) => {
                    break body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                }
                Err(e) if e.name() == Some("org.freedesktop.systemd1.UnitExists") => {
                    if waited >= Duration::from_secs(1) {
                        // Someone else's: off the record, so teardown
                        // leaves its processes, directories and unit alone.
                        self.fs.forget();
                        return Err(CgroupError::Invalid(format!(
                            "systemd unit {name} already exists (another container's?)"
                        )));
                    }
                    self.systemd()?.reset_failed(&name)?;
                    std::thread::sleep(pause);
                    waited += pause;
                    pause = (pause * 2).min(Duration::from_millis(200));
                    serial = self.ask(pid)?;
                }
                Err(e) => {
                    drop_unknown(&mut self.props, e)?;
                    serial = self.ask(pid)?;
                }
            }
        };
        self.systemd()?.wait_job(&job)?;
        self.check_placed(pid)
    }

    fn ask(&mut self, pid: i32) -> Result<u32> {
        let id = u32::try_from(pid).map_err(|_| CgroupError::Invalid(format!("pid {pid}")))?;
        let base = systemd_props::base(
            &format!("hull container {}", self.unit.name),
            &self.unit.slice,
            id,
            self.legacy,
        );
        let name = self.unit.name.clone();
        let props = systemd_props::as_dbus(
            base.iter()
                .chain(&self.props)
                .map(|(n, v)| (*n, v))
                .chain(self.asked.iter().map(|(n, v)| (n.as_str(), v))),
        );
        let serial = self.systemd()?.start(&name, props)?;
        self.started = Some((pid, serial));
        Ok(serial)
    }

    /// The init is in the scope's cgroup (crun's check): systemd may have
    /// put the scope elsewhere than the path planned and recorded.
    fn check_placed(&self, pid: i32) -> Result<()> {
        let text = std::fs::read(format!("/proc/{pid}/cgroup"))
            .map_err(|e| CgroupError::io("read", Path::new("/proc/<init>/cgroup"), e))?;
        let want = self.unit.path.as_os_str().as_encoded_bytes();
        let placed = text.split(|&b| b == b'\n').any(|line| {
            let path = line.splitn(3, |&b| b == b':').nth(2).unwrap_or(b"");
            path.ends_with(want)
        });
        if placed {
            return Ok(());
        }
        Err(CgroupError::Invalid(format!(
            "systemd placed the container in {:?}, not {}",
            String::from_utf8_lossy(&text).trim(),
            self.unit.path.display()
        )))
    }
}

impl Manager for SystemdManager {
    fn plan(&mut self) {
        self.fs.plan();
        // systemd makes the scope's directories (and the slices above) in
        // the hierarchies it manages; hull makes only the others.
        let mine: Vec<PathBuf> = self
            .fs
            .paths()
            .v1
            .iter()
            .filter(|(c, _)| !managed_by_systemd(c))
            .map(|(_, d)| d.clone())
            .collect();
        self.fs
            .keep_planned(|d| mine.iter().any(|m| m.starts_with(d)));
    }

    fn create_for_clone(&mut self) -> Result<()> {
        self.fs.check_existing_leaves_once()?;
        // Out before the clone: connection, authentication, the match.
        self.systemd()?;
        Ok(())
    }

    fn create(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        self.wait_started()?;
        match resources {
            Some(r) => self.fs.create(Some(&as_systemd_writes(r))),
            None => self.fs.create(None),
        }
    }

    fn clone_into(&self) -> Option<RawFd> {
        // The scope exists only once it holds a process.
        None
    }

    fn self_join_files(&self) -> Result<Vec<(OwnedFd, PathBuf)>> {
        self.fs.self_join_files()
    }

    fn add_task(&mut self, pid: i32) -> Result<()> {
        self.ask(pid).map(|_| ())
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        update(&self.unit.name, &self.fs, resources)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.fs.pids()
    }

    fn is_frozen(&self) -> bool {
        self.fs.is_frozen()
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        self.fs.freeze(frozen)
    }

    fn kill_all(&self) -> Result<()> {
        self.fs.kill_all()
    }

    fn stats(&self) -> Result<Stats> {
        self.fs.stats()
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        self.fs.oom_watch()
    }

    fn oom_kills(&self) -> u64 {
        self.fs.oom_kills()
    }

    fn destroy(&self) -> Result<()> {
        let made = self.fs.destroy();
        stop_scope(self.fs.paths()).and(made)
    }

    fn paths(&self) -> &CgroupPaths {
        self.fs.paths()
    }
}

/// The limits as systemd writes them into the scope's files: the CPU
/// quota rounded as its property is (`quota_per_sec`), so that what hull
/// writes is what a daemon-reload rewrites.
fn as_systemd_writes(r: &LinuxResources) -> LinuxResources {
    let mut r = r.clone();
    if let Some(mut c) = r.cpu().clone()
        && let Some(q) = c.quota().filter(|&q| q > 0)
    {
        let period = c.period().filter(|&p| p > 0).unwrap_or(100_000);
        let per_sec = systemd_props::quota_per_sec(q, period);
        if let Some(quota) = per_sec
            .checked_mul(period)
            .and_then(|q| i64::try_from(q / 1_000_000).ok())
        {
            c.set_quota(Some(quota));
            r.set_cpu(Some(c));
        }
    }
    r
}

/// `update` of a container in the systemd scope `unit` (its cgroups
/// `fs`): the new limits as the unit's properties first, then through
/// cgroupfs as systemd would write them.
pub fn update(unit: &str, fs: &FsManager, resources: &LinuxResources) -> Result<()> {
    let props = resource_props(resources, legacy(&Layout::detect()?))?;
    if !props.is_empty() {
        Systemd::connect(fs.paths().systemd_user)?.set_properties(unit, props)?;
    }
    fs.update(&as_systemd_writes(resources))
}

/// Ask the systemd whose scope `paths` records to move `pid` into it: a
/// rootless exec, whose caller may not move a process there itself (that
/// needs write access to the cgroup both have in common). The user's
/// systemd asks the system's to when it may not either, as for the init.
pub fn attach_to_scope(paths: &CgroupPaths, pid: i32) -> Result<()> {
    let Some(unit) = &paths.systemd_unit else {
        return Err(CgroupError::Invalid("no systemd scope to join".into()));
    };
    let id = u32::try_from(pid).map_err(|_| CgroupError::Invalid(format!("pid {pid}")))?;
    let mut sd = Systemd::connect(paths.systemd_user)?;
    let args = [
        Value::Str(unit.clone()),
        Value::Str(String::new()),
        Value::Array("u".into(), vec![Value::U32(id)]),
    ];
    let serial = sd.send("AttachProcessesToUnit", &args)?;
    sd.reply(serial).map_err(bus_error)?;
    Ok(())
}

/// Stop the systemd scope `paths` records, once its processes are gone.
/// Emptied, systemd collects a scope by itself: without any of its
/// directories it is gone already, or was never made, and the bus is not
/// asked.
pub fn stop_scope(paths: &CgroupPaths) -> Result<()> {
    let Some(unit) = &paths.systemd_unit else {
        return Ok(());
    };
    let exists = paths
        .v2
        .iter()
        .chain(paths.v1.iter().map(|(_, d)| d))
        .any(|d| d.exists());
    if !exists {
        return Ok(());
    }
    Systemd::connect(paths.systemd_user)?.stop(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_makes_the_directories_of_the_hierarchies_it_manages() {
        assert!(managed_by_systemd("cpu,cpuacct"));
        assert!(managed_by_systemd("name=systemd"));
        assert!(managed_by_systemd("memory"));
        assert!(!managed_by_systemd("cpuset"));
        assert!(!managed_by_systemd("freezer"));
        assert!(!managed_by_systemd("net_cls,net_prio"));
        assert!(!managed_by_systemd("hugetlb"));
    }

    #[test]
    fn unknown_properties_are_dropped_and_others_fail() {
        let mut props: Vec<Prop> = vec![
            ("MemoryMax", Value::U64(1)),
            (
                "AllowedCPUs",
                Value::Array("y".into(), vec![Value::Byte(1)]),
            ),
        ];
        let unknown = crate::dbus::Error::Call {
            name: "org.freedesktop.DBus.Error.PropertyReadOnly".into(),
            message: "Cannot set property AllowedCPUs, or unknown property.".into(),
        };
        drop_unknown(&mut props, unknown).unwrap();
        assert_eq!(props.len(), 1);
        let again = crate::dbus::Error::Call {
            name: "org.freedesktop.DBus.Error.PropertyReadOnly".into(),
            message: "Cannot set property AllowedCPUs, or unknown property.".into(),
        };
        // Not among the properties sent: the error stands.
        assert!(drop_unknown(&mut props, again).is_err());
        let denied = crate::dbus::Error::Call {
            name: "org.freedesktop.DBus.Error.AccessDenied".into(),
            message: "no".into(),
        };
        assert!(drop_unknown(&mut props, denied).is_err());
    }
}
