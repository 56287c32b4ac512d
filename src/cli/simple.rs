use clap::Args;

// Verbs that take exactly one container id.
#[derive(Args, Debug)]
pub struct IdArgs {
    #[arg(value_name = "container-id")]
    pub id: String,
}

// Verbs that are not built yet: accept anything, then refuse clearly.
#[derive(Args, Debug)]
pub struct PassthroughArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}
