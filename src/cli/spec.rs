use clap::Args;

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// path to the root of the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: String,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}
