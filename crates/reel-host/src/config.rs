//! `reel.toml`: the settings a user fixes once instead of repeating flags.
//!
//! The file is optional. It is looked for in the current directory, then in the
//! user's configuration directory (`$XDG_CONFIG_HOME/reel/reel.toml`, else
//! `~/.config/reel/reel.toml` on Linux), unless a path is given explicitly. Every
//! key is optional; an unknown key is an error naming the key, the file and the
//! line, so a typo never goes unnoticed.
//!
//! Settings are layered, each layer overriding the one before:
//! the system profile's defaults for the chosen optimisation level
//! (`reel system`), then the file, then the command's flags. Commands describe
//! their flags as a [`Config`] too and call [`Config::resolve`] to get the
//! effective [`Settings`].
//!
//! ```toml
//! level = "balanced"          # conservative | balanced | aggressive
//! mode = "quality"            # quality | batch | realtime | balanced
//! workers = 6                 # default: from the level and the machine
//! pool_budget = "2 GiB"       # bytes, or a size: "512 MiB", "2GB"
//! batch_size = 8
//! plugin_dirs = ["~/reel/plugins", "plugins"]   # relative to this file
//!
//! [cache]
//! enabled = true
//! dir = "/var/cache/reel"     # relative to this file; REEL_CACHE_DIR and --cache-dir win
//! max_size = "1 GB"
//! max_age = "14d"             # "12h", "30days", "2w"
//!
//! [analyze]
//! size = "480x270"
//! threshold = 27.0
//! min_scene_len = 15
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use reel_sched::Mode;

use crate::cache::PrunePolicy;
use crate::system::{OptLevel, SystemInfo};

/// The configuration file's name.
pub const FILE_NAME: &str = "reel.toml";

/// The content detector's threshold when nothing sets it (the detector's own).
pub const DEFAULT_THRESHOLD: f64 = reel_ops::scene::DEFAULT_THRESHOLD;

/// The shortest scene, in frames, when nothing sets it (the detectors' own).
pub const DEFAULT_MIN_SCENE_LEN: u32 = reel_ops::scene::DEFAULT_MIN_SCENE_LEN as u32;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong kind.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong (for an unknown key: "unknown field `key`, expected …").
        message: String,
    },
    /// A value is of the right kind but out of range.
    #[error("{origin}: `{key}` {problem}")]
    Invalid {
        /// The file, or "flags".
        origin: String,
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// A frame size, written `WxH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl fmt::Display for FrameSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl FromStr for FrameSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a size like 480x270");
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let width: u32 = w.trim().parse().map_err(|_| bad())?;
        let height: u32 = h.trim().parse().map_err(|_| bad())?;
        if width == 0 || height == 0 {
            return Err(format!("`{s}`: width and height must be at least 1"));
        }
        Ok(Self { width, height })
    }
}

impl<'de> Deserialize<'de> for FrameSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a byte size: a plain number of bytes or a number with a unit, decimal
/// (`500 MB` = 500 000 000) or binary (`2 GiB` = 2 147 483 648).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{s}` is not a size like 500MB or 2GiB ({e})"))
}

/// Parses an age such as `30d`, `12h`, `2w` or `1h 30m`.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not an age like 30d or 12h ({e})"))
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Some(bytesize::ByteSize::deserialize(d)?.as_u64()))
}

fn de_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

fn ser_mode<S: serde::Serializer>(mode: &Option<Mode>, s: S) -> Result<S::Ok, S::Error> {
    match mode {
        Some(m) => s.serialize_str(m.name()),
        None => s.serialize_none(),
    }
}

fn de_age<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_age(&s).map(Some).map_err(serde::de::Error::custom)
}

/// One layer of settings: the file's, or a command's flags. `None` (or an empty
/// list) leaves the setting to the layer below.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How hard reel may push the machine; picks the profile's defaults.
    pub level: Option<OptLevel>,
    /// What jobs optimise for; each command has its own default.
    #[serde(default, deserialize_with = "de_mode")]
    pub mode: Option<Mode>,
    /// Worker threads for parallel stages.
    pub workers: Option<usize>,
    /// The frame pool's byte budget.
    #[serde(default, deserialize_with = "de_bytes")]
    pub pool_budget: Option<u64>,
    /// Inference batch size.
    pub batch_size: Option<usize>,
    /// Directories searched for plugins, in order.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// The longest a network input may take to connect or answer a read
    /// (`network_timeout = "15s"`).
    #[serde(default, deserialize_with = "de_age")]
    pub network_timeout: Option<Duration>,
    /// The analysis cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Analysis defaults.
    #[serde(default)]
    pub analyze: AnalyzeConfig,
    /// The file this layer came from (not a key of the file).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The `[cache]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether results are looked up and stored.
    pub enabled: Option<bool>,
    /// The cache directory.
    pub dir: Option<PathBuf>,
    /// The size budget.
    #[serde(default, deserialize_with = "de_bytes")]
    pub max_size: Option<u64>,
    /// How long an unused entry is kept.
    #[serde(default, deserialize_with = "de_age")]
    pub max_age: Option<Duration>,
}

/// The `[analyze]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeConfig {
    /// The size frames are analysed at.
    pub size: Option<FrameSize>,
    /// The content detector's cut threshold.
    pub threshold: Option<f64>,
    /// The shortest scene, in frames.
    pub min_scene_len: Option<u32>,
}

/// What the settings are resolved against: the machine and the user's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The machine's profile and per-level defaults.
    pub system: SystemInfo,
    /// The platform's default cache directory for reel, if there is a home.
    pub default_cache_dir: Option<PathBuf>,
    /// The user's configuration directory for reel (`…/reel`), if there is a home.
    pub user_config_dir: Option<PathBuf>,
    /// The home directory, for `~/` in paths.
    pub home: Option<PathBuf>,
}

impl Environment {
    /// This machine and this user.
    pub fn detect() -> Self {
        Self {
            system: SystemInfo::machine(),
            default_cache_dir: crate::cache::default_dir(),
            user_config_dir: dirs::config_dir().map(|d| d.join("reel")),
            home: dirs::home_dir(),
        }
    }
}

/// The effective settings a command runs with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// The optimisation level.
    pub level: OptLevel,
    /// The mode, when the file or a flag sets one; otherwise the command's own.
    #[serde(serialize_with = "ser_mode")]
    pub mode: Option<Mode>,
    /// Worker threads.
    pub workers: usize,
    /// The frame pool's budget in bytes.
    pub pool_budget_bytes: u64,
    /// Inference batch size.
    pub batch_size: usize,
    /// Plugin directories: the flags' first, then the file's.
    pub plugin_dirs: Vec<PathBuf>,
    /// The longest a network input may take to connect or answer a read, in seconds.
    pub network_timeout_s: f64,
    /// The cache.
    pub cache: CacheSettings,
    /// Analysis defaults.
    pub analyze: AnalyzeSettings,
    /// The configuration file used, if any.
    pub config_file: Option<PathBuf>,
}

/// Effective cache settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheSettings {
    /// Whether to look results up and store them.
    pub enabled: bool,
    /// The directory; `None` only when no home directory is known and nothing set
    /// one, and then the cache is off.
    pub dir: Option<PathBuf>,
    /// The size budget in bytes.
    pub max_bytes: u64,
    /// How long an unused entry is kept, in seconds.
    pub max_age_s: u64,
}

impl CacheSettings {
    /// The pruning policy these settings describe.
    pub fn policy(&self) -> PrunePolicy {
        PrunePolicy {
            max_bytes: self.max_bytes,
            max_age: Duration::from_secs(self.max_age_s),
        }
    }
}

/// Effective analysis defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyzeSettings {
    /// The analysis size; `None` leaves it to the analysis' own default.
    #[serde(serialize_with = "ser_size")]
    pub size: Option<FrameSize>,
    /// The content detector's threshold.
    pub threshold: f64,
    /// The shortest scene, in frames.
    pub min_scene_len: u32,
}

fn ser_size<S: serde::Serializer>(size: &Option<FrameSize>, s: S) -> Result<S::Ok, S::Error> {
    match size {
        Some(size) => s.collect_str(size),
        None => s.serialize_none(),
    }
}

impl Config {
    /// Parses the text of a configuration file. `origin` names it in errors, and
    /// relative paths in it (and `~/`) are taken from its directory (and `home`).
    pub fn parse(text: &str, origin: &Path, home: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let mut message = e.message().trim().replace('\n', " ");
            let line = e.span().map(|span| {
                let start = text.floor_char_boundary(span.start.min(text.len()));
                let number = text[..start].matches('\n').count() + 1;
                // Quote the line, which names the key the message is about.
                if let Some(quoted) = text.lines().nth(number - 1).map(str::trim)
                    && !quoted.is_empty()
                {
                    message.push_str(&format!(" (at `{quoted}`)"));
                }
                number
            });
            ConfigError::Parse {
                path: origin.to_path_buf(),
                line,
                message,
            }
        })?;
        let base = origin.parent().unwrap_or(Path::new("."));
        let place = |p: &Path| expand(p, Some(base), home);
        config.plugin_dirs = config.plugin_dirs.iter().map(|p| place(p)).collect();
        config.cache.dir = config.cache.dir.as_deref().map(place);
        config.source = Some(origin.to_path_buf());
        config.validate(&origin.display().to_string())?;
        Ok(config)
    }

    /// Reads and parses the file at `path`.
    pub fn from_file(path: &Path, home: Option<&Path>) -> Result<Self, ConfigError> {
        let text = read_small_file(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, home)
    }

    /// The file to use: `explicit` if given (it must exist), else `reel.toml` in
    /// `cwd`, else in the user's configuration directory; `None` when there is none.
    pub fn find(explicit: Option<&Path>, cwd: &Path, env: &Environment) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_path_buf());
        }
        let here = cwd.join(FILE_NAME);
        if here.is_file() {
            return Some(here);
        }
        env.user_config_dir
            .as_ref()
            .map(|d| d.join(FILE_NAME))
            .filter(|p| p.is_file())
    }

    /// Finds and reads the configuration (see [`Config::find`]); no file is an
    /// empty configuration, but an explicit path that cannot be read is an error.
    pub fn load(
        explicit: Option<&Path>,
        cwd: &Path,
        env: &Environment,
    ) -> Result<Self, ConfigError> {
        match Self::find(explicit, cwd, env) {
            Some(path) => Self::from_file(&path, env.home.as_deref()),
            None => Ok(Self::default()),
        }
    }

    /// Checks the ranges of a layer built from flags (files are checked as they are
    /// parsed).
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key,
                problem: problem.to_string(),
            })
        };
        if self.workers == Some(0) {
            return invalid("workers", "must be at least 1");
        }
        if self.batch_size == Some(0) {
            return invalid("batch_size", "must be at least 1");
        }
        if self.pool_budget == Some(0) {
            return invalid("pool_budget", "must be more than 0 bytes");
        }
        if self.cache.max_size == Some(0) {
            return invalid("cache.max_size", "must be more than 0 bytes");
        }
        if let Some(t) = self.analyze.threshold
            && !(t.is_finite() && t > 0.0)
        {
            return invalid("analyze.threshold", "must be a number above 0");
        }
        if self.analyze.min_scene_len == Some(0) {
            return invalid("analyze.min_scene_len", "must be at least 1");
        }
        Ok(())
    }

    /// The effective settings: `flags` over `self` (the file) over the profile's
    /// defaults for the chosen level.
    pub fn resolve(&self, flags: &Config, env: &Environment) -> Settings {
        let file = self;
        let level = flags.level.or(file.level).unwrap_or_default();
        let defaults = env.system.level(level);
        let mut plugin_dirs = flags.plugin_dirs.clone();
        plugin_dirs.extend(file.plugin_dirs.iter().cloned());
        let cache_dir = flags
            .cache
            .dir
            .as_deref()
            .map(|p| expand(p, None, env.home.as_deref()))
            .or_else(|| file.cache.dir.clone())
            .or_else(|| env.default_cache_dir.clone());
        let policy = PrunePolicy::default();
        Settings {
            level,
            mode: flags.mode.or(file.mode),
            workers: flags.workers.or(file.workers).unwrap_or(defaults.workers),
            pool_budget_bytes: flags
                .pool_budget
                .or(file.pool_budget)
                .unwrap_or(defaults.pool_budget_bytes),
            batch_size: flags
                .batch_size
                .or(file.batch_size)
                .unwrap_or(defaults.batch_size),
            plugin_dirs,
            network_timeout_s: flags
                .network_timeout
                .or(file.network_timeout)
                .unwrap_or(reel_decode::DEFAULT_NETWORK_TIMEOUT)
                .as_secs_f64(),
            cache: CacheSettings {
                enabled: flags.cache.enabled.or(file.cache.enabled).unwrap_or(true)
                    && cache_dir.is_some(),
                dir: cache_dir,
                max_bytes: flags
                    .cache
                    .max_size
                    .or(file.cache.max_size)
                    .unwrap_or(policy.max_bytes),
                max_age_s: flags
                    .cache
                    .max_age
                    .or(file.cache.max_age)
                    .unwrap_or(policy.max_age)
                    .as_secs(),
            },
            analyze: AnalyzeSettings {
                size: flags.analyze.size.or(file.analyze.size),
                threshold: flags
                    .analyze
                    .threshold
                    .or(file.analyze.threshold)
                    .unwrap_or(DEFAULT_THRESHOLD),
                min_scene_len: flags
                    .analyze
                    .min_scene_len
                    .or(file.analyze.min_scene_len)
                    .unwrap_or(DEFAULT_MIN_SCENE_LEN),
            },
            config_file: file.source.clone(),
        }
    }
}

/// The most a settings file (`reel.toml`, a plugin's `@FILE`) may hold.
pub const MAX_SETTINGS_FILE_BYTES: u64 = 1 << 20;

/// The text of a settings file: a regular file (never a FIFO or a device, which
/// could block or never end) of at most [`MAX_SETTINGS_FILE_BYTES`].
pub(crate) fn read_small_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_SETTINGS_FILE_BYTES} bytes"),
        )
    };
    if meta.len() > MAX_SETTINGS_FILE_BYTES {
        return Err(too_big());
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SETTINGS_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SETTINGS_FILE_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

/// `~/x` → `home/x`; a relative path → under `base` (when given).
fn expand(p: &Path, base: Option<&Path>, home: Option<&Path>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (p.strip_prefix("~"), home) {
        return home.join(rest);
    }
    match base {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn env() -> Environment {
        Environment {
            system: SystemInfo::for_machine(8, 32 * GIB),
            default_cache_dir: Some(PathBuf::from("/home/u/.cache/reel")),
            user_config_dir: Some(PathBuf::from("/home/u/.config/reel")),
            home: Some(PathBuf::from("/home/u")),
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            Path::new("/proj/reel.toml"),
            Some(Path::new("/home/u")),
        )
    }

    const FULL: &str = r#"
level = "aggressive"
mode = "batch"
workers = 6
pool_budget = "2 GiB"
batch_size = 16
plugin_dirs = ["~/reel/plugins", "plugins", "/opt/reel/plugins"]

[cache]
enabled = true
dir = "cache"
max_size = "1 GB"
max_age = "14d"

[analyze]
size = "480x270"
threshold = 30.5
min_scene_len = 10
"#;

    #[test]
    fn every_key_is_read() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.level, Some(OptLevel::Aggressive));
        assert_eq!(c.mode, Some(Mode::Batch));
        assert_eq!(c.workers, Some(6));
        assert_eq!(c.pool_budget, Some(2 * GIB));
        assert_eq!(c.batch_size, Some(16));
        assert_eq!(
            c.plugin_dirs,
            [
                PathBuf::from("/home/u/reel/plugins"),
                PathBuf::from("/proj/plugins"),
                PathBuf::from("/opt/reel/plugins"),
            ]
        );
        assert_eq!(c.cache.enabled, Some(true));
        assert_eq!(c.cache.dir, Some(PathBuf::from("/proj/cache")));
        assert_eq!(c.cache.max_size, Some(1_000_000_000));
        assert_eq!(c.cache.max_age, Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(
            c.analyze.size,
            Some(FrameSize {
                width: 480,
                height: 270
            })
        );
        assert_eq!(c.analyze.threshold, Some(30.5));
        assert_eq!(c.analyze.min_scene_len, Some(10));
        assert_eq!(c.source, Some(PathBuf::from("/proj/reel.toml")));
    }

    #[test]
    fn an_empty_file_leaves_everything_to_the_profile() {
        let env = env();
        let s = parse("").unwrap().resolve(&Config::default(), &env);
        let balanced = env.system.level(OptLevel::Balanced);
        assert_eq!(s.level, OptLevel::Balanced);
        assert_eq!(s.mode, None);
        assert_eq!(s.workers, balanced.workers);
        assert_eq!(s.pool_budget_bytes, balanced.pool_budget_bytes);
        assert_eq!(s.batch_size, balanced.batch_size);
        assert!(s.cache.enabled);
        assert_eq!(s.cache.dir, env.default_cache_dir);
        assert_eq!(s.cache.policy(), PrunePolicy::default());
        assert_eq!(s.analyze.threshold, DEFAULT_THRESHOLD);
        assert_eq!(s.analyze.min_scene_len, DEFAULT_MIN_SCENE_LEN);
        assert_eq!(s.analyze.size, None);
    }

    #[test]
    fn the_level_picks_the_profile_defaults_for_unset_values() {
        let env = env();
        let c = parse("level = \"conservative\"\nworkers = 3").unwrap();
        let s = c.resolve(&Config::default(), &env);
        let conservative = env.system.level(OptLevel::Conservative);
        assert_eq!(s.workers, 3);
        assert_eq!(s.pool_budget_bytes, conservative.pool_budget_bytes);
        assert_eq!(s.batch_size, conservative.batch_size);
        // A level given as a flag wins over the file's and changes the defaults.
        let flags = Config {
            level: Some(OptLevel::Aggressive),
            ..Config::default()
        };
        let s = c.resolve(&flags, &env);
        assert_eq!(s.level, OptLevel::Aggressive);
        assert_eq!(s.workers, 3);
        assert_eq!(
            s.pool_budget_bytes,
            env.system.level(OptLevel::Aggressive).pool_budget_bytes
        );
    }

    #[test]
    fn flags_override_the_file() {
        let env = env();
        let file = parse(FULL).unwrap();
        let flags = Config {
            mode: Some(Mode::Quality),
            workers: Some(2),
            plugin_dirs: vec![PathBuf::from("/flag/plugins")],
            cache: CacheConfig {
                enabled: Some(false),
                dir: Some(PathBuf::from("~/other-cache")),
                max_size: None,
                max_age: Some(Duration::from_secs(60)),
            },
            analyze: AnalyzeConfig {
                threshold: Some(12.0),
                ..AnalyzeConfig::default()
            },
            ..Config::default()
        };
        let s = file.resolve(&flags, &env);
        assert_eq!(s.level, OptLevel::Aggressive);
        assert_eq!(s.mode, Some(Mode::Quality));
        assert_eq!(s.workers, 2);
        assert_eq!(s.pool_budget_bytes, 2 * GIB);
        assert_eq!(s.batch_size, 16);
        assert_eq!(s.plugin_dirs[0], PathBuf::from("/flag/plugins"));
        assert_eq!(s.plugin_dirs.len(), 4);
        assert!(!s.cache.enabled);
        assert_eq!(s.cache.dir, Some(PathBuf::from("/home/u/other-cache")));
        assert_eq!(s.cache.max_bytes, 1_000_000_000);
        assert_eq!(s.cache.max_age_s, 60);
        assert_eq!(s.analyze.threshold, 12.0);
        assert_eq!(s.analyze.min_scene_len, 10);
        assert_eq!(s.config_file, Some(PathBuf::from("/proj/reel.toml")));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_the_file_and_the_line() {
        let e = parse("level = \"balanced\"\nwokers = 4\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("wokers"), "{msg}");
        assert!(msg.starts_with("/proj/reel.toml:2:"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");

        let e = parse("[cache]\nmax_sise = \"1GB\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_sise") && e.contains("reel.toml:2"), "{e}");
        let e = parse("[analyse]\nthreshold = 3.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("analyse"), "{e}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_file() {
        for (text, needle) in [
            ("level = \"turbo\"", "turbo"),
            ("mode = \"fast\"", "fast"),
            ("workers = \"many\"", "workers"),
            ("pool_budget = \"lots\"", "lots"),
            ("[cache]\nmax_age = \"soon\"", "soon"),
            ("[analyze]\nsize = \"480by270\"", "480by270"),
            ("workers = 0", "workers"),
            ("[analyze]\nthreshold = -1.0", "analyze.threshold"),
            ("[cache]\nmax_size = 0", "cache.max_size"),
            ("level = ", "reel.toml"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains("/proj/reel.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn sizes_and_ages_have_units() {
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("500 MiB"), Ok(500 << 20));
        assert_eq!(parse_bytes("1234"), Ok(1234));
        assert!(parse_bytes("big").is_err());
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("30").is_err());
        let c = parse("pool_budget = 1048576").unwrap();
        assert_eq!(c.pool_budget, Some(1 << 20));
    }

    #[test]
    fn the_file_is_found_here_then_in_the_user_directory() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().join("project");
        let user = dir.path().join("config").join("reel");
        std::fs::create_dir_all(&here).unwrap();
        std::fs::create_dir_all(&user).unwrap();
        let env = Environment {
            user_config_dir: Some(user.clone()),
            ..env()
        };
        assert_eq!(Config::find(None, &here, &env), None);
        assert_eq!(Config::load(None, &here, &env).unwrap(), Config::default());

        std::fs::write(user.join(FILE_NAME), "workers = 2").unwrap();
        assert_eq!(Config::find(None, &here, &env), Some(user.join(FILE_NAME)));
        std::fs::write(here.join(FILE_NAME), "workers = 5").unwrap();
        assert_eq!(Config::find(None, &here, &env), Some(here.join(FILE_NAME)));
        assert_eq!(Config::load(None, &here, &env).unwrap().workers, Some(5));

        let explicit = dir.path().join("elsewhere.toml");
        std::fs::write(&explicit, "workers = 7").unwrap();
        let c = Config::load(Some(&explicit), &here, &env).unwrap();
        assert_eq!(c.workers, Some(7));
        let missing = dir.path().join("missing.toml");
        let e = Config::load(Some(&missing), &here, &env).unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }

    #[test]
    fn without_a_home_and_without_a_directory_the_cache_is_off() {
        let env = Environment {
            default_cache_dir: None,
            home: None,
            ..env()
        };
        let s = Config::default().resolve(&Config::default(), &env);
        assert!(!s.cache.enabled);
        assert_eq!(s.cache.dir, None);
        let flags = Config {
            cache: CacheConfig {
                dir: Some(PathBuf::from("/tmp/c")),
                ..CacheConfig::default()
            },
            ..Config::default()
        };
        let s = Config::default().resolve(&flags, &env);
        assert!(s.cache.enabled);
    }

    #[test]
    fn frame_sizes_parse_and_print() {
        let s: FrameSize = "640x360".parse().unwrap();
        assert_eq!(s.to_string(), "640x360");
        assert!("0x360".parse::<FrameSize>().is_err());
        assert!("640".parse::<FrameSize>().is_err());
        assert_eq!("quality".parse::<Mode>(), Ok(Mode::Quality));
        assert!("fast".parse::<Mode>().is_err());
    }
}
