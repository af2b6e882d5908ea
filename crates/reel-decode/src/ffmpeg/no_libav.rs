//! The in-process decoder's place in a build without the `libav` feature: it takes
//! no input, so every file goes to the ffmpeg child process and every probe to
//! ffprobe. Callers use the same two functions whichever build they are in.

use reel_pool::FramePool;

use super::Input;
use super::probe::StreamFacts;
use crate::VideoSource;
use crate::error::DecodeError;
use crate::options::{DecodeOptions, Limits};

/// Never a source: this build decodes only through the child process.
pub(crate) fn open_source(
    _input: &str,
    _opts: &DecodeOptions,
    _pool: &FramePool,
) -> Result<Option<Box<dyn VideoSource>>, DecodeError> {
    Ok(None)
}

/// Always the reason to ask ffprobe instead.
pub(crate) fn probe_facts(_input: &Input, _limits: &Limits) -> Result<StreamFacts, String> {
    Err("built without in-process decoding".to_string())
}
