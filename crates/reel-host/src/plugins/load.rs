//! Loading one plugin library: version check, layout check, description.

use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::std_types::{RResult, RStr};
use reel_frame::PixelFormat;
use reel_plugin_api::{Caps, INTERFACE_VERSION, PluginModRef, ProcessorBox};
use serde::Serialize;

use super::error::Error;
use super::search::plugin_name_from_file;

/// What a plugin says about itself, in the host's own types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginDescription {
    /// The name users select it by.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line on what it does.
    pub description: String,
    /// The interface version it was built against.
    pub interface_version: String,
    /// What it reads: `pixels`, `detections`.
    pub consumes: Vec<&'static str>,
    /// What it changes or adds.
    pub produces: Vec<&'static str>,
    /// The pixel formats it accepts.
    pub formats: Vec<PixelFormat>,
    /// Whether its processors keep nothing between frames (then several may run at
    /// once, each on its own frames).
    pub stateless: bool,
}

/// A plugin library, loaded and checked. Cheap to clone; the library stays loaded
/// for the life of the process.
#[derive(Clone)]
pub struct LoadedPlugin {
    description: PluginDescription,
    path: PathBuf,
    module: PluginModRef,
}

/// Loads the plugin library at `path`: opens it, checks the interface version it
/// was built against and the layout of every type crossing the boundary, then asks
/// it to describe itself.
///
/// Each library is loaded by its own path through
/// `lib_header_from_path(path)?.init_root_module()`, so any number of plugins load
/// side by side. Libraries are never unloaded.
pub fn load(path: &Path) -> Result<LoadedPlugin, Error> {
    let file_name = plugin_name_from_file(path).unwrap_or_else(|| path.display().to_string());
    let open_error = |e: LibraryError| Error::Open {
        plugin: file_name.clone(),
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // A damaged file would crash the process inside the loader: check it first.
    super::check::check_library(path).map_err(|message| Error::Open {
        plugin: file_name.clone(),
        path: path.to_path_buf(),
        message,
    })?;
    let header = lib_header_from_path(path).map_err(open_error)?;

    // Check the version first, and say it plainly: the layout checker's report on
    // a plugin for another interface would be pages long.
    let plugin_version = header.version_strings().version.as_str().to_string();
    if !compatible(&plugin_version, INTERFACE_VERSION) {
        return Err(Error::Incompatible {
            plugin: file_name,
            path: path.to_path_buf(),
            plugin_version,
            host_version: INTERFACE_VERSION.to_string(),
        });
    }
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| match e {
            LibraryError::AbiInstability(_) => Error::Layout {
                plugin: file_name.clone(),
                path: path.to_path_buf(),
                plugin_version: plugin_version.clone(),
                host_version: INTERFACE_VERSION.to_string(),
                detail: e
                    .to_string()
                    .lines()
                    .take(12)
                    .collect::<Vec<_>>()
                    .join("\n"),
            },
            LibraryError::IncompatibleVersionNumber { .. } => Error::Incompatible {
                plugin: file_name.clone(),
                path: path.to_path_buf(),
                plugin_version: plugin_version.clone(),
                host_version: INTERFACE_VERSION.to_string(),
            },
            other => Error::Plugin {
                plugin: file_name.clone(),
                what: "initialising the library",
                message: other.to_string(),
            },
        })?;

    let info = match (module.info())() {
        RResult::ROk(info) => info,
        RResult::RErr(e) => {
            return Err(Error::Plugin {
                plugin: file_name,
                what: "describing itself",
                message: e.to_string(),
            });
        }
    };
    let description = PluginDescription {
        name: info.name.to_string(),
        version: info.version.to_string(),
        description: info.description.to_string(),
        interface_version: plugin_version,
        consumes: caps(info.consumes),
        produces: caps(info.produces),
        formats: info.formats.iter().map(|f| from_api(*f)).collect(),
        stateless: (module.stateless())(),
    };
    tracing::debug!(plugin = %description.name, path = %path.display(), "plugin loaded");
    Ok(LoadedPlugin {
        description,
        path: path.to_path_buf(),
        module,
    })
}

/// Whether a plugin built against interface `plugin` loads in a host providing
/// `host`: the rule `abi_stable` applies (same major version; while the major
/// version is 0, a minor version at least the host's).
fn compatible(plugin: &str, host: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(plugin), parse(host)) {
        (Some((pm, pn)), Some((hm, hn))) => pm == hm && (hm != 0 || pn >= hn),
        _ => false,
    }
}

fn caps(c: Caps) -> Vec<&'static str> {
    c.names()
}

/// The host's pixel format for the interface's.
pub(crate) fn from_api(f: reel_plugin_api::PixelFormat) -> PixelFormat {
    use reel_plugin_api::PixelFormat as A;
    match f {
        A::Rgb24 => PixelFormat::Rgb24,
        A::Bgr24 => PixelFormat::Bgr24,
        A::Rgba => PixelFormat::Rgba,
        A::Gray8 => PixelFormat::Gray8,
        A::Yuv420p => PixelFormat::Yuv420p,
        A::Nv12 => PixelFormat::Nv12,
    }
}

/// The interface's pixel format for the host's.
pub(crate) fn to_api(f: PixelFormat) -> reel_plugin_api::PixelFormat {
    use reel_plugin_api::PixelFormat as A;
    match f {
        PixelFormat::Rgb24 => A::Rgb24,
        PixelFormat::Bgr24 => A::Bgr24,
        PixelFormat::Rgba => A::Rgba,
        PixelFormat::Gray8 => A::Gray8,
        PixelFormat::Yuv420p => A::Yuv420p,
        PixelFormat::Nv12 => A::Nv12,
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("description", &self.description)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// What the plugin says about itself.
    pub fn description(&self) -> &PluginDescription {
        &self.description
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.description.name
    }

    /// The library's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a processor from `config` (a JSON object's text). A configuration
    /// the plugin rejects, or a panic while creating, is an error naming the
    /// plugin.
    pub fn create_processor(&self, config: &str) -> Result<ProcessorBox, Error> {
        match (self.module.create())(RStr::from_str(config)) {
            RResult::ROk(p) => Ok(p),
            RResult::RErr(e) => Err(Error::Plugin {
                plugin: self.description.name.clone(),
                what: "creating a processor",
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_follows_the_version_rule() {
        assert!(compatible("1.0.0", "1.0.0"));
        assert!(compatible("1.3.0", "1.0.0"));
        assert!(compatible("1.0.0", "1.2.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(compatible("0.3.0", "0.2.0"));
        assert!(!compatible("garbage", "1.0.0"));
    }

    #[test]
    fn formats_map_both_ways() {
        for f in PixelFormat::ALL {
            assert_eq!(from_api(to_api(f)), f);
        }
    }

    #[test]
    fn a_missing_file_is_an_open_error_naming_the_plugin() {
        let e = load(Path::new("/nonexistent/libreel_plugin_ghost.so")).unwrap_err();
        assert!(matches!(e, Error::Open { .. }));
        assert!(e.to_string().contains("ghost"), "{e}");
    }
}
