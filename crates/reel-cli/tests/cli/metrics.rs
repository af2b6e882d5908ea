//! `--metrics-addr`: `/metrics` and `/stats` scraped over real HTTP on 127.0.0.1
//! (a port chosen free at run time) while `reel live` and `reel analyze` run. Every
//! scrape must hold the invariants (frames in = out + dropped + discarded + in
//! flight; histogram buckets cumulative with `+Inf` equal to `_count`), counters
//! must never decrease between scrapes, and a scrape must pass `promtool check
//! metrics` and parse with `prometheus_client`.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any wait of these tests may take before it fails.
const WITHIN: Duration = Duration::from_secs(30);

fn start_reel(dir: &std::path::Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `GET path` over HTTP/1.0: the status code and the body, or `None` when nothing
/// answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The samples of an exposition, by name with labels (`name{a="b"}`), in order.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap(),
            };
            (series.to_string(), value)
        })
        .collect()
}

fn value(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .unwrap_or_else(|| panic!("no sample {series}"))
        .1
}

fn sum_of(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| s == name || s.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// The invariants one scrape must hold; returns its frames in.
fn check_scrape(text: &str) -> f64 {
    let s = samples(text);
    assert!(
        text.contains("reel_build_info{version=\""),
        "no build info:\n{text}"
    );
    let frames_in = value(&s, "reel_frames_in_total");
    let accounted = value(&s, "reel_frames_out_total")
        + sum_of(&s, "reel_frames_dropped_total")
        + value(&s, "reel_frames_discarded_total")
        + value(&s, "reel_frames_in_flight");
    assert_eq!(
        frames_in, accounted,
        "in = out + dropped + discarded + in flight:\n{text}"
    );
    // Histograms: per series (labels without `le`), buckets in order never
    // decrease and `+Inf` is `_count`.
    let mut buckets: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for (series, v) in &s {
        if let Some((name, labels)) = series.split_once("_bucket{") {
            let (rest, le) = labels.rsplit_once("le=\"").unwrap();
            let key = format!("{name}{{{}", rest.trim_end_matches(','));
            buckets
                .entry(key)
                .or_default()
                .push((le.trim_end_matches("\"}").to_string(), *v));
        }
    }
    assert!(
        buckets
            .keys()
            .any(|k| k.starts_with("reel_latency_seconds"))
            && buckets
                .keys()
                .any(|k| k.starts_with("reel_stage_service_seconds{stage=")),
        "the latency and service-time histograms are there:\n{text}"
    );
    for (key, series) in &buckets {
        assert!(
            series.windows(2).all(|w| w[0].1 <= w[1].1),
            "{key}: buckets decrease: {series:?}"
        );
        let (last_le, last) = series.last().unwrap();
        assert_eq!(last_le, "+Inf", "{key}: the last bucket is +Inf");
        let (name, labels) = key.split_once('{').unwrap();
        let count = if labels.is_empty() {
            format!("{name}_count")
        } else {
            format!("{name}_count{{{labels}}}")
        };
        assert_eq!(*last, value(&s, &count), "{key}: +Inf is _count");
    }
    frames_in
}

/// Counters, bucket counts and sums never decrease from one scrape to the next.
fn check_monotonic(before: &str, after: &str) {
    let after: BTreeMap<String, f64> = samples(after).into_iter().collect();
    for (series, v) in samples(before) {
        let monotonic = series.split('{').next().is_some_and(|n| {
            n.ends_with("_total")
                || n.ends_with("_bucket")
                || n.ends_with("_count")
                || n.ends_with("_sum")
        });
        if monotonic {
            let now = after.get(&series).copied().unwrap_or(f64::NAN);
            assert!(now >= v, "{series} went from {v} to {now}");
        }
    }
}

/// `promtool check metrics` accepts the scrape (its lint included).
fn promtool_accepts(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        crate::oracle::missing("promtool (Debian package prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `prometheus_client` parses the scrape; returns its families' names and types.
fn prometheus_client_parses(text: &str) -> Option<BTreeMap<String, String>> {
    let importable = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        crate::oracle::missing("prometheus_client (pip install prometheus_client)");
        return None;
    }
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        print(json.dumps({f.name: f.type for f in parse(sys.stdin.read())}))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Scrapes `/metrics` (and `/stats`) until `child` exits; returns the scrapes
/// that answered, in order, each with its `/stats` body.
fn scrape_until_exit(child: &mut Child, port: u16, every: Duration) -> Vec<(String, String)> {
    let begun = Instant::now();
    let mut scrapes = Vec::new();
    while child.try_wait().unwrap().is_none() {
        assert!(begun.elapsed() < WITHIN, "the run went on past {WITHIN:?}");
        if let (Some((200, metrics)), Some((200, stats))) =
            (get(port, "/metrics"), get(port, "/stats"))
            && metrics.contains("reel_frames_in_total")
        {
            scrapes.push((metrics, stats));
        }
        std::thread::sleep(every);
    }
    scrapes
}

/// Every scrape holds the invariants, counters never decrease, and the last one
/// passes promtool and prometheus_client.
fn check_scrapes(scrapes: &[(String, String)]) {
    for (metrics, _) in scrapes {
        check_scrape(metrics);
    }
    for w in scrapes.windows(2) {
        check_monotonic(&w[0].0, &w[1].0);
    }
    let last = &scrapes.last().unwrap().0;
    promtool_accepts(last);
    if let Some(families) = prometheus_client_parses(last) {
        for (name, kind) in [
            ("reel_frames_in", "counter"),
            ("reel_frames_dropped", "counter"),
            ("reel_latency_seconds", "histogram"),
            ("reel_stage_service_seconds", "histogram"),
            ("reel_pool_in_use_bytes", "gauge"),
            ("reel_build_info", "gauge"),
        ] {
            assert_eq!(
                families.get(name).map(String::as_str),
                Some(kind),
                "{name} in {families:?}"
            );
        }
    }
}

#[test]
fn live_metrics_hold_their_invariants_on_every_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::child::free_tcp_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = start_reel(
        dir.path(),
        &[
            "live",
            "synthetic:scenes?width=160&height=120&fps=30&frames=100000&scenes=2",
            "--duration",
            "3",
            "--metrics-addr",
            &addr,
            "-q",
        ],
    );
    let scrapes = scrape_until_exit(&mut child, port, Duration::from_millis(250));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        scrapes.len() >= 3,
        "3 s of live run answered {} scrapes",
        scrapes.len()
    );
    check_scrapes(&scrapes);
    let (metrics, stats) = scrapes.last().unwrap();
    assert!(metrics.contains("reel_source_up 1"), "{metrics}");
    assert!(
        metrics.contains("reel_source_reconnects_total 0"),
        "{metrics}"
    );
    // /stats is a --stats line: the live figures, and in = out + dropped + …
    let line: Value = serde_json::from_str(stats).unwrap();
    for key in ["t_s", "fps_now", "pool_bytes", "latency_ms", "dropped_by"] {
        assert!(line.get(key).is_some(), "{key} in {line}");
    }
    let n = |k: &str| line[k].as_u64().unwrap();
    assert_eq!(
        n("frames_in"),
        n("frames_out") + n("dropped") + n("discarded") + n("in_flight"),
        "{line}"
    );
    assert!(n("frames_out") > 0, "{line}");
    // The server stopped with the run.
    assert!(
        get(port, "/metrics").is_none(),
        "the server outlived the run"
    );
}

#[test]
fn analyze_metrics_hold_their_invariants_and_other_paths_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::child::free_tcp_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = start_reel(
        dir.path(),
        &[
            "analyze",
            "synthetic:scenes?width=160&height=120&frames=6000&scenes=4",
            "--no-cache",
            "--metrics-addr",
            &addr,
            "-q",
        ],
    );
    // The server answers before the run ends; other paths are 404.
    let begun = Instant::now();
    let missing = loop {
        if let Some(answer) = get(port, "/nothing-here") {
            break answer;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its server answered"
        );
        assert!(begun.elapsed() < WITHIN, "nothing answered on {addr}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(missing.0, 404);
    let scrapes = scrape_until_exit(&mut child, port, Duration::from_millis(20));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        scrapes.len() >= 2,
        "the analysis answered {} scrapes",
        scrapes.len()
    );
    check_scrapes(&scrapes);
    // /stats says the same figures as /metrics, as JSON.
    for (metrics, stats) in &scrapes {
        let s: Value = serde_json::from_str(stats).unwrap();
        let n = |k: &str| s[k].as_u64().unwrap();
        assert_eq!(
            n("frames_in"),
            n("frames_out") + n("dropped") + n("discarded") + n("in_flight"),
            "{s}"
        );
        assert!(s["stages"][0]["name"].is_string(), "{s}");
        assert!(s["pool"]["budget_bytes"].as_u64().unwrap() > 0, "{s}");
        assert!(check_scrape(metrics) <= n("frames_in") as f64);
    }
}

#[test]
fn a_busy_metrics_address_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out_file = dir.path().join("frames.jsonl");
    for args in [
        vec![
            "analyze",
            "synthetic:scenes?width=160&height=120&frames=30",
            "--no-cache",
            "--out",
            out_file.to_str().unwrap(),
        ],
        vec![
            "live",
            "synthetic:scenes?width=160&height=120&frames=30",
            "--duration",
            "1",
        ],
        // Refused before the model is even looked for.
        vec![
            "detect",
            "synthetic:scenes?width=160&height=120&frames=30",
            "--model",
            "yolov8n",
        ],
    ] {
        let mut args = args;
        args.extend(["--metrics-addr", &addr]);
        let child = start_reel(dir.path(), &args);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&addr), "{args:?}: {stderr}");
        assert!(!out_file.exists(), "the run started");
    }
}
