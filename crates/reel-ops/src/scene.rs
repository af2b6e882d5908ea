//! Scene-cut detection: the content detector everyone compares against
//! (PySceneDetect's `detect-content`) and its adaptive variant (`detect-adaptive`).
//!
//! Each frame is converted to HSV exactly as OpenCV does for 8-bit BGR (hue in
//! 0..=179, saturation and value in 0..=255); its score (`content_val`) is the
//! weighted mean of the mean absolute differences of the three channels against the
//! previous frame. The first frame scores 0 (there is nothing to compare with).
//!
//! * [`ContentDetector`]: a cut where `content_val >= threshold` (27), kept or merged
//!   by the minimum-scene-length filter (15 frames) in PySceneDetect 0.7's `merge`
//!   mode (the default) or its `suppress` mode.
//! * [`AdaptiveDetector`]: a cut where the frame's score, divided by the mean score of
//!   the `window_width` frames on each side, reaches `adaptive_threshold` (3) and the
//!   score itself reaches `min_content_val` (15), at least `min_scene_len` frames
//!   after the previous cut. Decisions lag `window_width` frames behind the input.
//!
//! A cut is the 0-based index of the first frame of the new scene. Frame indices
//! passed in are those of the stream (so minimum lengths count skipped frames too).
//! PySceneDetect first shrinks frames to about 256 pixels on their longer side
//! ([`auto_downscale_size`]); the caller feeds frames at whatever size it chose.

use std::collections::VecDeque;

use reel_frame::PixelFormat;

use crate::convert::{Bgr, Packed, Rgb, Rgba};
use crate::{OpsError, check_len, frame_len};

/// Fixed-point precision of OpenCV's HSV tables.
const HSV_SHIFT: u32 = 12;
const HSV_ROUND: i32 = 1 << (HSV_SHIFT - 1);

/// `round((255 << 12) / v)`: saturation = `diff * 255 / v` in fixed point.
static SAT_DIV: [i32; 256] = {
    let mut t = [0i32; 256];
    let mut i = 1;
    while i < 256 {
        t[i] = ((255 << HSV_SHIFT) as f64 / i as f64 + 0.5) as i32;
        i += 1;
    }
    t
};

/// `round((180 << 12) / (6 * diff))`: hue sextant to 0..180 in fixed point.
static HUE_DIV: [i32; 256] = {
    let mut t = [0i32; 256];
    let mut i = 1;
    while i < 256 {
        t[i] = ((180 << HSV_SHIFT) as f64 / (6.0 * i as f64) + 0.5) as i32;
        i += 1;
    }
    t
};

/// One pixel to OpenCV's 8-bit HSV (`COLOR_BGR2HSV`): hue 0..=179, saturation and
/// value 0..=255.
#[inline(always)]
pub fn hsv_pixel(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let s = (diff * SAT_DIV[v as usize] + HSV_ROUND) >> HSV_SHIFT;
    // Branch-free sextant choice, as OpenCV writes it: red max, else green max,
    // else blue max.
    let vr = -i32::from(v == r);
    let vg = -i32::from(v == g);
    let h = (vr & (g - b)) + (!vr & ((vg & (b - r + 2 * diff)) + (!vg & (r - g + 4 * diff))));
    let mut h = (h * HUE_DIV[diff as usize] + HSV_ROUND) >> HSV_SHIFT;
    if h < 0 {
        h += 180;
    }
    [h as u8, s as u8, v as u8]
}

/// Converts a packed RGB24, BGR24 or RGBA picture to interleaved HSV bytes
/// (`dst`: 3 bytes per pixel), exactly as OpenCV's `cvtColor(COLOR_BGR2HSV)`.
pub fn to_hsv(
    src: &[u8],
    format: PixelFormat,
    width: u32,
    height: u32,
    dst: &mut [u8],
) -> Result<(), OpsError> {
    let len = frame_len(format, width, height)?;
    check_len(len, src.len())?;
    let pixels = width as usize * height as usize;
    check_len(pixels * 3, dst.len())?;
    fn run<P: Packed>(src: &[u8], dst: &mut [u8]) {
        for (d, p) in dst.chunks_exact_mut(3).zip(src.chunks_exact(P::BPP)) {
            d.copy_from_slice(&hsv_pixel(p[P::R], p[P::G], p[P::B]));
        }
    }
    match format {
        PixelFormat::Bgr24 => run::<Bgr>(src, dst),
        PixelFormat::Rgb24 => run::<Rgb>(src, dst),
        PixelFormat::Rgba => run::<Rgba>(src, dst),
        other => {
            return Err(OpsError::Unsupported {
                from: other,
                to: PixelFormat::Bgr24,
            });
        }
    }
    Ok(())
}

/// How much each HSV channel counts in a frame's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Weight of the hue difference.
    pub hue: f64,
    /// Weight of the saturation difference.
    pub sat: f64,
    /// Weight of the value (brightness) difference.
    pub lum: f64,
}

impl Default for Weights {
    /// PySceneDetect's defaults: 1, 1, 1.
    fn default() -> Self {
        Self {
            hue: 1.0,
            sat: 1.0,
            lum: 1.0,
        }
    }
}

impl Weights {
    /// Only the value channel (PySceneDetect's `luma_only`): cheaper, blind to hue.
    pub const LUMA_ONLY: Weights = Weights {
        hue: 0.0,
        sat: 0.0,
        lum: 1.0,
    };
}

/// A frame's score against the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContentScore {
    /// The weighted mean of the three deltas: what thresholds compare against.
    pub content_val: f64,
    /// Mean absolute hue difference (0 when its weight is 0 and it was skipped).
    pub delta_hue: f64,
    /// Mean absolute saturation difference (0 when skipped).
    pub delta_sat: f64,
    /// Mean absolute value difference.
    pub delta_lum: f64,
}

/// Computes [`ContentScore`]s: keeps the previous frame's HSV planes (allocated at
/// the first frame, reused after). Hue-only weights of zero skip hue and saturation.
#[derive(Debug, Clone)]
pub struct HsvDelta {
    weights: Weights,
    prev: Vec<u8>,
    cur: Vec<u8>,
    size: Option<(u32, u32)>,
}

impl HsvDelta {
    /// A scorer with `weights`.
    pub fn new(weights: Weights) -> Self {
        Self {
            weights,
            prev: Vec::new(),
            cur: Vec::new(),
            size: None,
        }
    }

    /// Forgets the previous frame: the next one scores `None`.
    pub fn reset(&mut self) {
        self.size = None;
    }

    /// Scores the next frame (packed RGB24, BGR24 or RGBA) against the previous
    /// one; `None` for the first frame, or after the size changed.
    pub fn push(
        &mut self,
        frame: &[u8],
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<Option<ContentScore>, OpsError> {
        check_len(frame_len(format, width, height)?, frame.len())?;
        let pixels = width as usize * height as usize;
        let first = self.size != Some((width, height));
        if first {
            // Size known once: the buffers never grow again for this stream.
            self.prev.resize(pixels * 3, 0);
            self.cur.resize(pixels * 3, 0);
            self.size = Some((width, height));
        }
        let hue_sat = self.weights.hue != 0.0 || self.weights.sat != 0.0;
        let cur = &mut self.cur[..pixels * 3];
        let prev = &self.prev[..pixels * 3];
        let sums = match (format, hue_sat) {
            (PixelFormat::Bgr24, true) => delta_pass::<Bgr, true>(frame, prev, cur),
            (PixelFormat::Bgr24, false) => delta_pass::<Bgr, false>(frame, prev, cur),
            (PixelFormat::Rgb24, true) => delta_pass::<Rgb, true>(frame, prev, cur),
            (PixelFormat::Rgb24, false) => delta_pass::<Rgb, false>(frame, prev, cur),
            (PixelFormat::Rgba, true) => delta_pass::<Rgba, true>(frame, prev, cur),
            (PixelFormat::Rgba, false) => delta_pass::<Rgba, false>(frame, prev, cur),
            (other, _) => {
                self.size = None;
                return Err(OpsError::Unsupported {
                    from: other,
                    to: PixelFormat::Bgr24,
                });
            }
        };
        std::mem::swap(&mut self.prev, &mut self.cur);
        if first {
            return Ok(None);
        }
        // The same arithmetic, in the same order, as PySceneDetect: each delta is an
        // exact integer sum over the pixel count; the score their weighted mean.
        let n = pixels as f64;
        let (dh, ds, dl) = (sums[0] as f64 / n, sums[1] as f64 / n, sums[2] as f64 / n);
        let w = self.weights;
        let total = w.hue.abs() + w.sat.abs() + w.lum.abs();
        let content_val = if total > 0.0 {
            (dh * w.hue + ds * w.sat + dl * w.lum) / total
        } else {
            0.0
        };
        Ok(Some(ContentScore {
            content_val,
            delta_hue: dh,
            delta_sat: ds,
            delta_lum: dl,
        }))
    }
}

/// Pixels converted per step of the HSV pass: enough for wide vectors, small
/// enough for registers and L1.
const BLOCK: usize = 32;

/// HSV of `BLOCK` packed pixels into three planar blocks. In three passes so the
/// compiler vectorises the first and the last: channels apart with max and min;
/// the two table lookups (scalar); the branch-free arithmetic.
#[inline(always)]
fn hsv_block<P: Packed>(src: &[u8], h: &mut [u8; BLOCK], s: &mut [u8; BLOCK], v: &mut [u8; BLOCK]) {
    let src = &src[..BLOCK * P::BPP];
    let (mut r, mut g, mut b, mut diff) = ([0u8; BLOCK], [0u8; BLOCK], [0u8; BLOCK], [0u8; BLOCK]);
    for (i, p) in src.chunks_exact(P::BPP).enumerate() {
        let (pr, pg, pb) = (p[P::R], p[P::G], p[P::B]);
        r[i] = pr;
        g[i] = pg;
        b[i] = pb;
        v[i] = pr.max(pg).max(pb);
        diff[i] = v[i] - pr.min(pg).min(pb);
    }
    let (mut sat_div, mut hue_div) = ([0i32; BLOCK], [0i32; BLOCK]);
    for i in 0..BLOCK {
        sat_div[i] = SAT_DIV[usize::from(v[i])];
        hue_div[i] = HUE_DIV[usize::from(diff[i])];
    }
    for i in 0..BLOCK {
        let (ri, gi, bi, d) = (
            i32::from(r[i]),
            i32::from(g[i]),
            i32::from(b[i]),
            i32::from(diff[i]),
        );
        let max = i32::from(v[i]);
        s[i] = ((d * sat_div[i] + HSV_ROUND) >> HSV_SHIFT) as u8;
        let vr = -i32::from(max == ri);
        let vg = -i32::from(max == gi);
        let num = (vr & (gi - bi)) + (!vr & ((vg & (bi - ri + 2 * d)) + (!vg & (ri - gi + 4 * d))));
        let hue = (num * hue_div[i] + HSV_ROUND) >> HSV_SHIFT;
        h[i] = (hue + (180 & (hue >> 31))) as u8;
    }
}

/// Sums `|new - old|` over two equal blocks and copies `new` over `old`'s twin.
#[inline(always)]
fn diff_and_store(new: &[u8; BLOCK], old: &[u8], out: &mut [u8]) -> u32 {
    let (old, out) = (&old[..BLOCK], &mut out[..BLOCK]);
    out.copy_from_slice(new);
    new.iter()
        .zip(old)
        .map(|(&a, &b)| u32::from(a.abs_diff(b)))
        .sum()
}

crate::simd::multiversion! {
    /// Converts `frame` to HSV into the planar `cur` (H plane, S plane, V plane) and
    /// sums the absolute differences with `prev` per channel. Without `HUE_SAT`, only
    /// the value plane is computed and compared.
    fn delta_pass[P: Packed, const HUE_SAT: bool](frame: &[u8], prev: &[u8], cur: &mut [u8]) -> [u64; 3] {
        let n = prev.len() / 3;
        let (prev_h, rest) = prev.split_at(n);
        let (prev_s, prev_v) = rest.split_at(n);
        let (cur_h, rest) = cur.split_at_mut(n);
        let (cur_s, cur_v) = rest.split_at_mut(n);
        let mut sums = [0u64; 3];
        let (mut h, mut s, mut v) = ([0u8; BLOCK], [0u8; BLOCK], [0u8; BLOCK]);
        let whole = n / BLOCK * BLOCK;
        for start in (0..whole).step_by(BLOCK) {
            let end = start + BLOCK;
            let src = &frame[start * P::BPP..end * P::BPP];
            if HUE_SAT {
                hsv_block::<P>(src, &mut h, &mut s, &mut v);
                sums[0] += u64::from(diff_and_store(&h, &prev_h[start..end], &mut cur_h[start..end]));
                sums[1] += u64::from(diff_and_store(&s, &prev_s[start..end], &mut cur_s[start..end]));
            } else {
                for (out, p) in v.iter_mut().zip(src.chunks_exact(P::BPP)) {
                    *out = p[P::R].max(p[P::G]).max(p[P::B]);
                }
            }
            sums[2] += u64::from(diff_and_store(&v, &prev_v[start..end], &mut cur_v[start..end]));
        }
        // The last partial block, pixel by pixel.
        for i in whole..n {
            let p = &frame[i * P::BPP..i * P::BPP + 3];
            let hsv = hsv_pixel(p[P::R], p[P::G], p[P::B]);
            if HUE_SAT {
                sums[0] += u64::from(hsv[0].abs_diff(prev_h[i]));
                sums[1] += u64::from(hsv[1].abs_diff(prev_s[i]));
                cur_h[i] = hsv[0];
                cur_s[i] = hsv[1];
            }
            sums[2] += u64::from(hsv[2].abs_diff(prev_v[i]));
            cur_v[i] = hsv[2];
        }
        sums
    }
    avx2 = delta_pass_avx2, generic = [P, HUE_SAT]
}

/// How the minimum scene length is enforced (PySceneDetect's `--filter-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterMode {
    /// A frame above the threshold within the minimum length of the previous one
    /// above it (after a first cut) starts a merge: bursts shorter than the minimum
    /// length (flashes) make no cut; a longer burst, or a later frame above the
    /// threshold, makes one at its last high frame, reported once a minimum length
    /// of frames below the threshold follows. PySceneDetect 0.7's default.
    #[default]
    Merge,
    /// Cuts closer than the minimum length to the previous cut are dropped.
    Suppress,
}

/// The content detector's cut threshold when nothing else is asked (PySceneDetect's).
pub const DEFAULT_THRESHOLD: f64 = 27.0;

/// The shortest scene, in frames, when nothing else is asked (PySceneDetect's).
pub const DEFAULT_MIN_SCENE_LEN: u64 = 15;

/// Options of the [`ContentDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContentConfig {
    /// Score at or above which a frame starts a new scene (27).
    pub threshold: f64,
    /// Minimum scene length in frames (15); 0 disables the filter.
    pub min_scene_len: u64,
    /// Channel weights (1, 1, 1).
    pub weights: Weights,
    /// How the minimum length is enforced (merge).
    pub filter_mode: FilterMode,
}

impl Default for ContentConfig {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            min_scene_len: DEFAULT_MIN_SCENE_LEN,
            weights: Weights::default(),
            filter_mode: FilterMode::Merge,
        }
    }
}

/// The minimum-scene-length filter over per-frame threshold decisions.
#[derive(Debug, Clone)]
struct FlashFilter {
    mode: FilterMode,
    length: u64,
    /// The last frame above the threshold (or, in suppress mode, the last cut);
    /// starts at the first frame seen.
    last_above: Option<u64>,
    merge_enabled: bool,
    merge_triggered: bool,
    merge_start: u64,
}

impl FlashFilter {
    fn new(mode: FilterMode, length: u64) -> Self {
        Self {
            mode,
            length,
            last_above: None,
            merge_enabled: false,
            merge_triggered: false,
            merge_start: 0,
        }
    }

    /// The cut this frame's decision yields, if any.
    fn filter(&mut self, frame: u64, above: bool) -> Option<u64> {
        if self.length == 0 {
            return above.then_some(frame);
        }
        let last = *self.last_above.get_or_insert(frame);
        let length_met = frame.saturating_sub(last) >= self.length;
        match self.mode {
            FilterMode::Suppress => {
                if above && length_met {
                    self.last_above = Some(frame);
                    Some(frame)
                } else {
                    None
                }
            }
            FilterMode::Merge => {
                if above {
                    self.last_above = Some(frame);
                }
                if self.merge_triggered {
                    // Merging: the burst ends once a full minimum length passes
                    // below the threshold; the cut goes at its last high frame.
                    let last = self.last_above.unwrap_or(frame);
                    if length_met && !above && last.saturating_sub(self.merge_start) >= self.length
                    {
                        self.merge_triggered = false;
                        return Some(last);
                    }
                    return None;
                }
                if !above {
                    return None;
                }
                if length_met {
                    self.merge_enabled = true;
                    return Some(frame);
                }
                // Too close to the previous high frame: merge, but only once a
                // first cut exists.
                if self.merge_enabled {
                    self.merge_triggered = true;
                    self.merge_start = frame;
                }
                None
            }
        }
    }
}

/// What a detector made of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SceneStep {
    /// This frame's score against the previous one (`None` for the first frame).
    pub score: Option<ContentScore>,
    /// A cut decided now: the index of the first frame of the new scene, which
    /// may be an earlier frame (merged bursts, the adaptive window).
    pub cut: Option<u64>,
    /// For the adaptive detector, the ratio decided now: `(frame, ratio)` for the
    /// frame `window_width` frames back.
    pub adaptive_ratio: Option<(u64, f64)>,
}

/// PySceneDetect's `detect-content`. Allocates at its first frame only.
#[derive(Debug, Clone)]
pub struct ContentDetector {
    config: ContentConfig,
    delta: HsvDelta,
    filter: FlashFilter,
}

impl ContentDetector {
    /// A detector with `config`.
    pub fn new(config: ContentConfig) -> Self {
        Self {
            config,
            delta: HsvDelta::new(config.weights),
            filter: FlashFilter::new(config.filter_mode, config.min_scene_len),
        }
    }

    /// Its options.
    pub fn config(&self) -> &ContentConfig {
        &self.config
    }

    /// Feeds frame `index` (packed RGB24, BGR24 or RGBA, every frame of the stream
    /// or every analysed one, in order).
    pub fn process(
        &mut self,
        index: u64,
        frame: &[u8],
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<SceneStep, OpsError> {
        let score = self.delta.push(frame, format, width, height)?;
        Ok(SceneStep {
            score,
            cut: self.process_score(index, score.map_or(0.0, |s| s.content_val)),
            adaptive_ratio: None,
        })
    }

    /// Feeds an already computed score (0 for the first frame): the threshold and
    /// the minimum-length filter only.
    pub fn process_score(&mut self, index: u64, content_val: f64) -> Option<u64> {
        self.filter
            .filter(index, content_val >= self.config.threshold)
    }
}

/// Options of the [`AdaptiveDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    /// Ratio of a frame's score to its neighbours' mean that makes a cut (3).
    pub adaptive_threshold: f64,
    /// Minimum scene length in frames (15).
    pub min_scene_len: u64,
    /// Frames on each side of the frame judged (2).
    pub window_width: u32,
    /// Score a frame needs besides the ratio (15).
    pub min_content_val: f64,
    /// Channel weights (1, 1, 1).
    pub weights: Weights,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            adaptive_threshold: 3.0,
            min_scene_len: DEFAULT_MIN_SCENE_LEN,
            window_width: 2,
            min_content_val: 15.0,
            weights: Weights::default(),
        }
    }
}

/// PySceneDetect's `detect-adaptive`. Allocates at construction and first frame only.
#[derive(Debug, Clone)]
pub struct AdaptiveDetector {
    config: AdaptiveConfig,
    delta: HsvDelta,
    /// The last `2 * window_width + 1` (frame, score) pairs.
    window: VecDeque<(u64, f64)>,
    last_cut: Option<u64>,
}

impl AdaptiveDetector {
    /// A detector with `config` (a `window_width` of 0 is taken as 1).
    pub fn new(mut config: AdaptiveConfig) -> Self {
        config.window_width = config.window_width.max(1);
        let span = 2 * config.window_width as usize + 1;
        Self {
            config,
            delta: HsvDelta::new(config.weights),
            window: VecDeque::with_capacity(span),
            last_cut: None,
        }
    }

    /// Its options.
    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// Feeds frame `index` (packed RGB24, BGR24 or RGBA, in order).
    pub fn process(
        &mut self,
        index: u64,
        frame: &[u8],
        format: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<SceneStep, OpsError> {
        let score = self.delta.push(frame, format, width, height)?;
        let (ratio, cut) = self.process_score(index, score.map_or(0.0, |s| s.content_val));
        Ok(SceneStep {
            score,
            cut,
            adaptive_ratio: ratio,
        })
    }

    /// Feeds an already computed score (0 for the first frame). Returns the ratio
    /// decided now for the frame `window_width` back, and the cut if it makes one.
    pub fn process_score(
        &mut self,
        index: u64,
        content_val: f64,
    ) -> (Option<(u64, f64)>, Option<u64>) {
        let w = self.config.window_width as usize;
        let last_cut = *self.last_cut.get_or_insert(index);
        if self.window.len() == 2 * w + 1 {
            self.window.pop_front();
        }
        self.window.push_back((index, content_val));
        if self.window.len() < 2 * w + 1 {
            return (None, None);
        }
        let (target, score) = self.window[w];
        // Summed in window order, as PySceneDetect does, for identical rounding.
        let mut sum = 0.0;
        for (i, &(_, s)) in self.window.iter().enumerate() {
            if i != w {
                sum += s;
            }
        }
        let average = sum / (2.0 * w as f64);
        let ratio = if average.abs() >= 1e-5 {
            (score / average).min(255.0)
        } else if score >= self.config.min_content_val {
            255.0
        } else {
            0.0
        };
        let above = ratio >= self.config.adaptive_threshold && score >= self.config.min_content_val;
        let cut =
            (above && target.saturating_sub(last_cut) >= self.config.min_scene_len).then(|| {
                self.last_cut = Some(target);
                target
            });
        (Some((target, ratio)), cut)
    }
}

/// The size PySceneDetect analyses a `width` x `height` video at by default: the
/// longer side shrunk to 256 by the factor `longer / 256` (no shrinking below 256),
/// each side rounded (half to even), at least 1. It shrinks with OpenCV's
/// `INTER_LINEAR`, i.e. [`Filter::Bilinear`](crate::resize::Filter::Bilinear).
pub fn auto_downscale_size(width: u32, height: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer < 256 {
        return (width, height);
    }
    let factor = f64::from(longer) / 256.0;
    let side = |s: u32| ((f64::from(s) / factor).round_ties_even() as u32).max(1);
    (side(width), side(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_of_known_colours() {
        // Hue in OpenCV's 0..180 scale.
        assert_eq!(hsv_pixel(255, 0, 0), [0, 255, 255]);
        assert_eq!(hsv_pixel(0, 255, 0), [60, 255, 255]);
        assert_eq!(hsv_pixel(0, 0, 255), [120, 255, 255]);
        assert_eq!(hsv_pixel(255, 255, 0), [30, 255, 255]);
        assert_eq!(hsv_pixel(255, 0, 255), [150, 255, 255]);
        assert_eq!(hsv_pixel(128, 128, 128), [0, 0, 128]);
        assert_eq!(hsv_pixel(0, 0, 0), [0, 0, 0]);
        // Reds just below 360 degrees wrap to the top of the range.
        assert_eq!(hsv_pixel(255, 0, 10)[0], 179);
    }

    fn feed_content(config: ContentConfig, scores: &[f64]) -> Vec<u64> {
        let mut d = ContentDetector::new(config);
        scores
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| d.process_score(i as u64, s))
            .collect()
    }

    fn scores(n: usize, high: &[usize]) -> Vec<f64> {
        (0..n)
            .map(|i| if high.contains(&i) { 40.0 } else { 1.0 })
            .collect()
    }

    #[test]
    fn cuts_need_the_threshold_and_the_minimum_length() {
        let c = ContentConfig::default();
        // A cut at 14 is too close to the first frame; 15 is not.
        assert_eq!(feed_content(c, &scores(40, &[14])), Vec::<u64>::new());
        assert_eq!(feed_content(c, &scores(40, &[15])), vec![15]);
        // Exactly the threshold counts.
        let mut s = scores(40, &[]);
        s[20] = 27.0;
        assert_eq!(feed_content(c, &s), vec![20]);
        s[20] = 26.999;
        assert_eq!(feed_content(c, &s), Vec::<u64>::new());
    }

    #[test]
    fn merge_mode_absorbs_short_bursts() {
        let c = ContentConfig::default();
        // A cut at 20, then a flash at 25..27, shorter than the minimum length: no
        // cut for it.
        assert_eq!(feed_content(c, &scores(60, &[20, 25, 26, 27])), vec![20]);
        // After such a flash the next high frame (50) is a cut, reported once 15
        // quiet frames follow it.
        let mut d = ContentDetector::new(c);
        let found: Vec<(usize, u64)> = scores(80, &[20, 25, 50])
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| d.process_score(i as u64, s).map(|cut| (i, cut)))
            .collect();
        assert_eq!(found, vec![(20, 20), (65, 50)]);
        // A burst longer than the minimum length (fast motion, 25..=45) ends in a
        // cut at its last frame.
        let burst: Vec<usize> = std::iter::once(20).chain(25..=45).collect();
        assert_eq!(feed_content(c, &scores(80, &burst)), vec![20, 45]);
        // If the video ends before a merge settles, nothing more is reported (as in
        // PySceneDetect, which does not flush it).
        assert_eq!(feed_content(c, &scores(45, &[20, 25, 35])), vec![20]);
        // Before the first cut nothing merges: early high frames only move the
        // reference point.
        assert_eq!(feed_content(c, &scores(60, &[10, 20, 40])), vec![40]);
    }

    #[test]
    fn suppress_mode_drops_cuts_too_close_to_the_previous() {
        let c = ContentConfig {
            filter_mode: FilterMode::Suppress,
            ..ContentConfig::default()
        };
        assert_eq!(
            feed_content(c, &scores(60, &[20, 25, 26, 35, 50])),
            vec![20, 35, 50]
        );
        let c = ContentConfig {
            min_scene_len: 0,
            ..c
        };
        assert_eq!(feed_content(c, &scores(30, &[1, 2, 3])), vec![1, 2, 3]);
    }

    #[test]
    fn adaptive_compares_with_the_neighbours() {
        let mut d = AdaptiveDetector::new(AdaptiveConfig::default());
        // Steady motion (scores ~10) with a spike of 40 at 30: ratio 4, a cut; a
        // bump to 20 among 10s is a ratio of 2, not a cut.
        let mut cuts = Vec::new();
        let mut ratios = Vec::new();
        for i in 0..60u64 {
            let s = match i {
                0 => 0.0,
                30 => 40.0,
                45 => 20.0,
                _ => 10.0,
            };
            let (r, c) = d.process_score(i, s);
            ratios.extend(r);
            cuts.extend(c);
        }
        assert_eq!(cuts, vec![30]);
        assert_eq!(ratios.len(), 56);
        assert_eq!(ratios[0].0, 2);
        assert!(
            ratios
                .iter()
                .any(|&(f, r)| f == 30 && (r - 4.0).abs() < 1e-12)
        );
        assert!(
            ratios
                .iter()
                .any(|&(f, r)| f == 45 && (r - 2.0).abs() < 1e-12)
        );
    }

    #[test]
    fn adaptive_respects_min_content_val_and_length() {
        let mut d = AdaptiveDetector::new(AdaptiveConfig::default());
        // Over a still background (zeros) a spike of 14 is below min_content_val;
        // a spike of 20 at frame 18 is a cut (ratio 255), one at 26 is too close.
        let mut cuts = Vec::new();
        for i in 0..40u64 {
            let s = match i {
                5 => 14.0,
                18 => 20.0,
                26 => 20.0,
                _ => 0.0,
            };
            cuts.extend(d.process_score(i, s).1);
        }
        assert_eq!(cuts, vec![18]);
    }

    #[test]
    fn auto_downscale_sizes() {
        assert_eq!(auto_downscale_size(1280, 720), (256, 144));
        assert_eq!(auto_downscale_size(1920, 1080), (256, 144));
        assert_eq!(auto_downscale_size(768, 576), (256, 192));
        assert_eq!(auto_downscale_size(720, 1280), (144, 256));
        assert_eq!(auto_downscale_size(200, 100), (200, 100));
        assert_eq!(auto_downscale_size(640, 360), (256, 144));
        assert_eq!(auto_downscale_size(300, 200), (256, 171));
    }

    #[test]
    fn scores_of_synthetic_frames() {
        // Two flat frames: pure red then pure blue. Hue 0 -> 120, value equal,
        // saturation equal: content_val = 120 / 3 = 40.
        let red = [0u8, 0, 255].repeat(16);
        let blue = [255u8, 0, 0].repeat(16);
        let mut d = HsvDelta::new(Weights::default());
        assert_eq!(d.push(&red, PixelFormat::Bgr24, 4, 4).unwrap(), None);
        let s = d.push(&blue, PixelFormat::Bgr24, 4, 4).unwrap().unwrap();
        assert_eq!((s.delta_hue, s.delta_sat, s.delta_lum), (120.0, 0.0, 0.0));
        assert_eq!(s.content_val, 40.0);
        // Luma only skips hue and saturation.
        let mut d = HsvDelta::new(Weights::LUMA_ONLY);
        d.push(&red, PixelFormat::Bgr24, 4, 4).unwrap();
        let dark = [0u8, 0, 100].repeat(16);
        let s = d.push(&dark, PixelFormat::Bgr24, 4, 4).unwrap().unwrap();
        assert_eq!(
            (s.delta_hue, s.delta_lum, s.content_val),
            (0.0, 155.0, 155.0)
        );
        // Unsupported formats are refused.
        assert!(matches!(
            d.push(&[0; 24], PixelFormat::Yuv420p, 4, 4),
            Err(OpsError::Unsupported { .. })
        ));
    }
}
