//! The plugin search path and the files in it that may be plugins.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why a folder is in the search path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Given with `--plugin-dir`.
    Flag,
    /// From the `REEL_PLUGIN_PATH` environment variable.
    Env,
    /// The `plugins` folder beside the executable.
    BesideExecutable,
    /// The user's own plugin folder.
    User,
    /// The build folder of a development checkout (`target/plugins`).
    DevCheckout,
}

impl Origin {
    /// A short description.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Flag => "--plugin-dir",
            Origin::Env => "REEL_PLUGIN_PATH",
            Origin::BesideExecutable => "beside the executable",
            Origin::User => "user folder",
            Origin::DevCheckout => "development build",
        }
    }
}

/// One folder of the search path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchDir {
    /// The folder.
    pub path: PathBuf,
    /// Why it is searched.
    pub origin: Origin,
}

/// The folders searched for plugins, in order: the first plugin of a name wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchPath {
    dirs: Vec<SearchDir>,
}

/// The environment variable holding extra plugin folders (separated like `PATH`).
pub const PLUGIN_PATH_VAR: &str = "REEL_PLUGIN_PATH";

impl SearchPath {
    /// Exactly these folders.
    pub fn from_dirs(dirs: impl IntoIterator<Item = SearchDir>) -> Self {
        let mut path = Self::default();
        for d in dirs {
            path.push(d);
        }
        path
    }

    /// The standard search path: `flag_dirs` (from `--plugin-dir`), then
    /// `REEL_PLUGIN_PATH`, then `plugins/` beside the executable, then the user's
    /// plugin folder, then, when the executable runs from a cargo build folder,
    /// that folder's `plugins/` (where `cargo xtask build-plugins` puts them).
    pub fn standard(flag_dirs: &[PathBuf]) -> Self {
        let mut path = Self::default();
        for d in flag_dirs {
            path.push(SearchDir {
                path: d.clone(),
                origin: Origin::Flag,
            });
        }
        if let Some(var) = env::var_os(PLUGIN_PATH_VAR) {
            for d in env::split_paths(&var).filter(|d| !d.as_os_str().is_empty()) {
                path.push(SearchDir {
                    path: d,
                    origin: Origin::Env,
                });
            }
        }
        let exe_dir = env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        if let Some(dir) = &exe_dir {
            path.push(SearchDir {
                path: dir.join("plugins"),
                origin: Origin::BesideExecutable,
            });
        }
        if let Some(dir) = user_dir() {
            path.push(SearchDir {
                path: dir,
                origin: Origin::User,
            });
        }
        if let Some(target) = exe_dir.as_deref().and_then(cargo_target_dir) {
            path.push(SearchDir {
                path: target.join("plugins"),
                origin: Origin::DevCheckout,
            });
        }
        path
    }

    fn push(&mut self, dir: SearchDir) {
        if !self.dirs.iter().any(|d| d.path == dir.path) {
            self.dirs.push(dir);
        }
    }

    /// The folders, in search order.
    pub fn dirs(&self) -> &[SearchDir] {
        &self.dirs
    }

    /// The files that may be plugins (`[lib]reel_plugin_*.{so,dylib,dll}`), folder
    /// by folder in search order, sorted by name within a folder. Missing or
    /// unreadable folders are skipped.
    pub fn candidates(&self) -> Vec<(PathBuf, Origin)> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(&dir.path) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && plugin_name_from_file(p).is_some())
                .collect();
            files.sort();
            out.extend(files.into_iter().map(|p| (p, dir.origin)));
        }
        out
    }
}

/// The plugin name a library's file name implies: `libreel_plugin_motion.so` →
/// `motion`, `reel_plugin_my_filter.dll` → `my-filter`. `None` for files that are
/// not plugin libraries of this platform.
pub fn plugin_name_from_file(path: &Path) -> Option<String> {
    if path.extension() != Some(OsStr::new(env::consts::DLL_EXTENSION)) {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let stem = stem.strip_prefix(env::consts::DLL_PREFIX).unwrap_or(stem);
    let name = stem.strip_prefix("reel_plugin_")?;
    (!name.is_empty()).then(|| name.replace('_', "-"))
}

/// The user's plugin folder: `$XDG_DATA_HOME/reel/plugins` (default
/// `~/.local/share/reel/plugins`), `~/Library/Application Support/reel/plugins`
/// on macOS, `%APPDATA%\reel\plugins` on Windows.
fn user_dir() -> Option<PathBuf> {
    let nonempty = |v: &str| env::var_os(v).filter(|s| !s.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        nonempty("APPDATA")?
    } else if cfg!(target_os = "macos") {
        nonempty("HOME")?.join("Library/Application Support")
    } else {
        nonempty("XDG_DATA_HOME").or_else(|| nonempty("HOME").map(|h| h.join(".local/share")))?
    };
    Some(base.join("reel").join("plugins"))
}

/// The cargo build folder the executable lives in, if any: the nearest ancestor
/// holding the `CACHEDIR.TAG` cargo writes at the root of every target folder.
fn cargo_target_dir(exe_dir: &Path) -> Option<PathBuf> {
    exe_dir
        .ancestors()
        .take(4)
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_name() {
        let f = |s: &str| plugin_name_from_file(Path::new(s));
        let ext = env::consts::DLL_EXTENSION;
        let pre = env::consts::DLL_PREFIX;
        assert_eq!(
            f(&format!("/x/{pre}reel_plugin_motion.{ext}")),
            Some("motion".into())
        );
        assert_eq!(
            f(&format!("{pre}reel_plugin_my_filter.{ext}")),
            Some("my-filter".into())
        );
        assert_eq!(f(&format!("{pre}reel_plugin_.{ext}")), None);
        assert_eq!(f(&format!("{pre}other.{ext}")), None);
        assert_eq!(f("reel_plugin_motion.txt"), None);
    }

    #[test]
    fn folders_are_searched_once_in_order() {
        let a = SearchDir {
            path: "/a".into(),
            origin: Origin::Flag,
        };
        let b = SearchDir {
            path: "/b".into(),
            origin: Origin::Env,
        };
        let p = SearchPath::from_dirs([a.clone(), b.clone(), a.clone()]);
        assert_eq!(p.dirs(), [a, b]);
    }

    #[test]
    fn the_standard_path_starts_with_the_flags() {
        let p = SearchPath::standard(&[PathBuf::from("/flag")]);
        assert_eq!(p.dirs()[0].path, PathBuf::from("/flag"));
        assert!(
            p.dirs()
                .iter()
                .any(|d| d.origin == Origin::BesideExecutable)
        );
    }
}
