//! hull-gen DIR: man pages (man8/hull.8, man8/hull-VERB.8 for every verb)
//! and shell completions (bash, zsh, fish) generated from hull's own clap
//! definitions, so they cannot drift from the command line. Built only
//! with the `gen` feature (`make man`, `make install`, `make deb`).

#[allow(dead_code)]
#[path = "../src/cli/mod.rs"]
mod cli;

use std::path::Path;

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "build/gen".into());
    let mut cmd = cli::Cli::command();
    cmd.build();
    let man = out.join("man8");
    std::fs::create_dir_all(&man)?;
    write_man(&cmd, &man, "hull")?;
    for sub in cmd.get_subcommands() {
        let name = format!("hull-{}", sub.get_name());
        // A one-shot tool: the names live until it exits anyway.
        let sub = sub.clone().name(&*Box::leak(name.clone().into_boxed_str()));
        write_man(&sub, &man, &name)?;
    }
    let comp = out.join("completions");
    std::fs::create_dir_all(&comp)?;
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "hull"),
        (Shell::Zsh, "_hull"),
        (Shell::Fish, "hull.fish"),
    ] {
        let mut f = std::fs::File::create(comp.join(file))?;
        clap_complete::generate(shell, &mut cmd.clone(), "hull", &mut f);
    }
    Ok(())
}

fn write_man(cmd: &clap::Command, dir: &Path, name: &str) -> std::io::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.8")), buf)
}
