use anyhow::Result;

use crate::checkpoint::{criu_binary, dump};
use crate::cli::CheckpointArgs;
use crate::container::Store;

pub fn run(store: &Store, a: &CheckpointArgs, criu: Option<&str>) -> Result<()> {
    dump::checkpoint(store, a, &criu_binary(criu))
}
