//! A file's identity: what must be unchanged for a cached result to stand.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::CacheError;

/// How much of each end of a file the fingerprint reads.
pub const FINGERPRINT_SPAN: u64 = 1 << 20;

/// Who a file is, as far as the cache is concerned: its canonical path, size,
/// modification time (nanoseconds since the Unix epoch) and a 128-bit xxh3
/// fingerprint of its first and last mebibyte.
///
/// A file is "unchanged" when all four are equal. The fingerprint catches edits
/// that keep the size and restore the modification time; size and time catch edits
/// in the middle of a large file, which the fingerprint does not read. Take the
/// identity *before* analysing the file, so that a file rewritten during the
/// analysis is stored under its old identity and misses next time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// The canonical (absolute, symlinks resolved) path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i64,
    /// xxh3-128 of the first [`FINGERPRINT_SPAN`] bytes followed by the last
    /// [`FINGERPRINT_SPAN`] bytes (without overlap: a file of at most two spans is
    /// hashed whole).
    pub fingerprint: u128,
}

impl FileIdentity {
    /// Reads the identity of the file at `path`: resolves the path, then takes the
    /// size and modification time from the same open handle the fingerprint is read
    /// through. Reads at most 2 MiB.
    pub fn of(path: impl AsRef<Path>) -> Result<Self, CacheError> {
        let path = path.as_ref();
        let err = |source| CacheError::Identity {
            path: path.to_path_buf(),
            source,
        };
        let canonical = path.canonicalize().map_err(err)?;
        let mut file = File::open(&canonical).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mtime_ns = unix_nanos(meta.modified().map_err(err)?);
        let size = meta.len();
        let fingerprint = fingerprint(&mut file, size).map_err(err)?;
        Ok(Self {
            path: canonical,
            size,
            mtime_ns,
            fingerprint,
        })
    }

    /// The path as the bytes stored in the cache's key.
    pub(crate) fn path_key(&self) -> &[u8] {
        self.path.as_os_str().as_encoded_bytes()
    }
}

/// Nanoseconds since the Unix epoch, negative before it, saturating at the ends of
/// `i64` (the years 1677 and 2262).
fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

fn fingerprint(file: &mut File, size: u64) -> io::Result<u128> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; FINGERPRINT_SPAN as usize];
    let head = read_up_to(file, &mut buf)?;
    hasher.update(&buf[..head]);
    if size > 2 * FINGERPRINT_SPAN {
        file.seek(SeekFrom::End(-(FINGERPRINT_SPAN as i64)))?;
        let tail = read_up_to(file, &mut buf)?;
        hasher.update(&buf[..tail]);
    } else if size > FINGERPRINT_SPAN {
        // Between one and two spans: the rest of the file, read on from the head.
        let tail = read_up_to(file, &mut buf)?;
        hasher.update(&buf[..tail]);
    }
    Ok(hasher.digest128())
}

/// Fills `buf` as far as the file goes.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, data: &[u8]) {
        let mut f = File::create(path).unwrap();
        f.write_all(data).unwrap();
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn identity_resolves_the_path_and_reads_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write(&p, &pattern(1000));
        let id = FileIdentity::of(dir.path().join(".").join("a.bin")).unwrap();
        assert_eq!(id.path, p.canonicalize().unwrap());
        assert_eq!(id.size, 1000);
        assert!(id.mtime_ns > 0);
    }

    #[test]
    fn fingerprint_sees_the_head_and_the_tail_but_not_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        let len = 3 * FINGERPRINT_SPAN as usize;
        let base = pattern(len);
        write(&p, &base);
        let original = FileIdentity::of(&p).unwrap().fingerprint;

        for (at, changes) in [(10, true), (len - 10, true), (len / 2, false)] {
            let mut data = base.clone();
            data[at] ^= 0xff;
            write(&p, &data);
            let fp = FileIdentity::of(&p).unwrap().fingerprint;
            assert_eq!(fp != original, changes, "byte {at}");
        }
    }

    #[test]
    fn files_between_one_and_two_spans_are_hashed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mid.bin");
        let len = FINGERPRINT_SPAN as usize + 5000;
        let base = pattern(len);
        write(&p, &base);
        let original = FileIdentity::of(&p).unwrap().fingerprint;
        let mut data = base;
        data[len - 1] ^= 1;
        write(&p, &data);
        assert_ne!(FileIdentity::of(&p).unwrap().fingerprint, original);
    }

    #[test]
    fn missing_files_and_directories_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.mp4");
        let e = FileIdentity::of(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.mp4"), "{e}");
        let e = FileIdentity::of(dir.path()).unwrap_err();
        assert!(matches!(e, CacheError::Identity { .. }), "{e}");
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        let t = UNIX_EPOCH - std::time::Duration::from_secs(2);
        assert_eq!(unix_nanos(t), -2_000_000_000);
        assert_eq!(unix_nanos(UNIX_EPOCH), 0);
    }
}
