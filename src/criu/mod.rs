//! CRIU's RPC, for `checkpoint` and `restore`: the protobuf messages
//! `criu swrk` reads and answers, hand-encoded (no protobuf dependency for
//! a few dozen fields), and the `criu swrk` child itself.
//! docs/design/checkpoint-restore.md has the research. Imports nothing of
//! hull but `sys`.

pub mod rpc;
pub mod swrk;
pub mod wire;
