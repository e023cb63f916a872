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
//! Supported: configuration deactivation (`deactivate-configs`: configuration status) and
//! contact deactivation (`deactivate-contacts`: contact active flag, ticket contact / owner /
//! queue, configuration contact). The summary note and the notification are records of what
//! happened and stay.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use serde_json::Value;

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
    for item in items {
        let current = item.read(deps.psa).await?;
        let (action, label, message) = item.judge(current.as_ref());
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
        for chunk in snapshots.chunks(500) {
            deps.audit.put_snapshots(chunk).await?;
        }
        deps.audit
            .append_event(&OperationEvent::new(
                &operation_id,
                OperationEventKind::Started,
                json!({ "rolled_back_operation_id": target, "to_restore": plan.iter().filter(|p| p.2 == RollbackAction::Restored).count() }),
            ))
            .await?;
    }

    let mut report_items = Vec::with_capacity(plan.len());
    let mut statistics = RollbackStatistics { items: plan.len() as u64, ..Default::default() };
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    for (item, current, mut action, current_label, mut message) in plan {
        if action == RollbackAction::Restored
            && !request.dry_run
            && let Some(now) = &current
        {
            let before_value = serde_json::to_value(now).unwrap_or_default();
            match item.restore(deps.psa, now).await {
                Ok(after) => changes.push(change(&operation_id, &item, before_value, Some(after), None)),
                Err(error) => {
                    action = RollbackAction::Failed;
                    message = Some(format!("Unable to restore: {error}"));
                    changes.push(change(&operation_id, &item, before_value, None, Some(&error)));
                    errors.push(RollbackError {
                        code: error.code(),
                        message: format!("{} {}: {error}", item.item_type(), item.id()),
                        item_id: Some(item.id().to_string()),
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
        if action == RollbackAction::Conflict && message.is_none() {
            message = Some("changed since the operation; left alone".into());
        }
        report_items.push(RollbackItem {
            item_type: item.item_type().into(),
            item_id: item.id().to_string(),
            item_name: item.name().to_string(),
            action,
            current: current_label,
            restore_to: item.restore_to(),
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
    if detail
        .changes
        .iter()
        .any(|c| c.item_type == deactivate_contacts::ITEM_TICKET_NOTE && c.outcome == ItemOutcome::Changed)
    {
        warnings.push("The summary note (and any ticket the operation opened) stays in the PSA as a record.".into());
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
        error_code: error.map(|e| e.code().as_str().to_string()),
        error_message: error.map(|e| e.to_string()),
        at: domain::now(),
    }
}
