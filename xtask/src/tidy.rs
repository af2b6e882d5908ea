//! Checks on the shape of the code base, run as ordinary tests: crates depend
//! downward only (and ARCHITECTURE.md draws the same layers), every library opens
//! with its `//!` paragraph, no test is ignored, only the binary and xtask use
//! `anyhow`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The layers, bottom first. A crate may depend only on crates of a lower rank.
const LAYERS: &[(&str, u32)] = &[
    ("reel-pool", 0),
    ("reel-plugin-api", 0),
    ("reel-frame", 1),
    ("reel-sched", 2),
    ("reel-ops", 2),
    ("reel-decode", 3),
    ("reel-infer", 3),
    ("reel-host", 4),
    ("reel-cli", 5),
    ("reel-fuzz", 5),
];

fn rank(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

fn metadata() -> Value {
    let out = super::cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Workspace packages: name → (manifest dir, internal normal/build dependencies).
fn packages() -> BTreeMap<String, (PathBuf, Vec<String>)> {
    let meta = metadata();
    let members: Vec<&Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .collect();
    let names: Vec<&str> = members.iter().filter_map(|p| p["name"].as_str()).collect();
    members
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("name").to_string();
            let dir = Path::new(p["manifest_path"].as_str().expect("manifest"))
                .parent()
                .expect("manifest dir")
                .to_path_buf();
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(d))
                .map(str::to_string)
                .collect();
            (name, (dir, deps))
        })
        .collect()
}

#[test]
fn crates_depend_downward_only() {
    let root = super::root();
    let mut problems = Vec::new();
    for (name, (dir, deps)) in packages() {
        if dir.parent() != Some(&root.join("crates")) {
            continue;
        }
        assert_eq!(
            dir.file_name().and_then(|f| f.to_str()),
            Some(name.as_str()),
            "directory name must equal package name"
        );
        let Some(own) = rank(&name) else {
            problems.push(format!(
                "{name} is not in the layer table of xtask/src/tidy.rs"
            ));
            continue;
        };
        for dep in deps {
            match rank(&dep) {
                Some(r) if r < own => {}
                _ => problems.push(format!(
                    "{name} (layer {own}) depends on {dep}, which is not below it"
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn plugins_depend_only_on_the_plugin_api() {
    let root = super::root();
    for (name, (dir, deps)) in packages() {
        if dir.parent() != Some(&root.join("plugins")) {
            continue;
        }
        for dep in deps {
            assert_eq!(dep, "reel-plugin-api", "plugin {name} depends on {dep}");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let file_name = entry.file_name();
        if path.is_dir() {
            if file_name != "target" && !file_name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_library_opens_with_its_role() {
    for (name, (dir, _)) in packages() {
        let lib = dir.join("src/lib.rs");
        let Ok(text) = std::fs::read_to_string(&lib) else {
            continue;
        };
        assert!(
            text.trim_start().starts_with("//!"),
            "{name}: src/lib.rs must open with a //! paragraph on its role and boundary"
        );
    }
}

#[test]
fn no_test_is_ignored_or_expects_a_panic() {
    let root = super::root();
    let mut files = Vec::new();
    for top in ["crates", "plugins", "tests", "xtask"] {
        rust_files(&root.join(top), &mut files);
    }
    let ignore = ["#[", "ignore"].concat();
    let should_panic = ["#[", "should_panic"].concat();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (i, line) in text.lines().enumerate() {
            assert!(
                !line.contains(&ignore) && !line.contains(&should_panic),
                "{}:{}: tests must run and assert, not be ignored or expect panics",
                file.display(),
                i + 1
            );
        }
    }
}

#[test]
fn only_the_binary_and_xtask_use_anyhow() {
    let meta = metadata();
    let mut problems = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name");
        if name == "reel-cli" || name == "xtask" {
            continue;
        }
        let uses = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .any(|d| d["name"] == "anyhow");
        if uses {
            problems.push(format!(
                "{name} depends on anyhow (library crates return their own errors)"
            ));
        }
    }
    let root = super::root();
    let mut files = Vec::new();
    for top in ["crates", "plugins", "tests"] {
        rust_files(&root.join(top), &mut files);
    }
    let needle = ["anyhow", "::"].concat();
    for file in files {
        if file.starts_with(root.join("crates/reel-cli")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        if text.contains(&needle) {
            problems.push(format!("{} uses anyhow", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The layers ARCHITECTURE.md draws: its first fenced block after `## Layers`,
/// one layer a line, top first, each line's crate names before its description.
fn drawn_layers(text: &str) -> Vec<Vec<String>> {
    let after = text
        .split("## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a Layers section");
    let block = after
        .split("```")
        .nth(1)
        .expect("the Layers section has a fenced block");
    block
        .lines()
        .map(|line| {
            line.split_whitespace()
                .take_while(|w| w.starts_with("reel-"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|names| !names.is_empty())
        .collect()
}

#[test]
fn the_architecture_document_draws_the_enforced_layers() {
    let text =
        std::fs::read_to_string(super::root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let drawn = drawn_layers(&text);
    let top = LAYERS.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let mut expected: Vec<Vec<String>> = (0..=top)
        .rev()
        .map(|rank| {
            let mut names: Vec<String> = LAYERS
                .iter()
                .filter(|(_, r)| *r == rank)
                .map(|(n, _)| n.to_string())
                .collect();
            names.sort();
            names
        })
        .filter(|n| !n.is_empty())
        .collect();
    let mut drawn_sorted = drawn.clone();
    for row in &mut drawn_sorted {
        row.sort();
    }
    expected.retain(|row| !row.is_empty());
    assert_eq!(
        drawn_sorted, expected,
        "ARCHITECTURE.md's layer drawing (top first) must match the table in xtask/src/tidy.rs"
    );
}
