//! Our letterbox of the real photograph against the reference input tensor.

use reel_infer::ImageRef;
use reel_infer::preprocess::Preprocessor;

use crate::{fixture, messi, read_f32};

#[test]
fn letterboxing_messi5_matches_the_reference_input() {
    let Some(img) = messi() else { return };
    let (w, h) = img.dimensions();
    assert_eq!((w, h), (548, 342));
    let mut prep = Preprocessor::new(640);
    let mut ours = vec![0f32; prep.floats_per_image()];
    let lb = prep
        .image_into(
            &ImageRef {
                data: img.as_raw(),
                width: w,
                height: h,
            },
            &mut ours,
        )
        .unwrap();
    assert_eq!(
        (lb.new_w, lb.new_h, lb.top, lb.bottom()),
        (640, 399, 120, 121)
    );
    let reference = read_f32(&fixture("input_messi5_640.f32"));
    assert_eq!(ours.len(), reference.len());
    let mut max = 0f32;
    let mut sum = 0f64;
    let mut padding_exact = true;
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        let d = (a - b).abs();
        max = max.max(d);
        sum += f64::from(d);
        let row = (i / 640) % 640;
        if !(120..519).contains(&row) && d != 0.0 {
            padding_exact = false;
        }
    }
    let mean = sum / ours.len() as f64;
    println!(
        "letterbox: max |Δ| {max:.4} ({:.1}/255), mean |Δ| {mean:.2e} ({:.3}/255)",
        max * 255.0,
        mean * 255.0
    );
    assert!(padding_exact, "the grey padding differs from the reference");
    // The reference decoded the JPEG with libjpeg; we decode with the `image`
    // crate (the resize is OpenCV's to the bit, as reel-ops' tests show): single
    // pixels differ by a few levels where the JPEG decoders' chroma upsampling
    // differs, the mean stays well under one level.
    assert!(max <= 8.0 / 255.0, "max difference {max}");
    assert!(mean <= 0.4 / 255.0, "mean difference {mean}");
}
