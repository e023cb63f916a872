//! The binary's cold start: without its configuration it stops at once with a typed,
//! logged reason, before it ever asks the Lambda runtime API for an event.
//!
//! Having a test here also makes `cargo nextest run --workspace` build this binary with the
//! workspace's features, so `tests/integration/lambda_watch.rs` can run that very binary
//! under `cargo lambda watch` instead of having it compiled a second time.

use std::process::Command;

#[test]
fn a_cold_start_without_configuration_fails_with_a_logged_configuration_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_deactivate-configs"))
        .env_clear()
        .env("OFFRAMP_PSA", "connectwise")
        .env("OFFRAMP_AUDIT_DB", std::env::temp_dir().join("offramp-cold-start.sqlite"))
        // A runtime API nobody serves: reaching it would mean configuration was not checked first.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("run the binary");
    assert!(!output.status.success(), "it must not start without CONNECTWISE_URL");
    let log = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(|l| l["code"] == "ConfigurationError")
        .unwrap_or_else(|| panic!("a JSON log line with code ConfigurationError: {log}"));
    assert!(line.to_string().contains("CONNECTWISE_URL"), "the missing setting is named: {line}");
}
