//! The behaviour every [`AuditStore`] must have, as one test suite.
//!
//! [`run_conformance`] is run against each adapter (SQLite, DynamoDB on moto) so
//! both accept and refuse exactly the same writes and read back the same thing.
//! It needs an *empty* store: it checks listings exactly.

use std::fmt::Debug;

use offramp::domain::{
    GLOBAL_SCOPE, ItemChange, ItemOutcome, ItemSnapshot, OperationDetail, OperationEvent, OperationEventKind,
    OperationFilter, OperationRecord, OperationSummary, SettingRecord, Workflow, new_operation_id, now,
};
use offramp::error::AuditError;
use offramp::ports::{AuditStore, SettingsStore};
use serde_json::json;

/// A realistic operation header with a fresh id.
pub fn operation_record(client_id: &str, psa: &str, dry_run: bool) -> OperationRecord {
    OperationRecord {
        operation_id: new_operation_id(),
        workflow: offramp::domain::Workflow::DeactivateConfigs,
        psa: psa.to_string(),
        client_id: client_id.to_string(),
        client_name: format!("Client {client_id} — Zürich GmbH"),
        initiated_by: "technician@msp.example".to_string(),
        reason: Some("contract ended".to_string()),
        dry_run,
        plan_hash: dry_run.then(|| "sha256:0f1e2d".to_string()),
        created_at: now(),
        input: json!({
            "client_id": client_id,
            "dry_run": dry_run,
            "exclude": ["firewall-01", "nas"],
            "options": {"include_archived": false, "batch": 25, "ratio": 0.5},
        }),
        parent_operation_id: None,
    }
}

/// A pre-change snapshot of one item.
pub fn snapshot(operation_id: &str, item_type: &str, item_id: &str) -> ItemSnapshot {
    ItemSnapshot {
        operation_id: operation_id.to_string(),
        item_type: item_type.parse().expect("a known item kind"),
        item_id: item_id.to_string(),
        item_name: format!("{item_type} {item_id}"),
        state: json!({
            "id": item_id,
            "status": {"id": 1, "name": "Active"},
            "tags": ["laptop", "ünïcode ✓"],
            "lastLogin": null,
        }),
        planned_action: "deactivate".to_string(),
    }
}

/// One change record (a fresh UUIDv7 change id).
pub fn change(operation_id: &str, item_id: &str, outcome: ItemOutcome) -> ItemChange {
    let failed = outcome == ItemOutcome::Failed;
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: offramp::domain::ItemKind::Configuration,
        item_id: item_id.to_string(),
        item_name: format!("PC {item_id}"),
        outcome,
        before: json!({"status": "Active"}),
        after: (outcome == ItemOutcome::Changed).then(|| json!({"status": "Inactive"})),
        error_code: failed.then(|| "ConfigUpdateFailed".to_string()),
        error_message: failed.then(|| "HTTP 400: status is locked".to_string()),
        at: now(),
    }
}

fn expect_already_exists<T: Debug>(what: &str, result: Result<T, AuditError>) {
    match result {
        Err(AuditError::AlreadyExists { .. }) => {}
        other => panic!("{what}: expected AuditError::AlreadyExists, got {other:?}"),
    }
}

async fn detail(store: &dyn AuditStore, operation_id: &str) -> OperationDetail {
    store
        .operation(operation_id)
        .await
        .unwrap_or_else(|e| panic!("operation({operation_id}) failed: {e}"))
        .unwrap_or_else(|| panic!("operation({operation_id}) returned None"))
}

async fn list(
    store: &dyn AuditStore,
    client_id: Option<&str>,
    psa: Option<&str>,
    limit: usize,
) -> Vec<OperationSummary> {
    let filter = OperationFilter { client_id: client_id.map(str::to_string), psa: psa.map(str::to_string), limit };
    store.list_operations(&filter).await.unwrap_or_else(|e| panic!("list_operations({filter:?}) failed: {e}"))
}

fn ids(summaries: &[OperationSummary]) -> Vec<&str> {
    summaries.iter().map(|s| s.operation.operation_id.as_str()).collect()
}

/// Expected summaries: newest first (by id), at most `limit`.
fn expected_summaries(
    mut operations: Vec<(&OperationRecord, Option<&OperationEvent>)>,
    limit: usize,
) -> Vec<OperationSummary> {
    operations.sort_by(|a, b| b.0.operation_id.cmp(&a.0.operation_id));
    operations
        .into_iter()
        .take(limit)
        .map(|(operation, last)| OperationSummary {
            operation: operation.clone(),
            last_event: last.map(|e| e.kind),
            last_event_at: last.map(|e| e.at),
        })
        .collect()
}

/// Snapshot keys and names first, so a failure shows a readable difference
/// before the full comparison.
fn assert_snapshots(actual: &[ItemSnapshot], expected: &[ItemSnapshot], what: &str) {
    let keys = |list: &[ItemSnapshot]| -> Vec<String> {
        list.iter().map(|s| format!("{}/{} {}", s.item_type, s.item_id, s.item_name)).collect()
    };
    assert_eq!(keys(actual), keys(expected), "{what}");
    assert_eq!(actual, expected, "{what}");
}

fn assert_changes(actual: &[ItemChange], expected: &[ItemChange], what: &str) {
    let ids = |list: &[ItemChange]| -> Vec<String> { list.iter().map(|c| c.change_id.clone()).collect() };
    assert_eq!(ids(actual), ids(expected), "{what}");
    assert_eq!(actual, expected, "{what}");
}

fn sorted_snapshots(mut snapshots: Vec<ItemSnapshot>) -> Vec<ItemSnapshot> {
    snapshots.sort_by(|a, b| (&a.item_type, &a.item_id).cmp(&(&b.item_type, &b.item_id)));
    snapshots
}

/// Run every check on an empty store; panics on the first failure.
pub async fn run_conformance(store: &dyn AuditStore) {
    // --- Empty store ---------------------------------------------------------
    assert_eq!(list(store, None, None, 0).await, Vec::new(), "a new store lists no operation");
    assert_eq!(store.operation(&new_operation_id()).await.expect("operation(unknown)"), None);

    // --- Operations ------------------------------------------------------------
    // 55 operations of one client first, to check the default limit (50) and limits.
    let mut bulk = Vec::new();
    for _ in 0..55 {
        let op = operation_record("bulk-7", "connectwise", false);
        store.create_operation(&op).await.expect("create bulk operation");
        bulk.push(op);
    }
    let a = operation_record("c1", "connectwise", false);
    let b = operation_record("c2", "connectwise", false);
    let mut c = operation_record("c1", "connectwise", true);
    c.parent_operation_id = Some(a.operation_id.clone());
    // Same client id on another PSA: a different company.
    let d = operation_record("c1", "autotask", false);
    for op in [&a, &b, &c, &d] {
        store.create_operation(op).await.expect("create operation");
    }

    // Creating an existing id again is refused and changes nothing.
    let mut rewrite = a.clone();
    rewrite.client_name = "Someone else".to_string();
    rewrite.dry_run = true;
    expect_already_exists("create_operation with an existing id", store.create_operation(&rewrite).await);
    assert_eq!(detail(store, &a.operation_id).await.operation, a, "the first header stays as written");

    // --- Events ----------------------------------------------------------------
    let e1 = OperationEvent::new(&a.operation_id, OperationEventKind::Planned, json!({"items": 60}));
    let e2 = OperationEvent::new(&a.operation_id, OperationEventKind::Started, json!({}));
    let e3 = OperationEvent::new(&a.operation_id, OperationEventKind::Completed, json!({"changed": 58, "failed": 2}));
    // Written out of order: reads order them by event id.
    for event in [&e3, &e1, &e2] {
        store.append_event(event).await.expect("append event");
    }
    let mut events = vec![e1.clone(), e2.clone(), e3.clone()];
    events.sort_by(|x, y| x.event_id.cmp(&y.event_id));
    assert_eq!(detail(store, &a.operation_id).await.events, events, "events come back ordered by event id");

    let rewrite = OperationEvent { kind: OperationEventKind::Failed, ..e1.clone() };
    expect_already_exists("append_event with an existing event id", store.append_event(&rewrite).await);
    assert_eq!(detail(store, &a.operation_id).await.events, events, "a refused event changes nothing");

    let c_event = OperationEvent::new(&c.operation_id, OperationEventKind::Planned, json!({}));
    store.append_event(&c_event).await.expect("append event to the dry run");

    // A plan of 15,000 configurations (about 1.3 MB, over DynamoDB's 400 KB per item, with
    // multi-byte characters across the cuts) comes back exactly, after a small event, and
    // as the latest event in listings.
    let before_big = OperationEvent::new(&b.operation_id, OperationEventKind::Started, json!({}));
    let plan: Vec<serde_json::Value> = (0..15_000)
        .map(|i| json!({"id": i, "name": format!("Gerät {i:05} — Büro"), "status": "Active", "type": "Workstation"}))
        .collect();
    let big = OperationEvent::new(&b.operation_id, OperationEventKind::Completed, json!({ "configurations": plan }));
    assert!(serde_json::to_string(&big).unwrap().len() > 1_000_000, "the event is over a megabyte");
    store.append_event(&big).await.expect("append a large event");
    store.append_event(&before_big).await.expect("append a small event");
    let b_events = vec![before_big, big.clone()];
    assert_eq!(detail(store, &b.operation_id).await.events, b_events, "a large event round-trips");
    expect_already_exists("append_event rewriting the large event", store.append_event(&big).await);

    // --- Snapshots ---------------------------------------------------------------
    // 60 in one call (more than two DynamoDB transactions), two item types.
    let snapshots: Vec<ItemSnapshot> = (0..60)
        .map(|i| {
            let item_type = if i % 3 == 0 { "contact" } else { "configuration" };
            snapshot(&a.operation_id, item_type, &format!("item-{i:03}"))
        })
        .collect();
    store.put_snapshots(&snapshots).await.expect("put 60 snapshots");
    let expected_snapshots = sorted_snapshots(snapshots.clone());
    assert_snapshots(&detail(store, &a.operation_id).await.snapshots, &expected_snapshots, "60 snapshots read back");

    // Calls that would rewrite a snapshot are refused and write nothing.
    let existing = ItemSnapshot { item_name: "rewritten".to_string(), ..snapshots[0].clone() };
    let new = |i: usize| snapshot(&a.operation_id, "configuration", &format!("new-{i:03}"));
    let small: Vec<ItemSnapshot> = vec![new(0), new(1), existing.clone()];
    expect_already_exists("put_snapshots rewriting one (small call)", store.put_snapshots(&small).await);
    let mut conflict_late: Vec<ItemSnapshot> = (100..129).map(new).collect();
    conflict_late.push(existing.clone());
    expect_already_exists("put_snapshots rewriting one (30, conflict last)", store.put_snapshots(&conflict_late).await);
    let mut conflict_first = vec![existing.clone()];
    conflict_first.extend((200..229).map(new));
    expect_already_exists(
        "put_snapshots rewriting one (30, conflict first)",
        store.put_snapshots(&conflict_first).await,
    );
    let twice: Vec<ItemSnapshot> = vec![new(300), new(301), new(300)];
    expect_already_exists("put_snapshots naming one item twice", store.put_snapshots(&twice).await);
    let mut twice_large: Vec<ItemSnapshot> = (400..430).map(new).collect();
    twice_large.push(new(400));
    expect_already_exists("put_snapshots naming one item twice (31)", store.put_snapshots(&twice_large).await);
    assert_snapshots(
        &detail(store, &a.operation_id).await.snapshots,
        &expected_snapshots,
        "refused snapshot calls wrote nothing and rewrote nothing",
    );

    // The same item in another operation is another snapshot.
    let b_snapshot = snapshot(&b.operation_id, "contact", "item-000");
    store.put_snapshots(std::slice::from_ref(&b_snapshot)).await.expect("same item, other operation");
    store.put_snapshots(&[]).await.expect("an empty call is fine");

    // --- Changes -----------------------------------------------------------------
    let outcomes = [ItemOutcome::Changed, ItemOutcome::Skipped, ItemOutcome::Failed];
    let changes: Vec<ItemChange> =
        (0..60).map(|i| change(&a.operation_id, &format!("item-{i:03}"), outcomes[i % 3])).collect();
    // Written newest first: reads order them by change id.
    let reversed: Vec<ItemChange> = changes.iter().rev().cloned().collect();
    store.put_changes(&reversed).await.expect("put 60 changes");
    let mut expected_changes = changes.clone();
    expected_changes.sort_by(|x, y| x.change_id.cmp(&y.change_id));
    assert_changes(&detail(store, &a.operation_id).await.changes, &expected_changes, "60 changes read back in order");

    // A retried item appends a record; nothing is overwritten.
    let retry = change(&a.operation_id, "item-002", ItemOutcome::Changed);
    store.put_changes(std::slice::from_ref(&retry)).await.expect("append a retry");
    expected_changes.push(retry);
    expected_changes.sort_by(|x, y| x.change_id.cmp(&y.change_id));

    let dup = change(&a.operation_id, "item-005", ItemOutcome::Changed);
    let twice: Vec<ItemChange> = vec![change(&a.operation_id, "item-004", ItemOutcome::Changed), dup.clone(), dup];
    expect_already_exists("put_changes naming one change id twice", store.put_changes(&twice).await);

    // Calls that would rewrite a change are refused and write nothing: alone, among new
    // changes (one DynamoDB transaction), and among 120 new ones (two, checked first).
    let rewritten = ItemChange { item_name: "rewritten".to_string(), ..changes[7].clone() };
    expect_already_exists("put_changes rewriting one", store.put_changes(std::slice::from_ref(&rewritten)).await);
    let fresh = |n: usize| -> Vec<ItemChange> {
        (0..n).map(|i| change(&a.operation_id, &format!("fresh-{i:03}"), ItemOutcome::Changed)).collect()
    };
    let mut small = fresh(3);
    small.push(rewritten.clone());
    expect_already_exists("put_changes rewriting one (4, conflict last)", store.put_changes(&small).await);
    let mut large = fresh(120);
    large.push(rewritten);
    expect_already_exists("put_changes rewriting one (121, conflict last)", store.put_changes(&large).await);
    assert_changes(
        &detail(store, &a.operation_id).await.changes,
        &expected_changes,
        "refused change calls wrote nothing and rewrote nothing",
    );
    store.put_changes(&[]).await.expect("an empty call is fine");

    // --- Round trip ------------------------------------------------------------
    let expected_a = OperationDetail {
        operation: a.clone(),
        events: events.clone(),
        snapshots: expected_snapshots,
        changes: expected_changes,
    };
    assert_eq!(detail(store, &a.operation_id).await, expected_a, "operation() returns exactly what was written");
    let expected_b = OperationDetail {
        operation: b.clone(),
        events: b_events.clone(),
        snapshots: vec![b_snapshot],
        changes: vec![],
    };
    assert_eq!(detail(store, &b.operation_id).await, expected_b);
    assert_eq!(detail(store, &c.operation_id).await.operation, c, "a dry run reads back with its parent id");
    let last = expected_a.last_event().expect("A has events");

    // --- Listing -----------------------------------------------------------------
    let mut everything: Vec<(&OperationRecord, Option<&OperationEvent>)> = bulk.iter().map(|op| (op, None)).collect();
    everything.extend([(&a, Some(last)), (&b, Some(&big)), (&c, Some(&c_event)), (&d, None)]);
    let listed = list(store, None, None, 0).await;
    assert_eq!(listed.len(), 50, "limit 0 means the default of 50");
    assert_eq!(listed, expected_summaries(everything.clone(), 50), "all operations, newest first");
    let listed = list(store, None, None, 3).await;
    assert_eq!(ids(&listed).len(), 3, "limit 3");
    assert_eq!(listed, expected_summaries(everything.clone(), 3));
    assert_eq!(list(store, None, None, 1000).await, expected_summaries(everything, 1000), "all 59 operations");

    let c1_cw = vec![(&a, Some(last)), (&c, Some(&c_event))];
    assert_eq!(
        list(store, Some("c1"), Some("connectwise"), 0).await,
        expected_summaries(c1_cw.clone(), 50),
        "one client on one PSA, newest first, with the latest event"
    );
    assert_eq!(list(store, Some("c1"), Some("connectwise"), 1).await, expected_summaries(c1_cw, 1), "client, limit 1");
    let c1_any = vec![(&a, Some(last)), (&c, Some(&c_event)), (&d, None)];
    assert_eq!(
        list(store, Some("c1"), None, 0).await,
        expected_summaries(c1_any, 50),
        "a client id without a PSA matches it on every PSA"
    );
    assert_eq!(list(store, None, Some("autotask"), 0).await, expected_summaries(vec![(&d, None)], 50), "a PSA alone");
    assert_eq!(list(store, Some("c2"), Some("connectwise"), 0).await, expected_summaries(vec![(&b, Some(&big))], 50));
    assert_eq!(list(store, Some("c2"), Some("autotask"), 0).await, Vec::new(), "c2 has no operation on autotask");

    let bulk_all: Vec<(&OperationRecord, Option<&OperationEvent>)> = bulk.iter().map(|op| (op, None)).collect();
    assert_eq!(list(store, Some("bulk-7"), Some("connectwise"), 0).await, expected_summaries(bulk_all.clone(), 50));
    assert_eq!(list(store, Some("bulk-7"), Some("connectwise"), 54).await.len(), 54);
    assert_eq!(list(store, Some("bulk-7"), Some("connectwise"), 100).await, expected_summaries(bulk_all.clone(), 100));
    assert_eq!(list(store, Some("bulk-7"), None, 7).await, expected_summaries(bulk_all, 7));

    // --- Children (a rollback names its original in parent_operation_id) -----------------
    let children = |id: String| async move {
        store.child_operations(&id).await.unwrap_or_else(|e| panic!("child_operations({id}) failed: {e}"))
    };
    assert_eq!(children(a.operation_id.clone()).await, vec![c.clone()], "C (a dry run) is A's child");
    assert_eq!(children(b.operation_id.clone()).await, Vec::new(), "B has no child");
    assert_eq!(children(c.operation_id.clone()).await, Vec::new(), "C has no child of its own");
    // A later, real child of A, and a grandchild: children come oldest first, one level only.
    let mut e = operation_record("c1", "connectwise", false);
    e.parent_operation_id = Some(a.operation_id.clone());
    store.create_operation(&e).await.expect("create a second child");
    let mut g = operation_record("c1", "connectwise", false);
    g.parent_operation_id = Some(e.operation_id.clone());
    store.create_operation(&g).await.expect("create a grandchild");
    assert_eq!(children(a.operation_id.clone()).await, vec![c.clone(), e.clone()], "A's children, oldest first");
    assert_eq!(children(e.operation_id.clone()).await, vec![g], "E's child");
    // A chain's children belong to other systems and companies (an IT Glue organization,
    // a Microsoft 365 tenant): still the parent's children.
    let mut chain = operation_record("c1", "connectwise", false);
    chain.workflow = Workflow::ClientOffboarding;
    store.create_operation(&chain).await.expect("create a chain");
    let mut itglue = operation_record("9001", "itglue", false);
    itglue.parent_operation_id = Some(chain.operation_id.clone());
    store.create_operation(&itglue).await.expect("create a child in another system");
    assert_eq!(children(chain.operation_id.clone()).await, vec![itglue], "a child of another system");
    assert_eq!(children(d.operation_id.clone()).await, Vec::new(), "same client id on another PSA: no child");
    assert_eq!(children(new_operation_id()).await, Vec::new(), "an unknown parent has no children");

    // --- Unknown ids ---------------------------------------------------------------
    assert_eq!(store.operation(&new_operation_id()).await.expect("operation(unknown)"), None);
    assert_eq!(list(store, Some("no-such-client"), None, 0).await, Vec::new());
    assert_eq!(list(store, Some("no-such-client"), Some("connectwise"), 0).await, Vec::new());
}

// ----- Settings (workflow 001, docs/workflows.md#001-settings) ------------------------

/// A setting record set by a technician now.
pub fn setting_record(psa: &str, scope: &str, key: &str, value: Option<&str>) -> SettingRecord {
    SettingRecord {
        psa: psa.to_string(),
        scope: scope.to_string(),
        key: key.to_string(),
        value: value.map(str::to_string),
        set_by: "technician@msp.example".to_string(),
        // Full precision (nanoseconds): the store must give back exactly this time.
        set_at: chrono::Utc::now(),
    }
}

async fn get_setting(store: &dyn SettingsStore, psa: &str, scope: &str, key: &str) -> Option<SettingRecord> {
    store
        .get_setting(psa, scope, key)
        .await
        .unwrap_or_else(|e| panic!("get_setting({psa}, {scope}, {key}) failed: {e}"))
}

async fn put_setting(store: &dyn SettingsStore, record: &SettingRecord) {
    store.put_setting(record).await.unwrap_or_else(|e| panic!("put_setting({record:?}) failed: {e}"));
}

async fn list_settings(store: &dyn SettingsStore, psa: &str, scope: &str) -> Vec<SettingRecord> {
    store.list_settings(psa, scope).await.unwrap_or_else(|e| panic!("list_settings({psa}, {scope}) failed: {e}"))
}

/// Run every settings check on a store with no settings; panics on the first failure.
/// Also checks that settings never show up as operations.
pub async fn run_settings_conformance<S: AuditStore + SettingsStore>(store: &S) {
    let cw = "connectwise";
    let operations_before = list(store, None, None, 1000).await;
    let client_before = list(store, Some("250"), Some(cw), 0).await;

    // --- Unset keys ----------------------------------------------------------------
    assert_eq!(get_setting(store, cw, "250", "notify_to").await, None, "a key never set");
    assert_eq!(list_settings(store, cw, "250").await, Vec::new(), "no settings yet");
    assert_eq!(list_settings(store, cw, GLOBAL_SCOPE).await, Vec::new(), "no global settings yet");

    // --- Put, get, newer wins, unset ---------------------------------------------------
    let first = setting_record(cw, "250", "notify_to", Some("manager@client.example"));
    put_setting(store, &first).await;
    assert_eq!(get_setting(store, cw, "250", "notify_to").await, Some(first.clone()), "put then get");

    let second = SettingRecord {
        value: Some("Owner <owner@client.example>, ünïcode ✓".to_string()),
        set_by: "lead@msp.example".to_string(),
        ..setting_record(cw, "250", "notify_to", None)
    };
    put_setting(store, &second).await;
    assert_eq!(get_setting(store, cw, "250", "notify_to").await, Some(second.clone()), "a newer put wins");

    let unset = setting_record(cw, "250", "notify_to", None);
    put_setting(store, &unset).await;
    let got = get_setting(store, cw, "250", "notify_to").await;
    assert_eq!(got, Some(unset.clone()), "an unset key is a record whose value is None");
    assert_eq!(got.and_then(|r| r.value), None);

    // --- Same millisecond: the later put wins even with the very same set_at ----------------
    let same_time = setting_record(cw, "250", "ticket_queue", None);
    for i in 0..20 {
        put_setting(store, &SettingRecord { value: Some(format!("queue-{i:02}")), ..same_time.clone() }).await;
    }
    assert_eq!(
        get_setting(store, cw, "250", "ticket_queue").await.and_then(|r| r.value).as_deref(),
        Some("queue-19"),
        "20 puts in a row (many in the same millisecond) keep their order"
    );

    // --- List: newest per key, sorted by key ------------------------------------------------
    let zeta = setting_record(cw, "250", "zeta", Some("z"));
    let alpha_old = setting_record(cw, "250", "alpha", Some("old"));
    put_setting(store, &zeta).await;
    put_setting(store, &alpha_old).await;
    let alpha = setting_record(cw, "250", "alpha", Some("new"));
    put_setting(store, &alpha).await;
    let listed = list_settings(store, cw, "250").await;
    let keys: Vec<&str> = listed.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["alpha", "notify_to", "ticket_queue", "zeta"], "one record per key, sorted by key");
    assert_eq!(listed[0], alpha, "alpha: the newest version");
    assert_eq!(listed[1], unset, "notify_to: the unset record is listed with None");
    assert_eq!(listed[2].value.as_deref(), Some("queue-19"));
    assert_eq!(listed[3], zeta);

    // --- Isolation: scopes, PSAs, and names that contain the key separator ---------------
    let global = setting_record(cw, GLOBAL_SCOPE, "notify_to", Some("noc@msp.example"));
    put_setting(store, &global).await;
    let other_client = setting_record(cw, "2500", "notify_to", Some("x@client2500.example"));
    put_setting(store, &other_client).await;
    let other_psa = setting_record("autotask", "250", "notify_to", Some("at@client.example"));
    put_setting(store, &other_psa).await;
    assert_eq!(get_setting(store, cw, "250", "notify_to").await, Some(unset.clone()), "client 250 keeps its own");
    assert_eq!(get_setting(store, cw, GLOBAL_SCOPE, "notify_to").await, Some(global.clone()));
    assert_eq!(get_setting(store, cw, "2500", "notify_to").await, Some(other_client.clone()), "2500 is not 250");
    assert_eq!(get_setting(store, "autotask", "250", "notify_to").await, Some(other_psa.clone()));
    assert_eq!(get_setting(store, "halo", "250", "notify_to").await, None, "no halo settings");
    assert_eq!(get_setting(store, "autotask", "250", "alpha").await, None, "alpha is a connectwise setting");
    assert_eq!(list_settings(store, cw, GLOBAL_SCOPE).await, vec![global]);
    assert_eq!(list_settings(store, "autotask", "250").await, vec![other_psa]);
    assert_eq!(list_settings(store, cw, "25").await, Vec::new(), "a scope is not a prefix match");
    assert_eq!(list_settings(store, cw, "250").await, listed, "other scopes and PSAs leave 250's list alone");

    // A key that extends another key with the separator, and (psa, scope) pairs that would
    // read the same if joined with it.
    let plain = setting_record("x", "y", "k", Some("plain"));
    let hashed = setting_record("x", "y", "k#2", Some("hashed"));
    let joined_1 = setting_record("a#b", "c", "k", Some("a#b / c"));
    let joined_2 = setting_record("a", "b#c", "k", Some("a / b#c"));
    for record in [&plain, &hashed, &joined_1, &joined_2] {
        put_setting(store, record).await;
    }
    assert_eq!(get_setting(store, "x", "y", "k").await, Some(plain.clone()), "k is not k#2");
    assert_eq!(get_setting(store, "x", "y", "k#2").await, Some(hashed.clone()));
    assert_eq!(list_settings(store, "x", "y").await, vec![plain, hashed]);
    assert_eq!(get_setting(store, "a#b", "c", "k").await, Some(joined_1));
    assert_eq!(get_setting(store, "a", "b#c", "k").await, Some(joined_2));

    // --- Settings are not operations -------------------------------------------------------
    assert_eq!(list(store, None, None, 1000).await, operations_before, "settings never listed as operations");
    assert_eq!(list(store, Some("250"), Some(cw), 0).await, client_before, "nor as operations of client 250");
}
