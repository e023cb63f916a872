//! Rollback: put back what an operation changed, from its audit record.
//!
//! For every item the operation changed, newest change first, the item's current state
//! is read from its system (the PSA: many items of one company with one listing of the
//! company, the others one by one; Entra ID or Exchange Online through the restore context,
//! `RestoreSystems`, docs/architecture.md#restore-context) and compared with two recorded states: the one before the
//! operation (`before`) and the one the operation left (`after`).
//! - current = before: already restored (by someone, or by an earlier rollback): nothing to do;
//! - current = after: restored to `before`;
//! - anything else: someone changed the item since; it is reported as a conflict and left
//!   alone. A rollback never guesses.
//!
//! The rollback is an audited operation of its own (workflow `rollback`, linked to the
//! original through `parent_operation_id`), with a snapshot of each item's current state
//! before it is touched. Items are read and restored with the forward runs' bounded
//! concurrency (`restore_items`); each restore's intent is recorded before it is sent and
//! its result after, so a rollback cut short (a crash, a Lambda timeout) leaves a record of
//! what it put back, and at most the window in flight to be read again by the next one.
//!
//! A rollback that completed without a failed item is final: rolling the operation back
//! again is refused, naming that rollback, because by then the items belong to people
//! again and a second pass could only overwrite what they did since. A rollback that was
//! interrupted or had failed items may be run again; it skips what earlier rollbacks
//! restored (the item is "already restored"), and an item an earlier rollback restored
//! that is back in the state the operation left has been changed again by someone since:
//! a conflict, left alone. Rolling back a dry run, an operation that never started, or a
//! rollback is refused with `RollbackRefused`, before anything is read from the PSA.
//!
//! An item whose system this process has not configured (Microsoft 365 without
//! `MS_CLIENT_ID`) is reported failed with `ConfigurationError` and recorded so; the others
//! are restored, and the rollback may be run again once it is configured.
//!
//! Supported: configuration deactivation (`deactivate-configs`: configuration status) and
//! contact deactivation (`deactivate-contacts`: contact active flag, ticket contact / owner /
//! queue, configuration contact). The summary note and the notification are records of what
//! happened and stay.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::{
    self, ItemChange, ItemKind, ItemOutcome, ItemSnapshot, OperationDetail, OperationEvent, OperationEventKind,
    OperationRecord, Workflow,
};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::restore::{Restorable, RestoreRegistry, RestoreSystems, Reversibility};
use crate::operation::{self, LeaseOptions};
use crate::ports::{AuditStore, CloudDirectory, Mailboxes, OnPremDirectory, Psa};
use crate::workflows::input;

mod restore_items;

use restore_items::Planned;

pub const WORKFLOW: Workflow = Workflow::Rollback;

/// A rollback cannot itself be rolled back: the original is rolled back again instead.
pub fn register(registry: &mut RestoreRegistry) {
    registry.register_workflow(
        WORKFLOW,
        Reversibility::Irreversible(
            "{id} is itself a rollback; roll back the original operation again instead, or run the workflow anew",
        ),
    );
}

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
    /// The same key with the same request returns the first rollback's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Take the client's lease from a run that holds it (a run known to be dead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_lease: bool,
    /// Also restore items recorded as uncertain (in flight when the run stopped, found
    /// changed by its resume): the operator confirms they were this operation's changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_uncertain: bool,
}

/// What became (or, in a dry run, would become) of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackAction {
    Restored,
    AlreadyRestored,
    Conflict,
    Failed,
    /// Never attempted: the rollback stopped first (its audit trail could not be written).
    NotAttempted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackItem {
    pub item_type: ItemKind,
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
    /// Items left for another rollback because this one stopped early.
    #[serde(default)]
    pub not_attempted: u64,
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

    /// A report for a request that could not even be read.
    pub fn invalid(error: &OfframpError) -> Self {
        Self::refused("", false, error)
    }
}

pub struct RollbackDeps<'a> {
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
    /// How each workflow's items are put back (`crate::workflows::restorers()`).
    pub registry: &'a RestoreRegistry,
    /// Entra ID, when Microsoft 365 is configured (`MS_CLIENT_ID`); without it, items
    /// that live there fail with `ConfigurationError` and the others are restored.
    pub directory: Option<&'a dyn CloudDirectory>,
    /// Exchange Online, when Microsoft 365 is configured.
    pub mailboxes: Option<&'a dyn Mailboxes>,
    /// On-premises AD, when it is configured (`AD_LDAP_URL`).
    pub onprem: Option<&'a dyn OnPremDirectory>,
}

impl<'a> RollbackDeps<'a> {
    /// A rollback that reaches the PSA only: items in Entra ID or Exchange Online fail with
    /// `ConfigurationError` (what a deployment without `MS_CLIENT_ID` gets).
    pub fn without_microsoft365(psa: &'a dyn Psa, audit: &'a dyn AuditStore, registry: &'a RestoreRegistry) -> Self {
        RollbackDeps { psa, audit, registry, directory: None, mailboxes: None, onprem: None }
    }

    /// What the restorers can reach (docs/architecture.md#restore-context).
    pub fn systems(&self) -> RestoreSystems<'a> {
        RestoreSystems { psa: self.psa, directory: self.directory, mailboxes: self.mailboxes, onprem: self.onprem }
    }
}

fn refused(message: String) -> OfframpError {
    OfframpError::new(ErrorCode::RollbackRefused, message)
}

/// Roll back `request.operation_id`. Never panics; every outcome is a report.
pub async fn rollback(deps: &RollbackDeps<'_>, request: RollbackRequest) -> RollbackReport {
    let target = request.operation_id.trim().to_string();
    let payload = serde_json::to_value(&request).unwrap_or_default();
    let span = tracing::info_span!("rollback", rolled_back = %target, dry_run = request.dry_run);
    let run = async {
        // Boxed: the lease, the judging and the bounded restores make a large future, and
        // callers on a small stack (a test thread, a Lambda handler) must not carry it.
        match Box::pin(run(deps, &request, &target)).await {
            Ok(report) => report,
            Err(error) => RollbackReport::refused(&target, request.dry_run, &error),
        }
    };
    let key = request.idempotency_key.as_deref();
    let options = operation::IdempotencyOptions::default();
    operation::idempotent(deps.audit, options, WORKFLOW, key, &payload, run.instrument(span)).await
}

impl operation::IdempotentReport for RollbackReport {
    fn from_error(error: &OfframpError) -> Self {
        RollbackReport::invalid(error)
    }

    fn error_codes(&self) -> Vec<ErrorCode> {
        self.errors.iter().map(|e| e.code).collect()
    }

    fn operation_id(&self) -> Option<String> {
        self.operation_id.clone()
    }
}

/// The original operation, checked to be one a rollback may touch.
fn check(detail: &OperationDetail, psa: &dyn Psa, registry: &RestoreRegistry) -> Result<(), OfframpError> {
    let op = &detail.operation;
    match registry.reversibility(op.workflow) {
        Some(Reversibility::Reversible) => {}
        Some(Reversibility::Irreversible(why)) => return Err(refused(why.replace("{id}", &op.operation_id))),
        None => return Err(refused(format!("rolling back {} operations is not supported", op.workflow))),
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

/// Whether a change record is one the rollback undoes: `Changed`, and `Uncertain` only when
/// the operator includes uncertain items.
fn undoes(change: &ItemChange, include_uncertain: bool) -> bool {
    change.outcome == ItemOutcome::Changed || (include_uncertain && change.outcome == ItemOutcome::Uncertain)
}

/// The items the operation changed, from their latest `Changed` records, newest change
/// first (so related records go back before the contacts they pointed at).
fn changed_items(
    detail: &OperationDetail,
    registry: &RestoreRegistry,
    include_uncertain: bool,
) -> Result<Vec<Box<dyn Restorable>>, OfframpError> {
    let mut changes: Vec<&ItemChange> = detail.changes.iter().filter(|c| undoes(c, include_uncertain)).collect();
    changes.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.change_id.cmp(&a.change_id)));
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for change in changes {
        if !seen.insert((change.item_type, change.item_id.clone())) {
            continue;
        }
        items.extend(registry.parse(change)?);
    }
    Ok(items)
}

/// An item an earlier, unfinished rollback of the same operation put back.
pub(super) struct EarlierRestore {
    rollback_id: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// What earlier rollbacks of `target` restored, by (item type, item id). Refuses when one
/// of them completed without a failed item: the operation is rolled back already.
async fn earlier_rollbacks(
    audit: &dyn AuditStore,
    target: &str,
) -> Result<HashMap<(ItemKind, String), EarlierRestore>, OfframpError> {
    let mut restored = HashMap::new();
    for child in audit.child_operations(target).await? {
        // A dry run changed nothing; a child of another workflow is not an undo.
        if child.workflow != WORKFLOW || child.dry_run {
            continue;
        }
        let Some(detail) = audit.operation(&child.operation_id).await? else {
            continue;
        };
        let failed = detail.changes.iter().any(|c| c.outcome == ItemOutcome::Failed);
        let completed = detail.events.iter().find(|e| e.kind == OperationEventKind::Completed);
        if let Some(completed) = completed
            && !failed
        {
            return Err(refused(format!(
                "{target} was already rolled back by {} (completed {}); rolling it back again could overwrite what \
                 people changed since. Review it with offramp audit show {}",
                child.operation_id,
                domain::iso8601(completed.at),
                child.operation_id
            )));
        }
        for change in detail.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed) {
            restored.insert(
                (change.item_type, change.item_id.clone()),
                EarlierRestore { rollback_id: child.operation_id.clone(), at: change.at },
            );
        }
    }
    Ok(restored)
}

/// The request checked, with its free text cleaned, before anything is read; `target` is
/// its operation id, trimmed.
pub(crate) fn checked(request: &RollbackRequest, target: &str) -> Result<RollbackRequest, OfframpError> {
    if target.is_empty() || target.len() > 64 || !target.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(OfframpError::invalid_input(format!("'{target}' is not an operation id")));
    }
    crate::workflows::input::idempotency_key(request.idempotency_key.as_deref())?;
    // The same rule as every other entry point's free text.
    Ok(RollbackRequest {
        reason: input::text(input::REASON, request.reason.as_deref())?,
        initiated_by: input::text(input::INITIATED_BY, request.initiated_by.as_deref())?,
        ..request.clone()
    })
}

async fn run(deps: &RollbackDeps<'_>, request: &RollbackRequest, target: &str) -> Result<RollbackReport, OfframpError> {
    let request = &checked(request, target)?;
    let detail = deps.audit.operation(target).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {target} in the audit trail"))
    })?;
    check(&detail, deps.psa, deps.registry)?;
    let operation_id = domain::new_operation_id();
    let work = roll_back(deps, request, &detail, &operation_id);
    if request.dry_run {
        return work.await;
    }
    // The original's target: a rollback waits for no run, and no run starts while it works.
    let lease = operation::lease::target_of(&detail.operation);
    operation::with_lease(deps.audit, LeaseOptions::default(), lease, &operation_id, request.break_lease, work).await?
}

async fn roll_back(
    deps: &RollbackDeps<'_>,
    request: &RollbackRequest,
    detail: &OperationDetail,
    operation_id: &str,
) -> Result<RollbackReport, OfframpError> {
    let target = detail.operation.operation_id.as_str();
    let earlier = earlier_rollbacks(deps.audit, target).await?;
    let items = changed_items(detail, deps.registry, request.include_uncertain)?;
    deps.audit.create_operation(&rollback_record(request, detail, operation_id)).await?;
    // From here on the rollback is in the trail: every outcome is a report that names it.
    let mut report = opening_report(request, detail, deps.registry, operation_id, items.len(), !earlier.is_empty());
    let uncertain = detail.changes.iter().filter(|c| c.outcome == ItemOutcome::Uncertain).count();
    if uncertain > 0 && !request.include_uncertain {
        report.warnings.push(format!(
            "{uncertain} item(s) are recorded as uncertain (in flight when the operation stopped) and were left alone; \
             roll back with include_uncertain (CLI --include-uncertain) once you know they were this operation's changes."
        ));
    }
    // Read every item's current state first: the plan, and the rollback's own snapshot.
    let plan = match restore_items::judge_all(&deps.systems(), deps.registry, items, &earlier).await {
        Ok(plan) => plan,
        Err(error) => return Ok(stop(deps, report, error.into(), "nothing was restored").await),
    };
    if !request.dry_run
        && let Err(error) = start(deps, operation_id, target, &plan, request.break_lease).await
    {
        return Ok(stop(deps, report, error.into(), "nothing was restored").await);
    }
    let stopped = restore_items::restore_all(deps, request.dry_run, operation_id, plan, &mut report).await;
    if let Some(error) = stopped {
        let not_attempted = report.statistics.not_attempted;
        return Ok(stop(deps, report, error, &format!("{not_attempted} item(s) were not attempted")).await);
    }
    Ok(close(deps, request.dry_run, operation_id, report).await)
}

fn rollback_record(request: &RollbackRequest, detail: &OperationDetail, operation_id: &str) -> OperationRecord {
    let original = &detail.operation;
    OperationRecord {
        operation_id: operation_id.to_string(),
        workflow: WORKFLOW,
        psa: original.psa.clone(),
        client_id: original.client_id.clone(),
        client_name: original.client_name.clone(),
        initiated_by: request.initiated_by.clone().unwrap_or_else(|| "unknown".into()),
        reason: request.reason.clone().or_else(|| Some(format!("Rollback of {}", original.operation_id))),
        dry_run: request.dry_run,
        plan_hash: None,
        created_at: domain::now(),
        input: serde_json::to_value(request).unwrap_or_default(),
        parent_operation_id: Some(original.operation_id.clone()),
    }
}

fn opening_report(
    request: &RollbackRequest,
    detail: &OperationDetail,
    registry: &RestoreRegistry,
    operation_id: &str,
    items: usize,
    earlier_unfinished: bool,
) -> RollbackReport {
    let target = &detail.operation.operation_id;
    let mut report = RollbackReport {
        success: false,
        operation_id: Some(operation_id.to_string()),
        rolled_back_operation_id: target.clone(),
        dry_run: request.dry_run,
        timestamp: domain::iso8601(domain::now()),
        statistics: RollbackStatistics { items: items as u64, ..Default::default() },
        items: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    if request.dry_run {
        report.warnings.push("Dry run: nothing was changed; the actions show what a rollback would do.".to_string());
    }
    if earlier_unfinished {
        report.warnings.push(format!(
            "An earlier rollback of {target} did not finish cleanly; what it restored is not restored again."
        ));
    }
    let kept = |c: &&ItemChange| registry.is_kept_record(c.item_type) && c.outcome == ItemOutcome::Changed;
    let records = [ItemKind::TicketNote, ItemKind::SummaryTicket, ItemKind::Notification];
    if detail.changes.iter().filter(kept).any(|c| records.contains(&c.item_type)) {
        report
            .warnings
            .push("The summary note (and any ticket the operation opened) stays in the PSA as a record.".into());
    }
    let undone: Vec<String> = detail
        .changes
        .iter()
        .filter(kept)
        .filter(|c| !records.contains(&c.item_type))
        .map(|c| format!("{} {} ({})", c.item_type, c.item_id, c.item_name))
        .collect();
    if !undone.is_empty() {
        report.warnings.push(format!("Cannot be undone, left as they are: {}.", undone.join(", ")));
    }
    report
}

/// The rollback's own snapshot of every item, then `started`.
async fn start(
    deps: &RollbackDeps<'_>,
    operation_id: &str,
    target: &str,
    plan: &[Planned],
    lease_broken: bool,
) -> Result<(), crate::error::AuditError> {
    let recorder = operation::Recorder::new(deps.audit, operation_id);
    let snapshots = plan.iter().map(|p| ItemSnapshot {
        operation_id: operation_id.to_string(),
        item_type: p.item.kind(),
        item_id: p.item.id().to_string(),
        item_name: p.item.name().to_string(),
        state: p.current.clone().unwrap_or_default(),
        planned_action: if p.action == RollbackAction::Restored { "restore" } else { "skip" }.into(),
    });
    recorder.snapshots(snapshots).await?;
    let to_restore = plan.iter().filter(|p| p.action == RollbackAction::Restored).count();
    let detail = json!({ "rolled_back_operation_id": target, "to_restore": to_restore, "lease_broken": lease_broken });
    recorder.event(OperationEventKind::Started, detail).await
}

/// Record the end and finish the report.
async fn close(
    deps: &RollbackDeps<'_>,
    dry_run: bool,
    operation_id: &str,
    mut report: RollbackReport,
) -> RollbackReport {
    if report.statistics.conflicts > 0 {
        report.warnings.push(format!(
            "{} item(s) changed since the operation and were left alone; review them in the PSA",
            report.statistics.conflicts
        ));
    }
    let kind = if dry_run { OperationEventKind::Planned } else { OperationEventKind::Completed };
    let statistics = json!({ "statistics": report.statistics });
    if let Err(error) = deps.audit.append_event(&OperationEvent::new(operation_id, kind, statistics)).await {
        // Everything above happened and each restore is recorded; only the end is missing,
        // so the rollback counts as unfinished and may be run again (it skips what it did).
        let error = OfframpError::from(error);
        report.errors.push(RollbackError {
            code: error.code(),
            message: format!("The rollback's completion could not be recorded: {error}"),
            item_id: None,
        });
    }
    report.success = report.errors.is_empty();
    report.timestamp = domain::iso8601(domain::now());
    tracing::info!(
        restored = report.statistics.restored,
        already = report.statistics.already_restored,
        conflicts = report.statistics.conflicts,
        errors = report.errors.len(),
        "rollback finished"
    );
    report
}

/// The rollback stopped early on `error`: its report (what it did so far) with the error
/// first, and a `Failed` event if the trail takes it.
async fn stop(deps: &RollbackDeps<'_>, mut report: RollbackReport, error: OfframpError, done: &str) -> RollbackReport {
    let operation_id = report.operation_id.clone().unwrap_or_default();
    tracing::warn!(code = %error.code(), error = %error, "rollback stopped");
    report.warnings.push(format!(
        "The rollback stopped before finishing ({done}). Run it again (offramp rollback {}): it skips what this one \
         restored.",
        report.rolled_back_operation_id
    ));
    report.errors.insert(0, RollbackError { code: error.code(), message: error.to_string(), item_id: None });
    report.success = false;
    report.timestamp = domain::iso8601(domain::now());
    let detail = json!({ "code": error.code(), "message": error.to_string(), "statistics": report.statistics });
    // Best effort: when the trail itself is what failed, this may fail too.
    let _ = deps.audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Failed, detail)).await;
    report
}
