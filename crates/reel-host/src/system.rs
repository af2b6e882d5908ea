//! The system profile: what this machine is, and the defaults that follow from it for
//! each optimisation level.

use serde::Serialize;

use reel_decode::FfmpegTools;
use reel_decode::hw::{Gpu, HwCodec, HwMethod, HwReport};
use reel_pool::monitor::{MemoryProbe, SysinfoProbe};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// A coarse class of machine, from its cores and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Up to 2 cores or under 4 GiB.
    LowEnd,
    /// Up to 4 cores or under 16 GiB.
    Medium,
    /// Up to 16 cores or under 64 GiB.
    HighEnd,
    /// More than that.
    Workstation,
}

impl Profile {
    /// Classifies a machine.
    pub fn classify(cores: usize, memory_bytes: u64) -> Self {
        if cores <= 2 || memory_bytes < 4 * GIB {
            Profile::LowEnd
        } else if cores <= 4 || memory_bytes < 16 * GIB {
            Profile::Medium
        } else if cores <= 16 || memory_bytes < 64 * GIB {
            Profile::HighEnd
        } else {
            Profile::Workstation
        }
    }

    /// The profile's name (`low-end`, `medium`, `high-end`, `workstation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::LowEnd => "low-end",
            Profile::Medium => "medium",
            Profile::HighEnd => "high-end",
            Profile::Workstation => "workstation",
        }
    }

    fn batch_base(self) -> usize {
        match self {
            Profile::LowEnd => 1,
            Profile::Medium => 2,
            Profile::HighEnd => 4,
            Profile::Workstation => 8,
        }
    }
}

/// How hard reel may push the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptLevel {
    /// Leaves most of the machine to other work.
    Conservative,
    /// The default.
    #[default]
    Balanced,
    /// Takes all of it.
    Aggressive,
}

impl OptLevel {
    /// Every level, mildest first.
    pub const ALL: [OptLevel; 3] = [
        OptLevel::Conservative,
        OptLevel::Balanced,
        OptLevel::Aggressive,
    ];
}

/// The defaults one optimisation level implies on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LevelDefaults {
    /// Worker threads for parallel stages.
    pub workers: usize,
    /// The frame pool's byte budget.
    pub pool_budget_bytes: u64,
    /// Inference batch size.
    pub batch_size: usize,
}

/// Defaults per level, as serialised in `reel system --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Levels {
    /// Defaults for `conservative`.
    pub conservative: LevelDefaults,
    /// Defaults for `balanced`.
    pub balanced: LevelDefaults,
    /// Defaults for `aggressive`.
    pub aggressive: LevelDefaults,
}

/// The video hardware ffmpeg can use here, as `reel system --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Hardware {
    /// The ffmpeg version, `None` when ffmpeg cannot be run.
    pub ffmpeg: Option<String>,
    /// ffmpeg's hardware decoding methods (`-hwaccel`), each with the device that
    /// backs it and whether it is available.
    pub hwaccels: Vec<HwMethod>,
    /// ffmpeg's dedicated hardware decoders.
    pub decoders: Vec<HwCodec>,
    /// ffmpeg's hardware encoders.
    pub encoders: Vec<HwCodec>,
}

impl Hardware {
    /// The hardware decoding methods available here, by name.
    pub fn available_hwaccels(&self) -> Vec<&str> {
        self.hwaccels
            .iter()
            .filter(|m| m.available)
            .map(|m| m.name.as_str())
            .collect()
    }

    /// The hardware encoders available here, by name.
    pub fn available_encoders(&self) -> Vec<&str> {
        self.encoders
            .iter()
            .filter(|e| e.available)
            .map(|e| e.name.as_str())
            .collect()
    }
}

/// What this machine is and what reel will do on it by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemInfo {
    /// Logical cores available to this process.
    pub cores: usize,
    /// Physical memory (or the container's limit) in bytes.
    pub memory_bytes: u64,
    /// The machine's class.
    pub profile: Profile,
    /// Defaults for each optimisation level.
    pub levels: Levels,
    /// Graphics devices.
    pub gpus: Vec<Gpu>,
    /// Hardware video decoding and encoding through ffmpeg.
    pub hardware: Hardware,
}

/// What this build of reel can do beyond the baseline: `libav` (decoding in
/// process), `cuda`, `metal` (GPU inference).
pub fn build_features() -> Vec<&'static str> {
    [
        ("libav", reel_decode::LIBAV),
        ("cuda", cfg!(feature = "cuda")),
        ("metal", cfg!(feature = "metal")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

impl SystemInfo {
    /// Reads this machine, its GPUs and what the ffmpeg on `PATH` (or in
    /// `REEL_FFMPEG`) can do with them.
    pub fn detect() -> Self {
        Self::machine().with_hardware(reel_decode::hw::cached(&FfmpegTools::from_env()))
    }

    /// This machine's cores, memory, profile and defaults, without asking ffmpeg or
    /// the GPUs anything: what choosing settings needs, at no start-up cost.
    pub fn machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_bytes = SysinfoProbe::new().sample().total_bytes;
        Self::for_machine(cores, memory_bytes)
    }

    /// The same machine with the hardware `report` found.
    pub fn with_hardware(mut self, report: HwReport) -> Self {
        self.gpus = report.gpus;
        self.hardware = Hardware {
            ffmpeg: report.ffmpeg,
            hwaccels: report.hwaccels,
            decoders: report.decoders,
            encoders: report.encoders,
        };
        self
    }

    /// The profile and defaults of a machine with `cores` and `memory_bytes`.
    pub fn for_machine(cores: usize, memory_bytes: u64) -> Self {
        let cores = cores.max(1);
        let profile = Profile::classify(cores, memory_bytes);
        let levels = Levels {
            conservative: defaults(OptLevel::Conservative, profile, cores, memory_bytes),
            balanced: defaults(OptLevel::Balanced, profile, cores, memory_bytes),
            aggressive: defaults(OptLevel::Aggressive, profile, cores, memory_bytes),
        };
        Self {
            cores,
            memory_bytes,
            profile,
            levels,
            gpus: Vec::new(),
            hardware: Hardware::default(),
        }
    }

    /// The defaults for one level.
    pub fn level(&self, level: OptLevel) -> LevelDefaults {
        match level {
            OptLevel::Conservative => self.levels.conservative,
            OptLevel::Balanced => self.levels.balanced,
            OptLevel::Aggressive => self.levels.aggressive,
        }
    }
}

fn defaults(level: OptLevel, profile: Profile, cores: usize, memory: u64) -> LevelDefaults {
    let (workers, divisor, batch_mul) = match level {
        OptLevel::Conservative => ((cores / 2).max(1), 20, 1),
        OptLevel::Balanced => (cores.saturating_sub(1).max(1), 10, 2),
        OptLevel::Aggressive => (cores, 5, 4),
    };
    // The pool takes 1/divisor of memory, between 64 MiB and 8 GiB.
    let pool_budget_bytes = (memory / divisor).clamp(64 * MIB, 8 * GIB);
    LevelDefaults {
        workers,
        pool_budget_bytes,
        batch_size: profile.batch_base() * batch_mul,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_by_cores_and_memory() {
        assert_eq!(Profile::classify(2, 24 * GIB), Profile::LowEnd);
        assert_eq!(Profile::classify(8, 2 * GIB), Profile::LowEnd);
        assert_eq!(Profile::classify(4, 32 * GIB), Profile::Medium);
        assert_eq!(Profile::classify(16, 32 * GIB), Profile::HighEnd);
        assert_eq!(Profile::classify(64, 256 * GIB), Profile::Workstation);
    }

    #[test]
    fn levels_grow_from_conservative_to_aggressive() {
        let s = SystemInfo::for_machine(8, 32 * GIB);
        let [c, b, a] = OptLevel::ALL.map(|l| s.level(l));
        assert!(c.workers <= b.workers && b.workers <= a.workers);
        assert!(c.pool_budget_bytes <= b.pool_budget_bytes);
        assert!(b.pool_budget_bytes <= a.pool_budget_bytes);
        assert!(c.batch_size <= b.batch_size && b.batch_size <= a.batch_size);
        assert_eq!(a.workers, 8);
    }

    #[test]
    fn tiny_machines_still_get_a_usable_pool() {
        let s = SystemInfo::for_machine(1, 512 * MIB);
        assert_eq!(s.profile, Profile::LowEnd);
        assert_eq!(s.levels.conservative.pool_budget_bytes, 64 * MIB);
        assert_eq!(s.levels.conservative.workers, 1);
    }

    #[test]
    fn json_has_the_contract_keys() {
        let v = serde_json::to_value(SystemInfo::for_machine(2, 24 * GIB)).unwrap();
        for key in [
            "cores",
            "memory_bytes",
            "profile",
            "levels",
            "gpus",
            "hardware",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["profile"], "low-end");
        assert!(v["levels"]["balanced"]["pool_budget_bytes"].is_u64());
    }

    #[test]
    fn this_machine_is_detected() {
        let s = SystemInfo::detect();
        assert!(s.cores >= 1);
        assert!(s.memory_bytes > 0);
        // ffmpeg is installed where the tests run.
        assert!(s.hardware.ffmpeg.is_some());
        for m in &s.hardware.hwaccels {
            assert_eq!(m.available, m.device.is_some(), "{m:?}");
        }
    }

    #[test]
    fn hardware_is_reported_as_found() {
        let report = HwReport {
            ffmpeg: Some("5.1".into()),
            gpus: reel_decode::hw::parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n"),
            hwaccels: vec![HwMethod {
                name: "cuda".into(),
                device: Some("/dev/nvidia0".into()),
                available: true,
            }],
            decoders: Vec::new(),
            encoders: vec![HwCodec {
                name: "h264_nvenc".into(),
                codec: "h264".into(),
                api: "nvenc".into(),
                available: true,
            }],
        };
        let s = SystemInfo::for_machine(16, 128 * GIB).with_hardware(report);
        assert_eq!(s.hardware.available_hwaccels(), ["cuda"]);
        assert_eq!(s.hardware.available_encoders(), ["h264_nvenc"]);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["gpus"][0]["name"], "NVIDIA H100 80GB HBM3");
        assert_eq!(v["gpus"][0]["memory_bytes"], 81559u64 << 20);
        assert_eq!(v["hardware"]["hwaccels"][0]["available"], true);
        assert_eq!(v["hardware"]["encoders"][0]["name"], "h264_nvenc");
    }
}
