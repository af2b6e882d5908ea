//! Size classes: requests are rounded up so that buffers of nearly the same size are
//! interchangeable, with at most 1/8 (12.5 %) of a buffer wasted.

/// The smallest buffer the pool hands out, in bytes.
const MIN_CLASS: usize = 4096;

/// Number of classes between two consecutive powers of two.
const STEPS_LOG2: u32 = 3;

/// Rounds a request of `len` bytes up to its size class.
///
/// Classes are [`MIN_CLASS`] (4 KiB) and above that eight evenly spaced steps between
/// each pair of powers of two, so a class is never more than 12.5 % larger than the
/// request. The same `len` always gives the same class, which is what lets a stream
/// of equally sized frames reuse the same buffers.
///
/// Returns `None` when the rounded size would overflow `usize`.
pub fn size_class(len: usize) -> Option<usize> {
    if len <= MIN_CLASS {
        return Some(MIN_CLASS);
    }
    let log2 = usize::BITS - 1 - len.leading_zeros();
    let step = 1usize << log2.saturating_sub(STEPS_LOG2);
    len.checked_add(step - 1).map(|v| v / step * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_requests_share_the_minimum_class() {
        assert_eq!(size_class(0), Some(4096));
        assert_eq!(size_class(1), Some(4096));
        assert_eq!(size_class(4096), Some(4096));
    }

    #[test]
    fn classes_cover_the_request_with_bounded_waste() {
        for len in (4097..10_000_000).step_by(7919) {
            let class = size_class(len).unwrap();
            assert!(class >= len, "{class} < {len}");
            assert!(class - len <= len / 8, "waste too large for {len}: {class}");
        }
    }

    #[test]
    fn frame_sizes_map_to_stable_classes() {
        let rgb1080 = 1920 * 1080 * 3;
        assert_eq!(size_class(rgb1080), size_class(rgb1080));
        assert_eq!(size_class(rgb1080), Some(6_291_456));
    }

    #[test]
    fn overflow_is_reported() {
        assert_eq!(size_class(usize::MAX), None);
    }
}
