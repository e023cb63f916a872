//! Audit records exactly as the stores wrote them before workflow and item names became
//! typed: the JSON text each store keeps in `data`, for every workflow and item type the
//! workflows write. Tests write them raw (rusqlite, the DynamoDB SDK), then read them
//! through [`AuditStore`], so a change to the record types that stops old records from
//! reading fails here.

use offramp::domain::{OperationEventKind, OperationFilter};
use offramp::ports::AuditStore;
use serde_json::{Value, json};

/// One operation's records as stored: the header, events, snapshots and changes (`data` text).
pub struct LegacyOperation {
    pub header: &'static str,
    pub events: Vec<&'static str>,
    pub snapshots: Vec<&'static str>,
    pub changes: Vec<&'static str>,
}

impl LegacyOperation {
    pub fn header_value(&self) -> Value {
        parse(self.header)
    }
    pub fn operation_id(&self) -> String {
        text(&self.header_value(), "operation_id")
    }
}

pub fn parse(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("fixture is not JSON ({e}): {data}"))
}

pub fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_else(|| panic!("fixture has no string {field}: {value}")).to_string()
}

const CONFIGS: &str = "0190c3a0-0000-7000-8000-00000000c001";
const CONTACTS: &str = "0190c3a0-0000-7000-8000-00000000c002";
const ROLLBACK: &str = "0190c3a0-0000-7000-8000-00000000c003";
const ITGLUE: &str = "0190c3a0-0000-7000-8000-00000000c004";
const PLAN: &str = "0190c3a0-0000-7000-8000-00000000c005";

/// Five operations: one per workflow, and a dry run waiting for approval.
pub fn legacy_operations() -> Vec<LegacyOperation> {
    vec![
        LegacyOperation {
            header: r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","workflow":"deactivate-configs","psa":"connectwise","client_id":"250","client_name":"Former Client LLC","initiated_by":"tech@msp.example","reason":"contract ended","dry_run":false,"plan_hash":"sha256:9f2c","created_at":"2026-03-01T10:00:00.123Z","input":{"client_id":"250","dry_run":false},"parent_operation_id":null}"#,
            events: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","event_id":"0190c3a0-0001-7000-8000-000000000001","kind":"started","at":"2026-03-01T10:00:01Z","detail":{"plan_hash":"sha256:9f2c"}}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","event_id":"0190c3a0-0002-7000-8000-000000000002","kind":"completed","at":"2026-03-01T10:00:09.500Z","detail":{"configs_deactivated":1,"errors":1}}"#,
            ],
            snapshots: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","item_type":"configuration","item_id":"101","item_name":"PC-101","state":{"id":"101","status":{"state":"active","vendor_name":"Active"}},"planned_action":"deactivate"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","item_type":"configuration","item_id":"102","item_name":"NAS","state":{"id":"102","status":{"state":"inactive","vendor_name":"Inactive"}},"planned_action":"skip"}"#,
            ],
            changes: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","change_id":"0190c3a0-0003-7000-8000-000000000001","item_type":"configuration","item_id":"101","item_name":"PC-101","outcome":"changed","before":{"status":"Active"},"after":{"status":"Inactive"},"error_code":null,"error_message":null,"at":"2026-03-01T10:00:05Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c001","change_id":"0190c3a0-0003-7000-8000-000000000002","item_type":"configuration","item_id":"103","item_name":"Firewall","outcome":"failed","before":{"status":"Active"},"after":null,"error_code":"ConfigUpdateFailed","error_message":"HTTP 400: status is locked","at":"2026-03-01T10:00:06Z"}"#,
            ],
        },
        LegacyOperation {
            header: r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","workflow":"deactivate-contacts","psa":"autotask","client_id":"7","client_name":"Adatum","initiated_by":"lead@msp.example","reason":null,"dry_run":false,"plan_hash":null,"created_at":"2026-03-02T08:00:00Z","input":{"company_id":"7","confirmation":true},"parent_operation_id":null}"#,
            events: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","event_id":"0190c3a0-0004-7000-8000-000000000001","kind":"started","at":"2026-03-02T08:00:01Z","detail":{}}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","event_id":"0190c3a0-0005-7000-8000-000000000002","kind":"failed","at":"2026-03-02T08:00:02Z","detail":{"code":"PSAConnectionError"}}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","event_id":"0190c3a0-0006-7000-8000-000000000003","kind":"resumed","at":"2026-03-02T09:00:00Z","detail":{}}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","event_id":"0190c3a0-0007-7000-8000-000000000004","kind":"completed","at":"2026-03-02T09:00:05Z","detail":{}}"#,
            ],
            snapshots: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","item_type":"configuration_contact","item_id":"55","item_name":"Laptop 55","state":{"contact_id":"31"},"planned_action":"clear"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","item_type":"contact","item_id":"31","item_name":"Ann Example","state":{"id":"31","active":true},"planned_action":"deactivate"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","item_type":"ticket","item_id":"900","item_name":"Printer jam","state":{"contact_id":"31"},"planned_action":"reassign"}"#,
            ],
            changes: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","change_id":"0190c3a0-0008-7000-8000-000000000001","item_type":"contact","item_id":"31","item_name":"Ann Example","outcome":"changed","before":{"active":true},"after":{"active":false},"error_code":null,"error_message":null,"at":"2026-03-02T09:00:01Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","change_id":"0190c3a0-0008-7000-8000-000000000002","item_type":"ticket","item_id":"900","item_name":"Printer jam","outcome":"changed","before":{"contact_id":"31"},"after":{"contact_id":null},"error_code":null,"error_message":null,"at":"2026-03-02T09:00:02Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","change_id":"0190c3a0-0008-7000-8000-000000000003","item_type":"configuration_contact","item_id":"55","item_name":"Laptop 55","outcome":"changed","before":{"contact_id":"31"},"after":{"contact_id":null},"error_code":null,"error_message":null,"at":"2026-03-02T09:00:03Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","change_id":"0190c3a0-0008-7000-8000-000000000004","item_type":"ticket_note","item_id":"900","item_name":"Summary note","outcome":"changed","before":{},"after":{"note":"1 contact deactivated"},"error_code":null,"error_message":null,"at":"2026-03-02T09:00:04Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","change_id":"0190c3a0-0008-7000-8000-000000000005","item_type":"summary_ticket","item_id":"901","item_name":"Offboarding Adatum","outcome":"skipped","before":{},"after":null,"error_code":null,"error_message":null,"at":"2026-03-02T09:00:04.500Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c002","change_id":"0190c3a0-0008-7000-8000-000000000006","item_type":"notification","item_id":"requester","item_name":"manager@client.example","outcome":"failed","before":{},"after":null,"error_code":"NotificationFailed","error_message":"HTTP 503","at":"2026-03-02T09:00:05Z"}"#,
            ],
        },
        LegacyOperation {
            header: r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c003","workflow":"rollback","psa":"autotask","client_id":"7","client_name":"Adatum","initiated_by":"lead@msp.example","reason":"Rollback of 0190c3a0-0000-7000-8000-00000000c002","dry_run":false,"plan_hash":null,"created_at":"2026-03-03T12:00:00Z","input":{"operation_id":"0190c3a0-0000-7000-8000-00000000c002"},"parent_operation_id":"0190c3a0-0000-7000-8000-00000000c002"}"#,
            events: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c003","event_id":"0190c3a0-0009-7000-8000-000000000001","kind":"completed","at":"2026-03-03T12:00:04Z","detail":{"restored":2}}"#,
            ],
            snapshots: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c003","item_type":"contact","item_id":"31","item_name":"Ann Example","state":{"id":"31","active":false},"planned_action":"restore"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c003","item_type":"configuration","item_id":"101","item_name":"PC-101","state":{"id":"101"},"planned_action":"skip"}"#,
            ],
            changes: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c003","change_id":"0190c3a0-000a-7000-8000-000000000001","item_type":"contact","item_id":"31","item_name":"Ann Example","outcome":"changed","before":{"active":false},"after":{"active":true},"error_code":null,"error_message":null,"at":"2026-03-03T12:00:02Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c003","change_id":"0190c3a0-000a-7000-8000-000000000002","item_type":"configuration_contact","item_id":"55","item_name":"Laptop 55","outcome":"changed","before":{"contact_id":null},"after":{"contact_id":"31"},"error_code":null,"error_message":null,"at":"2026-03-03T12:00:03Z"}"#,
            ],
        },
        LegacyOperation {
            header: r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c004","workflow":"delete-itglue-org","psa":"itglue","client_id":"9001","client_name":"Contoso","initiated_by":"scheduler","reason":null,"dry_run":false,"plan_hash":null,"created_at":"2026-03-04T04:00:00Z","input":{"request":{"org_id":"9001","confirm_delete":true},"policy_psa_offboarded":true},"parent_operation_id":null}"#,
            events: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c004","event_id":"0190c3a0-000b-7000-8000-000000000001","kind":"completed","at":"2026-03-04T04:02:00Z","detail":{"deleted":true}}"#,
            ],
            snapshots: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c004","item_type":"itglue_organization","item_id":"9001","item_name":"Contoso","state":{"organization":{"id":"9001","name":"Contoso"},"dependencies":{"configurations":0}},"planned_action":"delete"}"#,
            ],
            changes: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c004","change_id":"0190c3a0-000c-7000-8000-000000000001","item_type":"itglue_export","item_id":"77","item_name":"Contoso export","outcome":"changed","before":{},"after":{"download_url":"https://export.example/77.zip"},"error_code":null,"error_message":null,"at":"2026-03-04T04:01:00Z"}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c004","change_id":"0190c3a0-000c-7000-8000-000000000002","item_type":"itglue_organization","item_id":"9001","item_name":"Contoso","outcome":"changed","before":{"id":"9001"},"after":{"deleted":true},"error_code":null,"error_message":null,"at":"2026-03-04T04:01:59Z"}"#,
            ],
        },
        LegacyOperation {
            header: r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c005","workflow":"deactivate-configs","psa":"halo","client_id":"12","client_name":"Fabrikam","initiated_by":"tech@msp.example","dry_run":true,"plan_hash":"sha256:aa01","created_at":"2026-03-05T07:00:00Z","input":{"client_id":"12","require_approval":true}}"#,
            events: vec![
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c005","event_id":"0190c3a0-000d-7000-8000-000000000001","kind":"approval_required","at":"2026-03-05T07:00:01Z","detail":{"plan_hash":"sha256:aa01"}}"#,
                r#"{"operation_id":"0190c3a0-0000-7000-8000-00000000c005","event_id":"0190c3a0-000e-7000-8000-000000000002","kind":"planned","at":"2026-03-05T07:00:02Z"}"#,
            ],
            snapshots: vec![],
            changes: vec![],
        },
    ]
}

fn serialised<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("records serialise")
}

/// Read every legacy operation back through the store and check what the workflows rely
/// on: names, kinds, outcomes, parents, times, and that nothing is lost on the way (each
/// record re-serialises to the JSON it was read from, absent optional fields aside).
pub async fn assert_legacy_operations_read(store: &dyn AuditStore) {
    for legacy in legacy_operations() {
        let id = legacy.operation_id();
        let detail = store.operation(&id).await.expect("operation()").unwrap_or_else(|| panic!("{id} not found"));
        let header = serialised(&detail.operation);
        let stored = legacy.header_value();
        for field in ["workflow", "psa", "client_id", "client_name", "initiated_by", "dry_run", "input"] {
            assert_eq!(header[field], stored[field], "{id}: {field}");
        }
        assert_eq!(header["parent_operation_id"], stored.get("parent_operation_id").cloned().unwrap_or(Value::Null));
        assert_eq!(detail.operation.created_at.to_rfc3339(), parse_time(&stored["created_at"]).to_rfc3339());
        let kinds: Vec<Value> = detail.events.iter().map(|e| serialised(&e.kind)).collect();
        let expected: Vec<Value> = legacy.events.iter().map(|e| parse(e)["kind"].clone()).collect();
        assert_eq!(kinds, expected, "{id}: event kinds, oldest first");
        let snapshot_names: Vec<(Value, Value)> = detail
            .snapshots
            .iter()
            .map(|s| {
                let v = serialised(s);
                (v["item_type"].clone(), v["planned_action"].clone())
            })
            .collect();
        let mut expected: Vec<(Value, Value)> = legacy
            .snapshots
            .iter()
            .map(|s| {
                let v = parse(s);
                (v["item_type"].clone(), v["planned_action"].clone())
            })
            .collect();
        expected.sort_by_key(|(t, _)| t.to_string());
        assert_eq!(snapshot_names, expected, "{id}: snapshot item types and actions");
        for (read, raw) in detail.changes.iter().zip(&legacy.changes) {
            assert_eq!(serialised(read), parse(raw), "{id}: a change reads back whole");
        }
        assert_eq!(detail.changes.len(), legacy.changes.len(), "{id}: every change");
        for (read, raw) in detail.events.iter().zip(&legacy.events) {
            let mut raw = parse(raw);
            raw.as_object_mut().expect("object").entry("detail").or_insert(Value::Null);
            assert_eq!(serialised(read), raw, "{id}: an event reads back whole");
        }
    }
    assert_listed(store).await;
}

fn parse_time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    serde_json::from_value(value.clone()).expect("a time")
}

async fn assert_listed(store: &dyn AuditStore) {
    let listed = store.list_operations(&OperationFilter { limit: 100, ..Default::default() }).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|s| s.operation.operation_id.as_str()).collect();
    assert_eq!(ids, [PLAN, ITGLUE, ROLLBACK, CONTACTS, CONFIGS], "every legacy operation, newest first");
    let workflows: Vec<Value> = listed.iter().map(|s| serialised(&s.operation)["workflow"].clone()).collect();
    assert_eq!(
        workflows,
        [
            json!("deactivate-configs"),
            json!("delete-itglue-org"),
            json!("rollback"),
            json!("deactivate-contacts"),
            json!("deactivate-configs")
        ]
    );
    let last: Vec<Option<OperationEventKind>> = listed.iter().map(|s| s.last_event).collect();
    use OperationEventKind::{Completed, Planned};
    assert_eq!(last, [Some(Planned), Some(Completed), Some(Completed), Some(Completed), Some(Completed)]);
    let filter = OperationFilter { client_id: Some("7".into()), psa: Some("autotask".into()), limit: 10 };
    let adatum = store.list_operations(&filter).await.expect("list one client");
    assert_eq!(adatum.iter().map(|s| s.operation.operation_id.as_str()).collect::<Vec<_>>(), [ROLLBACK, CONTACTS]);
    let children = store.child_operations(CONTACTS).await.expect("children");
    assert_eq!(children.iter().map(|c| c.operation_id.as_str()).collect::<Vec<_>>(), [ROLLBACK], "rollback found");
}
