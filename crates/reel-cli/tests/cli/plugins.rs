//! `reel plugins list|info` against the plugins and fixtures that
//! `cargo xtask build-plugins --fixtures` builds into the target folder.

use std::path::PathBuf;

use crate::reel;

fn target() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let t = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let t = if t.is_absolute() { t } else { root.join(t) };
    assert!(
        t.join("plugins").is_dir() && t.join("plugin-fixtures").is_dir(),
        "run `cargo xtask build-plugins --fixtures` first"
    );
    t
}

fn fixtures_arg() -> String {
    target().join("plugin-fixtures").display().to_string()
}

#[test]
fn list_json_shows_the_samples_and_the_refused_fixture() {
    let out = reel(&["plugins", "list", "--json", "--plugin-dir", &fixtures_arg()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interface_version"], "1.1.0");
    let plugins = v["plugins"].as_array().unwrap();
    let by_name = |n: &str| plugins.iter().find(|p| p["name"] == n).unwrap();
    for name in ["motion", "overlay", "pixelate", "faulty"] {
        let p = by_name(name);
        assert_eq!(p["status"], "ok", "{p}");
        assert_eq!(p["interface_version"], "1.1.0");
    }
    assert_eq!(
        by_name("motion")["produces"],
        serde_json::json!(["detections"])
    );
    let next = by_name("next");
    assert_eq!(next["status"], "refused");
    let err = next["error"].as_str().unwrap();
    assert!(err.contains("2.0.0") && err.contains("1.1.0"), "{err}");
    // The samples come from the development build folder, found by default.
    assert_eq!(by_name("motion")["origin"], "development build");
    assert_eq!(v["search_path"][0]["origin"], "--plugin-dir");
}

#[test]
fn info_describes_a_plugin_and_checks_its_configuration() {
    let out = reel(&[
        "plugins",
        "info",
        "pixelate:block=8,labels=[\"face\"]",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "pixelate");
    assert_eq!(v["config_ok"], true);
    assert_eq!(
        v["formats"],
        serde_json::json!(["rgb24", "bgr24", "rgba", "gray"])
    );

    let out = reel(&["plugins", "info", "motion"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Background subtraction"));
}

#[test]
fn info_errors_are_one_line_and_exit_1() {
    for (args, expect) in [
        (
            vec!["plugins", "info", "no-such-plugin"],
            "no plugin named `no-such-plugin`",
        ),
        (
            vec!["plugins", "info", "motion:cell=0"],
            "`cell` must be at least 1",
        ),
        (
            vec!["plugins", "info", "next", "--plugin-dir", &fixtures_arg()],
            "interface 2.0.0",
        ),
    ] {
        let out = reel(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(expect), "{err}");
    }
    // A malformed configuration is a usage error.
    let out = reel(&["plugins", "info", "motion:{"]);
    assert_eq!(out.status.code(), Some(2));
}
