//! Broken weights files: every error names the tensor and both shapes.

use candle_core::{DType, Device, Tensor};

use crate::{fixture_tensors, load_net};

#[test]
fn a_misshapen_tensor_is_named_with_both_shapes() {
    let mut t = fixture_tensors();
    t.insert(
        "model.22.cv3.0.1.conv.weight".into(),
        Tensor::zeros((80, 80, 1, 1), DType::F32, &Device::Cpu).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    let e = load_net(&path).unwrap_err().to_string();
    assert!(
        e.contains("`model.22.cv3.0.1.conv.weight`")
            && e.contains("[80, 80, 1, 1]")
            && e.contains("[80, 80, 3, 3]")
            && e.contains("bad.safetensors"),
        "{e}"
    );
}

#[test]
fn a_missing_tensor_is_named_with_its_shape() {
    let mut t = fixture_tensors();
    t.remove("model.12.cv1.bn.running_var");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    let e = load_net(&path).unwrap_err().to_string();
    assert!(
        e.contains("`model.12.cv1.bn.running_var` is missing") && e.contains("[128]"),
        "{e}"
    );
}

#[test]
fn not_a_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.safetensors");
    std::fs::write(&path, b"not safetensors at all").unwrap();
    let e = load_net(&path).unwrap_err().to_string();
    assert!(
        e.contains("junk.safetensors") && e.contains("safetensors"),
        "{e}"
    );
    let e = load_net(&dir.path().join("absent.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.safetensors"), "{e}");
}
