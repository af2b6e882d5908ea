//! The inputs of a batch: files, directories (searched recursively for video
//! files), glob patterns and lists, made absolute and canonical, sorted, without
//! duplicates.

use std::path::{Path, PathBuf};

use super::BatchError;

/// The file extensions a directory search takes as videos (compared without case).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "m2ts", "flv", "wmv",
    "ogv", "3gp", "y4m", "mxf", "dv",
];

/// Whether `path`'s extension is a video's.
pub fn is_video_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

/// Expands `items` (each a file, a directory or a glob pattern) into the batch's
/// inputs. A named file is taken whatever its name or kind, even missing (a bad
/// one becomes a failed input, not an error here); a directory gives the video
/// files under it; a pattern the paths it matches (a pattern that matches nothing
/// is an error). Paths are made absolute and
/// canonical (symlinks resolved), then sorted, duplicates removed.
pub fn expand(items: &[String], cwd: &Path) -> Result<Vec<PathBuf>, BatchError> {
    let mut found = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let path = cwd.join(item);
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.is_dir() {
                walk(&path, &mut found)?;
            } else {
                found.push(path);
            }
            continue;
        }
        if item.contains(['*', '?', '[']) {
            let pattern = path.to_string_lossy().into_owned();
            let matches = glob::glob_with(
                &pattern,
                // As a shell expands it: `*` does not match a leading dot, so
                // hidden files stay out, as they do from a directory.
                glob::MatchOptions {
                    require_literal_leading_dot: true,
                    ..glob::MatchOptions::new()
                },
            )
            .map_err(|e| BatchError::Inputs {
                item: item.to_string(),
                message: format!("not a valid pattern: {e}"),
            })?;
            let before = found.len();
            for m in matches.flatten() {
                if m.is_dir() {
                    walk(&m, &mut found)?;
                } else {
                    found.push(m);
                }
            }
            if found.len() == before {
                return Err(BatchError::Inputs {
                    item: item.to_string(),
                    message: "the pattern matches no file".into(),
                });
            }
            continue;
        }
        // Named but missing: an input that fails (and is recorded), not an error
        // that stops the batch.
        found.push(path);
    }
    let mut canonical: Vec<PathBuf> = found
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect();
    canonical.sort();
    canonical.dedup();
    Ok(canonical)
}

/// The entries of a list (`--inputs-from`): one per line; blank lines and lines
/// starting with `#` are left out.
pub fn read_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The video files under `dir`, recursively (hidden entries left out).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BatchError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BatchError::Inputs {
        item: dir.display().to_string(),
        message: format!("cannot read the directory: {e}"),
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let is_dir = kind.is_dir() || (kind.is_symlink() && path.is_dir());
        if is_dir {
            walk(&path, out)?;
        } else if is_video_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_and_patterns_expand_sorted_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        for f in [
            "a.mp4",
            "b.MKV",
            "notes.txt",
            "sub/c.avi",
            "sub/deeper/d.mov",
            ".hidden.mp4",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let got = expand(
            &[
                "sub".into(),
                "*.mp4".into(),
                "a.mp4".into(),
                "notes.txt".into(),
                d.join("b.MKV").display().to_string(),
            ],
            d,
        )
        .unwrap();
        let root = std::fs::canonicalize(d).unwrap();
        let want: Vec<PathBuf> = [
            "a.mp4",
            "b.MKV",
            "notes.txt",
            "sub/c.avi",
            "sub/deeper/d.mov",
        ]
        .iter()
        .map(|f| root.join(f))
        .collect();
        assert_eq!(got, want);
        assert!(expand(&["nothing-*.mp4".into()], d).is_err());
        assert_eq!(
            expand(&["missing.mp4".into()], d).unwrap(),
            vec![root.join("missing.mp4")]
        );
        assert_eq!(
            read_list("a.mp4\n\n# comment\n  b.mp4  \n"),
            vec!["a.mp4".to_string(), "b.mp4".to_string()]
        );
    }
}
