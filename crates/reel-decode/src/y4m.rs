//! YUV4MPEG2 (`.y4m`) files, read in pure Rust.
//!
//! A Y4M file is a one-line header (`YUV4MPEG2 W640 H360 F30:1 Ip A1:1 C420jpeg`)
//! and then frames, each a `FRAME` line followed by the raw planes. 8-bit 4:2:0
//! (`C420jpeg`, `C420paldv`, `C420mpeg2`, `C420`, the default) and `Cmono` are read;
//! the chroma siting variants are all taken as plain `yuv420p`, as ffmpeg's own
//! reader does. When the caller asks for the file's own format and size, each frame
//! is read straight into its pooled buffer; otherwise it is read into a scratch
//! buffer and converted and resized with `reel-ops`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;

use crate::error::{DecodeError, Position};
use crate::frame_buffer;
use crate::info::{DecoderInfo, VideoInfo};
use crate::options::{DecodeOptions, Limits};
use crate::sampling::{Sampler, ScaleControl, Verdict, scaled_size};
use crate::shape::Shaper;

/// The longest header or frame line accepted.
const MAX_LINE: usize = 4096;

/// What a Y4M header says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub format: PixelFormat,
    pub colour_space: String,
    /// Bytes of the header line, newline included.
    pub len: usize,
}

/// Whether `input` names a Y4M file by its extension.
pub(crate) fn is_y4m(input: &str) -> bool {
    std::path::Path::new(input)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("y4m"))
}

/// Parses the header line (without its newline).
fn parse_header(input: &str, line: &[u8], limits: &Limits) -> Result<Header, DecodeError> {
    let not_y4m = |detail: String| DecodeError::NotVideo {
        input: input.to_string(),
        detail,
    };
    let text = std::str::from_utf8(line).map_err(|_| not_y4m("the header is not text".into()))?;
    let mut words = text.split(' ').filter(|w| !w.is_empty());
    if words.next() != Some("YUV4MPEG2") {
        return Err(not_y4m("no YUV4MPEG2 signature".into()));
    }
    let (mut w, mut h, mut fps, mut cs) = (None, None, None, "420jpeg".to_string());
    for word in words {
        // A tag is one ASCII letter; a word opening with anything else (a
        // multi-byte character included) is no parameter reel reads.
        let Some((tag, value)) = word.split_at_checked(1) else {
            continue;
        };
        match tag {
            "W" => w = value.parse::<u64>().ok(),
            "H" => h = value.parse::<u64>().ok(),
            "F" => {
                fps = value.split_once(':').and_then(|(n, d)| {
                    let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
                    (n > 0.0 && d > 0.0).then_some(n / d)
                });
            }
            "C" => cs = value.to_string(),
            _ => {}
        }
    }
    let (Some(w), Some(h)) = (w, h) else {
        return Err(not_y4m("the header has no width or height".into()));
    };
    // Checked before anything is allocated for the frames.
    limits.check(input, w, h)?;
    let format = match cs.as_str() {
        "420jpeg" | "420paldv" | "420mpeg2" | "420" => PixelFormat::Yuv420p,
        "mono" => PixelFormat::Gray8,
        other => {
            return Err(DecodeError::Unsupported {
                input: input.to_string(),
                what: format!("Y4M colour space C{other} (only 8-bit 4:2:0 and mono are read)"),
            });
        }
    };
    Ok(Header {
        // Within the limits, so they fit.
        width: u32::try_from(w).unwrap_or(u32::MAX),
        height: u32::try_from(h).unwrap_or(u32::MAX),
        fps: fps.unwrap_or(25.0),
        format,
        colour_space: cs,
        len: line.len() + 1,
    })
}

/// Reads one `\n`-terminated line into `buf` (without the newline), at most
/// [`MAX_LINE`] bytes. `Ok(false)` at a clean end of file.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        Ok(true)
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

fn open_file(input: &str) -> Result<(BufReader<File>, u64), DecodeError> {
    let file = File::open(input).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => DecodeError::NotFound {
            input: input.to_string(),
        },
        _ => DecodeError::Io {
            input: input.to_string(),
            context: "cannot open the file",
            source: e,
        },
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(DecodeError::Empty {
            input: input.to_string(),
        });
    }
    Ok((BufReader::with_capacity(1 << 16, file), len))
}

fn read_header(
    input: &str,
    reader: &mut BufReader<File>,
    limits: &Limits,
) -> Result<Header, DecodeError> {
    let mut line = Vec::new();
    match read_line(reader, &mut line) {
        Ok(true) => parse_header(input, &line, limits),
        Ok(false) | Err(_) => Err(DecodeError::NotVideo {
            input: input.to_string(),
            detail: "no Y4M header line".into(),
        }),
    }
}

fn info_for(input: &str, h: &Header, file_len: u64) -> VideoInfo {
    // Frames have plain `FRAME` lines in practice: count them when the sizes agree.
    let frame_bytes = h.format.frame_size(h.width, h.height).unwrap_or(0) as u64 + 6;
    let body = file_len.saturating_sub(h.len as u64);
    let frames =
        (frame_bytes > 6 && body.is_multiple_of(frame_bytes)).then_some(body / frame_bytes);
    VideoInfo {
        input: input.to_string(),
        container: Some("yuv4mpegpipe".into()),
        codec: "rawvideo".into(),
        pixel_format: h.format.name().into(),
        width: h.width,
        height: h.height,
        rotation: 0,
        fps: h.fps,
        frames,
        duration_s: frames.map(|n| n as f64 / h.fps),
        variable_frame_rate: false,
        bit_rate: None,
        decoder: DecoderInfo::software("y4m", format!("rawvideo ({})", h.colour_space)),
    }
}

/// What a Y4M file holds.
pub(crate) fn probe(input: &str, opts: &DecodeOptions) -> Result<VideoInfo, DecodeError> {
    let (mut reader, len) = open_file(input)?;
    let header = read_header(input, &mut reader, &opts.limits)?;
    Ok(info_for(input, &header, len))
}

/// A Y4M file decoded in process.
#[derive(Debug)]
pub struct Y4mSource {
    input: String,
    reader: BufReader<File>,
    header: Header,
    info: VideoInfo,
    pool: FramePool,
    format: PixelFormat,
    base_size: (u32, u32),
    sampler: Sampler,
    scale: ScaleControl,
    shaper: Shaper,
    line: Vec<u8>,
    scratch: Vec<u8>,
    next: u64,
    last: Position,
    done: bool,
}

impl Y4mSource {
    /// Opens `input`, reading its header.
    pub fn open(input: &str, opts: &DecodeOptions, pool: &FramePool) -> Result<Self, DecodeError> {
        opts.validate(input)?;
        let (mut reader, len) = open_file(input)?;
        let header = read_header(input, &mut reader, &opts.limits)?;
        Ok(Self {
            input: input.to_string(),
            info: info_for(input, &header, len),
            base_size: opts.size.unwrap_or((header.width, header.height)),
            header,
            reader,
            pool: pool.clone(),
            format: opts.format,
            sampler: Sampler::new(&opts.sampling),
            scale: ScaleControl::new(opts.scale.clone()),
            shaper: Shaper::new(),
            line: Vec::with_capacity(64),
            scratch: Vec::new(),
            next: 0,
            last: Position::START,
            done: false,
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

    fn truncated(&self, detail: &str) -> DecodeError {
        DecodeError::Truncated {
            input: self.input.clone(),
            at: self.last,
            detail: detail.to_string(),
        }
    }

    fn step(&mut self) -> Result<Option<Frame>, DecodeError> {
        let h = &self.header;
        let (nw, nh, native) = (h.width, h.height, h.format);
        let frame_len = native.frame_size(nw, nh).unwrap_or(0);
        loop {
            match read_line(&mut self.reader, &mut self.line) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(_) => return Err(self.truncated("the file ends inside a frame header")),
            }
            if !self.line.starts_with(b"FRAME") {
                return Err(DecodeError::Corrupt {
                    input: self.input.clone(),
                    at: self.last,
                    detail: "a frame does not start with FRAME".into(),
                });
            }
            let index = self.next;
            self.next += 1;
            let pts = index as f64 / self.header.fps;
            match self.sampler.judge(pts) {
                Verdict::End => return Ok(None),
                Verdict::Skip => {
                    if self.reader.seek_relative(frame_len as i64).is_err() {
                        return Err(self.truncated("the file ends inside a frame"));
                    }
                    continue;
                }
                Verdict::Keep => {}
            }
            self.scale.poll();
            let size = scaled_size(self.base_size, self.scale.factor());
            let mut buf = frame_buffer(&self.pool, &self.input, self.format, size)?;
            let direct = self.format == native && size == (nw, nh);
            let read = if direct {
                self.reader.read_exact(&mut buf[..frame_len])
            } else {
                self.scratch.resize(frame_len, 0);
                self.reader.read_exact(&mut self.scratch)
            };
            match read {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(self.truncated("the file ends inside a frame"));
                }
                Err(source) => {
                    return Err(DecodeError::Io {
                        input: self.input.clone(),
                        context: "reading a frame",
                        source,
                    });
                }
            }
            if !direct {
                self.shaper
                    .shape(&self.scratch, native, (nw, nh), &mut buf, self.format, size)
                    .map_err(|e| DecodeError::Ops {
                        input: self.input.clone(),
                        detail: e.to_string(),
                    })?;
            }
            let frame =
                crate::decoded_frame(&self.input, buf, self.format, size, (nw, nh), (index, pts))?;
            self.last = Position::after(index, pts);
            return Ok(Some(frame));
        }
    }
}

crate::in_process_source!(Y4mSource, input);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = parse_header(
            "a.y4m",
            b"YUV4MPEG2 W640 H360 F30000:1001 Ip A1:1 C420mpeg2 XYSCSS=420MPEG2",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            (h.width, h.height, h.format),
            (640, 360, PixelFormat::Yuv420p)
        );
        assert!((h.fps - 29.97).abs() < 0.001);
        let mono =
            parse_header("m.y4m", b"YUV4MPEG2 W8 H8 F25:1 Cmono", &Limits::default()).unwrap();
        assert_eq!(mono.format, PixelFormat::Gray8);
        let e = parse_header(
            "h.y4m",
            b"YUV4MPEG2 W100000 H100000 F25:1",
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(e, DecodeError::AbsurdDimensions { .. }), "{e}");
        let e = parse_header("c.y4m", b"YUV4MPEG2 W8 H8 C444", &Limits::default()).unwrap_err();
        assert!(matches!(e, DecodeError::Unsupported { .. }), "{e}");
        let e = parse_header("t.y4m", b"hello world", &Limits::default()).unwrap_err();
        assert!(matches!(e, DecodeError::NotVideo { .. }), "{e}");
        let e = parse_header("n.y4m", b"YUV4MPEG2 F25:1", &Limits::default()).unwrap_err();
        assert!(matches!(e, DecodeError::NotVideo { .. }), "{e}");
        // A word opening with a multi-byte character is passed over (it once
        // panicked, cut inside the character).
        let odd = parse_header(
            "u.y4m",
            "YUV4MPEG2 W15 \u{22e} H8 Cmono".as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!((odd.width, odd.height), (15, 8));
    }

    #[test]
    fn extension() {
        assert!(is_y4m("/x/clip.Y4M"));
        assert!(!is_y4m("clip.mp4"));
    }
}
