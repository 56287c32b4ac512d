use clap::Args;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Forcibly deletes the container if it is still running (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
}
