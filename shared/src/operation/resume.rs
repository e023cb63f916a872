//! Resume: which operations may be continued, and what their trail already says.
//! The checks are the same for every workflow; what is left to do is the workflow's.

use std::collections::HashMap;

use crate::domain::{self, ItemChange, ItemKind, ItemOutcome, OperationDetail, OperationEventKind, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::AuditStore;

pub fn not_resumable(operation_id: &str, why: impl std::fmt::Display) -> OfframpError {
    OfframpError::new(ErrorCode::OperationNotResumable, format!("operation {operation_id} cannot be resumed: {why}"))
}

/// The operation `operation_id`, checked to be one `workflow` on `psa` may continue: it
/// exists, is of this workflow and PSA, started changing things, and was not rolled back
/// (going on after an undo would redo, unasked, what someone decided to undo).
pub async fn load_resumable(
    audit: &dyn AuditStore,
    workflow: Workflow,
    psa: &str,
    operation_id: &str,
) -> Result<OperationDetail, OfframpError> {
    let detail = audit.operation(operation_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {operation_id} in the audit trail"))
    })?;
    let op = &detail.operation;
    if op.workflow != workflow {
        return Err(not_resumable(operation_id, format!("it is a {} operation, not {workflow}", op.workflow)));
    }
    if op.psa != psa {
        return Err(not_resumable(operation_id, format!("it ran against {}, not {psa}", op.psa)));
    }
    if op.dry_run {
        return Err(not_resumable(operation_id, "it was a dry run; start a new run instead"));
    }
    if !detail.events.iter().any(|e| e.kind == OperationEventKind::Started) {
        return Err(not_resumable(
            operation_id,
            "it never started changing anything (dry run, approval pending or refused); run the workflow again",
        ));
    }
    let undo = audit
        .child_operations(operation_id)
        .await?
        .into_iter()
        .find(|child| child.workflow == Workflow::Rollback && !child.dry_run);
    if let Some(undo) = undo {
        return Err(not_resumable(
            operation_id,
            format!(
                "it was rolled back by {} ({}); resuming it would undo that rollback. Start a new run instead",
                undo.operation_id,
                domain::iso8601(undo.created_at)
            ),
        ));
    }
    Ok(detail)
}

/// The latest change record of every item, by (kind, id).
pub fn latest_changes(detail: &OperationDetail) -> HashMap<(ItemKind, &str), &ItemChange> {
    let mut latest = HashMap::new();
    for change in &detail.changes {
        latest.insert((change.item_type, change.item_id.as_str()), change);
    }
    latest
}

/// Whether an item's latest record leaves open that its change reached the vendor: its
/// intent with nothing after it (in flight when the run stopped), or a failure that was
/// the connection's, not the vendor's refusal (the answer, not the write, may be what was
/// lost). A resume that finds such an item done cannot tell whose change it was.
pub fn may_have_applied(change: &ItemChange) -> bool {
    match change.outcome {
        ItemOutcome::Intended => true,
        ItemOutcome::Failed => change.error_code.as_deref() == Some(ErrorCode::PsaConnectionError.as_str()),
        ItemOutcome::Changed | ItemOutcome::Skipped | ItemOutcome::Uncertain => false,
    }
}

pub fn has_event(detail: &OperationDetail, kind: OperationEventKind) -> bool {
    detail.events.iter().any(|e| e.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: ItemOutcome, code: Option<ErrorCode>) -> ItemChange {
        ItemChange {
            error_code: code.map(|c| c.as_str().to_string()),
            outcome,
            ..ItemChange::intent("op", ItemKind::Contact, "1", "a")
        }
    }

    #[test]
    fn only_an_intent_or_a_lost_connection_leaves_open_that_a_change_reached_the_vendor() {
        assert!(may_have_applied(&record(ItemOutcome::Intended, None)));
        assert!(may_have_applied(&record(ItemOutcome::Failed, Some(ErrorCode::PsaConnectionError))));
        assert!(!may_have_applied(&record(ItemOutcome::Failed, Some(ErrorCode::ContactUpdateFailed))));
        assert!(!may_have_applied(&record(ItemOutcome::Failed, Some(ErrorCode::PermissionDenied))));
        assert!(!may_have_applied(&record(ItemOutcome::Changed, None)));
    }
}
