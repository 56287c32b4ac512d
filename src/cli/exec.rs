use clap::Args;

// `exec`: flags first; everything after the container id is the command
// (runc stops parsing flags at the first argument).
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<String>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the exec process
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<String>,
    /// current working directory in the container
    #[arg(long, value_name = "PATH")]
    pub cwd: Option<String>,
    /// set environment variables
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// additional gids
    #[arg(
        short = 'g',
        long = "additional-gids",
        value_name = "GID",
        allow_negative_numbers = true
    )]
    pub additional_gids: Vec<i64>,
    /// path to the process.json
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<String>,
    /// detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<String>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long, value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// <container-id> [--] <command> [args...]
    #[arg(
        value_name = "container-id",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 1..
    )]
    pub rest: Vec<String>,
}

impl ExecArgs {
    pub fn id(&self) -> &str {
        &self.rest[0]
    }

    /// The command after the id (a `--` in between is dropped).
    pub fn command(&self) -> &[String] {
        let cmd = &self.rest[1..];
        match cmd.first() {
            Some(dd) if dd == "--" => &cmd[1..],
            _ => cmd,
        }
    }
}
