//! The analysis cache on a realistic load: a cache of 2 000 one-minute results
//! (1 800 frame lines each) plus one ten-minute result (18 000 lines), the
//! per-frame lines shaped like `reel analyze`'s.
//!
//! - `hit`: what an unchanged file costs: its identity (2 MiB read), the lookup,
//!   and the frame lines decompressed to a writer; against `baseline_read_jsonl`,
//!   reading the same lines from a plain JSONL file.
//! - `lookup_only`, `miss_changed_file`, `identity_64mib_file`: the parts.
//! - `put_18000_lines`: storing the ten-minute result (stream, then one commit).
//!
//! Run: `cargo bench -p reel-host --bench cache`.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reel_host::cache::{Cache, FileIdentity, PrunePolicy};

const ENTRIES: usize = 2000;
const SHORT: usize = 1800;
const LONG: usize = 18_000;

/// Deterministic pseudo-random numbers (xorshift), so the lines compress as real
/// measurements do rather than as repeated text.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn frame_lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|i| {
            format!(
                r#"{{"frame":{i},"pts":{:.6},"content_delta":{:.4},"motion":{:.4},"brightness":{:.4},"sharpness":{:.3}}}"#,
                i as f64 / 29.97,
                rng.unit() * 40.0,
                rng.unit() * 12.0,
                60.0 + rng.unit() * 120.0,
                rng.unit() * 900.0,
            )
        })
        .collect()
}

fn summary(n: usize) -> String {
    format!(
        r#"{{"input":"x.mp4","video":{{"width":1920,"height":1080,"fps":29.97,"frames":{n}}},"frames_analyzed":{n},"cuts":[120,480,1300],"cache":"miss"}}"#
    )
}

fn video(dir: &Path, name: &str, len: usize, seed: u64) -> FileIdentity {
    let path = dir.join(name);
    let mut rng = Rng(seed | 1);
    let data: Vec<u8> = (0..len).map(|_| (rng.unit() * 256.0) as u8).collect();
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&data))
        .expect("write input");
    FileIdentity::of(&path).expect("identity")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::open(dir.path().join("cache"))
        .expect("open")
        .with_policy(PrunePolicy {
            max_bytes: u64::MAX,
            ..PrunePolicy::default()
        });
    let short = frame_lines(SHORT, 7);
    for k in 0..ENTRIES {
        let id = video(dir.path(), &format!("in{k}.mp4"), 64, k as u64 + 1);
        cache.put(&id, "o", &summary(SHORT), &short).expect("put");
    }
    let long = frame_lines(LONG, 11);
    let target = dir.path().join("long.mp4");
    let id = video(dir.path(), "long.mp4", 64 << 20, 99);
    let out = cache.put(&id, "o", &summary(LONG), &long).expect("put");
    let jsonl_path = dir.path().join("long.jsonl");
    let jsonl: String = long.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&jsonl_path, &jsonl).expect("write jsonl");
    let stats = cache.stats().expect("stats");
    eprintln!(
        "cache: {} entries, {} bytes stored, {} on disk; the 18000-line entry: {} bytes of \
         lines stored in {} ({:.1}x)",
        stats.entries,
        stats.stored_bytes,
        stats.file_bytes,
        jsonl.len(),
        out.stored_bytes,
        jsonl.len() as f64 / out.stored_bytes as f64
    );

    let mut g = c.benchmark_group("cache");
    g.sample_size(30);
    g.throughput(Throughput::Elements(LONG as u64));
    g.bench_function("hit", |b| {
        b.iter(|| {
            let id = FileIdentity::of(&target).expect("identity");
            let entry = cache.get(&id, "o").expect("get").expect("hit");
            let mut sink = std::io::sink();
            black_box(entry.write_frames_to(&mut sink).expect("frames"));
        })
    });
    g.bench_function("baseline_read_jsonl", |b| {
        b.iter(|| {
            let mut f = std::fs::File::open(&jsonl_path).expect("open");
            black_box(std::io::copy(&mut f, &mut std::io::sink()).expect("copy"));
        })
    });
    let entry = cache.get(&id, "o").expect("get").expect("hit");
    g.bench_function("decompress_only", |b| {
        b.iter(|| black_box(entry.write_frames_to(&mut std::io::sink()).expect("frames")))
    });
    g.bench_function("lookup_only", |b| {
        b.iter(|| black_box(cache.get(&id, "o").expect("get").expect("hit")))
    });
    let changed = FileIdentity {
        mtime_ns: id.mtime_ns + 1,
        ..id.clone()
    };
    g.bench_function("miss_changed_file", |b| {
        b.iter(|| assert!(cache.get(&changed, "o").expect("get").is_none()))
    });
    g.bench_function("identity_64mib_file", |b| {
        b.iter(|| black_box(FileIdentity::of(&target).expect("identity")))
    });
    g.sample_size(10);
    g.bench_function("put_18000_lines", |b| {
        b.iter(|| cache.put(&id, "put", &summary(LONG), &long).expect("put"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
