//! CRIU's RPC, for `checkpoint` and `restore` (issue 28; both verbs still
//! answer "not implemented yet"): the protobuf messages `criu swrk` reads
//! and answers, hand-encoded (no protobuf dependency for a dozen fields).
//! docs/design/checkpoint-restore.md has the plan this is the first step
//! of. Imports nothing of hull.

pub mod rpc;
pub mod swrk;
pub mod wire;
