//! What the verbs print, on stdout. A reader that went away (`hull list |
//! head -1`) ends hull by SIGPIPE, silently, as Go's runtime ends runc,
//! not with Rust's "failed printing to stdout" abort.

use std::io::Write;

/// Write `text` to stdout, flushed.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::sys::die_of_sigpipe(),
        r => r,
    }
}
