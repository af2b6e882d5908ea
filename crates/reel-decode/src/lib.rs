//! `reel-decode` turns an input (a video file, a URL, a Y4M file, an image sequence or
//! a `synthetic:` URI) into a stream of [`Frame`]s, one at a time, each decoded
//! straight into a buffer from the caller's [`FramePool`], in the pixel format and at
//! the size the caller asks for, with its index and presentation time.
//!
//! [`open`] picks the backend and returns a [`VideoSource`]: a `reel_sched::Source`
//! that also tells what the probe found ([`VideoInfo`]) and which decoder is in use.
//! [`probe`] answers the same questions without decoding. Backends:
//!
//! - ffmpeg (the [`ffmpeg`] module): the system's `ffmpeg` and `ffprobe` programs as
//!   child processes, hardware decoding when the machine has it ([`hw`]), and an
//!   encoder sink ([`ffmpeg::FfmpegEncoder`]). With the `libav` feature, local files
//!   can be decoded in process instead ([`Backend::Libav`]).
//! - pure Rust, with no system dependency: [`y4m`] files, [`images`] sequences (PNG,
//!   JPEG) and [`synthetic`] sources with their ground truth. Conversion and
//!   resizing for these come from `reel-ops`.
//!
//! The crate knows nothing of stages, queues, analysis or models: it produces frames
//! and stops. It depends only on the pool, the frame vocabulary, the scheduler's
//! `Source`/`Sink` traits and the frame operations.
#![deny(missing_docs)]

mod child;
mod error;
pub mod ffmpeg;
pub mod hw;
pub mod images;
mod info;
mod options;
mod sampling;
mod shape;
pub mod synthetic;
pub mod y4m;

use reel_frame::{Frame, PixelFormat};
use reel_pool::{FramePool, PooledBuf};
use reel_sched::Source;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use child::{stop_input, stop_inputs};
pub use error::{DecodeError, Position};
pub use info::{DecoderInfo, VideoInfo};
pub use options::{
    Backend, DEFAULT_NETWORK_TIMEOUT, DecodeOptions, FFMPEG_ENV, FFPROBE_ENV, FfmpegTools, HwAccel,
    Limits, Sampling, Scaler, UnknownHwAccel,
};

/// Whether this build decodes video files in process ([`Backend::Libav`]): built
/// with the `libav` feature.
pub const LIBAV: bool = cfg!(feature = "libav");

/// A source of decoded frames that can tell what it decodes.
///
/// Frames come from [`Source::next_frame`] (errors boxed, as the scheduler wants them)
/// or from [`read_frame`](VideoSource::read_frame) (errors typed). After an error the
/// stream is over; frames delivered before it stay valid.
pub trait VideoSource: Source {
    /// What the probe found, and the decoder in use (updated once decoding starts,
    /// for example after a fallback from hardware to software).
    fn info(&self) -> &VideoInfo;

    /// The next frame, `None` at the end, or the error that ended the stream.
    fn read_frame(&mut self) -> Option<Result<Frame, DecodeError>>;

    /// The operating-system process doing the decoding, for sources that run one.
    fn process_id(&self) -> Option<u32> {
        None
    }

    /// The source's running counts, for sources that keep them: a handle that
    /// stays readable after the source has moved into a pipeline.
    fn counts(&self) -> Option<DecodeCounts> {
        None
    }
}

/// What a source has decoded so far, shared with whoever holds a clone: every
/// frame the decoder produced (frames the sampling leaves out included) and the
/// decoding errors it concealed outside strict mode.
#[derive(Debug, Clone, Default)]
pub struct DecodeCounts(Arc<[AtomicU64; 2]>);

impl DecodeCounts {
    /// Frames decoded, whether or not the sampling kept them.
    pub fn decoded(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Decoding errors passed over (corrupt frames concealed or lost).
    pub fn errors(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }

    pub(crate) fn set_decoded(&self, n: u64) {
        self.0[0].fetch_max(n, Ordering::Relaxed);
    }

    pub(crate) fn add_error(&self) {
        self.0[1].fetch_add(1, Ordering::Relaxed);
    }
}

/// Opens `input` for decoding with `opts`, taking frame buffers from `pool`.
///
/// Inputs: `synthetic:…` URIs (see [`synthetic`]), `.y4m` files ([`y4m`]), image
/// sequences: a directory, a `%d` pattern or a single PNG/JPEG ([`images`]); anything
/// else (video files, URLs, devices) goes to ffmpeg. [`Backend::Ffmpeg`] sends Y4M
/// and images to ffmpeg too.
pub fn open(
    input: &str,
    opts: &DecodeOptions,
    pool: &FramePool,
) -> Result<Box<dyn VideoSource>, DecodeError> {
    opts.validate(input)?;
    Ok(match route(input, opts)? {
        Route::Synthetic => Box::new(synthetic::SyntheticSource::open(input, opts, pool)?),
        Route::Y4m => Box::new(y4m::Y4mSource::open(input, opts, pool)?),
        Route::Images => Box::new(images::ImageSequence::open(input, opts, pool)?),
        Route::Ffmpeg => {
            if opts.backend == Backend::Libav
                && let Some(source) = ffmpeg::libav::open_source(input, opts, pool)?
            {
                return Ok(source);
            }
            Box::new(ffmpeg::FfmpegSource::open(input, opts, pool)?)
        }
    })
}

/// What `input` holds, without decoding it.
pub fn probe(input: &str, opts: &DecodeOptions) -> Result<VideoInfo, DecodeError> {
    match route(input, opts)? {
        Route::Synthetic => Ok(synthetic::SyntheticSpec::parse(input)?.info(input)),
        Route::Y4m => y4m::probe(input, opts),
        Route::Images => images::probe(input, opts),
        Route::Ffmpeg => ffmpeg::probe(input, opts),
    }
}

/// Which backend reads an input.
enum Route {
    Synthetic,
    Y4m,
    Images,
    Ffmpeg,
}

fn route(input: &str, opts: &DecodeOptions) -> Result<Route, DecodeError> {
    if synthetic::is_synthetic(input) {
        return Ok(Route::Synthetic);
    }
    // A Y4M stream that is not a regular file (a FIFO, a device) goes to ffmpeg: a
    // child process can be stopped while it waits for data, a read here cannot.
    let special = std::fs::metadata(input).is_ok_and(|m| !m.is_file());
    let native = if y4m::is_y4m(input) && !special {
        Some(Route::Y4m)
    } else if images::is_sequence(input) {
        Some(Route::Images)
    } else {
        None
    };
    match (opts.backend, native) {
        (Backend::Ffmpeg, _) => Ok(Route::Ffmpeg),
        (_, Some(route)) => Ok(route),
        (Backend::Auto | Backend::Libav, None) => Ok(Route::Ffmpeg),
        (Backend::Native, None) => Err(DecodeError::Unsupported {
            input: input.to_string(),
            what: "no pure-Rust reader for this input (only synthetic:, .y4m and images)".into(),
        }),
    }
}

/// Implements `Source` and [`VideoSource`] for a reader that decodes in this
/// process: its name is the field `$name`, its facts the field `info`, and its
/// frames come from its own `read_frame`.
macro_rules! in_process_source {
    ($ty:ty, $name:ident) => {
        $crate::in_process_source!($ty, $name, |_s| None);
    };
    ($ty:ty, $name:ident, counts = $counts:ident) => {
        $crate::in_process_source!($ty, $name, |s| Some(s.$counts.clone()));
    };
    ($ty:ty, $name:ident, |$s:ident| $counts:expr) => {
        impl reel_sched::Source for $ty {
            fn name(&self) -> &str {
                &self.$name
            }

            fn next_frame(&mut self) -> Option<Result<reel_frame::Frame, reel_sched::BoxError>> {
                <$ty>::read_frame(self).map(|r| r.map_err(reel_sched::BoxError::from))
            }
        }

        impl $crate::VideoSource for $ty {
            fn info(&self) -> &$crate::VideoInfo {
                &self.info
            }

            fn read_frame(&mut self) -> Option<Result<reel_frame::Frame, $crate::DecodeError>> {
                <$ty>::read_frame(self)
            }

            fn counts(&self) -> Option<$crate::DecodeCounts> {
                let $s = self;
                $counts
            }
        }
    };
}
pub(crate) use in_process_source;

/// One step of a reader that stops for good after its end or its first error:
/// `done` is set unless `step` gave a frame.
pub(crate) fn until_done(
    done: &mut bool,
    step: Result<Option<Frame>, DecodeError>,
) -> Option<Result<Frame, DecodeError>> {
    if !matches!(step, Ok(Some(_))) {
        *done = true;
    }
    step.transpose()
}

/// Wraps a filled buffer as frame `index` at `pts`, stamped with the time it was
/// captured and, when it was resized, the size it was decoded at.
pub(crate) fn decoded_frame(
    input: &str,
    buf: PooledBuf,
    format: PixelFormat,
    size: (u32, u32),
    decoded_size: (u32, u32),
    (index, pts): (u64, f64),
) -> Result<Frame, DecodeError> {
    let mut frame = Frame::new(buf, format, size.0, size.1, index, pts).map_err(|source| {
        DecodeError::Frame {
            input: input.to_string(),
            source,
        }
    })?;
    frame.meta.captured_at = Some(std::time::Instant::now());
    if size != decoded_size {
        frame.meta.source_size = Some(decoded_size);
    }
    Ok(frame)
}

/// A pool buffer for one `format` frame of `size`, refusing sizes that overflow.
pub(crate) fn frame_buffer(
    pool: &FramePool,
    input: &str,
    format: PixelFormat,
    (width, height): (u32, u32),
) -> Result<PooledBuf, DecodeError> {
    let pool_err = |source| DecodeError::Pool {
        input: input.to_string(),
        width,
        height,
        format,
        source,
    };
    let len = format
        .frame_size(width, height)
        .ok_or(reel_pool::PoolError::TooLarge {
            requested: usize::MAX,
            limit: pool.config().budget_bytes,
        })
        .map_err(pool_err)?;
    pool.acquire(len).map_err(pool_err)
}
