//! Continuing an interrupted contact deactivation. The engine checks the operation may
//! be continued (`load_resumable`: this workflow and PSA, started, not rolled back) and
//! holds the company's lease; the trail's latest change records decide what is left:
//! nothing is done twice, related records of contacts deactivated before the
//! interruption are still updated, a summary ticket the run opened is reused, and the
//! note and notification describe the whole operation.

use std::collections::HashMap;

use serde_json::json;

use super::execute;
use super::plan::{self, ContactPlan, Plan, PlannedTicketChange, RelatedSnapshot};
use super::report::{BlastRadius, ContactDeactivationReport};
use super::run::{Outcome, Pending, RunContext, Work};
use super::{
    ContactDeps, DeactivateContactsRequest, Failure, ITEM_CONFIGURATION_CONTACT, ITEM_CONTACT, ITEM_NOTIFICATION,
    ITEM_SUMMARY_TICKET, ITEM_TICKET, ITEM_TICKET_NOTE, WORKFLOW, summary,
};
use crate::domain::{
    self, Company, Configuration, Contact, ItemChange, ItemKind, ItemOutcome, OperationDetail, OperationEventKind,
    Ticket,
};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Recorder, resume as engine, sort_key};
use crate::workflows::input;
use crate::workflows::org_settings::OrgSettings;

type Latest<'a> = HashMap<(ItemKind, &'a str), &'a ItemChange>;

fn corrupt(what: &str, error: impl std::fmt::Display) -> OfframpError {
    OfframpError::new(ErrorCode::AuditStoreError, format!("{what}: {error}"))
}

/// Where an item stands by the trail: `None` when it is done (changed, uncertain, or left
/// alone as someone else's change), else whether its change may be in flight.
fn pending_of(latest: &Latest<'_>, kind: ItemKind, id: &str) -> Option<Pending> {
    match latest.get(&(kind, id)) {
        Some(c) if matches!(c.outcome, ItemOutcome::Changed | ItemOutcome::Uncertain | ItemOutcome::Skipped) => None,
        Some(c) if engine::may_have_applied(c) => Some(Pending::InFlight),
        _ => Some(Pending::NotReached),
    }
}

fn unknown_outcome(latest: &Latest<'_>, kind: ItemKind) -> bool {
    latest.iter().any(|((k, _), c)| *k == kind && summary::is_outcome_unknown(c))
}

fn recorded(latest: &Latest<'_>, kind: ItemKind, outcome: ItemOutcome) -> bool {
    latest.iter().any(|((k, _), c)| *k == kind && c.outcome == outcome)
}

pub(super) async fn resume(
    deps: &ContactDeps<'_>,
    operation_id: &str,
    break_lease: bool,
) -> Result<ContactDeactivationReport, Failure> {
    let psa = deps.psa.kind().as_str();
    let detail = engine::load_resumable(deps.audit, WORKFLOW, psa, operation_id, deps.deadline).await?;
    let latest = engine::latest_changes(&detail);
    let (work, plan_contacts) = pending(&detail, &latest)?;
    // A finished operation with nothing left would only repeat its note and notification.
    // One with failed items (or a failed note or notification) may be resumed to retry them.
    let notification_failed = !work.notification_done && recorded(&latest, ITEM_NOTIFICATION, ItemOutcome::Failed);
    let nothing_left = work.contacts.is_empty()
        && work.tickets.is_empty()
        && work.configurations.is_empty()
        && work.note_done
        && !notification_failed;
    if let Some(completed) = detail.events.iter().rev().find(|e| e.kind == OperationEventKind::Completed)
        && nothing_left
    {
        return Err(engine::not_resumable(
            operation_id,
            format!("it completed at {} with nothing left to do", domain::iso8601(completed.at)),
        )
        .into());
    }
    let earlier = earlier_outcome(&latest);
    let lease = operation::lease::target(deps.psa.kind().as_str(), &detail.operation.client_id);
    let run = continue_operation(deps, &detail, &latest, work, plan_contacts, earlier, break_lease);
    let fail = |error: OfframpError| Failure { error, company: None, operation_id: Some(operation_id.to_string()) };
    operation::with_lease(deps.audit, Default::default(), lease, operation_id, break_lease, run)
        .await
        .map_err(fail)?
        .map_err(fail)
}

/// What is left (items whose latest record is not a change) and the contacts' plan.
fn pending(detail: &OperationDetail, latest: &Latest<'_>) -> Result<(Work, Vec<(Contact, ContactPlan)>), OfframpError> {
    let mut work = Work {
        contacts: Vec::new(),
        tickets: Vec::new(),
        configurations: Vec::new(),
        // A note or notification whose outcome is unknown is not sent again (it may have
        // been delivered): a second one is worse than a warning.
        note_done: recorded(latest, ITEM_TICKET_NOTE, ItemOutcome::Changed)
            || unknown_outcome(latest, ITEM_TICKET_NOTE),
        notification_done: recorded(latest, ITEM_NOTIFICATION, ItemOutcome::Changed)
            || unknown_outcome(latest, ITEM_NOTIFICATION),
    };
    let mut plan_contacts = Vec::new();
    for snap in &detail.snapshots {
        let pending = pending_of(latest, snap.item_type, &snap.item_id);
        match snap.item_type {
            ITEM_CONTACT => {
                let contact: Contact =
                    serde_json::from_value(snap.state.clone()).map_err(|e| corrupt("contact snapshot", e))?;
                let plan = match snap.planned_action.as_str() {
                    "deactivate" => ContactPlan::Deactivate,
                    "exclude" => ContactPlan::Excluded("Excluded in the original plan".into()),
                    _ => ContactPlan::AlreadyInactive,
                };
                if plan == ContactPlan::Deactivate
                    && let Some(pending) = pending
                {
                    work.contacts.push((contact.clone(), pending));
                }
                plan_contacts.push((contact, plan));
            }
            ITEM_TICKET if let Some(pending) = pending => {
                let s: RelatedSnapshot<Ticket, PlannedTicketChange> =
                    serde_json::from_value(snap.state.clone()).map_err(|e| corrupt("ticket snapshot", e))?;
                work.tickets.push((s.before, s.change, pending));
            }
            ITEM_CONFIGURATION_CONTACT if let Some(pending) = pending => {
                let s: RelatedSnapshot<Configuration, Option<String>> =
                    serde_json::from_value(snap.state.clone()).map_err(|e| corrupt("configuration snapshot", e))?;
                work.configurations.push((s.before, s.change, pending));
            }
            _ => {}
        }
    }
    plan_contacts.sort_by_key(|(c, _)| sort_key(&c.id));
    Ok((work, plan_contacts))
}

/// What the operation did before the interruption is part of the outcome from the start:
/// the report, the note and the notification describe the whole operation.
fn earlier_outcome(latest: &Latest<'_>) -> Outcome {
    // Uncertain items are in the target state too: the report and the note count them.
    let changed = |kind: ItemKind| {
        latest
            .values()
            .filter(move |c| c.item_type == kind && matches!(c.outcome, ItemOutcome::Changed | ItemOutcome::Uncertain))
    };
    let mut deactivated: Vec<Contact> = changed(ITEM_CONTACT)
        .filter_map(|c| c.after.as_ref().and_then(|a| serde_json::from_value::<Contact>(a.clone()).ok()))
        .collect();
    deactivated.sort_by_key(|c| sort_key(&c.id));
    deactivated.dedup_by(|a, b| a.id == b.id);
    Outcome {
        deactivated,
        tickets_changed: changed(ITEM_TICKET).count() as u64,
        configurations_changed: changed(ITEM_CONFIGURATION_CONTACT).count() as u64,
        ..Outcome::default()
    }
}

/// Under the lease: record the resume, do what is left, report on the whole operation.
async fn continue_operation(
    deps: &ContactDeps<'_>,
    detail: &OperationDetail,
    latest: &Latest<'_>,
    work: Work,
    plan_contacts: Vec<(Contact, ContactPlan)>,
    earlier: Outcome,
    lease_broken: bool,
) -> Result<ContactDeactivationReport, OfframpError> {
    let op = &detail.operation;
    let operation_id = op.operation_id.as_str();
    let company = deps.psa.company_by_id(&op.client_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::ClientNotFound, format!("company {} no longer exists", op.client_id))
    })?;
    let pending = json!({ "pending_contacts": work.contacts.len(), "lease_broken": lease_broken });
    Recorder::new(deps.audit, operation_id).event(OperationEventKind::Resumed, pending).await?;
    let ctx = context(detail, latest, company.clone(), &deps.requester_domains)?;
    let outcome = execute::execute(deps, &ctx, work, earlier).await;
    let plan = Plan {
        contacts: plan_contacts,
        tickets: Vec::new(),
        configurations: Vec::new(),
        primary: Vec::new(),
        // Recorded with the operation (absent in operations older than this field).
        reassignment: serde_json::from_value(op.input["reassignment"].clone()).unwrap_or_default(),
        blast: BlastRadius {
            contacts_to_deactivate: 0,
            company_contacts: 0,
            share_percent: 0.0,
            max_contacts: 0,
            max_share_percent: 0,
            exceeded: false,
            overridden: false,
        },
        hash: op.plan_hash.clone().unwrap_or_default(),
        warnings: Vec::new(),
    };
    let mut report = plan::planned_report(&company, op, &plan);
    report.blast_radius = None;
    // After the work, and never instead of its report: a failed check is a warning.
    match reactivated(deps, &op.client_id, latest).await {
        Ok(warnings) => report.warnings.extend(warnings),
        Err(error) => report.warnings.push(format!("Could not check for re-activated contacts: {error}")),
    }
    report.warnings.push(format!("Resumed operation {operation_id}: items already done were not changed again."));
    Ok(summary::finish(deps, &ctx, report, outcome).await)
}

/// Contacts this operation deactivated that are active again: someone re-activated them
/// since. The resume leaves them alone and says so.
async fn reactivated(
    deps: &ContactDeps<'_>,
    company_id: &str,
    latest: &Latest<'_>,
) -> Result<Vec<String>, OfframpError> {
    let active: Vec<Contact> = deps.psa.list_contacts(company_id).await?.into_iter().filter(|c| c.active).collect();
    Ok(active
        .iter()
        .filter(|c| latest.get(&(ITEM_CONTACT, c.id.as_str())).is_some_and(|r| r.outcome == ItemOutcome::Changed))
        .map(|c| {
            format!("contact {} ({}) was deactivated by this operation and is active again: someone re-activated it; left alone.", c.id, c.name)
        })
        .collect())
}

/// The run's context as the operation recorded it.
fn context(
    detail: &OperationDetail,
    latest: &Latest<'_>,
    company: Company,
    requester_domains: &[String],
) -> Result<RunContext, OfframpError> {
    let op = &detail.operation;
    let request: DeactivateContactsRequest =
        serde_json::from_value(op.input["request"].clone()).map_err(|e| corrupt("operation input", e))?;
    let settings: OrgSettings =
        serde_json::from_value(op.input["settings"].clone()).map_err(|e| corrupt("operation settings", e))?;
    // The ticket the interrupted run opened for its summary, if it got that far.
    let opened = latest
        .values()
        .filter(|c| c.item_type == ITEM_SUMMARY_TICKET && c.outcome == ItemOutcome::Changed)
        .max_by_key(|c| c.at)
        .map(|c| c.item_id.clone());
    Ok(RunContext {
        operation_id: op.operation_id.clone(),
        company,
        initiated_by: op.initiated_by.clone(),
        reason: op.reason.clone(),
        ticket_id: input::identifier("ticket_id", request.ticket_id.as_deref())?.or(opened),
        requester: super::run::requester(op.input["requester_email"].as_str(), &op.initiated_by, requester_domains),
        settings,
        resumed: true,
    })
}
