//! `reel live` against real streams on 127.0.0.1: a paced synthetic source,
//! MPEG-TS over UDP, or over TCP from a publisher that serves one connection,
//! from an ffmpeg that starts after reel, is killed and started again, or is
//! stopped (SIGSTOP), and H.264 over RTSP (interleaved in TCP) from GStreamer's
//! RTSP server (`tests/fixtures/rtsp_server.py`), killed and started again. Ports are chosen free at run time.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::child::{free_tcp_port, signal, summary};

/// How long any wait of these tests may take before it fails.
const WITHIN: Duration = Duration::from_secs(30);

fn start_reel(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("REEL_CACHE_DIR", dir.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// An ffmpeg publishing `pattern` (lavfi's testsrc2 with these options) in real
/// time as MPEG-TS to `url`.
fn publish(pattern: &str, url: &str) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2={pattern}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-tune", "zerolatency", "-g", "10", "-pix_fmt", "yuv420p"])
        .args(["-f", "mpegts", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// A 160x120 test pattern published to `url` until killed.
fn publisher(url: &str) -> Child {
    publish("size=160x120:rate=25", url).spawn().unwrap()
}

/// A UDP port nobody uses now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The RTSP server of the fixtures (GStreamer's, through python3-gi) serving a
/// 160x120 test pattern at `rtsp://127.0.0.1:{port}/live`, once it listens.
fn rtsp_server(port: u16) -> Child {
    use std::io::BufRead as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rtsp_server.py");
    // Debian's python3-gi belongs to the system's Python, which a python3 earlier
    // on the PATH may not be.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || Path::new(p).exists())
        .unwrap();
    let mut child = Command::new(python)
        .arg(&script)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the RTSP server did not start");
    child
}

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// Waits until `check` holds; false when it has not within [`WITHIN`].
fn eventually(check: impl FnMut() -> bool) -> bool {
    crate::child::eventually(WITHIN, check)
}

/// Waits for `child` to end within [`WITHIN`].
fn finish(child: Child) -> Output {
    crate::child::finish(child, WITHIN, "")
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("`{key}` in {v}"))
}

/// frames in = out + dropped (+ discarded by a stop), and the drops add up.
fn assert_accounted(s: &Value) {
    let by = &s["dropped_by"];
    assert_eq!(
        n(s, "dropped"),
        n(by, "queue") + n(by, "stale") + n(by, "skip"),
        "{s}"
    );
    assert_eq!(
        n(s, "frames_in"),
        n(s, "frames_out") + n(s, "dropped") + n(s, "discarded"),
        "{s}"
    );
}

#[test]
fn a_paced_synthetic_source_runs_in_real_time_with_the_live_figures() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.jsonl");
    let child = start_reel(
        dir.path(),
        &[
            "live",
            "synthetic:scenes?width=160&height=120&fps=30&frames=100000&scenes=2",
            "--duration",
            "2",
            "--stats",
            stats.to_str().unwrap(),
            "--json",
        ],
    );
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_accounted(&s);
    assert_eq!(s["mode"], "realtime");
    assert_eq!(s["interrupted"], false);
    // Paced at 30 fps for 2 s: at most 60 frames (and one at the edge), never the
    // thousands it could render in that time; fewer only on a starved machine.
    let frames_in = n(&s, "frames_in");
    assert!((10..=62).contains(&frames_in), "{s}");
    for key in ["p50", "p95", "p99", "max"] {
        assert!(s["latency_ms"][key].is_number(), "{s}");
    }
    assert!(s["stream_lag_s"].is_number(), "{s}");
    assert_eq!(s["quality"], 1.0);
    assert_eq!((n(&s, "reconnects"), n(&s, "stalls")), (0, 0));
    assert!(s["pool"]["peak_bytes"].as_u64().unwrap() > 0, "{s}");
    let text = std::fs::read_to_string(&stats).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "no stats line");
    for l in &lines {
        assert!(l["t_s"].is_number() && l["fps_now"].is_number(), "{l}");
        assert!(
            l["frames_out"].is_u64() && l["latency_ms"]["p99"].is_number(),
            "{l}"
        );
    }
}

#[test]
fn a_udp_stream_is_awaited_then_connected_again_once_after_its_publisher_restarts() {
    let url = format!("udp://127.0.0.1:{}", free_udp_port());
    // Longer than a probe waits (the --timeout, and its own start).
    let first = Some(Duration::from_millis(3000));
    let s = restarted_stream(&url, "1s", first, Duration::from_millis(2500), || {
        publisher(&url)
    });
    // Attempts failed before the first publisher was there.
    assert!(n(&s, "failed_connects") >= 1, "{s}");
}

/// Runs `reel live URL --timeout TIMEOUT` against a stream that `serve` starts:
/// after `first` when reel starts before it (`None`: the stream is up first),
/// then killed and started again after `gap`; once frames have resumed, Ctrl-C.
/// Returns the summary, after the checks every transport shares: exit 1 and
/// interrupted, exactly one reconnect, a line per frame out, every frame
/// accounted for.
fn restarted_stream(
    url: &str,
    timeout: &str,
    first: Option<Duration>,
    gap: Duration,
    serve: impl Fn() -> Child,
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.jsonl");
    let up_first = first.is_none().then(&serve);
    let args = ["--timeout", timeout, "live", url, "--out"];
    let reel = start_reel(
        dir.path(),
        &[&args[..], &[lines.to_str().unwrap(), "--json"]].concat(),
    );
    let mut stream = match (up_first, first) {
        (Some(stream), _) => stream,
        (None, wait) => {
            std::thread::sleep(wait.unwrap_or_default());
            serve()
        }
    };
    assert!(eventually(|| lines_in(&lines) > 10), "no frame arrived");

    stream.kill().unwrap();
    stream.wait().unwrap();
    std::thread::sleep(gap);
    let before = lines_in(&lines);
    let mut stream = serve();
    assert!(
        eventually(|| lines_in(&lines) > before + 10),
        "frames did not resume"
    );

    signal(reel.id(), "INT");
    let out = finish(reel);
    stream.kill().unwrap();
    stream.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = summary(&out);
    assert_eq!(s["interrupted"], true, "{s}");
    assert_eq!(n(&s, "reconnects"), 1, "{s}\n{err}");
    assert_eq!(n(&s, "frames_out") as usize, lines_in(&lines), "{s}");
    assert_accounted(&s);
    s
}

#[test]
fn a_tcp_publisher_that_serves_one_connection_is_awaited_read_and_reconnected() {
    let url = format!("tcp://127.0.0.1:{}", free_tcp_port());
    // ffmpeg's listen mode accepts one client and publishes to it alone: a probe
    // on its own connection would leave the decoder nobody to connect to.
    let listen = format!("{url}?listen=1");
    // reel first: the connection is refused until the publisher listens.
    let first = Some(Duration::from_millis(1500));
    let s = restarted_stream(&url, "2s", first, Duration::from_millis(1000), || {
        publisher(&listen)
    });
    assert!(n(&s, "failed_connects") >= 1, "{s}");
    // The stream described itself through its decoder: no probe ran.
    let video = &s["video"];
    assert_eq!((n(video, "width"), n(video, "height")), (160, 120), "{s}");
    assert_eq!(video["codec"], "h264", "{s}");
    assert_eq!(video["fps"], 25.0, "{s}");
}

#[test]
fn an_rtsp_stream_is_read_over_tcp_and_connected_again_once_after_its_server_restarts() {
    let port = free_tcp_port();
    let url = format!("rtsp://127.0.0.1:{port}/live");
    let s = restarted_stream(&url, "2s", None, Duration::from_millis(1000), || {
        rtsp_server(port)
    });
    let video = &s["video"];
    assert_eq!((n(video, "width"), n(video, "height")), (160, 120), "{s}");
    assert_eq!(video["codec"], "h264", "{s}");
}

#[test]
fn a_stopped_publisher_is_a_stall_and_ctrl_c_ends_the_reconnecting_run() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.jsonl");
    let url = format!("udp://127.0.0.1:{}", free_udp_port());
    let mut publish = publisher(&url);
    let reel = start_reel(
        dir.path(),
        &[
            "--timeout",
            "20s",
            "live",
            &url,
            "--stall-timeout",
            "1",
            "--out",
            lines.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(eventually(|| lines_in(&lines) > 10), "no frame arrived");
    signal(publish.id(), "STOP");
    // The watchdog's second, then reel waits for the stream again.
    std::thread::sleep(Duration::from_millis(2500));
    signal(reel.id(), "INT");
    let out = finish(reel);
    signal(publish.id(), "CONT");
    publish.kill().unwrap();
    publish.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = summary(&out);
    assert_eq!(s["interrupted"], true, "{s}");
    assert_eq!(n(&s, "stalls"), 1, "{s}\n{err}");
    assert!(err.contains("stalled"), "{err}");
    assert_accounted(&s);
}

#[test]
fn live_refuses_what_it_cannot_do_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let out = finish(start_reel(
        dir.path(),
        &["live", "synthetic:", "--max-staleness", "0.1"],
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("balanced"));
    // A V4L2 device cannot exist here: its path is taken as a device and fails
    // naming it, without retrying.
    let out = finish(start_reel(dir.path(), &["live", "/dev/video9"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/video9"));
}

#[test]
fn a_stream_on_standard_input_is_read_as_it_flows() {
    let dir = tempfile::tempdir().unwrap();
    let mut publish = publish("size=160x120:rate=25:duration=4", "-")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stream = publish.stdout.take().unwrap();
    let reel = Command::new(env!("CARGO_BIN_EXE_reel"))
        .current_dir(dir.path())
        .args(["live", "-", "--json"])
        .env_remove("RUST_LOG")
        .stdin(stream)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(reel);
    publish.wait().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["input"], "-");
    assert_accounted(&s);
    // Four seconds at 25 fps, less what the probe read first (about a second).
    let frames_in = n(&s, "frames_in");
    assert!((40..=100).contains(&frames_in), "{s}");
}

#[test]
fn a_looped_file_is_paced_on_one_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("one-second.mp4");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x120:rate=25:duration=1")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    let lines = dir.path().join("lines.jsonl");
    let out = finish(start_reel(
        dir.path(),
        &[
            "live",
            clip.to_str().unwrap(),
            "--loop",
            "--duration",
            "2.5",
            "--mode",
            "quality",
            "--out",
            lines.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_accounted(&s);
    // 2.5 s at 25 fps: the 25-frame file about two and a half times, not faster.
    let frames = n(&s, "frames_out");
    assert!((50..=64).contains(&frames), "{s}");
    assert!(s["wall_s"].as_f64().unwrap() >= 2.4, "{s}");
    // One timeline: indices and times go on across the loops.
    let text = std::fs::read_to_string(&lines).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, pair) in rows.windows(2).enumerate() {
        assert_eq!(n(&pair[1], "frame"), n(&pair[0], "frame") + 1, "line {i}");
        assert!(
            pair[1]["pts"].as_f64() > pair[0]["pts"].as_f64(),
            "line {i}"
        );
    }
}

#[test]
fn a_stream_that_never_comes_is_given_up_after_max_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("udp://127.0.0.1:{}", free_udp_port());
    let out = finish(start_reel(
        dir.path(),
        &[
            "--timeout",
            "500ms",
            "live",
            &url,
            "--max-reconnects",
            "2",
            "--json",
        ],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gave up after 3 failed connection attempts"),
        "{err}"
    );
    assert!(err.contains(&url), "{err}");
}

#[test]
fn the_same_picture_for_too_long_is_reported_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("still.mp4");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("color=c=gray:size=160x120:rate=25:duration=2")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    let still = finish(start_reel(
        dir.path(),
        &[
            "live",
            clip.to_str().unwrap(),
            "--frozen-after",
            "0.5",
            "--duration",
            "1.2",
            "--json",
        ],
    ));
    let err = String::from_utf8_lossy(&still.stderr);
    assert_eq!(still.status.code(), Some(0), "{err}");
    assert_eq!(n(&summary(&still), "frozen"), 1, "{err}");
    assert!(err.contains("frozen"), "{err}");
    // A moving picture is not.
    let moving = finish(start_reel(
        dir.path(),
        &[
            "live",
            "synthetic:scenes?width=160&height=120&fps=25&frames=1000",
            "--frozen-after",
            "0.5",
            "--duration",
            "1.2",
            "--json",
        ],
    ));
    assert_eq!(n(&summary(&moving), "frozen"), 0);
}
