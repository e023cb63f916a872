//! The document from records made here: hostile vendor text stays text, and a large
//! client (5,000 configurations) renders as one table, in bounded size and time.

use chrono::Utc;
use serde_json::json;

use super::*;
use crate::domain::{
    ItemChange, ItemKind, ItemOutcome, OperationDetail, OperationEvent, OperationEventKind, OperationRecord, Workflow,
};

fn record(id: &str, workflow: Workflow, parent: Option<&str>) -> OperationRecord {
    OperationRecord {
        operation_id: id.into(),
        workflow,
        psa: "connectwise".into(),
        client_id: "250".into(),
        client_name: "Contoso <Dental>".into(),
        initiated_by: "tech@msp.example".into(),
        reason: Some("Contract ended".into()),
        dry_run: false,
        plan_hash: None,
        created_at: Utc::now(),
        input: json!({}),
        parent_operation_id: parent.map(str::to_string),
    }
}

fn change(op: &str, kind: ItemKind, id: usize, name: &str, outcome: ItemOutcome) -> ItemChange {
    ItemChange {
        operation_id: op.into(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: kind,
        item_id: id.to_string(),
        item_name: name.into(),
        outcome,
        before: json!({"id": id, "name": name, "status": "Active"}),
        after: Some(json!({"id": id, "name": name, "status": "Inactive"})),
        error_code: None,
        error_message: None,
        at: Utc::now(),
    }
}

fn evidence(configs: usize) -> Evidence {
    let parent = "0190c3a0-0000-7000-8000-000000000001";
    let child = "0190c3a0-0000-7000-8000-000000000002";
    let mut changes = vec![
        change(child, ItemKind::Contact, 5001, "<script>alert(1)</script>", ItemOutcome::Changed),
        change(child, ItemKind::Contact, 5002, "Bob\u{202E}nosliW", ItemOutcome::Changed),
    ];
    for i in 0..configs {
        changes.push(ItemChange::intent(child, ItemKind::Configuration, &(30000 + i).to_string(), "x"));
        changes.push(change(child, ItemKind::Configuration, 30000 + i, &format!("PC-{i}"), ItemOutcome::Changed));
    }
    let detail = OperationDetail {
        operation: record(child, Workflow::DeactivateConfigs, Some(parent)),
        events: vec![OperationEvent::new(child, OperationEventKind::Completed, json!({}))],
        snapshots: Vec::new(),
        changes,
    };
    let approval = json!({"approved_by": "Dana <b>Approver</b>", "approved_at": "2026-01-02T03:04:05Z",
        "plan_hash": "ab".repeat(32)});
    Evidence {
        operation: record(parent, Workflow::ClientOffboarding, None),
        events: vec![OperationEvent::new(parent, OperationEventKind::Completed, json!({ "approval": approval }))],
        runs: vec![RunEvidence::from(detail)],
        outcome: Outcome { status: "completed".into(), consent: Some(approval), ..Default::default() },
        rendered_at: Utc::now(),
    }
}

#[test]
fn hostile_names_are_text_and_hidden_characters_are_shown() {
    let html = render(&evidence(3));
    assert!(!html.contains("<script"), "no script element can come from a name");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown as text");
    assert!(html.contains("Bob[U+202E]nosliW") && !html.contains('\u{202E}'), "the bidi override is shown, not obeyed");
    assert!(html.contains("Dana &lt;b&gt;Approver&lt;/b&gt;"), "the approver, escaped");
    assert!(html.contains("Contoso &lt;Dental&gt;"));
    assert!(html.contains(&format!("content=\"{}\"", crate::html::escape(&content_security_policy()))));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external resource");
}

#[test]
fn an_intent_and_its_result_are_one_line() {
    let evidence = evidence(10);
    let run = &evidence.runs[0];
    assert_eq!(run.items["configuration"].len(), 10);
    assert_eq!(run.counts().get("changed"), Some(&12));
    assert_eq!(run.items["configuration"][0].outcome, "changed");
}

/// 5,000 configurations: one table row each, the document a few MB at most, rendered in
/// well under a second (debug build: a generous bound).
#[test]
fn five_thousand_configurations_render_as_one_table() {
    let evidence = evidence(5_000);
    let started = std::time::Instant::now();
    let html = render(&evidence);
    let took = started.elapsed();
    let rows = html.matches("<tr><td class=\"mono\">3").count();
    assert_eq!(rows, 5_000, "one row per configuration");
    assert!(html.len() < 4 << 20, "{} bytes", html.len());
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    eprintln!("5,000 configurations: {} bytes in {took:?}", html.len());
}
