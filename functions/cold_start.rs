//! One check every function's `tests/cold_start.rs` runs on its own binary: without its
//! configuration it stops at once with a typed, logged reason, before it ever asks the
//! Lambda runtime API for an event.
//!
//! Having this test in each function package also makes `cargo nextest run --workspace`
//! build every function binary with the workspace's features, so the tests that run them
//! (tests/integration/lambda_watch.rs, tests/integration/end_to_end.rs) use those very
//! binaries instead of having them compiled a second time with other features.

use std::process::Command;

/// Runs `binary` with only `env` set and a runtime API nobody serves (reaching it would
/// mean the configuration was not checked first); returns the JSON log line that carries
/// the `ConfigurationError`, after checking the process failed.
pub fn configuration_error(binary: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let output = Command::new(binary)
        .env_clear()
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("run the binary");
    assert!(!output.status.success(), "{binary} must not start without its configuration");
    let log = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(|l| l["code"] == "ConfigurationError")
        .unwrap_or_else(|| panic!("{binary}: a JSON log line with code ConfigurationError: {log}"))
}
