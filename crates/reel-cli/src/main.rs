//! `reel`: the command-line face of the engine. Parses arguments, sets up logging,
//! runs one command, and maps the outcome to the exit status of the contract:
//! 0 success, 2 usage error, 1 any other failure, with errors printed as one
//! `error: …` line carrying the cause chain.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod metrics;
mod output;
mod scenes;

/// reel: scene analysis, object detection and plugins on video, in bounded memory.
#[derive(Debug, Parser)]
#[command(name = "reel", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  reel demo\n  reel analyze input.mp4 --out frames.jsonl --json\n  reel detect input.mp4 --model yolov8n --out dets.jsonl\n  reel live rtsp://camera/stream --model yolov8n\n  reel system --json\n  reel probe input.mp4\n  reel plugins list\n  reel cache stats"
)]
struct Cli {
    /// More log output (repeat for more: -v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// No progress bars and no human summary; errors are still printed.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Settings file to use instead of ./reel.toml or the user's reel/reel.toml.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    /// The analysis cache's directory (default: reel.toml's, else
    /// $XDG_CACHE_HOME/reel or ~/.cache/reel).
    #[arg(long, global = true, value_name = "DIR", env = "REEL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// The longest a network input (a URL) may take to connect or to answer a read
    /// before it is an error, probes included (default: reel.toml's
    /// `network_timeout`, else 15s). Example: --timeout 5s
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<std::time::Duration>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scene cuts and per-frame measurements of a video (cached per file).
    Analyze(cmd::analyze::Args),
    /// Detect objects with a YOLOv8 model, frame by frame, in batches.
    Detect(cmd::detect::Args),
    /// Process a camera, a network stream or a paced file as it arrives, with
    /// bounded latency, reconnects and adaptive quality.
    Live(cmd::live::Args),
    /// Many videos at once over one memory budget; resumable, shardable across machines.
    Batch(cmd::batch::Args),
    /// Analyse a generated video with known cuts and show what was found.
    Demo(cmd::demo::Args),
    /// Show what a video (or image sequence, Y4M file, synthetic: source) holds.
    Probe(cmd::probe::Args),
    /// Show this machine's cores, memory, profile and the defaults they imply.
    System(cmd::system::Args),
    /// Show, prune or clear the analysis cache.
    Cache(cmd::cache::Args),
    /// List the plugins reel can load, or describe one.
    Plugins(cmd::plugins::Args),
}

/// `--timeout`: a positive duration (`5s`, `1m`, `500ms`).
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = reel_host::config::parse_age(s)
        .map_err(|_| format!("`{s}` is not a duration like 5s, 1m or 500ms"))?;
    if d.is_zero() {
        return Err("the timeout must be longer than zero".into());
    }
    Ok(d)
}

fn main() -> ExitCode {
    output::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage_error = e.use_stderr();
            // Printing can only fail if stdout/stderr are gone; nothing left to do then.
            let _ = e.print();
            return if usage_error {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    output::init_logging(cli.verbose, cli.quiet);
    let ctx = output::Context {
        quiet: cli.quiet,
        config: cli.config,
        cache_dir: cli.cache_dir,
        network_timeout: cli.timeout,
    };
    let result = match cli.command {
        Command::Analyze(args) => cmd::analyze::run(&ctx, args),
        Command::Detect(args) => cmd::detect::run(&ctx, args),
        Command::Live(args) => cmd::live::run(&ctx, args),
        Command::Batch(args) => cmd::batch::run(&ctx, args),
        Command::Demo(args) => cmd::demo::run(&ctx, args),
        Command::Probe(args) => cmd::probe::run(&ctx, args),
        Command::System(args) => cmd::system::run(&ctx, args),
        Command::Cache(args) => cmd::cache::run(&ctx, args),
        Command::Plugins(args) => cmd::plugins::run(&ctx, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                // The reader of stdout has gone: nothing left to say to it.
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", output::one_line(&e));
            if output::is_usage_error(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
