//! What a probe finds out about an input, and which decoder reads it.

use serde::Serialize;

use crate::options::HwAccel;

/// The facts about a video stream, found before decoding (`reel probe`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// The input as given (a path, a URL or a `synthetic:` URI).
    pub input: String,
    /// The container (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `y4m`, `image2`,
    /// `synthetic`), when there is one.
    pub container: Option<String>,
    /// The codec (`h264`, `mpeg4`, `rawvideo`, `png`, …).
    pub codec: String,
    /// The stream's pixel format as ffmpeg names it (`yuv420p`, `rgb24`, …).
    pub pixel_format: String,
    /// Stored width in pixels (before rotation).
    pub width: u32,
    /// Stored height in pixels (before rotation).
    pub height: u32,
    /// How far the picture must be turned counter-clockwise for display, in degrees
    /// (0, 90, 180 or 270). Decoded frames come out already turned.
    pub rotation: u32,
    /// Average frame rate; 0 when unknown.
    pub fps: f64,
    /// Number of frames, when the container says or it can be worked out exactly.
    pub frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration_s: Option<f64>,
    /// Whether frames may come at irregular intervals (the container's declared
    /// rate and its average rate differ).
    pub variable_frame_rate: bool,
    /// Stream bit rate in bits per second, when known.
    pub bit_rate: Option<u64>,
    /// The decoder that reads (or would read) the stream.
    pub decoder: DecoderInfo,
}

impl VideoInfo {
    /// The size frames have before any scaling: the stored size turned by the rotation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Which decoder reads a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecoderInfo {
    /// The backend: `ffmpeg`, `y4m`, `images` or `synthetic`.
    pub backend: &'static str,
    /// The decoder's name within the backend (`h264`, `h264 (cuda)`, `png`, …).
    pub name: String,
    /// The hardware acceleration in use; `None` for software decoding.
    pub hwaccel: Option<HwAccel>,
}

impl DecoderInfo {
    /// A software decoder.
    pub fn software(backend: &'static str, name: impl Into<String>) -> Self {
        Self {
            backend,
            name: name.into(),
            hwaccel: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_size_follows_rotation() {
        let mut info = VideoInfo {
            input: "x".into(),
            container: None,
            codec: "h264".into(),
            pixel_format: "yuv420p".into(),
            width: 320,
            height: 240,
            rotation: 90,
            fps: 25.0,
            frames: Some(50),
            duration_s: Some(2.0),
            variable_frame_rate: false,
            bit_rate: None,
            decoder: DecoderInfo::software("ffmpeg", "h264"),
        };
        assert_eq!(info.display_size(), (240, 320));
        info.rotation = 180;
        assert_eq!(info.display_size(), (320, 240));
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["decoder"]["backend"], "ffmpeg");
        assert!(v["decoder"]["hwaccel"].is_null());
    }
}
