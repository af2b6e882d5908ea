//! Value parsers for flags: every value out of range is a usage error (exit 2)
//! naming the flag, caught before any work starts.

/// A whole number of at least 1.
pub fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match s.trim().parse::<T>() {
        Ok(v) if v >= T::from(1) => Ok(v),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// A number above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number above 0")),
    }
}

/// A number from 0 to 1.
pub fn unit(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number from 0 to 1")),
    }
}

/// A model input size: a multiple of 32, from 32 to 4096.
pub fn imgsz(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(v) if v.is_multiple_of(32) && (32..=4096).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a multiple of 32 from 32 to 4096")),
    }
}

/// A class to keep: a COCO class name, or a class number.
pub fn class(s: &str) -> Result<String, String> {
    let t = s.trim();
    if reel_infer::coco_class_id(t).is_some() || t.parse::<u32>().is_ok() {
        Ok(t.to_string())
    } else {
        Err(format!(
            "`{s}` is not a COCO class name (person, car, …) or a class number"
        ))
    }
}

/// A size in bytes, above 0 (`512MiB`, `2GB`).
pub fn bytes(s: &str) -> Result<u64, String> {
    match reel_host::config::parse_bytes(s)? {
        0 => Err(format!("`{s}` is not a size above 0")),
        n => Ok(n),
    }
}

/// A time in the video, in seconds: `12.5`, `MM:SS(.s)` or `HH:MM:SS(.s)`
/// (`1:02.5` and `00:01:02.5` are both 62.5 s), at least 0.
pub fn time(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a time (seconds like 12.5, or [HH:]MM:SS[.s])");
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let mut total = 0.0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        // Hours and minutes are whole; minutes and seconds after a colon are below 60.
        let v: f64 = if last {
            part.parse().map_err(|_| bad())?
        } else {
            f64::from(part.parse::<u32>().map_err(|_| bad())?)
        };
        if !v.is_finite() || v < 0.0 || (i > 0 && v >= 60.0) {
            return Err(bad());
        }
        total = total * 60.0 + v;
    }
    Ok(total)
}

/// A window of `--start` and `--end`: the end comes after the start, else a usage
/// error naming both flags.
pub fn window(start: Option<f64>, end: Option<f64>) -> anyhow::Result<()> {
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(crate::output::UsageError(format!(
            "--end {e} is not after --start {s}: the window holds no frame"
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_refused() {
        assert_eq!(at_least_one::<u32>("3"), Ok(3));
        assert!(at_least_one::<u32>("0").is_err());
        assert!(positive("0").is_err() && positive("nan").is_err());
        assert_eq!(unit("0.5"), Ok(0.5));
        assert!(unit("1.5").is_err() && unit("-1").is_err());
        assert_eq!(imgsz("320"), Ok(320));
        assert!(imgsz("500").is_err());
        assert!(class("persn").is_err());
        assert_eq!(class("person"), Ok("person".to_string()));
        assert!(bytes("0").is_err());
    }

    #[test]
    fn times_are_seconds_or_clock_times() {
        assert_eq!(time("12.5"), Ok(12.5));
        assert_eq!(time("1:02.5"), Ok(62.5));
        assert_eq!(time("00:01:02.5"), Ok(62.5));
        assert_eq!(time("2:00:00"), Ok(7200.0));
        for bad in ["", "-1", "1:60", "1::2", "a", "1:2:3:4", "nan", "1.5:00"] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }
}
