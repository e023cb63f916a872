//! The audit store adapters: the shared conformance suite on SQLite and on
//! DynamoDB (moto), plus what only DynamoDB has (TTL of dry runs, table layout).
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^audit_stores::/)'`

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus};
use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::domain::{ItemOutcome, OperationEvent, OperationEventKind, OperationRecord};
use offramp::error::AuditError;
use offramp::ports::AuditStore;
use offramp_tests::audit_conformance::{change, operation_record, run_conformance, run_settings_conformance, snapshot};
use offramp_tests::moto;

type Item = HashMap<String, AttributeValue>;
/// (attribute name, key type) of each key element.
type KeySchema = Vec<(String, KeyType)>;

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A path whose parent does not exist yet, like `.offramp/audit.sqlite` on a first run.
    let path = dir.path().join(".offramp").join("audit.sqlite");
    let store = SqliteAuditStore::open(&path).expect("open the SQLite store");
    run_conformance(&store).await;
}

#[tokio::test]
async fn sqlite_settings_conform() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("open the SQLite store");
    // With an operation in the store, so "settings are not operations" compares a non-empty list.
    store.create_operation(&operation_record("250", "connectwise", false)).await.expect("create an operation");
    run_settings_conformance(&store).await;
}

#[tokio::test]
async fn dynamodb_settings_conform() {
    let client = moto::dynamodb_client().await;
    let store = dynamodb_store(&client).await;
    store.create_operation(&operation_record("250", "connectwise", false)).await.expect("create an operation");
    run_settings_conformance(&store).await;
}

async fn dynamodb_store(client: &aws_sdk_dynamodb::Client) -> DynamoDbAuditStore {
    let store = DynamoDbAuditStore::new(client.clone(), moto::unique_table_name());
    store.create_table_if_missing().await.expect("create the table");
    store
}

#[tokio::test]
async fn dynamodb_store_conforms() {
    let client = moto::dynamodb_client().await;
    let store = dynamodb_store(&client).await;
    store.create_table_if_missing().await.expect("a second create_table_if_missing is a no-op");
    run_conformance(&store).await;
}

#[tokio::test]
async fn dynamodb_table_has_the_documented_layout() {
    let client = moto::dynamodb_client().await;
    let store = dynamodb_store(&client).await;
    let table = client.describe_table().table_name(store.table_name()).send().await.expect("describe table");
    let table = table.table().expect("table description");

    let key_schema = |keys: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> KeySchema {
        keys.iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect()
    };
    assert_eq!(
        key_schema(table.key_schema()),
        vec![("pk".to_string(), KeyType::Hash), ("sk".to_string(), KeyType::Range)]
    );
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest),
        "on-demand billing"
    );

    let mut indexes: Vec<(String, KeySchema, Option<ProjectionType>)> = table
        .global_secondary_indexes()
        .iter()
        .map(|index| {
            (
                index.index_name().unwrap_or_default().to_string(),
                key_schema(index.key_schema()),
                index.projection().and_then(|p| p.projection_type()).cloned(),
            )
        })
        .collect();
    indexes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        indexes,
        vec![
            (
                "ByClient".to_string(),
                vec![("gsi1pk".to_string(), KeyType::Hash), ("gsi1sk".to_string(), KeyType::Range)],
                Some(ProjectionType::All)
            ),
            (
                "ByTime".to_string(),
                vec![("gsi2pk".to_string(), KeyType::Hash), ("gsi2sk".to_string(), KeyType::Range)],
                Some(ProjectionType::All)
            ),
        ]
    );

    let ttl = client.describe_time_to_live().table_name(store.table_name()).send().await.expect("describe TTL");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

/// Every raw item of one operation, read with the SDK (not through the store).
async fn raw_items(client: &aws_sdk_dynamodb::Client, table: &str, operation_id: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("OP#{operation_id}")))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query raw items");
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

fn sk(item: &Item) -> &str {
    item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

/// Header, two events, 31 snapshots, 31 changes; the second half through `late`
/// (another store instance, as another Lambda would be: nothing cached).
async fn write_operation(store: &dyn AuditStore, late: &dyn AuditStore, op: &OperationRecord) {
    let id = &op.operation_id;
    store.create_operation(op).await.expect("create");
    store
        .append_event(&OperationEvent::new(id, OperationEventKind::Started, serde_json::json!({})))
        .await
        .expect("event");
    let snapshots: Vec<_> = (0..30).map(|i| snapshot(id, "configuration", &i.to_string())).collect();
    store.put_snapshots(&snapshots).await.expect("snapshots");
    let changes: Vec<_> = (0..30).map(|i| change(id, &i.to_string(), ItemOutcome::Changed)).collect();
    store.put_changes(&changes).await.expect("changes");

    late.append_event(&OperationEvent::new(id, OperationEventKind::Completed, serde_json::json!({})))
        .await
        .expect("late event");
    late.put_snapshots(&[snapshot(id, "contact", "1")]).await.expect("late snapshot");
    late.put_changes(&[change(id, "1", ItemOutcome::Skipped)]).await.expect("late change");
}

#[tokio::test]
async fn dynamodb_dry_run_items_expire_and_real_ones_do_not() {
    let client = moto::dynamodb_client().await;
    let table = moto::unique_table_name();
    let store = DynamoDbAuditStore::new(client.clone(), &table).with_dry_run_retention(chrono::Duration::days(7));
    store.create_table_if_missing().await.expect("create the table");
    // Default retention (90 days): the late items must still follow the header's expiry.
    let late = DynamoDbAuditStore::new(client.clone(), &table);

    let dry = operation_record("c9", "connectwise", true);
    let real = operation_record("c9", "connectwise", false);
    write_operation(&store, &late, &dry).await;
    write_operation(&store, &late, &real).await;

    let expected_expiry = (dry.created_at + chrono::Duration::days(7)).timestamp().to_string();
    let dry_items = raw_items(&client, &table, &dry.operation_id).await;
    assert_eq!(dry_items.len(), 1 + 2 + 31 + 31, "every record of the dry run was written");
    for item in &dry_items {
        assert_eq!(
            item.get("expires_at"),
            Some(&AttributeValue::N(expected_expiry.clone())),
            "dry-run item {} carries the operation's expiry",
            sk(item)
        );
    }
    let real_items = raw_items(&client, &table, &real.operation_id).await;
    assert_eq!(real_items.len(), 1 + 2 + 31 + 31, "every record of the real run was written");
    for item in &real_items {
        assert!(!item.contains_key("expires_at"), "real-run item {} must never expire", sk(item));
    }

    // Only the header carries the GSI keys.
    for item in &real_items {
        let is_meta = sk(item) == "META";
        assert_eq!(item.contains_key("gsi1pk"), is_meta, "gsi1pk on {}", sk(item));
        assert_eq!(item.contains_key("gsi2pk"), is_meta, "gsi2pk on {}", sk(item));
        if is_meta {
            assert_eq!(item.get("gsi1pk"), Some(&AttributeValue::S("CLIENT#connectwise#c9".into())));
            assert_eq!(item.get("gsi1sk"), Some(&AttributeValue::S(real.operation_id.clone())));
            assert_eq!(item.get("gsi2pk"), Some(&AttributeValue::S("OPERATIONS".into())));
            assert_eq!(item.get("gsi2sk"), Some(&AttributeValue::S(real.operation_id.clone())));
        }
    }

    // The default retention is 90 days.
    let dry_default = operation_record("c9", "connectwise", true);
    late.create_operation(&dry_default).await.expect("create");
    let items = raw_items(&client, &table, &dry_default.operation_id).await;
    let expected = (dry_default.created_at + chrono::Duration::days(90)).timestamp().to_string();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].get("expires_at"), Some(&AttributeValue::N(expected)));
}

#[tokio::test]
async fn dynamodb_errors_are_unavailable_and_name_the_call() {
    let client = moto::dynamodb_client().await;
    // No such table.
    let store = DynamoDbAuditStore::new(client, moto::unique_table_name());
    match store.create_operation(&operation_record("c1", "connectwise", false)).await {
        Err(AuditError::Unavailable { message }) => {
            assert!(message.contains("PutItem"), "{message}");
            assert!(message.contains(store.table_name()), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match store.operation("anything").await {
        Err(AuditError::Unavailable { message }) => assert!(message.contains("Query"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
