//! `reel system`: this machine's cores, memory, profile and default settings.

use std::process::ExitCode;

use reel_host::config::{Config, Settings};
use reel_host::system::{OptLevel, SystemInfo};
use serde::Serialize;

use crate::output::{self, Context};

/// `reel system --json`: the build, the machine and the settings in effect.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// reel's version.
    version: &'static str,
    /// What this build can do beyond the baseline (`libav`, `cuda`, `metal`).
    features: Vec<&'static str>,
    #[serde(flatten)]
    info: &'a SystemInfo,
    /// The effective settings: flags over `reel.toml` over the profile's defaults.
    settings: &'a Settings,
    /// The kernels the CPU engine runs detection with here, and every set this
    /// processor supports (`REEL_CPU_KERNELS` chooses among them).
    cpu_kernels: CpuKernels,
}

/// The CPU engine's kernels on this machine.
#[derive(Debug, Serialize)]
struct CpuKernels {
    /// The set in use (or the error `REEL_CPU_KERNELS` causes).
    chosen: String,
    /// Every set this processor runs.
    supported: Vec<&'static str>,
}

fn cpu_kernels() -> CpuKernels {
    use reel_infer::cpu::KernelSet;
    CpuKernels {
        chosen: reel_infer::cpu::kernel_set()
            .map_or_else(|e| e.to_string(), |k| k.name().to_string()),
        supported: KernelSet::ENGINE
            .into_iter()
            .filter(|k| k.is_supported())
            .map(KernelSet::name)
            .collect(),
    }
}

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
    // A broken reel.toml fails here as it fails every other command.
    let settings = ctx.settings(Config::default())?;
    let info = SystemInfo::detect();
    let features = reel_host::system::build_features();
    if args.json {
        output::print_json(&Report {
            version: env!("CARGO_PKG_VERSION"),
            features,
            info: &info,
            settings: &settings,
            cpu_kernels: cpu_kernels(),
        })?;
    } else if !ctx.quiet {
        println!(
            "reel:    {} ({})",
            env!("CARGO_PKG_VERSION"),
            if features.is_empty() {
                "decoding through the ffmpeg program, inference on the CPU".to_string()
            } else {
                format!("built with {}", features.join(", "))
            }
        );
        println!("cores:   {}", info.cores);
        let k = cpu_kernels();
        println!(
            "cpu kernels: {} (this processor runs {})",
            k.chosen,
            k.supported.join(", ")
        );
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
        println!();
        print_settings(&settings);
    }
    Ok(ExitCode::SUCCESS)
}

/// The settings in effect, and where they come from.
fn print_settings(s: &Settings) {
    let from = s
        .config_file
        .as_ref()
        .map_or("the profile's defaults (no reel.toml)".to_string(), |p| {
            format!("{} over the profile's defaults", p.display())
        });
    println!("settings: from {from}");
    let level = serde_json::to_value(s.level).unwrap_or_default();
    println!(
        "  level {}, mode {}, workers {}, pool budget {}, batch {}",
        level.as_str().unwrap_or_default(),
        s.mode.map_or("each command's own", |m| m.name()),
        s.workers,
        output::bytes(s.pool_budget_bytes),
        s.batch_size
    );
    match (&s.cache.dir, s.cache.enabled) {
        (Some(dir), true) => println!(
            "  cache {} (up to {}, entries unused for {} pruned)",
            dir.display(),
            output::bytes(s.cache.max_bytes),
            output::duration(std::time::Duration::from_secs(s.cache.max_age_s))
        ),
        _ => println!("  cache off"),
    }
    for d in &s.plugin_dirs {
        println!("  plugin folder {}", d.display());
    }
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
