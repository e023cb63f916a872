//! Unit tests of the request and its validation.

use super::*;
use crate::operation::sort_key;
#[test]
fn request_rejects_unknown_fields_so_a_typo_cannot_turn_a_dry_run_into_a_real_one() {
    let err =
        serde_json::from_value::<DeactivateConfigsRequest>(json!({"client_id": "1", "dryrun": true})).unwrap_err();
    assert!(err.to_string().contains("dryrun"), "{err}");
    let ok: DeactivateConfigsRequest = serde_json::from_value(json!({"client_id": 250, "dry_run": true})).unwrap();
    assert_eq!(ok.client_id.as_deref(), Some("250"));
}

#[test]
fn validation_requires_exactly_one_identifier() {
    let none = DeactivateConfigsRequest::default();
    assert_eq!(validate(&none).err().unwrap().code(), ErrorCode::InvalidInput);
    let both =
        DeactivateConfigsRequest { client_id: Some("1".into()), client_name: Some("A".into()), ..Default::default() };
    assert_eq!(validate(&both).err().unwrap().code(), ErrorCode::InvalidInput);
    let approval_in_dry_run = DeactivateConfigsRequest {
        client_id: Some("1".into()),
        dry_run: true,
        approval: Some(Approval { plan_hash: "a".repeat(64), approved_by: "x".into() }),
        ..Default::default()
    };
    assert_eq!(validate(&approval_in_dry_run).err().unwrap().code(), ErrorCode::InvalidInput);
}

#[test]
fn sort_key_orders_numeric_ids_numerically() {
    let mut ids = vec!["10", "9", "100", "abc"];
    ids.sort_by_key(|id| sort_key(id));
    assert_eq!(ids, vec!["9", "10", "100", "abc"]);
}

#[test]
fn failure_report_has_the_seed_error_shape() {
    let report = ConfigDeactivationReport::failure(&OfframpError::invalid_input("bad"), None, None, false);
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["success"], json!(false));
    assert_eq!(value["errors"][0]["code"], json!("InvalidInput"));
    assert!(value["errors"][0]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(value.get("status").is_none());
}
