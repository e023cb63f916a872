//! Resuming an interrupted configuration deactivation. The engine checks the operation
//! may be continued and holds the client's lease; this decides, item by item, from the
//! trail and the PSA's current state what is left.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::execute::{self, Work, WorkAction};
use super::plan::ACTION_DEACTIVATE;
use super::report::{self, ConfigDeactivationReport, ItemResult};
use super::{Deps, Failure, Validated, WORKFLOW};
use crate::domain::{Company, ConfigState, Configuration, ItemKind, ItemOutcome, OperationDetail, OperationEventKind};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Applied, Recorder, resume as engine};

pub(super) async fn resume(
    deps: &Deps<'_>,
    v: &Validated,
    operation_id: &str,
    break_lease: bool,
) -> Result<ConfigDeactivationReport, Failure> {
    let detail = engine::load_resumable(deps.audit, WORKFLOW, deps.psa.kind().as_str(), operation_id).await?;
    let op = &detail.operation;
    let client = Company {
        id: op.client_id.clone(),
        name: op.client_name.clone(),
        identifier: None,
        status: None,
        inactive: None,
        categories: Vec::new(),
        contracts: None,
    };
    let fail = |error: OfframpError| Failure::at(error, &client, Some(operation_id));
    if v.client_id.as_ref().is_some_and(|id| *id != op.client_id)
        || v.client_name.as_ref().is_some_and(|n| !n.eq_ignore_ascii_case(&op.client_name))
    {
        return Err(fail(OfframpError::invalid_input(format!(
            "operation {operation_id} is for client {} ({}), not the client given",
            op.client_name, op.client_id
        ))));
    }
    let lease = operation::lease::target(deps.psa.kind().as_str(), &client.id);
    let work = continue_operation(deps, v, &detail, &client, break_lease);
    operation::with_lease(deps.audit, deps.options.lease, lease, operation_id, break_lease, work)
        .await
        .map_err(fail)?
        .map_err(fail)
}

async fn continue_operation(
    deps: &Deps<'_>,
    v: &Validated,
    detail: &OperationDetail,
    client: &Company,
    lease_broken: bool,
) -> Result<ConfigDeactivationReport, OfframpError> {
    let op = &detail.operation;
    let operation_id = op.operation_id.as_str();
    let current: BTreeMap<String, Configuration> =
        deps.psa.list_configurations(&op.client_id, true).await?.into_iter().map(|c| (c.id.clone(), c)).collect();
    let mut warnings = vec![format!("Resumed operation {operation_id} (started by {}).", op.initiated_by)];
    let (done, work) = remaining(detail, &current, &mut warnings)?;
    warnings.extend(appeared(detail, &current));

    // Completed, and every item already recorded: nothing to do, nothing to append.
    if engine::has_event(detail, OperationEventKind::Completed) && work.is_empty() {
        warnings.push("The operation had already completed; nothing was changed.".into());
        let mut report = report::applied(client, operation_id, done, 0, None, warnings);
        report.plan_hash = op.plan_hash.clone();
        return Ok(report);
    }
    let remaining = work.iter().filter(|w| w.action != WorkAction::Skip).count();
    let detail_json = json!({ "resumed_by": v.initiated_by, "remaining": remaining, "lease_broken": lease_broken });
    Recorder::new(deps.audit, operation_id).event(OperationEventKind::Resumed, detail_json).await?;
    tracing::info!(recorded = done.len(), remaining = work.len(), "resuming operation");
    let mut applied: Applied<ItemResult> = execute::execute(deps, operation_id, work).await;
    applied.results.extend(done);
    execute::finish(deps, client, operation_id, op.plan_hash.clone(), applied, warnings).await
}

/// Items already recorded (reported as they were, touched no more) and the work left,
/// decided from the trail: a configuration with no record was never sent, so finding it
/// inactive means someone else deactivated it; one whose latest record is its intent was
/// in flight, and finding it inactive is uncertain (docs/architecture.md#the-operation-engine).
fn remaining(
    detail: &OperationDetail,
    current: &BTreeMap<String, Configuration>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<ItemResult>, Vec<Work>), OfframpError> {
    let latest = engine::latest_changes(detail);
    let mut done = Vec::new();
    let mut work = Vec::new();
    for snapshot in detail.snapshots.iter().filter(|s| s.item_type == ItemKind::Configuration) {
        let before: Configuration = serde_json::from_value(snapshot.state.clone()).map_err(|e| {
            OfframpError::new(ErrorCode::AuditStoreError, format!("snapshot of {}: {e}", snapshot.item_id))
        })?;
        let previous = latest.get(&(ItemKind::Configuration, snapshot.item_id.as_str())).copied();
        let now = current.get(&snapshot.item_id);
        match previous.map(|c| c.outcome) {
            Some(outcome @ (ItemOutcome::Changed | ItemOutcome::Skipped | ItemOutcome::Uncertain)) => {
                if outcome == ItemOutcome::Changed {
                    warnings.extend(reactivated(&before, now));
                }
                let after = previous.and_then(|c| c.after.clone()).and_then(|a| serde_json::from_value(a).ok());
                done.push(ItemResult { after, outcome, error: None, before });
            }
            _ if snapshot.planned_action != ACTION_DEACTIVATE => work.push(Work { before, action: WorkAction::Skip }),
            _ => {
                let in_flight = previous.is_some_and(engine::may_have_applied);
                let action = decide(&before, now, in_flight, warnings);
                work.push(Work { before, action });
            }
        }
    }
    let uncertain = work.iter().filter(|w| w.action == WorkAction::Uncertain).count();
    if uncertain > 0 {
        warnings.push(format!(
            "{uncertain} configuration(s) were being updated when the run stopped and are inactive now: recorded as \
             uncertain. A rollback leaves them alone unless told to include uncertain items (--include-uncertain)."
        ));
    }
    Ok((done, work))
}

/// A configuration this operation deactivated that is active again: someone re-activated it.
fn reactivated(before: &Configuration, now: Option<&Configuration>) -> Option<String> {
    let now = now.filter(|now| now.status.state != ConfigState::Inactive)?;
    Some(format!(
        "Configuration {} ({}) was deactivated by this operation and is '{}' again: someone re-activated it; left alone.",
        before.id, before.name, now.status.name
    ))
}

/// An item not recorded as done, decided from the PSA's state now. `in_flight`: its
/// intent is its latest record (the update may have reached the PSA).
fn decide(
    before: &Configuration,
    now: Option<&Configuration>,
    in_flight: bool,
    warnings: &mut Vec<String>,
) -> WorkAction {
    let (id, name) = (&before.id, &before.name);
    match now {
        None => {
            warnings.push(format!("Configuration {id} ({name}) no longer exists in the PSA; left alone."));
            WorkAction::Skip
        }
        Some(now) if now.status.state == ConfigState::Inactive && in_flight => WorkAction::Uncertain,
        Some(now) if now.status.state == ConfigState::Inactive => {
            warnings.push(format!(
                "Configuration {id} ({name}) was set to '{}' outside this operation before it got to it; left alone, \
                 and not recorded as this operation's change.",
                now.status.name
            ));
            WorkAction::Skip
        }
        Some(now) if now.status.state == before.status.state && now.status.id == before.status.id => {
            WorkAction::Deactivate
        }
        Some(now) => {
            warnings.push(format!(
                "Configuration {id} ({name}) changed since the operation started ('{}' → '{}'); left alone.",
                before.status.name, now.status.name
            ));
            WorkAction::Skip
        }
    }
}

/// Configurations that appeared since the operation started are not part of it.
fn appeared(detail: &OperationDetail, current: &BTreeMap<String, Configuration>) -> Option<String> {
    let include_archived = detail.operation.input.get("include_archived").and_then(|v| v.as_bool()).unwrap_or(false);
    let known: HashSet<&str> = detail.snapshots.iter().map(|s| s.item_id.as_str()).collect();
    let appeared = current
        .values()
        .filter(|c| !known.contains(c.id.as_str()))
        .filter(|c| c.status.state == ConfigState::Active || include_archived)
        .count();
    (appeared > 0).then(|| {
        format!(
            "{appeared} configuration(s) appeared since the operation started; they are not part of it. Start a new run to include them."
        )
    })
}
