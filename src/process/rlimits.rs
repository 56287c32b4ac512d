//! process.rlimits, set with setrlimit before the user changes (raising a
//! hard limit needs privileges we are about to drop).

use nix::errno::Errno;
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{Result, StageError};

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn apply(process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or(&[]) {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } < 0 {
            let e = Errno::last();
            return Err(StageError {
                msg: format!(
                    "setting rlimit type {}: {}",
                    serde_json::to_string(&r.typ())
                        .unwrap_or_default()
                        .trim_matches('"'),
                    e.desc()
                ),
                errno: Some(e),
            });
        }
    }
    Ok(())
}
