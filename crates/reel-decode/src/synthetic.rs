//! `synthetic:` sources: deterministic generated video with its ground truth.
//!
//! A synthetic video is a run of scenes. Each scene has its own background, a base
//! colour of clearly different hue, saturation and brightness from its neighbours,
//! with a static texture (stripes, checks, rings or grain), and its own moving
//! objects: filled rectangles and circles of known colour that drift at a moderate
//! speed and bounce off the edges. Nothing else moves, so a content (HSV-delta) scene
//! detector at threshold 27 finds exactly the scene changes, and the objects' boxes
//! are known to the pixel for every frame.
//!
//! # URI
//!
//! ```text
//! synthetic:scenes?width=640&height=360&fps=30&frames=450&scenes=5&seed=7&objects=2
//! ```
//!
//! Every parameter is optional (the values above are the defaults) and `synthetic:`
//! alone is the default video. `fps` also takes a ratio (`30000/1001`). Scenes are at
//! least [`MIN_SCENE_FRAMES`] frames long, so `frames` must be at least that many
//! times `scenes`, and `scenes` is at most [`MAX_SCENES`]. `objects` (0 to 8) is the number of objects in each scene.
//!
//! # Ground truth
//!
//! [`ground_truth`] (or [`SyntheticSpec::ground_truth`]) gives the cuts, 0-based
//! indices of the first frame of each new scene as a scene detector reports them, the
//! scenes' spans, and every object's box in every frame, in the pixels of the URI's
//! `width` x `height`. Frames delivered at another size carry that size in
//! `meta.source_size`.

use std::fmt::Write as _;

use reel_frame::{BBox, Frame, Label, PixelFormat};
use reel_pool::FramePool;
use serde::Serialize;

use crate::error::DecodeError;
use crate::frame_buffer;
use crate::info::{DecoderInfo, VideoInfo};
use crate::options::DecodeOptions;
use crate::sampling::{Sampler, ScaleControl, Verdict, scaled_size};

/// The shortest scene a synthetic video has, in frames (above the default minimum
/// scene length of 15 that scene detectors use).
pub const MIN_SCENE_FRAMES: u64 = 20;

/// The most objects a scene may have.
pub const MAX_OBJECTS: u32 = 8;

/// The most scenes a synthetic video may have: its plan (a few hundred bytes a
/// scene) is made before the first frame, so it is bounded.
pub const MAX_SCENES: u32 = 10_000;

const SCHEME: &str = "synthetic:";

/// The parameters of a synthetic video, as its URI gives them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticSpec {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Number of frames.
    pub frames: u64,
    /// Number of scenes.
    pub scenes: u32,
    /// The seed every choice derives from.
    pub seed: u64,
    /// Objects per scene.
    pub objects: u32,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            width: 640,
            height: 360,
            fps: 30.0,
            frames: 450,
            scenes: 5,
            seed: 7,
            objects: 2,
        }
    }
}

/// Whether `input` names a synthetic source.
pub fn is_synthetic(input: &str) -> bool {
    input.starts_with(SCHEME)
}

impl SyntheticSpec {
    /// Parses a `synthetic:` URI (see the [module documentation](self)).
    pub fn parse(uri: &str) -> Result<Self, DecodeError> {
        let bad = |reason: String| DecodeError::InvalidInput {
            input: uri.to_string(),
            reason,
        };
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("a synthetic source starts with `synthetic:`".into()))?;
        let (kind, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !(kind.is_empty() || kind == "scenes") {
            return Err(bad(format!(
                "unknown synthetic source `{kind}` (the one kind is `scenes`)"
            )));
        }
        let mut spec = SyntheticSpec::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
            let int = |v: &str| -> Result<u64, DecodeError> {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{key}={v}: not a whole number")))
            };
            let small = |v: &str| -> Result<u32, DecodeError> {
                u32::try_from(int(v)?).map_err(|_| bad(format!("{key}={v}: too large")))
            };
            match key {
                "width" => spec.width = small(value)?,
                "height" => spec.height = small(value)?,
                "frames" => spec.frames = int(value)?,
                "scenes" => spec.scenes = small(value)?,
                "seed" => spec.seed = int(value)?,
                "objects" => spec.objects = small(value)?,
                "fps" => {
                    spec.fps = parse_rate(value).ok_or_else(|| {
                        bad(format!(
                            "fps={value}: not a positive rate (30, 29.97, 30000/1001)"
                        ))
                    })?
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter `{key}` (expected width, height, fps, frames, \
                         scenes, seed, objects)"
                    )));
                }
            }
        }
        spec.validate(uri)?;
        Ok(spec)
    }

    fn validate(&self, uri: &str) -> Result<(), DecodeError> {
        let bad = |reason: String| DecodeError::InvalidInput {
            input: uri.to_string(),
            reason,
        };
        crate::options::Limits::default().check(
            uri,
            u64::from(self.width),
            u64::from(self.height),
        )?;
        if self.width < 16 || self.height < 16 {
            return Err(bad(format!(
                "{}x{} is too small (at least 16x16)",
                self.width, self.height
            )));
        }
        if self.scenes == 0 {
            return Err(bad("scenes must be at least 1".into()));
        }
        if self.scenes > MAX_SCENES {
            // The plan holds every scene: bounded, so that it stays a small
            // constant beside the frame pool's budget.
            return Err(bad(format!(
                "scenes={} (at most {MAX_SCENES})",
                self.scenes
            )));
        }
        if self.frames < MIN_SCENE_FRAMES * u64::from(self.scenes) {
            return Err(bad(format!(
                "{} frames cannot hold {} scenes of at least {MIN_SCENE_FRAMES} frames",
                self.frames, self.scenes
            )));
        }
        if self.objects > MAX_OBJECTS {
            return Err(bad(format!(
                "objects={} (at most {MAX_OBJECTS})",
                self.objects
            )));
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(bad(format!("fps={} (0 < fps <= 1000)", self.fps)));
        }
        Ok(())
    }

    /// The URI that gives this spec.
    pub fn uri(&self) -> String {
        let mut s = String::from("synthetic:scenes?");
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "width={}&height={}&fps={}&frames={}&scenes={}&seed={}&objects={}",
            self.width, self.height, self.fps, self.frames, self.scenes, self.seed, self.objects
        );
        s
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / self.fps
    }

    /// What a probe reports.
    pub fn info(&self, input: &str) -> VideoInfo {
        VideoInfo {
            input: input.to_string(),
            container: Some("synthetic".into()),
            codec: "synthetic".into(),
            pixel_format: "rgb24".into(),
            width: self.width,
            height: self.height,
            rotation: 0,
            fps: self.fps,
            frames: Some(self.frames),
            duration_s: Some(self.duration_s()),
            variable_frame_rate: false,
            bit_rate: None,
            decoder: DecoderInfo::software("synthetic", "scenes"),
        }
    }

    /// The cuts, scenes and object boxes of this video.
    pub fn ground_truth(&self) -> GroundTruth {
        Plan::new(self).ground_truth(self)
    }
}

/// The ground truth of the synthetic video `uri`.
pub fn ground_truth(uri: &str) -> Result<GroundTruth, DecodeError> {
    Ok(SyntheticSpec::parse(uri)?.ground_truth())
}

fn parse_rate(s: &str) -> Option<f64> {
    let v = match s.split_once('/') {
        Some((n, d)) => n.parse::<f64>().ok()? / d.parse::<f64>().ok()?,
        None => s.parse::<f64>().ok()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

/// What a synthetic video contains, frame by frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundTruth {
    /// Width of the pixels the boxes are in.
    pub width: u32,
    /// Height of the pixels the boxes are in.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Number of frames.
    pub frames: u64,
    /// 0-based index of the first frame of every scene but the first.
    pub cuts: Vec<u64>,
    /// The scenes in order.
    pub scenes: Vec<SceneTruth>,
    /// The plan the objects' boxes are worked out from, frame by frame when asked
    /// for: a URI's frame count costs nothing until its frames are looked at.
    #[serde(skip)]
    plan: Plan,
}

impl GroundTruth {
    /// The objects in frame `index`, in drawing order (later ones are drawn over
    /// earlier ones); none past the end.
    pub fn objects_at(&self, index: u64) -> Vec<ObjectTruth> {
        if index >= self.frames || self.plan.scenes.is_empty() {
            return Vec::new();
        }
        let scene = &self.plan.scenes[self.plan.scene_index(index)];
        let t = index.saturating_sub(scene.start);
        scene
            .objects
            .iter()
            .map(|o| {
                let (x, y) = o.position(t, self.width, self.height);
                ObjectTruth {
                    id: o.id,
                    label: Label::new(o.shape.name()),
                    shape: o.shape,
                    color: o.color,
                    bbox: BBox::new(x as f32, y as f32, (x + o.w) as f32, (y + o.h) as f32),
                }
            })
            .collect()
    }

    /// The scene frame `index` belongs to.
    pub fn scene_of(&self, index: u64) -> Option<usize> {
        self.scenes
            .iter()
            .position(|s| (s.start_frame..s.end_frame).contains(&index))
    }
}

/// One scene of a synthetic video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneTruth {
    /// First frame.
    pub start_frame: u64,
    /// One past the last frame.
    pub end_frame: u64,
    /// The background's base colour (RGB).
    pub background: [u8; 3],
    /// The background's texture.
    pub texture: &'static str,
}

/// The shape of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// A filled axis-aligned rectangle.
    Rectangle,
    /// A filled circle.
    Circle,
}

impl Shape {
    /// The shape's label (`rectangle`, `circle`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Rectangle => "rectangle",
            Shape::Circle => "circle",
        }
    }
}

/// One object in one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectTruth {
    /// Unique within the video (objects do not carry over between scenes).
    pub id: u32,
    /// The shape's name as a label (`rectangle`, `circle`).
    pub label: Label,
    /// The shape.
    pub shape: Shape,
    /// Its colour (RGB), uniform over the shape.
    pub color: [u8; 3],
    /// The exact pixel bounds: the pixels drawn are those with `x1 <= x < x2` and
    /// `y1 <= y < y2` (all of them for a rectangle).
    #[serde(rename = "box")]
    pub bbox: BBox,
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// A scene's texture: a static modulation of the background's brightness.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Texture {
    Stripes { period: f64, cos: f64, sin: f64 },
    Checks { cell: f64 },
    Rings { period: f64, cx: f64, cy: f64 },
    Grain { seed: u64 },
}

impl Texture {
    fn name(&self) -> &'static str {
        match self {
            Texture::Stripes { .. } => "stripes",
            Texture::Checks { .. } => "checks",
            Texture::Rings { .. } => "rings",
            Texture::Grain { .. } => "grain",
        }
    }

    /// Modulation in [-1, 1] at native coordinates `(x, y)`.
    fn at(&self, x: f64, y: f64) -> f64 {
        match *self {
            Texture::Stripes { period, cos, sin } => {
                let u = (x * cos + y * sin) / period;
                if u.rem_euclid(1.0) < 0.5 { 1.0 } else { -1.0 }
            }
            Texture::Checks { cell } => {
                // Whole cells: truncation intended.
                let cx = (x / cell).floor() as i64;
                let cy = (y / cell).floor() as i64;
                if (cx + cy).rem_euclid(2) == 0 {
                    1.0
                } else {
                    -1.0
                }
            }
            Texture::Rings { period, cx, cy } => {
                let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                (d / period * std::f64::consts::TAU).sin()
            }
            Texture::Grain { seed } => {
                // Whole pixels: truncation intended.
                let (px, py) = (x.floor() as u64, y.floor() as u64);
                let mut r = Rng::new(seed, px.wrapping_mul(0x1_0000_0001) ^ py);
                r.unit() * 2.0 - 1.0
            }
        }
    }
}

/// How far the texture moves the background's brightness (on a 0..1 scale).
const TEXTURE_AMPLITUDE: f64 = 0.05;

#[derive(Debug, Clone, PartialEq)]
struct SceneSpec {
    start: u64,
    len: u64,
    hsv: (f64, f64, f64),
    rgb: [u8; 3],
    texture: Texture,
    objects: Vec<ObjectSpec>,
}

#[derive(Debug, Clone, PartialEq)]
struct ObjectSpec {
    id: u32,
    shape: Shape,
    color: [u8; 3],
    w: u32,
    h: u32,
    x0: f64,
    y0: f64,
    vx: f64,
    vy: f64,
}

impl ObjectSpec {
    /// Top-left corner `t` frames into the scene, bouncing inside `width` x `height`.
    fn position(&self, t: u64, width: u32, height: u32) -> (u32, u32) {
        let tf = t as f64;
        (
            bounce(self.x0 + self.vx * tf, width - self.w),
            bounce(self.y0 + self.vy * tf, height - self.h),
        )
    }
}

/// `v` folded into `[0, range]` as a ball bouncing between two walls, rounded to a
/// whole pixel.
fn bounce(v: f64, range: u32) -> u32 {
    if range == 0 {
        return 0;
    }
    let r = f64::from(range);
    let u = v.rem_euclid(2.0 * r);
    let folded = if u <= r { u } else { 2.0 * r - u };
    // In [0, range] by construction.
    (folded.round() as u32).min(range)
}

/// The whole video, worked out from the spec.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    scenes: Vec<SceneSpec>,
}

impl Plan {
    fn new(spec: &SyntheticSpec) -> Self {
        let n = spec.scenes as usize;
        let mut rng = Rng::new(spec.seed, 1);

        // Scene lengths: the minimum each, the rest shared by random weights.
        let spare = spec.frames - MIN_SCENE_FRAMES * spec.scenes as u64;
        let weights: Vec<f64> = (0..n).map(|_| rng.range(0.6, 1.4)).collect();
        let total: f64 = weights.iter().sum();
        // Truncation intended; the remainder goes to the last scene. Each share is
        // held to what is left: with frame counts beyond f64's 53 bits the rounded
        // shares could add up to more than there is.
        let mut left = spare;
        let mut lens: Vec<u64> = weights
            .iter()
            .map(|w| {
                let share = ((spare as f64 * w / total).floor() as u64).min(left);
                left -= share;
                MIN_SCENE_FRAMES + share
            })
            .collect();
        if let Some(last) = lens.last_mut() {
            *last += left;
        }

        // Hues: even scenes warm (20°..80°), odd scenes cool (190°..260°), each group
        // spread evenly and shuffled, so neighbours differ in hue by at least 110°.
        let warm = spread(&mut rng, n.div_ceil(2), 20.0, 80.0);
        let cool = spread(&mut rng, n / 2, 190.0, 260.0);

        let m = f64::from(spec.width.min(spec.height));
        let mut next_id = 0u32;
        let mut start = 0u64;
        let mut scenes = Vec::with_capacity(n);
        for (i, &len) in lens.iter().enumerate() {
            let mut r = Rng::new(spec.seed, 100 + i as u64);
            let (h, s, v) = if i % 2 == 0 {
                (warm[i / 2], r.range(0.72, 0.9), r.range(0.8, 0.92))
            } else {
                (cool[i / 2], r.range(0.35, 0.52), r.range(0.38, 0.52))
            };
            let texture = match (i as u64).wrapping_add(spec.seed) % 4 {
                0 => {
                    let angle = r.range(0.0, std::f64::consts::PI);
                    Texture::Stripes {
                        period: r.range(0.05, 0.12) * m,
                        cos: angle.cos(),
                        sin: angle.sin(),
                    }
                }
                1 => Texture::Checks {
                    cell: r.range(0.04, 0.1) * m,
                },
                2 => Texture::Rings {
                    period: r.range(0.06, 0.14) * m,
                    cx: r.range(0.2, 0.8) * f64::from(spec.width),
                    cy: r.range(0.2, 0.8) * f64::from(spec.height),
                },
                _ => Texture::Grain { seed: r.next() },
            };
            let objects = (0..spec.objects)
                .map(|k| {
                    let id = next_id;
                    next_id += 1;
                    object(&mut r, spec, id, h, k)
                })
                .collect();
            scenes.push(SceneSpec {
                start,
                len,
                hsv: (h, s, v),
                rgb: hsv_to_rgb(h, s, v),
                texture,
                objects,
            });
            start += len;
        }
        Plan { scenes }
    }

    fn scene_index(&self, frame: u64) -> usize {
        self.scenes
            .partition_point(|s| s.start + s.len <= frame)
            .min(self.scenes.len().saturating_sub(1))
    }

    fn ground_truth(self, spec: &SyntheticSpec) -> GroundTruth {
        let cuts = self.scenes.iter().skip(1).map(|s| s.start).collect();
        let scenes = self
            .scenes
            .iter()
            .map(|s| SceneTruth {
                start_frame: s.start,
                end_frame: s.start + s.len,
                background: s.rgb,
                texture: s.texture.name(),
            })
            .collect();
        GroundTruth {
            width: spec.width,
            height: spec.height,
            fps: spec.fps,
            frames: spec.frames,
            cuts,
            scenes,
            plan: self,
        }
    }
}

/// `count` values evenly spread over `[lo, hi]`, in a seeded order.
fn spread(rng: &mut Rng, count: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut v: Vec<f64> = (0..count)
        .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / count.max(1) as f64)
        .collect();
    for i in (1..v.len()).rev() {
        // Modulo of a u64 by a small count: fits in usize.
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn object(r: &mut Rng, spec: &SyntheticSpec, id: u32, bg_hue: f64, k: u32) -> ObjectSpec {
    let m = f64::from(spec.width.min(spec.height));
    let shape = if r.next().wrapping_add(u64::from(k)).is_multiple_of(2) {
        Shape::Rectangle
    } else {
        Shape::Circle
    };
    // Sizes are whole pixels: truncation intended.
    let (w, h) = match shape {
        Shape::Rectangle => (
            (r.range(0.10, 0.22) * m) as u32,
            (r.range(0.10, 0.22) * m) as u32,
        ),
        Shape::Circle => {
            let d = 2 * (r.range(0.05, 0.11) * m) as u32;
            (d, d)
        }
    };
    let (w, h) = (w.max(2), h.max(2));
    // A colour across the wheel from the background, fully saturated.
    let hue = (bg_hue + 180.0 + r.range(-40.0, 40.0)).rem_euclid(360.0);
    let color = hsv_to_rgb(hue, 1.0, r.range(0.75, 1.0));
    let speed = |r: &mut Rng| {
        let v = r.range(0.002, 0.007) * f64::from(spec.width);
        if r.next().is_multiple_of(2) { v } else { -v }
    };
    ObjectSpec {
        id,
        shape,
        color,
        w,
        h,
        x0: r.range(0.0, f64::from(spec.width - w)),
        y0: r.range(0.0, f64::from(spec.height - h)),
        vx: speed(r),
        vy: speed(r),
    }
}

/// HSV (hue in degrees, saturation and value in 0..1) to 8-bit RGB.
fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [u8; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    // Clamped to 0..=255 first.
    let q = |u: f64| ((u + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [q(r), q(g), q(b)]
}

/// Pixel formats rendered directly: byte positions of R, G, B and the pixel size.
fn packed_layout(format: PixelFormat) -> Option<([usize; 3], usize)> {
    match format {
        PixelFormat::Rgb24 => Some(([0, 1, 2], 3)),
        PixelFormat::Bgr24 => Some(([2, 1, 0], 3)),
        PixelFormat::Rgba => Some(([0, 1, 2], 4)),
        _ => None,
    }
}

/// Draws frames of a plan at any size.
#[derive(Debug)]
struct Renderer {
    /// The background of the scene `scene` at `size`, in the output format.
    background: Vec<u8>,
    key: Option<(usize, u32, u32)>,
}

impl Renderer {
    fn draw(
        &mut self,
        plan: &Plan,
        spec: &SyntheticSpec,
        frame: u64,
        out: &mut [u8],
        (ow, oh): (u32, u32),
        (order, bpp): ([usize; 3], usize),
    ) {
        let si = plan.scene_index(frame);
        let scene = &plan.scenes[si];
        let sx = f64::from(ow) / f64::from(spec.width);
        let sy = f64::from(oh) / f64::from(spec.height);
        if self.key != Some((si, ow, oh)) {
            self.render_background(scene, (ow, oh), (sx, sy), (order, bpp));
            self.key = Some((si, ow, oh));
        }
        out.copy_from_slice(&self.background);
        let stride = ow as usize * bpp;
        let t = frame - scene.start;
        for o in &scene.objects {
            let (x, y) = o.position(t, spec.width, spec.height);
            let x1 = scale_edge(x, sx, ow);
            let x2 = scale_edge(x + o.w, sx, ow);
            let y1 = scale_edge(y, sy, oh);
            let y2 = scale_edge(y + o.h, sy, oh);
            let mut px = [0u8; 4];
            px[3] = 255;
            for (c, &pos) in order.iter().enumerate() {
                px[pos] = o.color[c];
            }
            let px = &px[..bpp];
            match o.shape {
                Shape::Rectangle => {
                    for row in y1..y2 {
                        let line = &mut out[row * stride..][x1 * bpp..x2 * bpp];
                        for dst in line.chunks_exact_mut(bpp) {
                            dst.copy_from_slice(px);
                        }
                    }
                }
                Shape::Circle => {
                    let rx = f64::from(o.w) / 2.0 * sx;
                    let ry = f64::from(o.h) / 2.0 * sy;
                    let cx = (f64::from(x) + f64::from(o.w) / 2.0) * sx;
                    let cy = (f64::from(y) + f64::from(o.h) / 2.0) * sy;
                    for row in y1..y2 {
                        let dy = (row as f64 + 0.5 - cy) / ry;
                        let line = &mut out[row * stride..];
                        for col in x1..x2 {
                            let dx = (col as f64 + 0.5 - cx) / rx;
                            if dx * dx + dy * dy <= 1.0 {
                                line[col * bpp..(col + 1) * bpp].copy_from_slice(px);
                            }
                        }
                    }
                }
            }
        }
    }

    fn render_background(
        &mut self,
        scene: &SceneSpec,
        (ow, oh): (u32, u32),
        (sx, sy): (f64, f64),
        (order, bpp): ([usize; 3], usize),
    ) {
        let (h, s, v) = scene.hsv;
        self.background.clear();
        self.background.resize(ow as usize * oh as usize * bpp, 255);
        for (row, line) in self
            .background
            .chunks_exact_mut(ow as usize * bpp)
            .enumerate()
        {
            let y = (row as f64 + 0.5) / sy;
            for (col, px) in line.chunks_exact_mut(bpp).enumerate() {
                let x = (col as f64 + 0.5) / sx;
                let vv = (v + TEXTURE_AMPLITUDE * scene.texture.at(x, y)).clamp(0.0, 1.0);
                let rgb = hsv_to_rgb(h, s, vv);
                for (c, &pos) in order.iter().enumerate() {
                    px[pos] = rgb[c];
                }
            }
        }
    }
}

/// A native pixel edge scaled to the output, as a pixel index in `0..=limit`.
fn scale_edge(v: u32, scale: f64, limit: u32) -> usize {
    // Rounded and clamped to the frame.
    ((f64::from(v) * scale).round() as u32).min(limit) as usize
}

/// A source of synthetic frames.
#[derive(Debug)]
pub struct SyntheticSource {
    name: String,
    spec: SyntheticSpec,
    plan: Plan,
    info: VideoInfo,
    pool: FramePool,
    format: PixelFormat,
    /// Where the renderer draws: straight into the frame for packed RGB formats,
    /// else into `scratch` as RGB24, converted into the frame after.
    layout: ([usize; 3], usize),
    direct: bool,
    scratch: Vec<u8>,
    base_size: (u32, u32),
    sampler: Sampler,
    scale: ScaleControl,
    renderer: Renderer,
    next: u64,
    done: bool,
}

impl SyntheticSource {
    /// Opens the synthetic video `uri`.
    pub fn open(uri: &str, opts: &DecodeOptions, pool: &FramePool) -> Result<Self, DecodeError> {
        let spec = SyntheticSpec::parse(uri)?;
        opts.validate(uri)?;
        let direct = packed_layout(opts.format);
        let layout = direct.unwrap_or(([0, 1, 2], 3));
        Ok(Self {
            name: uri.to_string(),
            info: spec.info(uri),
            plan: Plan::new(&spec),
            base_size: opts.size.unwrap_or((spec.width, spec.height)),
            spec,
            pool: pool.clone(),
            format: opts.format,
            layout,
            direct: direct.is_some(),
            scratch: Vec::new(),
            sampler: Sampler::new(&opts.sampling),
            scale: ScaleControl::new(opts.scale.clone()),
            renderer: Renderer {
                background: Vec::new(),
                key: None,
            },
            next: 0,
            done: false,
        })
    }

    /// The spec the source renders.
    pub fn spec(&self) -> &SyntheticSpec {
        &self.spec
    }

    /// The next frame, or the error that ended the stream.
    pub fn read_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        while !self.done && self.next < self.spec.frames {
            let index = self.next;
            self.next += 1;
            let pts = index as f64 / self.spec.fps;
            match self.sampler.judge(pts) {
                Verdict::Skip => continue,
                Verdict::End => break,
                Verdict::Keep => {}
            }
            self.scale.poll();
            let size = scaled_size(self.base_size, self.scale.factor());
            let result = self.render(index, pts, size);
            if result.is_err() {
                self.done = true;
            }
            return Some(result);
        }
        self.done = true;
        None
    }
}

impl SyntheticSource {
    /// Draws frame `index` at `size` into a pooled buffer.
    fn render(&mut self, index: u64, pts: f64, size: (u32, u32)) -> Result<Frame, DecodeError> {
        let mut buf = frame_buffer(&self.pool, &self.name, self.format, size)?;
        if self.direct {
            self.renderer
                .draw(&self.plan, &self.spec, index, &mut buf, size, self.layout);
        } else {
            self.scratch
                .resize(size.0 as usize * size.1 as usize * 3, 0);
            self.renderer.draw(
                &self.plan,
                &self.spec,
                index,
                &mut self.scratch,
                size,
                self.layout,
            );
            reel_ops::convert::convert(
                &self.scratch,
                PixelFormat::Rgb24,
                &mut buf,
                self.format,
                size.0,
                size.1,
            )
            .map_err(|e| DecodeError::Ops {
                input: self.name.clone(),
                detail: e.to_string(),
            })?;
        }
        let frame = crate::decoded_frame(
            &self.name,
            buf,
            self.format,
            size,
            (self.spec.width, self.spec.height),
            (index, pts),
        )?;
        Ok(frame)
    }
}

crate::in_process_source!(SyntheticSource, name);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips_and_defaults_apply() {
        let spec = SyntheticSpec::parse("synthetic:").unwrap();
        assert_eq!(spec, SyntheticSpec::default());
        let spec = SyntheticSpec::parse(
            "synthetic:scenes?width=320&height=240&fps=30000/1001&frames=100&scenes=3&seed=9&objects=4",
        )
        .unwrap();
        assert_eq!((spec.width, spec.height, spec.frames), (320, 240, 100));
        assert!((spec.fps - 29.97).abs() < 0.001);
        assert_eq!(SyntheticSpec::parse(&spec.uri()).unwrap(), spec);
    }

    #[test]
    fn bad_uris_are_refused_with_a_reason() {
        for (uri, needle) in [
            ("synthetic:waves", "unknown synthetic source"),
            ("synthetic:?width=abc", "not a whole number"),
            ("synthetic:?colour=red", "unknown parameter"),
            ("synthetic:?frames=50&scenes=5", "cannot hold"),
            (
                "synthetic:?scenes=10000000&frames=200000000",
                "at most 10000",
            ),
            (
                "synthetic:?width=100000&height=100000",
                "not a plausible frame size",
            ),
            ("synthetic:?fps=0", "fps=0"),
            ("synthetic:?objects=20", "at most"),
        ] {
            let e = SyntheticSpec::parse(uri).unwrap_err();
            assert!(e.to_string().contains(needle), "{uri}: {e}");
        }
    }

    #[test]
    fn scenes_are_long_enough_and_cover_the_video() {
        // The largest seeds too (one overflowed the texture's choice).
        for seed in (0..20).chain([u64::MAX - 1, u64::MAX]) {
            let spec = SyntheticSpec {
                seed,
                frames: 200,
                scenes: 9,
                ..SyntheticSpec::default()
            };
            let gt = spec.ground_truth();
            assert_eq!(gt.scenes.len(), 9);
            assert_eq!(gt.cuts.len(), 8);
            assert_eq!(gt.scenes[0].start_frame, 0);
            assert_eq!(gt.scenes.last().unwrap().end_frame, 200);
            for w in gt.scenes.windows(2) {
                assert_eq!(w[0].end_frame, w[1].start_frame);
            }
            for s in &gt.scenes {
                assert!(s.end_frame - s.start_frame >= MIN_SCENE_FRAMES);
            }
            assert_eq!(gt.objects_at(199).len(), spec.objects as usize);
            assert!(gt.objects_at(200).is_empty());
        }
    }

    /// The boxes of a frame are worked out when asked for: a URI claiming billions
    /// of frames costs no memory for them (it used to allocate a list per frame).
    #[test]
    fn a_huge_frame_count_has_a_cheap_ground_truth() {
        let gt = ground_truth("synthetic:scenes?frames=4294967296&scenes=3&objects=2").unwrap();
        assert_eq!(gt.frames, 4_294_967_296);
        assert_eq!(gt.cuts.len(), 2);
        assert_eq!(gt.objects_at(4_294_967_295).len(), 2);
        assert!(gt.objects_at(4_294_967_296).is_empty());
        assert_eq!(gt.scene_of(4_294_967_295), Some(2));
    }

    /// Frame counts beyond f64's precision still split into scenes that cover the
    /// video exactly (the rounded shares once added up to more than the frames).
    #[test]
    fn scenes_cover_frame_counts_beyond_f64_precision() {
        for frames in [9_223_372_036_854_775_807u64, u64::MAX, (1 << 53) + 1] {
            let gt = ground_truth(&format!("synthetic:?frames={frames}&scenes=3")).unwrap();
            assert_eq!(gt.scenes[0].start_frame, 0);
            assert_eq!(gt.scenes.last().unwrap().end_frame, frames);
            for w in gt.scenes.windows(2) {
                assert_eq!(w[0].end_frame, w[1].start_frame);
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_seed_dependent() {
        let a = ground_truth("synthetic:?seed=3").unwrap();
        let b = ground_truth("synthetic:?seed=3").unwrap();
        let c = ground_truth("synthetic:?seed=4").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.cuts, c.cuts);
    }

    #[test]
    fn bounce_stays_inside() {
        for i in -500..500 {
            let v = bounce(f64::from(i) * 1.7, 100);
            assert!(v <= 100);
        }
        assert_eq!(bounce(30.0, 100), 30);
        assert_eq!(bounce(130.0, 100), 70);
        assert_eq!(bounce(-10.0, 100), 10);
    }

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv_to_rgb(0.0, 1.0, 1.0), [255, 0, 0]);
        assert_eq!(hsv_to_rgb(120.0, 1.0, 1.0), [0, 255, 0]);
        assert_eq!(hsv_to_rgb(240.0, 1.0, 0.5), [0, 0, 128]);
        assert_eq!(hsv_to_rgb(77.0, 0.0, 1.0), [255, 255, 255]);
    }
}
