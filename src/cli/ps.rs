use clap::Args;

use super::ListFormat;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// select one of: table or json (default: "table")
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    #[arg(value_name = "container-id")]
    pub id: String,
    /// options passed to ps(1) (default: -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps options"
    )]
    pub ps_args: Vec<String>,
}
