//! hull as a library: every module of the runtime, and `run`, what the
//! binary does after its own start-up. The binary (main.rs) is only the
//! process entry; the library exists so that the fuzz targets (fuzz/) can
//! drive the parsers of config.json, state.json, the channel and /proc
//! directly.

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod console;
pub mod container;
pub mod criu;
pub mod dbus;
pub mod error;
pub mod features;
pub mod foreground;
pub mod fuzzing;
pub mod hooks;
pub mod host;
pub mod init;
pub mod intelrdt;
pub mod launch;
pub mod logging;
pub mod mountinfo;
pub mod namespaces;
pub mod netdev;
pub mod netlink;
pub mod plan;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod spec;
pub mod stdout;
pub mod sys;
pub mod sysctl;
pub mod version;

use clap::Parser;

/// Everything after the process entry: the init stage when hull was exec'd
/// as one, else the command line, logging, the verb, and the exit status.
pub fn run() -> ! {
    // The init stage is hull exec'd from a sealed copy with the channel fd
    // in the environment; it never reaches the command line parser.
    if let Some(fd) = init::stage_fd() {
        init::main(fd);
    }
    let args = match cli::argv::normalize(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("error: {msg}");
            std::process::exit(1);
        }
    };
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if cli.version {
        let _ = stdout::print(&version::text());
        std::process::exit(0);
    }
    if cli.command.is_none() {
        // As runc: no verb, the help, and success.
        let _ = <cli::Cli as clap::CommandFactory>::command().print_help();
        std::process::exit(0);
    }
    // fds 3.. that the caller passes into the container must be open before
    // hull opens anything of its own, or hull's own fds would take their
    // numbers and leak into the container.
    if let Err(e) = commands::check_passed_fds(&cli) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let json = cli.log_format == cli::LogFormat::Json;
    if let Err(e) = logging::init(cli.log.as_deref(), json, cli.debug) {
        eprintln!("hull: opening log file: {e}");
        std::process::exit(1);
    }
    match commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            logging::log(logging::Level::Error, &msg);
            if logging::logs_to_file() {
                eprintln!("{msg}");
            }
            std::process::exit(1);
        }
    }
}
