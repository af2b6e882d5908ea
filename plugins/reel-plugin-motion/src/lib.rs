//! `motion`: a reel plugin that finds moving regions by background subtraction and
//! reports each one as a detection labelled `motion`.
//!
//! The frame's colour (its luma, for gray and YUV frames) is averaged over square
//! cells; a running average of those cells is the background. A cell whose mean
//! differs from the background by more than the threshold in any channel is moving; connected moving cells form one region, reported
//! as a box around them with the fraction of moving cells as its confidence. It
//! works on cells rather than pixels so that its cost is one pass over the frame
//! plus a small grid, and so that noise in single pixels is averaged away.

use reel_plugin_api::{
    BBox, Caps, Counters, Detection, Detections, FrameMut, PixelFormat, Plugin, PluginError,
    PluginInfo, Processor,
};
use serde::Deserialize;

/// The plugin's settings, from its JSON configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Side of a cell in pixels.
    pub cell: u32,
    /// Difference of a cell's mean from the background (0..255, in any channel)
    /// above which the cell is moving.
    pub threshold: f32,
    /// How fast the background follows the picture (0..1 per frame).
    pub learning_rate: f32,
    /// Smallest region reported, in cells.
    pub min_cells: u32,
    /// Frames seen before any region is reported (the background settles).
    pub warmup: u64,
    /// Label of the detections.
    pub label: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cell: 8,
            threshold: 12.0,
            learning_rate: 0.1,
            min_cells: 2,
            warmup: 2,
            label: "motion".to_string(),
        }
    }
}

/// The processor: the background model and the buffers reused on every frame.
#[derive(Debug)]
pub struct Motion {
    config: Config,
    /// Grid size in cells, and the frame size it was made for.
    grid: (usize, usize),
    frame_size: (u32, u32),
    /// Channels averaged: 3 for RGB frames, 1 (luma) otherwise.
    channels: usize,
    /// Per cell and channel: the current mean and the background; per cell:
    /// moving or not, and its region.
    current: Vec<f32>,
    background: Vec<f32>,
    moving: Vec<bool>,
    region: Vec<u32>,
    /// Scratch: per-cell luma sums, and the flood-fill stack.
    sums: Vec<u32>,
    stack: Vec<usize>,
    frames: u64,
    detections: u64,
}

impl Motion {
    /// A processor with `config`.
    pub fn new(config: Config) -> Result<Self, PluginError> {
        if config.cell == 0 {
            return Err(PluginError::config("`cell` must be at least 1"));
        }
        if !(0.0..=1.0).contains(&config.learning_rate) {
            return Err(PluginError::config("`learning_rate` must be within 0..1"));
        }
        Ok(Self {
            config,
            grid: (0, 0),
            frame_size: (0, 0),
            channels: 1,
            current: Vec::new(),
            background: Vec::new(),
            moving: Vec::new(),
            region: Vec::new(),
            sums: Vec::new(),
            stack: Vec::new(),
            frames: 0,
            detections: 0,
        })
    }

    /// Sizes the buffers for a frame of `width` x `height`; the background
    /// restarts when the size changes. Returns whether it restarted.
    fn fit(&mut self, width: u32, height: u32, channels: usize) -> bool {
        if self.frame_size == (width, height) && self.channels == channels {
            return false;
        }
        self.channels = channels;
        let cell = self.config.cell as usize;
        let grid = (
            (width as usize).div_ceil(cell),
            (height as usize).div_ceil(cell),
        );
        let n = grid.0 * grid.1;
        self.grid = grid;
        self.frame_size = (width, height);
        for v in [&mut self.current, &mut self.background] {
            v.clear();
            v.resize(n * channels, 0.0);
        }
        self.moving.clear();
        self.moving.resize(n, false);
        self.region.clear();
        self.region.resize(n, 0);
        self.sums.clear();
        self.sums.resize(n * channels, 0);
        true
    }

    /// Fills `current` with each cell's mean per channel.
    fn cell_means(&mut self, frame: &FrameMut<'_>) {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let cell = self.config.cell as usize;
        let (gw, ch) = (self.grid.0, self.channels);
        let stride = frame.stride();
        let pixels = frame.pixels();
        self.sums.fill(0);
        for y in 0..h {
            let row = &pixels[y * stride..];
            let sums = &mut self.sums[(y / cell) * gw * ch..][..gw * ch];
            match frame.format() {
                PixelFormat::Rgb24 | PixelFormat::Bgr24 => sum_row::<3>(row, w, cell, sums),
                PixelFormat::Rgba => sum_row::<4>(row, w, cell, sums),
                // Gray, and the Y plane of the YUV formats: the first `w` bytes
                // of each row are luma.
                _ => sum_row::<1>(row, w, cell, sums),
            }
        }
        for gy in 0..self.grid.1 {
            let rows = cell.min(h - gy * cell);
            for gx in 0..gw {
                let cols = cell.min(w - gx * cell);
                let n = (rows * cols) as f32;
                let i = (gy * gw + gx) * ch;
                for c in i..i + ch {
                    self.current[c] = self.sums[c] as f32 / n;
                }
            }
        }
    }

    /// Marks moving cells and lets the background follow the picture.
    fn update_background(&mut self) {
        let a = self.config.learning_rate;
        let t = self.config.threshold;
        let ch = self.channels;
        for ((c, b), m) in self
            .current
            .chunks_exact(ch)
            .zip(self.background.chunks_exact_mut(ch))
            .zip(self.moving.iter_mut())
        {
            *m = false;
            for (c, b) in c.iter().zip(b.iter_mut()) {
                *m |= (c - *b).abs() > t;
                *b += a * (c - *b);
            }
        }
    }

    /// Groups moving cells (8-connected) and reports each large enough group.
    fn report_regions(&mut self, detections: &mut Detections<'_, '_>, width: u32, height: u32) {
        let (gw, gh) = self.grid;
        let cell = self.config.cell as f32;
        self.region.fill(0);
        let mut next = 0u32;
        for start in 0..gw * gh {
            if !self.moving[start] || self.region[start] != 0 {
                continue;
            }
            next += 1;
            let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
            let mut count = 0u32;
            self.region[start] = next;
            self.stack.clear();
            self.stack.push(start);
            while let Some(i) = self.stack.pop() {
                let (x, y) = (i % gw, i / gw);
                count += 1;
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
                for ny in y.saturating_sub(1)..=(y + 1).min(gh - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(gw - 1) {
                        let j = ny * gw + nx;
                        if self.moving[j] && self.region[j] == 0 {
                            self.region[j] = next;
                            self.stack.push(j);
                        }
                    }
                }
            }
            if count < self.config.min_cells {
                continue;
            }
            let area = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32;
            let bbox = BBox::new(
                x0 as f32 * cell,
                y0 as f32 * cell,
                ((x1 + 1) as f32 * cell).min(width as f32),
                ((y1 + 1) as f32 * cell).min(height as f32),
            );
            detections.push(Detection::with_owned_label(
                0,
                self.config.label.clone(),
                count as f32 / area,
                bbox,
            ));
            self.detections += 1;
        }
    }
}

/// Adds one row of pixels of `N` bytes to the sums of the cells it crosses: the
/// first three bytes of each pixel (colour) when `N` is 3 or 4, the byte itself
/// when `N` is 1.
fn sum_row<const N: usize>(row: &[u8], width: usize, cell: usize, sums: &mut [u32]) {
    let ch = N.min(3);
    for (x, px) in row[..width * N].chunks_exact(N).enumerate() {
        let s = &mut sums[(x / cell) * ch..][..ch];
        for (s, &v) in s.iter_mut().zip(px) {
            *s += u32::from(v);
        }
    }
}

impl Processor for Motion {
    fn process(
        &mut self,
        frame: &mut FrameMut<'_>,
        detections: &mut Detections<'_, '_>,
    ) -> Result<(), PluginError> {
        let (w, h) = (frame.width(), frame.height());
        let channels = if frame.format().bytes_per_pixel().unwrap_or(1) >= 3 {
            3
        } else {
            1
        };
        let restarted = self.fit(w, h, channels);
        self.cell_means(frame);
        if restarted {
            self.background.copy_from_slice(&self.current);
        }
        self.update_background();
        self.frames += 1;
        if self.frames > self.config.warmup {
            self.report_regions(detections, w, h);
        }
        Ok(())
    }

    fn counters(&self, counters: &mut Counters) {
        counters.set("frames", self.frames);
        counters.set("detections", self.detections);
    }
}

impl Plugin for Motion {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "motion",
            env!("CARGO_PKG_VERSION"),
            "Background subtraction: reports moving regions as `motion` detections",
        )
        .consumes(Caps::PIXELS)
        .produces(Caps::DETECTIONS)
        .formats(&PixelFormat::ALL)
    }

    fn create(config: &str) -> Result<Self, PluginError> {
        let config: Config = serde_json::from_str(config).map_err(PluginError::config)?;
        Motion::new(config)
    }
}

reel_plugin_api::export_plugin!(Motion);

#[cfg(test)]
mod tests {
    use super::*;
    use reel_plugin_api::Detections;

    /// A gray frame with a bright square at `x`.
    fn frame_with_square(x: usize) -> Vec<u8> {
        let (w, h) = (64, 48);
        let mut px = vec![40u8; w * h * 3];
        for y in 16..32 {
            for xx in x..x + 16 {
                px[(y * w + xx) * 3..][..3].copy_from_slice(&[220, 220, 220]);
            }
        }
        px
    }

    #[test]
    fn a_moving_square_is_found_where_it_is() {
        let mut m = Motion::create(r#"{"warmup":1}"#).unwrap();
        let mut last = Vec::new();
        for (i, x) in [0usize, 8, 16, 24, 32].into_iter().enumerate() {
            let mut px = frame_with_square(x);
            let mut f = FrameMut::new(&mut px, PixelFormat::Rgb24, 64, 48, i as u64, 0.0).unwrap();
            let mut list = Default::default();
            m.process(&mut f, &mut Detections::new(&mut list)).unwrap();
            last = list.iter().map(|d| d.bbox).collect();
        }
        // The square is at 32..48 x 16..32 now; the region covers it.
        assert!(!last.is_empty());
        assert!(
            last.iter()
                .any(|b| b.x1 <= 32.0 && b.x2 >= 48.0 && b.y1 <= 16.0 && b.y2 >= 32.0),
            "{last:?}"
        );
    }

    #[test]
    fn a_still_picture_has_no_motion() {
        let mut m = Motion::create("{}").unwrap();
        for i in 0..5 {
            let mut px = frame_with_square(8);
            let mut f = FrameMut::new(&mut px, PixelFormat::Rgb24, 64, 48, i, 0.0).unwrap();
            let mut list = Default::default();
            m.process(&mut f, &mut Detections::new(&mut list)).unwrap();
            assert!(list.is_empty());
        }
    }

    #[test]
    fn bad_configuration_is_rejected() {
        assert!(Motion::create(r#"{"cell":0}"#).is_err());
        assert!(Motion::create(r#"{"no_such":1}"#).is_err());
        assert!(Motion::create("not json").is_err());
    }
}
