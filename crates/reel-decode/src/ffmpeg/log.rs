//! ffmpeg's stderr, read on its own thread: the `showinfo` lines that carry each
//! frame's number and timestamp, the time bases, and the messages that explain a
//! failure.
//!
//! ffmpeg runs with `-loglevel repeat+level+info`, so every line carries its level,
//! and with two `showinfo` filters named `showinfo@pre` (right after decoding, before
//! any selection) and `showinfo@post` (last, on the frames written to the pipe). A
//! frame goes through the filter chain in one piece, so the lines arrive in stream
//! order: `pre` for each decoded frame, then `post` if it was selected, and an error
//! message sits between the lines of the frames around it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Lines of other messages kept for error reports.
const TAIL_LINES: usize = 24;
/// Error lines kept for error reports.
const ERROR_LINES: usize = 16;

/// One thing ffmpeg said, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A frame came out of the decoder: its number in this run and its timestamp in
    /// the `pre` time base (`None`: no timestamp).
    Pre { n: u64, pts: Option<i64> },
    /// A frame was written to the pipe.
    Post { pts: Option<i64> },
    /// An error-level message (its text is in [`LogState::errors`]).
    Fault,
}

/// What the reader thread has gathered.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    events: VecDeque<Event>,
    eof: bool,
    /// Time base of the `pre` filter's input.
    pub pre_time_base: Option<(i64, i64)>,
    /// Time base of the `post` filter's input.
    pub post_time_base: Option<(i64, i64)>,
    /// The frame rate the `pre` filter was configured with, when known (not 0/1).
    pub pre_frame_rate: Option<(i64, i64)>,
    /// The size of the first decoded frame (`showinfo@pre`'s `s:`).
    pub pre_size: Option<(u32, u32)>,
    /// The size of the first frame written to the pipe (`showinfo@post`'s `s:`).
    pub post_size: Option<(u32, u32)>,
    /// The video codec named by the input's first `Stream #…: Video:` line.
    pub video_codec: Option<String>,
    /// The first error-level messages.
    pub errors: Vec<String>,
    /// The last lines that were not frame reports.
    pub tail: VecDeque<String>,
}

impl LogState {
    /// The messages that best explain a failure: the error lines, else the tail.
    pub fn explanation(&self) -> String {
        let pick: Vec<&str> = if self.errors.is_empty() {
            self.tail
                .iter()
                .rev()
                .filter(|l| !is_noise(l))
                .take(3)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect()
        } else {
            self.errors.iter().take(3).map(String::as_str).collect()
        };
        pick.join("; ")
    }
}

/// Lines that never explain anything.
fn is_noise(line: &str) -> bool {
    let l = line.trim_start();
    l.is_empty()
        || l.starts_with("Stream mapping")
        || l.starts_with("Press [q]")
        || l.starts_with("video:")
        || l.starts_with("Output #")
        || l.starts_with("Input #")
        || l.starts_with("Metadata:")
        || l.starts_with("Duration:")
        || l.starts_with("Stream #")
        || l.starts_with("Side data:")
        || l.contains(" : ")
}

/// The shared log, filled by the reader thread.
#[derive(Debug, Default)]
pub(crate) struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
    /// Whether frame reports and faults are queued as events (a decoder wants them;
    /// an encoder only keeps the messages).
    events: bool,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next event, waiting for it; `None` once ffmpeg closed stderr and every
    /// event was taken.
    pub fn next_event(&self) -> Option<Event> {
        let mut st = self.lock();
        loop {
            if let Some(e) = st.events.pop_front() {
                return Some(e);
            }
            if st.eof {
                return None;
            }
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Looks at the gathered state.
    pub fn with<R>(&self, f: impl FnOnce(&LogState) -> R) -> R {
        f(&self.lock())
    }

    fn push(&self, line: &str) {
        let parsed = parse_line(line);
        let mut st = self.lock();
        match parsed {
            Line::Pre { .. } if st.pre_size.is_none() => st.pre_size = frame_size(line),
            Line::Post { .. } if st.post_size.is_none() => st.post_size = frame_size(line),
            Line::TimeBase { post: false, .. } if st.pre_frame_rate.is_none() => {
                st.pre_frame_rate = field(line, "frame_rate:")
                    .and_then(super::probe::parse_fraction)
                    .filter(|r| r.0 > 0 && r.1 > 0);
            }
            Line::Message { text, .. } if st.video_codec.is_none() => {
                st.video_codec = video_codec(text);
            }
            _ => {}
        }
        match parsed {
            Line::Pre { .. } | Line::Post { .. } if !self.events => {}
            Line::Pre { n, pts } => st.events.push_back(Event::Pre { n, pts }),
            Line::Post { pts } => st.events.push_back(Event::Post { pts }),
            Line::TimeBase { post, tb } => {
                if post {
                    st.post_time_base = Some(tb);
                } else {
                    st.pre_time_base = Some(tb);
                }
            }
            Line::FilterOther => {}
            Line::Message { error, text } => {
                if error {
                    if st.errors.len() < ERROR_LINES {
                        st.errors.push(text.to_string());
                    }
                    if self.events {
                        st.events.push_back(Event::Fault);
                    }
                }
                if st.tail.len() == TAIL_LINES {
                    st.tail.pop_front();
                }
                st.tail.push_back(text.to_string());
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().eof = true;
        self.changed.notify_all();
    }
}

/// Starts the thread that reads `stderr` into a new [`Log`], which queues events
/// when `events` is set.
pub(crate) fn spawn_reader(
    stderr: impl Read + Send + 'static,
    events: bool,
) -> std::io::Result<(Arc<Log>, JoinHandle<()>)> {
    let log = Arc::new(Log {
        events,
        ..Log::default()
    });
    let shared = Arc::clone(&log);
    let handle = std::thread::Builder::new()
        .name("ffmpeg-stderr".into())
        .spawn(move || read_into(&shared, stderr))?;
    Ok((log, handle))
}

/// Reads `stderr` line by line into `log` until it ends, then closes the log.
fn read_into(log: &Log, stderr: impl Read) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::with_capacity(512);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                log.push(line.trim_end_matches(['\n', '\r']));
            }
        }
    }
    log.close();
}

/// What the reader of a decoding ffmpeg's stderr gathered from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// `showinfo@pre` frame reports (frames out of the decoder).
    pub decoded: u64,
    /// `showinfo@post` frame reports (frames written to the pipe).
    pub written: u64,
    /// Error-level messages.
    pub faults: u64,
    /// The `pre` filter's time base, when reported.
    pub pre_time_base: Option<(i64, i64)>,
    /// The `post` filter's time base, when reported.
    pub post_time_base: Option<(i64, i64)>,
    /// The explanation a failure would be given.
    pub explanation: String,
}

/// Reads `stderr`, the whole standard error of a decoding ffmpeg
/// (`-loglevel repeat+level+info` with the `showinfo@pre` and `showinfo@post`
/// filters), through the same reader a decoder's log thread runs. ffmpeg's log
/// echoes the input's own text (tags, names), so it is untrusted: this is the entry
/// point for testing that reader on any bytes.
pub fn read_log(stderr: &[u8]) -> LogSummary {
    let log = Log {
        events: true,
        ..Log::default()
    };
    read_into(&log, stderr);
    let mut summary = LogSummary::default();
    while let Some(event) = log.next_event() {
        match event {
            Event::Pre { .. } => summary.decoded += 1,
            Event::Post { .. } => summary.written += 1,
            Event::Fault => summary.faults += 1,
        }
    }
    log.with(|st| {
        summary.pre_time_base = st.pre_time_base;
        summary.post_time_base = st.post_time_base;
        summary.explanation = st.explanation();
    });
    summary
}

/// One stderr line, understood.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Pre {
        n: u64,
        pts: Option<i64>,
    },
    Post {
        pts: Option<i64>,
    },
    TimeBase {
        post: bool,
        tb: (i64, i64),
    },
    /// Any other line from a `showinfo` filter (side data and the like).
    FilterOther,
    /// Anything else, with whether it is an error and its text without prefixes.
    Message {
        error: bool,
        text: &'a str,
    },
}

/// Splits `[context @ 0x…] [level] text` into its parts.
fn split_prefixes(line: &str) -> (Option<&str>, Option<&str>, &str) {
    let mut rest = line;
    let mut context = None;
    let mut level = None;
    for _ in 0..2 {
        let Some(body) = rest.strip_prefix('[') else {
            break;
        };
        let Some(end) = body.find(']') else { break };
        let tag = &body[..end];
        if let Some(ctx) = tag.split_once(" @ ").map(|(c, _)| c) {
            context = Some(ctx);
        } else if is_level(tag) {
            level = Some(tag);
        } else {
            break;
        }
        rest = body[end + 1..].trim_start();
    }
    (context, level, rest)
}

fn is_level(tag: &str) -> bool {
    matches!(
        tag,
        "quiet" | "panic" | "fatal" | "error" | "warning" | "info" | "verbose" | "debug" | "trace"
    )
}

fn parse_line(line: &str) -> Line<'_> {
    let (context, level, text) = split_prefixes(line);
    let which = match context {
        Some("showinfo@pre") => Some(false),
        Some("showinfo@post") => Some(true),
        _ => None,
    };
    if let Some(post) = which {
        if let Some(tb) = text
            .strip_prefix("config in time_base:")
            .and_then(|r| r.split(',').next())
            .and_then(|r| super::probe::parse_fraction(r.trim()))
        {
            return Line::TimeBase { post, tb };
        }
        if let Some(n) = field(text, "n:").and_then(|v| v.parse::<u64>().ok()) {
            let pts = field(text, "pts:").and_then(|v| v.parse::<i64>().ok());
            return if post {
                Line::Post { pts }
            } else {
                Line::Pre { n, pts }
            };
        }
        return Line::FilterOther;
    }
    let error = matches!(level, Some("error" | "fatal" | "panic"));
    Line::Message { error, text }
}

/// The frame size in a `showinfo` frame report (`s:320x240`).
fn frame_size(line: &str) -> Option<(u32, u32)> {
    let (w, h) = field(line, "s:")?.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The codec of an input's video stream line
/// (`Stream #0:0[0x100]: Video: h264 (High) …` → `h264`).
fn video_codec(text: &str) -> Option<String> {
    if !text.trim_start().starts_with("Stream #") {
        return None;
    }
    let (_, rest) = text.split_once(": Video: ")?;
    let name = rest.split([' ', ',']).next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The value after `key` in a `showinfo` line (`n:  12` → `12`): `key` either
/// starts the text or follows a space.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let at = from + i;
        if at == 0 || text.as_bytes()[at - 1] == b' ' {
            return text[at + key.len()..].split_whitespace().next();
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines() {
        let pre = "[showinfo@pre @ 0x55dbc41cb9c0] [info] n:   0 pts:      0 pts_time:0       pos:       48 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:1 type:I ";
        assert_eq!(parse_line(pre), Line::Pre { n: 0, pts: Some(0) });
        let post = "[showinfo@post @ 0x55d0c0503580] [info] n:12345 pts:12345678 pts_time:964.506 pos:33555 fmt:rgb24";
        assert_eq!(
            parse_line(post),
            Line::Post {
                pts: Some(12_345_678)
            }
        );
        let nopts = "[showinfo@post @ 0x1] [info] n:   3 pts:NOPTS   pts_time:NOPTS   pos: -1";
        assert_eq!(parse_line(nopts), Line::Post { pts: None });
        let tb =
            "[showinfo@pre @ 0x55dbc41cb9c0] [info] config in time_base: 1/12800, frame_rate: 25/1";
        assert_eq!(
            parse_line(tb),
            Line::TimeBase {
                post: false,
                tb: (1, 12800)
            }
        );
        assert_eq!(frame_size(pre), Some((320, 240)));
        assert_eq!(frame_size(nopts), None);
        assert_eq!(
            video_codec(
                "  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p"
            ),
            Some("h264".into())
        );
        assert_eq!(video_codec("Output #0, rawvideo, to 'pipe:1':"), None);
        let side = "[showinfo@pre @ 0x55dbc41cb9c0] [info]   side data - User Data Unregistered:";
        assert_eq!(parse_line(side), Line::FilterOther);
    }

    #[test]
    fn messages_and_levels() {
        let e = "[h264 @ 0x55a910e9de40] [error] Invalid NAL unit size (1729 > 1093).";
        assert_eq!(
            parse_line(e),
            Line::Message {
                error: true,
                text: "Invalid NAL unit size (1729 > 1093)."
            }
        );
        let e = "[error] trunc.mp4: Invalid data found when processing input";
        assert!(matches!(parse_line(e), Line::Message { error: true, .. }));
        let w = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a910e69900] [warning] Packet corrupt (stream = 0, dts = 18432).";
        assert!(matches!(parse_line(w), Line::Message { error: false, .. }));
        let i = "[info] Press [q] to stop, [?] for help";
        assert_eq!(
            parse_line(i),
            Line::Message {
                error: false,
                text: "Press [q] to stop, [?] for help"
            }
        );
    }

    #[test]
    fn the_reader_turns_stderr_into_events() {
        let text = "\
[info] Input #0, matroska,webm, from 'x.mkv':
[showinfo@pre @ 0x1] [info] config in time_base: 1/1000, frame_rate: 30/1
[showinfo@post @ 0x2] [info] config in time_base: 1/1000, frame_rate: 30/1
[showinfo@pre @ 0x1] [info] n:   0 pts:      0 pts_time:0
[showinfo@post @ 0x2] [info] n:   0 pts:      0 pts_time:0
[showinfo@pre @ 0x1] [info] n:   1 pts:     33 pts_time:0.033
[h264 @ 0x3] [error] error while decoding MB 7 13, bytestream -7
[showinfo@pre @ 0x1] [info] n:   2 pts:     67 pts_time:0.067
";
        let (log, handle) =
            spawn_reader(std::io::Cursor::new(text.as_bytes().to_vec()), true).unwrap();
        let mut events = Vec::new();
        while let Some(e) = log.next_event() {
            events.push(e);
        }
        handle.join().unwrap();
        assert_eq!(
            events,
            [
                Event::Pre { n: 0, pts: Some(0) },
                Event::Post { pts: Some(0) },
                Event::Pre {
                    n: 1,
                    pts: Some(33)
                },
                Event::Fault,
                Event::Pre {
                    n: 2,
                    pts: Some(67)
                },
            ]
        );
        log.with(|st| {
            assert_eq!(st.pre_time_base, Some((1, 1000)));
            assert_eq!(st.post_time_base, Some((1, 1000)));
            assert_eq!(st.errors, ["error while decoding MB 7 13, bytestream -7"]);
            assert_eq!(
                st.explanation(),
                "error while decoding MB 7 13, bytestream -7"
            );
        });
    }
}
