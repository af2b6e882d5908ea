//! JSON lines out: one formatter for every job's result lines (through serde), each
//! line written whole and flushed, so that a reader (or a run that is stopped)
//! never sees half a line.

use std::io::Write;

use reel_frame::{Detection, Frame};
use reel_ops::analyze::metric;
use reel_sched::StageError;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

/// Where a job's result lines go, if anywhere.
pub(crate) struct LineOut {
    out: Option<Box<dyn Write + Send>>,
    /// What the lines are, for error messages (`frame lines`).
    what: &'static str,
}

impl LineOut {
    /// Lines of `what` into `out`; `None` discards them.
    pub(crate) fn new(out: Option<Box<dyn Write + Send>>, what: &'static str) -> Self {
        Self { out, what }
    }

    /// Writes `line` (without its line break) and a newline, then flushes.
    pub(crate) fn write_line(&mut self, line: &mut Vec<u8>) -> Result<(), StageError> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        line.push(b'\n');
        let written = out.write_all(line).and_then(|()| out.flush());
        line.pop();
        written.map_err(|e| StageError::fatal(format!("writing {}: {e}", self.what)))
    }

    /// Flushes what is buffered, at the end of the stream.
    pub(crate) fn finish(&mut self) -> Result<(), StageError> {
        if let Some(out) = self.out.as_mut() {
            out.flush()
                .map_err(|e| StageError::fatal(format!("writing {}: {e}", self.what)))?;
        }
        Ok(())
    }
}

/// What a job's lines carry besides the frame's number and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineShape {
    /// The analysis' measurements (`null` where a value does not exist).
    pub(crate) measurements: bool,
    /// The frame's detections (the model's and the plugins').
    pub(crate) detections: bool,
}

/// A number as the lines write it: six decimals at most, `null` when not finite.
#[derive(Clone, Copy)]
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            // Six decimals keep the lines short and exact enough for every measure.
            let v = (self.0 * 1e6).round() / 1e6;
            s.serialize_f64(if v == 0.0 { 0.0 } else { v })
        } else {
            s.serialize_none()
        }
    }
}

/// One result line: `{"frame":i,"pts":s, measurements…, "detections":[…]}`.
#[derive(Serialize)]
struct Line<'a> {
    frame: u64,
    pts: Num,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_delta: Option<Option<Num>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    motion: Option<Option<Num>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    brightness: Option<Option<Num>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sharpness: Option<Option<Num>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detections: Option<Detections<'a>>,
}

/// A frame's detections, serialised where they lie (no list is built).
struct Detections<'a>(&'a [Detection]);

impl Serialize for Detections<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for d in self.0 {
            let b = d.bbox;
            seq.serialize_element(&DetectionLine {
                class_id: d.class_id,
                label: d.label.as_str(),
                conf: Num(f64::from(d.conf)),
                bbox: [b.x1, b.y1, b.x2, b.y2].map(|v| Num(f64::from(v))),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct DetectionLine<'a> {
    class_id: u32,
    label: &'a str,
    conf: Num,
    #[serde(rename = "box")]
    bbox: [Num; 4],
}

/// Formats `frame`'s line into `buf` (cleared first). Allocates nothing once `buf`
/// has grown to a line's size.
pub(crate) fn format(frame: &Frame, shape: LineShape, buf: &mut Vec<u8>) {
    buf.clear();
    let m = &frame.meta.metrics;
    let value = |name: &str| shape.measurements.then(|| m.get(name).map(Num));
    let line = Line {
        frame: frame.index,
        pts: Num(frame.pts),
        content_delta: value(metric::CONTENT_DELTA),
        motion: value(metric::MOTION),
        brightness: value(metric::BRIGHTNESS),
        sharpness: value(metric::SHARPNESS),
        detections: shape.detections.then(|| Detections(&frame.meta.detections)),
    };
    // Serialising plain numbers and strings into memory cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use reel_frame::{BBox, Label, PixelFormat};
    use reel_pool::FramePool;

    fn frame(pool: &FramePool) -> Frame {
        let buf = pool.acquire(12).unwrap();
        Frame::new(buf, PixelFormat::Rgb24, 2, 2, 7, 0.28).unwrap()
    }

    #[test]
    fn a_detection_line_is_the_contract_json() {
        let pool = FramePool::with_budget(1 << 20);
        let mut f = frame(&pool);
        f.meta.detections.push(Detection {
            class_id: 0,
            label: Label::new("per\"son"),
            conf: 0.5,
            bbox: BBox::new(1.0, 2.5, 30.0, 40.0),
        });
        let mut buf = Vec::new();
        let shape = LineShape {
            measurements: false,
            detections: true,
        };
        format(&f, shape, &mut buf);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["frame"], 7);
        assert_eq!(v["pts"], 0.28);
        let d = &v["detections"][0];
        assert_eq!(d["label"], "per\"son");
        assert_eq!(d["conf"], 0.5);
        assert_eq!(d["box"], serde_json::json!([1.0, 2.5, 30.0, 40.0]));
        assert!(v.get("motion").is_none());
    }

    #[test]
    fn an_analysis_line_has_nulls_where_a_value_does_not_exist() {
        let pool = FramePool::with_budget(1 << 20);
        let mut f = frame(&pool);
        f.meta.metrics.set(metric::MOTION, 1.234_567_89);
        f.meta.metrics.set(metric::BRIGHTNESS, f64::NAN);
        let mut buf = Vec::new();
        let shape = LineShape {
            measurements: true,
            detections: false,
        };
        format(&f, shape, &mut buf);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            r#"{"frame":7,"pts":0.28,"content_delta":null,"motion":1.234568,"brightness":null,"sharpness":null}"#
        );
    }

    #[test]
    fn lines_are_written_whole_and_a_failed_write_is_fatal() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("no space left"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = LineOut::new(Some(Box::new(Full)), "frame lines");
        let mut line = b"x".to_vec();
        let e = out.write_line(&mut line).unwrap_err();
        assert!(e.is_fatal());
        assert!(
            e.to_string().contains("writing frame lines: no space left"),
            "{e}"
        );
        assert_eq!(line, b"x");
        let mut none = LineOut::new(None, "frame lines");
        none.write_line(&mut line).unwrap();
    }
}
