//! Documenting the run on the PSA ticket (a note when it starts, one per completed phase,
//! a final summary; only the summary with `summary_note_only`) and telling the manager.
//! Each note and the notification is an item of the operation, recorded before it is sent
//! and after: a resume never sends one twice (one in flight when a run stopped is reported
//! as unknown, docs/architecture.md#resume).

use std::collections::HashSet;
use std::fmt::Write;

use serde_json::json;

use super::plan::Phase;
use super::report::{NotificationReport, OffboardUserReport, ReportError, TaskReport, TaskResult};
use super::run::Run;
use crate::domain::{ItemChange, ItemKind, ItemOutcome, NewTicket, Notification, TicketNote};
use crate::error::ErrorCode;
use crate::operation::ChangeBatch;
use crate::ports::DirectoryUser;
use crate::workflows::client_ticket;

/// The item id of the ticket a run opened (one per operation).
pub(super) const OPENED_TICKET: &str = "offboarding_ticket";
pub(super) const NOTIFICATION: &str = "manager";

/// What an operation already documented (empty for a fresh run).
#[derive(Debug, Clone, Default)]
pub(crate) struct Documented {
    pub ticket_id: Option<String>,
    /// Notes in the trail, sent or in flight: never sent again.
    pub notes: HashSet<String>,
    /// The notification is in the trail: `Some(true)` sent, `None` in flight (unknown).
    pub notified: Option<Option<bool>>,
    /// An earlier run was opening the ticket when it stopped: it may exist.
    pub ticket_in_flight: bool,
}

pub(super) struct Ticketing {
    done: Documented,
}

fn record(run: &Run<'_, '_>, kind: ItemKind, id: &str, name: &str) -> ItemChange {
    ItemChange::intent(run.target.operation_id, kind, id, name)
}

/// The record of what became of an intent: a record of its own (each attempt appends).
fn finished(intent: ItemChange, result: Result<serde_json::Value, String>, code: ErrorCode) -> ItemChange {
    let mut change = ItemChange::intent(&intent.operation_id, intent.item_type, &intent.item_id, &intent.item_name);
    match result {
        Ok(after) => {
            change.outcome = ItemOutcome::Changed;
            change.after = Some(after);
        }
        Err(message) => {
            change.outcome = ItemOutcome::Failed;
            change.error_code = Some(code.as_str().into());
            change.error_message = Some(message);
        }
    }
    change
}

fn problem(report: &mut OffboardUserReport, code: ErrorCode, message: String) {
    report.errors.push(ReportError { code, message, action: None });
}

impl Ticketing {
    /// The ticket (given, found in the trail, or opened now) and the note that the run starts.
    pub async fn open(
        run: &Run<'_, '_>,
        documented: Documented,
        changes: &mut ChangeBatch<'_>,
        report: &mut OffboardUserReport,
    ) -> Self {
        let mut ticketing = Ticketing { done: documented };
        if ticketing.done.ticket_id.is_none() && ticketing.done.ticket_in_flight {
            let user = report.user.as_ref().map(|u| u.display_name.clone()).unwrap_or_default();
            ticketing.done.ticket_id = opened_earlier(run, &ticket_summary(run, &user)).await;
        }
        if ticketing.done.ticket_id.is_none() {
            ticketing.done.ticket_id = ticketing.create(run, changes, report).await;
        }
        report.ticket_id = ticketing.done.ticket_id.clone();
        if run.plan.progress_notes {
            let text = start_text(run, report);
            ticketing.note(run, "start", "User offboarding started", text, changes, report).await;
        }
        ticketing
    }

    async fn create(
        &self,
        run: &Run<'_, '_>,
        changes: &mut ChangeBatch<'_>,
        report: &mut OffboardUserReport,
    ) -> Option<String> {
        let user = report.user.as_ref().map(|u| u.display_name.clone()).unwrap_or_default();
        let intent = record(run, ItemKind::SummaryTicket, OPENED_TICKET, "user offboarding ticket");
        if let Err(e) = changes.write_now(std::slice::from_ref(&intent)).await {
            report.warnings.push(format!("no ticket was opened: the audit trail refused its record ({e})"));
            return None;
        }
        let ticket = NewTicket {
            company_id: run.client.client_id.clone(),
            summary: ticket_summary(run, &user),
            queue: run.client.ticket_board.clone(),
            description: format!("Offramp user offboarding, operation {}.", run.target.operation_id),
        };
        let result = run.deps.psa.create_ticket(&ticket).await;
        let id = result.as_ref().ok().map(|t| t.id.clone());
        let outcome = result.map(|t| json!({ "ticket_id": t.id })).map_err(|e| e.to_string());
        if let Err(message) = &outcome {
            problem(
                report,
                ErrorCode::TicketUpdateFailed,
                format!("the offboarding ticket could not be opened: {message}"),
            );
        }
        changes.push(finished(intent, outcome, ErrorCode::TicketUpdateFailed)).await.ok();
        id
    }

    async fn note(
        &mut self,
        run: &Run<'_, '_>,
        key: &str,
        title: &str,
        text: String,
        changes: &mut ChangeBatch<'_>,
        report: &mut OffboardUserReport,
    ) {
        let Some(ticket_id) = self.done.ticket_id.clone() else { return };
        if !self.done.notes.insert(key.to_string()) {
            return;
        }
        let intent = record(run, ItemKind::TicketNote, key, title);
        if let Err(e) = changes.write_now(std::slice::from_ref(&intent)).await {
            report
                .warnings
                .push(format!("the ticket note '{title}' was not written: the audit trail refused it ({e})"));
            return;
        }
        let note = TicketNote { title: title.to_string(), text };
        let result = run.deps.psa.add_ticket_note(&ticket_id, &note).await;
        let outcome = result.map(|()| json!({ "ticket_id": ticket_id })).map_err(|e| e.to_string());
        if let Err(message) = &outcome {
            problem(report, ErrorCode::TicketUpdateFailed, format!("ticket {ticket_id}, note '{title}': {message}"));
        }
        changes.push(finished(intent, outcome, ErrorCode::TicketUpdateFailed)).await.ok();
    }

    pub async fn phase_note(
        &mut self,
        run: &Run<'_, '_>,
        phase: Phase,
        changes: &mut ChangeBatch<'_>,
        report: &mut OffboardUserReport,
    ) {
        if !run.plan.progress_notes {
            return;
        }
        let key = format!("phase:{}", report_phase(phase));
        let lines: Vec<String> =
            report.tasks.iter().filter(|t| t.phase == report_phase(phase)).map(task_line).collect();
        let text = lines.join("\n");
        self.note(run, &key, phase.title(), text, changes, report).await;
    }

    pub async fn summary(&mut self, run: &Run<'_, '_>, changes: &mut ChangeBatch<'_>, report: &mut OffboardUserReport) {
        report.finish();
        let text = summary_text(run, report);
        self.note(run, "summary", "User offboarding summary", text, changes, report).await;
    }

    /// The manager (as read before the run) and the client's recipients are told what was
    /// done and what they now have.
    pub async fn notify(
        &mut self,
        run: &Run<'_, '_>,
        manager: Option<&DirectoryUser>,
        changes: &mut ChangeBatch<'_>,
        report: &mut OffboardUserReport,
    ) {
        if !run.plan.notify {
            return;
        }
        let mut to: Vec<String> = manager.and_then(|m| m.mail.clone()).into_iter().collect();
        to.extend(run.client.recipients.iter().cloned());
        to.dedup();
        if let Some(known) = self.done.notified {
            let message = known.is_none().then(|| "in flight when an earlier run stopped; not sent again".to_string());
            report.notification = Some(NotificationReport { to, sent: known, message });
            return;
        }
        let sent = self.send_notification(run, &to, changes, report).await;
        report.notification = Some(sent);
    }

    async fn send_notification(
        &mut self,
        run: &Run<'_, '_>,
        to: &[String],
        changes: &mut ChangeBatch<'_>,
        report: &mut OffboardUserReport,
    ) -> NotificationReport {
        let failed =
            |message: String| NotificationReport { to: to.to_vec(), sent: Some(false), message: Some(message) };
        let Some(notifier) = run.deps.notifier else { return failed("no notification channel is configured".into()) };
        if to.is_empty() {
            return failed("the leaver has no manager with an address and the client names no recipients".into());
        }
        let intent = record(run, ItemKind::Notification, NOTIFICATION, "manager notification");
        if let Err(e) = changes.write_now(std::slice::from_ref(&intent)).await {
            return failed(format!("not sent: the audit trail refused its record ({e})"));
        }
        self.done.notified = Some(None);
        let notification =
            Notification { to: to.to_vec(), subject: subject(report), text: notification_text(run, report) };
        let result = notifier.send(&notification).await.map(|()| json!({ "to": to })).map_err(|e| e.to_string());
        let answer = match &result {
            Ok(_) => NotificationReport { to: to.to_vec(), sent: Some(true), message: None },
            Err(message) => {
                problem(report, ErrorCode::NotificationFailed, format!("the manager's notification: {message}"));
                failed(message.clone())
            }
        };
        changes.push(finished(intent, result, ErrorCode::NotificationFailed)).await.ok();
        answer
    }
}

/// The summary of the ticket a run opens: it names the operation, so that a resume finds
/// the ticket an interrupted run opened without recording its id.
fn ticket_summary(run: &Run<'_, '_>, user: &str) -> String {
    format!("User offboarding: {user} ({}), operation {}", run.target.upn, run.target.operation_id)
}

/// The ticket an interrupted run of this operation opened, found among the client's open tickets.
async fn opened_earlier(run: &Run<'_, '_>, summary: &str) -> Option<String> {
    let found = client_ticket::opened_earlier(run.deps.psa, &run.client.client_id, summary).await.ok()?;
    found.map(|t| t.id)
}

pub(super) fn report_phase(phase: Phase) -> String {
    serde_json::to_value(phase).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn task_line(task: &TaskReport) -> String {
    let result = match task.result {
        TaskResult::Done if task.verified == Some(false) => "done, NOT confirmed when read back".to_string(),
        TaskResult::Done => "done".into(),
        TaskResult::Skipped => format!("skipped ({})", task.reason.as_deref().unwrap_or("no reason")),
        TaskResult::Failed => format!(
            "FAILED ({}: {})",
            task.vendor_code.as_deref().or(task.error_code.map(|c| c.as_str())).unwrap_or("error"),
            task.message.as_deref().unwrap_or("")
        ),
        TaskResult::NotAttempted => "not attempted (the run stopped first)".into(),
        TaskResult::Uncertain => "probably done by an earlier run (in flight when it stopped)".into(),
        TaskResult::Planned => "planned".into(),
    };
    format!("- {} ({}): {} — {}", task.action, task.system, task.target, result)
}

fn start_text(run: &Run<'_, '_>, report: &OffboardUserReport) -> String {
    let mut text = String::new();
    let user = report.user.as_ref();
    let _ = writeln!(text, "Offboarding {} ({})", user.map(|u| u.display_name.as_str()).unwrap_or(""), run.target.upn);
    let _ = writeln!(text, "Tenant: {}. Operation: {}.", run.target.tenant, run.target.operation_id);
    if let Some(mode) = report.identity_mode {
        let why = report.identity_mode_decided_by.as_deref().unwrap_or("");
        let _ = writeln!(text, "Identity: {mode} ({why}).");
    }
    let _ = writeln!(text, "Started by {}.", report.initiated_by);
    if let Some(reason) = &report.reason {
        let _ = writeln!(text, "Reason: {reason}");
    }
    let _ = writeln!(text, "Planned actions:");
    for task in &report.tasks {
        let _ = writeln!(
            text,
            "- {} ({}): {}{}",
            task.action,
            task.system,
            task.target,
            if task.reason.is_some() { " (skipped)" } else { "" }
        );
    }
    text
}

fn summary_text(run: &Run<'_, '_>, report: &OffboardUserReport) -> String {
    let s = &report.summary;
    let mut text = format!(
        "Result: {:?}. {} tasks: {} done, {} skipped, {} failed, {} not attempted.\nOperation {} (offramp audit show {}).\n",
        report.status,
        s.tasks,
        s.done,
        s.skipped,
        s.failed,
        s.not_attempted,
        run.target.operation_id,
        run.target.operation_id
    );
    for task in &report.tasks {
        let _ = writeln!(text, "{}", task_line(task));
    }
    let kept: Vec<&str> = report
        .tasks
        .iter()
        .filter(|t| !t.reversible && t.result == TaskResult::Done)
        .map(|t| t.target.as_str())
        .collect();
    if !kept.is_empty() {
        let _ = writeln!(text, "Cannot be undone by a rollback: {}.", kept.join(", "));
    }
    if !report.sole_owner_groups.is_empty() {
        let _ = writeln!(text, "Groups the leaver owned alone: {}.", report.sole_owner_groups.join(", "));
    }
    text
}

fn subject(report: &OffboardUserReport) -> String {
    let name = report.user.as_ref().map(|u| u.display_name.as_str()).unwrap_or("a user");
    format!("{name} has been offboarded")
}

/// What the manager needs to know: what they now have, then what was done.
fn notification_text(run: &Run<'_, '_>, report: &OffboardUserReport) -> String {
    let name = report.user.as_ref().map(|u| u.display_name.as_str()).unwrap_or("The user");
    let mut text = format!("{name} ({}) has been offboarded.\n", run.target.upn);
    let access: Vec<String> = report
        .tasks
        .iter()
        .filter(|t| t.result == TaskResult::Done)
        .filter_map(|t| match t.action {
            crate::domain::OffboardAction::ConvertToShared => Some("the mailbox is now a shared mailbox".to_string()),
            crate::domain::OffboardAction::GrantFullAccess => Some(format!("full access to the mailbox: {}", t.target)),
            crate::domain::OffboardAction::GrantSendAs => Some(format!("send as the mailbox: {}", t.target)),
            crate::domain::OffboardAction::ForwardMail => Some(format!("new mail is forwarded: {}", t.target)),
            _ => None,
        })
        .collect();
    if !access.is_empty() {
        let _ = writeln!(text, "\nWhat you now have:\n- {}", access.join("\n- "));
    }
    let _ = writeln!(text, "\nWhat was done:");
    for task in report.tasks.iter().filter(|t| t.result == TaskResult::Done) {
        let _ = writeln!(text, "- {}: {}", task.action, task.target);
    }
    if let Some(ticket) = &report.ticket_id {
        let _ = writeln!(text, "\nThe PSA ticket {ticket} has the details.");
    }
    text
}
