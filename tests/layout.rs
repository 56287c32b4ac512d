//! The shape of the source tree, checked: data flows one way between
//! modules (no import circle; a module may use its own children), and no
//! function grows past what one reader can hold. Reads `src/` as text, so
//! it needs no root and runs everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function may be, in lines, signature and closing brace
/// included.
const MAX_FN_LINES: usize = 80;

/// Module path ("" for the crate root, "a::b") of every source file.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                let mut sub = prefix.to_vec();
                sub.push(name);
                walk(&p, &sub, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                // lib.rs is the crate root; main.rs, the process entry,
                // is a leaf that only calls into it.
                let mut m = prefix.to_vec();
                if name != "mod" && name != "lib" {
                    m.push(name);
                }
                out.insert(m.join("::"), p);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The text of a file without its test module, comments and string
/// contents (so a doc comment naming `crate::x` is not an import).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let body = match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                '\n' => out.push('\n'),
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            // A char literal holding a quote or brace would confuse the
            // scanners below: drop simple literals.
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.len() >= 2 && rest.as_bytes()[1] == b'\'' {
                    chars.next();
                    chars.next();
                    out.push_str("' '");
                } else if rest.starts_with('\\') && rest.as_bytes().get(2) == Some(&b'\'') {
                    chars.next();
                    chars.next();
                    chars.next();
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path the code names: `use` trees expanded, and inline
/// `crate::…`, `super::…`, `self::…` paths.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // use statements
    let mut rest = code;
    while let Some(i) = find_word(rest, "use") {
        let after = &rest[i + 3..];
        let Some(end) = after.find(';') else { break };
        expand_use(after[..end].trim(), &mut Vec::new(), &mut out);
        rest = &after[end..];
    }
    // inline paths
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (is_ident(bytes[at - 1] as char) || bytes[at - 1] == b':') {
                continue;
            }
            let seg: String = code[at..]
                .chars()
                .take_while(|c| is_ident(*c) || *c == ':')
                .collect();
            out.push(
                seg.split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            );
        }
    }
    out
}

fn find_word(s: &str, w: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find(w) {
        let at = from + i;
        let before = at == 0 || !is_ident(b[at - 1] as char);
        let after = b.get(at + w.len()).is_some_and(|c| c.is_ascii_whitespace());
        if before && after {
            return Some(at);
        }
        from = at + w.len();
    }
    None
}

/// Expand a use tree (`a::{b, c::{d, e}}`) into full paths.
fn expand_use(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = &tree[..open];
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let n = prefix.len();
        prefix.extend(
            head.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        for part in split_top(inner) {
            expand_use(part, prefix, out);
        }
        prefix.truncate(n);
    } else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        let mut full = prefix.clone();
        full.extend(
            path.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self" && *s != "*")
                .map(String::from),
        );
        out.push(full);
    }
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn parent(m: &str) -> String {
    m.rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_string())
}

fn join(base: &str, seg: &str) -> String {
    if base.is_empty() {
        seg.to_string()
    } else {
        format!("{base}::{seg}")
    }
}

/// The module a path lands in: the longest prefix that is a module.
fn resolve(from: &str, path: &[String], mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut base = match path.first()?.as_str() {
        "crate" => String::new(),
        "super" => parent(from),
        "self" => from.to_string(),
        first => {
            // A child module named without `self::` (2018 paths).
            let child = join(from, first);
            if mods.contains_key(&child) {
                from.to_string()
            } else {
                return None; // an external crate or a local item
            }
        }
    };
    let mut rest = &path[usize::from(matches!(path[0].as_str(), "crate" | "super" | "self"))..];
    while rest.first().is_some_and(|s| s == "super") {
        base = parent(&base);
        rest = &rest[1..];
    }
    for seg in rest {
        let next = join(&base, seg);
        if mods.contains_key(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

fn is_within(m: &str, ancestor: &str) -> bool {
    ancestor.is_empty() || m == ancestor || m.starts_with(&format!("{ancestor}::"))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, path) in &mods {
        let edges = g.entry(m.clone()).or_default();
        for p in paths_in(&code_of(path)) {
            let Some(to) = resolve(m, &p, &mods) else {
                continue;
            };
            // Macros live at the root; a module may use its own children.
            if to.is_empty() || is_within(&to, m) {
                continue;
            }
            edges.insert(to);
        }
    }
    g
}

/// Strongly connected groups of more than one module (Tarjan).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                t.out.push(group);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The source tree, when this test binary runs where it is (not in the
/// cgroup v2 VM, which gets the binaries only).
fn have_sources() -> bool {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/main.rs")
        .exists();
    if !here {
        eprintln!("skipped: the source tree is not here (a VM or another machine)");
    }
    here
}

#[test]
fn modules_import_one_way() {
    if !have_sources() {
        return;
    }
    let g = graph();
    let found = circles(&g);
    let mut report = String::new();
    for c in &found {
        report.push_str(&format!("circle: {}\n", c.join(", ")));
        for m in c {
            let inside: Vec<&String> = g[m].iter().filter(|t| c.contains(t)).collect();
            report.push_str(&format!("  {m} -> {inside:?}\n"));
        }
    }
    assert!(
        found.is_empty(),
        "import circles between modules:\n{report}"
    );
}

/// (file, function, length) of every function longer than the limit.
fn long_functions() -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    for path in modules().values() {
        let code = code_of(path);
        let lines: Vec<&str> = code.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let t = lines[i].trim_start();
            let sig = [
                "fn ",
                "pub fn ",
                "pub(super) fn ",
                "pub(crate) fn ",
                "unsafe fn ",
            ]
            .iter()
            .find_map(|p| t.strip_prefix(p));
            let Some(sig) = sig else {
                i += 1;
                continue;
            };
            let name: String = sig.chars().take_while(|c| is_ident(*c)).collect();
            // Find the body's opening brace, then its match.
            let (mut depth, mut opened, mut j) = (0i32, false, i);
            'scan: while j < lines.len() {
                for c in lines[j].chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        ';' if !opened => break 'scan, // a declaration
                        _ => {}
                    }
                    if opened && depth == 0 {
                        break 'scan;
                    }
                }
                j += 1;
            }
            let len = j + 1 - i;
            if opened && len > MAX_FN_LINES {
                let file = path
                    .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap_or(path)
                    .display()
                    .to_string();
                out.push((file, name, len));
            }
            i += 1;
        }
    }
    out
}

#[test]
fn functions_stay_short() {
    if !have_sources() {
        return;
    }
    let long = long_functions();
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines: {long:#?}"
    );
}

#[test]
fn the_checker_sees_circles_and_children() {
    let mods: BTreeMap<String, PathBuf> = ["", "a", "a::b", "c"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(resolve("a", &p("b::X"), &mods).as_deref(), Some("a::b"));
    assert_eq!(
        resolve("a", &p("self::b::X"), &mods).as_deref(),
        Some("a::b")
    );
    assert_eq!(resolve("a::b", &p("super::Y"), &mods).as_deref(), Some("a"));
    assert_eq!(
        resolve("c", &p("crate::a::b::f"), &mods).as_deref(),
        Some("a::b")
    );
    assert_eq!(resolve("c", &p("nix::unistd"), &mods), None);
    let mut out = Vec::new();
    expand_use(
        "crate::a::{self, b::{X, Y as Z}, W}",
        &mut Vec::new(),
        &mut out,
    );
    assert_eq!(out.len(), 4);
    assert_eq!(out[1], p("crate::a::b::X"));
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["c"]),
        ("c", vec!["a::b"]),
        ("a::b", vec![]),
        ("", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert!(circles(&g).is_empty());
    let mut g2 = g.clone();
    g2.get_mut("a::b").unwrap().insert("c".into());
    assert_eq!(
        circles(&g2),
        vec![vec!["a::b".to_string(), "c".to_string()]]
    );
}
