//! `reel system`: this machine's cores, memory, profile and default settings.

use std::process::ExitCode;

use reel_host::system::{OptLevel, SystemInfo};

use crate::output::{self, Context};

/// Arguments of `reel system`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  reel system --json | jq .levels.balanced")]
pub struct Args {
    /// Print the machine-readable summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `reel system`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let info = SystemInfo::detect();
    if args.json {
        output::print_json(&info)?;
    } else if !ctx.quiet {
        println!("cores:   {}", info.cores);
        println!("memory:  {}", output::bytes(info.memory_bytes));
        println!("profile: {}", info.profile.as_str());
        print_hardware(&info);
        println!();
        println!(
            "{:<13} {:>7} {:>12} {:>6}",
            "level", "workers", "pool budget", "batch"
        );
        for level in OptLevel::ALL {
            let d = info.level(level);
            let name = serde_json::to_value(level)?;
            println!(
                "{:<13} {:>7} {:>12} {:>6}",
                name.as_str().unwrap_or_default(),
                d.workers,
                output::bytes(d.pool_budget_bytes),
                d.batch_size
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// GPUs, ffmpeg and the hardware decoding and encoding it can use here.
fn print_hardware(info: &SystemInfo) {
    if info.gpus.is_empty() {
        println!("gpus:    none");
    }
    for gpu in &info.gpus {
        let memory = gpu
            .memory_bytes
            .map(|b| format!(", {}", output::bytes(b)))
            .unwrap_or_default();
        let device = gpu
            .device
            .as_deref()
            .map(|d| format!(", {d}"))
            .unwrap_or_default();
        println!("gpu:     {} ({}{memory}{device})", gpu.name, gpu.vendor);
    }
    let hw = &info.hardware;
    match &hw.ffmpeg {
        None => println!("ffmpeg:  not found (install ffmpeg or set REEL_FFMPEG)"),
        Some(version) => {
            println!("ffmpeg:  {version}");
            let list = |names: Vec<&str>| {
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            };
            let built: Vec<&str> = hw.hwaccels.iter().map(|m| m.name.as_str()).collect();
            println!(
                "hardware decoding: {} (ffmpeg has {})",
                list(hw.available_hwaccels()),
                list(built)
            );
            println!("hardware encoding: {}", list(hw.available_encoders()));
        }
    }
}
