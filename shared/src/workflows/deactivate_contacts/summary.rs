//! The end of a run: the summary note on the PSA ticket (the given one, or one the run
//! opens and records at once), the notification, and the report with the `completed` or
//! `failed` event.

use serde_json::{Value, json};

use super::report::{
    ContactDeactivationReport, ContactReportError, NotificationReport, deactivated_entry, report_error,
};
use super::run::{Outcome, RunContext, change_record, item_code};
use super::{ContactDeps, ITEM_CONTACT, ITEM_NOTIFICATION, ITEM_SUMMARY_TICKET, ITEM_TICKET_NOTE};
use crate::domain::{self, NewTicket, Notification, OperationEventKind, TicketNote};
use crate::error::{ErrorCode, NotifyError, PsaError};
use crate::operation::{Continuation, Recorder};
use crate::workflows::org_settings;

/// The summary note, then the notification, each unless an earlier attempt got it done.
/// An unwritable trail stops here (`outcome.stopped`).
pub(super) async fn note_and_notify(
    deps: &ContactDeps<'_>,
    ctx: &RunContext,
    outcome: &mut Outcome,
    note_done: bool,
    notification_done: bool,
) {
    if note_done {
        outcome.ticket_id = ctx.ticket_id.clone();
    } else if let Err(error) = write_note(deps, ctx, outcome).await {
        outcome.stopped = Some(error.into());
        return;
    }
    if !notification_done {
        notify(deps, ctx, outcome).await;
    }
}

/// The ticket the summary goes on: the given one, or a new one recorded the moment it
/// exists, so that if the note fails or the run dies now, a resume writes the note on
/// this ticket rather than open another. `Err(Ok(_))` is the PSA refusing, `Err(Err(_))`
/// the trail.
///
/// A creation whose answer was lost (a broken connection, a 5xx: the ticket may exist) is
/// never repeated blindly: the company's open tickets are searched for this operation's
/// summary (it carries the operation id), and a ticket found there is adopted. A resume
/// without a recorded ticket searches the same way before creating one, since the run
/// it continues may have died between creating the ticket and recording it.
async fn summary_ticket(
    deps: &ContactDeps<'_>,
    ctx: &RunContext,
    outcome: &mut Outcome,
) -> Result<String, Result<PsaError, crate::error::AuditError>> {
    if let Some(id) = &ctx.ticket_id {
        return Ok(id.clone());
    }
    let new = NewTicket {
        company_id: ctx.company.id.clone(),
        summary: summary_ticket_title(ctx),
        queue: ctx.settings.ticket_board.clone(),
        description: format!(
            "Offramp bulk contact deactivation, operation {}. The summary follows as a note.",
            ctx.operation_id
        ),
    };
    let existing = if ctx.resumed { opened_earlier(deps, &new).await.map_err(Ok)? } else { None };
    let created = match existing {
        Some(ticket) => ticket,
        None => match deps.psa.create_ticket(&new).await {
            Ok(ticket) => ticket,
            Err(error @ PsaError::Connection { .. }) => match opened_earlier(deps, &new).await {
                Ok(Some(ticket)) => {
                    outcome.warnings.push(format!(
                        "The PSA's answer to opening the summary ticket was lost ({error}); ticket {} with this operation's summary was found and used",
                        ticket.id
                    ));
                    ticket
                }
                _ => return Err(Ok(error)),
            },
            Err(error) => return Err(Ok(error)),
        },
    };
    outcome.ticket_id = Some(created.id.clone());
    let op = &ctx.operation_id;
    let record =
        change_record(op, ITEM_SUMMARY_TICKET, &created.id, &created.summary, Value::Null, Some(json!(created)), None);
    deps.audit.put_changes(&[record]).await.map_err(Err)?;
    Ok(created.id)
}

/// The summary ticket's title: names the operation, so that its ticket can be told apart
/// from every other run's when an answer was lost.
fn summary_ticket_title(ctx: &RunContext) -> String {
    format!("Contact deactivation: {} (operation {})", ctx.company.name, ctx.operation_id)
}

async fn opened_earlier(deps: &ContactDeps<'_>, new: &NewTicket) -> Result<Option<domain::Ticket>, PsaError> {
    crate::workflows::client_ticket::opened_earlier(deps.psa, &new.company_id, &new.summary).await
}

/// A write whose answer was lost: it may have been applied (a broken connection or a 5xx
/// after it was sent, as far as the client can tell). Such a note or notification is not
/// sent again; the trail records it as `outcome_unknown` and a resume leaves it alone.
fn outcome_unknown_after(detail: Value) -> Option<Value> {
    let mut after = detail;
    after["outcome_unknown"] = Value::Bool(true);
    Some(after)
}

async fn write_note(
    deps: &ContactDeps<'_>,
    ctx: &RunContext,
    outcome: &mut Outcome,
) -> Result<(), crate::error::AuditError> {
    let text = summary_text(ctx, outcome, deps.psa.kind().as_str());
    let written = match summary_ticket(deps, ctx, outcome).await {
        Ok(id) => {
            let note = TicketNote { title: "Bulk contact deactivation".into(), text: text.clone() };
            match deps.psa.add_ticket_note(&id, &note).await {
                Ok(()) => Ok(id),
                Err(error @ PsaError::Connection { .. }) => {
                    outcome.ticket_id = Some(id.clone());
                    outcome.warnings.push(format!(
                        "The outcome of the summary note on PSA ticket {id} is unknown (the answer was lost: {error}); \
                         it is not sent again, to avoid a second note: check the ticket"
                    ));
                    let after = outcome_unknown_after(json!({"text": text}));
                    let (op, name) = (&ctx.operation_id, "summary note");
                    let record = change_record(op, ITEM_TICKET_NOTE, &id, name, Value::Null, after, None);
                    return deps.audit.put_changes(&[unknown(record)]).await;
                }
                Err(error) => {
                    Err((Some(id.clone()), format!("Unable to write the summary to PSA ticket {id}: {error}"), error))
                }
            }
        }
        Err(Ok(error)) => Err((None, format!("Unable to open a PSA ticket for the summary: {error}"), error)),
        Err(Err(trail)) => return Err(trail),
    };
    let op = &ctx.operation_id;
    let record = match written {
        Ok(ticket_id) => {
            outcome.ticket_id = Some(ticket_id.clone());
            let after = Some(json!({"text": text}));
            change_record(op, ITEM_TICKET_NOTE, &ticket_id, "summary note", Value::Null, after, None)
        }
        Err((ticket_id, message, error)) => {
            let code = item_code(&error, ErrorCode::TicketUpdateFailed);
            outcome.ticket_id = ticket_id.clone();
            let item = ticket_id.as_deref().map(|id| (ITEM_TICKET_NOTE, id));
            outcome.errors.push(report_error(code, message.clone(), item));
            let id = ticket_id.as_deref().unwrap_or("new");
            change_record(op, ITEM_TICKET_NOTE, id, "summary note", Value::Null, None, Some((code, message)))
        }
    };
    deps.audit.put_changes(&[record]).await
}

/// A record of a write whose outcome is unknown: not a change this run can claim (rollback
/// never sees it), not a failure a resume would repeat.
fn unknown(mut record: crate::domain::ItemChange) -> crate::domain::ItemChange {
    record.outcome = crate::domain::ItemOutcome::Failed;
    record.error_code = Some("OutcomeUnknown".into());
    record.error_message = Some("the write's answer was lost; it may have been applied".into());
    record
}

/// Whether the trail says this write's outcome is unknown (see [`unknown`]).
pub(super) fn is_outcome_unknown(change: &crate::domain::ItemChange) -> bool {
    change.after.as_ref().and_then(|a| a.get("outcome_unknown")).and_then(Value::as_bool) == Some(true)
}

/// The requester (if any) and the configured recipients, without repeats.
fn recipients(ctx: &RunContext) -> Vec<String> {
    let mut recipients: Vec<String> = Vec::new();
    for address in ctx.requester.iter().chain(ctx.settings.notification_recipients.iter()) {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(address)) {
            recipients.push(address.clone());
        }
    }
    recipients
}

async fn notify(deps: &ContactDeps<'_>, ctx: &RunContext, outcome: &mut Outcome) {
    let recipients = recipients(ctx);
    let notifier = match deps.notifier {
        None => {
            let warning = "No notification channel is configured (OFFRAMP_NOTIFIER); nobody was notified";
            return outcome.warnings.push(warning.into());
        }
        Some(_) if recipients.is_empty() => {
            return outcome.warnings.push(format!(
                "No one to notify: no requester e-mail and no {} setting",
                org_settings::NOTIFICATION_RECIPIENTS
            ));
        }
        Some(notifier) => notifier,
    };
    let failed_contacts = outcome.errors.iter().filter(|e| e.item_type == Some(ITEM_CONTACT)).count();
    let notification = Notification {
        to: recipients.clone(),
        subject: format!(
            "Contacts deactivated: {} ({} of {})",
            ctx.company.name,
            outcome.deactivated.len(),
            outcome.deactivated.len() + failed_contacts
        ),
        text: summary_text(ctx, outcome, deps.psa.kind().as_str()),
    };
    let result = notifier.send(&notification).await;
    if let Err(error @ NotifyError::Connection { .. }) = &result {
        outcome.warnings.push(format!(
            "The outcome of the notification is unknown (the answer was lost: {error}); it is not sent again, \
             to avoid a second message"
        ));
        outcome.notification = Some(NotificationReport {
            channel: notifier.channel().into(),
            recipients: recipients.clone(),
            sent: false,
        });
        let after = outcome_unknown_after(json!({"to": recipients, "subject": notification.subject}));
        let op = &ctx.operation_id;
        let record = change_record(op, ITEM_NOTIFICATION, notifier.channel(), "notification", Value::Null, after, None);
        if let Err(error) = deps.audit.put_changes(&[unknown(record)]).await {
            outcome.stopped = Some(error.into());
        }
        return;
    }
    let sent = result.is_ok();
    let error = result.err().map(|e| (ErrorCode::NotificationFailed, format!("Unable to send the notification: {e}")));
    if let Some((code, message)) = &error {
        outcome.errors.push(report_error(*code, message.clone(), None));
    }
    outcome.notification =
        Some(NotificationReport { channel: notifier.channel().into(), recipients: recipients.clone(), sent });
    let after = sent.then(|| json!({"to": recipients, "subject": notification.subject}));
    let op = &ctx.operation_id;
    let record = change_record(op, ITEM_NOTIFICATION, notifier.channel(), "notification", Value::Null, after, error);
    if let Err(error) = deps.audit.put_changes(&[record]).await {
        outcome.stopped = Some(error.into());
    }
}

/// The summary a person reads in the ticket note and the notification.
pub(super) fn summary_text(ctx: &RunContext, outcome: &Outcome, psa: &str) -> String {
    use std::fmt::Write;
    let failed: Vec<&ContactReportError> =
        outcome.errors.iter().filter(|e| e.item_type == Some(ITEM_CONTACT)).collect();
    let mut text = String::new();
    let _ = writeln!(text, "Bulk contact deactivation for {} (company {}, {psa})", ctx.company.name, ctx.company.id);
    let _ = writeln!(text, "Requested by: {}", ctx.initiated_by);
    if let Some(reason) = &ctx.reason {
        let _ = writeln!(text, "Reason: {reason}");
    }
    let _ = writeln!(text, "Operation: {}", ctx.operation_id);
    let _ = writeln!(text);
    let _ = writeln!(text, "Contacts deactivated: {}", outcome.deactivated.len());
    for contact in &outcome.deactivated {
        let email = contact.email.as_deref().map(|e| format!(" <{e}>")).unwrap_or_default();
        let _ = writeln!(text, "  - {}{email} (id {})", contact.name, contact.id);
    }
    if !failed.is_empty() {
        let _ = writeln!(text, "Contacts NOT deactivated (failed): {}", failed.len());
        for error in &failed {
            let _ = writeln!(text, "  - {}", error.message);
        }
    }
    let _ = writeln!(text, "Open tickets reassigned: {}", outcome.tickets_changed);
    let _ = writeln!(text, "Configurations updated: {}", outcome.configurations_changed);
    let other: Vec<&ContactReportError> = outcome.errors.iter().filter(|e| e.item_type != Some(ITEM_CONTACT)).collect();
    if !other.is_empty() {
        let _ = writeln!(text, "Other problems:");
        for error in other {
            let _ = writeln!(text, "  - {}", error.message);
        }
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "To undo: offramp rollback {} (restores each contact, ticket and configuration this run changed, unless someone changed it since).",
        ctx.operation_id
    );
    text
}

/// The report of a run that got as far as changing things: what was done, always, with
/// any error beside it (never an empty report in place of real changes).
pub(super) async fn finish(
    deps: &ContactDeps<'_>,
    ctx: &RunContext,
    mut report: ContactDeactivationReport,
    outcome: Outcome,
) -> ContactDeactivationReport {
    let op = &ctx.operation_id;
    // The report lists what was done, not what was planned.
    report.contacts_deactivated = outcome.deactivated.iter().map(deactivated_entry).collect();
    report.deactivation_summary.contacts_deactivated = outcome.deactivated.len() as u64;
    report.deactivation_summary.deactivation_timestamp = domain::iso8601(domain::now());
    report.related_updates.open_tickets_reassigned = outcome.tickets_changed;
    report.related_updates.configurations_updated = outcome.configurations_changed;
    report.errors.extend(outcome.errors);
    report.warnings.extend(outcome.warnings);
    report.ticket_id = outcome.ticket_id;
    report.notification = outcome.notification;
    report.audit_trail.rollback_available =
        outcome.deactivated.len() as u64 + outcome.tickets_changed + outcome.configurations_changed > 0;
    report.audit_trail.timestamp = domain::iso8601(domain::now());
    if let Some(stopped) = outcome.stopped {
        report.warnings.push(format!(
            "The run stopped before finishing ({} item(s) not attempted). Continue it with operation_id {op} (CLI: offramp contacts deactivate --resume {op}).",
            outcome.not_attempted
        ));
        report.errors.insert(0, report_error(stopped.code(), stopped.to_string(), None));
        report.success = false;
        report.continuation = Continuation::after(Some(&stopped), op, outcome.not_attempted);
        let detail =
            json!({ "code": stopped.code(), "message": stopped.to_string(), "not_attempted": outcome.not_attempted });
        // Stopped by the deadline: paused for the next invocation, not failed.
        let kind =
            if stopped.code().is_continuation() { OperationEventKind::Paused } else { OperationEventKind::Failed };
        // Best effort: if the trail itself is what failed, this may fail too.
        let _ = Recorder::new(deps.audit, op).event(kind, detail).await;
        return report;
    }
    report.success = report.errors.is_empty();
    let detail = json!({
        "deactivation_summary": report.deactivation_summary,
        "related_updates": report.related_updates,
        "errors": report.errors.len(),
        "ticket_id": report.ticket_id,
    });
    if let Err(error) = Recorder::new(deps.audit, op).event(OperationEventKind::Completed, detail).await {
        // Every change is made and recorded; only the end of the run is missing. A resume
        // finds nothing left to change and records it.
        let message = format!(
            "The changes were made and recorded, but the run's completion could not be written to the audit trail: \
             {error}. Resume with operation_id {op} to record it."
        );
        report.errors.insert(0, report_error(ErrorCode::AuditStoreError, message, None));
        report.success = false;
    }
    tracing::info!(
        deactivated = report.deactivation_summary.contacts_deactivated,
        tickets = report.related_updates.open_tickets_reassigned,
        configurations = report.related_updates.configurations_updated,
        errors = report.errors.len(),
        "contact deactivation finished"
    );
    report
}
