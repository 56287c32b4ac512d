use anyhow::Result;

use crate::cli::{CreateArgs, Rootless};
use crate::container::Store;
use crate::launch::{self, CreateOpts};

pub fn opts(a: &CreateArgs, systemd: bool, rootless: Rootless) -> CreateOpts<'_> {
    CreateOpts {
        id: &a.id,
        bundle: &a.bundle,
        console_socket: a.console_socket.as_deref(),
        pidfd_socket: a.pidfd_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        foreground: false,
        systemd,
        rootless: crate::rootless::detect(match rootless {
            Rootless::True => Some(true),
            Rootless::False => Some(false),
            Rootless::Auto => None,
        }),
    }
}

pub fn run(store: &Store, a: &CreateArgs, systemd: bool, rootless: Rootless) -> Result<()> {
    launch::create(store, opts(a, systemd, rootless))?;
    Ok(())
}
