//! The audit store adapters: the shared conformance suites (records, settings, leases,
//! idempotency keys) on SQLite and on DynamoDB (moto); the append-only guarantee tried
//! from outside the store; records in today's format read back; and what only DynamoDB
//! has (TTL of dry runs, table layout, write requests per item).
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^audit_stores::/)'`

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus};
use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::domain::{
    ItemChange, ItemOutcome, ItemSnapshot, OperationDetail, OperationEvent, OperationEventKind, OperationRecord,
};
use offramp::error::AuditError;
use offramp::ports::{AuditStore, SettingsStore};
use offramp_tests::audit_conformance::{
    change, operation_record, run_conformance, run_settings_conformance, setting_record, snapshot,
};
use offramp_tests::lease_conformance::{run_idempotency_conformance, run_lease_conformance};
use offramp_tests::legacy_records::{assert_legacy_operations_read, legacy_operations, parse, text};
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

// ----- Leases and idempotency keys -------------------------------------------------------

#[tokio::test]
async fn sqlite_leases_and_idempotency_conform() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("audit.sqlite");
    // Two stores on one file: two offramp processes on one laptop, two connections.
    let first = SqliteAuditStore::open(&path).expect("open");
    let second = SqliteAuditStore::open(&path).expect("open again");
    run_lease_conformance(&first, &second).await;
    run_idempotency_conformance(&first, &second).await;
}

#[tokio::test]
async fn dynamodb_leases_and_idempotency_conform() {
    let client = moto::dynamodb_client().await;
    let first = dynamodb_store(&client).await;
    // A second instance on the same table, as a second Lambda would be.
    let second = DynamoDbAuditStore::new(client.clone(), first.table_name());
    run_lease_conformance(&first, &second).await;
    run_idempotency_conformance(&first, &second).await;
}

// ----- Append-only, enforced --------------------------------------------------------------

/// An operation with one record of every kind, written through the store.
async fn write_one_of_each(store: &dyn AuditStore) -> OperationDetail {
    let op = operation_record("250", "connectwise", false);
    let id = &op.operation_id;
    store.create_operation(&op).await.expect("create");
    store
        .append_event(&OperationEvent::new(id, OperationEventKind::Started, serde_json::json!({})))
        .await
        .expect("event");
    store.put_snapshots(&[snapshot(id, "configuration", "1")]).await.expect("snapshot");
    store.put_changes(&[change(id, "1", ItemOutcome::Changed)]).await.expect("change");
    store.operation(id).await.expect("read").expect("present")
}

#[tokio::test]
async fn sqlite_refuses_deletes_and_updates_from_any_connection() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("audit.sqlite");
    let store = SqliteAuditStore::open(&path).expect("open");
    let before = write_one_of_each(&store).await;
    store.put_setting(&setting_record("connectwise", "250", "k", Some("v"))).await.expect("setting");

    // Someone with the file and the sqlite3 shell, not the store.
    let raw = rusqlite::Connection::open(&path).expect("raw connection");
    for statement in [
        "DELETE FROM changes",
        "DELETE FROM operations",
        "DELETE FROM events",
        "DELETE FROM snapshots",
        "DELETE FROM settings",
        "UPDATE operations SET data = '{}'",
        "UPDATE changes SET data = '{}'",
        "UPDATE events SET event_id = 'x'",
        "UPDATE snapshots SET item_id = 'x'",
        "UPDATE settings SET value = 'x'",
    ] {
        let err = raw.execute(statement, []).expect_err(statement);
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
    let after = store.operation(&before.operation.operation_id).await.expect("read").expect("present");
    assert_eq!(after, before, "every record is intact");
    assert_eq!(store.list_settings("connectwise", "250").await.expect("settings").len(), 1);
}

#[tokio::test]
async fn dynamodb_refuses_overwrites_and_keeps_the_original() {
    let client = moto::dynamodb_client().await;
    let store = dynamodb_store(&client).await;
    let before = write_one_of_each(&store).await;
    let id = before.operation.operation_id.clone();

    let header = OperationRecord { client_name: "rewritten".into(), ..before.operation.clone() };
    expect_already_exists(store.create_operation(&header).await, "an operation header again");
    let event = OperationEvent { kind: OperationEventKind::Failed, ..before.events[0].clone() };
    expect_already_exists(store.append_event(&event).await, "an event again");
    let snap = ItemSnapshot { item_name: "rewritten".into(), ..before.snapshots[0].clone() };
    expect_already_exists(store.put_snapshots(std::slice::from_ref(&snap)).await, "a snapshot again");
    let rewritten = ItemChange { item_name: "rewritten".into(), ..before.changes[0].clone() };
    expect_already_exists(store.put_changes(std::slice::from_ref(&rewritten)).await, "a change again");
    // In a transaction with new changes (one request), and in a call of several requests.
    let mut small: Vec<ItemChange> = (0..3).map(|i| change(&id, &format!("n{i}"), ItemOutcome::Changed)).collect();
    small.push(rewritten.clone());
    expect_already_exists(store.put_changes(&small).await, "a change among new ones");
    let mut large: Vec<ItemChange> = (0..150).map(|i| change(&id, &format!("m{i}"), ItemOutcome::Skipped)).collect();
    large.push(rewritten);
    expect_already_exists(store.put_changes(&large).await, "a change among 150 new ones");

    let after = store.operation(&id).await.expect("read").expect("present");
    assert_eq!(after, before, "the originals are intact, and the refused calls wrote nothing");
}

fn expect_already_exists(result: Result<(), AuditError>, what: &str) {
    assert!(matches!(result, Err(AuditError::AlreadyExists { .. })), "{what}: expected AlreadyExists, got {result:?}");
}

#[tokio::test]
async fn dynamodb_writes_one_request_per_25_audit_items() {
    let client = moto::dynamodb_client().await;
    let store = dynamodb_store(&client).await;
    let op = operation_record("250", "connectwise", false);
    let id = &op.operation_id;
    store.create_operation(&op).await.expect("create");

    // The workflows write changes 25 at a time: one TransactWriteItems each.
    let start = store.write_requests();
    for batch in 0..40 {
        let changes: Vec<ItemChange> =
            (0..25).map(|i| change(id, &format!("{batch}-{i}"), ItemOutcome::Changed)).collect();
        store.put_changes(&changes).await.expect("25 changes");
    }
    assert_eq!(store.write_requests() - start, 40, "1,000 changes in 40 requests");

    // A larger call: 100 per request.
    let start = store.write_requests();
    let snapshots: Vec<ItemSnapshot> = (0..250).map(|i| snapshot(id, "configuration", &i.to_string())).collect();
    store.put_snapshots(&snapshots).await.expect("250 snapshots");
    assert_eq!(store.write_requests() - start, 3, "250 snapshots in 3 requests");

    // Counted in the table, not in the store's own answer.
    let items = raw_items(&client, store.table_name(), id).await;
    assert_eq!(items.iter().filter(|i| sk(i).starts_with("CHANGE#")).count(), 1_000);
    assert_eq!(items.iter().filter(|i| sk(i).starts_with("SNAP#")).count(), 250);
}

// ----- Records in today's format ----------------------------------------------------------

#[tokio::test]
async fn sqlite_reads_records_in_todays_format() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("audit.sqlite");
    let store = SqliteAuditStore::open(&path).expect("open");
    let raw = rusqlite::Connection::open(&path).expect("raw connection");
    for legacy in legacy_operations() {
        let header = legacy.header_value();
        let id = legacy.operation_id();
        raw.execute(
            "INSERT INTO operations (operation_id, psa, client_id, data) VALUES (?1, ?2, ?3, ?4)",
            [id.as_str(), &text(&header, "psa"), &text(&header, "client_id"), legacy.header],
        )
        .expect("operation row");
        for event in &legacy.events {
            let event_id = text(&parse(event), "event_id");
            raw.execute(
                "INSERT INTO events (operation_id, event_id, data) VALUES (?1, ?2, ?3)",
                [&id, &event_id, *event],
            )
            .expect("event row");
        }
        for snap in &legacy.snapshots {
            let v = parse(snap);
            raw.execute(
                "INSERT INTO snapshots (operation_id, item_type, item_id, data) VALUES (?1, ?2, ?3, ?4)",
                [id.as_str(), &text(&v, "item_type"), &text(&v, "item_id"), snap],
            )
            .expect("snapshot row");
        }
        for change in &legacy.changes {
            let change_id = text(&parse(change), "change_id");
            raw.execute(
                "INSERT INTO changes (operation_id, change_id, data) VALUES (?1, ?2, ?3)",
                [&id, &change_id, *change],
            )
            .expect("change row");
        }
    }
    assert_legacy_operations_read(&store).await;
}

#[tokio::test]
async fn dynamodb_reads_items_in_todays_format() {
    let client = moto::dynamodb_client().await;
    let store = dynamodb_store(&client).await;
    let s = |v: &str| AttributeValue::S(v.to_string());
    for legacy in legacy_operations() {
        let header = legacy.header_value();
        let id = legacy.operation_id();
        let (psa, client_id) = (text(&header, "psa"), text(&header, "client_id"));
        // A dry run's items carry the TTL attribute; a real run's do not.
        let expiry = header["dry_run"].as_bool().expect("dry_run").then(|| AttributeValue::N("1900000000".into()));
        let item = |sk: String, data: &str| -> Item {
            let mut item =
                Item::from([("pk".into(), s(&format!("OP#{id}"))), ("sk".into(), s(&sk)), ("data".into(), s(data))]);
            if let Some(expiry) = &expiry {
                item.insert("expires_at".into(), expiry.clone());
            }
            item
        };
        let mut meta = item("META".into(), legacy.header);
        for (name, value) in [
            ("psa", psa.clone()),
            ("client_id", client_id.clone()),
            ("gsi1pk", format!("CLIENT#{psa}#{client_id}")),
            ("gsi1sk", id.clone()),
            ("gsi2pk", "OPERATIONS".into()),
            ("gsi2sk", id.clone()),
        ] {
            meta.insert(name.into(), s(&value));
        }
        let mut items = vec![meta];
        items.extend(legacy.events.iter().map(|e| item(format!("EVENT#{}", text(&parse(e), "event_id")), e)));
        items.extend(legacy.snapshots.iter().map(|snap| {
            let v = parse(snap);
            item(format!("SNAP#{}#{}", text(&v, "item_type"), text(&v, "item_id")), snap)
        }));
        items.extend(legacy.changes.iter().map(|c| item(format!("CHANGE#{}", text(&parse(c), "change_id")), c)));
        for item in items {
            client.put_item().table_name(store.table_name()).set_item(Some(item)).send().await.expect("raw put");
        }
    }
    assert_legacy_operations_read(&store).await;
}
