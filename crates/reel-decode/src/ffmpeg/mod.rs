//! The ffmpeg backend: the system's `ffmpeg` and `ffprobe` programs as child
//! processes.
//!
//! [`FfmpegSource`] probes with ffprobe's JSON output, then runs ffmpeg with the
//! video stream scaled and converted inside ffmpeg and written as raw frames on a
//! pipe; each frame is read with one exact read into its pooled buffer. Sampling is
//! done by `select` filters inside ffmpeg, so skipped frames are never converted or
//! copied. Every frame's presentation time comes from ffmpeg itself (a `showinfo`
//! filter on stderr), so variable-frame-rate input gets its real times.
//! [`FfmpegEncoder`] is the other direction: raw frames in on a pipe, H.264 out.
//!
//! With the `libav` feature, `LibavSource` decodes a local file in reel's own
//! process through the same libraries, for callers that ask for
//! [`Backend::Libav`](crate::Backend::Libav); inputs it does not take go to the child
//! process.

mod decode;
mod encode;
#[cfg(feature = "libav")]
pub(crate) mod libav;
#[cfg(not(feature = "libav"))]
#[path = "no_libav.rs"]
pub(crate) mod libav;
mod log;
mod probe;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

pub use decode::FfmpegSource;
pub use encode::{EncoderOptions, FfmpegEncoder};
#[cfg(feature = "libav")]
pub use libav::LibavSource;
pub use log::{LogSummary, read_log};
pub use probe::{StreamEntry, count_frames, info_from_ffprobe_json, streams};

use crate::error::DecodeError;
use crate::info::VideoInfo;
use crate::options::{DecodeOptions, FFMPEG_ENV, FFPROBE_ENV, FfmpegTools};

/// What ffprobe finds in `input`.
pub fn probe(input: &str, opts: &DecodeOptions) -> Result<VideoInfo, DecodeError> {
    let inp = Input::new(input)?;
    Ok(probe::probe(&inp, &opts.tools, &opts.limits)?.info)
}

/// An input as ffmpeg will be given it.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    name: String,
    /// A regular file (seekable, passed with the `file:` protocol).
    file: Option<PathBuf>,
}

impl Input {
    /// Classifies `input`: a URL (`scheme://…`) is passed on as is; anything else is
    /// a path, which must exist, and a regular file must not be empty.
    pub(crate) fn new(input: &str) -> Result<Self, DecodeError> {
        if is_url(input) {
            return Ok(Self {
                name: input.to_string(),
                file: None,
            });
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => DecodeError::NotFound {
                input: input.to_string(),
            },
            _ => DecodeError::Io {
                input: input.to_string(),
                context: "cannot read the file",
                source: e,
            },
        })?;
        if meta.is_dir() {
            return Err(DecodeError::NotVideo {
                input: input.to_string(),
                detail: "a directory with no images in it".into(),
            });
        }
        if meta.is_file() && meta.len() == 0 {
            return Err(DecodeError::Empty {
                input: input.to_string(),
            });
        }
        Ok(Self {
            name: input.to_string(),
            file: meta.is_file().then(|| path.to_path_buf()),
        })
    }

    /// The input as given.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The path, when it is a regular file.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether it is a regular file (which can be read again and sought in).
    pub(crate) fn is_local_file(&self) -> bool {
        self.file.is_some()
    }

    /// The options that bound a network input's waits (connecting, each read) to
    /// `limits.network_timeout`, given before `-i`; none for a file or a device.
    /// A stream that is not a regular file (a URL, a pipe) is probed for
    /// `limits.network_probe` when set.
    pub(crate) fn network_args(&self, limits: &crate::options::Limits) -> Vec<String> {
        let mut args = Vec::new();
        if self.file.is_some() {
            return args;
        }
        if let Some(probe) = limits.network_probe {
            args.extend([
                "-analyzeduration".into(),
                probe.as_micros().max(1).to_string(),
            ]);
        }
        if !is_url(&self.name) {
            return args;
        }
        let us = limits.network_timeout.as_micros().max(1).to_string();
        if self.name.starts_with("rtsp://") || self.name.starts_with("rtsps://") {
            // The RTSP demuxer refuses `rw_timeout`: its `timeout` bounds each
            // socket operation, connecting included. Interleaved in the TCP
            // connection: no UDP ports to open, no loss.
            args.extend([
                "-timeout".into(),
                us,
                "-rtsp_transport".into(),
                "tcp".into(),
            ]);
        } else {
            // `rw_timeout` bounds every read and write of any protocol; `timeout`
            // is the connect (and socket) timeout of tcp, http and rtmp.
            args.extend(["-rw_timeout".into(), us.clone(), "-timeout".into(), us]);
        }
        args
    }

    /// The argument for `-i`: `file:PATH` for files, so that no part of a file name is
    /// taken for a protocol; the input as given otherwise (URLs, devices).
    pub(crate) fn ffmpeg_arg(&self) -> OsString {
        match &self.file {
            Some(p) => {
                let mut s = OsString::from("file:");
                s.push(p.as_os_str());
                s
            }
            None => OsString::from(&self.name),
        }
    }
}

/// `scheme://…` or a few well-known `scheme:` forms ffmpeg reads.
fn is_url(s: &str) -> bool {
    if let Some((scheme, _)) = s.split_once("://") {
        return !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    }
    false
}

/// The error for an external program that could not be started.
pub(crate) fn tool_error(
    input: &str,
    program: &Path,
    env: &'static str,
    source: io::Error,
) -> DecodeError {
    DecodeError::ToolMissing {
        input: input.to_string(),
        program: program.to_path_buf(),
        env,
        source,
    }
}

/// The environment variable that names `program` (for messages).
pub(crate) fn env_for(tools: &FfmpegTools, program: &Path) -> &'static str {
    if program == tools.ffprobe {
        FFPROBE_ENV
    } else {
        FFMPEG_ENV
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert!(is_url("rtsp://camera.local/stream"));
        assert!(is_url("http://x/y.mp4"));
        assert!(!is_url("clip.mp4"));
        assert!(!is_url("dir/a:b.mp4"));
        assert!(!is_url("://nothing"));
        let e = Input::new("/definitely/not/here.mp4").unwrap_err();
        assert!(matches!(e, DecodeError::NotFound { .. }), "{e}");
    }
}
