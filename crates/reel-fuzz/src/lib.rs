//! `reel-fuzz` feeds mutated bytes to every parser of untrusted input in reel,
//! on the stable toolchain and without instrumentation: the Y4M header and frames,
//! an image sequence's printf pattern, the `synthetic:` URI, ffprobe's JSON report,
//! the log lines of ffmpeg's `showinfo` filters, the `--plugin` specification and
//! its `@FILE`, `reel.toml`, and the safetensors weights header.
//!
//! Each [target](targets::Target) is a thin function over the parser's public
//! entry point. The [engine] mutates inputs from a corpus seeded from reel's tests
//! ([`seeds`]), keeps those that give an outcome not seen before, and records as a
//! crash every panic, every run that asks for more memory than its bound (counted
//! by the global allocator of [`alloc`]) and every run slower than its bound. The
//! `reel-fuzz` binary runs the targets for a given time and writes a JSON report;
//! `cargo xtask fuzz` drives it.
//!
//! The crate sits above every crate whose parsers it drives and nothing depends on
//! it.

pub mod alloc;
pub mod engine;
pub mod seeds;
pub mod targets;

/// Every allocation of a program linking this crate is counted, so that a run's
/// memory can be bounded.
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

#[cfg(test)]
mod tests {
    use super::engine::{Bounds, Fault, Rng, mutate, run_once};
    use super::targets::{self, Target};

    fn target(run: fn(&[u8]) -> u64) -> Target {
        Target {
            name: "test",
            about: "a test",
            max_len: 64,
            dictionary: &[b"word"],
            seeds: || vec![b"seed".to_vec()],
            run,
        }
    }

    /// A panic, a run past the memory bound and a clean run are told apart.
    #[test]
    fn runs_are_judged() {
        let bounds = Bounds::default();
        let panics = run_once(&target(|d| d[10] as u64), b"short", &bounds);
        match panics.fault {
            Some(Fault::Panic { message, location }) => {
                assert!(message.contains("out of bounds"), "{message}");
                assert!(location.contains("lib.rs"), "{location}");
            }
            other => panic!("expected a panic, got {other:?}"),
        }
        let greedy = run_once(
            &target(|d| {
                let mut v: Vec<u8> = Vec::new();
                // Fallible, so the refusal comes back as an error here.
                v.try_reserve(512 << 20).map_or(0, |_| 1 + d.len() as u64)
            }),
            b"x",
            &bounds,
        );
        assert!(
            matches!(greedy.fault, Some(Fault::Memory { refused, .. }) if refused >= 512 << 20),
            "{greedy:?}"
        );
        let fine = run_once(&target(|d| d.len() as u64), b"four", &bounds);
        assert!(fine.fault.is_none());
        assert_eq!(fine.signature, 4);
    }

    /// Mutated inputs stay within their length.
    #[test]
    fn mutations_respect_the_length() {
        let mut rng = Rng::new(1);
        let corpus = vec![vec![b'7'; 60]];
        for _ in 0..2000 {
            let mut input = corpus[0].clone();
            mutate(&mut rng, &mut input, &[b"word"], &corpus, 64);
            assert!(input.len() <= 64);
        }
    }

    /// Every seed of every target runs within the bounds, without a panic.
    #[test]
    fn every_target_runs_its_seeds_cleanly() {
        let bounds = Bounds::default();
        let mut failures = Vec::new();
        for target in targets::all() {
            let seeds = (target.seeds)();
            assert!(!seeds.is_empty(), "{} has seeds", target.name);
            for (i, seed) in seeds.iter().enumerate() {
                assert!(
                    seed.len() <= target.max_len,
                    "{} seed {i} fits",
                    target.name
                );
                if let Some(fault) = run_once(&target, seed, &bounds).fault {
                    failures.push(format!("{} seed {i}: {}", target.name, fault.describe()));
                }
            }
        }
        targets::remove_scratch();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
