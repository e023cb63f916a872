//! Applying a plan once the engine has written its header, snapshots and `started`: the
//! contacts, their open tickets and their configurations, each phase through the engine's
//! bounded apply (`apply_units`), then the summary (`summary`). Failures of one item never
//! stop the others; a spent request budget or an unwritable trail stops the run, resumable.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::plan::{self, Plan, PlannedTicketChange, RelatedSnapshot};
use super::report::{self, ContactDeactivationReport, ContactReportError};
use super::run::{Outcome, Pending, RunContext, Work, change_record, item_code};
use super::summary;
use super::{ContactDeps, ITEM_CONFIGURATION_CONTACT, ITEM_CONTACT, ITEM_TICKET};
use crate::domain::{Configuration, Contact, ItemChange, ItemKind, ItemOutcome, ItemSnapshot, OperationRecord, Ticket};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::operation::{Applied, ChangeBatch, UnitRecords, UnitStep, apply_units, sort_key};

/// The work, once the engine has written the header, a snapshot of every item the run
/// will touch (and the contacts it leaves alone) and `started`. Runs under the company's
/// lease.
pub(super) async fn apply_plan(
    deps: &ContactDeps<'_>,
    record: OperationRecord,
    ctx: RunContext,
    plan: Plan,
) -> Result<ContactDeactivationReport, OfframpError> {
    tracing::info!(plan_hash = %plan.hash, contacts = plan.contacts.len(), "operation started");
    let report = plan::planned_report(&ctx.company, &record, &plan);
    let outcome = execute(deps, &ctx, Work::of(&plan), Outcome::default()).await;
    Ok(summary::finish(deps, &ctx, report, outcome).await)
}

pub(super) fn snapshots<'a>(op: &'a str, plan: &'a Plan) -> impl Iterator<Item = ItemSnapshot> + 'a {
    let contacts = plan
        .contacts
        .iter()
        .map(move |(contact, p)| snapshot(op, ITEM_CONTACT, &contact.id, &contact.name, json!(contact), p.action()));
    let tickets = plan.tickets.iter().map(move |(ticket, change)| {
        let state = json!(RelatedSnapshot { before: ticket, change });
        snapshot(op, ITEM_TICKET, &ticket.id, &ticket.summary, state, "reassign")
    });
    let configurations = plan.configurations.iter().map(move |(config, to)| {
        let state = json!(RelatedSnapshot { before: config, change: to });
        snapshot(op, ITEM_CONFIGURATION_CONTACT, &config.id, &config.name, state, "update")
    });
    contacts.chain(tickets).chain(configurations)
}

fn snapshot(operation_id: &str, item_type: ItemKind, id: &str, name: &str, state: Value, action: &str) -> ItemSnapshot {
    ItemSnapshot {
        operation_id: operation_id.to_string(),
        item_type,
        item_id: id.to_string(),
        item_name: name.to_string(),
        state,
        planned_action: action.into(),
    }
}

/// One attempted item: its change record and what the report says.
pub(super) enum ItemResult<T> {
    /// Changed by this run (or, resumed, uncertain: its record says which).
    Changed(T, ItemChange),
    Failed(ContactReportError, ItemChange),
    /// Found already done by someone else on resume: left alone, with why.
    Skipped(String, ItemChange),
}

impl<T> ItemResult<T> {
    fn change(&self) -> &ItemChange {
        match self {
            ItemResult::Changed(_, change) | ItemResult::Failed(_, change) | ItemResult::Skipped(_, change) => change,
        }
    }
}

/// A resumed item the PSA no longer has: nothing to do, and not a failure.
fn gone<T, B: serde::Serialize>(op: &str, item: (ItemKind, &str, &str), before: &B) -> UnitStep<ItemResult<T>> {
    let (kind, id, name) = item;
    let mut record = change_record(op, kind, id, name, json!(before), None, None);
    record.outcome = ItemOutcome::Skipped;
    UnitStep::Done(ItemResult::Skipped(
        format!("{kind} {id} ({name}) no longer exists in the PSA; left alone."),
        record,
    ))
}

/// A resumed item found already done: uncertain if this run had sent it (its intent is
/// its latest record), else someone else's change, left alone and not claimed.
fn found_done<T: serde::Serialize, B: serde::Serialize>(
    op: &str,
    item: (ItemKind, &str, &str),
    pending: Pending,
    before: &B,
    now: T,
) -> UnitStep<ItemResult<T>> {
    let (kind, id, name) = item;
    let mut record = change_record(op, kind, id, name, json!(before), Some(json!(now)), None);
    if pending == Pending::InFlight {
        record.outcome = ItemOutcome::Uncertain;
        return UnitStep::Done(ItemResult::Changed(now, record));
    }
    record.outcome = ItemOutcome::Skipped;
    let why =
        format!("{kind} {id} ({name}) was already changed outside this operation before it got to it; left alone.");
    UnitStep::Done(ItemResult::Skipped(why, record))
}

/// A failed change: its report entry and its change record.
fn failed<T>(
    op: &str,
    item: (ItemKind, &str, &str),
    before: Value,
    code: ErrorCode,
    message: String,
) -> UnitStep<ItemResult<T>> {
    let (item_type, id, name) = item;
    let record = change_record(op, item_type, id, name, before, None, Some((code, message.clone())));
    UnitStep::Done(ItemResult::Failed(report::report_error(code, message, Some((item_type, id))), record))
}

fn changed<T: serde::Serialize, B: serde::Serialize>(
    op: &str,
    item: (ItemKind, &str, &str),
    before: &B,
    after: T,
) -> UnitStep<ItemResult<T>> {
    let (item_type, id, name) = item;
    let record = change_record(op, item_type, id, name, json!(before), Some(json!(after)), None);
    UnitStep::Done(ItemResult::Changed(after, record))
}

async fn deactivate_contact(
    deps: &ContactDeps<'_>,
    op: &str,
    contact: Contact,
    pending: Pending,
) -> UnitStep<ItemResult<Contact>> {
    let item = (ITEM_CONTACT, contact.id.as_str(), contact.name.as_str());
    if pending != Pending::Fresh {
        match deps.psa.contact(&contact.id).await {
            Ok(Some(now)) if !now.active => return found_done(op, item, pending, &contact, now),
            Ok(None) => return gone(op, item, &contact),
            Err(error @ PsaError::BudgetExhausted { .. }) => return UnitStep::Halted(error),
            _ => {}
        }
    }
    match deps.psa.set_contact_active(&contact, false).await {
        Ok(after) if !after.active => changed(op, item, &contact, after),
        Ok(_) => {
            let message = format!(
                "Unable to deactivate contact {} ({}): the PSA accepted the update but the contact is still active",
                contact.name, contact.id
            );
            failed(op, item, json!(contact), ErrorCode::ContactUpdateFailed, message)
        }
        Err(error @ PsaError::BudgetExhausted { .. }) => UnitStep::Halted(error),
        Err(error) => {
            let message = format!("Unable to deactivate contact {} ({}): {error}", contact.name, contact.id);
            failed(op, item, json!(contact), item_code(&error, ErrorCode::ContactUpdateFailed), message)
        }
    }
}

async fn reassign_ticket(
    deps: &ContactDeps<'_>,
    op: &str,
    ticket: Ticket,
    change: PlannedTicketChange,
    pending: Pending,
) -> UnitStep<ItemResult<Ticket>> {
    let item = (ITEM_TICKET, ticket.id.as_str(), ticket.summary.as_str());
    if pending != Pending::Fresh {
        match deps.psa.ticket(&ticket.id).await {
            Ok(Some(now)) if change.done_on(&now) => return found_done(op, item, pending, &ticket, now),
            Err(error @ PsaError::BudgetExhausted { .. }) => return UnitStep::Halted(error),
            _ => {}
        }
    }
    match deps.psa.update_ticket(&ticket.id, &change.assignment()).await {
        Ok(after) => changed(op, item, &ticket, after),
        Err(error @ PsaError::BudgetExhausted { .. }) => UnitStep::Halted(error),
        Err(error) => {
            let message = format!("Unable to reassign ticket {} ({}): {error}", ticket.id, ticket.summary);
            failed(op, item, json!(ticket), item_code(&error, ErrorCode::RelatedUpdateFailed), message)
        }
    }
}

async fn update_configuration_contact(
    deps: &ContactDeps<'_>,
    op: &str,
    config: Configuration,
    to: Option<String>,
    pending: Pending,
) -> UnitStep<ItemResult<Configuration>> {
    let item = (ITEM_CONFIGURATION_CONTACT, config.id.as_str(), config.name.as_str());
    if pending != Pending::Fresh {
        match deps.psa.configuration(&config.id).await {
            Ok(Some(now)) if now.contact_id == to => return found_done(op, item, pending, &config, now),
            Err(error @ PsaError::BudgetExhausted { .. }) => return UnitStep::Halted(error),
            _ => {}
        }
    }
    match deps.psa.set_configuration_contact(&config.id, to.as_deref()).await {
        Ok(after) => changed(op, item, &config, after),
        Err(error @ PsaError::BudgetExhausted { .. }) => UnitStep::Halted(error),
        Err(error) => {
            let message =
                format!("Unable to update the contact of configuration {} ({}): {error}", config.id, config.name);
            failed(op, item, json!(config), item_code(&error, ErrorCode::RelatedUpdateFailed), message)
        }
    }
}

/// The run's one progress bar across its three phases: the engine starts and finishes
/// its progress per `apply_units` call, so those calls are absorbed here.
struct PhaseProgress<'a>(&'a dyn crate::ports::Progress);

impl crate::ports::Progress for PhaseProgress<'_> {
    fn start(&self, _total: u64) {}
    fn item_done(&self) {
        self.0.item_done();
    }
    fn finish(&self) {}
}

/// Run one phase through the engine: each item a unit of its own, `deps.concurrency` at
/// once, change records in batches. Failures go to `outcome`; results are in plan order.
/// Returns the items' states after their change.
async fn phase<I, T, F, Fut>(
    deps: &ContactDeps<'_>,
    items: Vec<I>,
    outcome: &mut Outcome,
    intent: impl Fn(&I) -> ItemChange,
    apply: F,
) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = UnitStep<ItemResult<T>>>,
{
    let mut changes = ChangeBatch::new(deps.audit, crate::operation::records::CHANGE_BATCH);
    let units = items.into_iter().map(|item| vec![item]).collect();
    let progress = PhaseProgress(deps.progress);
    let apply = &apply;
    let run_unit = |unit: Vec<I>| async move {
        let mut steps = Vec::with_capacity(unit.len());
        for item in unit {
            steps.push(apply(item).await);
        }
        steps
    };
    let records =
        UnitRecords { intent: |item: &I| Some(intent(item)), change: |result: &ItemResult<T>| result.change().clone() };
    let mut applied: Applied<ItemResult<T>> =
        apply_units(units, deps.concurrency, deps.deadline, &mut changes, &progress, records, run_unit).await;
    applied.results.sort_by_key(|a| sort_key(&a.change().item_id));
    outcome.not_attempted += applied.not_attempted as u64;
    if let Some(stopped) = applied.stopped {
        outcome.stopped.get_or_insert(stopped);
    }
    let mut done = Vec::new();
    for result in applied.results {
        match result {
            ItemResult::Changed(after, _) => done.push(after),
            ItemResult::Failed(error, _) => outcome.errors.push(error),
            ItemResult::Skipped(why, _) => outcome.warnings.push(why),
        }
    }
    done
}

/// Do `work`. `earlier` is what the operation did before (a resume): it is part of the
/// outcome from the start, so the note and the notification describe the whole operation.
pub(super) async fn execute(deps: &ContactDeps<'_>, ctx: &RunContext, work: Work, earlier: Outcome) -> Outcome {
    let mut outcome = earlier;
    let total = work.contacts.len() + work.tickets.len() + work.configurations.len();
    deps.progress.start(total as u64);
    let op = ctx.operation_id.as_str();
    let (tickets, configurations) = (work.tickets.len(), work.configurations.len());

    let contacts = phase(
        deps,
        work.contacts,
        &mut outcome,
        |(c, _)| ItemChange::intent(op, ITEM_CONTACT, &c.id, &c.name),
        |(c, p)| deactivate_contact(deps, op, c, p),
    )
    .await;
    outcome.deactivated.extend(contacts);
    outcome.deactivated.sort_by_key(|c| sort_key(&c.id));
    outcome.deactivated.dedup_by(|a, b| a.id == b.id);
    if outcome.stopped.is_some() {
        outcome.not_attempted += (tickets + configurations) as u64;
        deps.progress.finish();
        return outcome;
    }
    // Related records of a contact that failed to deactivate stay as they are: that
    // contact is still active, so its tickets and configurations are not orphaned.
    let failed_contacts: HashSet<String> =
        outcome.errors.iter().filter(|e| e.item_type == Some(ITEM_CONTACT)).filter_map(|e| e.item_id.clone()).collect();
    let keeps = |contact: &Option<String>| contact.as_ref().is_some_and(|c| failed_contacts.contains(c));

    let tickets: Vec<_> = work.tickets.into_iter().filter(|(t, _, _)| !keeps(&t.contact_id)).collect();
    let intent =
        |(t, _, _): &(Ticket, PlannedTicketChange, Pending)| ItemChange::intent(op, ITEM_TICKET, &t.id, &t.summary);
    let changed =
        phase(deps, tickets, &mut outcome, intent, |(t, change, p)| reassign_ticket(deps, op, t, change, p)).await;
    outcome.tickets_changed += changed.len() as u64;
    if outcome.stopped.is_some() {
        outcome.not_attempted += configurations as u64;
        deps.progress.finish();
        return outcome;
    }
    let configurations: Vec<_> = work.configurations.into_iter().filter(|(c, _, _)| !keeps(&c.contact_id)).collect();
    let intent = |(c, _, _): &(Configuration, Option<String>, Pending)| {
        ItemChange::intent(op, ITEM_CONFIGURATION_CONTACT, &c.id, &c.name)
    };
    let changed = phase(deps, configurations, &mut outcome, intent, |(c, to, p)| {
        update_configuration_contact(deps, op, c, to, p)
    })
    .await;
    outcome.configurations_changed += changed.len() as u64;
    deps.progress.finish();
    if outcome.stopped.is_some() {
        // The note and the notification describe a finished run; they wait for the resume.
        return outcome;
    }
    summary::note_and_notify(deps, ctx, &mut outcome, work.note_done, work.notification_done).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_is_the_items_own_failure_whatever_a_refused_read_maps_to() {
        let rejected = PsaError::Rejected { status: 400, code: None, message: "locked".into() };
        assert_eq!(item_code(&rejected, ErrorCode::ContactUpdateFailed), ErrorCode::ContactUpdateFailed);
        assert_eq!(item_code(&rejected, ErrorCode::TicketUpdateFailed), ErrorCode::TicketUpdateFailed);
        let down = PsaError::Connection { message: "reset".into() };
        assert_eq!(item_code(&down, ErrorCode::RelatedUpdateFailed), ErrorCode::PsaConnectionError);
        let denied = PsaError::PermissionDenied { message: "no".into() };
        assert_eq!(item_code(&denied, ErrorCode::RelatedUpdateFailed), ErrorCode::PermissionDenied);
        let gone = PsaError::NotFound { what: "ticket 7".into() };
        assert_eq!(item_code(&gone, ErrorCode::RelatedUpdateFailed), ErrorCode::RelatedUpdateFailed);
    }
}
