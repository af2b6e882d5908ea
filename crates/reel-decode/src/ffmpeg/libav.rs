//! Decoding in process with the libav libraries (the `libav` feature).
//!
//! The child-process backend pays for a second process: ffmpeg scales and converts
//! every frame with swscale, writes it into a pipe, and reel copies it out again.
//! Here the decoder runs in reel's own process (with libavcodec's frame threads, as
//! the `ffmpeg` program uses them) and each decoded picture is read where it lies:
//! `reel-ops` resizes its planes with the area filter straight into a small scratch
//! picture and converts that into the pooled frame. At an analysis size of a fifth
//! of the source, that costs a fraction of what scaling at full size, the pipe and
//! the copy cost.
//!
//! Only inputs this path reads as the child process would are taken: a local file,
//! software decoding, no particular ffmpeg program named (`REEL_FFMPEG`), a pixel
//! format of [`native_format`]'s (planar YUV 4:2:0, 4:2:2 or 4:4:4 in 8, 10, 12 or
//! 16 bits, limited or full range; NV12, NV21, P010; grey in 8 to 16 bits; packed
//! RGB or BGR), and a display matrix that turns the picture by quarter turns and
//! mirrors it, if at all (YUV and grey only). Anything else, and any input libav
//! cannot open, goes to the child process ([`open`] answers `None`), which keeps its
//! own error reports.
//!
//! Frames are close to ffmpeg's own conversion, not bit-identical: the resize is
//! reel-ops' area filter (which also takes 4:2:2 and 4:4:4 chroma to 4:2:0 and wide
//! samples to 8 bits, with rounding where ffmpeg dithers) and the colour conversion
//! reel-ops' (BT.709 or BT.2020 when the stream says so, else BT.601, as swscale
//! chooses by default). A full-range stream (`yuvj420p`, or `color_range=pc`) is
//! resized as it is, then compressed to limited range by reel-ops' tables before
//! that conversion. The display matrix's turn is applied by that conversion as it
//! writes the pooled frame, as ffmpeg's autorotation (`transpose`, `hflip`, `vflip`)
//! would turn the picture.

use std::sync::Once;

use ffmpeg_next as av;
use ffmpeg_next::packet::Mut as _;
use reel_frame::{Frame, PixelFormat};
use reel_ops::convert::{Conversion, Matrix, Orientation, convert_to, full_to_limited_range};
use reel_ops::resize::{Filter, Layout, Resizer, StridedPlane};
use reel_pool::FramePool;

use super::Input;
use super::probe::{StreamFacts, frame_rate, normalise_rotation, probe};
use crate::error::{DecodeError, Position};
use crate::info::{DecoderInfo, VideoInfo};
use crate::options::{DecodeOptions, HwAccel, Limits};
use crate::sampling::{Sampler, ScaleControl, Verdict, scaled_size};
use crate::{frame_buffer, hw};

/// Decoding errors tolerated (concealed, with a warning) outside strict mode before
/// the stream is declared corrupt.
const MAX_CONCEALED: u64 = 1000;

/// Where a seek for the sampling's start stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seeked {
    /// No picture decoded since the seek.
    Unchecked,
    /// The first picture was at or before the start.
    Checked,
}

/// Seeks for a start this far (seconds) past the beginning and more; nearer, the
/// frames are decoded and dropped from the first.
const SEEK_FROM: f64 = 1.0;

/// A video file decoded in this process by libavcodec.
pub struct LibavSource {
    input: String,
    info: VideoInfo,
    pool: FramePool,
    format: PixelFormat,
    base_size: (u32, u32),
    sampler: Sampler,
    scale: ScaleControl,
    strict: bool,
    demuxer: av::format::context::Input,
    decoder: av::decoder::Video,
    stream_index: usize,
    /// The stream's time base, as a fraction of a second.
    time_base: f64,
    /// The stream's first presentation time in its time base.
    start_pts: i64,
    packet: av::Packet,
    picture: av::frame::Video,
    /// The stream's layout, as reel-ops reads it.
    native: Native,
    /// The stream's colour matrix and display turn, for the conversion.
    conversion: Conversion,

    resizer: Resizer,
    /// The resized picture in the stream's format, before conversion.
    scratch: Vec<u8>,
    /// Frames decoded so far (the next frame's index).
    next: u64,
    /// The demuxer was sent to a keyframe before the sampling's start: indices come
    /// from the pictures' times (constant frame rate only), and the first picture is
    /// checked to be no later than the start (else the file is read from its
    /// beginning after all).
    seeked: Option<Seeked>,
    /// Decoding errors concealed so far.
    concealed: u64,
    counts: crate::DecodeCounts,
    /// Pictures the decoder produced (after a seek, only those it really decoded).
    pictures: u64,
    last: Position,
    last_pts: Option<f64>,
    draining: bool,
    /// The packet read last was refused for now and goes again.
    resend: bool,
    done: bool,
}

impl std::fmt::Debug for LibavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibavSource")
            .field("input", &self.input)
            .field("decoder", &self.info.decoder)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

/// Routes libav's own messages through `tracing` (target `libav`: errors at info,
/// warnings at debug), never as raw lines on stderr in the middle of a progress
/// bar; reel reports decoding trouble through its own errors. Where the C
/// `va_list` cannot be named (other than x86-64 here), libav is kept quiet.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(target_arch = "x86_64")]
        {
            av::util::log::set_level(av::util::log::Level::Warning);
            // SAFETY: the callback is a plain function that lives for the program.
            unsafe { av::ffi::av_log_set_callback(Some(log_to_tracing)) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        av::util::log::set_level(av::util::log::Level::Quiet);
    });
}

/// libav's log callback: formats the message with libav's own formatter into a
/// stack buffer (no allocation unless a subscriber takes it) and hands it to
/// `tracing`.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn log_to_tracing(
    ptr: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    fmt: *const std::ffi::c_char,
    args: *mut av::ffi::__va_list_tag,
) {
    if level > av::ffi::AV_LOG_WARNING || fmt.is_null() {
        return;
    }
    let error = level <= av::ffi::AV_LOG_ERROR;
    let wanted = if error {
        tracing::enabled!(target: "libav", tracing::Level::INFO)
    } else {
        tracing::enabled!(target: "libav", tracing::Level::DEBUG)
    };
    if !wanted {
        return;
    }
    let mut line = [0 as std::ffi::c_char; 512];
    let mut prefix: std::ffi::c_int = 1;
    // SAFETY: libav hands a valid format and argument list for this call; the
    // buffer's length is passed and the result is NUL-terminated within it.
    let text = unsafe {
        av::ffi::av_log_format_line2(
            ptr,
            level,
            fmt,
            args,
            line.as_mut_ptr(),
            line.len() as std::ffi::c_int,
            &mut prefix,
        );
        std::ffi::CStr::from_ptr(line.as_ptr()).to_string_lossy()
    };
    let text = text.trim_end();
    if error {
        tracing::info!(target: "libav", "{text}");
    } else {
        tracing::debug!(target: "libav", "{text}");
    }
}

/// How the decoded pictures are laid out, for the formats this path reads.
#[derive(Debug, Clone, Copy)]
struct Native {
    /// The planes' layout, as reel-ops reads them.
    layout: Layout,
    /// The same, as libav names it.
    av: av::format::Pixel,
    /// The limited-range twin of a `yuvj` format, which a decoder may hand out
    /// instead (flagged full range: the planes are the same).
    twin: Option<av::format::Pixel>,
    /// Full-range ("PC", JPEG) YUV: rewritten to limited range after the resize.
    full_range: bool,
}

impl Native {
    /// Whether the planes are YUV (not grey, not RGB): range and matrix apply.
    fn is_yuv(&self) -> bool {
        matches!(self.layout.format, PixelFormat::Yuv420p | PixelFormat::Nv12)
    }
}

/// The layout of a stream's pixel format (as ffprobe names it), for the formats
/// this path reads: planar YUV 4:2:0, 4:2:2 and 4:4:4 in 8 bits (limited or full
/// range, `yuvj*`), 10, 12 and 16 bits; NV12, NV21, P010; grey in 8, 10, 12 and 16
/// bits; packed RGB and BGR.
fn native_format(name: &str) -> Option<Native> {
    use av::format::Pixel as P;
    let yuv = Layout::of(PixelFormat::Yuv420p);
    let nv = Layout::of(PixelFormat::Nv12);
    let grey = Layout::of(PixelFormat::Gray8);
    let (layout, av, twin) = match name {
        "yuv420p" => (yuv, P::YUV420P, None),
        "yuvj420p" => (yuv, P::YUVJ420P, Some(P::YUV420P)),
        "yuv422p" => (yuv.with_chroma_shift(1, 0), P::YUV422P, None),
        "yuvj422p" => (yuv.with_chroma_shift(1, 0), P::YUVJ422P, Some(P::YUV422P)),
        "yuv444p" => (yuv.with_chroma_shift(0, 0), P::YUV444P, None),
        "yuvj444p" => (yuv.with_chroma_shift(0, 0), P::YUVJ444P, Some(P::YUV444P)),
        "yuv420p10le" => (yuv.with_wide_samples(2), P::YUV420P10LE, None),
        "yuv422p10le" => (
            yuv.with_chroma_shift(1, 0).with_wide_samples(2),
            P::YUV422P10LE,
            None,
        ),
        "yuv444p10le" => (
            yuv.with_chroma_shift(0, 0).with_wide_samples(2),
            P::YUV444P10LE,
            None,
        ),
        "yuv420p12le" => (yuv.with_wide_samples(4), P::YUV420P12LE, None),
        "yuv422p12le" => (
            yuv.with_chroma_shift(1, 0).with_wide_samples(4),
            P::YUV422P12LE,
            None,
        ),
        "yuv444p12le" => (
            yuv.with_chroma_shift(0, 0).with_wide_samples(4),
            P::YUV444P12LE,
            None,
        ),
        "yuv420p16le" => (yuv.with_wide_samples(8), P::YUV420P16LE, None),
        "yuv422p16le" => (
            yuv.with_chroma_shift(1, 0).with_wide_samples(8),
            P::YUV422P16LE,
            None,
        ),
        "yuv444p16le" => (
            yuv.with_chroma_shift(0, 0).with_wide_samples(8),
            P::YUV444P16LE,
            None,
        ),
        "nv12" => (nv, P::NV12, None),
        "nv21" => (nv.with_swapped_chroma(), P::NV21, None),
        "p010le" => (nv.with_wide_samples(8), P::P010LE, None),
        "gray" => (grey, P::GRAY8, None),
        "gray10le" => (grey.with_wide_samples(2), P::GRAY10LE, None),
        "gray12le" => (grey.with_wide_samples(4), P::GRAY12LE, None),
        "gray16le" => (grey.with_wide_samples(8), P::GRAY16LE, None),
        "rgb24" => (Layout::of(PixelFormat::Rgb24), P::RGB24, None),
        "bgr24" => (Layout::of(PixelFormat::Bgr24), P::BGR24, None),
        _ => return None,
    };
    Some(Native {
        layout,
        av,
        twin,
        full_range: twin.is_some(),
    })
}

/// The display matrix of a stream, when it has one.
fn display_matrix(stream: &av::format::stream::Stream<'_>) -> Option<[i32; 9]> {
    let sd = stream
        .side_data()
        .find(|sd| sd.kind() == av::codec::packet::side_data::Type::DisplayMatrix)?;
    let data = sd.data();
    let mut m = [0i32; 9];
    for (v, b) in m.iter_mut().zip(data.get(..36)?.chunks_exact(4)) {
        *v = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    }
    Some(m)
}

/// The counter-clockwise rotation a display matrix holds, in degrees (NaN when it
/// holds none).
fn matrix_rotation(m: &[i32; 9]) -> f64 {
    // SAFETY: the function reads the nine integers of the matrix it is given.
    unsafe { av::ffi::av_display_rotation_get(m.as_ptr()) }
}

/// The turn ffmpeg's autorotation gives a picture with display matrix `m`, in
/// reel-ops' terms: quarter turns (with the mirrored variants `transpose` has),
/// a half turn as `hflip` and `vflip` as the matrix asks, a lone vertical mirror;
/// `None` for any other angle (ffmpeg's `rotate` filter, which only the child has).
fn orientation_of(m: &[i32; 9]) -> Option<Orientation> {
    let r = matrix_rotation(m);
    if !r.is_finite() {
        return None;
    }
    // Clockwise, in [0, 360), as ffmpeg reckons it.
    let mut theta = -r.round();
    theta -= 360.0 * (theta / 360.0 + 0.9 / 360.0).floor();
    let near = |a: f64| (theta - a).abs() < 1.0;
    let turn = |flip_x, flip_y, transpose| Orientation {
        flip_x,
        flip_y,
        transpose,
    };
    Some(if near(90.0) {
        // transpose=cclock_flip, or transpose=clock.
        if m[3] > 0 {
            turn(false, false, true)
        } else {
            Orientation::CLOCKWISE
        }
    } else if near(180.0) {
        turn(m[0] < 0, m[4] < 0, false)
    } else if near(270.0) {
        // transpose=clock_flip, or transpose=cclock.
        if m[3] < 0 {
            turn(true, true, true)
        } else {
            Orientation::COUNTER_CLOCKWISE
        }
    } else if theta.abs() > 1.0 {
        return None;
    } else {
        turn(false, m[4] < 0, false)
    })
}

/// What ffprobe would say about a local file's first video stream, read in process
/// from the same libavformat structures ffprobe prints (no child process: it saves
/// tens of milliseconds per input). Any trouble, including a picture size over the
/// limits, is an `Err` with the reason, and the caller asks ffprobe, which reports
/// the input's errors in the established words.
pub(crate) fn probe_facts(input: &Input, limits: &Limits) -> Result<StreamFacts, String> {
    let path = input.file().ok_or("not a local file")?;
    init();
    let demuxer = av::format::input(path).map_err(|e| e.to_string())?;
    let stream = demuxer
        .streams()
        .find(|s| {
            s.parameters().medium() == av::media::Type::Video
                && !s
                    .disposition()
                    .contains(av::format::stream::Disposition::ATTACHED_PIC)
        })
        .ok_or("no video stream")?;
    let params = stream.parameters();
    // SAFETY: the parameters belong to the stream, which lives as long as `demuxer`.
    let (w, h, format, stream_rate) = unsafe {
        let p = &*params.as_ptr();
        (p.width, p.height, p.format, p.bit_rate)
    };
    let (w, h) = (
        u64::try_from(w).map_err(|_| "negative width")?,
        u64::try_from(h).map_err(|_| "negative height")?,
    );
    if w == 0 || h == 0 || limits.check(input.name(), w, h).is_err() {
        return Err(format!("picture size {w}x{h}"));
    }
    let pixel_format = pixel_format_name(format);
    let rate = |r: av::Rational| {
        (r.denominator() > 0 && r.numerator() > 0)
            .then(|| f64::from(r.numerator()) / f64::from(r.denominator()))
    };
    let (avg, declared) = (rate(stream.avg_frame_rate()), rate(stream.rate()));
    let (fps, constant_rate) = frame_rate(avg, declared);
    let tb = stream.time_base();
    let tb_secs = rate(tb);
    let nopts = |v: i64| (v != av::ffi::AV_NOPTS_VALUE).then_some(v);
    let stream_duration = nopts(stream.duration())
        .filter(|d| *d >= 0)
        .zip(tb_secs)
        .map(|(d, t)| d as f64 * t);
    let format_duration = nopts(demuxer.duration())
        .filter(|d| *d >= 0)
        .map(|d| d as f64 / f64::from(av::ffi::AV_TIME_BASE));
    let rotation = display_matrix(&stream)
        .map(|m| matrix_rotation(&m))
        .filter(|r| r.is_finite())
        .or_else(|| stream.metadata().get("rotate").and_then(|r| r.parse().ok()))
        .map_or(0, normalise_rotation);
    let codec = params.id().name().to_string();
    let start_pts = nopts(stream.start_time());
    // SAFETY: reads one field of the demuxer's own context.
    let format_start = nopts(unsafe { (*demuxer.as_ptr()).start_time });
    let info = VideoInfo {
        input: input.name().to_string(),
        container: Some(demuxer.format().name().to_string()),
        decoder: DecoderInfo::software("ffmpeg", codec.clone()),
        codec,
        pixel_format,
        width: u32::try_from(w).unwrap_or(u32::MAX),
        height: u32::try_from(h).unwrap_or(u32::MAX),
        rotation,
        fps,
        frames: u64::try_from(stream.frames()).ok().filter(|n| *n > 0),
        duration_s: stream_duration.or(format_duration),
        variable_frame_rate: !constant_rate,
        bit_rate: u64::try_from(stream_rate)
            .ok()
            .filter(|b| *b > 0)
            .or_else(|| u64::try_from(demuxer.bit_rate()).ok().filter(|b| *b > 0)),
    };
    Ok(StreamFacts {
        info,
        stream_index: stream.index(),
        time_base: (tb.denominator() > 0 && tb.numerator() >= 0)
            .then(|| (i64::from(tb.numerator()), i64::from(tb.denominator()))),
        start_pts,
        start_time: start_pts.zip(tb_secs).map_or(0.0, |(p, t)| p as f64 * t),
        format_start_time: format_start
            .map_or(0.0, |s| s as f64 / f64::from(av::ffi::AV_TIME_BASE)),
        constant_rate,
    })
}

/// The stream's format when `input` is for this path, else why not.
fn eligible(inp: &Input, opts: &DecodeOptions, info: &VideoInfo) -> Result<Native, String> {
    if !inp.is_local_file() {
        return Err("not a local file".into());
    }
    if opts.tools.ffmpeg != std::path::Path::new("ffmpeg") {
        return Err(format!(
            "ffmpeg program {} named",
            opts.tools.ffmpeg.display()
        ));
    }
    let hw = match opts.hwaccel {
        HwAccel::None => None,
        HwAccel::Auto => hw::auto_choice(&opts.tools).map(|(accel, _)| accel),
        other => Some(other),
    };
    if let Some(accel) = hw {
        return Err(format!("hardware decoding ({}) asked for", accel.name()));
    }
    native_format(&info.pixel_format).ok_or_else(|| format!("pixel format {}", info.pixel_format))
}

/// Opens `input` in process when it qualifies; `Ok(None)` sends it to the child
/// process (the reason is logged at debug level).
/// libav's name for the pixel format numbered `format` in a stream's parameters,
/// found by walking libav's descriptor table (a number it does not know, say from
/// a newer file than the library, is "unknown" rather than an invalid enum value).
fn pixel_format_name(format: i32) -> String {
    // SAFETY: the descriptor table is static and `av_pix_fmt_desc_next` walks it
    // from the start (null) to its end (null); each descriptor's name is a static C
    // string.
    unsafe {
        let mut desc = av::ffi::av_pix_fmt_desc_next(std::ptr::null());
        while !desc.is_null() {
            if av::ffi::av_pix_fmt_desc_get_id(desc) as i32 == format && !(*desc).name.is_null() {
                return std::ffi::CStr::from_ptr((*desc).name)
                    .to_string_lossy()
                    .into_owned();
            }
            desc = av::ffi::av_pix_fmt_desc_next(desc);
        }
    }
    "unknown".to_string()
}

/// [`open`] for the dispatcher, which holds every source behind the trait.
pub(crate) fn open_source(
    input: &str,
    opts: &DecodeOptions,
    pool: &FramePool,
) -> Result<Option<Box<dyn crate::VideoSource>>, DecodeError> {
    Ok(open(input, opts, pool)?.map(|s| Box::new(s) as Box<dyn crate::VideoSource>))
}

pub(crate) fn open(
    input: &str,
    opts: &DecodeOptions,
    pool: &FramePool,
) -> Result<Option<LibavSource>, DecodeError> {
    let inp = Input::new(input)?;
    // The same probe as the child process (remembered, so not run twice): the
    // stream's facts and the file's errors are reported the same way.
    let facts = probe(&inp, &opts.tools, &opts.limits)?;
    let mut layout = match eligible(&inp, opts, &facts.info) {
        Ok(layout) => layout,
        Err(why) => {
            tracing::debug!(input, why, "decoding in an ffmpeg child process");
            return Ok(None);
        }
    };
    let Some(path) = inp.file() else {
        return Ok(None);
    };
    init();
    let opened = (|| -> Result<_, av::Error> {
        let mut demuxer = av::format::input(path)?;
        // The other streams (audio, subtitles) are not even handed out.
        for i in 0..demuxer.nb_streams() as usize {
            if i != facts.stream_index
                && let Some(mut other) = demuxer.stream_mut(i)
            {
                // SAFETY: one field of a stream the demuxer owns, set before reading.
                unsafe { (*other.as_mut_ptr()).discard = av::ffi::AVDiscard::AVDISCARD_ALL };
            }
        }
        let stream = demuxer
            .stream(facts.stream_index)
            .ok_or(av::Error::StreamNotFound)?;
        let tb = stream.time_base();
        let start = stream.start_time();
        // SAFETY: one field of the stream's parameters, which the demuxer owns.
        let (range, space) = unsafe {
            let p = &*stream.parameters().as_ptr();
            (p.color_range, p.color_space)
        };
        let matrix = display_matrix(&stream);
        let mut ctx = av::codec::context::Context::from_parameters(stream.parameters())?;
        // Frame threads with libavcodec's own count, as the ffmpeg program decodes.
        ctx.set_threading(av::threading::Config {
            kind: av::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = ctx.decoder().video()?;
        Ok((demuxer, decoder, tb, start, range, space, matrix))
    })();
    let (demuxer, decoder, tb, start, range, space, display) = match opened {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(input, error = %e, "libav cannot open it; decoding in an ffmpeg child process");
            return Ok(None);
        }
    };
    // A yuv stream flagged full range (`color_range=pc`) is read as yuvj is.
    if range == av::ffi::AVColorRange::AVCOL_RANGE_JPEG && layout.is_yuv() {
        layout.full_range = true;
    }
    // HD video says BT.709, UHD and HDR BT.2020; a stream that says nothing is read
    // as BT.601, as swscale reads it.
    let matrix = match space {
        av::ffi::AVColorSpace::AVCOL_SPC_BT709 => Matrix::Bt709,
        av::ffi::AVColorSpace::AVCOL_SPC_BT2020_NCL => Matrix::Bt2020,
        _ => Matrix::Bt601,
    };
    // The display matrix's turn, when this path can apply it (the same one the
    // probe's rotation and display size describe).
    let orientation = match display.map(|m| orientation_of(&m)) {
        None if facts.info.rotation == 0 => Some(Orientation::IDENTITY),
        None => None,
        Some(turn) => turn.filter(|o| {
            o.transpose == (facts.info.rotation % 180 == 90)
                && (o.is_identity()
                    || layout.is_yuv()
                    || layout.layout.format == PixelFormat::Gray8)
        }),
    };
    let Some(orientation) = orientation else {
        tracing::debug!(
            input,
            rotation = facts.info.rotation,
            "a turn this path does not apply; decoding in an ffmpeg child process"
        );
        return Ok(None);
    };
    let time_base = if tb.denominator() != 0 && tb.numerator() > 0 {
        f64::from(tb.numerator()) / f64::from(tb.denominator())
    } else {
        0.0
    };
    let mut demuxer = demuxer;
    let seeked = seek_for_start(&mut demuxer, opts, &facts, time_base, start);
    let base_size = opts.size.unwrap_or(facts.info.display_size());
    opts.limits
        .check(input, u64::from(base_size.0), u64::from(base_size.1))?;
    let mut info = facts.info.clone();
    info.decoder = DecoderInfo::software("libav", info.codec.clone());
    Ok(Some(LibavSource {
        input: inp.name().to_string(),
        info,
        pool: pool.clone(),
        format: opts.format,
        base_size,
        sampler: Sampler::new(&opts.sampling),
        scale: ScaleControl::new(opts.scale.clone()),
        strict: opts.strict,
        demuxer,
        decoder,
        stream_index: facts.stream_index,
        time_base,
        // AV_NOPTS_VALUE is i64::MIN: no start time means 0.
        start_pts: if start == i64::MIN { 0 } else { start },
        packet: av::Packet::empty(),
        picture: av::frame::Video::empty(),
        native: layout,
        conversion: Conversion {
            matrix,
            orientation,
        },
        resizer: Resizer::new(Filter::Area),
        scratch: Vec::new(),
        next: 0,
        seeked,
        concealed: 0,
        counts: crate::DecodeCounts::default(),
        pictures: 0,
        last: Position::START,
        last_pts: None,
        draining: false,
        resend: false,
        done: false,
    }))
}

/// Sends the demuxer to the keyframe before a sampling start that is
/// [`SEEK_FROM`] or more into a constant-rate stream with timestamps; `None` when it
/// does not (the frames before the start are then decoded and dropped from the
/// first, as they are after the seek).
fn seek_for_start(
    demuxer: &mut av::format::context::Input,
    opts: &DecodeOptions,
    facts: &StreamFacts,
    time_base: f64,
    start_pts: i64,
) -> Option<Seeked> {
    let start = opts.sampling.start.filter(|s| *s >= SEEK_FROM)?;
    if !facts.constant_rate || facts.info.fps <= 0.0 || time_base <= 0.0 || start_pts == i64::MIN {
        return None;
    }
    // Half a second early: containers index by decoding time, pictures are judged
    // by presentation time.
    let target = start_pts as f64 * time_base + start - 0.5;
    let ts = (target * f64::from(av::ffi::AV_TIME_BASE)) as i64;
    match demuxer.seek(ts, ..ts) {
        Ok(()) => Some(Seeked::Unchecked),
        Err(e) => {
            tracing::debug!(error = %e, "seeking failed; decoding from the beginning");
            None
        }
    }
}

impl LibavSource {
    /// Opens `input` in process, or says why it cannot (the caller then uses the
    /// child process).
    pub fn open(input: &str, opts: &DecodeOptions, pool: &FramePool) -> Result<Self, DecodeError> {
        opts.validate(input)?;
        open(input, opts, pool)?.ok_or_else(|| DecodeError::Unsupported {
            input: input.to_string(),
            what: "decoding this input in process (it goes to the ffmpeg child process)".into(),
        })
    }

    /// The next frame, `None` at the end, or the error that ended the stream.
    pub fn read_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        if self.done {
            return None;
        }
        let step = self.step();
        crate::until_done(&mut self.done, step)
    }

    fn corrupt(&self, detail: String) -> DecodeError {
        DecodeError::Corrupt {
            input: self.input.clone(),
            at: self.last,
            detail,
        }
    }

    /// Decodes until a frame is kept, the stream ends or an error ends it.
    fn step(&mut self) -> Result<Option<Frame>, DecodeError> {
        loop {
            match self.decoder.receive_frame(&mut self.picture) {
                Ok(()) => {
                    let mut index = self.next;
                    let pts = self.seconds(index);
                    if let Some(seeked) = self.seeked {
                        let start = self.sampler.start();
                        if seeked == Seeked::Unchecked && pts > start {
                            // Landed after the start: read from the beginning.
                            self.rewind()?;
                            continue;
                        }
                        self.seeked = Some(Seeked::Checked);
                        // Constant rate: the picture's time says which frame it is.
                        index = (pts * self.info.fps).round().max(0.0) as u64;
                    }
                    self.next = index + 1;
                    self.pictures += 1;
                    self.counts.set_decoded(self.pictures);
                    if self.picture_damaged() {
                        // A picture decoded with errors libav concealed: a decoding
                        // error, as the child's decoder reports one on stderr.
                        self.conceal("the decoder concealed errors in the next picture".into())?;
                    }
                    self.last_pts = Some(pts);
                    match self.sampler.judge(pts) {
                        Verdict::End => return Ok(None),
                        Verdict::Skip => continue,
                        Verdict::Keep => return self.deliver(index, pts).map(Some),
                    }
                }
                Err(av::Error::Eof) => {
                    if self.concealed > 0 {
                        tracing::warn!(
                            input = %self.input,
                            "{} decoding errors were concealed",
                            self.concealed
                        );
                    }
                    return Ok(None);
                }
                Err(av::Error::Other { errno }) if errno == av::util::error::EAGAIN => {
                    self.feed()?;
                }
                Err(e) => self.conceal(format!("the decoder failed: {e}"))?,
            }
        }
    }

    /// Back to the file's first packet, after a seek that went too far.
    fn rewind(&mut self) -> Result<(), DecodeError> {
        tracing::debug!(input = %self.input, "the seek passed the start; decoding from the beginning");
        self.demuxer
            .seek(i64::MIN, ..)
            .map_err(|e| self.corrupt(format!("seeking back to the beginning failed: {e}")))?;
        self.decoder.flush();
        self.seeked = None;
        self.next = 0;
        self.last_pts = None;
        self.resend = false;
        self.draining = false;
        Ok(())
    }

    /// Whether libav marked the picture just received as damaged: decoded with
    /// errors it concealed, or corrupt.
    fn picture_damaged(&self) -> bool {
        // SAFETY: the picture is ours and holds a frame just received.
        let (errors, flags) = unsafe {
            let f = &*self.picture.as_ptr();
            (f.decode_error_flags, f.flags)
        };
        errors != 0 || flags & av::ffi::AV_FRAME_FLAG_CORRUPT != 0
    }

    /// A decoding error: the end of the stream in strict mode or after too many,
    /// else counted and passed over.
    fn conceal(&mut self, detail: String) -> Result<(), DecodeError> {
        self.concealed += 1;
        if self.strict || self.concealed > MAX_CONCEALED {
            return Err(self.corrupt(detail));
        }
        self.counts.add_error();
        tracing::debug!(input = %self.input, error = %detail, "decoding error concealed");
        Ok(())
    }

    /// Gives the decoder the stream's next packet, or the end of the stream.
    fn feed(&mut self) -> Result<(), DecodeError> {
        if self.draining {
            // The decoder asked for more after the end: nothing more will come.
            return Err(self.corrupt("the decoder wants data after the end".into()));
        }
        loop {
            let read = if self.resend {
                Ok(())
            } else {
                // The demuxer fills the packet with a new buffer without letting go
                // of the one it held: without this, every packet read stays in
                // memory (the decoder keeps its own reference to what it was sent).
                // SAFETY: the packet is ours and initialised; unref leaves it empty.
                unsafe { av::ffi::av_packet_unref(self.packet.as_mut_ptr()) };
                self.packet.read(&mut self.demuxer)
            };
            match read {
                Ok(()) => {
                    if self.packet.stream() != self.stream_index {
                        continue;
                    }
                    self.resend = false;
                    return match self.decoder.send_packet(&self.packet) {
                        Ok(()) => Ok(()),
                        Err(av::Error::Other { errno }) if errno == av::util::error::EAGAIN => {
                            // Frames are waiting: the next step takes them first.
                            self.resend = true;
                            Ok(())
                        }
                        Err(e) => self.conceal(format!("the decoder failed: {e}")),
                    };
                }
                Err(av::Error::Eof) => {
                    self.draining = true;
                    return self
                        .decoder
                        .send_eof()
                        .map_err(|e| self.corrupt(format!("the decoder failed at the end: {e}")));
                }
                Err(e) => {
                    return Err(DecodeError::Truncated {
                        input: self.input.clone(),
                        at: self.last,
                        detail: format!("reading the file failed: {e}"),
                    });
                }
            }
        }
    }

    /// The presentation time of the decoded picture, in seconds from the stream's
    /// start; from the frame rate when the stream gives none.
    fn seconds(&self, index: u64) -> f64 {
        match self.picture.timestamp() {
            Some(ts) if self.time_base > 0.0 => (ts - self.start_pts) as f64 * self.time_base,
            _ => match (self.last_pts, self.info.fps > 0.0) {
                (Some(prev), true) => prev + 1.0 / self.info.fps,
                (None, true) => index as f64 / self.info.fps,
                _ => 0.0,
            },
        }
    }

    /// Resizes and converts the decoded picture into a pooled frame.
    fn deliver(&mut self, index: u64, pts: f64) -> Result<Frame, DecodeError> {
        let (pw, ph) = (self.picture.width(), self.picture.height());
        let planes = self.picture.planes();
        let native = self.native.layout.format;
        let expected = native.planes(pw, ph).len();
        if pw == 0 || ph == 0 || planes < expected {
            return Err(self.corrupt(format!(
                "the decoder gave a {pw}x{ph} picture with {planes} planes"
            )));
        }
        // A picture whose format changed mid-stream is not what the probe said.
        // (A full-range stream may be handed out as yuvj420p or as yuv420p flagged
        // full range: the planes are the same.)
        let format = self.picture.format();
        if format != self.native.av && Some(format) != self.native.twin {
            let to = self
                .picture
                .format()
                .descriptor()
                .map_or("none", |d| d.name());
            return Err(DecodeError::Unsupported {
                input: self.input.clone(),
                what: format!("a change of pixel format mid-stream (to {to})"),
            });
        }
        self.scale.poll();
        let size = scaled_size(self.base_size, self.scale.factor());
        let mut buf = frame_buffer(&self.pool, &self.input, self.format, size)?;
        let ops = |e: reel_ops::OpsError| DecodeError::Ops {
            input: self.input.clone(),
            detail: e.to_string(),
        };
        let mut views = [StridedPlane {
            data: &[],
            stride: 0,
        }; 3];
        for (i, view) in views.iter_mut().enumerate().take(expected) {
            // SAFETY: `i` is below the picture's plane count; the pointer is only
            // read for the line size the decoder set.
            let line = unsafe { (*self.picture.as_ptr()).linesize[i] };
            if line <= 0 {
                return Err(self.corrupt(format!("plane {i} has line size {line}")));
            }
            *view = StridedPlane {
                data: self.picture.data(i),
                stride: self.picture.stride(i),
            };
        }
        let views = &views[..expected];
        let turn = self.conversion.orientation;
        if self.format == native && !self.native.full_range && turn.is_identity() {
            self.resizer
                .resize_layout(views, pw, ph, &mut buf, size.0, size.1, self.native.layout)
                .map_err(ops)?;
        } else {
            // Resized in the picture's own orientation, turned as it is converted.
            let (rw, rh) = if turn.transpose {
                (size.1, size.0)
            } else {
                size
            };
            let len = native
                .frame_size(rw, rh)
                .ok_or_else(|| self.corrupt(format!("{rw}x{rh} overflows")))?;
            if self.scratch.len() < len {
                self.scratch.resize(len, 0);
            }
            let scratch = &mut self.scratch[..len];
            self.resizer
                .resize_layout(views, pw, ph, scratch, rw, rh, self.native.layout)
                .map_err(ops)?;
            if self.native.full_range {
                full_to_limited_range(scratch, native, rw, rh).map_err(ops)?;
            }
            convert_to(
                scratch,
                native,
                &mut buf,
                self.format,
                rw,
                rh,
                self.conversion,
            )
            .map_err(ops)?;
        }
        // The source's size as displayed, as the child process reports it.
        let shown = turn.output_size(pw, ph);
        let frame = crate::decoded_frame(&self.input, buf, self.format, size, shown, (index, pts))?;
        self.last = Position::after(index, pts);
        Ok(frame)
    }
}

crate::in_process_source!(LibavSource, input, counts = counts);

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn pixel_formats_are_named_from_libavs_table_and_strangers_are_unknown() {
        let yuv420p = av::ffi::AVPixelFormat::AV_PIX_FMT_YUV420P as i32;
        let nv12 = av::ffi::AVPixelFormat::AV_PIX_FMT_NV12 as i32;
        assert_eq!(pixel_format_name(yuv420p), "yuv420p");
        assert_eq!(pixel_format_name(nv12), "nv12");
        assert_eq!(pixel_format_name(-1), "unknown");
        assert_eq!(pixel_format_name(1_000_000), "unknown");
    }

    #[test]
    fn display_matrices_turn_as_ffmpegs_autorotation_turns() {
        // The display matrix libav sets for `degrees` (the picture is shown turned
        // the other way: ffmpeg's `transpose=clock` for 90), and matrices by hand,
        // each read as ffmpeg's own autorotation reads it.
        let rotated = |degrees: f64| {
            let mut m = [0i32; 9];
            // SAFETY: the function writes the nine integers of the matrix.
            unsafe { av::ffi::av_display_rotation_set(m.as_mut_ptr(), degrees) };
            m
        };
        let u = 1 << 16;
        let w = 1 << 30;
        let turn = |flip_x, flip_y, transpose| Orientation {
            flip_x,
            flip_y,
            transpose,
        };
        for (m, want) in [
            (rotated(0.0), Some(Orientation::IDENTITY)),
            (rotated(90.0), Some(Orientation::CLOCKWISE)),
            (rotated(-90.0), Some(Orientation::COUNTER_CLOCKWISE)),
            (rotated(180.0), Some(Orientation::HALF_TURN)),
            (rotated(45.0), None),
            ([-u, 0, 0, 0, u, 0, 0, 0, w], Some(turn(true, false, false))),
            ([u, 0, 0, 0, -u, 0, 0, 0, w], Some(turn(false, true, false))),
            // transpose=cclock_flip and transpose=clock_flip.
            ([0, u, 0, u, 0, 0, 0, 0, w], Some(turn(false, false, true))),
            ([0, -u, 0, -u, 0, 0, 0, 0, w], Some(turn(true, true, true))),
            ([0; 9], None),
        ] {
            assert_eq!(orientation_of(&m), want, "{m:?}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn libavs_own_messages_go_through_tracing() {
        static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
        struct W;
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                LOG.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        init();
        let sub = tracing_subscriber::fmt()
            .with_writer(|| W)
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(sub, || {
            // SAFETY: a format and its one argument, as av_log takes them.
            unsafe {
                av::ffi::av_log(
                    std::ptr::null_mut(),
                    av::ffi::AV_LOG_ERROR,
                    c"broken packet %d\n".as_ptr(),
                    7 as std::ffi::c_int,
                );
                av::ffi::av_log(
                    std::ptr::null_mut(),
                    av::ffi::AV_LOG_VERBOSE,
                    c"chatter\n".as_ptr(),
                );
            }
        });
        let text = String::from_utf8(LOG.lock().unwrap().clone()).unwrap();
        assert!(text.contains("INFO libav: broken packet 7"), "{text}");
        assert!(!text.contains("chatter"), "{text}");
    }
    use crate::ffmpeg::probe::run_ffprobe;
    use crate::options::FfmpegTools;

    fn make(dir: &std::path::Path, name: &str, args: &[&str]) -> String {
        let path = dir.join(name);
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
            .args(args)
            .arg(&path)
            .output()
            .expect("ffmpeg runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn the_in_process_probe_says_what_ffprobe_says() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let h264 = make(
            d,
            "a.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25:duration=1",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
            ],
        );
        let mut inputs = vec![
            h264.clone(),
            make(
                d,
                "b.avi",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "mandelbrot=size=256x192:rate=25",
                    "-t",
                    "0.5",
                    "-c:v",
                    "mpeg4",
                ],
            ),
            make(
                d,
                "c.mkv",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=size=161x97:rate=30:duration=0.5",
                    "-c:v",
                    "ffv1",
                    "-pix_fmt",
                    "yuv420p",
                ],
            ),
            make(
                d,
                "d.mov",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "smptebars=size=192x108:rate=30000/1001:duration=0.5",
                    "-c:v",
                    "mjpeg",
                ],
            ),
            make(
                d,
                "e.webm",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=size=160x120:rate=24:duration=0.5",
                    "-c:v",
                    "libvpx-vp9",
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                ],
            ),
            make(
                d,
                "f.mkv",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=160x120:rate=30",
                    "-frames:v",
                    "20",
                    "-vf",
                    "settb=1/1000,setpts='(N/30+0.4*(N/30)*(N/30))/TB'",
                    "-fps_mode",
                    "vfr",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                ],
            ),
            make(
                d,
                "g.mp4",
                &["-i", &h264, "-c", "copy", "-metadata:s:v:0", "rotate=90"],
            ),
            // Audio first: the video stream is not stream 0.
            make(
                d,
                "h.mkv",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=duration=0.5",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=size=64x48:rate=10:duration=0.5",
                    "-map",
                    "0:a",
                    "-map",
                    "1:v",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                ],
            ),
        ];
        let vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
        if std::path::Path::new(vtest).is_file() {
            inputs.push(vtest.to_string());
        }
        let limits = Limits::default();
        let tools = FfmpegTools::default();
        for name in &inputs {
            let input = Input::new(name).expect("input");
            let ours = probe_facts(&input, &limits).expect("probed in process");
            let theirs = run_ffprobe(&input, &tools, &limits).expect("ffprobe");
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
            let (a, b) = (&ours.info, &theirs.info);
            assert_eq!(
                (
                    &a.container,
                    &a.codec,
                    &a.pixel_format,
                    a.width,
                    a.height,
                    a.rotation
                ),
                (
                    &b.container,
                    &b.codec,
                    &b.pixel_format,
                    b.width,
                    b.height,
                    b.rotation
                ),
                "{name}"
            );
            assert!(close(a.fps, b.fps), "{name}: fps {} vs {}", a.fps, b.fps);
            assert_eq!(a.frames, b.frames, "{name}");
            assert_eq!(a.variable_frame_rate, b.variable_frame_rate, "{name}");
            assert_eq!(a.bit_rate, b.bit_rate, "{name}");
            match (a.duration_s, b.duration_s) {
                (Some(x), Some(y)) => assert!(close(x, y), "{name}: duration {x} vs {y}"),
                (x, y) => assert_eq!(x, y, "{name}"),
            }
            assert_eq!(ours.stream_index, theirs.stream_index, "{name}");
            assert_eq!(ours.time_base, theirs.time_base, "{name}");
            assert_eq!(ours.start_pts, theirs.start_pts, "{name}");
            assert!(close(ours.start_time, theirs.start_time), "{name}");
            assert!(
                close(ours.format_start_time, theirs.format_start_time),
                "{name}"
            );
            assert_eq!(ours.constant_rate, theirs.constant_rate, "{name}");
        }
    }

    #[test]
    fn what_it_cannot_read_is_left_to_ffprobe() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = dir.path().join("notes.mp4");
        std::fs::write(&text, b"not a video at all").expect("write");
        let input = Input::new(text.to_str().expect("utf-8")).expect("input");
        assert!(probe_facts(&input, &Limits::default()).is_err());
        let audio = make(
            dir.path(),
            "a.wav",
            &["-f", "lavfi", "-i", "sine=duration=0.2"],
        );
        let input = Input::new(&audio).expect("input");
        assert!(probe_facts(&input, &Limits::default()).is_err());
        let tiny = Limits {
            max_side: 100,
            ..Limits::default()
        };
        let big = make(
            dir.path(),
            "big.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=5:duration=0.4",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
            ],
        );
        let input = Input::new(&big).expect("input");
        assert!(probe_facts(&input, &tiny).is_err());
    }
}
