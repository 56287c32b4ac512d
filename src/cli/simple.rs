use clap::Args;

// Verbs that take exactly one container id.
#[derive(Args, Debug)]
pub struct IdArgs {
    #[arg(value_name = "container-id")]
    pub id: String,
}
