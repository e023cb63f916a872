//! The operation engine's driver (`offramp::operation::gate_then_apply`) with a toy plan on
//! the real SQLite store: the order of the gates, what reaches the trail before a plan is
//! applied, the lease around the apply, and how every gate that stops a plan is recorded.
//! The workflows' own tests show the same through their reports; these pin the order.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^engine::/)'`

use std::sync::Mutex;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::domain::{ItemKind, ItemSnapshot, LeaseRequest, OperationEventKind, OperationRecord, RunStatus};
use offramp::error::{AuditError, ErrorCode, OfframpError};
use offramp::operation::{
    Admission, ApprovalProof, ApprovalVia, BoundApproval, Consent, Gate, GatedPlan, LeaseOptions, gate_then_apply,
};
use offramp::ports::AuditStore;
use offramp_tests::audit_conformance::operation_record;
use serde_json::{Value, json};

const TARGET: &str = "toy#1";
const PLAN_HASH: &str = "b";

/// What the engine asked of the toy plan, in order.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn push(&self, what: String) {
        self.0.lock().unwrap().push(what);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct ToyPlan<'a> {
    audit: &'a dyn AuditStore,
    items: Vec<&'static str>,
    over_guard: bool,
    seen: &'a Seen,
}

impl GatedPlan for ToyPlan<'_> {
    type Report = String;

    fn lease_target(&self) -> String {
        TARGET.into()
    }

    fn over_guard(&self) -> bool {
        self.over_guard
    }

    fn detail(&self) -> Value {
        json!({ "items": self.items })
    }

    fn started(&self) -> Value {
        json!({ "planned": self.items.len() })
    }

    fn snapshots<'a>(&'a self, operation_id: &'a str) -> impl Iterator<Item = ItemSnapshot> + 'a {
        self.items.iter().map(move |item| ItemSnapshot {
            operation_id: operation_id.to_string(),
            item_type: ItemKind::Configuration,
            item_id: item.to_string(),
            item_name: item.to_string(),
            state: json!({ "active": true }),
            planned_action: "deactivate".into(),
        })
    }

    fn answer(self, _record: &OperationRecord, gate: &Gate) -> Result<String, OfframpError> {
        self.seen.push(format!("answer {gate:?}"));
        match gate {
            Gate::AwaitingApproval { status: RunStatus::ConfirmationRequired } => {
                Err(OfframpError::new(ErrorCode::ConfirmationRequired, "confirm first"))
            }
            _ => Ok("planned".into()),
        }
    }

    async fn apply(self, record: OperationRecord, approval: BoundApproval) -> Result<String, OfframpError> {
        let trail = self.audit.operation(&record.operation_id).await?.expect("the header is written before apply");
        let events: Vec<_> = trail.events.iter().map(|e| e.kind).collect();
        self.seen.push(format!("apply {} snapshots {events:?} under {}", trail.snapshots.len(), approval.plan_hash));
        let rival = self.audit.acquire_lease(&lease_request("rival")).await;
        self.seen.push(format!("rival lease taken: {}", rival.is_ok()));
        if self.items.contains(&"fails") {
            return Err(OfframpError::new(ErrorCode::ConfigUpdateFailed, "the vendor refused"));
        }
        Ok("applied".into())
    }
}

fn lease_request(operation_id: &str) -> LeaseRequest {
    LeaseRequest {
        target: TARGET.into(),
        operation_id: operation_id.into(),
        holder: uuid::Uuid::now_v7().to_string(),
        ttl: chrono::Duration::seconds(60),
        break_existing: false,
    }
}

fn consent(dry_run: bool, approval_required: bool, approved_hash: Option<&str>) -> Consent {
    Consent {
        dry_run,
        approval_required,
        missing_status: RunStatus::ConfirmationRequired,
        proof: approved_hash.map(|hash| ApprovalProof {
            plan_hash: Some(hash.into()),
            approved_by: "ann@msp.example".into(),
            via: ApprovalVia::Approval,
        }),
        override_blast_radius: false,
    }
}

fn record() -> OperationRecord {
    OperationRecord { plan_hash: Some(PLAN_HASH.into()), ..operation_record("1", "toy", false) }
}

fn store() -> (tempfile::TempDir, SqliteAuditStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("open the SQLite store");
    (dir, store)
}

/// Drive the toy plan through the engine; returns its outcome, what it saw, and the trail.
async fn drive(
    audit: &SqliteAuditStore,
    consent: &Consent,
    items: Vec<&'static str>,
    over_guard: bool,
) -> (Result<String, (ErrorCode, bool)>, Vec<String>, OperationRecord) {
    let seen = Seen::default();
    let record = record();
    let plan = ToyPlan { audit, items, over_guard, seen: &seen };
    let admission = Admission { consent, lease: LeaseOptions::default(), break_lease: false };
    let outcome = gate_then_apply(audit, admission, record.clone(), plan).await;
    (outcome.map_err(|s| (s.error.code(), s.recorded)), seen.all(), record)
}

async fn event_kinds(audit: &SqliteAuditStore, operation_id: &str) -> (bool, Vec<OperationEventKind>) {
    let detail = audit.operation(operation_id).await.unwrap().expect("the operation is in the trail");
    (detail.operation.dry_run, detail.events.iter().map(|e| e.kind).collect())
}

#[tokio::test]
async fn an_approved_plan_is_applied_under_its_lease_after_header_snapshots_and_started() {
    let (_dir, audit) = store();
    let (outcome, seen, record) = drive(&audit, &consent(false, true, Some(PLAN_HASH)), vec!["a", "b"], false).await;
    assert_eq!(outcome, Ok("applied".into()));
    assert_eq!(seen, vec!["apply 2 snapshots [Started] under b".to_string(), "rival lease taken: false".into()]);
    let detail = audit.operation(&record.operation_id).await.unwrap().unwrap();
    let started = &detail.events[0].detail;
    assert_eq!((started["plan_hash"].as_str(), started["planned"].as_u64()), (Some(PLAN_HASH), Some(2)));
    assert_eq!(started["approved_by"], json!("ann@msp.example"));
    assert_eq!(started["lease_broken"], json!(false));
    // Released at the end: the next run may take it.
    audit.acquire_lease(&lease_request("next")).await.expect("the lease is released after the run");
}

#[tokio::test]
async fn an_apply_that_fails_is_reported_as_recorded_and_releases_the_lease() {
    let (_dir, audit) = store();
    let (outcome, _, record) = drive(&audit, &consent(false, false, None), vec!["fails"], false).await;
    assert_eq!(outcome, Err((ErrorCode::ConfigUpdateFailed, true)));
    assert_eq!(event_kinds(&audit, &record.operation_id).await, (false, vec![OperationEventKind::Started]));
    audit.acquire_lease(&lease_request("next")).await.expect("the lease is released after a failed run");
}

#[tokio::test]
async fn a_changed_plan_is_refused_and_kept_as_a_real_run_without_asking_the_workflow() {
    let (_dir, audit) = store();
    let (outcome, seen, record) = drive(&audit, &consent(false, true, Some("a")), vec!["a"], false).await;
    assert_eq!(outcome, Err((ErrorCode::PlanChanged, true)));
    assert!(seen.is_empty(), "neither answered nor applied: {seen:?}");
    assert_eq!(event_kinds(&audit, &record.operation_id).await, (false, vec![OperationEventKind::Refused]));
    let detail = audit.operation(&record.operation_id).await.unwrap().unwrap();
    assert_eq!(detail.events[0].detail["code"], json!("PlanChanged"));
    assert!(detail.snapshots.is_empty(), "nothing applied, nothing snapshotted");
}

#[tokio::test]
async fn each_gate_that_stops_a_plan_is_answered_and_recorded_its_own_way() {
    let (_dir, audit) = store();
    // A dry run answers even a plan over the guard, and is recorded as a dry run.
    let (outcome, seen, record) = drive(&audit, &consent(true, true, None), vec!["a"], true).await;
    assert_eq!((outcome, seen), (Ok("planned".into()), vec!["answer DryRun".to_string()]));
    assert_eq!(event_kinds(&audit, &record.operation_id).await, (true, vec![OperationEventKind::Planned]));
    // Over the guard: refused before an approval is asked for, kept as a real run.
    let (outcome, seen, record) = drive(&audit, &consent(false, true, Some(PLAN_HASH)), vec!["a"], true).await;
    assert_eq!((outcome, seen), (Ok("planned".into()), vec!["answer BlastRadiusExceeded".to_string()]));
    assert_eq!(event_kinds(&audit, &record.operation_id).await, (false, vec![OperationEventKind::Refused]));
    // A missing confirmation the workflow ends on: its error, recorded with the refusal.
    let (outcome, _, record) = drive(&audit, &consent(false, true, None), vec!["a"], false).await;
    assert_eq!(outcome, Err((ErrorCode::ConfirmationRequired, true)));
    let detail = audit.operation(&record.operation_id).await.unwrap().unwrap();
    assert_eq!(detail.events[0].detail["code"], json!("ConfirmationRequired"));
    assert_eq!(detail.events[0].detail["status"], json!("confirmation_required"));
}

#[tokio::test]
async fn a_held_lease_stops_the_run_before_anything_is_written() {
    let (_dir, audit) = store();
    audit.acquire_lease(&lease_request("running")).await.expect("the running operation holds the lease");
    let (outcome, seen, record) = drive(&audit, &consent(false, false, None), vec!["a"], false).await;
    assert_eq!(outcome, Err((ErrorCode::OperationInProgress, false)));
    assert!(seen.is_empty(), "the plan was not applied: {seen:?}");
    assert!(
        audit.operation(&record.operation_id).await.unwrap().is_none(),
        "nothing of the stopped run is in the trail"
    );
    let held = audit.acquire_lease(&lease_request("third")).await;
    assert!(matches!(held, Err(AuditError::LeaseHeld { operation_id, .. }) if operation_id == "running"));
}
