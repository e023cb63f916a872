//! Rollback: put back what an operation changed, from its audit record.
//!
//! For every item the operation changed, newest change first, the item's current state
//! is read from the PSA and compared with two recorded states: the one before the
//! operation (`before`) and the one the operation left (`after`).
//! - current = before: already restored (by someone, or by an earlier rollback): nothing to do;
//! - current = after: restored to `before`;
//! - anything else: someone changed the item since; it is reported as a conflict and left
//!   alone. A rollback never guesses.
//!
//! The rollback is an audited operation of its own (workflow `rollback`, linked to the
//! original through `parent_operation_id`), with a snapshot of each item's current state
//! before it is touched. Running it again changes nothing: every item is then "already
//! restored". Rolling back a dry run, an operation that never started, or a rollback is
//! refused with `RollbackRefused`, before anything is read from the PSA.
//!
//! Supported now: configuration deactivation (`deactivate-configs`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::{
    self, ConfigState, Configuration, ItemChange, ItemOutcome, ItemSnapshot, OperationDetail, OperationEvent,
    OperationEventKind, OperationRecord,
};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AuditStore, Psa};
use crate::workflows::deactivate_configs;

pub const WORKFLOW: &str = "rollback";
const ITEM_TYPE: &str = "configuration";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The operation to roll back.
    pub operation_id: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What became (or, in a dry run, would become) of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackAction {
    Restored,
    AlreadyRestored,
    Conflict,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackItem {
    pub item_type: String,
    pub item_id: String,
    pub item_name: String,
    pub action: RollbackAction,
    /// The state found in the PSA (`active`, `inactive`, `archived`, or `missing`).
    pub current: String,
    /// The state the rollback puts back (or would).
    pub restore_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackStatistics {
    pub items: u64,
    pub restored: u64,
    pub already_restored: u64,
    pub conflicts: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    pub success: bool,
    /// This rollback's own operation id (absent when it was refused before starting).
    pub operation_id: Option<String>,
    pub rolled_back_operation_id: String,
    pub dry_run: bool,
    pub timestamp: String,
    pub statistics: RollbackStatistics,
    pub items: Vec<RollbackItem>,
    pub warnings: Vec<String>,
    pub errors: Vec<RollbackError>,
}

impl RollbackReport {
    fn refused(operation_id: &str, dry_run: bool, error: &OfframpError) -> Self {
        RollbackReport {
            success: false,
            operation_id: None,
            rolled_back_operation_id: operation_id.to_string(),
            dry_run,
            timestamp: domain::iso8601(domain::now()),
            statistics: RollbackStatistics::default(),
            items: Vec::new(),
            warnings: Vec::new(),
            errors: vec![RollbackError { code: error.code(), message: error.to_string(), item_id: None }],
        }
    }

    pub fn primary_error(&self) -> Option<ErrorCode> {
        self.errors.first().map(|e| e.code)
    }
}

pub struct RollbackDeps<'a> {
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
}

fn refused(message: String) -> OfframpError {
    OfframpError::new(ErrorCode::RollbackRefused, message)
}

/// Roll back `request.operation_id`. Never panics; every outcome is a report.
pub async fn rollback(deps: &RollbackDeps<'_>, request: RollbackRequest) -> RollbackReport {
    let target = request.operation_id.trim().to_string();
    let span = tracing::info_span!("rollback", rolled_back = %target, dry_run = request.dry_run);
    match run(deps, &request, &target).instrument(span).await {
        Ok(report) => report,
        Err(error) => RollbackReport::refused(&target, request.dry_run, &error),
    }
}

/// The original operation, checked to be one a rollback may touch.
fn check(detail: &OperationDetail, psa: &dyn Psa) -> Result<(), OfframpError> {
    let op = &detail.operation;
    if op.workflow == WORKFLOW {
        return Err(refused(format!(
            "{} is itself a rollback; roll back the original operation again instead, or run the workflow anew",
            op.operation_id
        )));
    }
    if op.workflow != deactivate_configs::WORKFLOW {
        return Err(refused(format!("rolling back {} operations is not supported", op.workflow)));
    }
    if op.dry_run {
        return Err(refused(format!("{} was a dry run: it changed nothing to roll back", op.operation_id)));
    }
    if !detail.events.iter().any(|e| e.kind == OperationEventKind::Started) {
        return Err(refused(format!("{} never started changing anything", op.operation_id)));
    }
    if op.psa != psa.kind().as_str() {
        return Err(refused(format!("{} ran against {}, not {}", op.operation_id, op.psa, psa.kind())));
    }
    Ok(())
}

/// The states an item was in before the operation and after it, from its latest
/// `Changed` record, newest change first.
fn changed_items(detail: &OperationDetail) -> Result<Vec<(Configuration, ConfigState)>, OfframpError> {
    let mut changes: Vec<&ItemChange> =
        detail.changes.iter().filter(|c| c.item_type == ITEM_TYPE && c.outcome == ItemOutcome::Changed).collect();
    changes.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.change_id.cmp(&a.change_id)));
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for change in changes {
        if !seen.insert(change.item_id.clone()) {
            continue;
        }
        let before: Configuration = serde_json::from_value(change.before.clone()).map_err(|e| {
            OfframpError::new(ErrorCode::AuditStoreError, format!("change record of {}: {e}", change.item_id))
        })?;
        // A change confirmed on resume has no `after`: the operation left it inactive.
        let left = change
            .after
            .as_ref()
            .and_then(|a| serde_json::from_value::<Configuration>(a.clone()).ok())
            .map_or(ConfigState::Inactive, |a| a.status.state);
        items.push((before, left));
    }
    Ok(items)
}

async fn run(deps: &RollbackDeps<'_>, request: &RollbackRequest, target: &str) -> Result<RollbackReport, OfframpError> {
    if target.is_empty() || target.len() > 64 || !target.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(OfframpError::invalid_input(format!("'{target}' is not an operation id")));
    }
    let detail = deps
        .audit
        .operation(target)
        .await?
        .ok_or_else(|| refused(format!("no operation {target} in the audit trail")))?;
    check(&detail, deps.psa)?;
    let items = changed_items(&detail)?;
    let original = &detail.operation;

    let operation_id = domain::new_operation_id();
    let initiated_by = request.initiated_by.clone().unwrap_or_else(|| "unknown".into());
    let record = OperationRecord {
        operation_id: operation_id.clone(),
        workflow: WORKFLOW.into(),
        psa: original.psa.clone(),
        client_id: original.client_id.clone(),
        client_name: original.client_name.clone(),
        initiated_by: initiated_by.clone(),
        reason: request.reason.clone().or_else(|| Some(format!("Rollback of {target}"))),
        dry_run: request.dry_run,
        plan_hash: None,
        created_at: domain::now(),
        input: serde_json::to_value(request).unwrap_or_default(),
        parent_operation_id: Some(target.to_string()),
    };
    deps.audit.create_operation(&record).await?;

    // Read every item's current state first: the plan, and the rollback's own snapshot.
    let mut plan = Vec::with_capacity(items.len());
    for (before, left) in items {
        let current = deps.psa.configuration(&before.id).await?;
        let action = match &current {
            None => RollbackAction::Conflict,
            Some(now) if now.status.state == before.status.state && now.status.id == before.status.id => {
                RollbackAction::AlreadyRestored
            }
            Some(now) if now.status.state == left => RollbackAction::Restored,
            Some(_) => RollbackAction::Conflict,
        };
        plan.push((before, left, current, action));
    }
    if !request.dry_run {
        let snapshots: Vec<ItemSnapshot> = plan
            .iter()
            .map(|(before, _, current, action)| ItemSnapshot {
                operation_id: operation_id.clone(),
                item_type: ITEM_TYPE.into(),
                item_id: before.id.clone(),
                item_name: before.name.clone(),
                state: serde_json::to_value(current).unwrap_or_default(),
                planned_action: if *action == RollbackAction::Restored { "restore" } else { "skip" }.into(),
            })
            .collect();
        for chunk in snapshots.chunks(500) {
            deps.audit.put_snapshots(chunk).await?;
        }
        deps.audit
            .append_event(&OperationEvent::new(
                &operation_id,
                OperationEventKind::Started,
                json!({ "rolled_back_operation_id": target, "to_restore": plan.iter().filter(|p| p.3 == RollbackAction::Restored).count() }),
            ))
            .await?;
    }

    let mut report_items = Vec::with_capacity(plan.len());
    let mut statistics = RollbackStatistics { items: plan.len() as u64, ..Default::default() };
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    for (before, left, current, mut action) in plan {
        let current_label = current.as_ref().map_or_else(|| "missing".to_string(), |c| c.status.label());
        let mut message = match (&current, action) {
            (None, _) => Some("the item no longer exists in the PSA".to_string()),
            (Some(now), RollbackAction::Conflict) => Some(format!(
                "changed since the operation: it left '{}', the PSA now has '{}' ({}); left alone",
                left.as_str(),
                now.status.label(),
                now.status.name
            )),
            _ => None,
        };
        if action == RollbackAction::Restored && !request.dry_run {
            match deps.psa.set_configuration_status(&before.id, &before.status).await {
                Ok(after) => changes.push(change(&operation_id, &before, current.as_ref(), Some(&after), None)),
                Err(error) => {
                    action = RollbackAction::Failed;
                    message = Some(format!("Unable to restore: {error}"));
                    changes.push(change(&operation_id, &before, current.as_ref(), None, Some(&error)));
                    errors.push(RollbackError {
                        code: error.code(),
                        message: format!("{}: {error}", before.id),
                        item_id: Some(before.id.clone()),
                    });
                }
            }
        }
        match action {
            RollbackAction::Restored => statistics.restored += 1,
            RollbackAction::AlreadyRestored => statistics.already_restored += 1,
            RollbackAction::Conflict => statistics.conflicts += 1,
            RollbackAction::Failed => statistics.errors += 1,
        }
        report_items.push(RollbackItem {
            item_type: ITEM_TYPE.into(),
            item_id: before.id.clone(),
            item_name: before.name.clone(),
            action,
            current: current_label,
            restore_to: before.status.label(),
            message,
        });
    }

    let mut warnings = Vec::new();
    if request.dry_run {
        warnings.push("Dry run: nothing was changed; the actions show what a rollback would do.".to_string());
    }
    if statistics.conflicts > 0 {
        warnings.push(format!(
            "{} item(s) changed since the operation and were left alone; review them in the PSA",
            statistics.conflicts
        ));
    }
    if !request.dry_run {
        for chunk in changes.chunks(25) {
            deps.audit.put_changes(chunk).await?;
        }
    }
    let kind = if request.dry_run { OperationEventKind::Planned } else { OperationEventKind::Completed };
    deps.audit.append_event(&OperationEvent::new(&operation_id, kind, json!({ "statistics": statistics }))).await?;
    tracing::info!(
        restored = statistics.restored,
        already = statistics.already_restored,
        conflicts = statistics.conflicts,
        "rollback finished"
    );
    Ok(RollbackReport {
        success: errors.is_empty(),
        operation_id: Some(operation_id),
        rolled_back_operation_id: target.to_string(),
        dry_run: request.dry_run,
        timestamp: domain::iso8601(domain::now()),
        statistics,
        items: report_items,
        warnings,
        errors,
    })
}

fn change(
    operation_id: &str,
    restored: &Configuration,
    current: Option<&Configuration>,
    after: Option<&Configuration>,
    error: Option<&crate::error::PsaError>,
) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: ITEM_TYPE.into(),
        item_id: restored.id.clone(),
        item_name: restored.name.clone(),
        outcome: if error.is_some() { ItemOutcome::Failed } else { ItemOutcome::Changed },
        before: serde_json::to_value(current).unwrap_or_default(),
        after: after.map(|a| serde_json::to_value(a).unwrap_or_default()),
        error_code: error.map(|e| e.code().as_str().to_string()),
        error_message: error.map(|e| e.to_string()),
        at: domain::now(),
    }
}
