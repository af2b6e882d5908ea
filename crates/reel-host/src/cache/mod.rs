//! The analysis cache: results of past runs, keyed by the file they came from and
//! the options that shaped them, so an unchanged file is never analysed twice.
//!
//! One SQLite database (`cache.sqlite3`) in the cache directory, in WAL mode with a
//! busy timeout, so any number of reel processes may read and write it at once.
//!
//! - **Key**: the file's [`FileIdentity`] (canonical path, size, modification time,
//!   fingerprint of the first and last MiB) and an options string given by the
//!   caller. The caller makes the string canonical (fixed field order) and puts in
//!   it every option that changes the results *and* the version of its result
//!   format; a different string is a different entry. One entry is kept per path
//!   and options: storing a result for a changed file replaces the old one, and
//!   looking up a changed file misses.
//! - **Value**: the summary JSON, verbatim, and the per-frame JSONL lines,
//!   compressed with zstd (numbers in JSON text shrink four- to eightfold, and
//!   decompression runs at over 1 GB/s, so a hit costs little more than reading
//!   the compressed bytes).
//! - **Writing**: [`Cache::writer`] streams lines through the compressor into an
//!   unnamed temporary file in the cache directory, so a long list of frames is
//!   never held in memory; [`EntryWriter::commit`] then copies it into the database
//!   in one transaction (the only time the write lock is held). A process killed
//!   before or during that transaction leaves no trace: the temporary file has no
//!   name and SQLite rolls an unfinished transaction back.
//! - **Pruning**: least recently used first, by total size and by age since the last
//!   access ([`PrunePolicy`]). Every commit prunes to the cache's policy in the same
//!   transaction; [`Cache::prune`] does it on demand.
//!
//! Knows nothing of video, analysis or the command line: the summary and the lines
//! are opaque text to it.

mod entry;
mod identity;
mod schema;
mod writer;

use std::fmt;
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

pub use entry::{Entry, FrameLines};
pub use identity::{FINGERPRINT_SPAN, FileIdentity};
pub use schema::{BUSY_TIMEOUT, FORMAT_VERSION};
pub use writer::EntryWriter;

/// The database's file name inside the cache directory.
pub const DB_FILE: &str = "cache.sqlite3";

/// Bytes counted for each entry besides its data (row, index and page overhead,
/// roughly), so that many tiny entries still add up.
pub const ENTRY_OVERHEAD: u64 = 256;

/// Why the cache could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be created.
    #[error("cannot create the cache directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file's identity could not be read.
    #[error("cannot read {path}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// SQLite failed.
    #[error("cache database {path}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file is damaged or is not a database; [`remove_database`]
    /// deletes it so that the next open starts afresh.
    #[error("cache database {path} is damaged")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer reel.
    #[error(
        "cache database {path} has format {found}, newer than this reel's {FORMAT_VERSION}: \
         use a newer reel or another cache directory"
    )]
    NewerFormat {
        /// The database file.
        path: PathBuf,
        /// The format found.
        found: i64,
    },
    /// The temporary file of an entry being written failed.
    #[error("writing the cache's temporary file in {dir}")]
    Temp {
        /// The cache directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A frame line given to [`EntryWriter::write_line`] contains a newline.
    #[error("frame line {line} contains a line break")]
    LineBreak {
        /// 0-based number of the line.
        line: u64,
    },
    /// The bytes written to an [`EntryWriter`] do not end with a newline.
    #[error("the last frame line is not terminated by a newline")]
    UnterminatedLine,
    /// Stored frames could not be decompressed.
    #[error("reading cached frame lines")]
    Frames(#[source] io::Error),
}

/// Where the time comes from; tests inject their own to make ages deterministic.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// What pruning keeps: at most `max_bytes` in all, nothing unused for longer than
/// `max_age`. The least recently used entries go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    /// The size budget in bytes (entries' data plus [`ENTRY_OVERHEAD`] each).
    pub max_bytes: u64,
    /// The longest an entry may go without being read or written.
    pub max_age: Duration,
}

impl PrunePolicy {
    /// 500 MB.
    pub const DEFAULT_MAX_BYTES: u64 = 500_000_000;
    /// 30 days.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
}

impl Default for PrunePolicy {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_age: Self::DEFAULT_MAX_AGE,
        }
    }
}

/// What a prune or clear removed and what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PruneReport {
    /// Entries removed because they were unused for longer than the age limit.
    pub removed_by_age: u64,
    /// Entries removed to get under the size budget.
    pub removed_by_size: u64,
    /// Bytes those entries counted for.
    pub removed_bytes: u64,
    /// Entries left.
    pub remaining_entries: u64,
    /// Bytes left.
    pub remaining_bytes: u64,
}

impl PruneReport {
    /// All entries removed.
    pub fn removed_entries(&self) -> u64 {
        self.removed_by_age + self.removed_by_size
    }
}

/// What [`Cache::clear`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Cleared {
    /// Entries removed.
    pub removed_entries: u64,
    /// Bytes they counted for.
    pub removed_bytes: u64,
}

/// What [`EntryWriter::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// False when the entry alone was larger than the size budget and was not kept.
    pub stored: bool,
    /// Bytes the entry counts for.
    pub stored_bytes: u64,
    /// Frame lines in the entry.
    pub frame_lines: u64,
    /// What the prune that followed the commit removed.
    pub pruned: PruneReport,
}

/// The cache's contents, in figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStats {
    /// The cache directory.
    pub dir: PathBuf,
    /// The database file.
    pub db_path: PathBuf,
    /// Entries held.
    pub entries: u64,
    /// Bytes they count for (the figure the size budget applies to).
    pub stored_bytes: u64,
    /// Their frame lines before compression, in bytes.
    pub frames_raw_bytes: u64,
    /// Their frame lines, in all.
    pub frame_lines: u64,
    /// Hits served, in all, by the entries still held.
    pub hits: u64,
    /// The database's files on disk (database, write-ahead log, shared memory).
    pub file_bytes: u64,
    /// The least recent access, if any entry.
    pub oldest_access: Option<SystemTime>,
    /// The most recent access, if any entry.
    pub newest_access: Option<SystemTime>,
}

/// The user's default cache directory: `$XDG_CACHE_HOME/reel`, else
/// `~/.cache/reel` on Linux (the platform's cache directory elsewhere). `None`
/// when there is no home directory.
pub fn default_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("reel"))
}

/// Deletes the database files in `dir` (for a damaged cache: see
/// [`CacheError::Corrupt`]). Returns the bytes freed. Other processes that have
/// the database open keep their (now unlinked) copy until they close it.
pub fn remove_database(dir: &Path) -> Result<u64, CacheError> {
    let mut freed = 0;
    for path in db_files(&dir.join(DB_FILE)) {
        match fs::metadata(&path) {
            Ok(meta) => {
                fs::remove_file(&path).map_err(|source| CacheError::CreateDir {
                    path: path.clone(),
                    source,
                })?;
                freed += meta.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(CacheError::CreateDir { path, source }),
        }
    }
    Ok(freed)
}

fn db_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// A handle on the cache in one directory. Cloning is cheap and shares the
/// connection; the handle may be used from several threads. Separate processes
/// each open their own.
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
    policy: PrunePolicy,
}

struct Inner {
    dir: PathBuf,
    db_path: PathBuf,
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("db_path", &self.db_path)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// The columns `get` reads, in order.
struct Row {
    id: i64,
    size: i64,
    mtime_ns: i64,
    fingerprint: Vec<u8>,
    summary: String,
    frame_lines: i64,
    frames_raw_bytes: i64,
    checksum: i64,
    created_ms: i64,
    accessed_ms: i64,
    hits: i64,
    data: Vec<u8>,
}

impl Cache {
    /// Opens (creating it if needed) the cache in `dir`, with the default
    /// [`PrunePolicy`] and the system clock.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, CacheError> {
        Self::open_with_clock(dir, Arc::new(SystemClock))
    }

    /// Opens the cache in `dir`, reading the time from `clock`.
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CacheError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| CacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let db_path = dir.join(DB_FILE);
        let conn = {
            let db_err = db_error(&db_path);
            let mut conn = Connection::open(&db_path).map_err(&db_err)?;
            schema::prepare(&mut conn).map_err(|e| match e {
                schema::PrepareError::Db(e) => db_err(e),
                schema::PrepareError::Newer(found) => CacheError::NewerFormat {
                    path: db_path.clone(),
                    found,
                },
            })?;
            conn
        };
        tracing::debug!(db = %db_path.display(), "cache opened");
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                db_path,
                conn: Mutex::new(conn),
                clock,
            }),
            policy: PrunePolicy::default(),
        })
    }

    /// This handle, pruning to `policy` after every commit.
    pub fn with_policy(mut self, policy: PrunePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy commits prune to.
    pub fn policy(&self) -> PrunePolicy {
        self.policy
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// The entry stored for this file and these options, if the file is unchanged
    /// since. A hit marks the entry as used now.
    pub fn get(&self, identity: &FileIdentity, options: &str) -> Result<Option<Entry>, CacheError> {
        let now = self.now_ms();
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT e.id, e.size, e.mtime_ns, e.fingerprint, e.summary, e.frame_lines,
                        e.frames_raw_bytes, e.checksum, e.created_ms, e.accessed_ms, e.hits,
                        f.data
                 FROM entries e JOIN frames f ON f.entry_id = e.id
                 WHERE e.path = ?1 AND e.options = ?2",
                params![identity.path_key(), options],
                |r| {
                    Ok(Row {
                        id: r.get(0)?,
                        size: r.get(1)?,
                        mtime_ns: r.get(2)?,
                        fingerprint: r.get(3)?,
                        summary: r.get(4)?,
                        frame_lines: r.get(5)?,
                        frames_raw_bytes: r.get(6)?,
                        checksum: r.get(7)?,
                        created_ms: r.get(8)?,
                        accessed_ms: r.get(9)?,
                        hits: r.get(10)?,
                        data: r.get(11)?,
                    })
                },
            )
            .optional()
            .map_err(self.db_err())?;
        let Some(row) = row else {
            return Ok(None);
        };
        let same_file = u64::try_from(row.size).ok() == Some(identity.size)
            && row.mtime_ns == identity.mtime_ns
            && row.fingerprint.as_slice() == identity.fingerprint.to_le_bytes();
        if !same_file {
            // The stale entry stays until a new result replaces it or pruning
            // removes it.
            tracing::debug!(path = %identity.path.display(), "cache miss: the file changed");
            return Ok(None);
        }
        if entry_checksum(xxhash_rust::xxh3::xxh3_64(&row.data), &row.summary) as i64
            != row.checksum
        {
            tracing::warn!(
                path = %identity.path.display(),
                "a cache entry failed its checksum; removing it"
            );
            let tx = conn.unchecked_transaction().map_err(self.db_err())?;
            delete_entry(&tx, row.id).map_err(self.db_err())?;
            tx.commit().map_err(self.db_err())?;
            return Ok(None);
        }
        if let Err(e) = conn.execute(
            "UPDATE entries SET accessed_ms = max(accessed_ms, ?1), hits = hits + 1 WHERE id = ?2",
            params![now, row.id],
        ) {
            // The result is good; only its place in the LRU order is not updated.
            tracing::warn!(error = %e, "could not mark a cache entry as used");
        }
        Ok(Some(Entry::new(
            row.summary,
            to_u64(row.frame_lines),
            to_u64(row.frames_raw_bytes),
            row.data,
            from_ms(row.created_ms),
            from_ms(row.accessed_ms),
            to_u64(row.hits),
        )))
    }

    /// Starts an entry for this file and these options; lines go to a temporary
    /// file until [`EntryWriter::commit`]. Dropping the writer discards it.
    pub fn writer(
        &self,
        identity: &FileIdentity,
        options: &str,
    ) -> Result<EntryWriter, CacheError> {
        EntryWriter::new(self.clone(), identity.clone(), options.to_string())
    }

    /// Stores an entry in one call: the summary and the frame lines (each without
    /// its line break). Same as [`Cache::writer`], each line, then commit.
    pub fn put<I>(
        &self,
        identity: &FileIdentity,
        options: &str,
        summary: &str,
        frame_lines: I,
    ) -> Result<PutOutcome, CacheError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut w = self.writer(identity, options)?;
        for line in frame_lines {
            w.write_line(line.as_ref())?;
        }
        w.commit(summary)
    }

    /// Removes entries unused for longer than `policy.max_age`, then the least
    /// recently used until the rest fit in `policy.max_bytes`, and gives the freed
    /// space back to the file system.
    pub fn prune(&self, policy: PrunePolicy) -> Result<PruneReport, CacheError> {
        let now = self.now_ms();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.db_err())?;
        let report = prune_in(&tx, now, policy, None).map_err(self.db_err())?;
        tx.commit().map_err(self.db_err())?;
        if report.removed_entries() > 0 {
            schema::reclaim(&conn).map_err(self.db_err())?;
        }
        Ok(report)
    }

    /// Removes every entry and shrinks the files.
    pub fn clear(&self) -> Result<Cleared, CacheError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.db_err())?;
        let (entries, bytes) = totals(&tx).map_err(self.db_err())?;
        tx.execute_batch("DELETE FROM frames; DELETE FROM entries;")
            .map_err(self.db_err())?;
        tx.commit().map_err(self.db_err())?;
        schema::reclaim(&conn).map_err(self.db_err())?;
        // Readers in other processes may hold the log; then it is truncated later.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(self.db_err())?;
        Ok(Cleared {
            removed_entries: entries,
            removed_bytes: bytes,
        })
    }

    /// The cache's contents, in figures.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let conn = self.conn();
        let (entries, stored, raw, lines, hits, oldest, newest) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0), COALESCE(SUM(frames_raw_bytes), 0),
                        COALESCE(SUM(frame_lines), 0), COALESCE(SUM(hits), 0),
                        MIN(accessed_ms), MAX(accessed_ms)
                 FROM entries",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                },
            )
            .map_err(self.db_err())?;
        drop(conn);
        let file_bytes = db_files(&self.inner.db_path)
            .iter()
            .filter_map(|p| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        Ok(CacheStats {
            dir: self.inner.dir.clone(),
            db_path: self.inner.db_path.clone(),
            entries: to_u64(entries),
            stored_bytes: to_u64(stored),
            frames_raw_bytes: to_u64(raw),
            frame_lines: to_u64(lines),
            hits: to_u64(hits),
            file_bytes,
            oldest_access: oldest.map(from_ms),
            newest_access: newest.map(from_ms),
        })
    }

    /// Checks the database's structure (SQLite's `integrity_check`); `Ok(())` when
    /// sound, else the problems SQLite lists.
    pub fn check_integrity(&self) -> Result<Result<(), Vec<String>>, CacheError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(self.db_err())?;
        let problems = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.db_err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.db_err())?;
        Ok(if problems == ["ok"] {
            Ok(())
        } else {
            Err(problems)
        })
    }

    /// Copies a finished temporary file into the database as one entry, and prunes,
    /// all in one transaction.
    pub(crate) fn store(&self, item: StoreItem<'_>) -> Result<PutOutcome, CacheError> {
        let StoreItem {
            identity,
            options,
            summary,
            frames,
            frames_len,
            checksum,
            frame_lines,
            frames_raw_bytes,
        } = item;
        let path_key = identity.path_key();
        let stored_bytes =
            frames_len + (summary.len() + path_key.len() + options.len()) as u64 + ENTRY_OVERHEAD;
        if stored_bytes > self.policy.max_bytes {
            tracing::info!(
                stored_bytes,
                max_bytes = self.policy.max_bytes,
                "result larger than the cache's size budget; not cached"
            );
            return Ok(PutOutcome {
                stored: false,
                stored_bytes,
                frame_lines,
                pruned: PruneReport::default(),
            });
        }
        let now = self.now_ms();
        let mut conn = self.conn();
        let db_err = self.db_err();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db_err)?;
        let old: Option<i64> = tx
            .query_row(
                "SELECT id FROM entries WHERE path = ?1 AND options = ?2",
                params![path_key, options],
                |r| r.get(0),
            )
            .optional()
            .map_err(&db_err)?;
        if let Some(old) = old {
            delete_entry(&tx, old).map_err(&db_err)?;
        }
        tx.execute(
            "INSERT INTO entries (path, options, size, mtime_ns, fingerprint, summary,
                 frame_lines, frames_raw_bytes, stored_bytes, checksum, created_ms, accessed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            params![
                path_key,
                options,
                to_i64(identity.size),
                identity.mtime_ns,
                identity.fingerprint.to_le_bytes(),
                summary,
                to_i64(frame_lines),
                to_i64(frames_raw_bytes),
                to_i64(stored_bytes),
                entry_checksum(checksum, summary) as i64,
                now,
            ],
        )
        .map_err(&db_err)?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO frames (entry_id, data) VALUES (?1, zeroblob(?2))",
            params![id, to_i64(frames_len)],
        )
        .map_err(&db_err)?;
        {
            let mut blob = tx
                .blob_open(rusqlite::MAIN_DB, "frames", "data", id, false)
                .map_err(&db_err)?;
            let mut reader = BufReader::with_capacity(256 << 10, frames.take(frames_len));
            let copied = io::copy(&mut reader, &mut blob).map_err(|source| CacheError::Temp {
                dir: self.inner.dir.clone(),
                source,
            })?;
            if copied != frames_len {
                return Err(CacheError::Temp {
                    dir: self.inner.dir.clone(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("copied {copied} of {frames_len} bytes"),
                    ),
                });
            }
        }
        let pruned = prune_in(&tx, now, self.policy, Some(id)).map_err(&db_err)?;
        tx.commit().map_err(&db_err)?;
        if pruned.removed_entries() > 0 {
            schema::reclaim(&conn).map_err(&db_err)?;
        }
        tracing::debug!(
            path = %identity.path.display(),
            frame_lines,
            stored_bytes,
            "cache entry stored"
        );
        Ok(PutOutcome {
            stored: true,
            stored_bytes,
            frame_lines,
            pruned,
        })
    }

    pub(crate) fn now_ms(&self) -> i64 {
        to_ms(self.inner.clock.now())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held left at most an open transaction, which
        // rusqlite rolled back when it unwound; the connection is usable.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn db_err(&self) -> impl Fn(rusqlite::Error) -> CacheError + '_ {
        db_error(&self.inner.db_path)
    }
}

/// An entry's checksum: its compressed frame lines' (`frames_hash`, their xxh3)
/// and its summary's together, so that a change to either is caught.
pub(crate) fn entry_checksum(frames_hash: u64, summary: &str) -> u64 {
    frames_hash ^ xxhash_rust::xxh3::xxh3_64(summary.as_bytes()).rotate_left(17)
}

/// One finished entry on its way into the database.
pub(crate) struct StoreItem<'a> {
    pub identity: &'a FileIdentity,
    pub options: &'a str,
    pub summary: &'a str,
    /// The compressed frame lines, positioned at their start.
    pub frames: &'a mut fs::File,
    pub frames_len: u64,
    /// The frame lines' xxh3 (the entry's checksum adds the summary's).
    pub checksum: u64,
    pub frame_lines: u64,
    pub frames_raw_bytes: u64,
}

fn db_error(path: &Path) -> impl Fn(rusqlite::Error) -> CacheError + '_ {
    move |source| {
        let corrupt = matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        );
        let path = path.to_path_buf();
        if corrupt {
            CacheError::Corrupt { path, source }
        } else {
            CacheError::Db { path, source }
        }
    }
}

fn delete_entry(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM frames WHERE entry_id = ?1", [id])?;
    tx.execute("DELETE FROM entries WHERE id = ?1", [id])?;
    Ok(())
}

fn totals(tx: &Transaction<'_>) -> rusqlite::Result<(u64, u64)> {
    tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM entries",
        [],
        |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))),
    )
}

/// Prunes inside `tx`, never removing `keep` (the entry just stored).
fn prune_in(
    tx: &Transaction<'_>,
    now_ms: i64,
    policy: PrunePolicy,
    keep: Option<i64>,
) -> rusqlite::Result<PruneReport> {
    let max_age_ms = i64::try_from(policy.max_age.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(max_age_ms);
    let mut report = PruneReport::default();

    let (aged, aged_bytes): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM entries
         WHERE accessed_ms < ?1 AND id IS NOT ?2",
        params![cutoff, keep],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if aged > 0 {
        tx.execute(
            "DELETE FROM frames WHERE entry_id IN
               (SELECT id FROM entries WHERE accessed_ms < ?1 AND id IS NOT ?2)",
            params![cutoff, keep],
        )?;
        tx.execute(
            "DELETE FROM entries WHERE accessed_ms < ?1 AND id IS NOT ?2",
            params![cutoff, keep],
        )?;
        report.removed_by_age = to_u64(aged);
        report.removed_bytes = to_u64(aged_bytes);
    }

    let (mut entries, mut total) = totals(tx)?;
    if total > policy.max_bytes {
        let victims = {
            let mut stmt = tx.prepare(
                "SELECT id, stored_bytes FROM entries WHERE id IS NOT ?1
                 ORDER BY accessed_ms, id",
            )?;
            let mut rows = stmt.query(params![keep])?;
            let mut victims = Vec::new();
            let mut left = total;
            while left > policy.max_bytes {
                let Some(row) = rows.next()? else { break };
                let bytes = to_u64(row.get(1)?);
                victims.push((row.get::<_, i64>(0)?, bytes));
                left = left.saturating_sub(bytes);
            }
            victims
        };
        for (id, bytes) in victims {
            delete_entry(tx, id)?;
            report.removed_by_size += 1;
            report.removed_bytes += bytes;
            entries -= 1;
            total = total.saturating_sub(bytes);
        }
    }
    report.remaining_entries = entries;
    report.remaining_bytes = total;
    Ok(report)
}

fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_ms(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// Counts are stored as SQLite's signed integers; they are never negative.
fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
