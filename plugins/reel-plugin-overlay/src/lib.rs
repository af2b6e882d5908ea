//! `overlay`: a reel plugin that draws each detection's box, and a tag with its
//! label and confidence, into the frame.
//!
//! What it changes, exactly: for each detection, the pixels of the box's outline
//! (the box snapped to pixels with `BBox::to_pixels`, `thickness` pixels inward
//! from each edge) are set to `color`; with `labels` on, a tag 9 pixels high and
//! `1 + 6 × characters` wide is drawn just above the box (inside its top edge when
//! there is no room above), filled with `color` with the text in black or white.
//! No other pixel is touched.

mod font;

use std::fmt::Write as _;

use reel_plugin_api::{
    Caps, Counters, Detections, FrameMut, PixelFormat, PixelRect, Plugin, PluginError, PluginInfo,
    Processor,
};
use serde::Deserialize;

/// Height of a label tag in pixels: the glyphs and one pixel above and below.
pub const TAG_HEIGHT: u32 = font::GLYPH_H + 2;

/// The plugin's settings, from its JSON configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Red, green, blue of the boxes (gray frames get its luma).
    pub color: [u8; 3],
    /// Width of the outline in pixels.
    pub thickness: u32,
    /// Whether to draw a tag with the label and confidence.
    pub labels: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            color: [0, 255, 0],
            thickness: 2,
            labels: true,
        }
    }
}

/// The processor.
#[derive(Debug)]
pub struct Overlay {
    config: Config,
    /// The tag's text, rebuilt for each detection without allocating.
    text: String,
    frames: u64,
    boxes: u64,
}

impl Overlay {
    /// A processor with `config`.
    pub fn new(config: Config) -> Result<Self, PluginError> {
        if config.thickness == 0 {
            return Err(PluginError::config("`thickness` must be at least 1"));
        }
        Ok(Self {
            config,
            text: String::with_capacity(64),
            frames: 0,
            boxes: 0,
        })
    }
}

/// The tag's rectangle for a box covering `rect` and a text of `chars`
/// characters, clipped to a `width` x `height` frame.
pub fn tag_rect(rect: PixelRect, chars: usize, width: u32, height: u32) -> PixelRect {
    let w = 1 + 6 * chars as u32;
    let y0 = if rect.y0 >= TAG_HEIGHT {
        rect.y0 - TAG_HEIGHT
    } else {
        rect.y0
    };
    PixelRect {
        x0: rect.x0,
        y0,
        x1: (rect.x0 + w).min(width),
        y1: (y0 + TAG_HEIGHT).min(height),
    }
}

/// Writes pixels of one colour into a packed frame.
struct Painter<'f, 'a> {
    frame: &'f mut FrameMut<'a>,
    bpp: usize,
}

impl Painter<'_, '_> {
    fn pixel_bytes(format: PixelFormat, rgb: [u8; 3]) -> [u8; 4] {
        let [r, g, b] = rgb;
        match format {
            PixelFormat::Bgr24 => [b, g, r, 0],
            PixelFormat::Rgba => [r, g, b, 255],
            PixelFormat::Gray8 => {
                let l = (77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8;
                [l as u8, 0, 0, 0]
            }
            _ => [r, g, b, 0],
        }
    }

    /// Fills columns `x0..x1` of rows `y0..y1` with `rgb`.
    fn fill(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, rgb: [u8; 3]) {
        let px = Self::pixel_bytes(self.frame.format(), rgb);
        let px = &px[..self.bpp];
        let stride = self.frame.stride();
        let bpp = self.bpp;
        let pixels = self.frame.pixels_mut();
        for y in y0 as usize..y1 as usize {
            let row = &mut pixels[y * stride + x0 as usize * bpp..y * stride + x1 as usize * bpp];
            for dst in row.chunks_exact_mut(bpp) {
                dst.copy_from_slice(px);
            }
        }
    }

    /// The outline of `r`, `t` pixels thick.
    fn outline(&mut self, r: PixelRect, t: u32, rgb: [u8; 3]) {
        let top = (r.y0 + t).min(r.y1);
        let bottom = r.y1.saturating_sub(t).max(top);
        self.fill(r.x0, r.y0, r.x1, top, rgb);
        self.fill(r.x0, bottom, r.x1, r.y1, rgb);
        let left = (r.x0 + t).min(r.x1);
        let right = r.x1.saturating_sub(t).max(left);
        self.fill(r.x0, top, left, bottom, rgb);
        self.fill(right, top, r.x1, bottom, rgb);
    }

    /// A tag filled with `rgb` and `text` drawn over it, clipped to `tag`.
    fn tag(&mut self, tag: PixelRect, text: &str, rgb: [u8; 3]) {
        self.fill(tag.x0, tag.y0, tag.x1, tag.y1, rgb);
        let luma = (77 * u32::from(rgb[0]) + 150 * u32::from(rgb[1]) + 29 * u32::from(rgb[2])) >> 8;
        let ink = if luma > 128 {
            [0, 0, 0]
        } else {
            [255, 255, 255]
        };
        for (i, c) in text.chars().enumerate() {
            let gx = tag.x0 + 1 + 6 * i as u32;
            for (row, bits) in font::glyph(c).into_iter().enumerate() {
                let y = tag.y0 + 1 + row as u32;
                for col in 0..font::GLYPH_W {
                    let x = gx + col;
                    if bits & (0x10 >> col) != 0 && x < tag.x1 && y < tag.y1 {
                        self.fill(x, y, x + 1, y + 1, ink);
                    }
                }
            }
        }
    }
}

impl Processor for Overlay {
    fn process(
        &mut self,
        frame: &mut FrameMut<'_>,
        detections: &mut Detections<'_, '_>,
    ) -> Result<(), PluginError> {
        self.frames += 1;
        let bpp = frame
            .format()
            .bytes_per_pixel()
            .ok_or_else(|| PluginError::new(format!("cannot draw on {}", frame.format())))?;
        let (w, h) = (frame.width(), frame.height());
        let mut painter = Painter { frame, bpp };
        for d in detections.iter() {
            let r = d.bbox.to_pixels(w, h);
            if r.is_empty() {
                continue;
            }
            painter.outline(r, self.config.thickness, self.config.color);
            if self.config.labels {
                self.text.clear();
                // Writing to a String cannot fail.
                let _ = write!(self.text, "{} {:.2}", d.label(), d.conf);
                let tag = tag_rect(r, self.text.chars().count(), w, h);
                painter.tag(tag, &self.text, self.config.color);
            }
            self.boxes += 1;
        }
        Ok(())
    }

    fn counters(&self, counters: &mut Counters) {
        counters.set("frames", self.frames);
        counters.set("boxes", self.boxes);
    }
}

impl Plugin for Overlay {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "overlay",
            env!("CARGO_PKG_VERSION"),
            "Draws detection boxes and their labels into the frame",
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
        Overlay::new(config)
    }
}

reel_plugin_api::export_plugin!(Overlay);

#[cfg(test)]
mod tests {
    use super::*;
    use reel_plugin_api::{BBox, Detection};

    fn run(config: &str, boxes: &[BBox]) -> (Vec<u8>, Vec<u8>) {
        let (w, h) = (40u32, 30u32);
        let before: Vec<u8> = (0..w * h * 3).map(|i| (i % 200) as u8).collect();
        let mut px = before.clone();
        let mut o = Overlay::create(config).unwrap();
        let mut f = FrameMut::new(&mut px, PixelFormat::Rgb24, w, h, 0, 0.0).unwrap();
        let mut list = boxes
            .iter()
            .map(|b| Detection::new(0, "car", 0.5, *b))
            .collect();
        o.process(&mut f, &mut Detections::new(&mut list)).unwrap();
        (before, px)
    }

    #[test]
    fn only_the_outline_changes_without_labels() {
        let b = BBox::new(10.0, 12.0, 20.0, 22.0);
        let (before, after) = run(r#"{"labels":false,"thickness":1,"color":[250,1,2]}"#, &[b]);
        for y in 0..30u32 {
            for x in 0..40u32 {
                let i = ((y * 40 + x) * 3) as usize;
                let edge = (10..20).contains(&x)
                    && (12..22).contains(&y)
                    && (x == 10 || x == 19 || y == 12 || y == 21);
                if edge {
                    assert_eq!(after[i..i + 3], [250, 1, 2], "{x},{y}");
                } else {
                    assert_eq!(after[i..i + 3], before[i..i + 3], "{x},{y}");
                }
            }
        }
    }

    #[test]
    fn the_tag_sits_above_the_box_or_inside_at_the_top() {
        let r = PixelRect {
            x0: 3,
            y0: 20,
            x1: 10,
            y1: 25,
        };
        assert_eq!(tag_rect(r, 2, 100, 100).y0, 20 - TAG_HEIGHT);
        assert_eq!(tag_rect(r, 2, 100, 100).x1, 3 + 13);
        let top = PixelRect { y0: 2, ..r };
        assert_eq!(tag_rect(top, 2, 100, 100).y0, 2);
        assert_eq!(tag_rect(r, 50, 100, 100).x1, 100);
    }

    #[test]
    fn labels_stay_in_their_tag() {
        let b = BBox::new(5.0, 15.0, 25.0, 28.0);
        let (before, after) = run("{}", &[b]);
        let r = b.to_pixels(40, 30);
        let tag = tag_rect(r, "car 0.50".len(), 40, 30);
        let mut changed_in_tag = 0;
        for y in 0..30u32 {
            for x in 0..40u32 {
                let i = ((y * 40 + x) * 3) as usize;
                if after[i..i + 3] != before[i..i + 3] {
                    assert!(r.contains(x, y) || tag.contains(x, y), "{x},{y}");
                    changed_in_tag += u32::from(tag.contains(x, y));
                }
            }
        }
        assert!(changed_in_tag > 0);
    }
}
