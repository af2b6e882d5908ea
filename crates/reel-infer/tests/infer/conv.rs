//! The CPU engine's convolution against candle's `conv2d`, one layer at a time:
//! every convolution shape of YOLOv8 n, s and m (derived here again from
//! `yolov8.yaml`), at odd and even sizes, stride 1 and 2 (the borders are the
//! padding), batch 2, each activation, the bottleneck's residual, class counts
//! other than 80; and the whole network with 3 classes against candle's graph.

use std::collections::BTreeSet;

use candle_core::{Device, Tensor};
use reel_infer::cpu::{self, Act, KernelSet};

use crate::{fixture, fixture_tensors, load_net, read_f32};

/// (depth, width, most channels) of n, s, m.
const SCALES: [(f64, f64, usize); 3] = [(0.33, 0.25, 1024), (0.33, 0.50, 1024), (0.67, 0.75, 768)];

/// Every (input channels, output channels, kernel, stride, activation, residual)
/// of a variant with `nc` classes.
fn shapes(
    (_, wm, max): (f64, f64, usize),
    nc: usize,
) -> BTreeSet<(usize, usize, usize, usize, u8, bool)> {
    let ch = |c: usize| ((c.min(max) as f64 * wm / 8.0).ceil() as usize) * 8;
    let (c64, c128, c256, c512, c1024) = (ch(64), ch(128), ch(256), ch(512), ch(1024));
    let silu = 1u8;
    let mut s = BTreeSet::new();
    let mut conv = |c1, c2, k, st| {
        s.insert((c1, c2, k, st, silu, false));
    };
    for (c1, c2) in [
        (3, c64),
        (c64, c128),
        (c128, c256),
        (c256, c512),
        (c512, c1024),
        (c256, c256),
        (c512, c512),
    ] {
        conv(c1, c2, 3, 2);
    }
    let mut c2f = |c1: usize, c2: usize, n: usize, shortcut: bool| {
        let c = c2 / 2;
        s.insert((c1, 2 * c, 1, 1, silu, false));
        s.insert(((2 + n) * c, c2, 1, 1, silu, false));
        s.insert((c, c, 3, 1, silu, false));
        s.insert((c, c, 3, 1, silu, shortcut));
    };
    c2f(c128, c128, 1, true);
    c2f(c256, c256, 2, true);
    c2f(c512, c512, 2, true);
    c2f(c1024, c1024, 1, true);
    c2f(c1024 + c512, c512, 1, false);
    c2f(c512 + c256, c256, 1, false);
    c2f(c256 + c512, c512, 1, false);
    c2f(c512 + c1024, c1024, 1, false);
    // Repeats only change the concatenation's width: the widths of m's repeats.
    for c2 in [c128, c256, c512, c1024] {
        for n in 1..=4 {
            s.insert(((2 + n) * (c2 / 2), c2, 1, 1, silu, false));
        }
    }
    s.insert((c1024, c1024 / 2, 1, 1, silu, false));
    s.insert((c1024 / 2 * 4, c1024, 1, 1, silu, false));
    let c2 = 16.max(c256 / 4).max(64);
    let c3 = c256.max(nc.min(100));
    for c in [c256, c512, c1024] {
        s.insert((c, c2, 3, 1, silu, false));
        s.insert((c2, c2, 3, 1, silu, false));
        s.insert((c2, 64, 1, 1, 0, false));
        s.insert((c, c3, 3, 1, silu, false));
        s.insert((c3, c3, 3, 1, silu, false));
        s.insert((c3, nc, 1, 1, 2, false));
    }
    s
}

/// Deterministic values in about -1..1.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn act_of(code: u8) -> Act {
    match code {
        0 => Act::None,
        1 => Act::Silu,
        _ => Act::Sigmoid,
    }
}

/// candle's convolution with bias, activation and residual.
#[allow(clippy::too_many_arguments)]
fn reference(
    x: &[f32],
    (n, c1, h, w): (usize, usize, usize, usize),
    wt: &[f32],
    (c2, k): (usize, usize),
    b: &[f32],
    stride: usize,
    act: Act,
    res: Option<&[f32]>,
) -> Vec<f32> {
    let d = Device::Cpu;
    let xt = Tensor::from_slice(x, (n, c1, h, w), &d).unwrap();
    let wt = Tensor::from_slice(wt, (c2, c1, k, k), &d).unwrap();
    let bt = Tensor::from_slice(b, (1, c2, 1, 1), &d).unwrap();
    let mut y = xt
        .conv2d(&wt, k / 2, stride, 1, 1)
        .unwrap()
        .broadcast_add(&bt)
        .unwrap();
    y = match act {
        Act::None => y,
        Act::Silu => y.silu().unwrap(),
        Act::Sigmoid => candle_nn::ops::sigmoid(&y).unwrap(),
    };
    if let Some(r) = res {
        y = (y.clone() + Tensor::from_slice(r, y.dims4().unwrap(), &d).unwrap()).unwrap();
    }
    y.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn every_yolov8_convolution_shape_matches_candle() {
    let mut all = BTreeSet::new();
    for scale in SCALES {
        for nc in [80, 3, 1] {
            all.extend(shapes(scale, nc));
        }
    }
    let sets: Vec<KernelSet> = KernelSet::ENGINE
        .into_iter()
        .filter(|k| k.is_supported())
        .collect();
    let mut worst = 0f32;
    let mut cases = 0;
    for (i, &(c1, c2, k, stride, act, residual)) in all.iter().enumerate() {
        // Odd and even sizes, wider than one tile, narrower than one; one image and two.
        let (n, h, w) = if i % 2 == 0 { (1, 5, 29) } else { (2, 6, 7) };
        let x = values(n * c1 * h * w, i as u64 + 1);
        let scale = 1.0 / ((c1 * k * k) as f32).sqrt();
        let wt: Vec<f32> = values(c2 * c1 * k * k, 1000 + i as u64)
            .iter()
            .map(|v| v * scale)
            .collect();
        let b = values(c2, 5000 + i as u64);
        let (ho, wo) = (
            (h + 2 * (k / 2) - k) / stride + 1,
            (w + 2 * (k / 2) - k) / stride + 1,
        );
        let res = residual.then(|| values(n * c2 * ho * wo, 9000 + i as u64));
        let act = act_of(act);
        let want = reference(
            &x,
            (n, c1, h, w),
            &wt,
            (c2, k),
            &b,
            stride,
            act,
            res.as_deref(),
        );
        for &set in &sets {
            let threads = 1 + i % 2;
            let got = cpu::conv2d(
                set,
                threads,
                &x,
                (n, c1, h, w),
                &wt,
                (c2, k),
                &b,
                stride,
                act,
                res.as_deref(),
            )
            .unwrap();
            assert_eq!(got.len(), want.len());
            let d = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            assert!(
                d < 2e-5,
                "{set}: {c1}->{c2} k{k} s{stride} {act:?} residual {residual} at {h}x{w}: relative difference {d}"
            );
            worst = worst.max(d);
            cases += 1;
        }
    }
    println!(
        "conv2d: {} shapes x {} kernel sets ({cases} cases) against candle, worst relative difference {worst:.2e}",
        all.len(),
        sets.len()
    );
    assert!(all.len() > 60, "only {} shapes", all.len());
}

/// The Winograd F(2×2, 3×3) path with each kernel set against candle: rows long
/// enough to be cut into several chunks of tiles, an odd last row and column
/// (left to the direct kernel), channels that are not whole vectors, the
/// bottleneck's residual, one thread and two.
#[test]
fn winograd_convolutions_match_candle() {
    let sets: Vec<KernelSet> = KernelSet::ENGINE
        .into_iter()
        .filter(|k| k.is_supported())
        .collect();
    let mut worst = 0f32;
    for (i, &(c1, c2, residual, (n, h, w), threads)) in [
        (64, 64, true, (1, 9, 61), 2),
        (80, 80, false, (1, 8, 50), 1),
        (72, 88, true, (2, 7, 9), 2),
        (256, 64, false, (1, 4, 6), 2),
        (64, 80, false, (1, 1, 3), 2),
    ]
    .iter()
    .enumerate()
    {
        assert!(cpu::winograd_applies(3, 1, c1, c2), "{c1}->{c2}");
        let x = values(n * c1 * h * w, 300 + i as u64);
        let scale = 1.0 / ((c1 * 9) as f32).sqrt();
        let wt: Vec<f32> = values(c2 * c1 * 9, 400 + i as u64)
            .iter()
            .map(|v| v * scale)
            .collect();
        let b = values(c2, 500 + i as u64);
        let res = residual.then(|| values(n * c2 * h * w, 600 + i as u64));
        let want = reference(
            &x,
            (n, c1, h, w),
            &wt,
            (c2, 3),
            &b,
            1,
            Act::Silu,
            res.as_deref(),
        );
        for &set in &sets {
            let got = cpu::conv2d(
                set,
                threads,
                &x,
                (n, c1, h, w),
                &wt,
                (c2, 3),
                &b,
                1,
                Act::Silu,
                res.as_deref(),
            )
            .unwrap();
            let d = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            assert!(
                d < 2e-5,
                "{set}: Winograd {c1}->{c2} residual {residual} at {n}x{h}x{w}: relative difference {d}"
            );
            worst = worst.max(d);
        }
    }
    println!("Winograd conv2d against candle: worst relative difference {worst:.2e}");
}

#[test]
fn the_network_with_three_classes_matches_candle_at_batch_2() {
    // The fixture with its class branches cut to 3 classes: their width becomes
    // max(64, 3) = 64 channels (from 80), the last convolution 3 outputs.
    let mut t = fixture_tensors();
    let names: Vec<String> = t
        .keys()
        .filter(|k| k.starts_with("model.22.cv3."))
        .cloned()
        .collect();
    for name in names {
        let v = &t[&name];
        // model.22.cv3.{level}.{j}.…: j is the convolution within the branch.
        let j = name.split('.').nth(4).unwrap();
        let last = j == "2";
        let mut cut = v.clone();
        // Output channels (dim 0 of every tensor of the branch).
        cut = cut.narrow(0, 0, if last { 3 } else { 64 }).unwrap();
        // Input channels of the second and third convolutions.
        let second_or_last = j == "1" || (last && name.ends_with("weight"));
        if second_or_last && cut.rank() == 4 {
            cut = cut.narrow(1, 0, 64).unwrap();
        }
        t.insert(name, cut.contiguous().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    let net = load_net(&path).unwrap();
    assert_eq!(net.num_classes(), 3);
    let x = read_f32(&fixture("input_messi5_640.f32"));
    // Two different pictures: the photograph and its mirror, at 640 x 640 and a
    // wide 320 x 640 crop.
    let mut two = x.clone();
    for c in 0..3 {
        for y in 0..640 {
            let row = &mut two[(c * 640 + y) * 640..][..640];
            row.reverse();
        }
    }
    two.extend_from_slice(&x);
    let d = Device::Cpu;
    for (h, w) in [(640, 640), (320, 640)] {
        let mut input = Vec::new();
        for img in two.chunks_exact(3 * 640 * 640) {
            for c in 0..3 {
                for y in 0..h {
                    input.extend_from_slice(&img[(c * 640 + y + (640 - h) / 2) * 640..][..w]);
                }
            }
        }
        let xt = Tensor::from_vec(input, (2, 3, h, w), &d).unwrap();
        let a: Vec<f32> = net
            .forward(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = net
            .forward_candle(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(a.len(), 2 * 7 * cpu::Network::anchors(h, w));
        let anchors = cpu::Network::anchors(h, w);
        let (mut boxes, mut scores) = (0f32, 0f32);
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            let row = (i / anchors) % 7;
            if row < 4 {
                boxes = boxes.max((p - q).abs() / q.abs().max(1.0));
            } else {
                scores = scores.max((p - q).abs());
            }
        }
        println!(
            "3 classes, batch 2 at {h}x{w}: engine vs candle boxes {boxes:.2e} relative, scores {scores:.2e}"
        );
        assert!(
            boxes < 1e-4 && scores < 1e-4,
            "boxes {boxes}, scores {scores}"
        );
    }
}
