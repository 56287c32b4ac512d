//! runc-compatible logging. Lines go to `--log` (or stderr) either as logrus
//! text (`time="…" level=error msg="…"`) or as JSON
//! (`{"level":"error","msg":"…","time":"…"}`), which containerd parses and
//! shows to users. hull is single-threaded, so a global is enough.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Error,
    Warn,
    Debug,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Debug => "debug",
        }
    }
}

struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up the global logger. `path` None means stderr.
pub fn init(path: Option<&str>, json: bool, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) if !p.is_empty() && p != "/dev/stderr" => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(p)?,
        ),
        _ => None,
    };
    let _ = LOGGER.set(Logger { file, json, debug });
    Ok(())
}

/// Whether --debug is on (checked before formatting a debug line).
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

/// True when log lines go to a file, so the final error must also be printed
/// to stderr for a human (as runc does).
pub fn logs_to_file() -> bool {
    LOGGER.get().is_some_and(|l| l.file.is_some())
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        eprintln!("{}", format_line(level, msg, false));
        return;
    };
    if level == Level::Debug && !logger.debug {
        return;
    }
    let line = format_line(level, msg, logger.json);
    match &logger.file {
        Some(f) => {
            let mut f: &File = f;
            let _ = f.write_all(line.as_bytes());
            let _ = f.write_all(b"\n");
        }
        None => eprintln!("{line}"),
    }
}

fn format_line(level: Level, msg: &str, json: bool) -> String {
    let time = rfc3339_now();
    if json {
        // Field order as logrus writes it: level, msg, time.
        format!(
            "{{\"level\":\"{}\",\"msg\":{},\"time\":\"{}\"}}",
            level.as_str(),
            serde_json::Value::String(msg.to_string()),
            time
        )
    } else {
        format!(
            "time=\"{time}\" level={} msg={}",
            level.as_str(),
            quote(msg)
        )
    }
}

/// logrus text quoting: Go's %q of the message.
fn quote(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len() + 2);
    out.push('"');
    for c in msg.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Current UTC time as RFC 3339 with second precision ("2006-01-02T15:04:05Z").
pub fn rfc3339_nanos_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, Some(now.subsec_nanos()))
}

pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, None)
}

/// Format seconds (and optional nanoseconds) since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: i64, nanos: Option<u32>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let frac = match nanos {
        Some(n) if n > 0 => {
            let s = format!(".{n:09}");
            s.trim_end_matches('0').to_string()
        }
        _ => String::new(),
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days → civil date algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::logging::log($crate::logging::Level::Warn, &format!($($t)*)) };
}

#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::logging::debug_enabled() {
            $crate::logging::log($crate::logging::Level::Debug, &format!($($t)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000, None), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339(951_782_400, Some(5_000_000)),
            "2000-02-29T00:00:00.005Z"
        );
    }

    #[test]
    fn json_line_matches_logrus_shape() {
        let line = format_line(Level::Error, "a \"b\"", true);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "a \"b\"");
        assert!(line.starts_with("{\"level\":\"error\",\"msg\":"));
    }

    #[test]
    fn text_line_quotes_like_go() {
        let line = format_line(Level::Warn, "x\ny", false);
        assert!(line.ends_with("level=warning msg=\"x\\ny\""), "{line}");
    }
}
