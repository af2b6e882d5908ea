//! A library's file checked against its own headers before the loader maps it. A
//! truncated or damaged shared library would otherwise crash the whole process
//! (SIGBUS) the moment the loader touches a page past the file's end, with no
//! message; checked first, it is one refused plugin, reported, and the rest load.

use std::path::Path;

use object::{Object, ObjectSegment};

/// The largest plugin library reel reads to check (a plugin is a few MiB).
const MAX_LIBRARY_BYTES: u64 = 1 << 30;

/// Whether the library at `path` is whole: an object file of this platform whose
/// every loadable segment lies within the file. On platforms other than Linux the
/// loader's own checks are all there is.
pub(crate) fn check_library(path: &Path) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("reading it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_LIBRARY_BYTES {
        return Err(format!(
            "{} bytes is too large for a plugin library",
            meta.len()
        ));
    }
    let data = std::fs::read(path).map_err(|e| format!("reading it: {e}"))?;
    let len = data.len() as u64;
    let file = object::File::parse(&*data).map_err(|e| {
        if data.starts_with(b"\x7fELF") {
            format!("the file is truncated or damaged ({e})")
        } else {
            format!("not a shared library ({e})")
        }
    })?;
    for segment in file.segments() {
        let (offset, size) = segment.file_range();
        let end = offset.checked_add(size);
        if end.is_none_or(|end| end > len) {
            return Err(format!(
                "the file is truncated or damaged: a segment ends at byte {}, past its end at {len}",
                end.map_or_else(|| "beyond 2^64".to_string(), |e| e.to_string())
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_copy_of_a_real_library_is_refused_and_the_original_passes() {
        // This test's own executable is an ELF file with loadable segments.
        let exe = std::env::current_exe().unwrap();
        check_library(&exe).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("libreel_plugin_cut.so");
        let bytes = std::fs::read(&exe).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len().min(100_000)]).unwrap();
        let e = check_library(&cut).unwrap_err();
        assert!(
            e.contains("truncated") || e.contains("not a shared library"),
            "{e}"
        );
        let text = dir.path().join("libreel_plugin_text.so");
        std::fs::write(&text, "not a library").unwrap();
        assert!(
            check_library(&text)
                .unwrap_err()
                .contains("not a shared library")
        );
    }
}
