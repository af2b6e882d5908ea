//! End-to-end tests of the `reel` binary: exit statuses, JSON output, error lines.

mod analyze;
mod batch;
mod cache;
mod child;
mod contract;
mod detect;
mod engine;
mod exports;
mod interrupt;
mod live;
mod metrics;
#[path = "../../../../tests/support/oracle.rs"]
mod oracle;
mod plugins;
mod probe;
mod reliability;
mod system;

use std::process::{Command, Output};

/// Runs `reel` with `args`.
pub fn reel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the reel binary runs")
}

#[test]
fn usage_errors_exit_2() {
    let out = reel(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    let out = reel(&["system", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_exits_0_with_an_example() {
    let out = reel(&["system", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example"));
}
