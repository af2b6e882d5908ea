//! The network against PyTorch's output for the same weights and input.

use candle_core::{Device, Tensor};

use crate::{fixture, fixture_model, fixture_tensors, load_net, read_f32};

/// Max |Δ| over the box rows (0-3), max relative Δ over them, max |Δ| over the
/// score rows, between two `[84, 8400]` outputs.
fn compare(ours: &[f32], reference: &[f32]) -> (f32, f32, f32) {
    let a = 8400;
    assert_eq!(ours.len(), reference.len());
    let (mut boxes, mut rel, mut scores) = (0f32, 0f32, 0f32);
    for (i, (x, y)) in ours.iter().zip(reference).enumerate() {
        let d = (x - y).abs();
        assert!(d.is_finite(), "non-finite value at {i}: {x} vs {y}");
        if i < 4 * a {
            boxes = boxes.max(d);
            rel = rel.max(d / y.abs().max(1.0));
        } else {
            scores = scores.max(d);
        }
    }
    (boxes, rel, scores)
}

fn input() -> Tensor {
    let x = read_f32(&fixture("input_messi5_640.f32"));
    Tensor::from_vec(x, (1, 3, 640, 640), &Device::Cpu).unwrap()
}

#[test]
fn matches_the_reference_output() {
    let model = fixture_model();
    let out = model.net.forward(&input()).unwrap();
    assert_eq!(out.dims3().unwrap(), (1, 84, 8400));
    let ours: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    let reference = read_f32(&fixture("output_torch.f32"));
    let (boxes, rel, scores) = compare(&ours, &reference);
    println!("parity: max |Δ| boxes {boxes:.3e} px (relative {rel:.3e}), scores {scores:.3e}");
    // Boxes are input pixels up to ~720: 1e-4 relative. ONNX Runtime on the same
    // model is 2e-5 relative from PyTorch.
    assert!(rel < 1e-4, "boxes differ by {boxes} px, {rel} relative");
    assert!(scores < 1e-4, "scores differ by {scores}");
}

#[test]
fn hub_naming_loads_and_gives_the_same_output() {
    // The candle hub files keep batch-norm unfolded under other names: rename the
    // fixture's tensors that way.
    let renamed: std::collections::HashMap<String, Tensor> = fixture_tensors()
        .into_iter()
        .map(|(k, v)| (reel_infer::weights::to_hub_name(&k).unwrap(), v))
        .collect();
    assert!(renamed.contains_key("net.b2.0.bottleneck.0.cv1.conv.weight"));
    assert!(renamed.contains_key("fpn.n6.cv2.bn.running_var"));
    assert!(renamed.contains_key("head.dfl.conv.weight"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yolov8n_hub.safetensors");
    candle_core::safetensors::save(&renamed, &path).unwrap();
    let net = load_net(&path).unwrap();
    assert_eq!(net.variant(), reel_infer::Variant::N);
    let x = input();
    let output = |net: &reel_infer::YoloV8| -> Vec<f32> {
        net.forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_eq!(
        output(&net),
        output(&fixture_model().net),
        "the same weights under hub names give another output"
    );
}

/// The CPU engine with each kernel set this machine runs, at batch 1 and 2,
/// against PyTorch's output.
#[test]
fn the_cpu_engine_matches_the_reference_with_every_kernel_set() {
    use reel_infer::cpu::{KernelSet, Runner};
    let model = fixture_model();
    let x = read_f32(&fixture("input_messi5_640.f32"));
    let reference = read_f32(&fixture("output_torch.f32"));
    let mut x8 = Vec::with_capacity(2 * x.len());
    for _ in 0..2 {
        x8.extend_from_slice(&x);
    }
    for set in KernelSet::ENGINE {
        if !set.is_supported() {
            println!("note: this CPU cannot run the {set} kernels: not tested here");
            continue;
        }
        let net = model.net.build_cpu_network(set).unwrap();
        for (batch, threads) in [(1, 1), (2, 2)] {
            let mut runner = Runner::new(threads);
            let mut out = vec![0f32; batch * reference.len()];
            let input = if batch == 1 { &x } else { &x8 };
            runner.run(&net, input, batch, 640, 640, &mut out).unwrap();
            for (i, one) in out.chunks_exact(reference.len()).enumerate() {
                let (boxes, rel, scores) = compare(one, &reference);
                println!(
                    "parity {set} batch {batch} threads {threads} image {i}: max |Δ| boxes {boxes:.3e} px (relative {rel:.3e}), scores {scores:.3e}"
                );
                assert!(
                    rel < 1e-4,
                    "{set}: boxes differ by {boxes} px, {rel} relative"
                );
                assert!(scores < 1e-4, "{set}: scores differ by {scores}");
            }
        }
    }
}
