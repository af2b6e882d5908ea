//! Model sources: the hub cache is read before any network; offline, a named
//! model fails with a message that says how to pass a local file.

use std::time::Duration;

use reel_infer::source::{HUB_REPO, resolve};
use reel_infer::{HubOptions, InferError, ModelSource, Variant};

use crate::weights_path;

/// An empty cache and a hub address nothing answers on (the discard port).
fn offline(cache: &std::path::Path) -> HubOptions {
    HubOptions {
        cache_dir: cache.to_path_buf(),
        endpoint: "http://127.0.0.1:9".to_string(),
        timeout: Duration::from_secs(20),
    }
}

#[test]
fn offline_a_named_model_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = resolve(&ModelSource::Named(Variant::N), &offline(dir.path())).unwrap_err();
    assert!(matches!(e, InferError::Unavailable(_)), "{e}");
    let msg = e.to_string();
    for needle in [
        "`yolov8n`",
        "yolov8n.safetensors",
        HUB_REPO,
        "--model",
        "http://127.0.0.1:9",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
fn a_cached_named_model_needs_no_network() {
    // The hub cache's layout: refs/main names a snapshot holding the file.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models--lmz--candle-yolo-v8");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::copy(weights_path(), snap.join("yolov8n.safetensors")).unwrap();
    let path = resolve(&ModelSource::Named(Variant::N), &offline(dir.path())).unwrap();
    assert_eq!(path, snap.join("yolov8n.safetensors"));
    // Another size is not cached: offline it fails.
    assert!(resolve(&ModelSource::Named(Variant::S), &offline(dir.path())).is_err());
}
