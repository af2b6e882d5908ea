use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use reel_host::cache::{
    Cache, CacheError, DB_FILE, FINGERPRINT_SPAN, FileIdentity, PrunePolicy, remove_database,
};

use crate::{check_whole, lines, make_file, open, summary};

const OPTS: &str = r#"{"v":1,"size":"320x180","threshold":27}"#;

#[test]
fn a_stored_result_comes_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache = open(&dir.path().join("cache"));
    let id = FileIdentity::of(&video).unwrap();
    assert!(cache.get(&id, OPTS).unwrap().is_none());

    let frames = lines("a", 3000);
    let out = cache.put(&id, OPTS, &summary("a", 3000), &frames).unwrap();
    assert!(out.stored);
    assert_eq!(out.frame_lines, 3000);

    let hit = cache
        .get(&FileIdentity::of(&video).unwrap(), OPTS)
        .unwrap()
        .unwrap();
    assert_eq!(hit.summary(), summary("a", 3000));
    assert_eq!(hit.frame_lines(), 3000);
    assert_eq!(hit.hits(), 0);
    let mut jsonl = Vec::new();
    let written = hit.write_frames_to(&mut jsonl).unwrap();
    let expected: String = frames.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(written, expected.len() as u64);
    assert_eq!(String::from_utf8(jsonl).unwrap(), expected);
    assert_eq!(hit.frames_raw_bytes(), expected.len() as u64);
    assert!(hit.frames_compressed_bytes() < hit.frames_raw_bytes() / 3);
    let back: Vec<String> = hit.frames().unwrap().map(Result::unwrap).collect();
    assert_eq!(back, frames);

    // Hits are counted, and the entry survives reopening the cache.
    let again = open(&dir.path().join("cache"));
    let hit = again.get(&id, OPTS).unwrap().unwrap();
    assert_eq!(hit.hits(), 1);
    assert_eq!(again.stats().unwrap().hits, 2);
}

#[test]
fn other_options_or_other_files_miss() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_file(dir.path(), "a.mp4", 5000, 1);
    let b = make_file(dir.path(), "b.mp4", 5000, 1);
    let cache = open(&dir.path().join("cache"));
    let ida = FileIdentity::of(&a).unwrap();
    cache
        .put(&ida, OPTS, &summary("a", 2), lines("a", 2))
        .unwrap();
    assert!(
        cache
            .get(&ida, r#"{"v":1,"size":"640x360","threshold":27}"#)
            .unwrap()
            .is_none()
    );
    assert!(
        cache
            .get(&ida, r#"{"v":2,"size":"320x180","threshold":27}"#)
            .unwrap()
            .is_none()
    );
    // Same content, same size, other path.
    assert!(
        cache
            .get(&FileIdentity::of(&b).unwrap(), OPTS)
            .unwrap()
            .is_none()
    );
    assert!(cache.get(&ida, OPTS).unwrap().is_some());
}

/// Rewrites one byte at `at`, then puts the modification time back.
fn poke(path: &std::path::Path, at: u64) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[0xAB]).unwrap();
    f.set_modified(mtime).unwrap();
}

#[test]
fn same_size_same_mtime_but_new_content_in_the_first_mebibyte_misses() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 3 * FINGERPRINT_SPAN as usize, 1);
    let cache = open(&dir.path().join("cache"));
    let before = FileIdentity::of(&video).unwrap();
    cache
        .put(&before, OPTS, &summary("a", 5), lines("a", 5))
        .unwrap();

    poke(&video, 1000);
    let after = FileIdentity::of(&video).unwrap();
    assert_eq!((after.size, after.mtime_ns), (before.size, before.mtime_ns));
    assert!(cache.get(&after, OPTS).unwrap().is_none());

    // The same in the last mebibyte.
    cache
        .put(&after, OPTS, &summary("b", 5), lines("b", 5))
        .unwrap();
    poke(&video, 3 * FINGERPRINT_SPAN - 5);
    let last = FileIdentity::of(&video).unwrap();
    assert_eq!(last.mtime_ns, before.mtime_ns);
    assert!(cache.get(&last, OPTS).unwrap().is_none());
}

#[test]
fn a_touched_file_misses() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache = open(&dir.path().join("cache"));
    let before = FileIdentity::of(&video).unwrap();
    cache
        .put(&before, OPTS, &summary("a", 5), lines("a", 5))
        .unwrap();

    let f = File::options().write(true).open(&video).unwrap();
    let mtime = f.metadata().unwrap().modified().unwrap();
    f.set_modified(mtime + Duration::from_secs(1)).unwrap();
    drop(f);
    let after = FileIdentity::of(&video).unwrap();
    assert_eq!(after.fingerprint, before.fingerprint);
    assert!(cache.get(&after, OPTS).unwrap().is_none());
    // Putting the time back makes it the same file again.
    File::options()
        .write(true)
        .open(&video)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(
        cache
            .get(&FileIdentity::of(&video).unwrap(), OPTS)
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_grown_file_misses_and_its_new_result_replaces_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache = open(&dir.path().join("cache"));
    let before = FileIdentity::of(&video).unwrap();
    cache
        .put(&before, OPTS, &summary("old", 5), lines("old", 5))
        .unwrap();

    let mut f = OpenOptions::new().append(true).open(&video).unwrap();
    f.write_all(b"more").unwrap();
    drop(f);
    let after = FileIdentity::of(&video).unwrap();
    assert_eq!(after.size, before.size + 4);
    assert!(cache.get(&after, OPTS).unwrap().is_none());

    cache
        .put(&after, OPTS, &summary("new", 7), lines("new", 7))
        .unwrap();
    let hit = cache.get(&after, OPTS).unwrap().unwrap();
    assert_eq!(check_whole(&hit).unwrap(), "new");
    assert_eq!(cache.stats().unwrap().entries, 1);
    assert!(cache.get(&before, OPTS).unwrap().is_none());
}

#[test]
fn an_uncommitted_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache_dir = dir.path().join("cache");
    let cache = open(&cache_dir);
    let id = FileIdentity::of(&video).unwrap();
    let mut w = cache.writer(&id, OPTS).unwrap();
    for l in lines("a", 10_000) {
        w.write_line(&l).unwrap();
    }
    assert_eq!(w.lines(), 10_000);
    drop(w);
    assert!(cache.get(&id, OPTS).unwrap().is_none());
    assert_eq!(cache.stats().unwrap().entries, 0);
    // The temporary file had no name: only the database's files are there.
    let names = dir_names(&cache_dir);
    assert!(names.iter().all(|n| n.starts_with(DB_FILE)), "{names:?}");
}

pub fn dir_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn raw_jsonl_can_be_written_through_io_write() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache = open(&dir.path().join("cache"));
    let id = FileIdentity::of(&video).unwrap();
    let frames = lines("raw", 500);
    let jsonl: String = frames.iter().map(|l| format!("{l}\n")).collect();

    let mut w = cache.writer(&id, OPTS).unwrap();
    // In uneven pieces, as a buffered writer would hand them over.
    for piece in jsonl.as_bytes().chunks(777) {
        w.write_all(piece).unwrap();
    }
    assert_eq!(w.lines(), 500);
    w.commit(&summary("raw", 500)).unwrap();
    let hit = cache.get(&id, OPTS).unwrap().unwrap();
    assert_eq!(check_whole(&hit).unwrap(), "raw");

    let mut w = cache.writer(&id, "other").unwrap();
    w.write_all(b"{\"frame\":0}\n{\"frame\":1}").unwrap();
    assert!(matches!(w.commit("{}"), Err(CacheError::UnterminatedLine)));
    let mut w = cache.writer(&id, "other").unwrap();
    w.write_line("{}").unwrap();
    assert!(matches!(
        w.write_line("a\nb"),
        Err(CacheError::LineBreak { line: 1 })
    ));
}

#[test]
fn an_entry_over_the_whole_budget_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let policy = PrunePolicy {
        max_bytes: 2000,
        max_age: PrunePolicy::DEFAULT_MAX_AGE,
    };
    let cache = open(&dir.path().join("cache")).with_policy(policy);
    let id = FileIdentity::of(&video).unwrap();
    cache
        .put(&id, "small", &summary("s", 1), lines("s", 1))
        .unwrap();
    let big: Vec<String> = (0..5000)
        .map(|i| format!("{{\"frame\":{i},\"x\":{}}}", i * 7919 % 10007))
        .collect();
    let out = cache.put(&id, "big", "{}", &big).unwrap();
    assert!(!out.stored);
    assert!(out.stored_bytes > 2000);
    assert!(cache.get(&id, "big").unwrap().is_none());
    assert!(cache.get(&id, "small").unwrap().is_some());
}

#[test]
fn a_damaged_entry_is_a_miss_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache_dir = dir.path().join("cache");
    let cache = open(&cache_dir);
    let id = FileIdentity::of(&video).unwrap();
    cache
        .put(&id, OPTS, &summary("a", 100), lines("a", 100))
        .unwrap();

    let db = rusqlite::Connection::open(cache_dir.join(DB_FILE)).unwrap();
    let mut data: Vec<u8> = db
        .query_row("SELECT data FROM frames", [], |r| r.get(0))
        .unwrap();
    data[10] ^= 0x40;
    db.execute("UPDATE frames SET data = ?1", [data]).unwrap();
    drop(db);
    assert!(cache.get(&id, OPTS).unwrap().is_none());
    assert_eq!(cache.stats().unwrap().entries, 0);
    assert_eq!(cache.check_integrity().unwrap(), Ok(()));
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    std::fs::create_dir_all(&cache_dir).unwrap();
    std::fs::write(cache_dir.join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let e = Cache::open(&cache_dir).unwrap_err();
    assert!(matches!(e, CacheError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains(DB_FILE), "{e}");
    assert_eq!(remove_database(&cache_dir).unwrap(), 8192);
    let cache = open(&cache_dir);
    assert_eq!(cache.stats().unwrap().entries, 0);
}

#[test]
fn formats_are_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_file(dir.path(), "v.mp4", 5000, 1);
    let cache_dir = dir.path().join("cache");
    let id = FileIdentity::of(&video).unwrap();
    open(&cache_dir)
        .put(&id, OPTS, &summary("a", 3), lines("a", 3))
        .unwrap();

    // A newer reel's cache is refused rather than misread.
    let db = rusqlite::Connection::open(cache_dir.join(DB_FILE)).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    let e = Cache::open(&cache_dir).unwrap_err();
    assert!(
        matches!(e, CacheError::NewerFormat { found: 99, .. }),
        "{e:?}"
    );

    // An older one is emptied and rebuilt.
    db.pragma_update(None, "user_version", 0).unwrap();
    drop(db);
    let cache = open(&cache_dir);
    assert_eq!(cache.stats().unwrap().entries, 0);
    cache
        .put(&id, OPTS, &summary("b", 3), lines("b", 3))
        .unwrap();
    assert_eq!(
        check_whole(&cache.get(&id, OPTS).unwrap().unwrap()).unwrap(),
        "b"
    );
}

#[test]
fn the_database_is_in_wal_mode_with_incremental_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let _cache = open(&cache_dir);
    let db = rusqlite::Connection::open(cache_dir.join(DB_FILE)).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let vacuum: i64 = db
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(vacuum, 2, "incremental");
}

#[test]
fn clear_empties_the_cache_and_shrinks_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir.path().join("cache"));
    for k in 0..4 {
        let video = make_file(dir.path(), &format!("v{k}.mp4"), 5000, k as u8);
        let id = FileIdentity::of(&video).unwrap();
        let big: Vec<String> = (0..20_000)
            .map(|i| format!("{{\"frame\":{i},\"x\":{}}}", i * 7919 % 100_003 + k))
            .collect();
        cache.put(&id, OPTS, &summary("a", 20_000), &big).unwrap();
    }
    let before = cache.stats().unwrap();
    assert_eq!(before.entries, 4);
    let cleared = cache.clear().unwrap();
    assert_eq!(cleared.removed_entries, 4);
    assert_eq!(cleared.removed_bytes, before.stored_bytes);
    let after = cache.stats().unwrap();
    assert_eq!((after.entries, after.stored_bytes), (0, 0));
    assert!(
        after.file_bytes < before.file_bytes / 2,
        "{} -> {}",
        before.file_bytes,
        after.file_bytes
    );
}
