//! Linux cpu and memory-node lists ("0-3,7"), as cpuset, the scheduler's
//! affinity, memory policies and systemd's AllowedCPUs take them.

/// Parse a Linux cpu/node list ("0-3,7").
pub fn parse(s: &str) -> std::result::Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a
            .trim()
            .parse()
            .map_err(|_| format!("invalid list {s:?}"))?;
        let b: usize = b
            .trim()
            .parse()
            .map_err(|_| format!("invalid list {s:?}"))?;
        if a > b || b > 65535 {
            return Err(format!("invalid range {part:?} in {s:?}"));
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err(format!("empty list {s:?}"));
    }
    Ok(out)
}
