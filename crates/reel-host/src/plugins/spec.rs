//! `--plugin NAME[:CONFIG]` values and error policies, as the commands share them.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use reel_sched::ErrorPolicy;

use super::error::Error;

/// Which plugin a spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginTarget {
    /// A plugin name, looked up in the search path.
    Name(String),
    /// A library file.
    Path(PathBuf),
}

/// A parsed `--plugin NAME[:CONFIG]` value.
///
/// `NAME` is a plugin's name, or the path of a library file (anything with a path
/// separator or the platform's library extension). `CONFIG`, when given, is one of:
/// - a JSON object: `pixelate:{"labels":["face"],"block":8}`;
/// - TOML key/value pairs, as in an inline table: `pixelate:block=8,labels=["face"]`;
/// - `@FILE`: a `.json` file, or a TOML file for any other extension.
///
/// Whatever its form, the plugin receives the configuration as a JSON object's text
/// (`{}` when none was given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// Which plugin.
    pub target: PluginTarget,
    /// The configuration, as a JSON object's text.
    pub config: String,
}

impl PluginSpec {
    /// The name of the plugin, or the file it names, for messages.
    pub fn display_name(&self) -> String {
        match &self.target {
            PluginTarget::Name(n) => n.clone(),
            PluginTarget::Path(p) => p.display().to_string(),
        }
    }
}

impl FromStr for PluginSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (name, config) = split_spec(s);
        if name.is_empty() {
            return Err(Error::Spec(format!(
                "`{s}`: expected NAME[:CONFIG], the plugin name is missing"
            )));
        }
        let target = if looks_like_path(name) {
            PluginTarget::Path(PathBuf::from(name))
        } else if name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            PluginTarget::Name(name.to_string())
        } else {
            return Err(Error::Spec(format!(
                "`{name}` is not a plugin name (letters, digits, `-`, `_`) or a library path"
            )));
        };
        let config = match config {
            None => "{}".to_string(),
            Some(c) => config_to_json(c)
                .map_err(|e| Error::Spec(format!("plugin `{name}`: invalid configuration: {e}")))?,
        };
        Ok(Self { target, config })
    }
}

/// Splits at the first `:` that is not part of a Windows drive letter.
fn split_spec(s: &str) -> (&str, Option<&str>) {
    let skip = if s.len() >= 2 && s.as_bytes()[1] == b':' && s.as_bytes()[0].is_ascii_alphabetic() {
        2
    } else {
        0
    };
    match s[skip..].find(':') {
        Some(i) => (&s[..skip + i], Some(&s[skip + i + 1..])),
        None => (s, None),
    }
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/')
        || name.contains(std::path::MAIN_SEPARATOR)
        || Path::new(name).extension()
            == Some(std::ffi::OsStr::new(std::env::consts::DLL_EXTENSION))
}

/// A configuration in any accepted form, as a JSON object's text.
fn config_to_json(config: &str) -> Result<String, String> {
    let config = config.trim();
    let value: serde_json::Value = if config.is_empty() {
        serde_json::Value::Object(Default::default())
    } else if let Some(file) = config.strip_prefix('@') {
        let text = crate::config::read_small_file(Path::new(file))
            .map_err(|e| format!("reading {file}: {e}"))?;
        if Path::new(file).extension() == Some(std::ffi::OsStr::new("json")) {
            serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?
        } else {
            toml_to_json(
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| format!("{file}: {}", toml_message(&e, &text)))?,
            )?
        }
    } else if config.starts_with('{') {
        serde_json::from_str(config).map_err(|e| e.to_string())?
    } else {
        let doc = format!("config = {{ {config} }}");
        let mut table = toml::from_str::<toml::Table>(&doc).map_err(|e| {
            format!(
                "`{config}` is neither JSON nor TOML `key=value,…` ({})",
                e.message().trim()
            )
        })?;
        match table.remove("config") {
            Some(toml::Value::Table(t)) => toml_to_json(t)?,
            _ => return Err("expected TOML `key=value,…`".to_string()),
        }
    };
    if !value.is_object() {
        return Err("the configuration must be an object".to_string());
    }
    serde_json::to_string(&value).map_err(|e| e.to_string())
}

/// A TOML error as one line: its message and the line it is on.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let end = span.start.min(text.len());
            let line = text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

fn toml_to_json(table: toml::Table) -> Result<serde_json::Value, String> {
    serde_json::to_value(table).map_err(|e| e.to_string())
}

/// What a plugin's failure on a frame does unless told otherwise: skip it, and
/// disable the plugin after 10 failures.
pub const DEFAULT_ERROR_POLICY: ErrorPolicy = ErrorPolicy::DisableAfter(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(&s.parse::<PluginSpec>().unwrap().config).unwrap()
    }

    #[test]
    fn names_paths_and_no_config() {
        let s: PluginSpec = "motion".parse().unwrap();
        assert_eq!(s.target, PluginTarget::Name("motion".into()));
        assert_eq!(s.config, "{}");
        let s: PluginSpec = "./libreel_plugin_x.so:{}".parse().unwrap();
        assert_eq!(s.target, PluginTarget::Path("./libreel_plugin_x.so".into()));
        assert!("".parse::<PluginSpec>().is_err());
        assert!(":{}".parse::<PluginSpec>().is_err());
        assert!("bad name".parse::<PluginSpec>().is_err());
    }

    #[test]
    fn json_and_toml_configs_become_json() {
        let expected = serde_json::json!({"block": 8, "labels": ["face"]});
        assert_eq!(json(r#"pixelate:{"block":8,"labels":["face"]}"#), expected);
        assert_eq!(json(r#"pixelate:block=8,labels=["face"]"#), expected);
        assert_eq!(json(r#"pixelate: block = 8, labels = ["face"] "#), expected);
        assert_eq!(json("pixelate:"), serde_json::json!({}));
    }

    #[test]
    fn config_files_are_read() {
        let dir = std::env::temp_dir().join(format!("reel-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_file = dir.join("p.toml");
        std::fs::write(&toml_file, "block = 4\nwhole_frame = true\n").unwrap();
        let v = json(&format!("pixelate:@{}", toml_file.display()));
        assert_eq!(v, serde_json::json!({"block": 4, "whole_frame": true}));
        let json_file = dir.join("p.json");
        std::fs::write(&json_file, r#"{"block": 2}"#).unwrap();
        let v = json(&format!("pixelate:@{}", json_file.display()));
        assert_eq!(v, serde_json::json!({"block": 2}));
        let e = format!("pixelate:@{}", dir.join("missing.toml").display())
            .parse::<PluginSpec>()
            .unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_configs_name_the_plugin() {
        for bad in [
            "motion:{",
            "motion:[1,2]",
            "motion:threshold=",
            "motion:x=nope",
        ] {
            let e = bad.parse::<PluginSpec>().unwrap_err().to_string();
            assert!(e.contains("plugin `motion`"), "{bad}: {e}");
        }
    }
}
