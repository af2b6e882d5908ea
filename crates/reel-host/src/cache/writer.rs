//! Streaming an entry in: lines are compressed into an unnamed temporary file and
//! copied into the database in one transaction at the end.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use xxhash_rust::xxh3::Xxh3;

use super::{Cache, CacheError, FileIdentity, PutOutcome, StoreItem};

/// zstd's level 3: its default, about 300 MB/s on JSON lines, within a few percent
/// of the higher levels' ratio on them.
const LEVEL: i32 = 3;

/// An entry being written. Lines go through zstd into a temporary file in the cache
/// directory that has no name (it disappears with the process, however it ends), so
/// memory stays flat whatever the number of frames. Nothing is visible to other
/// processes until [`EntryWriter::commit`]; dropping the writer discards the entry.
///
/// Lines may be given one at a time ([`EntryWriter::write_line`]) or as raw JSONL
/// bytes through [`std::io::Write`] (each line ending in `\n`), for instance by
/// writing the same buffer to the output file and to the writer.
pub struct EntryWriter {
    cache: Cache,
    identity: FileIdentity,
    options: String,
    encoder: zstd::stream::write::Encoder<'static, HashingFile>,
    lines: u64,
    raw_bytes: u64,
    terminated: bool,
}

impl std::fmt::Debug for EntryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryWriter")
            .field("path", &self.identity.path)
            .field("options", &self.options)
            .field("lines", &self.lines)
            .field("raw_bytes", &self.raw_bytes)
            .finish_non_exhaustive()
    }
}

/// The temporary file, hashing and counting what goes in.
struct HashingFile {
    file: File,
    hasher: Xxh3,
    len: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl EntryWriter {
    pub(crate) fn new(
        cache: Cache,
        identity: FileIdentity,
        options: String,
    ) -> Result<Self, CacheError> {
        let temp_err = |source| CacheError::Temp {
            dir: cache.dir().to_path_buf(),
            source,
        };
        let file = tempfile::tempfile_in(cache.dir()).map_err(temp_err)?;
        let sink = HashingFile {
            file,
            hasher: Xxh3::new(),
            len: 0,
        };
        let mut encoder = zstd::stream::write::Encoder::new(sink, LEVEL).map_err(temp_err)?;
        encoder.include_checksum(true).map_err(temp_err)?;
        Ok(Self {
            cache,
            identity,
            options,
            encoder,
            lines: 0,
            raw_bytes: 0,
            terminated: true,
        })
    }

    /// Appends one frame line, given without its line break.
    pub fn write_line(&mut self, line: &str) -> Result<(), CacheError> {
        if !self.terminated {
            return Err(CacheError::UnterminatedLine);
        }
        if line.as_bytes().contains(&b'\n') {
            return Err(CacheError::LineBreak { line: self.lines });
        }
        self.encoder
            .write_all(line.as_bytes())
            .and_then(|()| self.encoder.write_all(b"\n"))
            .map_err(|source| self.temp_err(source))?;
        self.lines += 1;
        self.raw_bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes written so far, before compression.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Stores the entry with its summary JSON, replacing any entry for the same path
    /// and options, then prunes to the cache's policy, all in one transaction.
    /// Entries larger than the whole size budget are not kept
    /// ([`PutOutcome::stored`] is false).
    pub fn commit(self, summary: &str) -> Result<PutOutcome, CacheError> {
        if !self.terminated {
            return Err(CacheError::UnterminatedLine);
        }
        let dir = self.cache.dir().to_path_buf();
        let temp_err = |source| CacheError::Temp {
            dir: dir.clone(),
            source,
        };
        let HashingFile {
            mut file,
            hasher,
            len,
        } = self.encoder.finish().map_err(temp_err)?;
        file.seek(SeekFrom::Start(0)).map_err(temp_err)?;
        self.cache.store(StoreItem {
            identity: &self.identity,
            options: &self.options,
            summary,
            frames: &mut file,
            frames_len: len,
            checksum: hasher.digest(),
            frame_lines: self.lines,
            frames_raw_bytes: self.raw_bytes,
        })
    }

    fn temp_err(&self, source: io::Error) -> CacheError {
        CacheError::Temp {
            dir: self.cache.dir().to_path_buf(),
            source,
        }
    }
}

/// Raw JSONL: every line must end with `\n` by the time of the commit.
impl Write for EntryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        let written = &buf[..n];
        self.lines += written.iter().filter(|&&b| b == b'\n').count() as u64;
        self.raw_bytes += n as u64;
        if let Some(&last) = written.last() {
            self.terminated = last == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
    }
}
