//! What the caller asks of a decoder: pixel format, size, sampling, hardware, limits.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use reel_frame::PixelFormat;
use reel_sched::QualityKnob;
use serde::Serialize;

use crate::error::DecodeError;

/// How a decoder is asked to deliver frames.
///
/// ```
/// use reel_decode::{DecodeOptions, Sampling};
/// use reel_frame::PixelFormat;
///
/// let opts = DecodeOptions::default()
///     .with_format(PixelFormat::Gray8)
///     .with_size(640, 360)
///     .with_sampling(Sampling::every(5));
/// assert_eq!(opts.size, Some((640, 360)));
/// ```
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Pixel format of the delivered frames.
    pub format: PixelFormat,
    /// Size of the delivered frames (scaled inside the decoder), `None` for the
    /// source's own (display) size.
    pub size: Option<(u32, u32)>,
    /// Which frames to deliver.
    pub sampling: Sampling,
    /// A live scale factor: frames are decoded at `size × factor` (the factor is read
    /// before each frame, quantised to eighths, never below 1/8). `None`: always 1.
    pub scale: Option<QualityKnob>,
    /// Hardware decoding.
    pub hwaccel: HwAccel,
    /// Which backend decodes files that more than one could read.
    pub backend: Backend,
    /// The `ffmpeg` and `ffprobe` programs.
    pub tools: FfmpegTools,
    /// Frame sizes beyond which an input or a request is refused.
    pub limits: Limits,
    /// Stop at the first decoding error (delivering the frames before it) rather
    /// than let the decoder conceal it and go on. Default `true`.
    pub strict: bool,
    /// Frame rate given to image sequences, which carry none. Default 25.
    pub sequence_fps: f64,
    /// How the ffmpeg backend resamples when the output size differs from the
    /// source's. Default [`Scaler::Bicubic`], ffmpeg's own default.
    pub scaler: Scaler,
    /// Read a network stream over one connection: the ffmpeg backend starts its
    /// decoder at once, with no separate ffprobe connection before it, and learns
    /// the stream's size, frame rate and codec from the decoder's own messages (a
    /// publisher that serves a single client, such as ffmpeg's `?listen=1`, needs
    /// this). Until the first frame, [`crate::VideoSource::info`] knows only the
    /// input and the requested size. Default `false`; files ignore it.
    pub one_connection: bool,
}

/// The resampling filter used when frames are scaled inside ffmpeg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaler {
    /// Bicubic: ffmpeg's default, the smoothest of these.
    #[default]
    Bicubic,
    /// Bilinear.
    Bilinear,
    /// Area averaging: good for large reductions.
    Area,
    /// ffmpeg's fast bilinear: the cheapest, but it aliases fine patterns when it
    /// downsizes a lot (a moving texture can then look like a scene change).
    FastBilinear,
}

impl Scaler {
    /// The name as ffmpeg's `scale` filter spells it (`flags=NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Bicubic => "bicubic",
            Self::Bilinear => "bilinear",
            Self::Area => "area",
            Self::FastBilinear => "fast_bilinear",
        }
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            format: PixelFormat::Rgb24,
            size: None,
            sampling: Sampling::default(),
            scale: None,
            hwaccel: HwAccel::Auto,
            backend: Backend::Auto,
            tools: FfmpegTools::from_env(),
            limits: Limits::default(),
            strict: true,
            sequence_fps: 25.0,
            scaler: Scaler::default(),
            one_connection: false,
        }
    }
}

impl DecodeOptions {
    /// Sets the output pixel format.
    pub fn with_format(mut self, format: PixelFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the output size.
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// Sets the sampling.
    pub fn with_sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Follows a live scale factor.
    pub fn with_scale(mut self, knob: QualityKnob) -> Self {
        self.scale = Some(knob);
        self
    }

    /// Sets the hardware decoding mode.
    pub fn with_hwaccel(mut self, hwaccel: HwAccel) -> Self {
        self.hwaccel = hwaccel;
        self
    }

    /// Sets the resampling filter for scaling inside ffmpeg.
    pub fn with_scaler(mut self, scaler: Scaler) -> Self {
        self.scaler = scaler;
        self
    }

    /// Sets the backend.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets the external programs.
    pub fn with_tools(mut self, tools: FfmpegTools) -> Self {
        self.tools = tools;
        self
    }

    /// Checks the options on their own (not against an input).
    pub(crate) fn validate(&self, input: &str) -> Result<(), DecodeError> {
        let bad = |reason: String| DecodeError::InvalidOptions {
            input: input.to_string(),
            reason,
        };
        if let Some((w, h)) = self.size {
            if w == 0 || h == 0 {
                return Err(bad(format!("output size {w}x{h} has a zero side")));
            }
            self.limits.check(input, u64::from(w), u64::from(h))?;
        }
        self.sampling.validate().map_err(bad)?;
        if !(self.sequence_fps.is_finite() && self.sequence_fps > 0.0) {
            return Err(bad(format!(
                "image sequence frame rate {} is not a positive number",
                self.sequence_fps
            )));
        }
        Ok(())
    }
}

/// Which frames a source delivers. Indices and times stay those of the source:
/// a skipped frame still counts.
///
/// `every` and `fps` are alternatives. With `fps`, the stream time from `start` is cut
/// into cells of `1/fps` seconds and the first frame of each cell is kept (a frame is
/// never repeated to fill an empty cell).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sampling {
    /// Keep one frame in `every` (counted from the first frame at or after `start`);
    /// 0 and 1 keep every frame.
    pub every: u32,
    /// Keep at most this many frames per second of stream time.
    pub fps: Option<f64>,
    /// Skip frames presented before this time (seconds from the stream's start).
    pub start: Option<f64>,
    /// Stop at the first frame presented at or after this time.
    pub end: Option<f64>,
}

impl Sampling {
    /// Every frame.
    pub fn all() -> Self {
        Self::default()
    }

    /// One frame in `n`.
    pub fn every(n: u32) -> Self {
        Self {
            every: n,
            ..Self::default()
        }
    }

    /// At most `fps` frames per second.
    pub fn fps(fps: f64) -> Self {
        Self {
            fps: Some(fps),
            ..Self::default()
        }
    }

    /// Limits the sampling to `[start, end)` seconds.
    pub fn between(mut self, start: Option<f64>, end: Option<f64>) -> Self {
        self.start = start;
        self.end = end;
        self
    }

    /// The step of every-Nth sampling (at least 1).
    pub fn step(&self) -> u64 {
        u64::from(self.every.max(1))
    }

    /// Whether every frame is delivered.
    pub fn is_all(&self) -> bool {
        self.step() == 1 && self.fps.is_none() && self.start.is_none() && self.end.is_none()
    }

    fn validate(&self) -> Result<(), String> {
        if self.every > 1 && self.fps.is_some() {
            return Err("sample either every Nth frame or at a frame rate, not both".into());
        }
        if let Some(fps) = self.fps
            && !(fps.is_finite() && fps > 0.0)
        {
            return Err(format!("sampling rate {fps} is not a positive number"));
        }
        for (name, t) in [("start", self.start), ("end", self.end)] {
            if let Some(t) = t
                && !(t.is_finite() && t >= 0.0)
            {
                return Err(format!("{name} time {t} is not a time in seconds"));
            }
        }
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e <= s
        {
            return Err(format!("end time {e} is not after start time {s}"));
        }
        Ok(())
    }
}

/// Hardware decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HwAccel {
    /// Use a hardware decoder when the machine has one, software otherwise.
    #[default]
    Auto,
    /// Software only.
    None,
    /// NVIDIA (NVDEC through CUDA).
    Cuda,
    /// VAAPI (Intel, AMD) through a DRM render node.
    Vaapi,
    /// Intel Quick Sync.
    Qsv,
    /// Apple VideoToolbox.
    VideoToolbox,
}

impl HwAccel {
    /// The name as ffmpeg's `-hwaccel` spells it (`auto` and `none` included).
    pub fn name(self) -> &'static str {
        match self {
            HwAccel::Auto => "auto",
            HwAccel::None => "none",
            HwAccel::Cuda => "cuda",
            HwAccel::Vaapi => "vaapi",
            HwAccel::Qsv => "qsv",
            HwAccel::VideoToolbox => "videotoolbox",
        }
    }
}

impl fmt::Display for HwAccel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hardware decoding mode reel does not know.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error(
    "unknown hardware acceleration `{0}` (expected auto, none, cuda, vaapi, qsv or videotoolbox)"
)]
pub struct UnknownHwAccel(pub String);

impl FromStr for HwAccel {
    type Err = UnknownHwAccel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(HwAccel::Auto),
            "none" | "software" | "sw" => Ok(HwAccel::None),
            "cuda" | "nvdec" | "nvidia" => Ok(HwAccel::Cuda),
            "vaapi" => Ok(HwAccel::Vaapi),
            "qsv" => Ok(HwAccel::Qsv),
            "videotoolbox" => Ok(HwAccel::VideoToolbox),
            _ => Err(UnknownHwAccel(s.to_string())),
        }
    }
}

/// Which backend reads an input that more than one could (a `.y4m` file, a still
/// image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The pure-Rust reader when there is one for the input, ffmpeg otherwise.
    #[default]
    Auto,
    /// Always ffmpeg (not for `synthetic:` inputs).
    Ffmpeg,
    /// Only the pure-Rust readers: inputs they cannot read are refused.
    Native,
    /// Like [`Backend::Auto`], but a local video file is decoded in this process by
    /// the libav libraries when the build has the `libav` feature and the input
    /// allows it (software decoding, no rotation, 8-bit limited-range 4:2:0 or grey);
    /// otherwise by the ffmpeg child process. Frames are resized (area filter) and
    /// converted by `reel-ops`, so they are close to ffmpeg's, not bit-identical: for
    /// analysis at a reduced size, where that saves most of the work besides
    /// decoding.
    Libav,
}

/// The `ffmpeg` and `ffprobe` programs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegTools {
    /// Path or name of `ffmpeg`.
    pub ffmpeg: PathBuf,
    /// Path or name of `ffprobe`.
    pub ffprobe: PathBuf,
}

/// The environment variable naming the `ffmpeg` program.
pub const FFMPEG_ENV: &str = "REEL_FFMPEG";
/// The environment variable naming the `ffprobe` program.
pub const FFPROBE_ENV: &str = "REEL_FFPROBE";

impl FfmpegTools {
    /// `ffmpeg` and `ffprobe` from `REEL_FFMPEG` and `REEL_FFPROBE`, else from `PATH`.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| -> PathBuf {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| OsString::from(default))
                .into()
        };
        Self {
            ffmpeg: var(FFMPEG_ENV, "ffmpeg"),
            ffprobe: var(FFPROBE_ENV, "ffprobe"),
        }
    }

    /// Explicit programs.
    pub fn new(ffmpeg: impl Into<PathBuf>, ffprobe: impl Into<PathBuf>) -> Self {
        Self {
            ffmpeg: ffmpeg.into(),
            ffprobe: ffprobe.into(),
        }
    }
}

impl Default for FfmpegTools {
    fn default() -> Self {
        Self::from_env()
    }
}

/// Frame sizes beyond which an input or a request is refused before anything is
/// allocated, and how long a network input may keep reel waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest side, in pixels. Default 16384.
    pub max_side: u32,
    /// The most pixels in a frame. Default 8192 × 8192.
    pub max_pixels: u64,
    /// The longest a network input (a URL) may take to connect or to answer a read,
    /// probes included, before it is an error. Default [`DEFAULT_NETWORK_TIMEOUT`].
    pub network_timeout: std::time::Duration,
    /// How much of a network input's start the probe and the decoder read to find
    /// its streams (ffmpeg's `-analyzeduration`); `None` is ffmpeg's own (5 s for
    /// most). A live stream asks for less, to start sooner.
    pub network_probe: Option<std::time::Duration>,
}

/// The default [`Limits::network_timeout`]: 15 seconds.
pub const DEFAULT_NETWORK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_side: 16_384,
            max_pixels: 8192 * 8192,
            network_timeout: DEFAULT_NETWORK_TIMEOUT,
            network_probe: None,
        }
    }
}

impl Limits {
    /// Refuses a `width` x `height` frame that is empty or beyond the limits.
    pub fn check(&self, input: &str, width: u64, height: u64) -> Result<(), DecodeError> {
        let too_big = width > u64::from(self.max_side)
            || height > u64::from(self.max_side)
            || width.saturating_mul(height) > self.max_pixels;
        if width == 0 || height == 0 || too_big {
            return Err(DecodeError::AbsurdDimensions {
                input: input.to_string(),
                width,
                height,
                max_side: self.max_side,
                max_pixels: self.max_pixels,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_rules() {
        assert!(Sampling::all().is_all());
        assert!(!Sampling::every(2).is_all());
        assert_eq!(Sampling::every(0).step(), 1);
        let both = Sampling {
            every: 3,
            fps: Some(2.0),
            ..Sampling::default()
        };
        assert!(both.validate().is_err());
        assert!(Sampling::fps(0.0).validate().is_err());
        assert!(
            Sampling::all()
                .between(Some(2.0), Some(1.0))
                .validate()
                .is_err()
        );
        assert!(
            Sampling::every(4)
                .between(Some(1.0), None)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn absurd_sizes_are_refused() {
        let limits = Limits::default();
        assert!(limits.check("x", 1920, 1080).is_ok());
        assert!(limits.check("x", 7680, 4320).is_ok());
        let e = limits.check("x.y4m", 100_000, 100_000).unwrap_err();
        assert!(e.to_string().contains("100000x100000"), "{e}");
        assert!(limits.check("x", 0, 10).is_err());
        assert!(limits.check("x", 16_000, 16_000).is_err());
        let opts = DecodeOptions::default().with_size(100_000, 100_000);
        assert!(matches!(
            opts.validate("in.mp4"),
            Err(DecodeError::AbsurdDimensions { .. })
        ));
    }

    #[test]
    fn hwaccel_names_round_trip() {
        for hw in [
            HwAccel::Auto,
            HwAccel::None,
            HwAccel::Cuda,
            HwAccel::Vaapi,
            HwAccel::Qsv,
            HwAccel::VideoToolbox,
        ] {
            assert_eq!(hw.name().parse::<HwAccel>(), Ok(hw));
        }
        assert!("opengl".parse::<HwAccel>().is_err());
    }
}
