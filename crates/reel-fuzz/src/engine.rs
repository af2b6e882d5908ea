//! The mutational loop: pick an input from the corpus, mutate it, run the target
//! on it under the bounds, keep it when it gave an outcome not seen before, and
//! record every panic, memory overrun and slow run as a crash with its input.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alloc;
use crate::targets::Target;

/// The limits one input's run is held to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The most bytes a run may allocate beyond what was live when it started.
    pub memory_bytes: usize,
    /// A run that takes longer is a crash (it finished, but too slowly for its
    /// few kilobytes).
    pub slow: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            slow: Duration::from_secs(2),
        }
    }
}

/// Why an input is a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The target panicked.
    Panic {
        /// The panic's message.
        message: String,
        /// Where it panicked (`file:line:column`).
        location: String,
    },
    /// The run tried to allocate past its memory bound.
    Memory {
        /// The refused allocation, in bytes.
        refused: usize,
        /// The bound, in bytes.
        bound: usize,
    },
    /// The run took longer than its time bound.
    Slow {
        /// How long it took, in milliseconds.
        millis: u64,
        /// The bound, in milliseconds.
        bound_millis: u64,
    },
}

impl Fault {
    /// What tells two crashes apart: the place of a panic, the kind otherwise.
    pub fn key(&self) -> String {
        match self {
            Fault::Panic { location, .. } => format!("panic at {location}"),
            Fault::Memory { .. } => "memory".to_string(),
            Fault::Slow { .. } => "slow".to_string(),
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Fault::Panic { message, location } => format!("panicked at {location}: {message}"),
            Fault::Memory { refused, bound } => format!(
                "asked for {refused} bytes, past its memory bound of {bound} bytes beyond what was live"
            ),
            Fault::Slow {
                millis,
                bound_millis,
            } => format!("took {millis} ms (bound {bound_millis} ms)"),
        }
    }
}

/// The verdict of one run.
#[derive(Debug)]
pub struct Run {
    /// The outcome's signature (see [`crate::targets::Target::run`]); 0 after a panic.
    pub signature: u64,
    /// The crash, if the run was one.
    pub fault: Option<Fault>,
}

thread_local! {
    /// Whether this thread is inside a target's run (its panics are recorded, not
    /// printed).
    static IN_RUN: Cell<bool> = const { Cell::new(false) };
}

/// The last panic inside a run: message and location.
static LAST_PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Installs (once) the panic hook that records panics inside runs and leaves
/// every other panic to the hook before it.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_RUN.with(Cell::get) {
                previous(info);
                return;
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".to_string());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some((message, location));
        }));
    });
}

/// When the run in progress started, in microseconds since [`epoch`] (0: none).
static RUN_STARTED: AtomicU64 = AtomicU64::new(0);
/// Inputs run by [`fuzz`] in this process.
static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

/// The process's clock origin for [`RUN_STARTED`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// How long the run in progress has taken, if one is.
pub fn running_for() -> Option<Duration> {
    match RUN_STARTED.load(Ordering::Relaxed) {
        0 => None,
        t => Some(epoch().elapsed().saturating_sub(Duration::from_micros(t))),
    }
}

/// The inputs [`fuzz`] has run in this process so far.
pub fn executions() -> u64 {
    EXECUTIONS.load(Ordering::Relaxed)
}

/// Runs `target` on `input` once under `bounds`.
pub fn run_once(target: &Target, input: &[u8], bounds: &Bounds) -> Run {
    install_panic_hook();
    IN_RUN.with(|r| r.set(true));
    alloc::reset(bounds.memory_bytes);
    let started = Instant::now();
    let since = started.saturating_duration_since(epoch());
    RUN_STARTED.store((since.as_micros() as u64).max(1), Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    RUN_STARTED.store(0, Ordering::Relaxed);
    let elapsed = started.elapsed();
    alloc::set_ceiling(usize::MAX);
    IN_RUN.with(|r| r.set(false));
    let refused = alloc::refused();
    let (signature, mut fault) = match result {
        Ok(signature) => (signature, None),
        Err(_) => {
            let (message, location) = LAST_PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            (0, Some(Fault::Panic { message, location }))
        }
    };
    // A refused allocation explains a panic that followed it.
    if let Some(refused) = refused {
        fault = Some(Fault::Memory {
            refused,
            bound: bounds.memory_bytes,
        });
    } else if fault.is_none() && elapsed > bounds.slow {
        fault = Some(Fault::Slow {
            millis: elapsed.as_millis() as u64,
            bound_millis: bounds.slow.as_millis() as u64,
        });
    }
    Run { signature, fault }
}

/// A small, fast, seeded generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Numbers that break parsers: edges of the integer types, zero, negatives,
/// floats that are not finite.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e308",
    "1e309",
    "-0",
    "0.0",
    "NaN",
    "inf",
    "0.000001",
];

/// Bytes that often mean something to a text parser.
const SPECIAL: &[u8] = b"\0\n\r\t :=,;&?%/\\\"'{}[]()@#.-+0123456789xX\xff\x80\x7f";

/// Mutates `data` in place with one to eight stacked changes, keeping it at most
/// `max_len` bytes.
pub fn mutate(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    dictionary: &[&[u8]],
    corpus: &[Vec<u8>],
    max_len: usize,
) {
    let steps = 1 + rng.below(8);
    for _ in 0..steps {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = SPECIAL[rng.below(SPECIAL.len())];
            }
            3 => {
                let i = rng.below(len + 1);
                data.insert(i, SPECIAL[rng.below(SPECIAL.len())]);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                data.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                let chunk = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, chunk);
            }
            6 | 7 if !dictionary.is_empty() => {
                let word = dictionary[rng.below(dictionary.len())];
                let to = rng.below(len + 1);
                if rng.below(2) == 0 || len == 0 {
                    data.splice(to..to, word.iter().copied());
                } else {
                    let end = (to + word.len()).min(len);
                    data.splice(to..end, word.iter().copied());
                }
            }
            8 | 9 => replace_number(rng, data),
            10 if !corpus.is_empty() => {
                // Splice: this input's head with another's tail.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            11 if len > 0 => {
                let at = rng.below(len);
                data.truncate(at);
            }
            _ => {}
        }
    }
    data.truncate(max_len);
}

/// Replaces one run of decimal digits (with its sign) by an edge number.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    let number = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
    if starts.is_empty() {
        let at = rng.below(data.len() + 1);
        data.splice(at..at, number.iter().copied());
        return;
    }
    let mut start = starts[rng.below(starts.len())];
    let mut end = start;
    while end < data.len() && data[end].is_ascii_digit() {
        end += 1;
    }
    if start > 0 && data[start - 1] == b'-' {
        start -= 1;
    }
    data.splice(start..end, number.iter().copied());
}

/// A crash found by a run of the fuzzer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Crash {
    /// Why it is one.
    pub fault: Fault,
    /// The same, in one line.
    pub message: String,
    /// The saved input (the shortest one seen for this crash).
    pub file: PathBuf,
    /// How many inputs crashed the same way.
    pub count: u64,
}

/// The figures of one target's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// The target.
    pub target: String,
    /// Inputs run.
    pub executions: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// Inputs per second.
    pub execs_per_s: f64,
    /// Inputs kept in the corpus at the end.
    pub corpus: usize,
    /// The distinct crashes.
    pub crashes: Vec<Crash>,
}

/// Where crashes are written, and the input being run, for the refusal hook.
struct Current {
    target: &'static str,
    dir: PathBuf,
    input: Vec<u8>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// The file a crash's input is saved in: the target and a hash of the crash's key.
pub fn crash_path(dir: &Path, target: &str, key: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    dir.join(format!("{target}-{:016x}.input", h.finish()))
}

/// Writes a crash's input and its message (beside it, `.txt`).
fn save(path: &Path, input: &[u8], message: &str) {
    let _ = std::fs::write(path, input);
    let _ = std::fs::write(path.with_extension("txt"), format!("{message}\n"));
}

/// Saves the input being run as the crash `key` with `message` (unless that
/// crash was saved already): for what ends the process before the loop sees it.
/// Returns the file.
pub fn save_current(key: &str, message: &str) -> Option<PathBuf> {
    let guard = CURRENT.try_lock().ok()?;
    let cur = guard.as_ref()?;
    let path = crash_path(&cur.dir, cur.target, key);
    if !path.exists() {
        save(&path, &cur.input, &format!("{}: {message}", cur.target));
    }
    Some(path)
}

/// The refusal hook: the allocation that follows may abort the process, so the
/// input is saved now, under the memory crash's name.
fn save_refused(size: usize) {
    save_current(
        "memory",
        &format!("asked for {size} bytes, past its memory bound beyond what was live"),
    );
}

/// Fuzzes `target` for `duration`, writing crashes under `crash_dir`.
pub fn fuzz(
    target: &Target,
    duration: Duration,
    seed: u64,
    bounds: &Bounds,
    crash_dir: &Path,
) -> std::io::Result<Stats> {
    std::fs::create_dir_all(crash_dir)?;
    alloc::on_refusal(save_refused);
    let mut rng = Rng::new(seed);
    let mut corpus: Vec<Vec<u8>> = (target.seeds)();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut crashes: BTreeMap<String, (Crash, usize)> = BTreeMap::new();
    let mut executions = 0u64;
    let started = Instant::now();
    let mut input = Vec::with_capacity(target.max_len);
    let mut next_seed = 0;
    let seeds = corpus.len();
    const CORPUS_CAP: usize = 1024;
    while started.elapsed() < duration || next_seed < seeds {
        input.clear();
        if next_seed < seeds {
            // Every seed runs once as it is, first.
            input.extend_from_slice(&corpus[next_seed]);
            next_seed += 1;
        } else {
            input.extend_from_slice(&corpus[rng.below(corpus.len())]);
            mutate(
                &mut rng,
                &mut input,
                target.dictionary,
                &corpus,
                target.max_len,
            );
        }
        {
            let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
            let cur = cur.get_or_insert_with(|| Current {
                target: target.name,
                dir: crash_dir.to_path_buf(),
                input: Vec::new(),
            });
            cur.target = target.name;
            cur.dir = crash_dir.to_path_buf();
            cur.input.clear();
            cur.input.extend_from_slice(&input);
        }
        let run = run_once(target, &input, bounds);
        executions += 1;
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        match run.fault {
            Some(fault) => {
                let key = fault.key();
                let message = format!("{}: {}", target.name, fault.describe());
                let path = crash_path(crash_dir, target.name, &key);
                match crashes.get_mut(&key) {
                    Some((crash, len)) => {
                        crash.count += 1;
                        if input.len() < *len {
                            *len = input.len();
                            crash.fault = fault;
                            crash.message = message.clone();
                            save(&path, &input, &message);
                        }
                    }
                    None => {
                        save(&path, &input, &message);
                        let crash = Crash {
                            fault,
                            message,
                            file: path,
                            count: 1,
                        };
                        crashes.insert(key, (crash, input.len()));
                    }
                }
            }
            None => {
                if seen.insert(run.signature) && corpus.len() < CORPUS_CAP {
                    corpus.push(input.clone());
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Stats {
        target: target.name.to_string(),
        executions,
        seconds,
        execs_per_s: executions as f64 / seconds.max(1e-9),
        corpus: corpus.len(),
        crashes: crashes.into_values().map(|(c, _)| c).collect(),
    })
}

/// A signature of an outcome: a hash of its shape (see [`shape`]).
pub fn signature<T: Hash>(value: T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The shape of a message, for a signature: its text up to the first quote,
/// backtick or digit, where the input's own text and numbers usually start, so
/// that two inputs refused for the same reason give the same shape.
pub fn shape(message: &str) -> &str {
    let end = message
        .find(|c: char| c == '`' || c == '"' || c == '\'' || c.is_ascii_digit())
        .unwrap_or(message.len());
    &message[..message.floor_char_boundary(end.min(96))]
}
