use clap::Args;

#[derive(Args, Debug)]
pub struct KillArgs {
    /// send the specified signal to all processes inside the container
    #[arg(short, long)]
    pub all: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
    /// signal name (KILL, SIGKILL) or number; default SIGTERM
    #[arg(value_name = "signal", default_value = "SIGTERM")]
    pub signal: String,
}
