//! Where a job's frames end: one sink that writes each frame's result line (and
//! feeds the cache's writer), encodes the frame into the video out, and keeps what
//! the summary needs. The pipeline hands it back when the job is joined.

pub(crate) mod lines;

use std::collections::BTreeMap;

use reel_decode::ffmpeg::FfmpegEncoder;
use reel_frame::Frame;
use reel_sched::{Sink, StageError};

use crate::cache::EntryWriter;
use crate::stages::analysis::{CUT, CUT_PTS};
use lines::{LineOut, LineShape};

/// What the sink gathered, for the summary.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// Lines written (frames consumed).
    pub(crate) lines: u64,
    /// One past the highest frame index consumed.
    pub(crate) end: u64,
    /// The first frame's index and presentation time.
    pub(crate) first: Option<(u64, f64)>,
    /// The last frame's presentation time.
    pub(crate) last_pts: f64,
    /// Scene cuts with their frames' times, in order.
    pub(crate) cuts: Vec<(u64, f64)>,
    /// Detections per label, and in all.
    pub(crate) counts: BTreeMap<String, u64>,
    /// Detections in all.
    pub(crate) detections: u64,
    /// Why the results could not be stored in the cache, if they could not.
    pub(crate) cache_error: Option<String>,
}

/// The sink of every job.
pub(crate) struct JobSink {
    lines: LineOut,
    shape: LineShape,
    buf: Vec<u8>,
    /// The cache entry being written, while the run may still be cached.
    pub(crate) cache: Option<EntryWriter>,
    video: Option<FfmpegEncoder>,
    /// A live job's figures: each frame's lag behind the stream's clock.
    live: Option<crate::live::LiveStats>,
    pub(crate) gathered: Gathered,
}

impl JobSink {
    pub(crate) fn new(
        lines: LineOut,
        shape: LineShape,
        cache: Option<EntryWriter>,
        video: Option<FfmpegEncoder>,
    ) -> Self {
        Self {
            lines,
            shape,
            buf: Vec::with_capacity(1024),
            cache,
            video,
            live: None,
            gathered: Gathered::default(),
        }
    }

    /// Records each frame's lag behind the stream's clock in `stats`.
    pub(crate) fn with_live(mut self, stats: Option<crate::live::LiveStats>) -> Self {
        self.live = stats;
        self
    }

    fn gather(&mut self, frame: &Frame) {
        let g = &mut self.gathered;
        g.lines += 1;
        g.end = g.end.max(frame.index + 1);
        g.first.get_or_insert((frame.index, frame.pts));
        g.last_pts = frame.pts;
        let m = &frame.meta.metrics;
        if let Some(cut) = m.get(CUT) {
            let cut = cut as u64;
            g.cuts.push((cut, m.get(CUT_PTS).unwrap_or(frame.pts)));
        }
        for d in &frame.meta.detections {
            g.detections += 1;
            if let Some(n) = g.counts.get_mut(d.label.as_str()) {
                *n += 1;
            } else {
                g.counts.insert(d.label.as_str().to_string(), 1);
            }
        }
    }
}

impl Sink for JobSink {
    fn consume(&mut self, frame: Frame) -> Result<(), StageError> {
        lines::format(&frame, self.shape, &mut self.buf);
        self.gather(&frame);
        if let Some(live) = &self.live {
            live.delivered(frame.pts);
        }
        self.lines.write_line(&mut self.buf)?;
        if let Some(writer) = self.cache.as_mut()
            && let Err(e) = writer.write_line(std::str::from_utf8(&self.buf).unwrap_or_default())
        {
            // The result is still good; it just will not be cached.
            tracing::warn!(error = %e, "results will not be cached");
            self.gathered.cache_error = Some(e.to_string());
            self.cache = None;
        }
        match self.video.as_mut() {
            Some(video) => video.write(&frame).map_err(StageError::fatal),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), StageError> {
        self.lines.finish()?;
        match self.video.as_mut() {
            Some(video) => video.finish().map_err(StageError::fatal),
            None => Ok(()),
        }
    }
}
