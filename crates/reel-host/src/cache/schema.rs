//! The database's layout and how a connection is set up.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

/// The layout version, kept in SQLite's `user_version`. Bump it whenever the tables
/// or the stored value's encoding change: an older cache is then emptied and rebuilt
/// on open (it is a cache), and an older reel refuses a newer one instead of
/// misreading it.
pub const FORMAT_VERSION: i64 = 1;

/// How long a statement waits for another process's write lock before failing.
/// Writers hold the lock only while copying one finished entry in, so this is
/// generous.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Keep the write-ahead log at most this large after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 16 << 20;

// `entries` holds the key, the metadata and the summary; `frames` holds the
// compressed frame lines, apart so that scans of `entries` (stats, pruning) never
// walk a blob's overflow pages. `frames.entry_id` is the rowid, so a blob can be
// opened by the entry's id.
const CREATE: &str = "
CREATE TABLE entries (
    id               INTEGER PRIMARY KEY,
    path             BLOB    NOT NULL,
    options          TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    mtime_ns         INTEGER NOT NULL,
    fingerprint      BLOB    NOT NULL,
    summary          TEXT    NOT NULL,
    frame_lines      INTEGER NOT NULL,
    frames_raw_bytes INTEGER NOT NULL,
    stored_bytes     INTEGER NOT NULL,
    checksum         INTEGER NOT NULL,
    created_ms       INTEGER NOT NULL,
    accessed_ms      INTEGER NOT NULL,
    hits             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (path, options)
);
CREATE INDEX entries_by_access ON entries (accessed_ms, id);
CREATE TABLE frames (
    entry_id INTEGER PRIMARY KEY,
    data     BLOB NOT NULL
);
";

/// What `prepare` found that it cannot use.
#[derive(Debug)]
pub enum PrepareError {
    /// SQLite failed.
    Db(rusqlite::Error),
    /// The file was written by a newer layout.
    Newer(i64),
}

impl From<rusqlite::Error> for PrepareError {
    fn from(e: rusqlite::Error) -> Self {
        PrepareError::Db(e)
    }
}

/// Sets the connection up (busy timeout, WAL, synchronous=NORMAL) and makes sure the
/// tables exist in the current layout.
pub fn prepare(conn: &mut Connection) -> Result<(), PrepareError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Only takes effect on a database that has no table yet: freed pages can then
    // be given back to the file system after pruning.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the cache's file system does not support WAL");
    }
    // In WAL mode NORMAL never corrupts the database; a power cut may lose the last
    // commits, which for a cache is only lost work.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;

    let version = user_version(conn)?;
    if version == FORMAT_VERSION {
        return Ok(());
    }
    if version > FORMAT_VERSION {
        return Err(PrepareError::Newer(version));
    }
    // Another process may be doing the same: decide again under the write lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    if version > FORMAT_VERSION {
        return Err(PrepareError::Newer(version));
    }
    if version < FORMAT_VERSION {
        if version != 0 {
            tracing::info!(
                from = version,
                to = FORMAT_VERSION,
                "emptying a cache of an older format"
            );
        }
        tx.execute_batch(
            "DROP TABLE IF EXISTS frames; DROP TABLE IF EXISTS entries; \
             DROP INDEX IF EXISTS entries_by_access;",
        )?;
        tx.execute_batch(CREATE)?;
        tx.pragma_update(None, "user_version", FORMAT_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Gives the pages freed by deletions back to the file system.
pub fn reclaim(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}
