//! A click on an approval link: the token is the credential, one conditional write makes
//! the one decision, the decision goes to the waiting task. Every refused click is audited
//! against the parent operation (a token nobody issued has no operation: it is logged).

use crate::approval::{ApprovalDeps, ApprovalError, TASK_ERROR_EXPIRED, TASK_ERROR_REJECTED, tokens};
use crate::domain::{
    ApprovalDecision, ApprovalRecord, ApprovalTokenRecord, ApprovalVerdict, DecisionWrite, OperationEvent,
    OperationEventKind, iso8601,
};

/// Longest name an approver may type (it goes into the audit trail and the callback).
const MAX_NAME_CHARS: usize = 200;

/// What the approver asked for on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRequest {
    /// `Approved` or `Rejected` (`Expired` is refused as input).
    pub verdict: ApprovalVerdict,
    pub typed_name: String,
}

/// A decision made by this click.
#[derive(Debug, Clone)]
pub struct Decision {
    pub record: ApprovalRecord,
    pub decision: ApprovalDecision,
}

/// The approval a link opens, for the page: refused when unknown, decided or expired.
pub async fn view(deps: ApprovalDeps<'_>, token: &str) -> Result<(ApprovalRecord, ApprovalTokenRecord), ApprovalError> {
    let (record, token) = lookup(deps, token).await?;
    if let Some(decision) = record.decision.clone() {
        return Err(already(&record, decision));
    }
    if crate::domain::now() >= record.expires_at {
        return Err(ApprovalError::Expired { expires_at: record.expires_at });
    }
    Ok((record, token))
}

/// Approve or reject with the token of one approver. Exactly one decision per approval,
/// whatever the clicks; a refused click changes nothing but the audit trail.
pub async fn decide(deps: ApprovalDeps<'_>, token: &str, request: &DecisionRequest) -> Result<Decision, ApprovalError> {
    let typed_name = request.typed_name.trim().to_string();
    if request.verdict == ApprovalVerdict::Expired {
        return Err(ApprovalError::invalid("a decision is approve or reject"));
    }
    if typed_name.is_empty() || typed_name.chars().count() > MAX_NAME_CHARS || typed_name.chars().any(char::is_control)
    {
        return Err(ApprovalError::invalid(format!("type your name (1 to {MAX_NAME_CHARS} characters) to decide")));
    }
    let (record, token) = lookup(deps, token).await?;
    if let Some(decision) = record.decision.clone() {
        return refuse(deps, &record, &token, already(&record, decision)).await;
    }
    let now = crate::domain::now();
    if now >= record.expires_at {
        return expired(deps, record, &token).await;
    }
    if record.approver_must_differ && is_requester(&record.requested_by, &token.recipient, &typed_name) {
        let refusal = ApprovalError::ApproverIsRequester { requested_by: record.requested_by.clone() };
        return refuse(deps, &record, &token, refusal).await;
    }
    let decision = ApprovalDecision {
        verdict: request.verdict,
        recipient: token.recipient.clone(),
        typed_name,
        decided_at: now,
        plan_hashes: record.plan_hashes(),
    };
    match deps.store.record_decision(&record.approval_id, &decision).await? {
        DecisionWrite::Recorded => {}
        DecisionWrite::AlreadyDecided(decision) => {
            return refuse(deps, &record, &token, already(&record, decision)).await;
        }
        DecisionWrite::Expired => return expired(deps, record, &token).await,
        DecisionWrite::NotFound => return Err(ApprovalError::NotFound),
    }
    audit_decision(deps, &record, &decision).await?;
    deliver(deps, &record, &decision).await?;
    Ok(Decision { record, decision })
}

/// The token's record and its approval; `NotFound` for anything not issued (nothing about
/// the token is logged but that it was unknown).
async fn lookup(deps: ApprovalDeps<'_>, token: &str) -> Result<(ApprovalRecord, ApprovalTokenRecord), ApprovalError> {
    if !tokens::well_formed(token) {
        tracing::warn!("approval link refused: not a token");
        return Err(ApprovalError::NotFound);
    }
    let Some(stored) = deps.store.approval_token(&tokens::token_hash(token)).await? else {
        tracing::warn!("approval link refused: no such token");
        return Err(ApprovalError::NotFound);
    };
    let Some(record) = deps.store.approval(&stored.approval_id).await? else {
        tracing::warn!(approval_id = %stored.approval_id, "approval link refused: its approval is gone");
        return Err(ApprovalError::NotFound);
    };
    Ok((record, stored))
}

/// The refusal of a click on an approval already decided: an expiry stays "expired".
fn already(record: &ApprovalRecord, decision: ApprovalDecision) -> ApprovalError {
    if decision.verdict == ApprovalVerdict::Expired {
        ApprovalError::Expired { expires_at: record.expires_at }
    } else {
        ApprovalError::AlreadyDecided { decision }
    }
}

/// Whether the approver is the requester: by the token's recipient or the name typed.
fn is_requester(requested_by: &str, recipient: &str, typed_name: &str) -> bool {
    let requester = requested_by.trim();
    requester.eq_ignore_ascii_case(recipient.trim()) || requester.eq_ignore_ascii_case(typed_name)
}

/// A click after the expiry: the expiry becomes the decision (once), so the waiting task is
/// failed with `ApprovalExpired` at once instead of at its own timeout; then refused.
async fn expired(
    deps: ApprovalDeps<'_>,
    record: ApprovalRecord,
    token: &ApprovalTokenRecord,
) -> Result<Decision, ApprovalError> {
    let expiry = ApprovalDecision {
        verdict: ApprovalVerdict::Expired,
        recipient: String::new(),
        typed_name: String::new(),
        decided_at: crate::domain::now(),
        plan_hashes: record.plan_hashes(),
    };
    if deps.store.record_decision(&record.approval_id, &expiry).await? == DecisionWrite::Recorded {
        audit_decision(deps, &record, &expiry).await?;
        deliver(deps, &record, &expiry).await?;
    }
    refuse(deps, &record, token, ApprovalError::Expired { expires_at: record.expires_at }).await
}

/// Record a refused click against the parent operation, then answer the refusal.
async fn refuse<T>(
    deps: ApprovalDeps<'_>,
    record: &ApprovalRecord,
    token: &ApprovalTokenRecord,
    refusal: ApprovalError,
) -> Result<T, ApprovalError> {
    let detail = serde_json::json!({
        "approval_id": record.approval_id, "recipient": token.recipient,
        "code": refusal.code().as_str(), "message": refusal.to_string(),
    });
    let event = OperationEvent::new(&record.parent_operation_id, OperationEventKind::ApprovalAttemptRefused, detail);
    if let Err(e) = deps.audit.append_event(&event).await {
        // The click is refused either way; the failure to record it is what is logged.
        tracing::error!(approval_id = %record.approval_id, error = %e, "a refused approval click could not be audited");
    }
    Err(refusal)
}

async fn audit_decision(
    deps: ApprovalDeps<'_>,
    record: &ApprovalRecord,
    decision: &ApprovalDecision,
) -> Result<(), ApprovalError> {
    let detail = serde_json::json!({
        "approval_id": record.approval_id, "verdict": decision.verdict.as_str(),
        "approved_by": decision.approved_by(), "recipient": decision.recipient, "typed_name": decision.typed_name,
        "decided_at": iso8601(decision.decided_at), "plan_hashes": decision.plan_hashes,
    });
    let event = OperationEvent::new(&record.parent_operation_id, OperationEventKind::ApprovalDecided, detail);
    deps.audit.append_event(&event).await?;
    Ok(())
}

/// The decision to the waiting task: success with the approved plan hashes, or the task's
/// failure by name.
async fn deliver(
    deps: ApprovalDeps<'_>,
    record: &ApprovalRecord,
    decision: &ApprovalDecision,
) -> Result<(), ApprovalError> {
    let result = match decision.verdict {
        ApprovalVerdict::Approved => {
            let output = serde_json::json!({
                "approved": true, "approval_id": record.approval_id, "approved_by": decision.approved_by(),
                "approved_at": iso8601(decision.decided_at), "plan_hashes": decision.plan_hashes,
            });
            deps.callback.succeed(record, &output).await
        }
        ApprovalVerdict::Rejected => {
            let cause = format!("rejected by {} at {}", decision.approved_by(), iso8601(decision.decided_at));
            deps.callback.fail(record, TASK_ERROR_REJECTED, &cause).await
        }
        ApprovalVerdict::Expired => {
            let cause = format!("the approval expired at {}", iso8601(record.expires_at));
            deps.callback.fail(record, TASK_ERROR_EXPIRED, &cause).await
        }
    };
    result.map_err(|e| {
        tracing::error!(approval_id = %record.approval_id, error = %e, "the approval's decision was not delivered");
        ApprovalError::Callback(e)
    })
}
