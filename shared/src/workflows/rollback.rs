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
//! before it is touched. Each restore is recorded as soon as it is made, before the next
//! item is touched, so a rollback cut short (a crash, a Lambda timeout) leaves a record of
//! exactly what it put back.
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
//! Supported: configuration deactivation (`deactivate-configs`: configuration status) and
//! contact deactivation (`deactivate-contacts`: contact active flag, ticket contact / owner /
//! queue, configuration contact). The summary note and the notification are records of what
//! happened and stay.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::domain::{
    self, ConfigState, Configuration, Contact, ItemChange, ItemOutcome, ItemSnapshot, OperationDetail, OperationEvent,
    OperationEventKind, OperationRecord, Ticket, TicketAssignment, TicketOwner,
};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AuditStore, Psa};
use crate::workflows::{deactivate_configs, deactivate_contacts};

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
    /// Never attempted: the rollback stopped first (its audit trail could not be written).
    NotAttempted,
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
    if op.workflow == crate::workflows::delete_itglue_org::WORKFLOW {
        return Err(refused(format!(
            "{} is an IT Glue organization deletion, which IT Glue cannot undo; restore from the export recorded \
             in the operation (offramp audit show {})",
            op.operation_id, op.operation_id
        )));
    }
    if op.workflow != deactivate_configs::WORKFLOW && op.workflow != deactivate_contacts::WORKFLOW {
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

/// One item the operation changed: its state before, and the state the operation left.
#[derive(Debug, Clone)]
enum Changed {
    ConfigStatus { before: Configuration, left: ConfigState },
    ContactActive { before: Contact, left_active: bool },
    TicketFields { before: Ticket, left: Ticket },
    ConfigContact { before: Configuration, left: Option<String> },
}

/// The item's current state, read fresh from the PSA.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Current {
    Configuration(Configuration),
    Contact(Contact),
    Ticket(Ticket),
}

fn ticket_fields(ticket: &Ticket) -> (Option<&str>, Option<&str>, Option<&str>) {
    (ticket.contact_id.as_deref(), ticket.owner_id.as_deref(), ticket.queue.as_deref())
}

fn describe_ticket(ticket: &Ticket) -> String {
    format!(
        "contact {}, owner {}, queue {}",
        ticket.contact_id.as_deref().unwrap_or("none"),
        ticket.owner_id.as_deref().unwrap_or("none"),
        ticket.queue.as_deref().unwrap_or("none")
    )
}

impl Changed {
    /// The code of a restore the PSA rejects: the same as the forward run's failed update.
    fn update_failed_code(&self) -> ErrorCode {
        match self {
            Changed::ConfigStatus { .. } => ErrorCode::ConfigUpdateFailed,
            Changed::ContactActive { .. } => ErrorCode::ContactUpdateFailed,
            Changed::TicketFields { .. } | Changed::ConfigContact { .. } => ErrorCode::RelatedUpdateFailed,
        }
    }

    fn item_type(&self) -> &'static str {
        match self {
            Changed::ConfigStatus { .. } => ITEM_TYPE,
            Changed::ContactActive { .. } => deactivate_contacts::ITEM_CONTACT,
            Changed::TicketFields { .. } => deactivate_contacts::ITEM_TICKET,
            Changed::ConfigContact { .. } => deactivate_contacts::ITEM_CONFIGURATION_CONTACT,
        }
    }

    fn id(&self) -> &str {
        match self {
            Changed::ConfigStatus { before, .. } | Changed::ConfigContact { before, .. } => &before.id,
            Changed::ContactActive { before, .. } => &before.id,
            Changed::TicketFields { before, .. } => &before.id,
        }
    }

    fn name(&self) -> &str {
        match self {
            Changed::ConfigStatus { before, .. } | Changed::ConfigContact { before, .. } => &before.name,
            Changed::ContactActive { before, .. } => &before.name,
            Changed::TicketFields { before, .. } => &before.summary,
        }
    }

    /// What the rollback puts back, for the report.
    fn restore_to(&self) -> String {
        match self {
            Changed::ConfigStatus { before, .. } => before.status.label(),
            Changed::ContactActive { before, .. } => if before.active { "active" } else { "inactive" }.into(),
            Changed::TicketFields { before, .. } => describe_ticket(before),
            Changed::ConfigContact { before, .. } => {
                format!("contact {}", before.contact_id.as_deref().unwrap_or("none"))
            }
        }
    }

    async fn read(&self, psa: &dyn Psa) -> Result<Option<Current>, crate::error::PsaError> {
        Ok(match self {
            Changed::ConfigStatus { before, .. } | Changed::ConfigContact { before, .. } => {
                psa.configuration(&before.id).await?.map(Current::Configuration)
            }
            Changed::ContactActive { before, .. } => psa.contact(&before.id).await?.map(Current::Contact),
            Changed::TicketFields { before, .. } => psa.ticket(&before.id).await?.map(Current::Ticket),
        })
    }

    /// Compare the current state with `before` and with what the operation left.
    fn judge(&self, current: Option<&Current>) -> (RollbackAction, String, Option<String>) {
        let Some(current) = current else {
            return (RollbackAction::Conflict, "missing".into(), Some("the item no longer exists in the PSA".into()));
        };
        let conflict = |left: String, now: String| {
            Some(format!("changed since the operation: it left {left}, the PSA now has {now}; left alone"))
        };
        match (self, current) {
            (Changed::ConfigStatus { before, left }, Current::Configuration(now)) => {
                let label = now.status.label();
                if now.status.state == before.status.state && now.status.id == before.status.id {
                    (RollbackAction::AlreadyRestored, label, None)
                } else if now.status.state == *left {
                    (RollbackAction::Restored, label, None)
                } else {
                    let message = conflict(format!("'{}'", left.as_str()), format!("'{label}' ({})", now.status.name));
                    (RollbackAction::Conflict, label, message)
                }
            }
            (Changed::ContactActive { before, left_active }, Current::Contact(now)) => {
                let label = if now.active { "active" } else { "inactive" }.to_string();
                if now.active == before.active {
                    (RollbackAction::AlreadyRestored, label, None)
                } else if now.active == *left_active {
                    (RollbackAction::Restored, label, None)
                } else {
                    (RollbackAction::Conflict, label, None)
                }
            }
            (Changed::TicketFields { before, left }, Current::Ticket(now)) => {
                let label = describe_ticket(now);
                if ticket_fields(now) == ticket_fields(before) {
                    (RollbackAction::AlreadyRestored, label, None)
                } else if ticket_fields(now) == ticket_fields(left) {
                    (RollbackAction::Restored, label, None)
                } else {
                    let message = conflict(describe_ticket(left), label.clone());
                    (RollbackAction::Conflict, label, message)
                }
            }
            (Changed::ConfigContact { before, left }, Current::Configuration(now)) => {
                let label = format!("contact {}", now.contact_id.as_deref().unwrap_or("none"));
                if now.contact_id == before.contact_id {
                    (RollbackAction::AlreadyRestored, label, None)
                } else if now.contact_id == *left {
                    (RollbackAction::Restored, label, None)
                } else {
                    let message = conflict(format!("contact {}", left.as_deref().unwrap_or("none")), label.clone());
                    (RollbackAction::Conflict, label, message)
                }
            }
            _ => {
                (RollbackAction::Conflict, "unreadable".into(), Some("the PSA returned another kind of record".into()))
            }
        }
    }

    /// Put `before` back; returns the state afterwards.
    async fn restore(&self, psa: &dyn Psa, current: &Current) -> Result<Value, crate::error::PsaError> {
        Ok(match (self, current) {
            (Changed::ConfigStatus { before, .. }, _) => {
                json!(psa.set_configuration_status(&before.id, &before.status).await?)
            }
            (Changed::ContactActive { before, .. }, Current::Contact(now)) => {
                json!(psa.set_contact_active(now, before.active).await?)
            }
            (Changed::ContactActive { before, .. }, _) => json!(psa.set_contact_active(before, before.active).await?),
            (Changed::TicketFields { before, left }, _) => {
                // Only the fields the operation changed go back.
                let mut assignment = TicketAssignment::default();
                if before.contact_id != left.contact_id {
                    assignment.contact_id = Some(before.contact_id.clone());
                }
                if before.owner_id != left.owner_id || before.owner_role_id != left.owner_role_id {
                    assignment.owner = Some(
                        before.owner_id.clone().map(|id| TicketOwner { id, role_id: before.owner_role_id.clone() }),
                    );
                }
                if before.queue != left.queue {
                    assignment.queue = Some(before.queue.clone());
                }
                json!(psa.update_ticket(&before.id, &assignment).await?)
            }
            (Changed::ConfigContact { before, .. }, _) => {
                json!(psa.set_configuration_contact(&before.id, before.contact_id.as_deref()).await?)
            }
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: &Value, change: &ItemChange) -> Result<T, OfframpError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        OfframpError::new(
            ErrorCode::AuditStoreError,
            format!("change record of {} {}: {e}", change.item_type, change.item_id),
        )
    })
}

/// The items the operation changed, from their latest `Changed` records, newest change
/// first (so related records go back before the contacts they pointed at).
fn changed_items(detail: &OperationDetail) -> Result<Vec<Changed>, OfframpError> {
    let restorable = [
        ITEM_TYPE,
        deactivate_contacts::ITEM_CONTACT,
        deactivate_contacts::ITEM_TICKET,
        deactivate_contacts::ITEM_CONFIGURATION_CONTACT,
    ];
    let mut changes: Vec<&ItemChange> = detail
        .changes
        .iter()
        .filter(|c| restorable.contains(&c.item_type.as_str()) && c.outcome == ItemOutcome::Changed)
        .collect();
    changes.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.change_id.cmp(&a.change_id)));
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for change in changes {
        if !seen.insert((change.item_type.clone(), change.item_id.clone())) {
            continue;
        }
        let item = match change.item_type.as_str() {
            deactivate_contacts::ITEM_CONTACT => {
                let before: Contact = parse(&change.before, change)?;
                let left_active = change.after.as_ref().and_then(|a| a["active"].as_bool()).unwrap_or(false);
                Changed::ContactActive { before, left_active }
            }
            deactivate_contacts::ITEM_TICKET => {
                let before: Ticket = parse(&change.before, change)?;
                let left: Ticket = match &change.after {
                    Some(after) => parse(after, change)?,
                    None => continue,
                };
                Changed::TicketFields { before, left }
            }
            deactivate_contacts::ITEM_CONFIGURATION_CONTACT => {
                let before: Configuration = parse(&change.before, change)?;
                let left = match &change.after {
                    Some(after) => parse::<Configuration>(after, change)?.contact_id,
                    None => continue,
                };
                Changed::ConfigContact { before, left }
            }
            _ => {
                let before: Configuration = parse(&change.before, change)?;
                // A change confirmed on resume has no `after`: the operation left it inactive.
                let left = change
                    .after
                    .as_ref()
                    .and_then(|a| serde_json::from_value::<Configuration>(a.clone()).ok())
                    .map_or(ConfigState::Inactive, |a| a.status.state);
                Changed::ConfigStatus { before, left }
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// An item an earlier, unfinished rollback of the same operation put back.
struct EarlierRestore {
    rollback_id: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// What earlier rollbacks of `target` restored, by (item type, item id). Refuses when one
/// of them completed without a failed item: the operation is rolled back already.
async fn earlier_rollbacks(
    audit: &dyn AuditStore,
    target: &str,
) -> Result<HashMap<(String, String), EarlierRestore>, OfframpError> {
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
                (change.item_type.clone(), change.item_id.clone()),
                EarlierRestore { rollback_id: child.operation_id.clone(), at: change.at },
            );
        }
    }
    Ok(restored)
}

async fn run(deps: &RollbackDeps<'_>, request: &RollbackRequest, target: &str) -> Result<RollbackReport, OfframpError> {
    if target.is_empty() || target.len() > 64 || !target.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(OfframpError::invalid_input(format!("'{target}' is not an operation id")));
    }
    let detail = deps.audit.operation(target).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {target} in the audit trail"))
    })?;
    check(&detail, deps.psa)?;
    let earlier = earlier_rollbacks(deps.audit, target).await?;
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
    // From here on the rollback is in the trail: every outcome is a report that names it.
    let mut report = RollbackReport {
        success: false,
        operation_id: Some(operation_id.clone()),
        rolled_back_operation_id: target.to_string(),
        dry_run: request.dry_run,
        timestamp: domain::iso8601(domain::now()),
        statistics: RollbackStatistics { items: items.len() as u64, ..Default::default() },
        items: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    if request.dry_run {
        report.warnings.push("Dry run: nothing was changed; the actions show what a rollback would do.".to_string());
    }
    if !earlier.is_empty() {
        report.warnings.push(format!(
            "An earlier rollback of {target} did not finish cleanly; what it restored is not restored again."
        ));
    }
    if detail.changes.iter().any(|c| {
        [deactivate_contacts::ITEM_TICKET_NOTE, deactivate_contacts::ITEM_SUMMARY_TICKET]
            .contains(&c.item_type.as_str())
            && c.outcome == ItemOutcome::Changed
    }) {
        report
            .warnings
            .push("The summary note (and any ticket the operation opened) stays in the PSA as a record.".into());
    }

    // Read every item's current state first: the plan, and the rollback's own snapshot.
    let mut plan = Vec::with_capacity(items.len());
    for item in items {
        let current = match item.read(deps.psa).await {
            Ok(current) => current,
            Err(error) => return Ok(stop(deps, report, error.into(), "nothing was restored").await),
        };
        let (mut action, label, mut message) = item.judge(current.as_ref());
        if let Some(earlier) = earlier.get(&(item.item_type().to_string(), item.id().to_string())) {
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
        plan.push((item, current, action, label, message));
    }
    if !request.dry_run {
        let snapshots: Vec<ItemSnapshot> = plan
            .iter()
            .map(|(item, current, action, _, _)| ItemSnapshot {
                operation_id: operation_id.clone(),
                item_type: item.item_type().into(),
                item_id: item.id().to_string(),
                item_name: item.name().to_string(),
                state: serde_json::to_value(current).unwrap_or_default(),
                planned_action: if *action == RollbackAction::Restored { "restore" } else { "skip" }.into(),
            })
            .collect();
        let to_restore = plan.iter().filter(|p| p.2 == RollbackAction::Restored).count();
        let started = async {
            for chunk in snapshots.chunks(500) {
                deps.audit.put_snapshots(chunk).await?;
            }
            let detail = json!({ "rolled_back_operation_id": target, "to_restore": to_restore });
            deps.audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Started, detail)).await
        };
        if let Err(error) = started.await {
            return Ok(stop(deps, report, error.into(), "nothing was restored").await);
        }
    }

    let mut stopped: Option<OfframpError> = None;
    for (item, current, mut action, current_label, mut message) in plan {
        if stopped.is_some() {
            action = RollbackAction::NotAttempted;
            message = Some("not attempted: the rollback stopped before this item".into());
        } else if action == RollbackAction::Restored
            && !request.dry_run
            && let Some(now) = &current
        {
            let before_value = serde_json::to_value(now).unwrap_or_default();
            let record = match item.restore(deps.psa, now).await {
                Ok(after) => change(&operation_id, &item, before_value, Some(after), None),
                Err(error) => {
                    action = RollbackAction::Failed;
                    message = Some(format!("Unable to restore: {error}"));
                    report.errors.push(RollbackError {
                        code: error.write_failure_code(item.update_failed_code()),
                        message: format!("{} {}: {error}", item.item_type(), item.id()),
                        item_id: Some(item.id().to_string()),
                    });
                    change(&operation_id, &item, before_value, None, Some(&error))
                }
            };
            // Written before the next item is touched: whenever the rollback is cut short,
            // the trail says exactly what it restored. Without a record nothing more is changed.
            if let Err(error) = deps.audit.put_changes(std::slice::from_ref(&record)).await {
                stopped = Some(error.into());
            }
        }
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
            item_type: item.item_type().into(),
            item_id: item.id().to_string(),
            item_name: item.name().to_string(),
            action,
            current: current_label,
            restore_to: item.restore_to(),
            message,
        });
    }
    if report.statistics.conflicts > 0 {
        report.warnings.push(format!(
            "{} item(s) changed since the operation and were left alone; review them in the PSA",
            report.statistics.conflicts
        ));
    }
    if let Some(error) = stopped {
        let not_attempted = report.statistics.not_attempted;
        return Ok(stop(deps, report, error, &format!("{not_attempted} item(s) were not attempted")).await);
    }
    let kind = if request.dry_run { OperationEventKind::Planned } else { OperationEventKind::Completed };
    let statistics = json!({ "statistics": report.statistics });
    if let Err(error) = deps.audit.append_event(&OperationEvent::new(&operation_id, kind, statistics)).await {
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
    Ok(report)
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

fn change(
    operation_id: &str,
    item: &Changed,
    before: Value,
    after: Option<Value>,
    error: Option<&crate::error::PsaError>,
) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: item.item_type().into(),
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
