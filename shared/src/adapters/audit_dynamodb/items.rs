//! Items: domain records to DynamoDB items and back (layout in the module documentation).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;

use super::{TTL_ATTRIBUTE, keys};
use crate::domain::{ItemChange, ItemSnapshot, OperationEvent, OperationRecord, SettingRecord};
use crate::error::AuditError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// Attribute names.
pub(super) mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const DATA: &str = "data";
    pub const PSA: &str = "psa";
    pub const CLIENT_ID: &str = "client_id";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    pub const GSI2PK: &str = "gsi2pk";
    pub const GSI2SK: &str = "gsi2sk";
    /// Lease: the holder (a run's UUID), compared by renew and release.
    pub const HOLDER: &str = "holder";
    /// Lease: when it runs out, epoch milliseconds (N).
    pub const LEASE_UNTIL: &str = "lease_until";
    /// Idempotency record: `in_progress` or `completed`.
    pub const STATUS: &str = "status";
    pub const PAYLOAD_HASH: &str = "payload_hash";
    /// Idempotency record: when the whole record runs out, epoch milliseconds (N).
    pub const RECORD_UNTIL: &str = "record_until";
    /// Idempotency record: when an in-progress claim may be taken over, epoch milliseconds (N).
    pub const IN_PROGRESS_UNTIL: &str = "in_progress_until";
}

pub(super) fn build_error(e: BuildError) -> AuditError {
    AuditError::Unavailable { message: format!("cannot build a DynamoDB request: {e}") }
}

pub(super) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, AuditError> {
    serde_json::to_string(value)
        .map_err(|e| AuditError::Unavailable { message: format!("cannot serialise the {what}: {e}") })
}

pub(super) fn string_attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

pub(super) fn parse_data<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, AuditError> {
    let location = || format!("{} {}", string_attr(item, attr::PK), string_attr(item, attr::SK));
    let data = item
        .get(attr::DATA)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| AuditError::Corrupt { message: format!("{what} {}: no data attribute", location()) })?;
    serde_json::from_str(data).map_err(|e| AuditError::Corrupt { message: format!("{what} {}: {e}", location()) })
}

pub(super) fn expiry_attribute(item: &Item) -> Result<Option<i64>, AuditError> {
    match item.get(TTL_ATTRIBUTE) {
        None => Ok(None),
        Some(value) => {
            value.as_n().ok().and_then(|n| n.parse::<i64>().ok()).map(Some).ok_or_else(|| AuditError::Corrupt {
                message: format!("{TTL_ATTRIBUTE} of {} is not a number", string_attr(item, attr::PK)),
            })
        }
    }
}

/// The `expires_at` of a new operation's items: dry runs expire, real runs never do.
pub(super) fn expiry_for(operation: &OperationRecord, retention: chrono::Duration) -> Option<i64> {
    if !operation.dry_run {
        return None;
    }
    // An absurd retention that overflows the calendar means "keep it".
    operation.created_at.checked_add_signed(retention).map(|at| at.timestamp())
}

pub(super) fn key_item(pk: &str, sk: &str) -> Item {
    HashMap::from([
        (attr::PK.to_string(), AttributeValue::S(pk.to_string())),
        (attr::SK.to_string(), AttributeValue::S(sk.to_string())),
    ])
}

pub(super) fn record_item(pk: String, sk: String, data: String, expires_at: Option<i64>) -> Item {
    let mut item = key_item(&pk, &sk);
    item.insert(attr::DATA.to_string(), AttributeValue::S(data));
    if let Some(expires_at) = expires_at {
        item.insert(TTL_ATTRIBUTE.to_string(), AttributeValue::N(expires_at.to_string()));
    }
    item
}

pub(super) fn meta_item(operation: &OperationRecord, expires_at: Option<i64>) -> Result<Item, AuditError> {
    let id = &operation.operation_id;
    let mut item = record_item(
        keys::operation_pk(id),
        keys::META_SK.to_string(),
        to_json("operation record", operation)?,
        expires_at,
    );
    let s = |v: String| AttributeValue::S(v);
    item.insert(attr::PSA.to_string(), s(operation.psa.clone()));
    item.insert(attr::CLIENT_ID.to_string(), s(operation.client_id.clone()));
    item.insert(attr::GSI1PK.to_string(), s(keys::client_pk(&operation.psa, &operation.client_id)));
    item.insert(attr::GSI1SK.to_string(), s(id.clone()));
    item.insert(attr::GSI2PK.to_string(), s(keys::ALL_OPERATIONS.to_string()));
    item.insert(attr::GSI2SK.to_string(), s(id.clone()));
    Ok(item)
}

/// A child operation's header again, in its parent's partition under `CHILD#<id>`, so
/// the parent's children are one Query whatever company they belong to. It carries no GSI
/// key: it is a link, never listed as an operation of its own.
pub(super) fn child_link_item(
    operation: &OperationRecord,
    parent_operation_id: &str,
    expires_at: Option<i64>,
) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(parent_operation_id),
        keys::child_sk(&operation.operation_id),
        to_json("operation record", operation)?,
        expires_at,
    ))
}

pub(super) fn event_item(event: &OperationEvent, expires_at: Option<i64>) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(&event.operation_id),
        keys::event_sk(&event.event_id),
        to_json("operation event", event)?,
        expires_at,
    ))
}

pub(super) fn snapshot_item(snapshot: &ItemSnapshot, expires_at: Option<i64>) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(&snapshot.operation_id),
        keys::snapshot_sk(&snapshot.item_type, &snapshot.item_id),
        to_json("snapshot", snapshot)?,
        expires_at,
    ))
}

pub(super) fn change_item(change: &ItemChange, expires_at: Option<i64>) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(&change.operation_id),
        keys::change_sk(&change.change_id),
        to_json("item change", change)?,
        expires_at,
    ))
}

pub(super) fn setting_item(record: &SettingRecord, version_id: &str) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::settings_pk(&record.psa, &record.scope),
        keys::setting_sk(&record.key, version_id),
        to_json("setting", record)?,
        // Settings are kept forever.
        None,
    ))
}

/// Roughly how many bytes an item weighs against DynamoDB's size limits (names and
/// values, as DynamoDB counts them; numbers counted as their text, an overestimate).
pub(super) fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 64,
                }
        })
        .sum()
}

/// Records for the unit tests of this store's modules.
#[cfg(test)]
pub(super) mod fixtures {
    use crate::domain::{ItemChange, ItemOutcome, ItemSnapshot};

    pub(in super::super) fn snapshot(i: usize) -> ItemSnapshot {
        ItemSnapshot {
            operation_id: "op".into(),
            item_type: crate::domain::ItemKind::Configuration,
            item_id: i.to_string(),
            item_name: format!("PC {i}"),
            state: serde_json::json!({}),
            planned_action: "deactivate".into(),
        }
    }

    pub(in super::super) fn change(i: usize) -> ItemChange {
        ItemChange {
            operation_id: "op".into(),
            change_id: format!("change-{i:03}"),
            item_type: crate::domain::ItemKind::Configuration,
            item_id: i.to_string(),
            item_name: format!("PC {i}"),
            outcome: ItemOutcome::Changed,
            before: serde_json::json!({}),
            after: None,
            error_code: None,
            error_message: None,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("timestamp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{change, snapshot};
    use super::*;

    fn record(dry_run: bool) -> OperationRecord {
        OperationRecord {
            operation_id: "0190c3a0-0000-7000-8000-000000000001".into(),
            workflow: crate::domain::Workflow::DeactivateConfigs,
            psa: "connectwise".into(),
            client_id: "250".into(),
            client_name: "Acme".into(),
            initiated_by: "tester".into(),
            reason: None,
            dry_run,
            plan_hash: None,
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("timestamp"),
            input: serde_json::json!({}),
            parent_operation_id: None,
        }
    }

    #[test]
    fn meta_item_carries_both_gsi_keys_and_the_filter_attributes() {
        let op = record(false);
        let item = meta_item(&op, None).expect("item");
        assert_eq!(string_attr(&item, "pk"), format!("OP#{}", op.operation_id));
        assert_eq!(string_attr(&item, "sk"), "META");
        assert_eq!(string_attr(&item, "gsi1pk"), "CLIENT#connectwise#250");
        assert_eq!(string_attr(&item, "gsi1sk"), op.operation_id);
        assert_eq!(string_attr(&item, "gsi2pk"), "OPERATIONS");
        assert_eq!(string_attr(&item, "gsi2sk"), op.operation_id);
        assert_eq!(string_attr(&item, "client_id"), "250");
        assert_eq!(string_attr(&item, "psa"), "connectwise");
        assert!(!item.contains_key(TTL_ATTRIBUTE));
        let parsed: OperationRecord = parse_data(&item, "operation").expect("data");
        assert_eq!(parsed, op);
    }

    #[test]
    fn only_headers_carry_gsi_keys() {
        let event = OperationEvent::new("op", crate::domain::OperationEventKind::Started, serde_json::json!({}));
        for item in [
            event_item(&event, Some(1)).expect("event"),
            snapshot_item(&snapshot(1), Some(1)).expect("snapshot"),
            change_item(&change(1), Some(1)).expect("change"),
        ] {
            assert!(!item.keys().any(|k| k.starts_with("gsi")), "{item:?}");
            assert_eq!(item.get(TTL_ATTRIBUTE), Some(&AttributeValue::N("1".into())));
        }
    }

    #[test]
    fn setting_items_carry_no_gsi_keys_and_never_expire() {
        let record = SettingRecord {
            psa: "halo".into(),
            scope: "*".into(),
            key: "k".into(),
            value: None,
            set_by: "tester".into(),
            set_at: crate::domain::now(),
        };
        let item = setting_item(&record, "0190").expect("item");
        assert!(!item.keys().any(|k| k.starts_with("gsi")), "{item:?}");
        assert!(!item.contains_key(TTL_ATTRIBUTE));
        assert_eq!(string_attr(&item, "sk"), "KEY#k#0190");
    }

    #[test]
    fn dry_runs_expire_after_the_retention_and_real_runs_never() {
        let retention = chrono::Duration::days(90);
        assert_eq!(expiry_for(&record(false), retention), None);
        assert_eq!(expiry_for(&record(true), retention), Some(1_700_000_000 + 90 * 86_400));
        assert_eq!(expiry_for(&record(true), chrono::Duration::MAX), None);
        let item = meta_item(&record(true), Some(123)).expect("item");
        assert_eq!(expiry_attribute(&item).expect("expiry"), Some(123));
    }

    #[test]
    fn corrupt_data_is_reported_as_corrupt() {
        let mut item = key_item("OP#x", "META");
        assert!(matches!(parse_data::<OperationRecord>(&item, "operation"), Err(AuditError::Corrupt { .. })));
        item.insert("data".into(), AttributeValue::S("not json".into()));
        assert!(matches!(parse_data::<OperationRecord>(&item, "operation"), Err(AuditError::Corrupt { .. })));
    }

    #[test]
    fn item_size_counts_names_and_values() {
        let item = record_item("OP#a".into(), "META".into(), "{}".into(), Some(12));
        assert_eq!(item_size(&item), "pk".len() + 4 + "sk".len() + 4 + "data".len() + 2 + TTL_ATTRIBUTE.len() + 2);
    }
}
