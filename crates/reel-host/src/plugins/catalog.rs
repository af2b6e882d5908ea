//! Every plugin in the search path, loaded (or refused) once.

use std::path::PathBuf;

use super::error::Error;
use super::load::{LoadedPlugin, load};
use super::search::{Origin, SearchPath, plugin_name_from_file};
use super::spec::PluginTarget;

/// One library found in the search path.
#[derive(Debug)]
pub struct Entry {
    /// The library's file.
    pub path: PathBuf,
    /// Which folder of the search path it is in.
    pub origin: Origin,
    /// The plugin, or why it was refused.
    pub plugin: Result<LoadedPlugin, Error>,
    /// When an earlier folder holds a plugin of the same name: that plugin's file
    /// (this one is never used).
    pub shadowed_by: Option<PathBuf>,
}

impl Entry {
    /// The plugin's name: its own when it loaded, else the one its file implies.
    pub fn name(&self) -> String {
        match &self.plugin {
            Ok(p) => p.name().to_string(),
            Err(_) => {
                plugin_name_from_file(&self.path).unwrap_or_else(|| self.path.display().to_string())
            }
        }
    }
}

/// The plugins of a search path.
#[derive(Debug)]
pub struct Catalog {
    search_path: SearchPath,
    entries: Vec<Entry>,
}

impl Catalog {
    /// Loads every plugin library in `search_path` (refused ones are kept, with
    /// their error, so they can be reported).
    pub fn discover(search_path: SearchPath) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        for (path, origin) in search_path.candidates() {
            let plugin = load(&path);
            if let Err(e) = &plugin {
                tracing::debug!("{e}");
            }
            let mut entry = Entry {
                path,
                origin,
                plugin,
                shadowed_by: None,
            };
            let name = entry.name();
            entry.shadowed_by = entries
                .iter()
                .find(|e| e.shadowed_by.is_none() && e.name() == name)
                .map(|e| e.path.clone());
            entries.push(entry);
        }
        Self {
            search_path,
            entries,
        }
    }

    /// The search path the catalog was made from.
    pub fn search_path(&self) -> &SearchPath {
        &self.search_path
    }

    /// Every library found, in search order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The plugin `name` (the first of that name in search order). A plugin of
    /// that name that was refused gives its refusal.
    pub fn find(&self, name: &str) -> Result<LoadedPlugin, Error> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.shadowed_by.is_none() && e.name() == name)
            .ok_or_else(|| Error::NotFound {
                name: name.to_string(),
                searched: self
                    .search_path
                    .dirs()
                    .iter()
                    .map(|d| d.path.clone())
                    .collect(),
            })?;
        match &entry.plugin {
            Ok(p) => Ok(p.clone()),
            // Loading again gives the same refusal, as an owned error.
            Err(_) => load(&entry.path),
        }
    }

    /// The plugin a `--plugin` value names: a library file, or a name in the
    /// search path.
    pub fn resolve(&self, target: &PluginTarget) -> Result<LoadedPlugin, Error> {
        match target {
            PluginTarget::Path(p) => load(p),
            PluginTarget::Name(n) => self.find(n),
        }
    }
}
