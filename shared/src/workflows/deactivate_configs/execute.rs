//! Applying a configuration plan once the engine has written its header, snapshots and
//! `started`: bounded deactivation with change records, then `completed` (or `failed` when
//! the run stopped early and can be resumed).

use serde_json::json;

use super::plan::planned_action;
use super::report::{self, ConfigDeactivationReport, ItemResult};
use super::{Deps, WORKFLOW};
use crate::domain::{
    self, Company, ConfigState, Configuration, ItemChange, ItemKind, ItemOutcome, ItemSnapshot, OperationEventKind,
};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::operation::{Applied, ChangeBatch, Recorder, UnitRecords, UnitStep, apply_units};

/// What a run does with one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkAction {
    Deactivate,
    Skip,
    /// In flight when the run stopped (its intent is the latest record) and inactive when
    /// resuming: probably this operation's update, but no record proves it.
    Uncertain,
}

pub(super) struct Work {
    pub before: Configuration,
    pub action: WorkAction,
}

/// The configuration as it stood before the run: what a rollback restores.
pub(super) fn snapshot(operation_id: &str, config: &Configuration) -> ItemSnapshot {
    ItemSnapshot {
        operation_id: operation_id.to_string(),
        item_type: ItemKind::Configuration,
        item_id: config.id.clone(),
        item_name: config.name.clone(),
        state: serde_json::to_value(config).unwrap_or_default(),
        planned_action: planned_action(config).into(),
    }
}

/// Deactivations go in groups of the PSA's batch size (one on most PSAs; HaloPSA updates
/// arrays); skips and confirmations are units of their own and send nothing.
fn units(work: Vec<Work>, update_batch: usize) -> Vec<Vec<Work>> {
    let mut units = Vec::new();
    let mut group = Vec::new();
    for item in work {
        if item.action == WorkAction::Deactivate {
            group.push(item);
            if group.len() == update_batch {
                units.push(std::mem::take(&mut group));
            }
        } else {
            units.push(vec![item]);
        }
    }
    if !group.is_empty() {
        units.push(group);
    }
    units
}

pub(super) async fn execute(deps: &Deps<'_>, operation_id: &str, work: Vec<Work>) -> Applied<ItemResult> {
    let units = units(work, deps.psa.update_batch_size().max(1));
    let mut changes = ChangeBatch::new(deps.audit, deps.options.audit_batch);
    let records = UnitRecords {
        intent: |work: &Work| {
            let config = &work.before;
            (work.action == WorkAction::Deactivate)
                .then(|| ItemChange::intent(operation_id, ItemKind::Configuration, &config.id, &config.name))
        },
        change: |result: &ItemResult| change_record(operation_id, result),
    };
    let (concurrency, deadline) = (deps.options.concurrency, deps.options.deadline);
    apply_units(units, concurrency, deadline, &mut changes, deps.progress, records, |unit| apply_unit(deps, unit)).await
}

async fn apply_unit(deps: &Deps<'_>, unit: Vec<Work>) -> Vec<UnitStep<ItemResult>> {
    let mut steps = Vec::with_capacity(unit.len());
    let mut to_change = Vec::new();
    for item in unit {
        let outcome = match item.action {
            WorkAction::Skip => ItemOutcome::Skipped,
            WorkAction::Uncertain => ItemOutcome::Uncertain,
            WorkAction::Deactivate => {
                to_change.push(item.before);
                continue;
            }
        };
        steps.push(UnitStep::Done(ItemResult { before: item.before, after: None, outcome, error: None }));
    }
    if to_change.is_empty() {
        return steps;
    }
    let results = deps.psa.deactivate_configurations(&to_change).await;
    for (before, result) in to_change.into_iter().zip(results) {
        steps.push(match result {
            Err(error @ PsaError::BudgetExhausted { .. }) => UnitStep::Halted(error),
            result => UnitStep::Done(verify(before, result)),
        });
    }
    steps
}

/// The PSA's answer to an update is the configuration as it now stands: the read-back.
/// An update it accepted that left the configuration active is a failure, not a success.
fn verify(before: Configuration, result: Result<Configuration, PsaError>) -> ItemResult {
    match result {
        Ok(after) if after.status.state == ConfigState::Inactive => {
            ItemResult { after: Some(after), outcome: ItemOutcome::Changed, error: None, before }
        }
        Ok(after) => ItemResult {
            error: Some((
                ErrorCode::ConfigUpdateFailed,
                format!("the PSA accepted the update but reports status '{}'", after.status.name),
            )),
            after: Some(after),
            outcome: ItemOutcome::Failed,
            before,
        },
        Err(error) => {
            // A write the PSA refused is this item's failure; permission and connection
            // problems keep their own codes.
            let code = error.write_failure_code(ErrorCode::ConfigUpdateFailed);
            let message = format!("Unable to deactivate configuration: {error}");
            ItemResult { after: None, outcome: ItemOutcome::Failed, error: Some((code, message)), before }
        }
    }
}

fn change_record(operation_id: &str, result: &ItemResult) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: ItemKind::Configuration,
        item_id: result.before.id.clone(),
        item_name: result.before.name.clone(),
        outcome: result.outcome,
        before: serde_json::to_value(&result.before).unwrap_or_default(),
        after: result.after.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default()),
        error_code: result.error.as_ref().map(|(code, _)| code.as_str().to_string()),
        error_message: result.error.as_ref().map(|(_, message)| message.clone()),
        at: domain::now(),
    }
}

/// Record the end of the run (completed, or failed when it stopped early) and report.
pub(super) async fn finish(
    deps: &Deps<'_>,
    client: &Company,
    operation_id: &str,
    plan_hash: Option<String>,
    applied: Applied<ItemResult>,
    warnings: Vec<String>,
) -> Result<ConfigDeactivationReport, OfframpError> {
    let stopped = applied.stopped;
    let mut report =
        report::applied(client, operation_id, applied.results, applied.not_attempted, stopped.as_ref(), warnings);
    report.plan_hash = plan_hash;
    let recorder = Recorder::new(deps.audit, operation_id);
    let statistics = &report.statistics;
    if let Some(stop) = &stopped {
        // Best effort: the trail may be the thing that is failing.
        let detail = json!({ "code": stop.code(), "message": stop.to_string(), "statistics": statistics });
        // Stopped by the deadline: paused for the next invocation, not failed.
        let kind = if stop.code().is_continuation() { OperationEventKind::Paused } else { OperationEventKind::Failed };
        let _ = recorder.event(kind, detail).await;
    } else {
        let detail = json!({ "statistics": statistics, "errors": report.errors.len() });
        recorder.event(OperationEventKind::Completed, detail).await?;
    }
    tracing::info!(
        workflow = %WORKFLOW,
        deactivated = statistics.configs_deactivated,
        skipped = statistics.configs_skipped,
        failed = statistics.errors,
        "operation finished"
    );
    Ok(report)
}
