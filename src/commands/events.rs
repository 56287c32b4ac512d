use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde::Serialize;

use crate::cgroups::{Manager, Stats};
use crate::cli::EventsArgs;
use crate::container::{Status, Store};

/// One line of output, runc's types.Event.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

fn emit(e: &Event) -> Result<()> {
    crate::stdout::print(&format!("{}\n", serde_json::to_string(e)?))?;
    Ok(())
}

/// `events --stats`: one stats event. Otherwise a stats event every
/// interval and an `oom` event for each OOM kill, until the container's
/// cgroup empties. One poll(2) serves both, so hull stays single-threaded.
pub fn run(store: &Store, a: &EventsArgs) -> Result<()> {
    let interval = parse_duration(&a.interval)?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let c = store.load(&a.id)?;
    if matches!(c.status, Status::Stopped | Status::Creating) {
        bail!("container with id {} is not running", a.id);
    }
    let cg = c.cgroup();
    let id = a.id.as_str();
    if a.stats {
        let s = cg.stats()?;
        return emit(&Event {
            typ: "stats",
            id,
            data: Some(&s),
        });
    }
    let mut oom = cg.oom_watch()?;
    let mut next = Instant::now() + interval;
    loop {
        let left = next.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let timeout = nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX);
        let ready = match oom.fd() {
            Some(fd) => {
                let mut pfd = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut pfd, timeout) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(anyhow!("waiting for events: {e}")),
                }
            }
            None => {
                std::thread::sleep(left);
                false
            }
        };
        if ready {
            let news = oom.read()?;
            for _ in 0..news.ooms {
                emit(&Event {
                    typ: "oom",
                    id,
                    data: None,
                })?;
            }
            if news.ended {
                return Ok(());
            }
        }
        if Instant::now() >= next {
            next += interval;
            match cg.stats() {
                Ok(s) => emit(&Event {
                    typ: "stats",
                    id,
                    data: Some(&s),
                })?,
                Err(e) => crate::warn!("collecting stats: {e}"),
            }
            if c.pids().map(|p| p.is_empty()).unwrap_or(true) {
                return Ok(());
            }
        }
    }
}

/// Go's time.ParseDuration: "5s", "1.5m", "1h2m3s", "300ms", "10us".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow!("invalid value {s:?} for flag -interval: parse error");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    // Go's durations are i64 nanoseconds: anything longer is an error
    // there too, and here it would not fit a Duration's arithmetic.
    if !total.is_finite() || total > i64::MAX as f64 / 1e9 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
