//! The binary's cold start (see functions/cold_start.rs).

#[path = "../../cold_start.rs"]
mod cold_start;

#[test]
fn a_cold_start_without_configuration_fails_with_a_logged_configuration_error() {
    let audit = std::env::temp_dir().join("offramp-cold-start-orchestrator.sqlite");
    let line = cold_start::configuration_error(
        env!("CARGO_BIN_EXE_orchestrator"),
        &[("OFFRAMP_PSA", "connectwise"), ("OFFRAMP_AUDIT_DB", audit.to_str().unwrap())],
    );
    assert!(line.to_string().contains("CONNECTWISE_URL"), "the missing setting is named: {line}");
}
