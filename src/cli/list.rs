use clap::{Args, ValueEnum};

#[derive(Args, Debug)]
pub struct ListArgs {
    /// select one of: table or json (default: "table")
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// display only container IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}
