//! Several real processes on one cache. The children are this test binary run
//! again with a role in the environment (`child_process_role`), so they use the
//! library exactly as reel does.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reel_host::cache::{Cache, DB_FILE, FileIdentity, PrunePolicy};

use crate::{check_whole, lines, make_file, summary};

const ROLE: &str = "REEL_CACHE_TEST_ROLE";
const DIR: &str = "REEL_CACHE_TEST_DIR";
const WRITER: &str = "REEL_CACHE_TEST_WRITER";
const SAY: &str = "REEL-CHILD";
const FILES: usize = 4;

/// The entry point of the children. Run directly (no role in the environment), it
/// does a short version of the `mixed` role in this process and checks the result.
#[test]
fn child_process_role() {
    let Ok(role) = std::env::var(ROLE) else {
        let dir = tempfile::tempdir().unwrap();
        make_inputs(dir.path());
        mixed(dir.path(), 0, 6);
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        assert!(cache.stats().unwrap().entries > 0);
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let writer: usize = std::env::var(WRITER).unwrap().parse().unwrap();
    match role.as_str() {
        "mixed" => mixed(&dir, writer, 40),
        "stream" => stream_until_killed(&dir),
        "commit-loop" => commit_loop(&dir),
        "hold-transaction" => hold_transaction(&dir),
        other => panic!("unknown role {other}"),
    }
}

fn make_inputs(dir: &Path) {
    for k in 0..FILES {
        make_file(dir, &format!("in{k}.mp4"), 4096, k as u8);
    }
}

fn inputs(dir: &Path) -> Vec<FileIdentity> {
    (0..FILES)
        .map(|k| FileIdentity::of(dir.join(format!("in{k}.mp4"))).unwrap())
        .collect()
}

fn say(what: &str) {
    let mut out = std::io::stdout();
    writeln!(out, "{SAY} {what}").unwrap();
    out.flush().unwrap();
}

/// Puts, gets and prunes on keys the other writers use too; every hit must be a
/// whole entry from one writer.
fn mixed(dir: &Path, writer: usize, rounds: usize) {
    let ids = inputs(dir);
    let mut hits = 0;
    for i in 0..rounds {
        // A fresh handle now and then: opening races with the others' writes too.
        let cache = Cache::open(dir.join("cache")).unwrap();
        let options = format!("o{}", i % 2);
        let tag = format!("w{writer}i{i}");
        let n = 300 + (i * 397 + writer * 113) % 2500;
        let id = &ids[(i + writer) % FILES];
        let out = cache
            .put(id, &options, &summary(&tag, n), lines(&tag, n))
            .unwrap();
        assert!(out.stored);
        for (k, other) in ids.iter().enumerate() {
            if let Some(entry) = cache.get(other, &options).unwrap() {
                check_whole(&entry).unwrap_or_else(|e| panic!("input {k}: {e}"));
                hits += 1;
            }
        }
        if i % 7 == 3 {
            cache
                .prune(PrunePolicy {
                    max_bytes: 200_000,
                    ..PrunePolicy::default()
                })
                .unwrap();
        }
    }
    assert!(hits > 0);
    say(&format!("done {hits}"));
}

/// Stores one entry, then streams a large one and waits, in the middle of it, for
/// the parent to kill it (or to close stdin, should the parent die first).
fn stream_until_killed(dir: &Path) {
    let ids = inputs(dir);
    let cache = Cache::open(dir.join("cache")).unwrap();
    cache
        .put(&ids[0], "done", &summary("done", 50), lines("done", 50))
        .unwrap();
    say("committed");
    let mut w = cache.writer(&ids[1], "pending").unwrap();
    for l in lines("pending", 200_000) {
        w.write_line(&l).unwrap();
    }
    say("streaming");
    let mut buf = String::new();
    let _ = std::io::stdin().read_line(&mut buf);
    say("not killed");
}

/// Stores one entry, then starts writing a second straight into the database, the
/// way a commit does, and waits inside the transaction to be killed.
fn hold_transaction(dir: &Path) {
    let ids = inputs(dir);
    let cache = Cache::open(dir.join("cache")).unwrap();
    cache
        .put(&ids[0], "done", &summary("done", 50), lines("done", 50))
        .unwrap();
    drop(cache);
    let mut db = rusqlite::Connection::open(dir.join("cache").join(DB_FILE)).unwrap();
    let tx = db
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute(
        "INSERT INTO entries (path, options, size, mtime_ns, fingerprint, summary, frame_lines,
             frames_raw_bytes, stored_bytes, checksum, created_ms, accessed_ms)
         SELECT path, 'pending', size, mtime_ns, fingerprint, summary, frame_lines,
             frames_raw_bytes, stored_bytes, checksum, created_ms, accessed_ms FROM entries",
        [],
    )
    .unwrap();
    // A large blob, so that pages of the transaction reach the write-ahead log.
    tx.execute(
        "INSERT INTO frames (entry_id, data) VALUES (?1, zeroblob(8000000))",
        [tx.last_insert_rowid()],
    )
    .unwrap();
    say("in transaction");
    let mut buf = String::new();
    let _ = std::io::stdin().read_line(&mut buf);
    say("not killed");
}

/// Commits large entries one after the other, saying so after each.
fn commit_loop(dir: &Path) {
    let ids = inputs(dir);
    let cache = Cache::open(dir.join("cache"))
        .unwrap()
        .with_policy(PrunePolicy {
            max_bytes: u64::MAX,
            ..PrunePolicy::default()
        });
    for n in 0..500 {
        let tag = format!("n{n}");
        cache
            .put(
                &ids[0],
                &format!("n={n}"),
                &summary(&tag, 30_000),
                lines(&tag, 30_000),
            )
            .unwrap();
        say(&format!("committed {n}"));
    }
    say("not killed");
}

/// A child process that is killed (SIGKILL on Unix) if the test ends before it.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, role: &str, writer: usize) -> ChildGuard {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "processes::child_process_role",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, role)
        .env(DIR, dir)
        .env(WRITER, writer.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // A failing child's panic shows in the test's output.
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// Reads the child's stdout until a line `REEL-CHILD <prefix>…`; returns that line.
fn wait_for(lines: &mut impl Iterator<Item = std::io::Result<String>>, prefix: &str) -> String {
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        seen.push(line.clone());
        // The test harness may print its own words before ours on the same line.
        if let Some(at) = line.find(SAY) {
            let rest = line[at + SAY.len()..].trim_start();
            if rest.starts_with(prefix) {
                return rest.to_string();
            }
        }
    }
    panic!("the child ended before saying `{prefix}`; it said {seen:?}");
}

fn only_db_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.starts_with(DB_FILE), "left behind: {name}");
    }
}

#[test]
fn processes_sharing_the_cache_never_corrupt_it() {
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let children: Vec<ChildGuard> = (0..3).map(|w| spawn(dir.path(), "mixed", w + 1)).collect();
    for mut child in children {
        let out = std::mem::replace(&mut child.0, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("REEL-CHILD done"),
            "child failed: {}\n{stdout}",
            out.status,
        );
    }
    let cache = Cache::open(dir.path().join("cache")).unwrap();
    assert_eq!(cache.check_integrity().unwrap(), Ok(()));
    let mut found = 0;
    for id in inputs(dir.path()) {
        for options in ["o0", "o1"] {
            if let Some(entry) = cache.get(&id, options).unwrap() {
                check_whole(&entry).unwrap();
                found += 1;
            }
        }
    }
    assert!(found > 0);
    only_db_files(&dir.path().join("cache"));
}

#[test]
fn a_writer_killed_while_streaming_leaves_no_partial_entry() {
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let mut child = spawn(dir.path(), "stream", 0);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    wait_for(&mut lines, "committed");
    wait_for(&mut lines, "streaming");
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());

    let cache_dir = dir.path().join("cache");
    let cache = Cache::open(&cache_dir).unwrap();
    assert_eq!(cache.check_integrity().unwrap(), Ok(()));
    let ids = inputs(dir.path());
    assert_eq!(
        check_whole(&cache.get(&ids[0], "done").unwrap().unwrap()).unwrap(),
        "done"
    );
    assert!(cache.get(&ids[1], "pending").unwrap().is_none());
    assert_eq!(cache.stats().unwrap().entries, 1);
    // The killed writer's temporary data went with it.
    only_db_files(&cache_dir);
}

#[test]
fn a_process_killed_inside_a_write_transaction_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let mut child = spawn(dir.path(), "hold-transaction", 0);
    let stdout = child.0.stdout.take().unwrap();
    let mut said = BufReader::new(stdout).lines();
    wait_for(&mut said, "in transaction");
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let cache = Cache::open(dir.path().join("cache")).unwrap();
    assert_eq!(cache.check_integrity().unwrap(), Ok(()));
    let ids = inputs(dir.path());
    assert!(cache.get(&ids[0], "pending").unwrap().is_none());
    assert_eq!(cache.stats().unwrap().entries, 1);
    // And the write lock went with the process: writing works at once.
    cache
        .put(&ids[1], "after", &summary("after", 5), lines("after", 5))
        .unwrap();
    assert_eq!(
        check_whole(&cache.get(&ids[0], "done").unwrap().unwrap()).unwrap(),
        "done"
    );
}

#[test]
fn a_writer_killed_between_and_during_commits_leaves_only_whole_entries() {
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let mut child = spawn(dir.path(), "commit-loop", 0);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    wait_for(&mut lines, "committed 3");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Whatever it said after `committed 3` before dying.
    let said: Vec<String> = lines.map_while(Result::ok).collect();
    let last = said
        .iter()
        .filter_map(|l| l.split("REEL-CHILD committed ").nth(1))
        .filter_map(|n| n.parse::<usize>().ok())
        .max()
        .unwrap_or(3);

    let cache_dir = dir.path().join("cache");
    let cache = Cache::open(&cache_dir).unwrap();
    assert_eq!(cache.check_integrity().unwrap(), Ok(()));
    let id = &inputs(dir.path())[0];
    // Every commit it reported is there and whole; the one in flight is there
    // whole or not at all.
    for n in 0..=last + 1 {
        match cache.get(id, &format!("n={n}")).unwrap() {
            Some(entry) => assert_eq!(check_whole(&entry).unwrap(), format!("n{n}")),
            None => assert_eq!(n, last + 1, "committed entry {n} is missing"),
        }
    }
    assert!(cache.stats().unwrap().entries as usize > last);
    only_db_files(&cache_dir);
}
