//! The binary's cold start (see functions/cold_start.rs).

#[path = "../../cold_start.rs"]
mod cold_start;

#[test]
fn a_cold_start_without_configuration_fails_with_a_logged_configuration_error() {
    let audit = std::env::temp_dir().join("offramp-cold-start-approval.sqlite");
    let line = cold_start::configuration_error(
        env!("CARGO_BIN_EXE_approval"),
        // The page needs no vendor; a setting it cannot read stops it before any event.
        &[("OFFRAMP_AUDIT_DB", audit.to_str().unwrap()), ("OFFRAMP_APPROVER_MUST_DIFFER", "maybe")],
    );
    assert!(line.to_string().contains("OFFRAMP_APPROVER_MUST_DIFFER"), "the bad setting is named: {line}");
}
