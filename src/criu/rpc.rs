//! CRIU's RPC messages (`images/rpc.proto` of CRIU 3.17): the request and
//! options hull sends to `criu swrk`, the response it reads back. Field
//! numbers are CRIU's; options left at their default are not sent, so
//! CRIU applies its own defaults.

use super::wire::{Malformed, Reader, Writer};

/// `criu_req_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqType {
    Empty = 0,
    Dump = 1,
    Restore = 2,
    Check = 3,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
    Version = 10,
}

impl ReqType {
    fn from_wire(v: i32) -> Option<ReqType> {
        Some(match v {
            0 => ReqType::Empty,
            1 => ReqType::Dump,
            2 => ReqType::Restore,
            3 => ReqType::Check,
            4 => ReqType::PreDump,
            6 => ReqType::Notify,
            9 => ReqType::FeatureCheck,
            10 => ReqType::Version,
            _ => return None,
        })
    }

    /// The name runc prints ("criu failed: type RESTORE errno 0").
    pub fn name(self) -> &'static str {
        match self {
            ReqType::Empty => "EMPTY",
            ReqType::Dump => "DUMP",
            ReqType::Restore => "RESTORE",
            ReqType::Check => "CHECK",
            ReqType::PreDump => "PRE_DUMP",
            ReqType::Notify => "NOTIFY",
            ReqType::FeatureCheck => "FEATURE_CHECK",
            ReqType::Version => "VERSION",
        }
    }
}

/// `criu_cg_mode`, as `--manage-cgroups-mode` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgMode {
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
    Default = 6,
}

impl CgMode {
    /// runc's `--manage-cgroups-mode` values ("" is CRIU's default).
    pub fn parse(s: &str) -> Result<CgMode, String> {
        Ok(match s {
            "" => CgMode::Default,
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => return Err("invalid manage-cgroups-mode value".into()),
        })
    }
}

/// `criu_features`: what a FEATURE_CHECK asks for and answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub mem_track: Option<bool>,
    pub lazy_pages: Option<bool>,
}

impl Features {
    fn write(&self, w: &mut Writer) {
        if let Some(v) = self.mem_track {
            w.bool(1, v);
        }
        if let Some(v) = self.lazy_pages {
            w.bool(2, v);
        }
    }

    fn read(buf: &[u8]) -> Result<Features, Malformed> {
        let mut f = Features::default();
        for field in Reader::new(buf) {
            match field? {
                (1, v) => f.mem_track = Some(v.bool()?),
                (2, v) => f.lazy_pages = Some(v.bool()?),
                _ => {}
            }
        }
        Ok(f)
    }
}

/// `criu_opts`: the subset runc sets (see docs/design/checkpoint-restore.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opts {
    pub images_dir_fd: i32,
    pub pid: Option<i32>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub log_level: Option<i32>,
    pub log_file: Option<String>,
    /// `ps`: the page server's address and port.
    pub page_server: Option<(String, i32)>,
    pub notify_scripts: bool,
    pub root: Option<String>,
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    pub work_dir_fd: Option<i32>,
    /// `ext_mnt`: (key, value) pairs.
    pub ext_mnt: Vec<(String, String)>,
    pub manage_cgroups: bool,
    /// `cg_root`: (controller, path); no controller means every one.
    pub cg_root: Vec<(Option<String>, String)>,
    pub rst_sibling: bool,
    /// `inherit_fd`: (key, fd in criu).
    pub inherit_fd: Vec<(String, i32)>,
    pub manage_cgroups_mode: Option<CgMode>,
    pub external: Vec<String>,
    pub empty_ns: Option<u32>,
    /// `join_ns`: (namespace, file).
    pub join_ns: Vec<(String, String)>,
    pub freeze_cgroup: Option<String>,
    pub tcp_skip_in_flight: bool,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub orphan_pts_master: bool,
    pub config_file: Option<String>,
    pub lsm_profile: Option<String>,
    pub link_remap: bool,
    pub lsm_mount_context: Option<String>,
}

impl Opts {
    fn write(&self, w: &mut Writer) {
        w.int32(1, self.images_dir_fd);
        let flags = [
            (3, self.leave_running),
            (4, self.ext_unix_sk),
            (5, self.tcp_established),
            (6, self.evasive_devices),
            (7, self.shell_job),
            (8, self.file_locks),
            (12, self.notify_scripts),
            (15, self.track_mem),
            (16, self.auto_dedup),
            (18, self.link_remap),
            (24, self.manage_cgroups),
            (26, self.rst_sibling),
            (46, self.tcp_skip_in_flight),
            (48, self.lazy_pages),
            (50, self.orphan_pts_master),
        ];
        let ints = [
            (2, self.pid),
            (9, self.log_level),
            (17, self.work_dir_fd),
            (49, self.status_fd),
        ];
        for (field, v) in ints {
            if let Some(v) = v {
                w.int32(field, v);
            }
        }
        for (field, v) in flags {
            if v {
                w.bool(field, true);
            }
        }
        let strings = [
            (10, &self.log_file),
            (13, &self.root),
            (14, &self.parent_img),
            (44, &self.freeze_cgroup),
            (51, &self.config_file),
            (53, &self.lsm_profile),
            (63, &self.lsm_mount_context),
        ];
        for (field, v) in strings {
            if let Some(s) = v {
                w.bytes(field, s.as_bytes());
            }
        }
        self.write_lists(w);
    }

    fn write_lists(&self, w: &mut Writer) {
        if let Some((addr, port)) = &self.page_server {
            w.message(11, |m| {
                m.bytes(1, addr.as_bytes());
                m.int32(2, *port);
            });
        }
        for (k, v) in &self.ext_mnt {
            w.message(23, |m| {
                m.bytes(1, k.as_bytes());
                m.bytes(2, v.as_bytes());
            });
        }
        for (ctrl, path) in &self.cg_root {
            w.message(25, |m| {
                if let Some(c) = ctrl {
                    m.bytes(1, c.as_bytes());
                }
                m.bytes(2, path.as_bytes());
            });
        }
        for (k, fd) in &self.inherit_fd {
            w.message(27, |m| {
                m.bytes(1, k.as_bytes());
                m.int32(2, *fd);
            });
        }
        if let Some(mode) = self.manage_cgroups_mode {
            w.uint(34, mode as u64);
        }
        for e in &self.external {
            w.bytes(37, e.as_bytes());
        }
        if let Some(ns) = self.empty_ns {
            w.uint(38, u64::from(ns));
        }
        for (ns, file) in &self.join_ns {
            w.message(39, |m| {
                m.bytes(1, ns.as_bytes());
                m.bytes(2, file.as_bytes());
            });
        }
    }
}

/// `criu_req`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub typ: ReqType,
    pub opts: Option<Opts>,
    pub notify_success: bool,
    pub keep_open: bool,
    pub features: Option<Features>,
}

impl Request {
    pub fn new(typ: ReqType) -> Request {
        Request {
            typ,
            opts: None,
            notify_success: false,
            keep_open: false,
            features: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.uint(1, self.typ as u64);
        if let Some(o) = &self.opts {
            w.message(2, |m| o.write(m));
        }
        if self.notify_success {
            w.bool(3, true);
        }
        if self.keep_open {
            w.bool(4, true);
        }
        if let Some(f) = &self.features {
            w.message(5, |m| f.write(m));
        }
        w.into_bytes()
    }
}

/// `criu_version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    pub major: i32,
    pub minor: i32,
    pub sublevel: i32,
    pub gitid: Option<String>,
}

impl Version {
    /// runc's number: major*10000 + minor*100 + sublevel, a build from git
    /// counting as the next minor (it has more than its release).
    pub fn number(&self) -> i64 {
        let (major, minor) = (i64::from(self.major), i64::from(self.minor));
        match self.gitid {
            Some(_) => major * 10000 + (minor + 1) * 100,
            None => major * 10000 + minor * 100 + i64::from(self.sublevel),
        }
    }

    fn read(buf: &[u8]) -> Result<Version, Malformed> {
        let mut v = Version::default();
        for field in Reader::new(buf) {
            match field? {
                (1, x) => v.major = x.int32()?,
                (2, x) => v.minor = x.int32()?,
                (3, x) => v.gitid = Some(x.string()?),
                (4, x) => v.sublevel = x.int32()?,
                _ => {}
            }
        }
        Ok(v)
    }
}

/// `criu_resp`, the fields hull reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub typ: ReqType,
    pub success: bool,
    /// `restore.pid`: the restored init.
    pub restored_pid: Option<i32>,
    /// `notify`: the script (event) name and its pid.
    pub notify: Option<(String, i32)>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    pub features: Option<Features>,
    pub version: Option<Version>,
}

impl Response {
    pub fn decode(buf: &[u8]) -> Result<Response, Malformed> {
        let mut typ = None;
        let mut r = Response {
            typ: ReqType::Empty,
            success: false,
            restored_pid: None,
            notify: None,
            cr_errno: None,
            cr_errmsg: None,
            features: None,
            version: None,
        };
        for field in Reader::new(buf) {
            match field? {
                (1, v) => typ = ReqType::from_wire(v.int32()?),
                (2, v) => r.success = v.bool()?,
                (4, v) => r.restored_pid = first_int(v.bytes()?, 1)?,
                (5, v) => r.notify = Some(notify(v.bytes()?)?),
                (7, v) => r.cr_errno = Some(v.int32()?),
                (8, v) => r.features = Some(Features::read(v.bytes()?)?),
                (9, v) => r.cr_errmsg = Some(v.string()?),
                (10, v) => r.version = Some(Version::read(v.bytes()?)?),
                _ => {}
            }
        }
        r.typ = typ.ok_or(Malformed("response without a known type"))?;
        Ok(r)
    }
}

fn first_int(buf: &[u8], number: u32) -> Result<Option<i32>, Malformed> {
    for field in Reader::new(buf) {
        let (n, v) = field?;
        if n == number {
            return Ok(Some(v.int32()?));
        }
    }
    Ok(None)
}

fn notify(buf: &[u8]) -> Result<(String, i32), Malformed> {
    let mut out = (String::new(), 0);
    for field in Reader::new(buf) {
        match field? {
            (1, v) => out.0 = v.string()?,
            (2, v) => out.1 = v.int32()?,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::wire::Value;
    use super::*;

    #[test]
    fn a_version_request_is_two_bytes() {
        assert_eq!(Request::new(ReqType::Version).encode(), [0x08, 0x0a]);
    }

    #[test]
    fn dump_options_are_encoded_with_criu_field_numbers() {
        let mut req = Request::new(ReqType::Dump);
        req.opts = Some(Opts {
            images_dir_fd: 5,
            pid: Some(42),
            leave_running: true,
            log_level: Some(4),
            log_file: Some("dump.log".into()),
            ext_mnt: vec![("/data".into(), "/data".into())],
            manage_cgroups_mode: Some(CgMode::Ignore),
            ..Opts::default()
        });
        let b = req.encode();
        let top: Vec<_> = Reader::new(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(top[0], (1, Value::Varint(1)));
        let opts: Vec<_> = Reader::new(top[1].1.bytes().unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
        let numbers: Vec<u32> = opts.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 9, 3, 10, 23, 34]);
        assert_eq!(opts[4].1.string().unwrap(), "dump.log");
        assert_eq!(opts[6], (34, Value::Varint(0)));
        let mnt: Vec<_> = Reader::new(opts[5].1.bytes().unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(mnt[0].1.string().unwrap(), "/data");
        assert_eq!(mnt[1].1.string().unwrap(), "/data");
    }

    #[test]
    fn responses_are_read_and_unknown_fields_skipped() {
        let mut w = Writer::default();
        w.uint(1, 10);
        w.bool(2, true);
        w.message(10, |v| {
            v.int32(1, 3);
            v.int32(2, 17);
            v.int32(4, 1);
        });
        w.bytes(99, b"future");
        let r = Response::decode(&w.into_bytes()).unwrap();
        assert_eq!(r.typ, ReqType::Version);
        assert!(r.success);
        assert_eq!(r.version.as_ref().map(Version::number), Some(31701));

        let mut w = Writer::default();
        w.uint(1, 6);
        w.bool(2, true);
        w.message(5, |n| {
            n.bytes(1, b"post-restore");
            n.int32(2, 1234);
        });
        let r = Response::decode(&w.into_bytes()).unwrap();
        assert_eq!(r.notify, Some(("post-restore".into(), 1234)));

        let mut w = Writer::default();
        w.uint(1, 2);
        w.bool(2, false);
        w.int32(7, 2);
        w.bytes(9, b"Can't open images dir");
        let r = Response::decode(&w.into_bytes()).unwrap();
        assert_eq!(
            (r.typ.name(), r.success, r.cr_errno),
            ("RESTORE", false, Some(2))
        );
        assert_eq!(r.cr_errmsg.as_deref(), Some("Can't open images dir"));
    }

    #[test]
    fn a_git_build_counts_as_the_next_minor() {
        let v = Version {
            major: 3,
            minor: 17,
            sublevel: 1,
            gitid: Some("v3.17-12-gabc".into()),
        };
        assert_eq!(v.number(), 31800);
    }

    #[test]
    fn bad_responses_are_errors() {
        assert!(Response::decode(&[]).is_err(), "no type");
        assert!(Response::decode(&[0x08, 0x63]).is_err(), "unknown type");
        assert!(
            Response::decode(&[0x08, 0x0a, 0x52, 0x05]).is_err(),
            "truncated"
        );
        assert_eq!(
            CgMode::parse("bogus"),
            Err("invalid manage-cgroups-mode value".into())
        );
        assert_eq!(CgMode::parse(""), Ok(CgMode::Default));
    }
}
