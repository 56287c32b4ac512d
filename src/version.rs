//! What hull says of itself: `hull --version` in runc's shape (docker info
//! and podman info parse its first line), and the commit for `features`.

/// The commit hull was built from (build.rs).
pub const COMMIT: &str = env!("HULL_COMMIT");

pub fn text() -> String {
    let seccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "hull version {}\ncommit: {COMMIT}\nspec: {}\nlibseccomp: {seccomp}\n",
        env!("CARGO_PKG_VERSION"),
        crate::spec::OCI_VERSION
    )
}
