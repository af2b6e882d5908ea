//! What video hardware this machine has, and what ffmpeg can do with it.
//!
//! Two questions, answered separately and then joined: which devices exist (NVIDIA
//! GPUs through `nvidia-smi` or the driver's `/proc` files, DRM render nodes for
//! VAAPI and Quick Sync, VideoToolbox on macOS), and which hardware methods, decoders
//! and encoders the installed ffmpeg was built with (`-hwaccels`, `-decoders`,
//! `-encoders`). A method or codec is *available* when ffmpeg has it and a device of
//! its kind exists; whether it really starts is only known when it is used, which is
//! why the decoder falls back to software when it does not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Serialize;

use crate::options::{FfmpegTools, HwAccel};

/// A graphics device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    /// `nvidia`, `intel`, `amd`, `apple` or the PCI vendor id.
    pub vendor: String,
    /// The model, or the kernel driver's name when the model is unknown.
    pub name: String,
    /// Dedicated memory in bytes, when known.
    pub memory_bytes: Option<u64>,
    /// The device node that reaches it (`/dev/nvidia0`, `/dev/dri/renderD128`).
    pub device: Option<String>,
    /// Driver version or name, when known.
    pub driver: Option<String>,
}

/// A hardware method of ffmpeg's (`-hwaccel NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HwMethod {
    /// ffmpeg's name for it (`cuda`, `vaapi`, `qsv`, `videotoolbox`, `vdpau`, …).
    pub name: String,
    /// The device that would back it, if this machine has one.
    pub device: Option<String>,
    /// Whether ffmpeg has it and a device of its kind exists.
    pub available: bool,
}

/// A hardware decoder or encoder of ffmpeg's (`h264_nvenc`, `hevc_cuvid`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HwCodec {
    /// ffmpeg's name for it.
    pub name: String,
    /// The codec it handles (`h264`, `hevc`, `av1`, …).
    pub codec: String,
    /// The hardware interface (`nvenc`, `cuvid`, `vaapi`, `qsv`, `videotoolbox`,
    /// `v4l2m2m`, `amf`, `omx`, `mediacodec`).
    pub api: String,
    /// Whether a device of its kind exists.
    pub available: bool,
}

/// Everything found, as `reel system --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HwReport {
    /// The ffmpeg version, `None` when ffmpeg cannot be run.
    pub ffmpeg: Option<String>,
    /// Graphics devices.
    pub gpus: Vec<Gpu>,
    /// ffmpeg's hardware methods.
    pub hwaccels: Vec<HwMethod>,
    /// ffmpeg's dedicated hardware decoders.
    pub decoders: Vec<HwCodec>,
    /// ffmpeg's hardware encoders.
    pub encoders: Vec<HwCodec>,
}

impl HwReport {
    /// Probes this machine and the given ffmpeg.
    pub fn detect(tools: &FfmpegTools) -> Self {
        let devices = Devices::detect();
        let run = |args: &[&str]| ffmpeg_output(&tools.ffmpeg, args);
        let ffmpeg = run(&["-version"]).and_then(|v| parse_version(&v));
        let methods = run(&["-hide_banner", "-hwaccels"])
            .map(|t| parse_hwaccels(&t))
            .unwrap_or_default();
        let decoders = run(&["-hide_banner", "-decoders"])
            .map(|t| parse_codecs(&t))
            .unwrap_or_default();
        let encoders = run(&["-hide_banner", "-encoders"])
            .map(|t| parse_codecs(&t))
            .unwrap_or_default();
        Self::assemble(ffmpeg, &devices, &methods, decoders, encoders)
    }

    /// The report for `devices` and what ffmpeg said.
    fn assemble(
        ffmpeg: Option<String>,
        devices: &Devices,
        methods: &[String],
        decoders: Vec<(String, String, String)>,
        encoders: Vec<(String, String, String)>,
    ) -> Self {
        let hwaccels = methods
            .iter()
            .map(|m| {
                let device = devices.for_api(m);
                HwMethod {
                    name: m.clone(),
                    available: device.is_some(),
                    device,
                }
            })
            .collect();
        let codec = |(name, codec, api): (String, String, String)| HwCodec {
            available: devices.for_api(&api).is_some(),
            name,
            codec,
            api,
        };
        Self {
            ffmpeg,
            gpus: devices.gpus.clone(),
            hwaccels,
            decoders: decoders.into_iter().map(codec).collect(),
            encoders: encoders.into_iter().map(codec).collect(),
        }
    }

    /// The hardware method `auto` picks: the first available of CUDA,
    /// VideoToolbox, VAAPI and Quick Sync, with its device.
    pub fn auto_choice(&self) -> Option<(HwAccel, Option<String>)> {
        [
            HwAccel::Cuda,
            HwAccel::VideoToolbox,
            HwAccel::Vaapi,
            HwAccel::Qsv,
        ]
        .into_iter()
        .find_map(|hw| {
            self.hwaccels
                .iter()
                .find(|m| m.available && m.name == hw.name())
                .map(|m| (hw, m.device.clone()))
        })
    }

    /// The device that backs `hw`, if any.
    pub fn device_for(&self, hw: HwAccel) -> Option<String> {
        self.hwaccels
            .iter()
            .find(|m| m.name == hw.name())
            .and_then(|m| m.device.clone())
    }

    /// The best available H.264 hardware encoder, if any.
    pub fn h264_encoder(&self) -> Option<&HwCodec> {
        ["nvenc", "videotoolbox", "qsv", "vaapi"]
            .into_iter()
            .find_map(|api| {
                self.encoders
                    .iter()
                    .find(|e| e.available && e.codec == "h264" && e.api == api)
            })
    }
}

/// What `auto` decodes with: the method [`HwReport::auto_choice`] picks, or `None`
/// for software. A machine with no graphics device (most servers and CI machines)
/// is answered from the device files alone, without running ffmpeg; otherwise the
/// report is worked out once per process, as [`cached`] does.
pub fn auto_choice(tools: &FfmpegTools) -> Option<(HwAccel, Option<String>)> {
    static DEVICES: OnceLock<bool> = OnceLock::new();
    let any_device = *DEVICES.get_or_init(|| {
        let d = Devices::detect();
        !d.gpus.is_empty() || d.macos
    });
    if any_device {
        cached(tools).auto_choice()
    } else {
        None
    }
}

/// The report for the default tools, worked out once per process.
pub fn cached(tools: &FfmpegTools) -> HwReport {
    static CACHE: OnceLock<(FfmpegTools, HwReport)> = OnceLock::new();
    let (for_tools, report) = CACHE.get_or_init(|| (tools.clone(), HwReport::detect(tools)));
    if for_tools == tools {
        report.clone()
    } else {
        HwReport::detect(tools)
    }
}

fn ffmpeg_output(program: &Path, args: &[&str]) -> Option<String> {
    let out = crate::child::command(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ffmpeg version 5.1.9-0+deb12u1 Copyright …` → `5.1.9-0+deb12u1`.
pub fn parse_version(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let rest = line.strip_prefix("ffmpeg version ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// The method names listed by `ffmpeg -hwaccels`.
pub fn parse_hwaccels(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Hardware acceleration methods"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Hardware interfaces, by the suffix ffmpeg gives their codecs' names.
const HW_APIS: [&str; 10] = [
    "nvenc",
    "cuvid",
    "vaapi",
    "qsv",
    "videotoolbox",
    "v4l2m2m",
    "amf",
    "omx",
    "mediacodec",
    "vulkan",
];

/// The hardware codecs in `ffmpeg -decoders` or `ffmpeg -encoders` output, as
/// (name, codec, api).
pub fn parse_codecs(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("------"))
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let flags = words.next()?;
            if !flags.starts_with('V') {
                return None;
            }
            let name = words.next()?;
            let (base, api) = name.rsplit_once('_')?;
            if !HW_APIS.contains(&api) {
                return None;
            }
            let codec = line
                .rsplit_once("(codec ")
                .and_then(|(_, c)| c.strip_suffix(')'))
                .unwrap_or(base);
            Some((name.to_string(), codec.to_string(), api.to_string()))
        })
        .collect()
}

/// The devices found on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Devices {
    pub gpus: Vec<Gpu>,
    /// DRM render nodes with their vendor.
    pub render_nodes: Vec<(PathBuf, String)>,
    pub macos: bool,
}

impl Devices {
    fn detect() -> Self {
        let mut gpus = nvidia_gpus();
        let render_nodes = render_nodes(Path::new("/sys/class/drm"));
        for (node, vendor) in &render_nodes {
            if vendor == "nvidia" && !gpus.is_empty() {
                continue;
            }
            let driver = std::fs::read_link(
                Path::new("/sys/class/drm")
                    .join(node.file_name().unwrap_or_default())
                    .join("device/driver"),
            )
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            gpus.push(Gpu {
                vendor: vendor.clone(),
                name: driver.clone().unwrap_or_else(|| "render node".into()),
                memory_bytes: None,
                device: Some(node.display().to_string()),
                driver,
            });
        }
        let macos = cfg!(target_os = "macos");
        if macos {
            gpus.push(Gpu {
                vendor: "apple".into(),
                name: "VideoToolbox".into(),
                memory_bytes: None,
                device: None,
                driver: None,
            });
        }
        Self {
            gpus,
            render_nodes,
            macos,
        }
    }

    fn nvidia(&self) -> Option<String> {
        self.gpus
            .iter()
            .find(|g| g.vendor == "nvidia")
            .map(|g| g.device.clone().unwrap_or_else(|| "nvidia".into()))
    }

    fn render_node(&self, vendors: &[&str]) -> Option<String> {
        self.render_nodes
            .iter()
            .find(|(_, v)| vendors.contains(&v.as_str()))
            .map(|(p, _)| p.display().to_string())
    }

    /// The device behind a hardware method or codec interface, if there is one.
    fn for_api(&self, api: &str) -> Option<String> {
        match api {
            "cuda" | "cuvid" | "nvenc" | "vdpau" => self.nvidia(),
            "vaapi" => self.render_node(&["intel", "amd"]),
            "qsv" => self.render_node(&["intel"]),
            "amf" => self.render_node(&["amd"]),
            "videotoolbox" => self.macos.then(|| "videotoolbox".into()),
            "drm" => self.render_node(&["intel", "amd", "nvidia"]),
            "vulkan" | "opencl" => self.gpus.first().and_then(|g| g.device.clone()),
            _ => None,
        }
    }
}

/// NVIDIA GPUs from `nvidia-smi`, else from the driver's `/proc` files.
fn nvidia_gpus() -> Vec<Gpu> {
    let smi = Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total,driver_version",
            "--format=csv,noheader,nounits",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = smi
        && out.status.success()
    {
        let gpus = parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout));
        if !gpus.is_empty() {
            return gpus;
        }
    }
    let Ok(dir) = std::fs::read_dir("/proc/driver/nvidia/gpus") else {
        return Vec::new();
    };
    let mut entries: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    entries
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let info = std::fs::read_to_string(p.join("information")).unwrap_or_default();
            let model = info
                .lines()
                .find_map(|l| l.strip_prefix("Model:"))
                .map_or_else(|| "NVIDIA GPU".to_string(), |m| m.trim().to_string());
            Gpu {
                vendor: "nvidia".into(),
                name: model,
                memory_bytes: None,
                device: Some(format!("/dev/nvidia{i}")),
                driver: None,
            }
        })
        .collect()
}

/// `nvidia-smi --query-gpu=index,name,memory.total,driver_version
/// --format=csv,noheader,nounits` output (memory in MiB).
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, name, memory, driver] = cols.as_slice() else {
                return None;
            };
            let index: u32 = index.parse().ok()?;
            Some(Gpu {
                vendor: "nvidia".into(),
                name: (*name).to_string(),
                memory_bytes: memory.parse::<u64>().ok().map(|mib| mib << 20),
                device: Some(format!("/dev/nvidia{index}")),
                driver: Some((*driver).to_string()).filter(|d| !d.is_empty()),
            })
        })
        .collect()
}

/// DRM render nodes under `sys_drm` (`/sys/class/drm`) with their vendor.
fn render_nodes(sys_drm: &Path) -> Vec<(PathBuf, String)> {
    let Ok(dir) = std::fs::read_dir(sys_drm) else {
        return Vec::new();
    };
    let mut nodes: Vec<(PathBuf, String)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("renderD") {
                return None;
            }
            let vendor = std::fs::read_to_string(e.path().join("device/vendor"))
                .map(|v| vendor_name(v.trim()))
                .unwrap_or_else(|_| "unknown".into());
            Some((Path::new("/dev/dri").join(&name), vendor))
        })
        .collect();
    nodes.sort();
    nodes
}

/// A PCI vendor id (`0x8086`) as a name.
fn vendor_name(id: &str) -> String {
    match id.to_ascii_lowercase().as_str() {
        "0x10de" => "nvidia".into(),
        "0x8086" => "intel".into(),
        "0x1002" | "0x1022" => "amd".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ffmpeg -hwaccels` from Debian's ffmpeg 5.1.
    const HWACCELS: &str =
        "Hardware acceleration methods:\nvdpau\ncuda\nvaapi\nqsv\ndrm\nopencl\nvulkan\n\n";

    /// An excerpt of `ffmpeg -hide_banner -encoders` from Debian's ffmpeg 5.1.
    const ENCODERS: &str = "\
Encoders:
 V..... = Video
 A..... = Audio
 S..... = Subtitle
 .F.... = Frame-level multithreading
 ..S... = Slice-level multithreading
 ...X.. = Codec is experimental
 ....B. = Supports draw_horiz_band
 .....D = Supports direct rendering method 1
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D libx264rgb           libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 RGB (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V..... h264_omx             OpenMAX IL H.264 video encoder (codec h264)
 V..... h264_qsv             H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (Intel Quick Sync Video acceleration) (codec h264)
 V..... h264_v4l2m2m         V4L2 mem2mem H.264 encoder wrapper (codec h264)
 V....D h264_vaapi           H.264/AVC (VAAPI) (codec h264)
 V....D hevc_nvenc           NVIDIA NVENC hevc encoder (codec hevc)
 V....D mjpeg_vaapi          MJPEG (VAAPI) (codec mjpeg)
 A....D aac                  AAC (Advanced Audio Coding)
 V....D mpeg4                MPEG-4 part 2
";

    /// `nvidia-smi --query-gpu=index,name,memory.total,driver_version
    /// --format=csv,noheader,nounits` on a two-GPU machine.
    const SMI: &str = "0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n1, NVIDIA GeForce RTX 3090, 24576, 550.54.15\n";

    #[test]
    fn parses_ffmpeg_lists() {
        assert_eq!(
            parse_hwaccels(HWACCELS),
            ["vdpau", "cuda", "vaapi", "qsv", "drm", "opencl", "vulkan"]
        );
        let enc = parse_codecs(ENCODERS);
        let names: Vec<&str> = enc.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "h264_nvenc",
                "h264_omx",
                "h264_qsv",
                "h264_v4l2m2m",
                "h264_vaapi",
                "hevc_nvenc",
                "mjpeg_vaapi"
            ]
        );
        assert_eq!(enc[0], ("h264_nvenc".into(), "h264".into(), "nvenc".into()));
        assert_eq!(
            parse_version("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026"),
            Some("5.1.9-0+deb12u1".into())
        );
    }

    #[test]
    fn parses_nvidia_smi() {
        let gpus = parse_nvidia_smi(SMI);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(gpus[0].memory_bytes, Some(81559 << 20));
        assert_eq!(gpus[1].device.as_deref(), Some("/dev/nvidia1"));
        assert_eq!(gpus[1].driver.as_deref(), Some("550.54.15"));
    }

    #[test]
    fn availability_follows_the_devices() {
        let methods = parse_hwaccels(HWACCELS);
        let none = HwReport::assemble(
            None,
            &Devices::default(),
            &methods,
            Vec::new(),
            parse_codecs(ENCODERS),
        );
        assert!(none.hwaccels.iter().all(|m| !m.available));
        assert!(none.auto_choice().is_none());
        assert!(none.h264_encoder().is_none());

        let nvidia = Devices {
            gpus: parse_nvidia_smi(SMI),
            ..Devices::default()
        };
        let r = HwReport::assemble(None, &nvidia, &methods, Vec::new(), parse_codecs(ENCODERS));
        assert_eq!(
            r.auto_choice(),
            Some((HwAccel::Cuda, Some("/dev/nvidia0".into())))
        );
        assert_eq!(
            r.h264_encoder().map(|e| e.name.as_str()),
            Some("h264_nvenc")
        );

        let intel = Devices {
            render_nodes: vec![(PathBuf::from("/dev/dri/renderD128"), "intel".into())],
            ..Devices::default()
        };
        let r = HwReport::assemble(None, &intel, &methods, Vec::new(), parse_codecs(ENCODERS));
        assert_eq!(
            r.auto_choice(),
            Some((HwAccel::Vaapi, Some("/dev/dri/renderD128".into())))
        );
        assert_eq!(r.h264_encoder().map(|e| e.name.as_str()), Some("h264_qsv"));
    }

    #[test]
    fn this_machine_reports_without_failing() {
        let r = HwReport::detect(&FfmpegTools::from_env());
        // ffmpeg is installed where the tests run; every method it lists is reported.
        assert!(r.ffmpeg.is_some());
        for m in &r.hwaccels {
            assert_eq!(m.available, m.device.is_some());
        }
        let missing = HwReport::detect(&FfmpegTools::new("/nonexistent/ffmpeg", "x"));
        assert!(missing.ffmpeg.is_none());
        assert!(missing.hwaccels.is_empty());
    }

    #[test]
    fn the_auto_shortcut_agrees_with_the_full_report() {
        let tools = FfmpegTools::from_env();
        assert_eq!(auto_choice(&tools), HwReport::detect(&tools).auto_choice());
    }
}
