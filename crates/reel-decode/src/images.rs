//! Image sequences (PNG, JPEG), read in pure Rust with the `image` crate.
//!
//! An input is a sequence when it is:
//! - a directory: its `.png`, `.jpg` and `.jpeg` files in natural name order
//!   (`img2.png` before `img10.png`);
//! - a printf-style pattern with one `%d`, `%0Nd` or `%Nd` (and `%%` for a percent
//!   sign), like ffmpeg's `image2`: numbering starts at the first of 0 to 4 that
//!   exists and goes on while the files do;
//! - a single `.png`, `.jpg` or `.jpeg` file (a one-frame video).
//!
//! Frames come at [`DecodeOptions::sequence_fps`]. The first image sets the size;
//! later images of another size are resized to it. 8-bit gray, RGB and RGBA images
//! are decoded straight into the frame's pooled buffer when the caller asks for that
//! format at that size; anything else goes through a scratch buffer and `reel-ops`.
//! (The images' EXIF orientation is not applied.)

use std::path::{Path, PathBuf};

use image::{ColorType, DynamicImage, ImageDecoder, ImageReader};
use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;

use crate::error::{DecodeError, Position};
use crate::frame_buffer;
use crate::info::{DecoderInfo, VideoInfo};
use crate::options::{DecodeOptions, Limits};
use crate::sampling::{Sampler, ScaleControl, Verdict, scaled_size};
use crate::shape::Shaper;

/// Whether `path` has an image extension this reader takes.
fn is_image_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["png", "jpg", "jpeg"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// The widest number a pattern may ask for: a file name is at most 255 bytes.
const MAX_WIDTH: usize = 255;

/// A printf-style pattern: the text before and after the number, and its width.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    before: String,
    after: String,
    width: usize,
    zero_pad: bool,
}

impl Pattern {
    /// Parses a pattern with exactly one number conversion; `None` otherwise.
    fn parse(s: &str) -> Option<Self> {
        let mut before = String::new();
        let mut after = String::new();
        let mut spec = None;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            let out = if spec.is_some() {
                &mut after
            } else {
                &mut before
            };
            if c != '%' {
                out.push(c);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                out.push('%');
                continue;
            }
            if spec.is_some() {
                return None;
            }
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            if chars.next() != Some('d') {
                return None;
            }
            let zero_pad = digits.starts_with('0');
            // Wider than any file name (or than a number can be): kept as too wide,
            // refused by `files`.
            let width = if digits.is_empty() {
                0
            } else {
                digits.parse::<usize>().unwrap_or(usize::MAX)
            };
            spec = Some((width, zero_pad));
        }
        let (width, zero_pad) = spec?;
        Some(Self {
            before,
            after,
            width,
            zero_pad,
        })
    }

    /// Whether the width fits in a file name (a wider one is refused, not formatted).
    fn too_wide(&self) -> bool {
        self.width > MAX_WIDTH
    }

    fn path(&self, n: u64) -> PathBuf {
        let num = if self.zero_pad {
            format!("{n:0w$}", w = self.width)
        } else {
            format!("{n:w$}", w = self.width)
        };
        PathBuf::from(format!("{}{num}{}", self.before, self.after))
    }

    /// The existing files, from the first of 0..=4 that exists while they go on.
    fn files(&self) -> Vec<PathBuf> {
        let Some(start) = (0..=4).find(|&n| self.path(n).is_file()) else {
            return Vec::new();
        };
        (start..)
            .map(|n| self.path(n))
            .take_while(|p| p.is_file())
            .collect()
    }
}

/// Whether `input` is an image sequence (a directory, a pattern or an image file).
pub(crate) fn is_sequence(input: &str) -> bool {
    let path = Path::new(input);
    path.is_dir()
        || is_image_file(path)
            && (path.is_file() || Pattern::parse(input).is_some() || !path.exists())
}

/// A key that orders names with their numbers compared as numbers.
fn natural_key(name: &str) -> Vec<(u8, u64, String)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            let (d, r) = rest.split_at(digits);
            key.push((0, d.parse::<u64>().unwrap_or(u64::MAX), String::new()));
            rest = r;
        } else {
            let text = rest.chars().take_while(|c| !c.is_ascii_digit()).count();
            let (t, r) =
                rest.split_at(rest.char_indices().nth(text).map_or(rest.len(), |(i, _)| i));
            key.push((1, 0, t.to_string()));
            rest = r;
        }
    }
    key
}

/// The width a pattern's conversion spells (for messages).
fn digits_of(pattern: &str) -> String {
    let after = pattern.rsplit_once('%').map_or("", |(_, a)| a);
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').to_string()
}

/// The printf-style pattern `input` spells, if any; a pattern whose number is
/// too wide for a file name is an error.
fn checked_pattern(input: &str) -> Result<Option<Pattern>, DecodeError> {
    let Some(pattern) = Pattern::parse(input) else {
        return Ok(None);
    };
    if pattern.too_wide() {
        return Err(DecodeError::InvalidInput {
            input: input.to_string(),
            reason: format!(
                "the pattern's number is wider than a file name ({} digits, at most {MAX_WIDTH})",
                digits_of(input)
            ),
        });
    }
    Ok(Some(pattern))
}

/// The file name the printf-style pattern `input` (`img_%04d.png`) gives image
/// number `n`, as a sequence is listed; `None` when `input` is not such a pattern,
/// an error for a pattern a sequence refuses. A pattern is text from the command
/// line: this is the entry point for testing its reader on any text.
pub fn pattern_file(input: &str, n: u64) -> Result<Option<PathBuf>, DecodeError> {
    Ok(checked_pattern(input)?.map(|pattern| pattern.path(n)))
}

/// The files of the sequence `input`.
fn list(input: &str) -> Result<Vec<PathBuf>, DecodeError> {
    let path = Path::new(input);
    let files = if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| DecodeError::Io {
            input: input.to_string(),
            context: "cannot list the directory",
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_image_file(p))
            .collect();
        files.sort_by_cached_key(|p| {
            natural_key(&p.file_name().unwrap_or_default().to_string_lossy())
        });
        files
    } else if let Some(pattern) = checked_pattern(input)? {
        pattern.files()
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Err(DecodeError::NotFound {
            input: input.to_string(),
        });
    };
    if files.is_empty() {
        return Err(if path.is_dir() {
            DecodeError::NotVideo {
                input: input.to_string(),
                detail: "the directory has no .png, .jpg or .jpeg files".into(),
            }
        } else {
            DecodeError::NotFound {
                input: input.to_string(),
            }
        });
    }
    Ok(files)
}

/// One image's decoder, with its size checked against the limits before anything
/// is decoded.
fn decoder(
    input: &str,
    path: &Path,
    limits: &Limits,
    at: Position,
) -> Result<(impl ImageDecoder + use<>, &'static str), DecodeError> {
    let image_err = |detail: String| DecodeError::Image {
        input: input.to_string(),
        path: path.to_path_buf(),
        at,
        detail,
    };
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(image_err("the file is empty".into()));
    }
    let reader = ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .map_err(|e| image_err(e.to_string()))?;
    let codec = match reader.format() {
        Some(image::ImageFormat::Png) => "png",
        Some(image::ImageFormat::Jpeg) => "mjpeg",
        _ => "image",
    };
    let dec = reader
        .into_decoder()
        .map_err(|e| image_err(e.to_string()))?;
    let (w, h) = dec.dimensions();
    limits.check(input, u64::from(w), u64::from(h))?;
    Ok((dec, codec))
}

/// The frame format an image's colour type maps to without conversion, if any.
fn native_format(color: ColorType) -> Option<PixelFormat> {
    match color {
        ColorType::L8 => Some(PixelFormat::Gray8),
        ColorType::Rgb8 => Some(PixelFormat::Rgb24),
        ColorType::Rgba8 => Some(PixelFormat::Rgba),
        _ => None,
    }
}

fn info_for(input: &str, files: usize, fps: f64, first: (u32, u32, ColorType, &str)) -> VideoInfo {
    let (w, h, color, codec) = first;
    VideoInfo {
        input: input.to_string(),
        container: Some("image2".into()),
        codec: codec.to_string(),
        pixel_format: native_format(color)
            .map_or("rgb24", PixelFormat::name)
            .into(),
        width: w,
        height: h,
        rotation: 0,
        fps,
        frames: Some(files as u64),
        duration_s: Some(files as f64 / fps),
        variable_frame_rate: false,
        bit_rate: None,
        decoder: DecoderInfo::software("images", codec),
    }
}

/// What the sequence `input` holds (from its first image).
pub(crate) fn probe(input: &str, opts: &DecodeOptions) -> Result<VideoInfo, DecodeError> {
    let files = list(input)?;
    let (dec, codec) = decoder(input, &files[0], &opts.limits, Position::START)?;
    let (w, h) = dec.dimensions();
    Ok(info_for(
        input,
        files.len(),
        opts.sequence_fps,
        (w, h, dec.color_type(), codec),
    ))
}

/// An image sequence decoded in process.
#[derive(Debug)]
pub struct ImageSequence {
    input: String,
    files: Vec<PathBuf>,
    info: VideoInfo,
    pool: FramePool,
    format: PixelFormat,
    limits: Limits,
    fps: f64,
    native_size: (u32, u32),
    base_size: (u32, u32),
    sampler: Sampler,
    scale: ScaleControl,
    shaper: Shaper,
    scratch: Vec<u8>,
    next: usize,
    last: Position,
    done: bool,
}

impl ImageSequence {
    /// Opens the sequence `input`, reading the first image's header.
    pub fn open(input: &str, opts: &DecodeOptions, pool: &FramePool) -> Result<Self, DecodeError> {
        opts.validate(input)?;
        let files = list(input)?;
        let (dec, codec) = decoder(input, &files[0], &opts.limits, Position::START)?;
        let (w, h) = dec.dimensions();
        let info = info_for(
            input,
            files.len(),
            opts.sequence_fps,
            (w, h, dec.color_type(), codec),
        );
        Ok(Self {
            input: input.to_string(),
            files,
            info,
            pool: pool.clone(),
            format: opts.format,
            limits: opts.limits,
            fps: opts.sequence_fps,
            native_size: (w, h),
            base_size: opts.size.unwrap_or((w, h)),
            sampler: Sampler::new(&opts.sampling),
            scale: ScaleControl::new(opts.scale.clone()),
            shaper: Shaper::new(),
            scratch: Vec::new(),
            next: 0,
            last: Position::START,
            done: false,
        })
    }

    /// The image files, in frame order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The next frame, `None` at the end, or the error that ended the stream.
    pub fn read_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        if self.done {
            return None;
        }
        let step = self.step();
        crate::until_done(&mut self.done, step)
    }

    fn step(&mut self) -> Result<Option<Frame>, DecodeError> {
        while self.next < self.files.len() {
            let i = self.next;
            self.next += 1;
            let index = i as u64;
            let pts = index as f64 / self.fps;
            match self.sampler.judge(pts) {
                Verdict::End => return Ok(None),
                Verdict::Skip => continue,
                Verdict::Keep => {}
            }
            self.scale.poll();
            let size = scaled_size(self.base_size, self.scale.factor());
            let frame = self.decode(i, size, index, pts)?;
            self.last = Position::after(index, pts);
            return Ok(Some(frame));
        }
        Ok(None)
    }

    fn decode(
        &mut self,
        i: usize,
        size: (u32, u32),
        index: u64,
        pts: f64,
    ) -> Result<Frame, DecodeError> {
        let path = self.files[i].clone();
        let image_err = |detail: String| DecodeError::Image {
            input: self.input.clone(),
            path: path.clone(),
            at: self.last,
            detail,
        };
        let (dec, _) = decoder(&self.input, &path, &self.limits, self.last)?;
        let (w, h) = dec.dimensions();
        let mut buf = frame_buffer(&self.pool, &self.input, self.format, size)?;
        match native_format(dec.color_type()) {
            Some(f) if f == self.format && (w, h) == size => {
                // Straight into the frame's buffer.
                dec.read_image(&mut buf)
                    .map_err(|e| image_err(e.to_string()))?;
            }
            Some(f) => {
                let len = f.frame_size(w, h).unwrap_or(0);
                self.scratch.resize(len, 0);
                dec.read_image(&mut self.scratch)
                    .map_err(|e| image_err(e.to_string()))?;
                self.shaper
                    .shape(&self.scratch, f, (w, h), &mut buf, self.format, size)
                    .map_err(|e| image_err(e.to_string()))?;
            }
            None => {
                // 16-bit, gray with alpha…: the image crate brings it to 8-bit RGB.
                let rgb = DynamicImage::from_decoder(dec)
                    .map_err(|e| image_err(e.to_string()))?
                    .into_rgb8();
                self.shaper
                    .shape(
                        rgb.as_raw(),
                        PixelFormat::Rgb24,
                        (w, h),
                        &mut buf,
                        self.format,
                        size,
                    )
                    .map_err(|e| image_err(e.to_string()))?;
            }
        }
        let frame = crate::decoded_frame(
            &self.input,
            buf,
            self.format,
            size,
            self.native_size,
            (index, pts),
        )?;
        Ok(frame)
    }
}

crate::in_process_source!(ImageSequence, input);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = Pattern::parse("frames/img_%04d.png").unwrap();
        assert_eq!(p.path(7), PathBuf::from("frames/img_0007.png"));
        let p = Pattern::parse("a%%b%d.jpg").unwrap();
        assert_eq!(p.path(12), PathBuf::from("a%b12.jpg"));
        assert!(Pattern::parse("plain.png").is_none());
        assert!(Pattern::parse("two%d%d.png").is_none());
        assert!(Pattern::parse("bad%s.png").is_none());
        assert!(Pattern::parse("100%%.png").is_none());
        assert!(Pattern::parse("img%065536d.png").unwrap().too_wide());
        assert!(
            Pattern::parse("img%099999999999999999999999d.png")
                .unwrap()
                .too_wide()
        );
        let e = list("img%065536d.png").unwrap_err().to_string();
        assert!(e.contains("img%065536d.png") && e.contains("65536"), "{e}");
    }

    #[test]
    fn natural_order() {
        let mut names = vec!["img10.png", "img2.png", "img1.png", "a.png"];
        names.sort_by_cached_key(|n| natural_key(n));
        assert_eq!(names, ["a.png", "img1.png", "img2.png", "img10.png"]);
    }
}
