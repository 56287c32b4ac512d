use clap::Args;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// set the stats collection interval
    #[arg(long, default_value = "5s", value_name = "duration")]
    pub interval: String,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    #[arg(value_name = "container-id")]
    pub id: String,
}
