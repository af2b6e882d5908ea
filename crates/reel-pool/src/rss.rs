//! This process's resident set, current and peak, for the summaries every command
//! prints.

/// The most resident memory this process has held since it started, in bytes
/// (`VmHWM` on Linux). `None` where the platform does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = read_status()?;
    let peak = status_field(&status, "VmHWM:")?;
    // The high-water mark is updated lazily: never report less than what is
    // resident in the same reading.
    Some(peak.max(status_field(&status, "VmRSS:").unwrap_or(0)))
}

/// The resident memory of this process now, in bytes (`VmRSS` on Linux).
pub fn current_rss_bytes() -> Option<u64> {
    status_field(&read_status()?, "VmRSS:")
}

fn read_status() -> Option<String> {
    std::fs::read_to_string("/proc/self/status").ok()
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn peak_is_at_least_current() {
        // Read in this order: memory freed in between can only lower the current.
        let cur = super::current_rss_bytes().unwrap();
        let block = vec![1u8; 8 << 20];
        let peak = super::peak_rss_bytes().unwrap();
        assert!(cur > 0);
        assert!(peak >= cur, "peak {peak} below current {cur}");
        drop(block);
    }
}
