//! One module per subcommand: its arguments and its `run`.

pub mod cache;
pub mod system;
