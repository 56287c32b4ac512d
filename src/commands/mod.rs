//! One module per verb: glue from parsed arguments to the container layer.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod restore;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::container::Store;

/// Run the verb; Ok(code) is the process exit status.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let root = cli.root.unwrap_or_else(crate::rootless::default_root);
    let store = Store::new(&root);
    let Some(command) = cli.command else {
        return Ok(0);
    };
    // The driver is a property of a container, taken from its record by
    // the later verbs (containerd passes the flag to every verb): only the
    // verbs that make a container read the flag.
    let systemd = cli.systemd_cgroup;
    let rootless = cli.rootless;
    match command {
        Command::Create(a) => create::run(&store, &a, systemd, rootless).map(|_| 0),
        Command::Start(a) => start::run(&store, &a.id).map(|_| 0),
        Command::Run(a) => run::run(&store, &a, systemd, rootless),
        Command::State(a) => state::run(&store, &a.id).map(|_| 0),
        Command::Kill(a) => kill::run(&store, &a).map(|_| 0),
        Command::Delete(a) => delete::run(&store, &a).map(|_| 0),
        Command::List(a) => list::run(&store, &a).map(|_| 0),
        Command::Spec(a) => spec::run(&a).map(|_| 0),
        Command::Features => features::run().map(|_| 0),
        Command::Exec(a) => exec::run(&store, &a),
        Command::Ps(a) => ps::run(&store, &a).map(|_| 0),
        Command::Pause(a) => pause::run(&store, &a.id).map(|_| 0),
        Command::Resume(a) => resume::run(&store, &a.id).map(|_| 0),
        Command::Update(a) => update::run(&store, &a).map(|_| 0),
        Command::Events(a) => events::run(&store, &a).map(|_| 0),
        Command::Checkpoint(a) => checkpoint::run(&store, &a, cli.criu.as_deref()).map(|_| 0),
        Command::Restore(a) => restore::run(&store, &a, systemd, rootless, cli.criu.as_deref()),
    }
}

/// `--preserve-fds N` (and LISTEN_FDS) name fds 3..3+N of the caller: each
/// must be open when hull starts.
pub fn check_passed_fds(cli: &Cli) -> Result<()> {
    match &cli.command {
        Some(Command::Create(a)) => crate::launch::check_passed_fds(a.preserve_fds),
        Some(Command::Run(a)) => crate::launch::check_passed_fds(a.create.preserve_fds),
        Some(Command::Exec(a)) => crate::launch::check_passed_fds(a.preserve_fds),
        _ => Ok(()),
    }
}
