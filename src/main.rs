//! hull: an OCI container runtime. Parse the command line, set up logging,
//! dispatch, and turn the outcome into an exit status. Nothing else.

#![cfg_attr(not(test), no_main)]

mod capabilities;
mod cgroups;
mod channel;
mod cli;
mod commands;
mod console;
mod container;
mod error;
mod features;
mod foreground;
mod hooks;
mod host;
mod init;
mod intelrdt;
mod launch;
mod logging;
mod mountinfo;
mod namespaces;
mod netdev;
mod netlink;
mod plan;
mod process;
mod procfs;
mod rootfs;
mod seccomp;
mod spec;
mod stdout;
mod sys;
mod sysctl;
mod version;

use clap::Parser;

/// The process entry glibc calls. Rust's own start-up (`lang_start`) is
/// left out on purpose: before `main` it reads /proc/self/maps and maps a
/// signal stack, only to print a nicer message on stack overflow, ~16
/// syscalls at each of a container's execs of hull. What of it hull needs,
/// `sys::start_up` does; `std::env::args` works without it (glibc hands
/// the arguments to std's initialiser), and `std::process::exit`, hull's
/// only way out, flushes stdout itself.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    sys::start_up();
    hull()
}

#[cfg_attr(test, allow(dead_code))]
fn hull() -> ! {
    // The init stage is hull exec'd from a sealed copy with the channel fd
    // in the environment; it never reaches the command line parser.
    if let Some(fd) = init::stage_fd() {
        init::main(fd);
    }
    let cli = match cli::Cli::try_parse() {
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
