//! Freezing a container: v1's freezer.state or v2's cgroup.freeze. Both are
//! asynchronous in the kernel (a task in an uninterruptible sleep freezes
//! late), so `pause` returns only once the kernel reports the cgroup frozen.

use std::path::Path;
use std::time::{Duration, Instant};

use super::files::{read, write};
use super::{CgroupError, Result};

const TIMEOUT: Duration = Duration::from_secs(10);

fn backoff(delay: &mut Duration) {
    std::thread::sleep(*delay);
    *delay = (*delay * 2).min(Duration::from_millis(10));
}

/// v1: write FROZEN/THAWED and wait for freezer.state to agree. A state
/// stuck in FREEZING is written again now and then (a task that forked
/// meanwhile can hold up a freeze).
pub fn set_v1(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + TIMEOUT;
    let mut delay = Duration::from_micros(100);
    let mut writes = 0;
    loop {
        if writes == 0 || (frozen && writes < 100) {
            write(dir, "freezer.state", want)?;
        }
        writes += 1;
        if read(dir, "freezer.state")?.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            if frozen {
                let _ = write(dir, "freezer.state", "THAWED");
            }
            return Err(CgroupError::Invalid(format!(
                "unable to {} the container: {} did not reach {want}",
                if frozen { "freeze" } else { "thaw" },
                dir.display()
            )));
        }
        backoff(&mut delay);
    }
}

/// v2: write cgroup.freeze and wait for "frozen" in cgroup.events.
pub fn set_v2(dir: &Path, frozen: bool) -> Result<()> {
    let (value, want) = if frozen {
        ("1", "frozen 1")
    } else {
        ("0", "frozen 0")
    };
    write(dir, "cgroup.freeze", value)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut delay = Duration::from_micros(100);
    loop {
        if read(dir, "cgroup.events")?.lines().any(|l| l == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            if frozen {
                let _ = write(dir, "cgroup.freeze", "0");
            }
            return Err(CgroupError::Invalid(format!(
                "unable to {} the container: {} did not report {want:?}",
                if frozen { "freeze" } else { "thaw" },
                dir.display()
            )));
        }
        backoff(&mut delay);
    }
}
