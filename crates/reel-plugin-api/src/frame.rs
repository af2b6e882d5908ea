//! The frame a plugin sees: a mutable view of the host's pixel buffer.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::RSliceMut;

/// How pixels are laid out in a frame's bytes.
///
/// The variants and their order are part of the interface: a new format is a new
/// interface version. The host only passes a plugin frames in the formats it
/// declared in [`PluginInfo::formats`](crate::PluginInfo::formats).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// The format's name, as ffmpeg spells it (`rgb24`, `gray`, `yuv420p`, …).
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

    /// The tightly packed plane layout of a `width` x `height` frame, or `None` when
    /// the size overflows.
    fn tight_planes(self, width: u32, height: u32) -> Option<([Plane; 3], u8)> {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut planes = [Plane::default(); 3];
        let count = match self.bytes_per_pixel() {
            Some(bpp) => {
                planes[0] = Plane::new(0, w.checked_mul(bpp)?, h);
                1
            }
            None => {
                let y_len = w.checked_mul(h)?;
                planes[0] = Plane::new(0, w, h);
                if self == PixelFormat::Nv12 {
                    planes[1] = Plane::new(y_len, cw.checked_mul(2)?, ch);
                    2
                } else {
                    let c_len = cw.checked_mul(ch)?;
                    planes[1] = Plane::new(y_len, cw, ch);
                    planes[2] = Plane::new(y_len.checked_add(c_len)?, cw, ch);
                    3
                }
            }
        };
        planes[..count].iter().try_fold(0usize, |acc, p| {
            acc.checked_add(p.stride.checked_mul(p.rows)?)
        })?;
        Some((planes, count as u8))
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one plane of a frame lies in its bytes.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plane {
    /// Byte offset of the plane's first row.
    pub offset: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Number of rows.
    pub rows: usize,
}

impl Plane {
    const fn new(offset: usize, stride: usize, rows: usize) -> Self {
        Self {
            offset,
            stride,
            rows,
        }
    }

    /// Bytes the plane spans.
    pub fn len(&self) -> usize {
        self.stride * self.rows
    }

    /// Whether the plane has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a [`FrameMut`] could not be built over a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    /// Bytes the layout needs (0 when the size overflows).
    pub needed: usize,
    /// Bytes the buffer has.
    pub got: usize,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.needed == 0 {
            write!(f, "the frame size is invalid or overflows")
        } else {
            write!(
                f,
                "the frame needs {} bytes, the buffer has {}",
                self.needed, self.got
            )
        }
    }
}

impl std::error::Error for LayoutError {}

/// One frame, as a plugin sees it: the host's pixel buffer, borrowed mutably for
/// the duration of the call (no copy is made), with its layout and its place in
/// the stream.
///
/// The view is only valid during the call it is passed to; a plugin must not keep
/// the pointer.
#[repr(C)]
#[derive(StableAbi)]
pub struct FrameMut<'a> {
    pixels: RSliceMut<'a, u8>,
    width: u32,
    height: u32,
    format: PixelFormat,
    plane_count: u8,
    planes: [Plane; 3],
    index: u64,
    pts: f64,
}

impl<'a> FrameMut<'a> {
    /// A view of `pixels` holding a `width` x `height` frame in `format`, with rows
    /// tightly packed and planes following each other (reel's own layout). Fails
    /// when the buffer is too short or the size is invalid.
    pub fn new(
        pixels: &'a mut [u8],
        format: PixelFormat,
        width: u32,
        height: u32,
        index: u64,
        pts: f64,
    ) -> Result<Self, LayoutError> {
        let got = pixels.len();
        let (planes, plane_count) = format
            .tight_planes(width, height)
            .filter(|_| width > 0 && height > 0)
            .ok_or(LayoutError { needed: 0, got })?;
        let needed: usize = planes.iter().map(Plane::len).sum();
        if got < needed {
            return Err(LayoutError { needed, got });
        }
        Ok(Self {
            pixels: RSliceMut::from_mut_slice(pixels),
            width,
            height,
            format,
            plane_count,
            planes,
            index,
            pts,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Bytes from one row of the first plane to the next.
    pub fn stride(&self) -> usize {
        self.planes[0].stride
    }

    /// 0-based index of the frame in its source.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Presentation time in seconds from the start of the stream.
    pub fn pts(&self) -> f64 {
        self.pts
    }

    /// All the frame's bytes.
    pub fn pixels(&self) -> &[u8] {
        self.pixels.as_slice()
    }

    /// All the frame's bytes, writable. Writes land in the host's buffer.
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        self.pixels.as_mut_slice()
    }

    /// Number of planes (1 for packed formats).
    pub fn plane_count(&self) -> usize {
        usize::from(self.plane_count)
    }

    /// The layout of plane `i`, if the format has it.
    pub fn plane(&self, i: usize) -> Option<Plane> {
        self.planes[..self.plane_count()].get(i).copied()
    }

    /// The bytes of plane `i`, writable.
    pub fn plane_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let p = self.plane(i)?;
        self.pixels
            .as_mut_slice()
            .get_mut(p.offset..p.offset + p.len())
    }
}

impl fmt::Debug for FrameMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameMut")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("index", &self.index)
            .field("pts", &self.pts)
            .field("pixels", &self.pixels.as_slice().as_ptr())
            .field("len", &self.pixels.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_reels_packed_planes() {
        let mut buf = vec![0u8; 16 + 4 + 4];
        let f = FrameMut::new(&mut buf, PixelFormat::Yuv420p, 4, 4, 0, 0.0).unwrap();
        assert_eq!(f.plane_count(), 3);
        assert_eq!(f.plane(1), Some(Plane::new(16, 2, 2)));
        assert_eq!(f.plane(2), Some(Plane::new(20, 2, 2)));
        assert_eq!(f.plane(3), None);
        let mut small = vec![0u8; 10];
        assert_eq!(
            FrameMut::new(&mut small, PixelFormat::Rgb24, 2, 2, 0, 0.0).unwrap_err(),
            LayoutError {
                needed: 12,
                got: 10
            }
        );
        assert!(FrameMut::new(&mut small, PixelFormat::Rgb24, 0, 2, 0, 0.0).is_err());
    }

    #[test]
    fn the_view_is_the_buffer() {
        let mut buf = vec![0u8; 12];
        let ptr = buf.as_ptr();
        let mut f = FrameMut::new(&mut buf, PixelFormat::Rgb24, 2, 2, 5, 0.2).unwrap();
        assert_eq!(f.pixels().as_ptr(), ptr);
        f.pixels_mut()[3] = 7;
        f.plane_mut(0).unwrap()[4] = 8;
        assert_eq!(f.stride(), 6);
        assert_eq!(buf[3..5], [7, 8]);
    }
}
