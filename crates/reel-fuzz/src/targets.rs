//! The targets: one thin function per parser of untrusted bytes, each feeding the
//! bytes to the parser's public entry point exactly as reel reads them, and the
//! seeds each starts from.
//!
//! A target returns a signature of the outcome (what kind of answer or refusal it
//! got), which the loop uses to keep inputs that reach something new. It checks
//! what must hold of any answer with assertions, which the loop records as crashes
//! like any other panic.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use reel_decode::synthetic::SyntheticSpec;
use reel_decode::{DecodeOptions, Limits, VideoSource};
use reel_frame::PixelFormat;
use reel_pool::FramePool;

use crate::engine::{shape, signature};
use crate::seeds;

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name on the command line and in reports.
    pub name: &'static str,
    /// The parser it drives, in a few words.
    pub about: &'static str,
    /// The longest input it is given.
    pub max_len: usize,
    /// Words the mutator inserts (tags, keys, separators of the format).
    pub dictionary: &'static [&'static [u8]],
    /// The corpus it starts from.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Runs the parser on an input; returns the outcome's signature.
    pub run: fn(&[u8]) -> u64,
}

/// Every target, in the order they run.
pub fn all() -> Vec<Target> {
    vec![
        Target {
            name: "y4m",
            about: "a Y4M file's header and frames, probed and decoded",
            max_len: 16 << 10,
            dictionary: &[
                b"YUV4MPEG2 ",
                b"FRAME\n",
                b"FRAME ",
                b" W",
                b" H",
                b" F",
                b" C",
                b" Ip",
                b" A1:1",
                b"C420jpeg",
                b"C420mpeg2",
                b"C420paldv",
                b"Cmono",
                b"C444",
                b":",
                b"\n",
            ],
            seeds: seeds::y4m,
            run: y4m,
        },
        Target {
            name: "image-pattern",
            about: "an image sequence's printf pattern",
            max_len: 512,
            dictionary: &[
                b"%", b"%%", b"%d", b"%0", b"%04d", b"%255d", b".png", b".jpg", b"/",
            ],
            seeds: seeds::image_pattern,
            run: image_pattern,
        },
        Target {
            name: "synthetic",
            about: "a synthetic: URI, parsed, its ground truth and first frames made",
            max_len: 512,
            dictionary: &[
                b"synthetic:",
                b"scenes",
                b"?",
                b"&",
                b"=",
                b"width=",
                b"height=",
                b"fps=",
                b"frames=",
                b"scenes=",
                b"seed=",
                b"objects=",
                b"/",
                b".",
            ],
            seeds: seeds::synthetic,
            run: synthetic,
        },
        Target {
            name: "ffprobe-json",
            about: "ffprobe's JSON report on an input",
            max_len: 8 << 10,
            dictionary: &[
                b"\"streams\"",
                b"\"format\"",
                b"\"codec_type\": \"video\"",
                b"\"width\"",
                b"\"height\"",
                b"\"r_frame_rate\"",
                b"\"avg_frame_rate\"",
                b"\"time_base\"",
                b"\"start_pts\"",
                b"\"duration\"",
                b"\"nb_frames\"",
                b"\"side_data_list\"",
                b"\"rotation\"",
                b"\"rotate\"",
                b"\"disposition\"",
                b"\"attached_pic\"",
                b"\"tags\"",
                b"null",
                b"1/0",
                b"0/0",
                b"[]",
                b"{}",
            ],
            seeds: seeds::ffprobe_json,
            run: ffprobe_json,
        },
        Target {
            name: "showinfo-log",
            about: "a decoding ffmpeg's stderr: showinfo frame reports, time bases, errors",
            max_len: 8 << 10,
            dictionary: &[
                b"[showinfo@pre @ 0x1] ",
                b"[showinfo@post @ 0x1] ",
                b"[info] ",
                b"[error] ",
                b"[fatal] ",
                b"n:",
                b" pts:",
                b" pts_time:",
                b"config in time_base: ",
                b"1/0",
                b"\n",
                b"[",
                b"]",
            ],
            seeds: seeds::showinfo_log,
            run: showinfo_log,
        },
        Target {
            name: "plugin-spec",
            about: "a --plugin NAME[:CONFIG] value, and the configuration file of its @FILE",
            max_len: 4 << 10,
            dictionary: &[
                b":", b"@", b"=", b",", b"{", b"}", b"[", b"]", b"\"", b"labels", b"block", b".so",
                b"/", b"true", b"[table]", b"\n",
            ],
            seeds: seeds::plugin_spec,
            run: plugin_spec,
        },
        Target {
            name: "config",
            about: "reel.toml, parsed and resolved against this machine",
            max_len: 4 << 10,
            dictionary: &[
                b"level = ",
                b"mode = ",
                b"workers = ",
                b"pool_budget = ",
                b"batch_size = ",
                b"plugin_dirs = ",
                b"network_timeout = ",
                b"[cache]\n",
                b"[analyze]\n",
                b"enabled = ",
                b"dir = ",
                b"max_size = ",
                b"max_age = ",
                b"size = ",
                b"threshold = ",
                b"min_scene_len = ",
                b"\"",
                b"GiB",
                b"KB",
                b"d",
                b"ms",
                b"x",
                b"~/",
                b"\n",
            ],
            seeds: seeds::config,
            run: config,
        },
        Target {
            name: "safetensors",
            about: "a safetensors weights file: its header, tensors and the YOLOv8 built from them",
            max_len: 16 << 10,
            dictionary: &[
                b"\"dtype\"",
                b"\"shape\"",
                b"\"data_offsets\"",
                b"\"F32\"",
                b"\"F16\"",
                b"\"BF16\"",
                b"\"U8\"",
                b"\"I64\"",
                b"\"F64\"",
                b"\"__metadata__\"",
                b"model.0.conv.weight",
                b"net.b1.0.conv.weight",
                b"[",
                b"]",
                b",",
            ],
            seeds: seeds::safetensors,
            run: safetensors,
        },
    ]
}

/// The target called `name`.
pub fn by_name(name: &str) -> Option<Target> {
    all().into_iter().find(|t| t.name == name)
}

/// A scratch folder for targets whose parser reads a file, removed by
/// [`remove_scratch`].
static SCRATCH: Mutex<Option<tempfile::TempDir>> = Mutex::new(None);

/// The path of `name` in the scratch folder (made on first use).
fn scratch_file(name: &str) -> PathBuf {
    let mut dir = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if dir.is_none() {
        *dir = tempfile::Builder::new().prefix("reel-fuzz-").tempdir().ok();
    }
    match dir.as_ref() {
        Some(d) => d.path().join(name),
        None => std::env::temp_dir().join(format!("reel-fuzz-{}-{name}", std::process::id())),
    }
}

/// Removes the scratch folder.
pub fn remove_scratch() {
    SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// Writes `data` to the scratch file `name`; `None` when it cannot be written.
fn write_scratch(name: &str, data: &[u8]) -> Option<PathBuf> {
    let path = scratch_file(name);
    std::fs::write(&path, data).ok()?;
    Some(path)
}

/// The pool decoders take frames from: a small budget, so that a header claiming a
/// huge frame is refused by the pool as it is under `--max-memory`.
fn pool() -> &'static FramePool {
    static POOL: OnceLock<FramePool> = OnceLock::new();
    POOL.get_or_init(|| FramePool::with_budget(32 << 20))
}

/// The signature of an error: its message's shape.
fn error_sig(tag: &str, e: &impl std::fmt::Display) -> u64 {
    signature((tag, shape(&e.to_string())))
}

/// Reads at most `max` frames of `source`, dropping each; the outcome's signature.
fn drain(source: &mut dyn VideoSource, max: usize) -> u64 {
    let mut frames = 0u64;
    for _ in 0..max {
        match source.read_frame() {
            Some(Ok(frame)) => {
                frames += 1;
                drop(frame);
            }
            Some(Err(e)) => return signature((frames.min(3), error_sig("frame", &e))),
            None => break,
        }
    }
    signature(frames.min(3))
}

fn y4m(data: &[u8]) -> u64 {
    // The first byte picks what the caller asks for: format and size.
    let (choice, file) = data.split_first().map_or((0, data), |(c, f)| (*c, f));
    let Some(path) = write_scratch("input.y4m", file) else {
        return 0;
    };
    let Some(input) = path.to_str() else { return 0 };
    let opts = DecodeOptions {
        format: [
            PixelFormat::Yuv420p,
            PixelFormat::Rgb24,
            PixelFormat::Gray8,
            PixelFormat::Bgr24,
        ][usize::from(choice & 3)],
        size: [None, Some((32, 18)), Some((7, 5)), Some((1, 1))][usize::from((choice >> 2) & 3)],
        ..DecodeOptions::default()
    };
    let probe = match reel_decode::probe(input, &opts) {
        Ok(info) => signature((
            info.width.min(64),
            info.height.min(64),
            info.frames.is_some(),
        )),
        Err(e) => error_sig("probe", &e),
    };
    let decode = match reel_decode::open(input, &opts, pool()) {
        Ok(mut source) => drain(source.as_mut(), 8),
        Err(e) => error_sig("open", &e),
    };
    signature((choice & 15, probe, decode))
}

fn image_pattern(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data);
    let mut sig = Vec::new();
    for n in [0, 1, 4, 12_345, u64::MAX] {
        match reel_decode::images::pattern_file(&text, n) {
            Ok(None) => sig.push(0),
            Ok(Some(path)) => {
                let name = path.to_string_lossy();
                assert!(
                    name.contains(&n.to_string()),
                    "the file name {name:?} for image {n} holds its number"
                );
                sig.push(1 + name.len().min(300) as u64 / 32);
            }
            Err(e) => sig.push(error_sig("pattern", &e)),
        }
    }
    signature(sig)
}

fn synthetic(data: &[u8]) -> u64 {
    let uri = String::from_utf8_lossy(data);
    let spec = match SyntheticSpec::parse(&uri) {
        Ok(spec) => spec,
        Err(e) => return error_sig("parse", &e),
    };
    let again = SyntheticSpec::parse(&spec.uri());
    assert!(
        again.as_ref().is_ok_and(|a| *a == spec),
        "the URI of a spec gives it back: {} → {again:?}",
        spec.uri()
    );
    let truth = spec.ground_truth();
    let last = spec.frames.saturating_sub(1);
    let scenes = (truth.scene_of(0), truth.scene_of(last));
    let objects = truth.objects_at(last).len();
    // Pictures over a megapixel are drawn smaller: the same drawing code, without
    // a debug build's seconds per frame at 10000 pixels wide.
    let big = u64::from(spec.width) * u64::from(spec.height) > 1 << 20;
    let opts = DecodeOptions {
        size: big.then_some((64, 36)),
        ..DecodeOptions::default()
    };
    let decode = match reel_decode::open(&uri, &opts, pool()) {
        Ok(mut source) => drain(source.as_mut(), 2),
        Err(e) => error_sig("open", &e),
    };
    signature((
        scenes.0.is_some(),
        scenes.1.is_some(),
        objects.min(4),
        decode,
    ))
}

fn ffprobe_json(data: &[u8]) -> u64 {
    match reel_decode::ffmpeg::info_from_ffprobe_json("input.mp4", data, &Limits::default()) {
        Ok(info) => {
            assert!(
                info.fps.is_finite() && info.fps >= 0.0,
                "a frame rate is finite: {}",
                info.fps
            );
            signature((
                info.rotation,
                info.frames.is_some(),
                info.duration_s.is_some(),
                info.variable_frame_rate,
                info.bit_rate.is_some(),
                info.container.is_some(),
            ))
        }
        Err(e) => error_sig("probe", &e),
    }
}

fn showinfo_log(data: &[u8]) -> u64 {
    let log = reel_decode::ffmpeg::read_log(data);
    signature((
        log.decoded.min(4),
        log.written.min(4),
        log.faults.min(4),
        log.pre_time_base.is_some(),
        log.post_time_base.is_some(),
        log.explanation.is_empty(),
    ))
}

fn plugin_spec(data: &[u8]) -> u64 {
    use reel_host::plugins::{PluginSpec, PluginTarget};
    // The first byte picks the form: a spec on its own (never naming a file, so
    // that nothing outside the scratch folder is read), or a configuration file
    // in JSON or TOML named by `@FILE`.
    let (choice, rest) = data.split_first().map_or((0, data), |(c, r)| (*c, r));
    let spec = match choice % 3 {
        0 => String::from_utf8_lossy(rest).replace('@', ""),
        form => {
            let name = if form == 1 {
                "config.json"
            } else {
                "config.toml"
            };
            let Some(path) = write_scratch(name, rest) else {
                return 0;
            };
            format!("pixelate:@{}", path.display())
        }
    };
    match PluginSpec::from_str(&spec) {
        Ok(parsed) => {
            let config: Result<serde_json::Value, _> = serde_json::from_str(&parsed.config);
            assert!(
                config.as_ref().is_ok_and(serde_json::Value::is_object),
                "a spec's configuration is a JSON object: {:?}",
                parsed.config
            );
            let kind = matches!(parsed.target, PluginTarget::Path(_));
            signature((choice % 3, kind, parsed.config.len().min(64) / 8))
        }
        Err(e) => signature((choice % 3, error_sig("spec", &e))),
    }
}

fn config(data: &[u8]) -> u64 {
    use reel_host::config::{Config, Environment};
    static ENV: OnceLock<Environment> = OnceLock::new();
    let env = ENV.get_or_init(Environment::detect);
    let text = String::from_utf8_lossy(data);
    match Config::parse(
        &text,
        Path::new("/fuzz/reel.toml"),
        Some(Path::new("/home/fuzz")),
    ) {
        Ok(file) => {
            let settings = file.resolve(&Config::default(), env);
            let json = serde_json::to_string(&settings);
            assert!(json.is_ok(), "the settings serialise: {json:?}");
            signature((
                file.level.is_some(),
                file.mode.is_some(),
                file.workers.is_some(),
                file.pool_budget.is_some(),
                file.plugin_dirs.len().min(3),
                file.cache.max_size.is_some(),
                file.analyze.size.is_some(),
            ))
        }
        Err(e) => error_sig("config", &e),
    }
}

fn safetensors(data: &[u8]) -> u64 {
    use candle_core::{DType, Device};
    use reel_infer::weights::Weights;
    let Some(path) = write_scratch("weights.safetensors", data) else {
        return 0;
    };
    let weights = match Weights::open(&path, &Device::Cpu, DType::F32) {
        Ok(w) => w,
        Err(e) => return error_sig("open", &e),
    };
    let mut loaded = Vec::new();
    for name in seeds::TENSOR_NAMES {
        let Some(shape) = weights.shape_of(name) else {
            loaded.push(0);
            continue;
        };
        loaded.push(match weights.cpu_f32(name, &shape) {
            Ok(t) => 1 + t.elem_count().min(8) as u64,
            Err(e) => error_sig("tensor", &e),
        });
    }
    let model = match reel_infer::YoloV8::load(&weights, None) {
        Ok(m) => signature(m.num_classes()),
        Err(e) => error_sig("model", &e),
    };
    signature((
        weights.naming() == reel_infer::weights::Naming::Hub,
        loaded,
        model,
    ))
}
