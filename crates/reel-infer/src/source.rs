//! Where weights come from: a local safetensors file, or a model name fetched from
//! the Hugging Face hub into its usual cache (looked up there before any network).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo};

use crate::InferError;
use crate::error::Unavailable;
use crate::model::Variant;

/// The hub repository holding the YOLOv8 weights converted for candle.
pub const HUB_REPO: &str = "lmz/candle-yolo-v8";
/// The hub's address when `HF_ENDPOINT` does not say otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A model as the user names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelSource {
    /// A local `.safetensors` file.
    Path(PathBuf),
    /// A YOLOv8 size, fetched from the hub (`yolov8n` … `yolov8x`).
    Named(Variant),
}

impl ModelSource {
    /// `yolov8n` … `yolov8x` name hub models; anything else is a path, which must
    /// exist.
    pub fn parse(spec: &str) -> Result<Self, InferError> {
        let lower = spec.trim().to_ascii_lowercase();
        if let Some(letter) = lower.strip_prefix("yolov8")
            && let [c] = letter.chars().collect::<Vec<_>>()[..]
            && let Some(v) = Variant::from_letter(c)
            && !Path::new(spec).exists()
        {
            return Ok(ModelSource::Named(v));
        }
        let path = PathBuf::from(spec);
        if path.exists() {
            return Ok(ModelSource::Path(path));
        }
        if lower.ends_with(".safetensors") || spec.contains(std::path::MAIN_SEPARATOR) {
            return Err(InferError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        Err(InferError::UnknownModel(spec.to_string()))
    }

    /// The variant a name implies (a file's is read from its shapes).
    pub fn variant(&self) -> Option<Variant> {
        match self {
            ModelSource::Named(v) => Some(*v),
            ModelSource::Path(_) => None,
        }
    }

    /// A short description: the name, or the path.
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Named(v) => v.to_string(),
            ModelSource::Path(p) => p.display().to_string(),
        }
    }
}

/// Where the hub client looks and fetches.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// The hub cache directory (`$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// The hub's address.
    pub endpoint: String,
    /// The longest a download may take before it is given up.
    pub timeout: Duration,
}

impl HubOptions {
    /// From the environment, as the hub's own tools read it: `HF_HOME` and
    /// `HF_ENDPOINT`.
    pub fn from_env() -> Self {
        Self {
            cache_dir: Cache::from_env().path().clone(),
            endpoint: std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string()),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The file name of a variant's weights in [`HUB_REPO`].
pub fn hub_file(v: Variant) -> String {
    format!("yolov8{}.safetensors", v.letter())
}

/// The local file of `source`: a path as given (canonicalised), or the hub file of
/// a named model, from the cache when there, else downloaded into it.
pub fn resolve(source: &ModelSource, hub: &HubOptions) -> Result<PathBuf, InferError> {
    match source {
        ModelSource::Path(p) => std::fs::canonicalize(p).map_err(|e| InferError::Io {
            path: p.clone(),
            source: e,
        }),
        ModelSource::Named(v) => fetch(*v, hub),
    }
}

fn fetch(v: Variant, hub: &HubOptions) -> Result<PathBuf, InferError> {
    let file = hub_file(v);
    let cache = Cache::new(hub.cache_dir.clone());
    if let Some(path) = cache.repo(Repo::model(HUB_REPO.to_string())).get(&file) {
        tracing::debug!(path = %path.display(), "model found in the hub cache");
        return Ok(path);
    }
    let unavailable = |reason: String| {
        InferError::Unavailable(Box::new(Unavailable {
            model: v.to_string(),
            repo: HUB_REPO.to_string(),
            file: file.clone(),
            cache: hub.cache_dir.clone(),
            endpoint: hub.endpoint.clone(),
            reason,
        }))
    };
    tracing::info!(model = %v, endpoint = %hub.endpoint, "downloading model weights");
    let api = ApiBuilder::from_cache(cache)
        .with_endpoint(hub.endpoint.clone())
        .with_progress(false)
        .with_retries(0)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;
    // The client has no timeout of its own: the download runs on a thread and is
    // abandoned when it takes too long.
    let (tx, rx) = mpsc::channel();
    let name = file.clone();
    std::thread::Builder::new()
        .name("reel-hub-fetch".into())
        .spawn(move || {
            let result = api.model(HUB_REPO.to_string()).get(&name);
            let _ = tx.send(result.map_err(|e| e.to_string()));
        })
        .map_err(|e| unavailable(format!("cannot start the download: {e}")))?;
    match rx.recv_timeout(hub.timeout) {
        Ok(Ok(path)) => Ok(path),
        Ok(Err(reason)) => Err(unavailable(reason)),
        Err(_) => Err(unavailable(format!(
            "no answer within {} s",
            hub.timeout.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(
            ModelSource::parse("yolov8n").unwrap(),
            ModelSource::Named(Variant::N)
        );
        assert_eq!(
            ModelSource::parse("YOLOv8x").unwrap(),
            ModelSource::Named(Variant::X)
        );
        let e = ModelSource::parse("yolov9n").unwrap_err().to_string();
        assert!(e.contains("unknown model `yolov9n`"), "{e}");
        let e = ModelSource::parse("/nowhere/m.safetensors")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nowhere/m.safetensors"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.safetensors");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(
            ModelSource::parse(f.to_str().unwrap()).unwrap(),
            ModelSource::Path(f)
        );
        assert_eq!(hub_file(Variant::S), "yolov8s.safetensors");
    }
}
