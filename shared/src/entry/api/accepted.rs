//! What the HTTP API keeps about a run it started (docs/architecture.md#the-http-api), in the
//! audit store's idempotency records (conditional writes, no new table, index or IAM prefix):
//!
//! - `api#<operation id>`: written when the API accepts the run (in progress, holding the
//!   [`Acceptance`]), then completed by the run's function with the run's whole report. So
//!   `GET /operations/{id}` works before the function starts, and gives the seed report when
//!   it is done, even for a run that ended before it recorded an operation (an unknown client).
//! - `api-run#<operation id>`: claimed by the first delivery of the asynchronous invoke that
//!   starts the run. Lambda may deliver an asynchronous event more than once; a second
//!   delivery finds the claim and runs nothing.
//!
//! Both are kept [`KEPT_DAYS`] days (the store's TTL removes them then); the audit trail
//! itself is kept as always.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, now};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::AuditStore;

/// How long the API's records of a run are kept.
pub const KEPT_DAYS: i64 = 30;

/// What the API accepted: kept until the run's report replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acceptance {
    /// `deactivate-configs`, …, or `client-offboarding`.
    pub workflow: String,
    /// The authenticated principal (and whom it is on behalf of).
    pub initiated_by: String,
    pub accepted_at: DateTime<Utc>,
    /// The chain's Step Functions execution, for `client-offboarding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// The API's record of one run, as read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Kept {
    /// Accepted; the function has not finished (or not started) the run.
    Accepted(Acceptance),
    /// The run ended; its whole report.
    Finished(Value),
}

fn accepted_key(operation_id: &str) -> String {
    format!("api#{operation_id}")
}

fn run_key(operation_id: &str) -> String {
    format!("api-run#{operation_id}")
}

fn record(key: String, operation_id: &str, report: Option<Value>) -> IdempotencyRecord {
    let at = now();
    let expires_at = at + chrono::Duration::days(KEPT_DAYS);
    IdempotencyRecord {
        key,
        // The same on both sides without sharing anything but the id: only the run of this
        // operation can complete its record.
        payload_hash: crate::operation::plan_hash(&json!({ "operation_id": operation_id })),
        status: IdempotencyStatus::InProgress,
        operation_id: Some(operation_id.to_string()),
        report,
        created_at: at,
        expires_at,
        // Never taken over: a run that died leaves its operation to the trail, not to a retry.
        in_progress_until: Some(expires_at),
    }
}

fn store_error(e: crate::error::AuditError) -> OfframpError {
    OfframpError::from(e)
}

/// Record that the API accepted `operation_id`. A taken id (never, with UUIDv7) is refused.
pub async fn accept(audit: &dyn AuditStore, operation_id: &str, acceptance: &Acceptance) -> Result<(), OfframpError> {
    let held = serde_json::to_value(acceptance).unwrap_or_default();
    let claim = audit.claim_idempotency_key(&record(accepted_key(operation_id), operation_id, Some(held))).await;
    match claim.map_err(store_error)? {
        IdempotencyClaim::Claimed => Ok(()),
        IdempotencyClaim::Existing(_) => Err(OfframpError::new(
            ErrorCode::OperationInProgress,
            format!("operation {operation_id} was already accepted; nothing was started"),
        )),
    }
}

/// Forget an acceptance whose run could not be started (the 202 was never sent).
pub async fn withdraw(audit: &dyn AuditStore, operation_id: &str) {
    if let Err(e) = audit.release_idempotency_key(&accepted_key(operation_id)).await {
        tracing::warn!(operation_id, error = %e, "could not withdraw the API's acceptance of a run never started");
    }
}

/// Before a function runs an operation the API assigned: it was accepted, has not finished,
/// and no other delivery of the same invoke has started it.
pub async fn begin_run(audit: &dyn AuditStore, operation_id: &str) -> Result<(), OfframpError> {
    match read(audit, operation_id).await? {
        None => {
            let message = format!("operation {operation_id} was not accepted by the API; nothing was started");
            return Err(OfframpError::invalid_input(message));
        }
        Some(Kept::Finished(_)) => return Err(already(operation_id)),
        Some(Kept::Accepted(_)) => {}
    }
    let claim = audit.claim_idempotency_key(&record(run_key(operation_id), operation_id, None)).await;
    match claim.map_err(store_error)? {
        IdempotencyClaim::Claimed => Ok(()),
        IdempotencyClaim::Existing(_) => Err(already(operation_id)),
    }
}

/// The kept report of a finished run, when it reads as this function's report.
async fn finished_report<Rep: crate::operation::IdempotentReport>(
    audit: &dyn AuditStore,
    operation_id: &str,
) -> Option<Rep> {
    match read(audit, operation_id).await {
        Ok(Some(Kept::Finished(report))) => serde_json::from_value(report).ok(),
        _ => None,
    }
}

fn already(operation_id: &str) -> OfframpError {
    OfframpError::new(
        ErrorCode::OperationInProgress,
        format!("operation {operation_id} was already started by an earlier delivery; nothing was done again"),
    )
}

/// Keep the run's report with its acceptance. Only the first report is kept.
pub async fn finish(audit: &dyn AuditStore, operation_id: &str, report: &Value) {
    let mut done = record(accepted_key(operation_id), operation_id, Some(report.clone()));
    done.status = IdempotencyStatus::Completed;
    if let Err(e) = audit.complete_idempotency_key(&done).await {
        tracing::error!(operation_id, error = %e, "the run's report could not be kept for GET /operations");
    }
}

/// What the API keeps about `operation_id`, if anything.
pub async fn read(audit: &dyn AuditStore, operation_id: &str) -> Result<Option<Kept>, OfframpError> {
    let Some(stored) = audit.idempotency_record(&accepted_key(operation_id)).await.map_err(store_error)? else {
        return Ok(None);
    };
    let held = stored.report.unwrap_or_default();
    Ok(Some(match stored.status {
        IdempotencyStatus::Completed => Kept::Finished(held),
        IdempotencyStatus::InProgress => Kept::Accepted(serde_json::from_value(held).map_err(|e| {
            OfframpError::new(ErrorCode::AuditStoreError, format!("the API's record of {operation_id}: {e}"))
        })?),
    }))
}

/// Whether a delivery has started the run (its claim is there).
pub async fn run_started(audit: &dyn AuditStore, operation_id: &str) -> Result<bool, OfframpError> {
    Ok(audit.idempotency_record(&run_key(operation_id)).await.map_err(store_error)?.is_some())
}

/// Run a workflow for `caller`: as it is, or, when the API assigned its operation id, under
/// that id ([`crate::domain::with_assigned_operation_id`]) once per accepted run, keeping its
/// report for `GET /operations/{id}`. A delivery refused here changes nothing and keeps
/// nothing (the first report stays). `run` is boxed by the callers: a workflow's future is
/// large, and held inline here and in the handler it would overflow a test thread's stack.
pub async fn run_assigned<Rep, F>(audit: &dyn AuditStore, caller: &super::super::Caller, run: F) -> Rep
where
    Rep: crate::operation::IdempotentReport,
    F: std::future::Future<Output = Rep>,
{
    let Some(operation_id) = caller.assigned_operation_id.clone() else {
        return run.await;
    };
    // Lambda delivers an asynchronous event at least once: a later delivery of a run that
    // has finished answers that run's report, as the first delivery did. It runs nothing,
    // and it is no new failure (no retry, no dead letter for a run that succeeded).
    if let Some(report) = finished_report::<Rep>(audit, &operation_id).await {
        tracing::info!(operation_id, "a repeated delivery of a finished run: answered with its report, nothing run");
        return report;
    }
    if let Err(refused) = begin_run(audit, &operation_id).await {
        return Rep::from_error(&refused);
    }
    let report = crate::domain::with_assigned_operation_id(operation_id.clone(), run).await;
    finish(audit, &operation_id, &serde_json::to_value(&report).unwrap_or_default()).await;
    report
}
