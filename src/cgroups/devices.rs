//! The device access rules a container gets: the spec's rules, then runc's
//! default allow list, then an allow rule for every node in linux.devices.
//! v1 writes them to devices.allow/deny; v2 will compile them to eBPF.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One rule, in the kernel's v1 text form: "c 1:3 rwm".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl Rule {
    pub fn from_spec(d: &LinuxDeviceCgroup) -> Rule {
        let typ = match d.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::P) => 'p',
            Some(LinuxDeviceType::A) | None => 'a',
        };
        Rule {
            allow: d.allow(),
            typ,
            major: d.major(),
            minor: d.minor(),
            access: d.access().clone().unwrap_or_else(|| "rwm".to_string()),
        }
    }

    /// Text for devices.allow / devices.deny.
    pub fn v1_text(&self) -> String {
        if self.typ == 'a' {
            return "a".to_string();
        }
        let n = |x: Option<i64>| x.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

const fn allow(
    typ: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &'static str,
) -> (char, Option<i64>, Option<i64>, &'static str) {
    (typ, major, minor, access)
}

/// runc's default allow list (libcontainer/specconv AllowedDevices).
const DEFAULT_ALLOWED: &[(char, Option<i64>, Option<i64>, &str)] = &[
    allow('c', None, None, "m"),
    allow('b', None, None, "m"),
    allow('c', Some(1), Some(3), "rwm"),    // /dev/null
    allow('c', Some(1), Some(8), "rwm"),    // /dev/random
    allow('c', Some(1), Some(7), "rwm"),    // /dev/full
    allow('c', Some(5), Some(0), "rwm"),    // /dev/tty
    allow('c', Some(1), Some(5), "rwm"),    // /dev/zero
    allow('c', Some(1), Some(9), "rwm"),    // /dev/urandom
    allow('c', Some(136), None, "rwm"),     // /dev/pts/*
    allow('c', Some(5), Some(2), "rwm"),    // /dev/ptmx
    allow('c', Some(10), Some(200), "rwm"), // /dev/net/tun
];

/// The complete ordered rule list for a container.
pub fn rules(spec_rules: &[LinuxDeviceCgroup], extra: &[LinuxDeviceCgroup]) -> Vec<Rule> {
    let mut out: Vec<Rule> = spec_rules.iter().map(Rule::from_spec).collect();
    out.extend(
        DEFAULT_ALLOWED
            .iter()
            .map(|&(typ, major, minor, access)| Rule {
                allow: true,
                typ,
                major,
                minor,
                access: access.to_string(),
            }),
    );
    out.extend(extra.iter().map(Rule::from_spec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn deny_all_then_defaults() {
        let deny = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let r = rules(&[deny], &[]);
        assert_eq!(r[0].v1_text(), "a");
        assert!(!r[0].allow);
        assert_eq!(r[1].v1_text(), "c *:* m");
        assert!(r.iter().any(|x| x.v1_text() == "c 1:3 rwm" && x.allow));
        assert!(r.iter().any(|x| x.v1_text() == "c 136:* rwm"));
    }
}
