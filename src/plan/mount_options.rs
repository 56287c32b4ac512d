//! The one table of mount options: it parses config.json mount options for
//! the applier, and `features` lists its keys, so the two cannot disagree.

use libc::c_ulong;

/// What a mount option does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Set (true) or clear (false) a mount(2) flag.
    Flag(bool, c_ulong),
    /// A propagation type, applied after the mount exists.
    Propagation(c_ulong),
    /// A recursive attribute through mount_setattr(AT_RECURSIVE): set or clear.
    Recursive(bool, u64),
    /// Copy the directory's contents into the new tmpfs.
    CopyUp,
    /// Id-map the bind mount (recursively if true) with the mount's
    /// uidMappings/gidMappings, or the container's user namespace.
    IdMap(bool),
}

use Effect::*;

const MS_NOSYMFOLLOW: c_ulong = 256;

pub const TABLE: &[(&str, Effect)] = &[
    ("acl", Flag(true, libc::MS_POSIXACL)),
    ("async", Flag(false, libc::MS_SYNCHRONOUS)),
    ("atime", Flag(false, libc::MS_NOATIME)),
    ("bind", Flag(true, libc::MS_BIND)),
    ("defaults", Flag(false, 0)),
    ("dev", Flag(false, libc::MS_NODEV)),
    ("diratime", Flag(false, libc::MS_NODIRATIME)),
    ("dirsync", Flag(true, libc::MS_DIRSYNC)),
    ("exec", Flag(false, libc::MS_NOEXEC)),
    ("iversion", Flag(true, libc::MS_I_VERSION)),
    ("lazytime", Flag(true, libc::MS_LAZYTIME)),
    ("loud", Flag(false, libc::MS_SILENT)),
    ("mand", Flag(true, libc::MS_MANDLOCK)),
    ("noacl", Flag(false, libc::MS_POSIXACL)),
    ("noatime", Flag(true, libc::MS_NOATIME)),
    ("nodev", Flag(true, libc::MS_NODEV)),
    ("nodiratime", Flag(true, libc::MS_NODIRATIME)),
    ("noexec", Flag(true, libc::MS_NOEXEC)),
    ("noiversion", Flag(false, libc::MS_I_VERSION)),
    ("nolazytime", Flag(false, libc::MS_LAZYTIME)),
    ("nomand", Flag(false, libc::MS_MANDLOCK)),
    ("norelatime", Flag(false, libc::MS_RELATIME)),
    ("nostrictatime", Flag(false, libc::MS_STRICTATIME)),
    ("nosuid", Flag(true, libc::MS_NOSUID)),
    ("nosymfollow", Flag(true, MS_NOSYMFOLLOW)),
    ("rbind", Flag(true, libc::MS_BIND | libc::MS_REC)),
    ("relatime", Flag(true, libc::MS_RELATIME)),
    ("remount", Flag(true, libc::MS_REMOUNT)),
    ("ro", Flag(true, libc::MS_RDONLY)),
    ("rw", Flag(false, libc::MS_RDONLY)),
    ("silent", Flag(true, libc::MS_SILENT)),
    ("strictatime", Flag(true, libc::MS_STRICTATIME)),
    ("suid", Flag(false, libc::MS_NOSUID)),
    ("symfollow", Flag(false, MS_NOSYMFOLLOW)),
    ("sync", Flag(true, libc::MS_SYNCHRONOUS)),
    ("private", Propagation(libc::MS_PRIVATE)),
    ("rprivate", Propagation(libc::MS_PRIVATE | libc::MS_REC)),
    ("shared", Propagation(libc::MS_SHARED)),
    ("rshared", Propagation(libc::MS_SHARED | libc::MS_REC)),
    ("slave", Propagation(libc::MS_SLAVE)),
    ("rslave", Propagation(libc::MS_SLAVE | libc::MS_REC)),
    ("unbindable", Propagation(libc::MS_UNBINDABLE)),
    (
        "runbindable",
        Propagation(libc::MS_UNBINDABLE | libc::MS_REC),
    ),
    ("ratime", Recursive(false, libc::MOUNT_ATTR_NOATIME)),
    ("rdev", Recursive(false, libc::MOUNT_ATTR_NODEV)),
    ("rdiratime", Recursive(false, libc::MOUNT_ATTR_NODIRATIME)),
    ("rexec", Recursive(false, libc::MOUNT_ATTR_NOEXEC)),
    ("rnoatime", Recursive(true, libc::MOUNT_ATTR_NOATIME)),
    ("rnodev", Recursive(true, libc::MOUNT_ATTR_NODEV)),
    ("rnodiratime", Recursive(true, libc::MOUNT_ATTR_NODIRATIME)),
    ("rnoexec", Recursive(true, libc::MOUNT_ATTR_NOEXEC)),
    ("rnorelatime", Recursive(false, libc::MOUNT_ATTR_RELATIME)),
    (
        "rnostrictatime",
        Recursive(false, libc::MOUNT_ATTR_STRICTATIME),
    ),
    ("rnosuid", Recursive(true, libc::MOUNT_ATTR_NOSUID)),
    (
        "rnosymfollow",
        Recursive(true, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ),
    ("rrelatime", Recursive(true, libc::MOUNT_ATTR_RELATIME)),
    ("rro", Recursive(true, libc::MOUNT_ATTR_RDONLY)),
    ("rrw", Recursive(false, libc::MOUNT_ATTR_RDONLY)),
    (
        "rstrictatime",
        Recursive(true, libc::MOUNT_ATTR_STRICTATIME),
    ),
    ("rsuid", Recursive(false, libc::MOUNT_ATTR_NOSUID)),
    ("rsymfollow", Recursive(false, libc::MOUNT_ATTR_NOSYMFOLLOW)),
    ("tmpcopyup", CopyUp),
    ("idmap", IdMap(false)),
    ("ridmap", IdMap(true)),
];

/// Options of one mount, sorted into what applies them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub flags: c_ulong,
    /// Flags asked to be off ("rw", "suid", "dev", "exec", "atime"...): a
    /// bind inherits its source's, so these are cleared on it (runc 1.3).
    pub cleared: c_ulong,
    pub propagation: Vec<c_ulong>,
    pub rec_set: u64,
    pub rec_clear: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)).
    pub idmap: Option<bool>,
    pub copy_up: bool,
    /// Filesystem-specific options, passed as mount(2) data.
    pub data: Vec<String>,
}

pub fn parse(options: &[String]) -> Parsed {
    let mut p = Parsed::default();
    for o in options {
        match TABLE.iter().find(|(n, _)| n == o).map(|(_, e)| *e) {
            Some(Flag(true, f)) => {
                p.flags |= f;
                p.cleared &= !f;
            }
            Some(Flag(false, f)) => {
                p.flags &= !f;
                p.cleared |= f;
            }
            Some(Propagation(f)) => p.propagation.push(f),
            // MOUNT_ATTR_RELATIME is 0: "relatime" means resetting the
            // atime field.
            Some(Recursive(true, 0)) => p.rec_clear |= libc::MOUNT_ATTR__ATIME,
            Some(Recursive(true, a)) => {
                p.rec_set |= a;
                p.rec_clear &= !a;
            }
            Some(Recursive(false, a)) => {
                p.rec_clear |= a;
                p.rec_set &= !a;
            }
            Some(CopyUp) => p.copy_up = true,
            Some(IdMap(r)) => p.idmap = Some(r),
            None => p.data.push(o.clone()),
        }
    }
    p
}

/// Mount attributes (mount_setattr) equivalent to the per-mount flags.
pub fn attrs_of(flags: c_ulong) -> u64 {
    let mut a = 0;
    for (ms, at) in [
        (libc::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (libc::MS_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (libc::MS_STRICTATIME, libc::MOUNT_ATTR_STRICTATIME),
        (libc::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
        (MS_NOSYMFOLLOW, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if flags & ms != 0 {
            a |= at;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sorts_options() {
        let p = parse(&s(&[
            "nosuid",
            "rbind",
            "ro",
            "rslave",
            "rnoexec",
            "mode=755",
            "size=65536k",
            "tmpcopyup",
        ]));
        assert_eq!(
            p.flags,
            libc::MS_NOSUID | libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY
        );
        assert_eq!(p.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert_eq!(p.rec_set, libc::MOUNT_ATTR_NOEXEC);
        assert_eq!(p.data, s(&["mode=755", "size=65536k"]));
        assert!(p.copy_up && p.idmap.is_none());
        assert_eq!(parse(&s(&["rbind", "ridmap"])).idmap, Some(true));
    }

    #[test]
    fn later_options_win() {
        let p = parse(&s(&["ro", "rw"]));
        assert_eq!(p.flags & libc::MS_RDONLY, 0);
        assert_eq!(p.cleared & libc::MS_RDONLY, libc::MS_RDONLY);
        let p = parse(&s(&["rw", "nosuid", "suid", "ro"]));
        assert_eq!(p.flags & libc::MS_RDONLY, libc::MS_RDONLY);
        assert_eq!(p.cleared, libc::MS_NOSUID);
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut names: Vec<_> = TABLE.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }
}
