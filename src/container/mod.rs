//! A container as hull remembers it: its directory under `--root`, the
//! record in it (state.json, written before each thing it names exists),
//! the status derived from the live process, what can be done to it, and
//! the one teardown that removes everything it holds.

mod error;
mod handle;
mod ops;
mod state;
mod status;
mod store;
mod teardown;

pub use error::ContainerError;
pub use error::Result;
pub use handle::Container;
pub use ops::{parse_signal, wait_exit};
pub use state::{HostMounts, LateHooks, State, write_config};
pub use status::{START_BYTE, START_RELEASING, START_SOCKET, Status, parse_stat, proc_start_time};
pub use store::{Lock, Store, validate_id};
pub use teardown::destroy;
