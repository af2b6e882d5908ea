//! Encoding through an `ffmpeg` child process: raw frames in on a pipe, H.264 out.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use reel_frame::{Frame, PixelFormat};
use reel_sched::{Sink, StageError};

use super::log::{Log, spawn_reader};
use super::{env_for, tool_error};
use crate::error::DecodeError;
use crate::hw;
use crate::options::{FfmpegTools, HwAccel};
use crate::shape::Shaper;

/// How an [`FfmpegEncoder`] encodes.
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    /// Width of the frames it is given.
    pub width: u32,
    /// Height of the frames it is given.
    pub height: u32,
    /// Pixel format of the frames it is given.
    pub format: PixelFormat,
    /// Frame rate of the output (frames are written at a constant rate).
    pub fps: f64,
    /// Hardware encoding: `Auto` uses the machine's H.264 encoder when it has one,
    /// `None` always libx264, a specific method that method's encoder. A hardware
    /// encoder that fails its trial falls back to libx264 with a warning.
    pub hwaccel: HwAccel,
    /// libx264's constant rate factor (0 lossless … 51 worst; 23 is its default).
    pub crf: u8,
    /// libx264's preset (`ultrafast` … `veryslow`).
    pub preset: String,
    /// The `ffmpeg` program.
    pub tools: FfmpegTools,
}

impl EncoderOptions {
    /// Options for `width` x `height` RGB24 frames at `fps`, hardware when present,
    /// libx264 `veryfast` at CRF 23 otherwise.
    pub fn new(width: u32, height: u32, fps: f64) -> Self {
        Self {
            width,
            height,
            format: PixelFormat::Rgb24,
            fps,
            hwaccel: HwAccel::Auto,
            crf: 23,
            preset: "veryfast".into(),
            tools: FfmpegTools::from_env(),
        }
    }
}

/// Writes frames to an H.264 file through ffmpeg. Implements [`Sink`].
///
/// The ffmpeg process is killed and reaped if the encoder is dropped unfinished
/// (the file is then incomplete).
pub struct FfmpegEncoder {
    output: PathBuf,
    opts: EncoderOptions,
    encoder: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<Log>,
    reader: Option<JoinHandle<()>>,
    frames: u64,
    finished: bool,
    shaper: Shaper,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for FfmpegEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfmpegEncoder")
            .field("output", &self.output)
            .field("encoder", &self.encoder)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl FfmpegEncoder {
    /// Starts encoding into `output` (overwritten if it exists; the container
    /// follows the extension).
    pub fn create(output: impl AsRef<Path>, opts: EncoderOptions) -> Result<Self, DecodeError> {
        let output = output.as_ref().to_path_buf();
        let name = output.display().to_string();
        if opts.width == 0
            || opts.height == 0
            || opts.format.frame_size(opts.width, opts.height).is_none()
        {
            return Err(DecodeError::InvalidOptions {
                input: name,
                reason: format!("{}x{} is not a frame size", opts.width, opts.height),
            });
        }
        if !(opts.fps.is_finite() && opts.fps > 0.0) {
            return Err(DecodeError::InvalidOptions {
                input: name,
                reason: format!("frame rate {} is not a positive number", opts.fps),
            });
        }
        let hardware = pick_hardware(&opts);
        let encoder = match hardware {
            Some((enc, device)) if trial(&opts, &enc, device.as_deref()) => {
                Self::start(output.clone(), &opts, &enc, device.as_deref())
            }
            Some((enc, _)) => {
                tracing::warn!(
                    output = %name,
                    "hardware encoder {enc} did not start; encoding with libx264"
                );
                Self::start(output.clone(), &opts, "libx264", None)
            }
            None => Self::start(output.clone(), &opts, "libx264", None),
        }?;
        Ok(encoder)
    }

    fn start(
        output: PathBuf,
        opts: &EncoderOptions,
        encoder: &str,
        device: Option<&str>,
    ) -> Result<Self, DecodeError> {
        let mut cmd = encode_command(opts, encoder, device);
        cmd.arg("-y")
            .arg(&output)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let name = output.display().to_string();
        let mut child = cmd.spawn().map_err(|e| {
            tool_error(
                &name,
                &opts.tools.ffmpeg,
                env_for(&opts.tools, &opts.tools.ffmpeg),
                e,
            )
        })?;
        let stdin = child.stdin.take();
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DecodeError::Encode {
                output: name,
                detail: "ffmpeg's stderr could not be read".into(),
            });
        };
        let (log, reader) = match spawn_reader(stderr, false) {
            Ok(r) => r,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DecodeError::Encode {
                    output: name,
                    detail: format!("cannot start the thread that reads ffmpeg's messages: {e}"),
                });
            }
        };
        Ok(Self {
            output,
            opts: opts.clone(),
            encoder: encoder.to_string(),
            child,
            stdin,
            log,
            reader: Some(reader),
            frames: 0,
            finished: false,
            shaper: Shaper::new(),
            scratch: Vec::new(),
        })
    }

    /// The ffmpeg encoder in use (`libx264`, `h264_nvenc`, …).
    pub fn encoder(&self) -> &str {
        &self.encoder
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The process id of the ffmpeg encoding.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one frame. A frame of another size or format than the encoder was
    /// created with (a live stream whose decode scale changed) is first resized and
    /// converted to it, into a scratch buffer kept between frames.
    pub fn write(&mut self, frame: &Frame) -> Result<(), DecodeError> {
        let o = &self.opts;
        let target = (o.width, o.height);
        let data: &[u8] =
            if (frame.width(), frame.height(), frame.format()) == (o.width, o.height, o.format) {
                frame.data()
            } else {
                let len = o.format.frame_size(o.width, o.height).unwrap_or(0);
                self.scratch.resize(len, 0);
                let shaped = self.shaper.shape(
                    frame.data(),
                    frame.format(),
                    (frame.width(), frame.height()),
                    &mut self.scratch,
                    o.format,
                    target,
                );
                if let Err(e) = shaped {
                    return Err(DecodeError::Encode {
                        output: self.output.display().to_string(),
                        detail: format!(
                            "frame {} ({}x{} {}) cannot be brought to {}x{} {}: {e}",
                            frame.index,
                            frame.width(),
                            frame.height(),
                            frame.format(),
                            o.width,
                            o.height,
                            o.format
                        ),
                    });
                }
                &self.scratch
            };
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.failure("the encoder is finished".into()));
        };
        if let Err(e) = stdin.write_all(data) {
            return Err(self.failure(format!("writing frame {}: {e}", frame.index)));
        }
        self.frames += 1;
        Ok(())
    }

    /// Closes the input and waits for ffmpeg to write the file.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        drop(self.stdin.take());
        let status = self.child.wait();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(self.failure(match s.signal() {
                Some(sig) => format!("ffmpeg was killed by signal {sig}"),
                None => format!("ffmpeg failed ({s})"),
            })),
            Err(e) => Err(self.failure(format!("waiting for ffmpeg: {e}"))),
        }
    }

    /// An encode error with what ffmpeg said.
    fn failure(&mut self, what: String) -> DecodeError {
        if !self.finished {
            // Let ffmpeg finish saying why before reading its messages.
            drop(self.stdin.take());
            let _ = self.child.wait();
            if let Some(h) = self.reader.take() {
                let _ = h.join();
            }
        }
        let said = self.log.with(|s| s.explanation());
        DecodeError::Encode {
            output: self.output.display().to_string(),
            detail: if said.is_empty() {
                what
            } else {
                format!("{what}: {said}")
            },
        }
    }
}

impl Drop for FfmpegEncoder {
    fn drop(&mut self) {
        if !self.finished {
            drop(self.stdin.take());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

impl Sink for FfmpegEncoder {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        self.write(&frame).map_err(StageError::fatal)
    }

    fn finish(&mut self) -> Result<(), StageError> {
        FfmpegEncoder::finish(self).map_err(StageError::fatal)
    }
}

/// The hardware encoder the options call for, with its device, if the machine has
/// one.
fn pick_hardware(opts: &EncoderOptions) -> Option<(String, Option<String>)> {
    let api = match opts.hwaccel {
        HwAccel::None => return None,
        HwAccel::Auto => None,
        HwAccel::Cuda => Some("nvenc"),
        HwAccel::Vaapi => Some("vaapi"),
        HwAccel::Qsv => Some("qsv"),
        HwAccel::VideoToolbox => Some("videotoolbox"),
    };
    let report = hw::cached(&opts.tools);
    match api {
        None => report.h264_encoder().map(|e| {
            let device = (e.api == "vaapi")
                .then(|| report.device_for(HwAccel::Vaapi))
                .flatten();
            (e.name.clone(), device)
        }),
        // Asked for by name: tried even when no device was seen, so that the
        // fallback is the one path for every failure.
        Some(api) => Some((
            format!("h264_{api}"),
            (api == "vaapi")
                .then(|| report.device_for(HwAccel::Vaapi))
                .flatten(),
        )),
    }
}

/// The ffmpeg command that encodes raw frames from stdin (without the output).
fn encode_command(opts: &EncoderOptions, encoder: &str, device: Option<&str>) -> Command {
    let mut cmd = crate::child::command(&opts.tools.ffmpeg);
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "repeat+level+warning",
    ]);
    if let (true, Some(d)) = (encoder.ends_with("_vaapi"), device) {
        cmd.args(["-vaapi_device", d]);
    }
    cmd.args(["-f", "rawvideo", "-pix_fmt", opts.format.name()])
        .args(["-s", &format!("{}x{}", opts.width, opts.height)])
        .args(["-framerate", &format!("{}", opts.fps)])
        .args(["-i", "pipe:0"]);
    let odd = opts.width % 2 == 1 || opts.height % 2 == 1;
    let mut filters = Vec::new();
    if odd {
        // 4:2:0 needs even sides: pad by one pixel where needed.
        filters.push("pad=ceil(iw/2)*2:ceil(ih/2)*2".to_string());
    }
    if encoder.ends_with("_vaapi") {
        filters.push("format=nv12,hwupload".to_string());
    }
    if !filters.is_empty() {
        cmd.args(["-vf", &filters.join(",")]);
    }
    cmd.args(["-c:v", encoder]);
    if encoder == "libx264" {
        cmd.args(["-preset", &opts.preset])
            .args(["-crf", &opts.crf.to_string()]);
    }
    if !encoder.ends_with("_vaapi") {
        cmd.args(["-pix_fmt", "yuv420p"]);
    }
    cmd.args(["-movflags", "+faststart"]);
    cmd
}

/// Whether `encoder` starts: a tenth of a second of a test pattern, thrown away.
fn trial(opts: &EncoderOptions, encoder: &str, device: Option<&str>) -> bool {
    let mut cmd = crate::child::command(&opts.tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"]);
    if let (true, Some(d)) = (encoder.ends_with("_vaapi"), device) {
        cmd.args(["-vaapi_device", d]);
    }
    cmd.args([
        "-f",
        "lavfi",
        "-i",
        &format!(
            "testsrc2=size={}x{}:rate=10:duration=0.1",
            opts.width.max(64) / 2 * 2,
            opts.height.max(64) / 2 * 2
        ),
    ]);
    if encoder.ends_with("_vaapi") {
        cmd.args(["-vf", "format=nv12,hwupload"]);
    }
    cmd.args(["-c:v", encoder, "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}
