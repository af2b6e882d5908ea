//! Decoding flags shared by `reel analyze` and `reel detect`.

use reel_host::job::DecodeRequest;

use crate::cmd::values;

/// How the input is decoded, beyond the sampling.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeArgs {
    /// Decode past corrupt frames (the decoder conceals them) instead of stopping
    /// at the first; the summary counts the decoding errors.
    #[arg(long)]
    pub keep_going: bool,
    /// Frame rate of an image sequence, which carries none (default 25).
    #[arg(long, value_name = "F", value_parser = values::positive, allow_negative_numbers = true)]
    pub image_fps: Option<f64>,
}

impl DecodeArgs {
    /// Writes these flags into a job's decode request.
    pub fn apply(&self, decode: &mut DecodeRequest) {
        decode.keep_going = self.keep_going;
        decode.sequence_fps = self.image_fps;
    }
}
