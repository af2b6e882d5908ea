//! Support for the workspace integration tests: where the shared reference data and
//! the built plugins are. The tests themselves are in `integration/`.
#![deny(missing_docs)]

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
