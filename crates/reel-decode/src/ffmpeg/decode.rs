//! Decoding through an `ffmpeg` child process.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use reel_frame::Frame;
use reel_pool::FramePool;
use reel_sched::{BoxError, Source};

use super::log::{Event, Log, spawn_reader};
use super::probe::{StreamFacts, probe, unprobed};
use super::{Input, env_for, tool_error};
use crate::VideoSource;
use crate::error::{DecodeError, Position};
use crate::frame_buffer;
use crate::hw;
use crate::info::{DecoderInfo, VideoInfo};
use crate::options::{DecodeOptions, HwAccel, Sampling};
use crate::sampling::{ScaleControl, fps_cell, scaled_size};

/// Seeking to a start time is worth it from this far in (seconds).
const SEEK_FROM: f64 = 2.0;
/// How far before the wanted time a seek aims, so that it lands on a keyframe before it.
const SEEK_MARGIN: f64 = 1.0;
/// After a decoding error in strict mode, how many more frames to let ffmpeg decode
/// (and throw away) to tell a stream that simply ends (truncated) from one that goes
/// on (corrupt).
const DRAIN_FRAMES: u32 = 48;
/// Decoded frames remembered while waiting for the one ffmpeg selects.
const PENDING_CAP: usize = 1024;

/// Messages that mean the data stops early.
const TRUNCATION: [&str; 6] = [
    "partial file",
    "ended prematurely",
    "truncat",
    "end of file",
    "unexpected eof",
    "premature end",
];

/// Messages that mean a hardware decoder gave up and ffmpeg went on in software.
const HW_GAVE_UP: [&str; 4] = [
    "hwaccel initialisation returned error",
    "Failed setup for format",
    "Failed to get HW surface format",
    "No device available for decoder",
];

/// The last frame delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Delivered {
    index: u64,
    /// Seconds from the stream's start.
    pts: f64,
    /// The raw timestamp and its time base, when ffmpeg gave one.
    raw: Option<(i64, (i64, i64))>,
}

/// How a run's frame numbers map to source indices.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Anchor {
    /// `index = base + n`.
    Base(u64),
    /// Resuming after `after`: frames up to it are skipped, the next is
    /// `after.index + 1`.
    Resume { after: Delivered, saw_earlier: bool },
    /// Started by seeking into a constant-rate stream: the index follows from the
    /// first frame's time.
    FromTime,
}

/// One ffmpeg process.
struct Run {
    child: Child,
    stdout: ChildStdout,
    log: Arc<Log>,
    reader: Option<JoinHandle<()>>,
    size: (u32, u32),
    frame_len: usize,
    hw: Option<HwAccel>,
    anchor: Anchor,
    pre_tb: Option<(i64, i64)>,
    post_tb: Option<(i64, i64)>,
    /// Decoded frames not yet matched with a written one: (index, raw pts).
    pending: VecDeque<(u64, Option<i64>)>,
    posts: u64,
    /// Errors that count (not those of a resumed run's warm-up).
    faults: u64,
}

impl Run {
    /// Kills the process (if still running) and reaps it.
    fn stop(&mut self) -> Option<ExitStatus> {
        let status = crate::child::kill(&mut self.child).ok();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        status
    }

    /// Waits for the process to end on its own and reaps it.
    fn wait(&mut self) -> Option<ExitStatus> {
        let status = crate::child::reap(&mut self.child).ok();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        status
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.reader.is_some() {
            self.stop();
        }
    }
}

/// A video decoded by an `ffmpeg` child process.
///
/// The child is killed and reaped when the source is dropped. Its stderr becomes the
/// error message when it fails.
pub struct FfmpegSource {
    input: Input,
    info: VideoInfo,
    facts: StreamFacts,
    opts: DecodeOptions,
    pool: FramePool,
    base_size: (u32, u32),
    scale: ScaleControl,
    hw: Option<(HwAccel, Option<String>)>,
    run: Option<Run>,
    /// Where the next run starts: after this frame.
    resume: Option<Delivered>,
    last: Option<Delivered>,
    /// One past the highest index decoded so far.
    decoded: u64,
    /// Index of the first frame at or after the sampling start.
    first_in_range: Option<u64>,
    counts: crate::DecodeCounts,
    done: bool,
    /// Whether ffprobe described the stream; `false`: one connection, and the
    /// facts come from the decoder's messages (see [`DecodeOptions::one_connection`]).
    probed: bool,
}

impl std::fmt::Debug for FfmpegSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfmpegSource")
            .field("input", &self.input.name())
            .field("decoder", &self.info.decoder)
            .field("pid", &self.process_id())
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl FfmpegSource {
    /// Probes `input` with ffprobe and prepares to decode it; ffmpeg starts with the
    /// first frame asked for. A network stream with
    /// [`DecodeOptions::one_connection`] is not probed: its facts are learnt from
    /// the decoder's messages as its first frame comes.
    pub fn open(input: &str, opts: &DecodeOptions, pool: &FramePool) -> Result<Self, DecodeError> {
        opts.validate(input)?;
        let inp = Input::new(input)?;
        let probed = !opts.one_connection || inp.is_local_file();
        let facts = if probed {
            probe(&inp, &opts.tools, &opts.limits)?
        } else {
            unprobed(input)
        };
        let base_size = opts.size.unwrap_or(facts.info.display_size());
        if probed || opts.size.is_some() {
            opts.limits
                .check(input, u64::from(base_size.0), u64::from(base_size.1))?;
        }
        let hw = match opts.hwaccel {
            HwAccel::None => None,
            HwAccel::Auto => hw::auto_choice(&opts.tools),
            other => Some((other, hw::cached(&opts.tools).device_for(other))),
        };
        Ok(Self {
            input: inp,
            info: facts.info.clone(),
            facts,
            opts: opts.clone(),
            pool: pool.clone(),
            base_size,
            scale: ScaleControl::new(opts.scale.clone()),
            hw,
            run: None,
            resume: None,
            last: None,
            decoded: 0,
            first_in_range: None,
            counts: crate::DecodeCounts::default(),
            done: false,
            probed,
        })
    }

    /// An unprobed stream's first frame came out as `size`: the facts its
    /// decoder reported replace the unknowns, and the size is checked against the
    /// limits before any of it is read.
    fn learn(&mut self, size: (u32, u32)) -> Result<(), DecodeError> {
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        self.opts
            .limits
            .check(self.input.name(), u64::from(size.0), u64::from(size.1))?;
        let frame_len = self.opts.format.frame_size(size.0, size.1).ok_or_else(|| {
            DecodeError::AbsurdDimensions {
                input: self.input.name().to_string(),
                width: u64::from(size.0),
                height: u64::from(size.1),
                max_side: self.opts.limits.max_side,
                max_pixels: self.opts.limits.max_pixels,
            }
        })?;
        if run.frame_len == 0 {
            run.size = size;
            run.frame_len = frame_len;
        }
        let (decoded, rate, codec) = run
            .log
            .with(|s| (s.pre_size, s.pre_frame_rate, s.video_codec.clone()));
        if self.info.width == 0 {
            (self.info.width, self.info.height) = decoded.unwrap_or(size);
        }
        if self.base_size == (0, 0) {
            self.base_size = size;
        }
        if let Some((n, d)) = rate
            && self.info.fps <= 0.0
        {
            self.info.fps = n as f64 / d as f64;
        }
        if let Some(codec) = codec {
            self.info.codec = codec;
        }
        tracing::debug!(input = %self.input.name(), ?size, fps = self.info.fps, codec = %self.info.codec, "stream described by its decoder");
        Ok(())
    }

    /// The process id of the running ffmpeg, if one is running.
    pub fn pid(&self) -> Option<u32> {
        self.run.as_ref().map(|r| r.child.id())
    }

    /// The next frame, `None` at the end, or the error that ended the stream.
    pub fn read_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.finish();
                None
            }
            Err(e) => {
                self.finish();
                Some(Err(e))
            }
        }
    }

    fn finish(&mut self) {
        self.done = true;
        if let Some(mut run) = self.run.take() {
            run.stop();
        }
    }

    fn position(&self) -> Position {
        self.last
            .map_or(Position::START, |d| Position::after(d.index, d.pts))
    }

    fn name(&self) -> String {
        self.input.name().to_string()
    }

    fn step(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.scale.poll().is_some() && self.input.is_local_file() && self.run.is_some() {
            // A new size: restart ffmpeg after the last frame delivered.
            if let Some(mut run) = self.run.take() {
                run.stop();
            }
            self.resume = self.last;
            tracing::debug!(input = %self.input.name(), scale = self.scale.factor(), "decode scale changed; restarting ffmpeg");
        }
        loop {
            if self.run.is_none() {
                self.run = Some(self.spawn()?);
            }
            let Some(run) = self.run.as_mut() else {
                return Ok(None);
            };
            match run.log.next_event() {
                Some(Event::Pre { n, pts }) => {
                    if self.on_decoded(n, pts) {
                        return Ok(None);
                    }
                }
                Some(Event::Post { pts }) => return self.on_written(pts).map(Some),
                Some(Event::Fault) => {
                    let warming = matches!(run.anchor, Anchor::Resume { .. });
                    let hw_start = run.hw.is_some() && run.posts == 0;
                    if warming || hw_start {
                        continue;
                    }
                    run.faults += 1;
                    if self.opts.strict {
                        return Err(self.after_fault());
                    }
                    self.counts.add_error();
                }
                None => match self.end_of_run()? {
                    true => continue,
                    false => return Ok(None),
                },
            }
        }
    }

    /// The seconds from the stream's start of a raw timestamp in `tb`.
    fn seconds(&self, raw: i64, tb: (i64, i64)) -> f64 {
        let (num, den) = (tb.0 as f64, tb.1 as f64);
        match (self.facts.time_base, self.facts.start_pts) {
            (Some(stream_tb), Some(start)) if stream_tb == tb => {
                raw.saturating_sub(start) as f64 * num / den
            }
            _ => raw as f64 * num / den - self.facts.start_time,
        }
    }

    /// A decoded frame was reported. Returns true when the sampling's end is reached.
    fn on_decoded(&mut self, n: u64, pts: Option<i64>) -> bool {
        let Some(run) = self.run.as_mut() else {
            return true;
        };
        if run.pre_tb.is_none() {
            run.pre_tb = run.log.with(|s| s.pre_time_base);
        }
        let tb = run.pre_tb;
        let secs = match (pts, tb) {
            (Some(p), Some(tb)) => Some(self.seconds(p, tb)),
            _ => None,
        };
        let Some(run) = self.run.as_mut() else {
            return true;
        };
        let index = match run.anchor {
            Anchor::Base(base) => base + n,
            Anchor::Resume { after, saw_earlier } => {
                let earlier = match (pts, after.raw, secs) {
                    (Some(p), Some((raw, atb)), _) if Some(atb) == tb => p <= raw,
                    (_, _, Some(s)) => s <= after.pts + 1e-9,
                    _ => false,
                };
                if earlier {
                    run.anchor = Anchor::Resume {
                        after,
                        saw_earlier: true,
                    };
                    return false;
                }
                if !saw_earlier {
                    tracing::warn!(
                        input = %self.input.name(),
                        "ffmpeg resumed past frame {}; frame indices may skip",
                        after.index
                    );
                }
                run.anchor = Anchor::Base((after.index + 1).saturating_sub(n));
                after.index + 1
            }
            Anchor::FromTime => {
                let fps = self.info.fps;
                // Rounded to the nearest frame of a constant-rate stream.
                let index = secs.map_or(0, |s| (s * fps).round().max(0.0) as u64);
                run.anchor = Anchor::Base(index.saturating_sub(n));
                index
            }
        };
        if let Some(end) = self.opts.sampling.end
            && secs.is_some_and(|s| s >= end - 1e-9)
        {
            return true;
        }
        if self.first_in_range.is_none()
            && secs.is_none_or(|s| s >= self.opts.sampling.start.unwrap_or(0.0) - 1e-9)
        {
            self.first_in_range = Some(index);
        }
        self.decoded = self.decoded.max(index + 1);
        self.counts.set_decoded(self.decoded);
        if run.pending.len() == PENDING_CAP {
            run.pending.pop_front();
        }
        run.pending.push_back((index, pts));
        false
    }

    /// A frame was written: match it with its decoded report, read it into a buffer.
    fn on_written(&mut self, pts: Option<i64>) -> Result<Frame, DecodeError> {
        let fps = self.info.fps;
        let last = self.last;
        let display = self.info.display_size();
        let Some(run) = self.run.as_mut() else {
            return Err(DecodeError::Ffmpeg {
                input: self.input.name().to_string(),
                status: "not running".into(),
                at: Position::START,
                stderr: String::new(),
            });
        };
        if run.post_tb.is_none() {
            run.post_tb = run.log.with(|s| s.post_time_base);
        }
        // The written frame's timestamp in the time base of the decoded reports
        // (the same in practice: conversion and scaling keep the time base).
        let pts = match (pts, run.post_tb, run.pre_tb) {
            (Some(p), Some(post), Some(pre)) if post != pre => {
                let secs = p as f64 * post.0 as f64 / post.1 as f64;
                // Rounded to the nearest tick of the other time base.
                Some((secs * pre.1 as f64 / pre.0.max(1) as f64).round() as i64)
            }
            _ => pts,
        };
        // The decoded frame with this timestamp (the latest one, in practice).
        let mut matched = None;
        while let Some((index, raw)) = run.pending.pop_front() {
            let hit = pts.is_none() || raw == pts;
            matched = Some((index, raw));
            if hit {
                break;
            }
        }
        let index = match matched {
            Some((i, _)) => i,
            None => last.map_or(0, |d| d.index + 1),
        };
        let tb = run.pre_tb;
        let raw = pts.zip(tb);
        let first_of_run = run.posts == 0;
        if !self.probed && (run.frame_len == 0 || self.info.width == 0) {
            match run.log.with(|s| s.post_size) {
                Some(size) => self.learn(size)?,
                None => {
                    return Err(DecodeError::Network {
                        input: self.name(),
                        cause: "ffmpeg did not report the size of the frames it writes".into(),
                    });
                }
            }
        }
        let display = if self.probed {
            display
        } else {
            self.info.display_size()
        };
        let Some(run) = self.run.as_mut() else {
            return Err(self.broken_output(io::ErrorKind::BrokenPipe.into()));
        };
        let size = run.size;
        let frame_len = run.frame_len;
        let mut buf = frame_buffer(&self.pool, self.input.name(), self.opts.format, size)?;
        let read = run.stdout.read_exact(&mut buf[..frame_len]);
        if let Err(e) = read {
            return Err(self.broken_output(e));
        }
        let pts_s = match raw {
            Some((p, tb)) => self.seconds(p, tb),
            None => last.map_or(0.0, |d| d.pts + if fps > 0.0 { 1.0 / fps } else { 0.0 }),
        };
        let Some(run) = self.run.as_mut() else {
            return Err(self.broken_output(io::ErrorKind::BrokenPipe.into()));
        };
        run.posts += 1;
        if first_of_run {
            self.note_decoder();
        }
        let mut frame =
            Frame::new(buf, self.opts.format, size.0, size.1, index, pts_s).map_err(|source| {
                DecodeError::Frame {
                    input: self.name(),
                    source,
                }
            })?;
        frame.meta.captured_at = Some(Instant::now());
        if size != display {
            frame.meta.source_size = Some(display);
        }
        self.last = Some(Delivered {
            index,
            pts: pts_s,
            raw,
        });
        Ok(frame)
    }

    /// Records which decoder the current run really uses.
    fn note_decoder(&mut self) {
        let Some(run) = self.run.as_ref() else { return };
        let mut hw = run.hw;
        if hw.is_some()
            && run.log.with(|s| {
                s.tail
                    .iter()
                    .any(|l| HW_GAVE_UP.iter().any(|p| l.contains(p)))
            })
        {
            tracing::warn!(
                input = %self.input.name(),
                "hardware decoding ({}) did not start; ffmpeg decodes in software",
                hw.map_or("", HwAccel::name)
            );
            hw = None;
        }
        self.info.decoder = DecoderInfo {
            backend: "ffmpeg",
            name: match hw {
                Some(h) => format!("{} ({})", self.info.codec, h.name()),
                None => self.info.codec.clone(),
            },
            hwaccel: hw,
        };
    }

    /// Reading a frame failed: ffmpeg died or was killed while writing it.
    fn broken_output(&mut self, e: io::Error) -> DecodeError {
        let at = self.position();
        let input = self.name();
        let Some(mut run) = self.run.take() else {
            return DecodeError::Io {
                input,
                context: "reading a frame from ffmpeg",
                source: e,
            };
        };
        let status = run.stop();
        if let Some(signal) = status.and_then(|s| s.signal()) {
            return DecodeError::Killed { input, signal, at };
        }
        let stderr = run.log.with(|s| s.explanation());
        DecodeError::Ffmpeg {
            input,
            status: status.map_or_else(|| "unknown status".into(), |s| s.to_string()),
            at,
            stderr: if stderr.is_empty() {
                format!("the frame pipe broke: {e}")
            } else {
                stderr
            },
        }
    }

    /// Strict mode met a decoding error: no more frames are delivered. Lets ffmpeg
    /// go on a little, throwing frames away, to see whether the stream simply ends
    /// there (a truncated file) or goes on (corrupt data), then stops it.
    fn after_fault(&mut self) -> DecodeError {
        let at = self.position();
        let Some(mut run) = self.run.take() else {
            return self.corrupt(at, &[], false);
        };
        let mut budget = DRAIN_FRAMES;
        let mut exited = false;
        while budget > 0 {
            match run.log.next_event() {
                None => {
                    exited = true;
                    break;
                }
                Some(Event::Pre { .. }) => budget -= 1,
                Some(Event::Post { .. }) => {
                    let len = run.frame_len as u64;
                    let copied = io::copy(&mut (&mut run.stdout).take(len), &mut io::sink());
                    if copied.map_or(true, |c| c < len) {
                        budget = 0;
                    }
                }
                Some(Event::Fault) => {}
            }
        }
        if exited {
            run.wait();
        } else {
            run.stop();
        }
        let errors = run.log.with(|s| s.errors.clone());
        // The frames decoded (counting those thrown away) fall short of what the
        // container announced.
        let short = exited
            && self.opts.sampling.end.is_none()
            && self
                .info
                .frames
                .is_some_and(|n| self.decoded_total(&run) < n);
        self.corrupt(at, &errors, short)
    }

    /// Frames decoded in all runs, including one being drained.
    fn decoded_total(&self, run: &Run) -> u64 {
        let pending_max = run.pending.back().map_or(0, |(i, _)| i + 1);
        self.decoded.max(pending_max)
    }

    /// A `Truncated` or `Corrupt` error from ffmpeg's error messages.
    fn corrupt(&self, at: Position, errors: &[String], short: bool) -> DecodeError {
        let detail = errors
            .iter()
            .take(3)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ");
        let truncated = short
            || errors.iter().any(|e| {
                let lower = e.to_ascii_lowercase();
                TRUNCATION.iter().any(|p| lower.contains(p))
            });
        if truncated {
            DecodeError::Truncated {
                input: self.name(),
                at,
                detail,
            }
        } else {
            DecodeError::Corrupt {
                input: self.name(),
                at,
                detail: if detail.is_empty() {
                    "the decoder reported an error".into()
                } else {
                    detail
                },
            }
        }
    }

    /// ffmpeg closed stderr: it has ended. Returns `Ok(true)` to go on with a new run
    /// (hardware fallback), `Ok(false)` at a clean end.
    fn end_of_run(&mut self) -> Result<bool, DecodeError> {
        let at = self.position();
        let Some(mut run) = self.run.take() else {
            return Ok(false);
        };
        let status = run.wait();
        let (errors, explanation) = run.log.with(|s| (s.errors.clone(), s.explanation()));
        let ok = status.is_some_and(|s| s.success());
        if !ok && run.posts == 0 && run.hw.is_some() {
            tracing::warn!(
                input = %self.input.name(),
                "hardware decoding ({}) failed to start ({explanation}); falling back to software",
                run.hw.map_or("", HwAccel::name),
            );
            self.hw = None;
            self.resume = self.last;
            return Ok(true);
        }
        if let Some(signal) = status.and_then(|s| s.signal()) {
            return Err(DecodeError::Killed {
                input: self.name(),
                signal,
                at,
            });
        }
        if !ok {
            if errors.is_empty() {
                return Err(DecodeError::Ffmpeg {
                    input: self.name(),
                    status: status.map_or_else(|| "unknown status".into(), |s| s.to_string()),
                    at,
                    stderr: explanation,
                });
            }
            return Err(self.corrupt(at, &errors, false));
        }
        if run.faults > 0 {
            let e = self.corrupt(at, &errors, false);
            if matches!(e, DecodeError::Truncated { .. }) {
                return Err(e);
            }
            tracing::warn!(
                input = %self.input.name(),
                "{} decoding errors were concealed: {explanation}",
                run.faults
            );
        }
        Ok(false)
    }

    /// Starts ffmpeg for the current size, hardware and resume point.
    fn spawn(&mut self) -> Result<Run, DecodeError> {
        // An unprobed stream's size is learnt from its first frame (0: not yet).
        let unknown = self.base_size == (0, 0);
        let size = if unknown {
            self.base_size
        } else {
            scaled_size(self.base_size, self.scale.factor())
        };
        let format = self.opts.format;
        let frame_len = if unknown {
            Some(0)
        } else {
            format.frame_size(size.0, size.1)
        };
        let frame_len = frame_len.ok_or_else(|| DecodeError::AbsurdDimensions {
            input: self.name(),
            width: u64::from(size.0),
            height: u64::from(size.1),
            max_side: self.opts.limits.max_side,
            max_pixels: self.opts.limits.max_pixels,
        })?;
        let resume = self.resume.take();
        let seekable = self.input.is_local_file();
        let sampling = self.opts.sampling;
        // Seconds from the stream's start to the container's time line, which `-ss`
        // uses.
        let to_container = self.facts.start_time - self.facts.format_start_time;
        let (seek, anchor) = match resume {
            Some(after) if seekable => (
                Some(after.pts + to_container - SEEK_MARGIN),
                Anchor::Resume {
                    after,
                    saw_earlier: false,
                },
            ),
            None if seekable
                && self.facts.constant_rate
                && self.info.fps > 0.0
                && sampling.start.is_some_and(|s| s >= SEEK_FROM) =>
            {
                (
                    sampling.start.map(|s| s + to_container - SEEK_MARGIN),
                    Anchor::FromTime,
                )
            }
            _ => (None, Anchor::Base(0)),
        };
        let chain = self.filter_chain(size, resume.filter(|_| seekable));

        let mut cmd = crate::child::command(&self.opts.tools.ffmpeg);
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "repeat+level+info",
        ]);
        let hw = self.hw.clone();
        if let Some((accel, device)) = &hw {
            cmd.args(["-hwaccel", accel.name()]);
            if let (HwAccel::Vaapi, Some(d)) = (accel, device) {
                cmd.args(["-hwaccel_device", d]);
            }
        }
        if let Some(ss) = seek.filter(|s| *s > 0.0) {
            cmd.args(["-ss", &format!("{ss:.6}"), "-noaccurate_seek"]);
        }
        cmd.args(self.input.network_args(&self.opts.limits))
            .arg("-copyts")
            .arg("-i")
            .arg(self.input.ffmpeg_arg())
            .args([
                "-map",
                &if self.probed {
                    format!("0:{}", self.facts.stream_index)
                } else {
                    "0:v:0".to_string()
                },
            ])
            .args(["-vf", &chain])
            .args([
                "-fps_mode",
                "passthrough",
                "-flush_packets",
                "1",
                "-f",
                "rawvideo",
                "-pix_fmt",
                format.name(),
                "pipe:1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tracing::debug!(input = %self.input.name(), ?cmd, "starting ffmpeg");
        let program = self.opts.tools.ffmpeg.clone();
        let mut child = cmd.spawn().map_err(|e| {
            tool_error(
                self.input.name(),
                &program,
                env_for(&self.opts.tools, &program),
                e,
            )
        })?;
        crate::child::register(&child);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = crate::child::kill(&mut child);
            return Err(DecodeError::Io {
                input: self.name(),
                context: "starting ffmpeg",
                source: io::ErrorKind::BrokenPipe.into(),
            });
        };
        let (log, reader) = match spawn_reader(stderr, true) {
            Ok(r) => r,
            Err(source) => {
                let _ = crate::child::kill(&mut child);
                return Err(DecodeError::Io {
                    input: self.name(),
                    context: "starting the thread that reads ffmpeg's messages",
                    source,
                });
            }
        };
        Ok(Run {
            child,
            stdout,
            log,
            reader: Some(reader),
            size,
            frame_len,
            hw: hw.map(|(h, _)| h),
            anchor,
            pre_tb: None,
            post_tb: None,
            pending: VecDeque::with_capacity(64),
            posts: 0,
            faults: 0,
        })
    }

    /// The `-vf` chain: frame reports, selection, scaling, conversion, frame reports.
    fn filter_chain(&self, size: (u32, u32), resume: Option<Delivered>) -> String {
        let s: &Sampling = &self.opts.sampling;
        // Absolute times, as `t` is with -copyts.
        let t0 = self.facts.start_time;
        let mut chain = String::from("showinfo@pre=checksum=0");
        let mut every_offset = 0u64;
        let mut last_cell = -1i64;
        if let Some(after) = resume {
            match after.raw {
                Some((raw, _)) => {
                    let _ = write!(chain, ",select='gt(pts\\,{raw})'");
                }
                None => {
                    let _ = write!(chain, ",select='gt(t\\,{:.9})'", after.pts + t0);
                }
            }
            let first = self.first_in_range.unwrap_or(0);
            every_offset = (after.index + 1).saturating_sub(first) % s.step();
            if let Some(fps) = s.fps {
                last_cell = fps_cell(after.pts - s.start.unwrap_or(0.0), fps);
            }
        }
        let mut range = Vec::new();
        if let Some(start) = s.start {
            range.push(format!("gte(t\\,{:.9})", start + t0 - 1e-9));
        }
        if let Some(end) = s.end {
            range.push(format!("lt(t\\,{:.9})", end + t0 - 1e-9));
        }
        if !range.is_empty() {
            let _ = write!(chain, ",select='{}'", range.join("*"));
        }
        if s.step() > 1 {
            let _ = write!(chain, ",select='not(mod(n+{every_offset}\\,{}))'", s.step());
        }
        if let Some(fps) = s.fps {
            let origin = s.start.unwrap_or(0.0) + t0;
            let cell = |v: &str| format!("floor(({v}-{origin:.9})*{fps:.9}+0.000001)");
            let _ = write!(
                chain,
                ",select='gt({}\\,if(isnan(prev_selected_t)\\,{last_cell}\\,{}))'",
                cell("t"),
                cell("prev_selected_t")
            );
        }
        if size != self.info.display_size() {
            let _ = write!(
                chain,
                ",scale={}:{}:flags={}",
                size.0,
                size.1,
                self.opts.scaler.name()
            );
        }
        let _ = write!(
            chain,
            ",format={},showinfo@post=checksum=0",
            self.opts.format.name()
        );
        chain
    }
}

impl Drop for FfmpegSource {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            run.stop();
        }
    }
}

impl Source for FfmpegSource {
    fn name(&self) -> &str {
        self.input.name()
    }

    fn next_frame(&mut self) -> Option<Result<Frame, BoxError>> {
        self.read_frame().map(|r| r.map_err(BoxError::from))
    }
}

impl VideoSource for FfmpegSource {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn read_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        FfmpegSource::read_frame(self)
    }

    fn process_id(&self) -> Option<u32> {
        self.pid()
    }

    fn counts(&self) -> Option<crate::DecodeCounts> {
        Some(self.counts.clone())
    }
}
