//! The runc-compatible command line: clap structs only, no logic.
//! Flags, defaults and verb names follow runc so that containerd, CRI-O,
//! conmon and podman can call hull exactly as they call runc.

pub mod argv;
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod list;
mod ps;
mod simple;
mod spec;
mod update;

use clap::{Parser, Subcommand, ValueEnum};

pub use checkpoint::{CheckpointArgs, RestoreArgs};
pub use create::{CreateArgs, RunArgs};
pub use delete::DeleteArgs;
pub use events::EventsArgs;
pub use exec::ExecArgs;
pub use kill::KillArgs;
pub use list::{ListArgs, ListFormat};
pub use ps::PsArgs;
pub use simple::IdArgs;
pub use spec::SpecArgs;
pub use update::UpdateArgs;

#[derive(Parser, Debug)]
#[command(
    name = "hull",
    about = "hull: an OCI container runtime",
    disable_help_subcommand = true,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Cli {
    /// print the version
    #[arg(short = 'v', long = "version", global = true)]
    pub version: bool,
    /// enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// set the log file to write hull logs to (default is stderr)
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<String>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/hull, or $XDG_RUNTIME_DIR/hull when rootless]
    #[arg(long, global = true)]
    pub root: Option<String>,
    /// path to the criu binary used for checkpoint and restore
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<String>,
    /// enable systemd cgroup support, expects cgroupsPath to be of form "slice:prefix:name"
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, value_enum, default_value_t = Rootless::Auto)]
    pub rootless: Rootless,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    True,
    False,
    Auto,
}

/// Each verb's flags are built only when that verb is parsed (or its help
/// printed): the whole tree cost every hull exec ~25 page faults of heap.
/// The flag structs therefore carry no doc comment (`//`): built late, it
/// would replace the verb's description below.
#[derive(Subcommand, Debug)]
#[command(defer = true, args_override_self = true)]
pub enum Command {
    /// create a container
    Create(CreateArgs),
    /// executes the user defined process in a created container
    Start(IdArgs),
    /// create and run a container
    Run(RunArgs),
    /// output the state of a container
    State(IdArgs),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(KillArgs),
    /// delete any resources held by the container often used with detached container
    Delete(DeleteArgs),
    /// lists containers started by hull with the given root
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// create a new specification file
    Spec(SpecArgs),
    /// show the enabled features
    Features,
    /// execute new process inside the container
    Exec(Box<ExecArgs>),
    /// ps displays the processes running inside a container
    Ps(PsArgs),
    /// pause suspends all processes inside the container
    Pause(IdArgs),
    /// resumes all processes that have been previously paused
    Resume(IdArgs),
    /// update container resource constraints
    Update(Box<UpdateArgs>),
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(EventsArgs),
    /// checkpoint a running container
    Checkpoint(Box<CheckpointArgs>),
    /// restore a container from a previous checkpoint
    Restore(Box<RestoreArgs>),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    fn descriptions(cmd: &clap::Command) -> Vec<(String, Option<String>)> {
        cmd.get_subcommands()
            .map(|c| (c.get_name().into(), c.get_about().map(|a| a.to_string())))
            .collect()
    }

    /// Building a verb's flags late leaves the description its help, the
    /// man pages and the completions show: the one written here, as runc's.
    #[test]
    fn late_built_verbs_keep_their_descriptions() {
        let before = descriptions(&super::Cli::command());
        let mut cmd = super::Cli::command();
        cmd.build();
        let after = descriptions(&cmd);
        assert_eq!(before, after);
        let state = after.iter().find(|(n, _)| n == "state");
        assert_eq!(
            state.and_then(|(_, a)| a.as_deref()),
            Some("output the state of a container")
        );
        assert!(after.iter().all(|(_, a)| a.is_some()));
    }

    /// runc's flag parser takes a flag given twice (podman passes
    /// `--leave-running` twice to checkpoint): the last one counts, and
    /// a repeatable flag still collects every value.
    #[test]
    fn a_flag_given_twice_is_taken_as_runc_takes_it() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "hull",
            "--debug",
            "--debug",
            "checkpoint",
            "--leave-running",
            "--leave-running",
            "--image-path",
            "/a",
            "--image-path",
            "/b",
            "c1",
        ])
        .unwrap();
        let Some(super::Command::Checkpoint(a)) = cli.command else {
            panic!("not checkpoint")
        };
        assert!(cli.debug && a.leave_running);
        assert_eq!(a.image_path, "/b");
        let cli =
            super::Cli::try_parse_from(["hull", "exec", "-e", "A=1", "-e", "B=2", "c1", "true"])
                .unwrap();
        let Some(super::Command::Exec(a)) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(a.env, ["A=1", "B=2"]);
    }
}
