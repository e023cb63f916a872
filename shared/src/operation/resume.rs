//! Resume: which operations may be continued, and what their trail already says.
//! The checks are the same for every workflow; what is left to do is the workflow's.

use std::collections::HashMap;

use super::Deadline;
use crate::domain::{
    self, ItemChange, ItemKind, ItemOutcome, OperationDetail, OperationEvent, OperationEventKind, Workflow,
};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::AuditStore;

/// Invocations in a row that paused at their deadline without writing a change record,
/// after which a resume under a deadline is refused instead of paused once more.
pub const STALLED_INVOCATIONS: usize = 3;

pub fn not_resumable(operation_id: &str, why: impl std::fmt::Display) -> OfframpError {
    OfframpError::new(ErrorCode::OperationNotResumable, format!("operation {operation_id} cannot be resumed: {why}"))
}

/// The operation `operation_id`, checked to be one `workflow` on `psa` may continue: it
/// exists, is of this workflow and PSA, started changing things, and was not rolled back
/// (going on after an undo would redo, unasked, what someone decided to undo). Under a
/// `deadline` (a Lambda invocation), also that its last [`STALLED_INVOCATIONS`] invocations
/// did not all pause without changing anything (see [`refuse_stalled`]).
pub async fn load_resumable(
    audit: &dyn AuditStore,
    workflow: Workflow,
    psa: &str,
    operation_id: &str,
    deadline: Deadline,
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
    if deadline.is_set() {
        refuse_stalled(&detail)?;
    }
    Ok(detail)
}

/// Refuse to go on when the last [`STALLED_INVOCATIONS`] invocations each paused at their
/// deadline without writing a single change record: their time went before the first change
/// (reading a large trail, waiting on a vendor's `Retry-After`), so the next one would too,
/// and a state machine's `Choice` would send the step again without end. Refused, the
/// invocation fails with `OperationNotResumable` (a Lambda error the chain's `Catch` takes);
/// nothing is written. A resume without a deadline (the CLI) is never refused for this, so
/// the operation can still be finished (docs/reliability.md#runs-across-invocations).
fn refuse_stalled(detail: &OperationDetail) -> Result<(), OfframpError> {
    let stalled = invocations_without_changes(&detail.events, &detail.changes);
    if stalled < STALLED_INVOCATIONS {
        return Ok(());
    }
    let id = &detail.operation.operation_id;
    Err(not_resumable(
        id,
        format!(
            "its last {stalled} invocations stopped at their deadline without changing or recording any item, so \
             another would too: the invocation's time goes before its first change. Raise the function's timeout \
             (or OFFRAMP_INVOCATION_MAX_SECONDS), or finish it where no deadline applies (the CLI's --resume {id})"
        ),
    ))
}

/// How many of the operation's latest invocations, in a row, paused without a change
/// record. An invocation runs from its `started` or `resumed` event to its `paused` event;
/// any change record written in between (an intent included) is progress.
/// `events` oldest first, as the trail gives them.
pub fn invocations_without_changes(events: &[OperationEvent], changes: &[ItemChange]) -> usize {
    let mut written: Vec<_> = changes.iter().map(|change| change.at).collect();
    written.sort_unstable();
    let mut began = None;
    let mut stalled = 0;
    for event in events {
        match event.kind {
            OperationEventKind::Started | OperationEventKind::Resumed => began = Some(event.at),
            OperationEventKind::Paused => {
                // A pause whose start is not in the trail is not counted against the run.
                let Some(from) = began.take() else {
                    stalled = 0;
                    continue;
                };
                let first_after = written.partition_point(|at| *at < from);
                let changed = written.get(first_after).is_some_and(|at| *at <= event.at);
                stalled = if changed { 0 } else { stalled + 1 };
            }
            _ => {}
        }
    }
    stalled
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

    /// Events and change records `seconds` after a fixed instant.
    fn event(kind: OperationEventKind, seconds: i64) -> OperationEvent {
        OperationEvent {
            at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(seconds),
            ..OperationEvent::new("op", kind, serde_json::Value::Null)
        }
    }

    fn change_at(seconds: i64) -> ItemChange {
        ItemChange {
            at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(seconds),
            ..record(ItemOutcome::Intended, None)
        }
    }

    #[test]
    fn only_invocations_in_a_row_that_paused_without_a_change_record_count_as_stalled() {
        use OperationEventKind::{Completed, Paused, Planned, Resumed, Started};
        // Started, changed, paused; then three resumes that each paused without a record.
        let mut events = vec![event(Planned, 0), event(Started, 1), event(Paused, 30)];
        for start in [40, 80, 120] {
            events.extend([event(Resumed, start), event(Paused, start + 30)]);
        }
        let changes = vec![change_at(5), change_at(29)];
        assert_eq!(invocations_without_changes(&events, &changes), 3);
        assert_eq!(invocations_without_changes(&events[..5], &changes), 1);
        // A record in the last invocation (an intent is enough) ends the streak.
        assert_eq!(invocations_without_changes(&events, &[change_at(5), change_at(149)]), 0);
        // A record in the middle one: only the last counts.
        assert_eq!(invocations_without_changes(&events, &[change_at(5), change_at(90)]), 1);
        // A record between invocations belongs to none (no invocation is credited for it).
        assert_eq!(invocations_without_changes(&events, &[change_at(5), change_at(75)]), 3);
        // A pause whose start is missing is not held against the run; a finished run has none.
        assert_eq!(invocations_without_changes(&[event(Paused, 10)], &[]), 0);
        assert_eq!(invocations_without_changes(&[event(Started, 1), event(Completed, 9)], &[]), 0);
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
