//! What a test does when a program it compares reel with (an oracle: PySceneDetect,
//! OpenCV, a Debian package's video) is missing: with `REEL_REQUIRE_ORACLES=1` (as
//! CI sets it) the test fails, naming what to install; otherwise it prints a note
//! and the caller returns early. Test crates include this one file with
//! `#[path = …] mod oracle;`.

/// The environment variable that makes a missing oracle a failure.
pub const REQUIRE: &str = "REEL_REQUIRE_ORACLES";

/// Reports that `what` is missing (with how to install it). Panics when oracles
/// are required; otherwise prints a note, and the test should return.
pub fn missing(what: &str) {
    if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
        panic!("{what} is missing, and {REQUIRE}=1 requires it");
    }
    println!("note: skipped, needs {what}");
}
