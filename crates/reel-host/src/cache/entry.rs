//! A cached result as it comes back from a hit.

use std::io::{self, BufRead, Write};
use std::time::SystemTime;

use super::CacheError;

/// A hit: the summary JSON exactly as stored and the frame lines, still compressed,
/// decompressed as they are read. Memory: the compressed lines, plus one buffer
/// while reading.
#[derive(Clone)]
pub struct Entry {
    summary: String,
    frame_lines: u64,
    frames_raw_bytes: u64,
    compressed: Vec<u8>,
    created: SystemTime,
    last_access: SystemTime,
    hits: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("summary_len", &self.summary.len())
            .field("frame_lines", &self.frame_lines)
            .field("frames_raw_bytes", &self.frames_raw_bytes)
            .field("compressed_len", &self.compressed.len())
            .field("created", &self.created)
            .field("hits", &self.hits)
            .finish()
    }
}

impl Entry {
    pub(crate) fn new(
        summary: String,
        frame_lines: u64,
        frames_raw_bytes: u64,
        compressed: Vec<u8>,
        created: SystemTime,
        last_access: SystemTime,
        hits: u64,
    ) -> Self {
        Self {
            summary,
            frame_lines,
            frames_raw_bytes,
            compressed,
            created,
            last_access,
            hits,
        }
    }

    /// The summary JSON, as given to the commit.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Number of frame lines.
    pub fn frame_lines(&self) -> u64 {
        self.frame_lines
    }

    /// Size of the frame lines once decompressed (line breaks included).
    pub fn frames_raw_bytes(&self) -> u64 {
        self.frames_raw_bytes
    }

    /// Size of the frame lines as stored.
    pub fn frames_compressed_bytes(&self) -> u64 {
        self.compressed.len() as u64
    }

    /// When the entry was stored.
    pub fn created(&self) -> SystemTime {
        self.created
    }

    /// When the entry was last used before this hit.
    pub fn last_access(&self) -> SystemTime {
        self.last_access
    }

    /// Hits served before this one.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Writes the frame lines to `out` exactly as they were given, each followed by
    /// `\n`: the JSONL file a fresh run would have written. Returns the bytes
    /// written.
    pub fn write_frames_to<W: Write + ?Sized>(&self, out: &mut W) -> Result<u64, CacheError> {
        let mut decoder = self.decoder()?;
        io::copy(&mut decoder, out).map_err(CacheError::Frames)
    }

    /// The frame lines one by one, without their line breaks.
    pub fn frames(&self) -> Result<FrameLines<'_>, CacheError> {
        Ok(FrameLines {
            decoder: io::BufReader::new(self.decoder()?),
            buf: String::new(),
        })
    }

    fn decoder(&self) -> Result<zstd::stream::read::Decoder<'static, &[u8]>, CacheError> {
        zstd::stream::read::Decoder::with_buffer(self.compressed.as_slice())
            .map_err(CacheError::Frames)
    }
}

/// Iterator over an [`Entry`]'s frame lines.
pub struct FrameLines<'a> {
    decoder: io::BufReader<zstd::stream::read::Decoder<'static, &'a [u8]>>,
    buf: String,
}

impl std::fmt::Debug for FrameLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameLines").finish_non_exhaustive()
    }
}

impl Iterator for FrameLines<'_> {
    type Item = Result<String, CacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.decoder.read_line(&mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                if self.buf.ends_with('\n') {
                    self.buf.pop();
                }
                Some(Ok(self.buf.clone()))
            }
            Err(e) => Some(Err(CacheError::Frames(e))),
        }
    }
}
