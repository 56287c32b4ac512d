use clap::Args;

// `checkpoint`: runc's flags, help texts and defaults.
#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// path for saving criu image files
    #[arg(long = "image-path", value_name = "PATH", default_value = "")]
    pub image_path: String,
    /// path for saving work files and logs
    #[arg(long = "work-path", value_name = "PATH", default_value = "")]
    pub work_path: String,
    /// path for previous criu image files in pre-dump
    #[arg(long = "parent-path", value_name = "PATH", default_value = "")]
    pub parent_path: String,
    /// leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// skip in-flight tcp connections
    #[arg(long = "tcp-skip-in-flight")]
    pub tcp_skip_in_flight: bool,
    /// allow one to link unlinked files back when possible
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long = "status-fd", value_name = "FD", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server", value_name = "ADDRESS:PORT", default_value = "")]
    pub page_server: String,
    /// handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// dump container's memory information only, leave the container running after this
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long = "manage-cgroups-mode", value_name = "MODE", default_value = "")]
    pub manage_cgroups_mode: String,
    /// create a namespace, but don't restore its properties
    #[arg(long = "empty-ns", value_name = "NAMESPACE")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// container id
    #[arg(value_name = "container-id")]
    pub id: String,
}

// `restore`: runc's flags, help texts and defaults (`-b`, `-d`).
#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<String>,
    /// path to criu image files for restoring
    #[arg(long = "image-path", value_name = "PATH", default_value = "")]
    pub image_path: String,
    /// path for saving work files and logs
    #[arg(long = "work-path", value_name = "PATH", default_value = "")]
    pub work_path: String,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long = "manage-cgroups-mode", value_name = "MODE", default_value = "")]
    pub manage_cgroups_mode: String,
    /// path to the root of the bundle directory
    #[arg(short, long, default_value = "")]
    pub bundle: String,
    /// detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<String>,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs. This should be used whenever the rootfs is on top of a ramdisk
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// create a namespace, but don't restore its properties
    #[arg(long = "empty-ns", value_name = "NAMESPACE")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME.
    #[arg(long = "lsm-profile", value_name = "TYPE:NAME", default_value = "")]
    pub lsm_profile: String,
    /// Specify an LSM mount context to be used during restore.
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT", default_value = "")]
    pub lsm_mount_context: String,
    /// container id
    #[arg(value_name = "container-id")]
    pub id: String,
}
