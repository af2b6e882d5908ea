//! `pixelate`: a reel privacy filter. It pixelates the regions of detections whose
//! label is one of `labels` (every detection when `labels` is not given), or the
//! whole frame with `whole_frame`.
//!
//! Each region (the detection's box snapped to pixels with `BBox::to_pixels`) is
//! cut into `block` x `block` squares from its top-left corner, and every pixel of
//! a square takes the square's mean colour. Pixels outside the chosen regions are
//! never touched.

use reel_plugin_api::{
    Caps, Counters, Detections, FrameMut, PixelFormat, PixelRect, Plugin, PluginError, PluginInfo,
    Processor,
};
use serde::Deserialize;

/// The plugin's settings, from its JSON configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Side of a square in pixels.
    pub block: u32,
    /// Labels whose regions are pixelated; `None`: every detection.
    pub labels: Option<Vec<String>>,
    /// Pixelate the whole frame instead of regions.
    pub whole_frame: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            block: 16,
            labels: None,
            whole_frame: false,
        }
    }
}

/// The processor.
#[derive(Debug)]
pub struct Pixelate {
    config: Config,
    frames: u64,
    regions: u64,
}

impl Pixelate {
    /// A processor with `config`.
    pub fn new(config: Config) -> Result<Self, PluginError> {
        if config.block == 0 {
            return Err(PluginError::config("`block` must be at least 1"));
        }
        Ok(Self {
            config,
            frames: 0,
            regions: 0,
        })
    }

    fn wanted(&self, label: &str) -> bool {
        match &self.config.labels {
            None => true,
            Some(labels) => labels.iter().any(|l| l == label),
        }
    }
}

/// Replaces every `block` x `block` square of `r` (from its top-left corner) in a
/// packed frame with its mean colour.
pub fn pixelate(frame: &mut FrameMut<'_>, r: PixelRect, block: u32) {
    let Some(bpp) = frame.format().bytes_per_pixel() else {
        return;
    };
    let stride = frame.stride();
    let pixels = frame.pixels_mut();
    let mut by = r.y0;
    while by < r.y1 {
        let ey = (by + block).min(r.y1);
        let mut bx = r.x0;
        while bx < r.x1 {
            let ex = (bx + block).min(r.x1);
            let span = bx as usize * bpp..ex as usize * bpp;
            let mut sum = [0u32; 4];
            for y in by..ey {
                let row = &pixels[y as usize * stride..][span.clone()];
                for px in row.chunks_exact(bpp) {
                    for (s, &v) in sum.iter_mut().zip(px) {
                        *s += u32::from(v);
                    }
                }
            }
            let n = (ex - bx) * (ey - by);
            let mean = sum.map(|s| ((s + n / 2) / n) as u8);
            for y in by..ey {
                let row = &mut pixels[y as usize * stride..][span.clone()];
                for px in row.chunks_exact_mut(bpp) {
                    px.copy_from_slice(&mean[..bpp]);
                }
            }
            bx = ex;
        }
        by = ey;
    }
}

impl Processor for Pixelate {
    fn process(
        &mut self,
        frame: &mut FrameMut<'_>,
        detections: &mut Detections<'_, '_>,
    ) -> Result<(), PluginError> {
        self.frames += 1;
        let (w, h) = (frame.width(), frame.height());
        if self.config.whole_frame {
            let all = PixelRect {
                x0: 0,
                y0: 0,
                x1: w,
                y1: h,
            };
            pixelate(frame, all, self.config.block);
            self.regions += 1;
            return Ok(());
        }
        for d in detections.iter() {
            if !self.wanted(d.label()) {
                continue;
            }
            let r = d.bbox.to_pixels(w, h);
            if !r.is_empty() {
                pixelate(frame, r, self.config.block);
                self.regions += 1;
            }
        }
        Ok(())
    }

    fn counters(&self, counters: &mut Counters) {
        counters.set("frames", self.frames);
        counters.set("regions", self.regions);
    }
}

impl Plugin for Pixelate {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "pixelate",
            env!("CARGO_PKG_VERSION"),
            "Privacy filter: pixelates chosen detections, or the whole frame",
        )
        .consumes(Caps::PIXELS | Caps::DETECTIONS)
        .produces(Caps::PIXELS)
        .formats(&[
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Rgba,
            PixelFormat::Gray8,
        ])
    }

    /// Each frame is done on its own: processors may run side by side.
    fn stateless() -> bool {
        true
    }

    fn create(config: &str) -> Result<Self, PluginError> {
        let config: Config = serde_json::from_str(config).map_err(PluginError::config)?;
        Pixelate::new(config)
    }
}

reel_plugin_api::export_plugin!(Pixelate);

#[cfg(test)]
mod tests {
    use super::*;
    use reel_plugin_api::{BBox, Detection};

    #[test]
    fn only_chosen_regions_change_and_become_blocks() {
        let (w, h) = (32u32, 24u32);
        let before: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        let mut px = before.clone();
        let mut p = Pixelate::create(r#"{"block":4,"labels":["face"]}"#).unwrap();
        let mut f = FrameMut::new(&mut px, PixelFormat::Gray8, w, h, 0, 0.0).unwrap();
        let mut list = [
            Detection::new(0, "face", 0.9, BBox::new(4.0, 4.0, 12.0, 12.0)),
            Detection::new(1, "car", 0.9, BBox::new(20.0, 4.0, 28.0, 12.0)),
        ]
        .into_iter()
        .collect();
        p.process(&mut f, &mut Detections::new(&mut list)).unwrap();
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                let in_face = (4..12).contains(&x) && (4..12).contains(&y);
                if in_face {
                    let corner = ((y - (y - 4) % 4) * w + (x - (x - 4) % 4)) as usize;
                    assert_eq!(px[i], px[corner], "{x},{y} is not uniform in its block");
                } else {
                    assert_eq!(px[i], before[i], "{x},{y} changed outside the face");
                }
            }
        }
        assert_ne!(
            px[(4 * w + 4) as usize..][..8],
            before[(4 * w + 4) as usize..][..8]
        );
    }

    #[test]
    fn whole_frame_blocks_average_the_square() {
        let mut px = vec![0u8, 10, 20, 30];
        let mut p = Pixelate::create(r#"{"block":2,"whole_frame":true}"#).unwrap();
        let mut f = FrameMut::new(&mut px, PixelFormat::Gray8, 2, 2, 0, 0.0).unwrap();
        p.process(&mut f, &mut Detections::new(&mut Default::default()))
            .unwrap();
        assert_eq!(px, [15, 15, 15, 15]);
    }
}
