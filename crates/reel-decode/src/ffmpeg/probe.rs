//! `ffprobe -print_format json`: what an input holds.

use std::collections::BTreeMap;
use std::process::Stdio;

use serde::Deserialize;

use super::{Input, tool_error};
use crate::error::DecodeError;
use crate::info::{DecoderInfo, VideoInfo};
use crate::options::{FFPROBE_ENV, FfmpegTools, Limits};

/// What the ffmpeg backend needs to know beyond [`VideoInfo`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamFacts {
    /// The public facts.
    pub info: VideoInfo,
    /// Index of the video stream in the container.
    pub stream_index: usize,
    /// The stream's time base.
    pub time_base: Option<(i64, i64)>,
    /// The stream's first presentation time in its time base.
    pub start_pts: Option<i64>,
    /// The stream's first presentation time in seconds.
    pub start_time: f64,
    /// The container's start time in seconds (what `-ss` is relative to).
    pub format_start_time: f64,
    /// Whether the declared and the average frame rates agree.
    pub constant_rate: bool,
}

#[derive(Debug, Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    format: Option<FormatJson>,
}

#[derive(Debug, Deserialize)]
struct StreamJson {
    index: usize,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    pix_fmt: Option<String>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    time_base: Option<String>,
    start_pts: Option<i64>,
    start_time: Option<String>,
    duration: Option<String>,
    nb_frames: Option<String>,
    bit_rate: Option<String>,
    disposition: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    side_data_list: Vec<SideDataJson>,
}

#[derive(Debug, Deserialize)]
struct SideDataJson {
    rotation: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct FormatJson {
    format_name: Option<String>,
    duration: Option<String>,
    start_time: Option<String>,
    bit_rate: Option<String>,
}

/// Which regular file a remembered probe was of: the file unchanged and the same
/// programs and limits give the same facts.
#[derive(Debug, Clone, PartialEq)]
struct ProbeKey {
    path: std::path::PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
    tools: FfmpegTools,
    limits: Limits,
}

impl ProbeKey {
    fn of(input: &Input, tools: &FfmpegTools, limits: &Limits) -> Option<Self> {
        let path = input.file()?;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            path: path.to_path_buf(),
            len: meta.len(),
            modified: meta.modified().ok(),
            tools: tools.clone(),
            limits: *limits,
        })
    }
}

/// The last successful probe of a regular file. A job usually probes its input to
/// choose the decode size and then opens it, which probes again: remembering one
/// answer saves an ffprobe run (tens of milliseconds) per input.
static LAST_PROBE: std::sync::Mutex<Option<(ProbeKey, StreamFacts)>> = std::sync::Mutex::new(None);

/// The facts of a stream read without probing ([`crate::DecodeOptions::one_connection`]):
/// only the input is known (0 and `unknown` for the rest) until the decoder
/// describes its first frame.
pub(crate) fn unprobed(input: &str) -> StreamFacts {
    let (width, height) = (0, 0);
    StreamFacts {
        info: VideoInfo {
            input: input.to_string(),
            container: None,
            decoder: DecoderInfo::software("ffmpeg", "unknown"),
            codec: "unknown".into(),
            pixel_format: "unknown".into(),
            width,
            height,
            rotation: 0,
            fps: 0.0,
            frames: None,
            duration_s: None,
            variable_frame_rate: false,
            bit_rate: None,
        },
        stream_index: 0,
        time_base: None,
        start_pts: None,
        start_time: 0.0,
        format_start_time: 0.0,
        constant_rate: false,
    }
}

/// Runs ffprobe on `input` and reads its first video stream; a regular file that has
/// not changed since the last probe of it is answered from memory. With the `libav`
/// feature a local file is read in process instead, unless a specific ffprobe is
/// named (ffprobe still answers when that fails, with its own error reports).
pub(crate) fn probe(
    input: &Input,
    tools: &FfmpegTools,
    limits: &Limits,
) -> Result<StreamFacts, DecodeError> {
    let key = ProbeKey::of(input, tools, limits);
    if let Some(key) = &key {
        let last = LAST_PROBE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, facts)) = last.as_ref()
            && k == key
        {
            return Ok(facts.clone());
        }
    }
    // A program named by the caller (or `REEL_FFPROBE`) is honoured.
    let in_process = (tools.ffprobe == std::path::Path::new("ffprobe"))
        .then(|| {
            super::libav::probe_facts(input, limits)
                .inspect_err(|why| tracing::debug!(input = input.name(), why, "asking ffprobe"))
                .ok()
        })
        .flatten();
    let facts = match in_process {
        Some(facts) => facts,
        None => run_ffprobe(input, tools, limits)?,
    };
    if let Some(key) = key {
        *LAST_PROBE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, facts.clone()));
    }
    Ok(facts)
}

pub(crate) fn run_ffprobe(
    input: &Input,
    tools: &FfmpegTools,
    limits: &Limits,
) -> Result<StreamFacts, DecodeError> {
    let mut cmd = crate::child::command(&tools.ffprobe);
    cmd.args(input.network_args(limits))
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-i",
        ])
        .arg(input.ffmpeg_arg())
        .stdin(Stdio::null());
    let output = crate::child::output(cmd)
        .map_err(|e| tool_error(input.name(), &tools.ffprobe, FFPROBE_ENV, e))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(probe_failure(input, stderr.trim(), limits));
    }
    if let Some(cause) = network_failure(input, &stderr) {
        return Err(cause);
    }
    facts_from_report(input.name(), &output.stdout, limits)
}

/// The facts in ffprobe's JSON report (`-print_format json -show_format
/// -show_streams`) on `input`.
pub(crate) fn facts_from_report(
    input: &str,
    report: &[u8],
    limits: &Limits,
) -> Result<StreamFacts, DecodeError> {
    let json: ProbeJson = serde_json::from_slice(report).map_err(|e| DecodeError::NotVideo {
        input: input.to_string(),
        detail: format!("ffprobe's report could not be read: {e}"),
    })?;
    facts_from_json(input, json, limits)
}

/// What ffprobe's JSON report (`-print_format json -show_format -show_streams`)
/// says of `input`: its first video stream, checked against `limits`, exactly as a
/// probe through ffprobe reads it. The report is untrusted text (it echoes the
/// file's tags); this is the entry point for testing its reader on any bytes.
pub fn info_from_ffprobe_json(
    input: &str,
    report: &[u8],
    limits: &Limits,
) -> Result<VideoInfo, DecodeError> {
    facts_from_report(input, report, limits).map(|facts| facts.info)
}

/// The error for a failed probe, from ffprobe's message.
fn probe_failure(input: &Input, stderr: &str, limits: &Limits) -> DecodeError {
    let detail = last_lines(stderr, 3);
    if let Some((w, h)) = invalid_picture_size(stderr) {
        return DecodeError::AbsurdDimensions {
            input: input.name().to_string(),
            width: w,
            height: h,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        };
    }
    if let Some(cause) = network_failure(input, stderr) {
        return cause;
    }
    if stderr.contains("No such file or directory") && !input.is_local_file() {
        return DecodeError::NotFound {
            input: input.name().to_string(),
        };
    }
    DecodeError::NotVideo {
        input: input.name().to_string(),
        detail: if detail.is_empty() {
            "ffprobe failed without a message".into()
        } else {
            detail
        },
    }
}

/// The network's part in a probe of a URL, from ffprobe's messages: a host that
/// is not found, a connection refused, an HTTP error status, or a server that
/// ignores range requests where the file needs them (its index after its data).
fn network_failure(input: &Input, stderr: &str) -> Option<DecodeError> {
    if input.is_local_file() || !input.name().contains("://") {
        return None;
    }
    let http = input.name().starts_with("http://") || input.name().starts_with("https://");
    let cause = if let Some(at) = stderr.find("Failed to resolve hostname ") {
        let rest = &stderr[at + "Failed to resolve hostname ".len()..];
        let line = rest.lines().next().unwrap_or(rest).trim();
        let (host, why) = line.split_once(": ").unwrap_or((line, "not found"));
        format!("host not found: {host} ({why})")
    } else if stderr.contains("Connection refused") {
        "the server refused the connection".to_string()
    } else if let Some(at) = stderr.find("Server returned ") {
        let rest = &stderr[at + "Server returned ".len()..];
        format!(
            "the server answered {}",
            rest.lines().next().unwrap_or(rest).trim()
        )
    } else if http
        && (stderr.contains("partial file") || stderr.contains("Stream ends prematurely"))
    {
        "the file could not be read over HTTP: the server does not support range \
         requests, which this file needs (its index comes after its data), or the file is \
         truncated; serve it with range support, or move the index to the front \
         (ffmpeg's -movflags +faststart)"
            .to_string()
    } else {
        return None;
    };
    Some(DecodeError::Network {
        input: input.name().to_string(),
        cause,
    })
}

/// The size in ffmpeg's "Picture size WxH is invalid" (a header ffmpeg itself
/// refuses).
fn invalid_picture_size(stderr: &str) -> Option<(u64, u64)> {
    let rest = &stderr[stderr.find("Picture size ")? + "Picture size ".len()..];
    let size = rest.split_whitespace().next()?;
    let (w, h) = size.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The last `n` non-empty lines of `text`, joined with "; ", without the input's name
/// where ffmpeg repeats it.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

fn facts_from_json(
    input: &str,
    json: ProbeJson,
    limits: &Limits,
) -> Result<StreamFacts, DecodeError> {
    let stream = json
        .streams
        .iter()
        .find(|s| {
            s.codec_type.as_deref() == Some("video")
                && s.disposition
                    .as_ref()
                    .and_then(|d| d.get("attached_pic"))
                    .copied()
                    .unwrap_or(0)
                    == 0
        })
        .ok_or_else(|| {
            if json.streams.is_empty() {
                DecodeError::NotVideo {
                    input: input.to_string(),
                    detail: "no streams".into(),
                }
            } else {
                DecodeError::NoVideoStream {
                    input: input.to_string(),
                }
            }
        })?;
    let (w, h) = (stream.width.unwrap_or(0), stream.height.unwrap_or(0));
    limits.check(input, w, h)?;
    let format = json.format.as_ref();
    let avg = stream.avg_frame_rate.as_deref().and_then(parse_ratio);
    let declared = stream.r_frame_rate.as_deref().and_then(parse_ratio);
    let (fps, constant_rate) = frame_rate(avg, declared);
    let duration_s = stream
        .duration
        .as_deref()
        .or(format.and_then(|f| f.duration.as_deref()))
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d >= 0.0);
    let rotation = stream
        .side_data_list
        .iter()
        .find_map(|s| s.rotation)
        .or_else(|| {
            stream
                .tags
                .get("rotate")
                .and_then(|r| r.parse::<f64>().ok())
        })
        .map_or(0, normalise_rotation);
    let codec = stream
        .codec_name
        .clone()
        .unwrap_or_else(|| "unknown".into());
    let parse_u64 = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<u64>().ok());
    let info = VideoInfo {
        input: input.to_string(),
        container: format.and_then(|f| f.format_name.clone()),
        decoder: DecoderInfo::software("ffmpeg", codec.clone()),
        codec,
        pixel_format: stream.pix_fmt.clone().unwrap_or_else(|| "unknown".into()),
        // Checked against the limits above, so they fit.
        width: u32::try_from(w).unwrap_or(u32::MAX),
        height: u32::try_from(h).unwrap_or(u32::MAX),
        rotation,
        fps,
        frames: parse_u64(&stream.nb_frames).filter(|n| *n > 0),
        duration_s,
        variable_frame_rate: !constant_rate,
        bit_rate: parse_u64(&stream.bit_rate)
            .or_else(|| format.and_then(|f| parse_u64(&f.bit_rate))),
    };
    let seconds = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<f64>().ok());
    Ok(StreamFacts {
        info,
        stream_index: stream.index,
        time_base: stream.time_base.as_deref().and_then(parse_fraction),
        start_pts: stream.start_pts,
        start_time: seconds(&stream.start_time).unwrap_or(0.0),
        format_start_time: format.and_then(|f| seconds(&f.start_time)).unwrap_or(0.0),
        constant_rate,
    })
}

/// The frame rate from a stream's average and declared rates (the average when
/// known, 0 when neither is), and whether the stream is constant-rate (both known
/// and equal to a thousandth).
pub(crate) fn frame_rate(avg: Option<f64>, declared: Option<f64>) -> (f64, bool) {
    let constant = match (avg, declared) {
        (Some(a), Some(d)) => (a - d).abs() <= 1e-3 * d.max(1.0),
        _ => false,
    };
    (avg.or(declared).unwrap_or(0.0), constant)
}

/// `num/den` as integers (den > 0).
pub(crate) fn parse_fraction(s: &str) -> Option<(i64, i64)> {
    let (n, d) = s.trim().split_once('/')?;
    let (n, d) = (n.trim().parse::<i64>().ok()?, d.trim().parse::<i64>().ok()?);
    (d > 0 && n >= 0).then_some((n, d))
}

/// A positive rate from `num/den` or a decimal; `None` for 0/0 and the like.
fn parse_ratio(s: &str) -> Option<f64> {
    let v = match parse_fraction(s) {
        Some((n, d)) => n as f64 / d as f64,
        None => s.trim().parse::<f64>().ok()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

/// A display-matrix rotation as 0, 90, 180 or 270 degrees counter-clockwise.
pub(crate) fn normalise_rotation(degrees: f64) -> u32 {
    // Rounded to a quarter turn, then into 0..4.
    let quarter = (degrees / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as u32
}

/// Counts the frames of `input` by decoding it with ffprobe (`-count_frames`): exact,
/// and as slow as a decode.
pub fn count_frames(input: &str, tools: &FfmpegTools) -> Result<u64, DecodeError> {
    let inp = Input::new(input)?;
    let mut cmd = crate::child::command(&tools.ffprobe);
    cmd.args(inp.network_args(&Limits::default()))
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
            "-i",
        ])
        .arg(inp.ffmpeg_arg())
        .stdin(Stdio::null());
    let output =
        crate::child::output(cmd).map_err(|e| tool_error(input, &tools.ffprobe, FFPROBE_ENV, e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(probe_failure(
            &inp,
            String::from_utf8_lossy(&output.stderr).trim(),
            &Limits::default(),
        ));
    }
    stdout
        .trim()
        .parse::<u64>()
        .map_err(|_| DecodeError::NoVideoStream {
            input: input.to_string(),
        })
}

/// One stream of a container, of any kind, as `reel probe` lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamEntry {
    /// The stream's index in the container.
    pub index: u32,
    /// `video`, `audio`, `subtitle`, `data` or `attachment`.
    pub kind: String,
    /// The codec's name (`h264`, `aac`, `subrip`, …), when known.
    pub codec: Option<String>,
    /// The language tag, when the container has one.
    pub language: Option<String>,
    /// Audio channels.
    pub channels: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ListJson {
    #[serde(default)]
    streams: Vec<ListedStream>,
}

#[derive(Debug, Deserialize)]
struct ListedStream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    channels: Option<u32>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

/// Every stream of `input`'s container (video, audio, subtitles, …), from ffprobe.
pub fn streams(input: &str, tools: &FfmpegTools) -> Result<Vec<StreamEntry>, DecodeError> {
    let inp = Input::new(input)?;
    let output = std::process::Command::new(&tools.ffprobe)
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_entries",
            "stream=index,codec_type,codec_name,channels:stream_tags=language",
            "-i",
        ])
        .arg(inp.ffmpeg_arg())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| tool_error(input, &tools.ffprobe, FFPROBE_ENV, e))?;
    if !output.status.success() {
        return Err(probe_failure(
            &inp,
            String::from_utf8_lossy(&output.stderr).trim(),
            &Limits::default(),
        ));
    }
    let json: ListJson =
        serde_json::from_slice(&output.stdout).map_err(|e| DecodeError::NotVideo {
            input: input.to_string(),
            detail: format!("ffprobe's report could not be read: {e}"),
        })?;
    Ok(json
        .streams
        .into_iter()
        .map(|s| StreamEntry {
            index: s.index,
            kind: s.codec_type.unwrap_or_else(|| "unknown".into()),
            codec: s.codec_name,
            language: s.tags.get("language").cloned(),
            channels: s.channels,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffprobe 5.1's report for a rotated 320x240 H.264 MP4 (abridged).
    const ROTATED_MP4: &str = r#"{
        "streams": [{
            "index": 0, "codec_name": "h264", "codec_type": "video",
            "width": 320, "height": 240, "pix_fmt": "yuv420p",
            "r_frame_rate": "25/1", "avg_frame_rate": "25/1", "time_base": "1/12800",
            "start_pts": 0, "start_time": "0.000000", "duration": "2.000000",
            "bit_rate": "334604", "nb_frames": "50",
            "disposition": {"default": 1, "attached_pic": 0},
            "tags": {"language": "und", "handler_name": "VideoHandler"},
            "side_data_list": [{"side_data_type": "Display Matrix",
                "displaymatrix": "\n00000000:            0      -65536           0\n",
                "rotation": -90}]
        }],
        "format": {"filename": "rot.mp4", "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
                   "start_time": "0.000000", "duration": "2.000000", "bit_rate": "340000"}
    }"#;

    #[test]
    fn reads_ffprobe_json() {
        let json: ProbeJson = serde_json::from_str(ROTATED_MP4).unwrap();
        let f = facts_from_json("rot.mp4", json, &Limits::default()).unwrap();
        assert_eq!(f.info.codec, "h264");
        assert_eq!((f.info.width, f.info.height), (320, 240));
        assert_eq!(f.info.rotation, 270);
        assert_eq!(f.info.display_size(), (240, 320));
        assert_eq!(f.info.frames, Some(50));
        assert_eq!(f.info.fps, 25.0);
        assert_eq!(f.info.duration_s, Some(2.0));
        assert!(!f.info.variable_frame_rate);
        assert_eq!(f.time_base, Some((1, 12800)));
        assert_eq!(f.info.container.as_deref(), Some("mov,mp4,m4a,3gp,3g2,mj2"));
    }

    #[test]
    fn audio_only_and_absurd_sizes_are_refused() {
        let audio =
            r#"{"streams":[{"index":0,"codec_type":"audio","codec_name":"mp3"}],"format":{}}"#;
        let json: ProbeJson = serde_json::from_str(audio).unwrap();
        assert!(matches!(
            facts_from_json("a.mp3", json, &Limits::default()),
            Err(DecodeError::NoVideoStream { .. })
        ));
        let huge =
            r#"{"streams":[{"index":0,"codec_type":"video","width":100000,"height":100000}]}"#;
        let json: ProbeJson = serde_json::from_str(huge).unwrap();
        assert!(matches!(
            facts_from_json("h.mkv", json, &Limits::default()),
            Err(DecodeError::AbsurdDimensions { .. })
        ));
    }

    #[test]
    fn ffmpegs_own_size_refusal_is_recognised() {
        let said = "[IMGUTILS @ 0x7ffee7eeafe0] Picture size 100000x100000 is invalid\nhuge.y4m: Device or resource busy";
        assert_eq!(invalid_picture_size(said), Some((100_000, 100_000)));
        assert_eq!(invalid_picture_size("moov atom not found"), None);
    }

    #[test]
    fn rates_and_rotations() {
        assert_eq!(
            parse_ratio("30000/1001").map(|r| (r * 1000.0).round()),
            Some(29970.0)
        );
        assert_eq!(parse_ratio("0/0"), None);
        assert_eq!(parse_fraction("1/90000"), Some((1, 90000)));
        assert_eq!(normalise_rotation(-90.0), 270);
        assert_eq!(normalise_rotation(90.0), 90);
        assert_eq!(normalise_rotation(180.0), 180);
        assert_eq!(normalise_rotation(-180.0), 180);
        assert_eq!(normalise_rotation(0.0), 0);
    }
}
