//! `cargo xtask`: the project's build driver. Every check that matters is either a
//! step here or an ordinary test, so CI is just `cargo xtask test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench;
mod bench_batch;
mod oracle;
#[cfg(test)]
#[path = "../../tests/support/oracle.rs"]
mod oracle_support;
mod pyscenedetect;
mod reel;
mod slurm;
#[cfg(test)]
mod tidy;
mod video;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo [ARGS…]           build the sample plugins and reel (release), then run `reel demo ARGS…`:
                         a generated video with known cuts, analysed, against the truth
  install [--root DIR]   build reel in release (with in-process decoding when this machine can) and
                         the sample plugins, and install them: DIR/bin/reel and DIR/bin/plugins/
                         (default DIR: $CARGO_HOME, else ~/.cargo, whose bin/ rustup puts on PATH)
  test                   fmt check, clippy (-D warnings), plugin build, every test of the workspace;
                         with libav available, also clippy and the tests of the crates it changes
                         built without it
  ci                     what CI runs: the same as `test`
  build-plugins [--release] [--fixtures]
                         build every crate under plugins/ into target/plugins/ (the folder
                         reel searches in a development checkout); with --fixtures, also the
                         test fixtures of tests/fixtures/plugins/ into target/plugin-fixtures/
  bench [--out FILE] [--seconds N] [--runs N] [--skip-pyscenedetect]
                         `reel analyze` fps against `ffmpeg -i X -f null -` and PySceneDetect
                         on a 720p and a 1080p H.264 file (N seconds, default 30; N runs,
                         default 3); JSON report (default target/reel-bench/analyze.json)
  bench infer [--runs N] [--threads N]
                         YOLOv8n at 640 on the CPU: reel's CPU engine against ONNX Runtime
                         (python3's onnxruntime, when present; a batch-8 export made with the
                         onnx package) on the same model and threads (default 2), interleaved
                         (N rounds, default 10): batch-1 latency, batch-8 throughput, CPU time
                         per image, fraction of the multiply-add peak, slowest layers; JSON
                         report (target/reel-bench/infer.json)
  bench live [--seconds N]
                         `reel live`'s engine: a 30 fps paced source through a stage costing
                         0.5x, 1x, 2x and 4x the frame interval, per mode with adaptive
                         quality, and through a plain unbounded queue: latency in frame
                         intervals, drop rate, final scale, stream lag slope (N seconds a
                         run, default 20); JSON report (target/reel-bench/live.json)
  bench batch [--videos N] [--debug] [--skip-pyscenedetect] [--out FILE]
                         N short videos of mixed length (default 40, 640x360): `reel batch --jobs auto`
                         against a shell loop of `reel analyze`, `reel analyze` and PySceneDetect under
                         `xargs -P <cores>`: wall time, videos per minute, peak RSS (the largest of each
                         one's processes); release build (--debug: the tests' build); JSON report
                         (default target/reel-bench/batch.json)
  fuzz [--seconds N] [--target NAME]
                         the fuzzer (crates/reel-fuzz) over every parser of untrusted bytes, N
                         seconds per target (default 180); JSON report in target/fuzz/report.json,
                         crashing inputs in target/fuzz/crashes/; fails when any target crashed
  slurm                  `reel batch` on a real single-node Slurm (installs slurm-wlm and munge
                         when missing; needs root or sudo): sbatch --array=0-3 merged against a
                         single-machine run, then one task killed part-way and resubmitted
                         completes the set; stops the daemons it started
  oracle [--out FILE]    reel's scene cuts against PySceneDetect's and the true cuts on made
                         and real videos; fails on any difference; JSON report (default
                         target/reel-bench/oracle.json)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    match cmd.as_str() {
        "test" | "ci" => test(),
        "demo" => demo(&args[1..]),
        "install" => {
            let mut root = None;
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--root" => root = Some(option_value::<PathBuf>(a, rest.next())),
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            install(root)
        }
        "build-plugins" => {
            let mut release = false;
            let mut fixtures = false;
            for a in &args[1..] {
                match a.as_str() {
                    "--release" => release = true,
                    "--fixtures" => fixtures = true,
                    other => {
                        eprint!("unknown option `{other}`\n\n{USAGE}");
                        std::process::exit(2);
                    }
                }
            }
            build_plugins(release, fixtures)
        }
        "bench" if args.get(1).map(String::as_str) == Some("live") => {
            let mut bench = cargo();
            bench.args(["bench", "-p", "reel-host", "--bench", "live"]);
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--seconds" => {
                        let seconds: u32 = option_value(a, rest.next());
                        bench.env("REEL_BENCH_SECONDS", seconds.max(1).to_string());
                    }
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            step("cargo bench -p reel-host --bench live", bench)
        }
        "bench" if args.get(1).map(String::as_str) == Some("batch") => {
            let mut opts = bench_batch::Options {
                out: target_dir().join("reel-bench/batch.json"),
                videos: 40,
                debug: false,
                skip_pyscenedetect: false,
            };
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--out" => opts.out = option_value(a, rest.next()),
                    "--videos" => opts.videos = option_value(a, rest.next()),
                    "--debug" => opts.debug = true,
                    "--skip-pyscenedetect" => opts.skip_pyscenedetect = true,
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            if opts.videos == 0 {
                usage_error("--videos must be at least 1");
            }
            bench_batch::run(&opts)
        }
        "bench" if args.get(1).map(String::as_str) == Some("infer") => {
            let mut bench = cargo();
            bench.args(["bench", "-p", "reel-infer", "--bench", "yolo"]);
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--runs" => {
                        let runs: u32 = option_value(a, rest.next());
                        bench.env("REEL_BENCH_RUNS", runs.max(1).to_string());
                    }
                    "--threads" => {
                        let threads: u32 = option_value(a, rest.next());
                        bench.env("REEL_BENCH_THREADS", threads.max(1).to_string());
                    }
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            step("cargo bench -p reel-infer --bench yolo", bench)
        }
        "bench" => {
            let mut opts = bench::Options {
                out: target_dir().join("reel-bench/analyze.json"),
                seconds: 30,
                runs: 3,
                skip_pyscenedetect: false,
            };
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--out" => opts.out = option_value(a, rest.next()),
                    "--seconds" => opts.seconds = option_value(a, rest.next()),
                    "--runs" => opts.runs = option_value(a, rest.next()),
                    "--skip-pyscenedetect" => opts.skip_pyscenedetect = true,
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            if opts.seconds == 0 || opts.runs == 0 {
                usage_error("--seconds and --runs must be at least 1");
            }
            bench::run(&opts)
        }
        "fuzz" => {
            let mut seconds: f64 = 180.0;
            let mut target = None;
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--seconds" => seconds = option_value(a, rest.next()),
                    "--target" => target = Some(option_value::<String>(a, rest.next())),
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            if !seconds.is_finite() || seconds <= 0.0 {
                usage_error("--seconds must be more than 0");
            }
            fuzz(seconds, target.as_deref())
        }
        "slurm" => {
            if let Some(other) = args.get(1) {
                usage_error(&format!("unknown option `{other}`"));
            }
            slurm::run()
        }
        "oracle" => {
            let mut opts = oracle::Options {
                out: target_dir().join("reel-bench/oracle.json"),
            };
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--out" => opts.out = option_value(a, rest.next()),
                    other => usage_error(&format!("unknown option `{other}`")),
                }
            }
            oracle::run(&opts)
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// Prints a usage error and the usage, and exits with status 2.
fn usage_error(message: &str) -> ! {
    eprint!("{message}\n\n{USAGE}");
    std::process::exit(2);
}

/// The value after `option`, parsed; a usage error when missing or malformed.
fn option_value<T: std::str::FromStr>(option: &str, value: Option<&String>) -> T {
    let Some(value) = value else {
        usage_error(&format!("`{option}` needs a value"));
    };
    match value.parse() {
        Ok(v) => v,
        Err(_) => usage_error(&format!("`{option}`: cannot use {value:?}")),
    }
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo` as invoked us, so the pinned toolchain is used throughout.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// The features that decode video files in process, when this machine can build
/// them: the libav development files (found by pkg-config) and libclang (for the
/// bindings). `REEL_LIBAV=0` leaves them out, `REEL_LIBAV=1` insists on them.
fn libav_features() -> Option<&'static str> {
    const FEATURES: &str = "reel-decode/libav,reel-host/libav,reel-cli/libav";
    match std::env::var("REEL_LIBAV").ok().as_deref() {
        Some("0") => return None,
        Some("1") => return Some(FEATURES),
        _ => {}
    }
    let pkg_config = Command::new("pkg-config")
        .args(["--exists", "libavcodec", "libavformat", "libavutil"])
        .status()
        .is_ok_and(|s| s.success());
    let libclang = std::env::var_os("LIBCLANG_PATH").is_some() || has_libclang();
    (pkg_config && libclang).then_some(FEATURES)
}

/// Whether libclang is installed where bindgen looks on Debian: a `libclang*.so*`
/// in `/usr/lib/llvm-*/lib` or in a multiarch library folder.
fn has_libclang() -> bool {
    let is_libclang = |e: &std::fs::DirEntry| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("libclang") && name.contains(".so")
    };
    let any_in =
        |dir: &Path| std::fs::read_dir(dir).is_ok_and(|d| d.flatten().any(|e| is_libclang(&e)));
    let Ok(lib) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    lib.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        (name.starts_with("llvm-") && any_in(&e.path().join("lib")))
            || (name.ends_with("-linux-gnu") && any_in(&e.path()))
    })
}

/// Adds the in-process decoding features to a cargo command when this machine can
/// build them (see [`libav_features`]).
fn with_libav(cmd: &mut Command) {
    if let Some(features) = libav_features() {
        cmd.args(["--features", features]);
    }
}

fn step(name: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: {name}");
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    eprintln!(
        "xtask: {name} ok in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds the plugins and reel in release, then runs `reel demo` with `args`.
fn demo(args: &[String]) -> Result<()> {
    build_plugins(true, false)?;
    let mut build = cargo();
    build.args(["build", "--release", "-q", "-p", "reel-cli"]);
    with_libav(&mut build);
    step("cargo build --release -p reel-cli", build)?;
    let exe = target_dir()
        .join("release")
        .join(format!("reel{}", std::env::consts::EXE_SUFFIX));
    let status = Command::new(&exe)
        .arg("demo")
        .args(args)
        .status()
        .with_context(|| format!("could not start {}", exe.display()))?;
    if !status.success() {
        bail!("reel demo failed ({status})");
    }
    Ok(())
}

/// Builds `reel` and the sample plugins in release and copies them to
/// `root/bin/reel` and `root/bin/plugins/`, where `reel` looks for plugins beside
/// itself.
fn install(root: Option<PathBuf>) -> Result<()> {
    let root = match root {
        Some(r) => r,
        None => std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .context("neither --root, CARGO_HOME nor HOME says where to install")?,
    };
    build_plugins(true, false)?;
    let mut build = cargo();
    build.args(["build", "--release", "-q", "-p", "reel-cli"]);
    with_libav(&mut build);
    step("cargo build --release -p reel-cli", build)?;
    let bin = root.join("bin");
    let plugins = bin.join("plugins");
    std::fs::create_dir_all(&plugins).with_context(|| format!("creating {}", plugins.display()))?;
    let exe = format!("reel{}", std::env::consts::EXE_SUFFIX);
    let built = target_dir().join("release");
    copy_replacing(&built.join(&exe), &bin.join(&exe))?;
    for entry in std::fs::read_dir(target_dir().join("plugins"))? {
        let from = entry?.path();
        if let Some(name) = from.file_name() {
            copy_replacing(&from, &plugins.join(name))?;
        }
    }
    eprintln!(
        "xtask: installed {} ({}) and its plugins in {}",
        bin.join(&exe).display(),
        if libav_features().is_some() {
            "with in-process decoding"
        } else {
            "decoding through the ffmpeg program: install the libav development files for in-process decoding"
        },
        plugins.display()
    );
    Ok(())
}

/// Copies `from` over `to` through a temporary name, so that a running copy of the
/// old file keeps a consistent one.
fn copy_replacing(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("tmp-install");
    std::fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))?;
    Ok(())
}

fn test() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets"]);
    with_libav(&mut clippy);
    clippy.args(["--", "-D", "warnings"]);
    step("cargo clippy", clippy)?;

    // The integration tests load the plugins and fixtures from target/.
    build_plugins(false, true)?;

    let mut test = cargo();
    test.args(["test", "--workspace"]);
    with_libav(&mut test);
    match libav_features() {
        Some(_) => eprintln!("xtask: with in-process decoding (libav)"),
        None => {
            eprintln!("xtask: without in-process decoding (no libav development files or libclang)")
        }
    }
    step("cargo test", test)?;

    // The tests include a short fuzz run of every parser of untrusted bytes (two
    // seconds a target, `crates/reel-fuzz/tests/short_run.rs`); `cargo xtask fuzz`
    // is the long one.

    // The build without in-process decoding is what users without the libav
    // development files get: it must build clean and pass the tests of the crates
    // whose behaviour depends on it.
    if libav_features().is_some() {
        let mut clippy = cargo();
        clippy.args(["clippy", "--all-targets"]);
        clippy.args(WITHOUT_LIBAV_PACKAGES.iter().flat_map(|p| ["-p", p]));
        clippy.args(["--", "-D", "warnings"]);
        step("cargo clippy (without libav)", clippy)?;
        let mut test = cargo();
        test.args(["test", "-p", "reel-decode", "-p", "reel-host"]);
        step("cargo test (without libav)", test)?;
        // The command-line tests whose runs do not depend on the decoder the build
        // has (the model, the plugins, the cache) ran above already.
        let mut test = cargo();
        test.args(["test", "-p", "reel-cli", "--"]);
        test.args(
            DECODER_INDEPENDENT_CLI_TESTS
                .iter()
                .flat_map(|t| ["--skip", t]),
        );
        step("cargo test -p reel-cli (without libav)", test)?;
    }
    Ok(())
}

/// Builds the fuzzer and runs it for `seconds` per target (or on `target` alone).
/// It is built in the test profile: overflow checks and debug assertions on, so
/// that an arithmetic overflow an input causes is a crash, not a wrong number.
fn fuzz(seconds: f64, target: Option<&str>) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "-q", "-p", "reel-fuzz"]);
    step("cargo build -p reel-fuzz", build)?;
    let dir = target_dir().join("fuzz");
    let mut run = Command::new(
        target_dir()
            .join("debug")
            .join(format!("reel-fuzz{}", std::env::consts::EXE_SUFFIX)),
    );
    run.current_dir(root())
        .arg("--seconds")
        .arg(seconds.to_string())
        .arg("--out")
        .arg(dir.join("report.json"))
        .arg("--crashes")
        .arg(dir.join("crashes"));
    if let Some(t) = target {
        run.args(["--target", t]);
    }
    step(&format!("reel-fuzz --seconds {seconds}"), run)
}

/// The packages whose code differs without the `libav` feature.
const WITHOUT_LIBAV_PACKAGES: [&str; 3] = ["reel-decode", "reel-host", "reel-cli"];

/// Modules and tests of reel-cli's command-line tests that exercise the model,
/// the plugins, the cache or the batch's bookkeeping rather than decoding: the
/// build without in-process decoding need not run them a second time. (`reel live`
/// reads streams through the ffmpeg child and `synthetic:` in pure Rust, in either
/// build.)
const DECODER_INDEPENDENT_CLI_TESTS: [&str; 14] = [
    "engine::",
    "live::",
    "detect::",
    "plugins::",
    "cache::",
    "system::",
    "reliability::a_truncated_plugin_library",
    "batch::shards_cover",
    "batch::each_schedulers",
    "batch::four_jobs",
    "batch::a_rerun",
    "batch::a_failure_on_the_first",
    "batch::a_fifo",
    "batch::sigkill",
];

/// The cargo target folder.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root().join(d) })
        .unwrap_or_else(|| root().join("target"))
}

/// The packages under `dir` (one folder per package, named as the package).
fn packages_in(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Builds the sample plugins (and the test fixtures) and puts their libraries
/// in `target/plugins/` (and `target/plugin-fixtures/`).
fn build_plugins(release: bool, fixtures: bool) -> Result<()> {
    let mut sets = vec![(packages_in(&root().join("plugins"))?, "plugins")];
    if fixtures {
        sets.push((
            packages_in(&root().join("tests/fixtures/plugins"))?,
            "plugin-fixtures",
        ));
    }
    let mut build = cargo();
    build.arg("build");
    if release {
        build.arg("--release");
    }
    for (names, _) in &sets {
        for n in names {
            build.args(["-p", n]);
        }
    }
    step("cargo build (plugins)", build)?;

    let target = target_dir();
    let built = target.join(if release { "release" } else { "debug" });
    for (names, folder) in &sets {
        let dest = target.join(folder);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .with_context(|| format!("clearing {}", dest.display()))?;
        }
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        for n in names {
            let file = format!(
                "{}{}{}",
                std::env::consts::DLL_PREFIX,
                n.replace('-', "_"),
                std::env::consts::DLL_SUFFIX
            );
            let from = built.join(&file);
            // Copy then rename, so a process that has the old library loaded keeps a
            // consistent file.
            let tmp = dest.join(format!(".{file}.tmp"));
            std::fs::copy(&from, &tmp)
                .with_context(|| format!("copying {} (is `{n}` a cdylib?)", from.display()))?;
            std::fs::rename(&tmp, dest.join(&file))?;
        }
        eprintln!("xtask: {} plugin(s) in {}", names.len(), dest.display());
    }
    Ok(())
}
