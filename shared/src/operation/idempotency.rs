//! Idempotent requests, with the semantics of Powertools for AWS Lambda's idempotency
//! utility: the first request with a key claims it (in progress), runs, and stores its
//! answer (completed); the same key with the same payload gets that answer back instead
//! of a second run (`OperationInProgress` while the first still runs); the same key with
//! another payload is `InvalidInput`. Records expire (default 24 h). A run that ended
//! on a retryable error (vendor or store unreachable, budget spent, target busy)
//! releases its claim so a retry runs again, as Powertools deletes the record when the
//! handler fails.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::{IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::AuditStore;

#[derive(Debug, Clone, Copy)]
pub struct IdempotencyOptions {
    /// How long a completed answer is kept.
    pub expiry: Duration,
    /// How long an in-progress claim holds before a retry may take it over (a run that
    /// died without finishing). A Lambda run lasts at most 15 minutes.
    pub in_progress_expiry: Duration,
}

impl Default for IdempotencyOptions {
    fn default() -> Self {
        Self { expiry: Duration::from_secs(24 * 3600), in_progress_expiry: Duration::from_secs(15 * 60) }
    }
}

/// A workflow report that can be stored as an idempotent answer.
pub trait IdempotentReport: Serialize + DeserializeOwned {
    /// The report of a run that ended on `error` before it ran.
    fn from_error(error: &OfframpError) -> Self;
    /// The error codes in the report, most significant first.
    fn error_codes(&self) -> Vec<ErrorCode>;
    fn operation_id(&self) -> Option<String>;
}

/// Codes after which the same request may well succeed: the claim is released.
fn retryable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::PsaConnectionError
            | ErrorCode::ItGlueConnectionError
            | ErrorCode::AuditStoreError
            | ErrorCode::RequestBudgetExhausted
            | ErrorCode::OperationInProgress
            | ErrorCode::DirectoryConnectionError
            // The same request is meant to run once its time has come.
            | ErrorCode::NotYetEffective
    )
}

/// SHA-256 of the request without its idempotency key (the key is not the payload).
pub fn payload_hash(payload: &Value) -> String {
    let mut payload = payload.clone();
    if let Some(fields) = payload.as_object_mut() {
        fields.remove("idempotency_key");
    }
    super::plan_hash(&payload)
}

fn at(offset: Duration) -> chrono::DateTime<chrono::Utc> {
    crate::domain::now() + chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::hours(24))
}

/// Run `run` once per (`workflow`, `key`). Without a key it simply runs.
pub async fn idempotent<Rep, Fut>(
    audit: &dyn AuditStore,
    options: IdempotencyOptions,
    workflow: Workflow,
    key: Option<&str>,
    payload: &Value,
    run: Fut,
) -> Rep
where
    Rep: IdempotentReport,
    Fut: Future<Output = Rep>,
{
    let Some(key) = key else { return run.await };
    let record = IdempotencyRecord {
        key: format!("{workflow}#{key}"),
        payload_hash: payload_hash(payload),
        status: IdempotencyStatus::InProgress,
        operation_id: None,
        report: None,
        created_at: crate::domain::now(),
        expires_at: at(options.expiry),
        in_progress_until: Some(at(options.in_progress_expiry)),
    };
    match audit.claim_idempotency_key(&record).await {
        Ok(IdempotencyClaim::Claimed) => {}
        Ok(IdempotencyClaim::Existing(existing)) => return answer_for(&record, existing, key),
        Err(error) => return Rep::from_error(&error.into()),
    }
    let report = run.await;
    settle(audit, record, &report).await;
    report
}

/// What a repeated request gets.
fn answer_for<Rep: IdempotentReport>(record: &IdempotencyRecord, existing: IdempotencyRecord, key: &str) -> Rep {
    if existing.payload_hash != record.payload_hash {
        return Rep::from_error(&OfframpError::invalid_input(format!(
            "idempotency_key '{key}' was used for a different request; use a new key for a new request"
        )));
    }
    match (existing.status, existing.report) {
        (IdempotencyStatus::Completed, Some(report)) => match serde_json::from_value(report) {
            Ok(report) => report,
            Err(e) => Rep::from_error(&OfframpError::new(
                ErrorCode::AuditStoreError,
                format!("the stored answer for idempotency_key '{key}' cannot be read: {e}"),
            )),
        },
        _ => Rep::from_error(&OfframpError::new(
            ErrorCode::OperationInProgress,
            format!(
                "a request with idempotency_key '{key}' is still running{}; nothing was started",
                existing.operation_id.map(|id| format!(" (operation {id})")).unwrap_or_default()
            ),
        )),
    }
}

/// Store the answer, or release the claim when a retry could do better.
async fn settle<Rep: IdempotentReport>(audit: &dyn AuditStore, mut record: IdempotencyRecord, report: &Rep) {
    let codes = report.error_codes();
    let stored = if codes.first().copied().is_some_and(retryable) {
        audit.release_idempotency_key(&record.key).await
    } else {
        record.status = IdempotencyStatus::Completed;
        record.operation_id = report.operation_id();
        record.report = serde_json::to_value(report).ok();
        record.in_progress_until = None;
        audit.complete_idempotency_key(&record).await
    };
    if let Err(error) = stored {
        // The run itself is done and recorded in the trail; only the replay is lost, and
        // the in-progress claim expires on its own.
        tracing::warn!(error = %error, key = %record.key, "idempotency record not settled");
    }
}
