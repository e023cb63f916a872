//! Reading and restoring a rollback's items with the forward runs' bounded concurrency:
//! every item read first (the plan, and the rollback's own snapshot), then the restores
//! through the engine's bounded apply, which records each restore's intent before it is
//! sent (so a rollback cut short leaves only its window in flight uncertain) and its
//! change record after. Items of one kind go together, kinds one after the other, in the
//! order `changed_items` gives (related records before the contacts they pointed at).

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::Value;

use super::{EarlierRestore, RollbackAction, RollbackDeps, RollbackError, RollbackItem, RollbackReport};
use crate::domain::{self, ItemChange, ItemKind, ItemOutcome};
use crate::error::{OfframpError, PsaError};
use crate::operation::records::CHANGE_BATCH;
use crate::operation::restore::{Judgement, Restorable, RestoreError, RestoreRegistry, RestoreSystems, Verdict};
use crate::operation::{Applied, ChangeBatch, UnitRecords, UnitStep, apply_units};
use crate::ports::{NoProgress, Psa};

/// Items read or restored at once: the forward runs' default (the HTTP layer also caps
/// and rate-limits every vendor).
pub const ROLLBACK_CONCURRENCY: usize = 8;

/// One item: what it is, what was found, and what the rollback does with it.
pub(super) struct Planned {
    pub item: Box<dyn Restorable>,
    pub current: Option<Value>,
    pub action: RollbackAction,
    pub label: String,
    pub message: Option<String>,
    /// Why the item could not even be judged (its system is not configured): it is
    /// reported failed and recorded so, and the rollback stays open to be run again.
    pub unjudged: Option<RestoreError>,
}

/// A company's items of one kind are read with one listing when it has at least this
/// many to judge (a listing page holds hundreds; one read each would cost more).
pub const LIST_FROM: usize = 20;

/// Read every item, `ROLLBACK_CONCURRENCY` at a time, in order; the first read that fails
/// stops the plan, except an item whose system is not configured, which is planned as
/// failed. Items a listing showed are judged on it; the rest are read one by one.
pub(super) async fn judge_all(
    systems: &RestoreSystems<'_>,
    registry: &RestoreRegistry,
    items: Vec<Box<dyn Restorable>>,
    earlier: &HashMap<(ItemKind, String), EarlierRestore>,
) -> Result<Vec<Planned>, RestoreError> {
    let listed = list_companies(systems.psa, registry, &items).await?;
    let judge_one = |item: Box<dyn Restorable>| {
        let seen = listed.get(&(item.kind(), item.id().to_string()));
        async move {
            let judgement = match seen.and_then(|value| item.judge_listed(value)) {
                Some(judgement) => judgement,
                None => match item.judge(systems).await {
                    Ok(judgement) => judgement,
                    Err(error @ RestoreError::NotConfigured(_)) => return Ok(unjudged(item, error)),
                    Err(error) => return Err(error),
                },
            };
            Ok::<_, RestoreError>(plan_item(item, judgement, earlier))
        }
    };
    let mut judged = futures::stream::iter(items).map(judge_one).buffered(ROLLBACK_CONCURRENCY);
    let mut plan = Vec::new();
    while let Some(planned) = judged.next().await {
        plan.push(planned?);
    }
    Ok(plan)
}

/// The listings of every company with at least [`LIST_FROM`] items of a kind that has a
/// lister, by (kind, item id). An item missing from its company's listing is read on its
/// own (it may have moved, or be gone).
async fn list_companies(
    psa: &dyn Psa,
    registry: &RestoreRegistry,
    items: &[Box<dyn Restorable>],
) -> Result<HashMap<(ItemKind, String), Value>, PsaError> {
    let mut counts: HashMap<(ItemKind, &str), usize> = HashMap::new();
    for item in items.iter().filter(|item| registry.lister(item.kind()).is_some()) {
        if let Some(company) = item.listed_under() {
            *counts.entry((item.kind(), company)).or_default() += 1;
        }
    }
    let mut listed = HashMap::new();
    for ((kind, company), count) in counts {
        let Some(list) = registry.lister(kind).filter(|_| count >= LIST_FROM) else { continue };
        listed.extend(list(psa, company).await?.into_iter().map(|(id, value)| ((kind, id), value)));
    }
    Ok(listed)
}

/// An item that could not be read because its system is not configured: failed.
fn unjudged(item: Box<dyn Restorable>, error: RestoreError) -> Planned {
    Planned {
        item,
        current: None,
        action: RollbackAction::Failed,
        label: "not read".into(),
        message: Some(format!("Unable to restore: {error}")),
        unjudged: Some(error),
    }
}

/// Decide what to do with one item, given its judgement and what earlier rollbacks restored.
fn plan_item(
    item: Box<dyn Restorable>,
    judgement: Judgement,
    earlier: &HashMap<(ItemKind, String), EarlierRestore>,
) -> Planned {
    let mut action = match judgement.verdict {
        Verdict::Restore => RollbackAction::Restored,
        Verdict::AlreadyRestored => RollbackAction::AlreadyRestored,
        Verdict::Conflict => RollbackAction::Conflict,
    };
    let mut message = judgement.message;
    if let Some(earlier) = earlier.get(&(item.kind(), item.id().to_string())) {
        let when = domain::iso8601(earlier.at);
        match action {
            // Put back by the earlier rollback, and since then back to what the operation
            // left: someone changed it again, and that change is theirs to keep.
            RollbackAction::Restored => {
                action = RollbackAction::Conflict;
                message = Some(format!(
                    "restored by rollback {} at {when} and changed again since; left alone",
                    earlier.rollback_id
                ));
            }
            RollbackAction::AlreadyRestored => {
                message = Some(format!("restored by rollback {} at {when}", earlier.rollback_id));
            }
            _ => {}
        }
    }
    Planned { item, current: judgement.current, action, label: judgement.current_label, message, unjudged: None }
}

/// What became of one restore.
struct Restore {
    index: usize,
    action: RollbackAction,
    message: Option<String>,
    error: Option<RollbackError>,
    record: ItemChange,
}

/// Restore what the plan says to, kind by kind, each kind with bounded concurrency; then
/// tally every item in plan order. Returns why the rollback stopped early, if it did.
pub(super) async fn restore_all(
    deps: &RollbackDeps<'_>,
    dry_run: bool,
    operation_id: &str,
    plan: Vec<Planned>,
    report: &mut RollbackReport,
) -> Option<OfframpError> {
    let mut done: Vec<Option<Restore>> = plan.iter().map(|_| None).collect();
    let mut stopped = None;
    if !dry_run && let Err(error) = record_unjudged(deps, operation_id, &plan).await {
        stopped = Some(OfframpError::from(error));
    }
    // Nothing is restored once the trail could not take the failed items' records.
    let groups = if stopped.is_none() { groups(&plan, dry_run) } else { Vec::new() };
    for group in groups {
        let applied = restore_group(deps, operation_id, &plan, group).await;
        for restore in applied.results {
            let index = restore.index;
            done[index] = Some(restore);
        }
        if let Some(error) = applied.stopped {
            stopped = Some(error);
            break;
        }
    }
    for (planned, restore) in plan.into_iter().zip(done) {
        let (action, message) = match restore {
            Some(restore) => {
                report.errors.extend(restore.error);
                (restore.action, restore.message)
            }
            None if to_restore(&planned, dry_run) => {
                (RollbackAction::NotAttempted, Some("not attempted: the rollback stopped before this item".into()))
            }
            None => {
                report.errors.extend(planned.unjudged.as_ref().map(|error| failure(planned.item.as_ref(), error)));
                (planned.action, planned.message)
            }
        };
        tally(report, planned.item.as_ref(), action, planned.label, message);
    }
    stopped
}

/// The failed change records of the items that could not be judged, so that this rollback
/// does not count as final (`earlier_rollbacks`) and a later one, with the system
/// configured, restores them.
async fn record_unjudged(
    deps: &RollbackDeps<'_>,
    operation_id: &str,
    plan: &[Planned],
) -> Result<(), crate::error::AuditError> {
    let records: Vec<ItemChange> = plan
        .iter()
        .filter_map(|p| {
            p.unjudged.as_ref().map(|error| change(operation_id, p.item.as_ref(), Value::Null, None, Some(error)))
        })
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    deps.audit.put_changes(&records).await
}

/// The report's error for one item that failed with `error`.
fn failure(item: &dyn Restorable, error: &RestoreError) -> RollbackError {
    RollbackError {
        code: error.write_failure_code(item.update_failed_code()),
        message: format!("{} {}: {error}", item.kind(), item.id()),
        item_id: Some(item.id().to_string()),
    }
}

fn to_restore(planned: &Planned, dry_run: bool) -> bool {
    !dry_run && planned.action == RollbackAction::Restored && planned.current.is_some()
}

/// The indexes of the items to restore, in runs of one kind.
fn groups(plan: &[Planned], dry_run: bool) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut kind = None;
    for (index, planned) in plan.iter().enumerate().filter(|(_, p)| to_restore(p, dry_run)) {
        if kind != Some(planned.item.kind()) || groups.is_empty() {
            groups.push(Vec::new());
            kind = Some(planned.item.kind());
        }
        groups.last_mut().expect("a group was pushed").push(index);
    }
    groups
}

async fn restore_group(
    deps: &RollbackDeps<'_>,
    operation_id: &str,
    plan: &[Planned],
    group: Vec<usize>,
) -> Applied<Restore> {
    let mut changes = ChangeBatch::new(deps.audit, CHANGE_BATCH);
    let records = UnitRecords {
        intent: |index: &usize| {
            let item = plan[*index].item.as_ref();
            Some(ItemChange::intent(operation_id, item.kind(), item.id(), item.name()))
        },
        change: |restore: &Restore| restore.record.clone(),
    };
    // Several items per request where the PSA takes batches and the kind can be restored
    // that way (HaloPSA configurations), else one each.
    let batch = group
        .first()
        .and_then(|first| deps.registry.batch(plan[*first].item.kind()))
        .filter(|_| deps.psa.update_batch_size() > 1);
    let size = if batch.is_some() { deps.psa.update_batch_size() } else { 1 };
    let units = group.chunks(size).map(<[usize]>::to_vec).collect();
    let systems = deps.systems();
    let systems = &systems;
    let apply = |unit: Vec<usize>| async move {
        let results: Vec<Result<Value, RestoreError>> = match batch {
            Some(restore_many) => {
                let items = unit.iter().map(|index| plan[*index].item.as_ref()).collect();
                restore_many(deps.psa, items).await.into_iter().map(|r| r.map_err(RestoreError::from)).collect()
            }
            None => {
                let mut results = Vec::with_capacity(unit.len());
                for index in &unit {
                    let planned = &plan[*index];
                    let now = planned.current.clone().unwrap_or_default();
                    results.push(planned.item.restore(systems, &now).await);
                }
                results
            }
        };
        // One result per item is the batch restorer's contract; an item it left without one
        // is reported failed, never silently dropped.
        let mut results = results.into_iter();
        let missing = || {
            RestoreError::Psa(PsaError::InvalidResponse {
                message: "the batch restore gave no result for this item".into(),
            })
        };
        unit.into_iter()
            .map(|index| step(operation_id, &plan[index], index, results.next().unwrap_or_else(|| Err(missing()))))
            .collect()
    };
    // A rollback runs to its end: it has no continuation (yet).
    let deadline = crate::operation::Deadline::none();
    apply_units(units, ROLLBACK_CONCURRENCY, deadline, &mut changes, &NoProgress, records, apply).await
}

/// What one item's restore (`result`: its state afterwards) comes to.
fn step(operation_id: &str, planned: &Planned, index: usize, result: Result<Value, RestoreError>) -> UnitStep<Restore> {
    let item = planned.item.as_ref();
    let now = planned.current.clone().unwrap_or_default();
    match result {
        Ok(after) => UnitStep::Done(Restore {
            index,
            action: RollbackAction::Restored,
            message: planned.message.clone(),
            error: None,
            record: change(operation_id, item, now, Some(after), None),
        }),
        // The vendor's budget is spent: stop cleanly; the next rollback skips what this did.
        Err(RestoreError::Psa(error @ PsaError::BudgetExhausted { .. })) => UnitStep::Halted(error),
        Err(error) => UnitStep::Done(Restore {
            index,
            action: RollbackAction::Failed,
            message: Some(format!("Unable to restore: {error}")),
            error: Some(failure(item, &error)),
            record: change(operation_id, item, now, None, Some(&error)),
        }),
    }
}

fn tally(
    report: &mut RollbackReport,
    item: &dyn Restorable,
    action: RollbackAction,
    current: String,
    mut message: Option<String>,
) {
    let s = &mut report.statistics;
    match action {
        RollbackAction::Restored => s.restored += 1,
        RollbackAction::AlreadyRestored => s.already_restored += 1,
        RollbackAction::Conflict => s.conflicts += 1,
        RollbackAction::Failed => s.errors += 1,
        RollbackAction::NotAttempted => s.not_attempted += 1,
    }
    if action == RollbackAction::Conflict && message.is_none() {
        message = Some("changed since the operation; left alone".into());
    }
    report.items.push(RollbackItem {
        item_type: item.kind(),
        item_id: item.id().to_string(),
        item_name: item.name().to_string(),
        action,
        current,
        restore_to: item.restore_to(),
        message,
    });
}

fn change(
    operation_id: &str,
    item: &dyn Restorable,
    before: Value,
    after: Option<Value>,
    error: Option<&RestoreError>,
) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: item.kind(),
        item_id: item.id().to_string(),
        item_name: item.name().to_string(),
        outcome: if error.is_some() { ItemOutcome::Failed } else { ItemOutcome::Changed },
        before,
        after,
        error_code: error.map(|e| e.write_failure_code(item.update_failed_code()).as_str().to_string()),
        error_message: error.map(|e| e.to_string()),
        at: domain::now(),
    }
}
