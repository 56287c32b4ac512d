use std::io::Write;

use anyhow::{Context, Result, bail};

use crate::cli::SpecArgs;

pub fn run(a: &SpecArgs) -> Result<()> {
    let path = std::path::Path::new(&a.bundle).join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let spec = crate::spec::default_spec(a.rootless);
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&spec, &mut ser)?;
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&out)?;
    Ok(())
}
