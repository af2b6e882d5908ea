//! Detections: what earlier stages found in the frame, and what a plugin adds.

use abi_stable::StableAbi;
use abi_stable::std_types::{RCowStr, RStr, RString, RVec};

/// An axis-aligned box in pixels: `x1,y1` top-left, `x2,y2` bottom-right.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

/// A box snapped to whole pixels and clipped to the frame: columns `x0..x1` and rows
/// `y0..y1` (end exclusive). Empty when `x0 == x1` or `y0 == y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PixelRect {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// One past the last column.
    pub x1: u32,
    /// One past the last row.
    pub y1: u32,
}

impl PixelRect {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// Whether the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.x0 >= self.x1 || self.y0 >= self.y1
    }

    /// Whether pixel `(x, y)` is inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

impl BBox {
    /// A box from its corners.
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// The pixels the box covers in a `width` x `height` frame: every pixel the box
    /// touches (edges rounded outwards), clipped to the frame. This is the rule
    /// every sample plugin uses to turn a box into pixels.
    pub fn to_pixels(&self, width: u32, height: u32) -> PixelRect {
        let snap = |v: f32, limit: u32, round: fn(f32) -> f32| -> u32 {
            if v.is_nan() {
                return 0;
            }
            round(v).clamp(0.0, limit as f32) as u32
        };
        let x0 = snap(self.x1, width, f32::floor);
        let y0 = snap(self.y1, height, f32::floor);
        let x1 = snap(self.x2, width, f32::ceil).max(x0);
        let y1 = snap(self.y2, height, f32::ceil).max(y0);
        PixelRect { x0, y0, x1, y1 }
    }
}

/// An object found in a frame. `'l` is the lifetime of the label when it is
/// borrowed (from the host's detections, or from a plugin's `'static` text).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Detection<'l> {
    /// Index of the class in the producer's label list.
    pub class_id: u32,
    /// The class's name.
    pub label: RCowStr<'l>,
    /// Confidence in 0..=1.
    pub conf: f32,
    /// Where it is, in the frame's pixels.
    pub bbox: BBox,
}

impl<'l> Detection<'l> {
    /// A detection whose label is borrowed (no allocation): a `'static` string, or
    /// text that outlives the call.
    pub fn new(class_id: u32, label: &'l str, conf: f32, bbox: BBox) -> Self {
        Self {
            class_id,
            label: RCowStr::Borrowed(RStr::from_str(label)),
            conf,
            bbox,
        }
    }

    /// A detection that owns its label.
    pub fn with_owned_label(class_id: u32, label: String, conf: f32, bbox: BBox) -> Self {
        Self {
            class_id,
            label: RCowStr::Owned(RString::from(label)),
            conf,
            bbox,
        }
    }

    /// The label's text.
    pub fn label(&self) -> &str {
        match &self.label {
            RCowStr::Borrowed(s) => s.as_str(),
            RCowStr::Owned(s) => s.as_str(),
        }
    }
}

/// The detections of the frame being processed: those earlier stages attached
/// (read-only) followed by those this plugin adds with [`push`](Self::push).
#[repr(C)]
#[derive(StableAbi)]
pub struct Detections<'a, 'l> {
    list: &'a mut RVec<Detection<'l>>,
    existing: usize,
}

impl<'a, 'l> Detections<'a, 'l> {
    /// A view over `list`, whose current contents count as the frame's existing
    /// detections. Used by the host; a plugin receives one.
    pub fn new(list: &'a mut RVec<Detection<'l>>) -> Self {
        let existing = list.len();
        Self { list, existing }
    }

    /// Every detection: the existing ones, then the added ones.
    pub fn as_slice(&self) -> &[Detection<'l>] {
        self.list.as_slice()
    }

    /// Iterates over every detection.
    pub fn iter(&self) -> std::slice::Iter<'_, Detection<'l>> {
        self.list.as_slice().iter()
    }

    /// The detections earlier stages attached.
    pub fn existing(&self) -> &[Detection<'l>] {
        &self.list.as_slice()[..self.existing]
    }

    /// The detections added during this call.
    pub fn added(&self) -> &[Detection<'l>] {
        &self.list.as_slice()[self.existing..]
    }

    /// Number of detections, existing and added.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds a detection to the frame.
    pub fn push(&mut self, detection: Detection<'l>) {
        self.list.push(detection);
    }
}

impl<'b, 'l> IntoIterator for &'b Detections<'_, 'l> {
    type Item = &'b Detection<'l>;
    type IntoIter = std::slice::Iter<'b, Detection<'l>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_snap_outwards_and_clip() {
        let r = BBox::new(1.5, 2.0, 4.2, 3.0).to_pixels(10, 10);
        assert_eq!(
            r,
            PixelRect {
                x0: 1,
                y0: 2,
                x1: 5,
                y1: 3
            }
        );
        let r = BBox::new(-5.0, 8.0, 50.0, 20.0).to_pixels(10, 10);
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (0, 8, 10, 10));
        assert!(BBox::new(6.0, 6.0, 2.0, 2.0).to_pixels(10, 10).is_empty());
        assert!(BBox::new(f32::NAN, 0.0, 1.0, 1.0).to_pixels(10, 10).x0 == 0);
    }

    #[test]
    fn existing_are_kept_apart_from_added() {
        let mut list = RVec::new();
        list.push(Detection::new(0, "person", 0.9, BBox::default()));
        let mut d = Detections::new(&mut list);
        d.push(Detection::with_owned_label(
            1,
            "car".to_string(),
            0.5,
            BBox::default(),
        ));
        assert_eq!(d.existing().len(), 1);
        assert_eq!(d.added()[0].label(), "car");
        assert_eq!(
            d.iter().map(Detection::label).collect::<Vec<_>>(),
            ["person", "car"]
        );
    }
}
