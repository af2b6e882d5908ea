//! A small, fixed-capacity map of named measurements that a frame carries without
//! allocating.

/// How many measurements a frame can carry.
pub const METRICS_CAPACITY: usize = 12;

/// Named `f64` measurements attached to a frame by analysis stages (for example
/// `"motion"` or `"sharpness"`). Setting a name that is already present replaces
/// its value; setting more than [`METRICS_CAPACITY`] distinct names fails.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    entries: [(&'static str, f64); METRICS_CAPACITY],
    len: usize,
}

impl Metrics {
    /// Sets `name` to `value`. Returns `false` (and stores nothing) when the map is
    /// full and `name` is new.
    pub fn set(&mut self, name: &'static str, value: f64) -> bool {
        if let Some(e) = self.entries[..self.len].iter_mut().find(|e| e.0 == name) {
            e.1 = value;
            return true;
        }
        if self.len == METRICS_CAPACITY {
            return false;
        }
        self.entries[self.len] = (name, value);
        self.len += 1;
        true
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries[..self.len]
            .iter()
            .find(|e| e.0 == name)
            .map(|e| e.1)
    }

    /// The measurements in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.entries[..self.len].iter().copied()
    }

    /// Number of measurements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every measurement.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_replace_and_capacity() {
        let mut m = Metrics::default();
        assert!(m.set("motion", 1.0));
        assert!(m.set("motion", 2.0));
        assert_eq!(m.get("motion"), Some(2.0));
        assert_eq!(m.len(), 1);
        const NAMES: [&str; METRICS_CAPACITY - 1] =
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"];
        for n in NAMES {
            assert!(m.set(n, 0.0));
        }
        assert!(!m.set("overflow", 1.0));
        assert_eq!(m.get("overflow"), None);
        assert_eq!(m.iter().next(), Some(("motion", 2.0)));
    }
}
