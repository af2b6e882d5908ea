//! Support for the workspace integration tests: where the shared reference data and
//! the built plugins are. The tests themselves are in `integration/`.
#![deny(missing_docs)]

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The cargo target folder the tests were built in.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn built(folder: &str, file: &str) -> PathBuf {
    let dir = target_dir().join(folder);
    let lib = dir.join(format!(
        "{}{file}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo xtask build-plugins --fixtures` (or `cargo xtask test`) first",
        lib.display()
    );
    lib
}

/// Where `cargo xtask build-plugins` puts the sample plugins.
pub fn plugins_dir() -> PathBuf {
    let dir = target_dir().join("plugins");
    built("plugins", "reel_plugin_motion");
    dir
}

/// Where `cargo xtask build-plugins --fixtures` puts the fixture plugins.
pub fn fixtures_dir() -> PathBuf {
    let dir = target_dir().join("plugin-fixtures");
    built("plugin-fixtures", "reel_plugin_faulty");
    dir
}

/// The library of fixture plugin `name` (`faulty`, `next`).
pub fn fixture(name: &str) -> PathBuf {
    built("plugin-fixtures", &format!("reel_plugin_{name}"))
}
