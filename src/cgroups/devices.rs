//! The device access rules a container gets, runc's way: everything
//! denied, then the spec's rules, then runc's default allow list. v1
//! writes them to devices.allow/deny; v2 compiles them to eBPF.
//!
//! A node listed in linux.devices is only created: access to it is what
//! these rules say, and nothing more (Docker's `--device X:Y:r` sends a
//! node and a read-only rule; an implied `rwm` for every node once let a
//! container write a device its rules denied, or mknod a read-only one).

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
        // -1 is runc's wildcard, as an absent number is.
        let number = |n: Option<i64>| n.filter(|&n| n != -1);
        Rule {
            allow: d.allow(),
            typ,
            major: number(d.major()),
            minor: number(d.minor()),
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

/// The complete ordered rule list for a container, applied on top of
/// "deny everything" (runc's whitelist emulator): a config without any
/// rule gets the default list and nothing more.
pub fn rules(spec_rules: &[LinuxDeviceCgroup]) -> Vec<Rule> {
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
    out
}

/// A v1 device pattern: type, major, minor (None is "*").
type Key = (char, Option<i64>, Option<i64>);

/// The v1 devices controller as the kernel keeps it: a default (allow all
/// or deny all) and exceptions to it, each with its access letters. Rules
/// are applied to it as the kernel does, so hull can write only the change
/// from what a cgroup has to what it must have (runc's emulator): a rule
/// that is already in effect is never written, and a cgroup that has
/// children (where the kernel refuses "a") keeps its default when it is
/// already the right one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1State {
    pub allow_all: bool,
    pub exceptions: std::collections::BTreeMap<Key, std::collections::BTreeSet<char>>,
}

fn letters(access: &str) -> std::collections::BTreeSet<char> {
    access
        .chars()
        .filter(|c| matches!(c, 'r' | 'w' | 'm'))
        .collect()
}

impl V1State {
    /// From devices.list: "a *:* rwm" alone is allow-all (its deny
    /// exceptions, if any, are not shown); otherwise the lines are the
    /// exceptions to deny-all.
    pub fn parse(list: &str) -> V1State {
        let lines: Vec<&str> = list.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines == ["a *:* rwm"] {
            return V1State {
                allow_all: true,
                exceptions: Default::default(),
            };
        }
        let mut st = V1State::default();
        for l in lines {
            let mut f = l.split_whitespace();
            let (Some(t), Some(mm), Some(acc)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let n = |x: &str| x.parse::<i64>().ok();
            let (ma, mi) = mm.split_once(':').unwrap_or(("*", "*"));
            let typ = t.chars().next().unwrap_or('a');
            st.exceptions
                .entry((typ, n(ma), n(mi)))
                .or_default()
                .extend(letters(acc));
        }
        st
    }

    /// The state after `rule`, as the kernel computes it.
    pub fn apply(&mut self, rule: &Rule) {
        if rule.typ == 'a' {
            self.allow_all = rule.allow;
            self.exceptions.clear();
            return;
        }
        let key = (rule.typ, rule.major, rule.minor);
        let acc = letters(&rule.access);
        if rule.allow == self.allow_all {
            // Agrees with the default: takes the letters off the exception.
            if let Some(e) = self.exceptions.get_mut(&key) {
                e.retain(|c| !acc.contains(c));
                if e.is_empty() {
                    self.exceptions.remove(&key);
                }
            }
        } else if !acc.is_empty() {
            self.exceptions.entry(key).or_default().extend(acc);
        }
    }

    /// The rules that take a cgroup from `self` to `to`, fewest first.
    pub fn transition(&self, to: &V1State) -> Vec<Rule> {
        let mut out = Vec::new();
        let rule = |allow: bool, k: &Key, acc: &std::collections::BTreeSet<char>| Rule {
            allow,
            typ: k.0,
            major: k.1,
            minor: k.2,
            access: acc.iter().collect(),
        };
        let mut base = self.clone();
        if base.allow_all != to.allow_all {
            out.push(Rule {
                allow: to.allow_all,
                typ: 'a',
                major: None,
                minor: None,
                access: "rwm".into(),
            });
            base = V1State {
                allow_all: to.allow_all,
                exceptions: Default::default(),
            };
        }
        // New exceptions first: while moving, nothing allowed is denied.
        for (k, want) in &to.exceptions {
            let have = base.exceptions.get(k).cloned().unwrap_or_default();
            let add: std::collections::BTreeSet<char> = want.difference(&have).copied().collect();
            if !add.is_empty() {
                out.push(rule(!to.allow_all, k, &add));
            }
        }
        for (k, have) in &base.exceptions {
            let want = to.exceptions.get(k).cloned().unwrap_or_default();
            let drop: std::collections::BTreeSet<char> = have.difference(&want).copied().collect();
            if !drop.is_empty() {
                out.push(rule(to.allow_all, k, &drop));
            }
        }
        out
    }
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
        let r = rules(&[deny]);
        assert_eq!(r[0].v1_text(), "a");
        assert!(!r[0].allow);
        assert_eq!(r[1].v1_text(), "c *:* m");
        assert!(r.iter().any(|x| x.v1_text() == "c 1:3 rwm" && x.allow));
        assert!(r.iter().any(|x| x.v1_text() == "c 136:* rwm"));
    }

    fn r(allow: bool, typ: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn v1_transition_writes_only_the_change() {
        let target = |rules: &[Rule]| {
            let mut st = V1State::parse("a *:* rwm");
            for x in rules {
                st.apply(x);
            }
            st
        };
        // Deny all, then a redundant deny: nothing but "a" from a fresh
        // (allow-all) cgroup, nothing at all when it is already deny-all.
        let want = target(&[
            r(false, 'a', None, None, "rwm"),
            r(false, 'c', Some(1), Some(11), "rwa"),
        ]);
        let fresh = V1State::parse("a *:* rwm");
        let t = fresh.transition(&want);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].v1_text(), "a");
        assert!(V1State::parse("").transition(&want).is_empty());
        // Allowed devices are added; one no longer wanted is denied last.
        let want = target(&[
            r(false, 'a', None, None, "rwm"),
            r(true, 'c', Some(1), Some(3), "rwm"),
            r(true, 'c', Some(1), Some(5), "rwm"),
            r(false, 'c', Some(1), Some(5), "w"),
        ]);
        let have = V1State::parse("c 1:3 rwm\nc 10:200 rwm\n");
        let t: Vec<String> = have
            .transition(&want)
            .iter()
            .map(|x| format!("{} {}", if x.allow { "allow" } else { "deny" }, x.v1_text()))
            .collect();
        assert_eq!(t, ["allow c 1:5 mr", "deny c 10:200 mrw"]);
    }
}
