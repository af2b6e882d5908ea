//! The output folder of a batch: each input's results under its name, written
//! under a temporary name and renamed when whole (the summary last: it marks the
//! input done), each shard's manifest of one JSON line per finished input, and
//! each shard's batch summary.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BatchError;
use super::shard::Shard;

/// One input of a batch and the name its outputs go under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInput {
    /// The canonical path.
    pub path: PathBuf,
    /// `DIR/<name>.frames.jsonl`, `DIR/<name>.summary.json`.
    pub name: String,
}

/// The output names of `inputs` (the whole list, before sharding, so that every
/// shard names an input the same way): the file's stem, followed by a short hash
/// of the path when another input of the list has the same stem.
pub fn names(inputs: &[PathBuf]) -> Vec<BatchInput> {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty() && !s.starts_with('.'))
            .unwrap_or_else(|| "input".to_string())
    };
    let mut counts = std::collections::HashMap::new();
    for p in inputs {
        *counts.entry(stem(p)).or_insert(0usize) += 1;
    }
    inputs
        .iter()
        .map(|p| {
            let s = stem(p);
            let name = if counts.get(&s).copied().unwrap_or(0) > 1 {
                let h = xxhash_rust::xxh3::xxh3_64(p.as_os_str().as_encoded_bytes());
                format!("{s}-{:08x}", h as u32)
            } else {
                s
            };
            BatchInput {
                path: p.clone(),
                name,
            }
        })
        .collect()
}

/// Where a batch's files are.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

/// What a manifest line says of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputStatus {
    /// Its outputs are whole.
    Done,
    /// Every attempt failed; the error says why.
    Failed,
}

/// One line of a manifest: an input that finished (done or failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// The canonical path.
    pub input: String,
    /// Its outputs' name.
    pub name: String,
    /// Done or failed.
    pub status: InputStatus,
    /// The last attempt's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Wall-clock seconds over all attempts, the waits between them included.
    pub wall_s: f64,
    /// Result lines written (0 when it failed).
    pub frames: u64,
    /// `hit`, `miss` or `off`: whether the analysis cache answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The shard that ran it, `K/N`.
    pub shard: String,
    /// The machine that ran it.
    #[serde(default)]
    pub host: String,
    /// When it finished, in seconds since the Unix epoch.
    pub finished_at: f64,
}

impl Layout {
    /// The batch folder `dir`, made if missing.
    pub fn create(dir: &Path) -> Result<Self, BatchError> {
        std::fs::create_dir_all(dir).map_err(|e| BatchError::io(dir, "creating", e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// An existing batch folder (for status and merge).
    pub fn open(dir: &Path) -> Result<Self, BatchError> {
        if !dir.is_dir() {
            return Err(BatchError::io(
                dir,
                "reading",
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/<name>.frames.jsonl`.
    pub fn frames(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.frames.jsonl"))
    }

    /// `DIR/<name>.summary.json`.
    pub fn summary(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.summary.json"))
    }

    /// The temporary name of `final_path` while it is written: hidden, and ending
    /// in `.part`, so that no reader takes it for a result.
    pub fn part(final_path: &Path) -> PathBuf {
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        final_path.with_file_name(format!(".{name}.part"))
    }

    /// `DIR/manifest[.shard-K-of-N].jsonl`.
    pub fn manifest(&self, shard: Shard) -> PathBuf {
        self.dir.join(format!("manifest{}.jsonl", shard.suffix()))
    }

    /// `DIR/batch[.shard-K-of-N].json`: the shard's batch summary.
    pub fn batch_summary(&self, shard: Shard) -> PathBuf {
        self.dir.join(format!("batch{}.json", shard.suffix()))
    }

    /// Whether `input` is done: its summary is there, names this input, and is
    /// newer than the input (an input changed since is done again), and its
    /// frames file is there.
    pub fn is_done(&self, input: &BatchInput) -> bool {
        let summary = self.summary(&input.name);
        let Ok(meta) = std::fs::metadata(&summary) else {
            return false;
        };
        if !self.frames(&input.name).is_file() {
            return false;
        }
        if let (Ok(done), Ok(changed)) = (
            meta.modified(),
            std::fs::metadata(&input.path).and_then(|m| m.modified()),
        ) && changed > done
        {
            return false;
        }
        #[derive(Deserialize)]
        struct Named {
            input: String,
        }
        std::fs::read(&summary)
            .ok()
            .and_then(|b| serde_json::from_slice::<Named>(&b).ok())
            .is_some_and(|n| Path::new(&n.input) == input.path)
    }

    /// Writes `bytes` to `path` under its temporary name, then renames it.
    pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
        let part = Self::part(path);
        std::fs::write(&part, bytes).map_err(|e| BatchError::io(&part, "writing", e))?;
        std::fs::rename(&part, path).map_err(|e| BatchError::io(path, "renaming into", e))
    }

    /// Every manifest in the folder (the whole batch's and each shard's), sorted.
    pub fn manifests(&self) -> Result<Vec<PathBuf>, BatchError> {
        self.files(|n| n.starts_with("manifest") && n.ends_with(".jsonl"))
    }

    /// Every batch summary in the folder, sorted.
    pub fn batch_summaries(&self) -> Result<Vec<PathBuf>, BatchError> {
        self.files(|n| n.starts_with("batch") && n.ends_with(".json"))
    }

    /// Temporary files left by runs that were killed.
    pub fn parts(&self) -> Result<Vec<PathBuf>, BatchError> {
        self.files(|n| n.starts_with('.') && n.ends_with(".part"))
    }

    fn files(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, BatchError> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| BatchError::io(&self.dir, "reading", e))?
            .flatten()
            .filter(|e| keep(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        out.sort();
        Ok(out)
    }
}

/// A manifest open for appending: each record is one `write` of one whole line.
#[derive(Debug)]
pub struct Manifest {
    path: PathBuf,
    file: std::fs::File,
}

impl Manifest {
    /// Opens (or makes) the manifest at `path`; a last line cut short by a killed
    /// writer is taken away first, so that every line stays whole.
    pub fn open(path: &Path) -> Result<Self, BatchError> {
        let err = |e| BatchError::io(path, "opening the manifest", e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len > 0 {
            let mut text = Vec::new();
            file.seek(std::io::SeekFrom::Start(0)).map_err(err)?;
            file.read_to_end(&mut text).map_err(err)?;
            if text.last() != Some(&b'\n') {
                let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                file.set_len(whole as u64).map_err(err)?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `record` as one line.
    pub fn append(&mut self, record: &ManifestRecord) -> Result<(), BatchError> {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            BatchError::io(&self.path, "writing the manifest", std::io::Error::other(e))
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| BatchError::io(&self.path, "writing the manifest", e))
    }
}

/// The records of a manifest; lines that do not parse are left out.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRecord>, BatchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BatchError::io(path, "reading", e))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stems_and_collisions_get_a_hash() {
        let n = names(&[
            PathBuf::from("/a/clip.mp4"),
            PathBuf::from("/b/clip.mkv"),
            PathBuf::from("/b/other.mp4"),
        ]);
        assert!(n[0].name.starts_with("clip-") && n[1].name.starts_with("clip-"));
        assert_ne!(n[0].name, n[1].name);
        assert_eq!(n[2].name, "other");
    }

    #[test]
    fn a_cut_last_line_is_taken_away_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.jsonl");
        let record = ManifestRecord {
            input: "/a.mp4".into(),
            name: "a".into(),
            status: InputStatus::Done,
            error: None,
            attempts: 1,
            wall_s: 0.5,
            frames: 10,
            cache: Some("miss".into()),
            shard: "0/1".into(),
            host: "h".into(),
            finished_at: 1.0,
        };
        let mut m = Manifest::open(&path).unwrap();
        m.append(&record).unwrap();
        drop(m);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"input\":\"/b.mp").unwrap();
        drop(f);
        let mut m = Manifest::open(&path).unwrap();
        m.append(&record).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(read_manifest(&path).unwrap(), vec![record.clone(), record]);
    }
}
