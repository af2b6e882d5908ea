//! Pixel formats and their plane layouts.

use std::fmt;
use std::str::FromStr;

/// How pixels are laid out in a frame's bytes. Rows are always tightly packed.
///
/// Written (in JSON, messages and flags) by its [`name`](PixelFormat::name); read
/// from any of the names [`FromStr`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 8-bit red, green, blue.
    Rgb24,
    /// Packed 8-bit blue, green, red.
    Bgr24,
    /// Packed 8-bit red, green, blue, alpha.
    Rgba,
    /// One 8-bit luma plane.
    Gray8,
    /// Planar Y, then U and V at half width and half height (rounded up).
    Yuv420p,
    /// A Y plane, then one plane of interleaved U and V at half resolution.
    Nv12,
}

/// One plane of a frame: where it starts, its row length and row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plane {
    /// Byte offset of the plane in the frame.
    pub offset: usize,
    /// Bytes per row.
    pub stride: usize,
    /// Number of rows.
    pub rows: usize,
}

impl Plane {
    /// Bytes in the plane.
    pub fn len(&self) -> usize {
        self.stride * self.rows
    }

    /// Whether the plane has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The planes of a frame (one to three), held without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Planes {
    planes: [Plane; 3],
    count: usize,
}

impl Planes {
    /// Number of planes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no planes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Plane `i`, if it exists.
    pub fn get(&self, i: usize) -> Option<Plane> {
        self.planes[..self.count].get(i).copied()
    }

    /// The planes in order.
    pub fn iter(&self) -> impl Iterator<Item = Plane> + '_ {
        self.planes[..self.count].iter().copied()
    }

    /// Total bytes of all planes.
    pub fn total(&self) -> usize {
        self.iter().map(|p| p.len()).sum()
    }
}

/// A pixel format name that reel does not know.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("unknown pixel format `{0}` (expected one of rgb24, bgr24, rgba, gray8, yuv420p, nv12)")]
pub struct UnknownPixelFormat(pub String);

impl PixelFormat {
    /// Every format, in a stable order.
    pub const ALL: [PixelFormat; 6] = [
        PixelFormat::Rgb24,
        PixelFormat::Bgr24,
        PixelFormat::Rgba,
        PixelFormat::Gray8,
        PixelFormat::Yuv420p,
        PixelFormat::Nv12,
    ];

    /// The format's name, as ffmpeg spells it (`rgb24`, `yuv420p`, …).
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
            PixelFormat::Rgba => "rgba",
            PixelFormat::Gray8 => "gray",
            PixelFormat::Yuv420p => "yuv420p",
            PixelFormat::Nv12 => "nv12",
        }
    }

    /// Bytes per pixel of a packed format; `None` for planar ones.
    pub fn bytes_per_pixel(self) -> Option<usize> {
        match self {
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => Some(3),
            PixelFormat::Rgba => Some(4),
            PixelFormat::Gray8 => Some(1),
            PixelFormat::Yuv420p | PixelFormat::Nv12 => None,
        }
    }

    /// Whether the format is a single packed plane.
    pub fn is_packed(self) -> bool {
        self.bytes_per_pixel().is_some()
    }

    /// The plane layout of a `width` x `height` frame. Sizes that overflow give an
    /// empty layout; check with [`frame_size`](Self::frame_size) first.
    pub fn planes(self, width: u32, height: u32) -> Planes {
        self.try_planes(width, height).unwrap_or_default()
    }

    fn try_planes(self, width: u32, height: u32) -> Option<Planes> {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut planes = [Plane::default(); 3];
        let count = match self.bytes_per_pixel() {
            Some(bpp) => {
                planes[0] = Plane {
                    offset: 0,
                    stride: w.checked_mul(bpp)?,
                    rows: h,
                };
                1
            }
            None => {
                let y = Plane {
                    offset: 0,
                    stride: w,
                    rows: h,
                };
                let y_len = w.checked_mul(h)?;
                planes[0] = y;
                match self {
                    PixelFormat::Nv12 => {
                        planes[1] = Plane {
                            offset: y_len,
                            stride: cw.checked_mul(2)?,
                            rows: ch,
                        };
                        2
                    }
                    _ => {
                        let c_len = cw.checked_mul(ch)?;
                        planes[1] = Plane {
                            offset: y_len,
                            stride: cw,
                            rows: ch,
                        };
                        planes[2] = Plane {
                            offset: y_len.checked_add(c_len)?,
                            stride: cw,
                            rows: ch,
                        };
                        3
                    }
                }
            }
        };
        // Make sure the total fits in usize.
        planes[..count].iter().try_fold(0usize, |acc, p| {
            acc.checked_add(p.stride.checked_mul(p.rows)?)
        })?;
        Some(Planes { planes, count })
    }

    /// Bytes of a `width` x `height` frame, or `None` if it overflows.
    pub fn frame_size(self, width: u32, height: u32) -> Option<usize> {
        self.try_planes(width, height).map(|p| p.total())
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for PixelFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for PixelFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for PixelFormat {
    type Err = UnknownPixelFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "rgb24" | "rgb" => Ok(PixelFormat::Rgb24),
            "bgr24" | "bgr" => Ok(PixelFormat::Bgr24),
            "rgba" => Ok(PixelFormat::Rgba),
            "gray" | "gray8" | "grey" => Ok(PixelFormat::Gray8),
            "yuv420p" | "i420" => Ok(PixelFormat::Yuv420p),
            "nv12" => Ok(PixelFormat::Nv12),
            _ => Err(UnknownPixelFormat(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(PixelFormat::Rgb24.frame_size(1920, 1080), Some(6_220_800));
        assert_eq!(PixelFormat::Rgba.frame_size(2, 2), Some(16));
        assert_eq!(PixelFormat::Gray8.frame_size(5, 3), Some(15));
        // Odd sizes round chroma up, as ffmpeg does.
        assert_eq!(PixelFormat::Yuv420p.frame_size(5, 3), Some(15 + 2 * 3 * 2));
        assert_eq!(PixelFormat::Nv12.frame_size(5, 3), Some(15 + 6 * 2));
        assert_eq!(PixelFormat::Rgb24.frame_size(u32::MAX, u32::MAX), None);
    }

    #[test]
    fn yuv_planes_follow_each_other() {
        let p = PixelFormat::Yuv420p.planes(640, 360);
        assert_eq!(p.len(), 3);
        assert_eq!(p.get(1).unwrap().offset, 640 * 360);
        assert_eq!(p.get(2).unwrap().offset, 640 * 360 + 320 * 180);
        assert_eq!(p.total(), 640 * 360 * 3 / 2);
    }

    #[test]
    fn json_uses_the_one_name() {
        let json = serde_json::to_string(&PixelFormat::Gray8).unwrap();
        assert_eq!(json, "\"gray\"");
        let back: PixelFormat = serde_json::from_str("\"gray8\"").unwrap();
        assert_eq!(back, PixelFormat::Gray8);
    }

    #[test]
    fn names_round_trip() {
        for f in PixelFormat::ALL {
            assert_eq!(f.name().parse::<PixelFormat>().unwrap(), f);
        }
        assert!("rgb48".parse::<PixelFormat>().is_err());
    }
}
