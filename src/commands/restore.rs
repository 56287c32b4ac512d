use anyhow::{Context, Result};

use crate::checkpoint::criu_binary;
use crate::cli::{CreateArgs, RestoreArgs, Rootless};
use crate::container::Store;
use crate::launch::{self, RestoreOpts};

pub fn run(
    store: &Store,
    a: &RestoreArgs,
    systemd: bool,
    rootless: Rootless,
    criu: Option<&str>,
) -> Result<i32> {
    let create = CreateArgs {
        bundle: if a.bundle.is_empty() {
            ".".into()
        } else {
            a.bundle.clone()
        },
        console_socket: a.console_socket.clone(),
        pidfd_socket: None,
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: false,
        preserve_fds: 0,
        id: a.id.clone(),
    };
    let criu = criu_binary(criu);
    // Foreground: signals are taken before the restored init exists.
    let sigfd = match a.detach {
        true => None,
        false => Some(crate::foreground::take_signals().context("setting up signal forwarding")?),
    };
    if !a.detach && !a.no_subreaper {
        crate::sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).context("becoming child subreaper")?;
    }
    let mut opts = super::create::opts(&create, systemd, rootless);
    opts.foreground = !a.detach;
    let restored = launch::restore(
        store,
        RestoreOpts {
            create: opts,
            criu: &criu,
            image_path: &a.image_path,
            work_path: &a.work_path,
            manage_cgroups_mode: &a.manage_cgroups_mode,
            empty_ns: &a.empty_ns,
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            file_locks: a.file_locks,
            auto_dedup: a.auto_dedup,
            lazy_pages: a.lazy_pages,
            lsm_profile: &a.lsm_profile,
            lsm_mount_context: &a.lsm_mount_context,
        },
    )?;
    let Some(sigfd) = sigfd else {
        return Ok(0);
    };
    let launch::Restored {
        pid,
        pidfd,
        lock,
        master,
    } = restored;
    drop(lock);
    let code = crate::foreground::wait(pid, &pidfd, sigfd, master);
    super::run::remove_ours(store, &a.id, pid)?;
    Ok(code)
}
