//! What can go wrong while opening or decoding an input.

use std::fmt;
use std::io;
use std::path::PathBuf;

use reel_frame::{FrameError, PixelFormat};
use reel_pool::PoolError;

/// Where a stream stood when it failed: the last frame delivered before the fault,
/// if any. Frames delivered before an error stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Position {
    /// The last good frame: its index in the source and its presentation time in
    /// seconds. `None` when the fault came before the first frame.
    pub last_good: Option<(u64, f64)>,
}

impl Position {
    /// Before the first frame.
    pub const START: Position = Position { last_good: None };

    /// After the frame `index` at `pts` seconds.
    pub fn after(index: u64, pts: f64) -> Self {
        Self {
            last_good: Some((index, pts)),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last_good {
            None => f.write_str("before the first frame"),
            Some((index, pts)) => write!(f, "after frame {index} (last good frame, at {pts:.3} s)"),
        }
    }
}

/// Why an input could not be opened or decoded. Every variant names the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file does not exist.
    #[error("{input}: no such file")]
    NotFound {
        /// The input as given.
        input: String,
    },
    /// The file exists but holds no bytes.
    #[error("{input}: the file is empty")]
    Empty {
        /// The input as given.
        input: String,
    },
    /// The file is not a video any decoder recognises.
    #[error("{input}: not a video file ({detail})")]
    NotVideo {
        /// The input as given.
        input: String,
        /// What the decoder said.
        detail: String,
    },
    /// A network input could not be read: the host, the connection or the server
    /// is the cause, not the video.
    #[error("{input}: {cause}")]
    Network {
        /// The input as given.
        input: String,
        /// What went wrong, in words (host not found, connection refused, …).
        cause: String,
    },
    /// The file is a media file without a video stream.
    #[error("{input}: the file has no video stream")]
    NoVideoStream {
        /// The input as given.
        input: String,
    },
    /// A frame size no real video has, from a header or from the options: refused
    /// before anything is allocated.
    #[error(
        "{input}: {width}x{height} is not a plausible frame size (at most {max_side} pixels a \
         side and {max_pixels} pixels in all)"
    )]
    AbsurdDimensions {
        /// The input as given.
        input: String,
        /// Width claimed or asked for.
        width: u64,
        /// Height claimed or asked for.
        height: u64,
        /// The longest side allowed.
        max_side: u32,
        /// The most pixels allowed.
        max_pixels: u64,
    },
    /// The input or the options ask for something this backend cannot do.
    #[error("{input}: {what}")]
    Unsupported {
        /// The input as given.
        input: String,
        /// What is not supported.
        what: String,
    },
    /// The input's name or URI cannot be understood.
    #[error("invalid input `{input}`: {reason}")]
    InvalidInput {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The decode options contradict each other or are out of range.
    #[error("invalid decode options for {input}: {reason}")]
    InvalidOptions {
        /// The input as given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// The stream ends in the middle of a frame or before its announced end.
    #[error("{input}: the video is truncated: it stops {at}{}", detail_suffix(.detail))]
    Truncated {
        /// The input as given.
        input: String,
        /// The last good frame.
        at: Position,
        /// What the decoder said, if anything.
        detail: String,
    },
    /// The decoder found invalid data.
    #[error("{input}: corrupt video {at}: {detail}")]
    Corrupt {
        /// The input as given.
        input: String,
        /// The last good frame.
        at: Position,
        /// What the decoder said.
        detail: String,
    },
    /// An external program (ffmpeg, ffprobe) could not be started.
    #[error("{input}: cannot run `{program}` ({source}); install ffmpeg or set {env}")]
    ToolMissing {
        /// The input being opened.
        input: String,
        /// The program's path or name.
        program: PathBuf,
        /// The environment variable that selects the program.
        env: &'static str,
        /// Why it could not be started.
        source: io::Error,
    },
    /// The decoder process was killed by a signal.
    #[error("{input}: the decoder process was killed by signal {signal} {at}")]
    Killed {
        /// The input as given.
        input: String,
        /// The signal number.
        signal: i32,
        /// The last good frame.
        at: Position,
    },
    /// The decoder process failed.
    #[error("{input}: ffmpeg failed ({status}) {at}: {stderr}")]
    Ffmpeg {
        /// The input as given.
        input: String,
        /// How the process ended.
        status: String,
        /// The last good frame.
        at: Position,
        /// The end of what it wrote on stderr.
        stderr: String,
    },
    /// Reading or writing failed.
    #[error("{input}: {context}: {source}")]
    Io {
        /// The input (or output) concerned.
        input: String,
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The frame pool could not provide a buffer.
    #[error("{input}: no buffer for a {width}x{height} {format} frame: {source}")]
    Pool {
        /// The input as given.
        input: String,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// Frame format.
        format: PixelFormat,
        /// The pool's refusal.
        source: PoolError,
    },
    /// A frame could not be built around its buffer.
    #[error("{input}: {source}")]
    Frame {
        /// The input as given.
        input: String,
        /// The underlying error.
        source: FrameError,
    },
    /// A still image of a sequence could not be decoded.
    #[error("{input}: image {} {at}: {detail}", path.display())]
    Image {
        /// The input as given.
        input: String,
        /// The image file.
        path: PathBuf,
        /// The last good frame.
        at: Position,
        /// What the image decoder said.
        detail: String,
    },
    /// A pixel operation (conversion, resize) failed.
    #[error("{input}: {detail}")]
    Ops {
        /// The input as given.
        input: String,
        /// What failed.
        detail: String,
    },
    /// The encoder failed.
    #[error("{output}: encoder failed: {detail}")]
    Encode {
        /// The output file.
        output: String,
        /// What went wrong (ffmpeg's stderr when it has something to say).
        detail: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl DecodeError {
    /// The input the error is about.
    pub fn input(&self) -> &str {
        match self {
            DecodeError::NotFound { input }
            | DecodeError::Empty { input }
            | DecodeError::NotVideo { input, .. }
            | DecodeError::Network { input, .. }
            | DecodeError::NoVideoStream { input }
            | DecodeError::AbsurdDimensions { input, .. }
            | DecodeError::Unsupported { input, .. }
            | DecodeError::InvalidInput { input, .. }
            | DecodeError::InvalidOptions { input, .. }
            | DecodeError::Truncated { input, .. }
            | DecodeError::Corrupt { input, .. }
            | DecodeError::ToolMissing { input, .. }
            | DecodeError::Killed { input, .. }
            | DecodeError::Ffmpeg { input, .. }
            | DecodeError::Io { input, .. }
            | DecodeError::Pool { input, .. }
            | DecodeError::Frame { input, .. }
            | DecodeError::Image { input, .. }
            | DecodeError::Ops { input, .. } => input,
            DecodeError::Encode { output, .. } => output,
        }
    }

    /// Where the stream stood when it failed, for errors that end a stream.
    pub fn position(&self) -> Option<Position> {
        match self {
            DecodeError::Truncated { at, .. }
            | DecodeError::Corrupt { at, .. }
            | DecodeError::Killed { at, .. }
            | DecodeError::Ffmpeg { at, .. }
            | DecodeError::Image { at, .. } => Some(*at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_input_and_the_last_good_frame() {
        let e = DecodeError::Truncated {
            input: "clip.mp4".into(),
            at: Position::after(41, 1.64),
            detail: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "clip.mp4: the video is truncated: it stops after frame 41 (last good frame, at 1.640 s)"
        );
        let e = DecodeError::Corrupt {
            input: "x.mkv".into(),
            at: Position::START,
            detail: "invalid NAL unit size".into(),
        };
        assert_eq!(
            e.to_string(),
            "x.mkv: corrupt video before the first frame: invalid NAL unit size"
        );
        assert_eq!(e.input(), "x.mkv");
        assert_eq!(e.position(), Some(Position::START));
    }
}
