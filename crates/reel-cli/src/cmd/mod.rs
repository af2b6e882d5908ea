//! One module per subcommand: its arguments and its `run`.

pub mod analysis_args;
pub mod analyze;
pub mod batch;
pub mod cache;
pub mod decode_args;
pub mod demo;
pub mod detect;
pub mod live;
pub mod model_args;
pub mod plugin_args;
pub mod plugins;
pub mod probe;
pub mod system;
pub mod values;
