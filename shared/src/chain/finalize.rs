//! Finalize: the chain's report from its runs, the summary note on the ticket, the
//! notification, and the parent operation's last event. The state machine's `Finalize`
//! state and the in-process chain both end here.

use serde_json::{Value, json};

use super::bind::ChainApproval;
use super::model::ChainPlan;
use super::report::{ChainError, ClientOffboardingReport, SkippedStep, StepOutcome};
use super::{ChainDeps, ChainStep};
use crate::domain::{Notification, OperationEventKind, TicketNote};
use crate::error::ErrorCode;
use crate::operation::Recorder;

/// How the runs went: every outcome, and the step the chain stopped at, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainRuns {
    pub outcomes: Vec<StepOutcome>,
    /// A step that failed, and the error the chain stopped on (a state machine's `Catch`).
    pub failure: Option<(ChainStep, ChainError)>,
}

/// The report of a plan that changes nothing (yet): a dry run, or one waiting for approval.
pub async fn planned(
    deps: &ChainDeps<'_>,
    plan: &ChainPlan,
    status: &str,
    errors: Vec<ChainError>,
) -> ClientOffboardingReport {
    let outcomes = plan
        .runs
        .iter()
        .map(|run| StepOutcome {
            step: run.step,
            leaver: run.leaver.clone(),
            result: run.planned.clone(),
            error_type: None,
            invocations: 1,
        })
        .collect();
    let mut report = base(plan, outcomes);
    report.status = status.into();
    report.success = errors.is_empty();
    report.errors = errors;
    if status != "planned" {
        // Waiting for a person, or refused (rejected, expired, a stale approval).
        let kind = if status == "approval_required" {
            OperationEventKind::ApprovalRequired
        } else {
            OperationEventKind::Refused
        };
        let detail = json!({ "plan_hash": plan.plan_hash, "status": status, "errors": report.errors });
        if let Err(e) = Recorder::new(deps.audit, &plan.parent_operation_id).event(kind, detail).await {
            report.errors.push(ChainError::new(ErrorCode::AuditStoreError, e.to_string()));
        }
    }
    report
}

fn base(plan: &ChainPlan, steps: Vec<StepOutcome>) -> ClientOffboardingReport {
    ClientOffboardingReport {
        success: true,
        status: "planned".into(),
        operation_id: Some(plan.parent_operation_id.clone()),
        client_id: Some(plan.client_id.clone()),
        client_name: Some(plan.client_name.clone()),
        dry_run: plan.dry_run,
        plan_hash: Some(plan.plan_hash.clone()),
        approved_by: None,
        ticket_id: plan.ticket_id.clone(),
        ticket_closed: false,
        steps,
        skipped: plan.skipped.iter().map(|(step, why)| SkippedStep { step: *step, why: why.clone() }).collect(),
        not_run: Vec::new(),
        errors: Vec::new(),
        evidence: None,
    }
}

/// The report of an applied chain, documented on its ticket, told to its recipients and
/// recorded as the parent operation's `completed` or `failed` event.
pub async fn finalize(
    deps: &ChainDeps<'_>,
    plan: &ChainPlan,
    approval: &ChainApproval,
    runs: ChainRuns,
) -> ClientOffboardingReport {
    let mut report = base(plan, runs.outcomes);
    report.approved_by = Some(approval.approved_by.clone());
    for outcome in report.steps.iter().filter(|o| !o.succeeded()) {
        let code = outcome.error_type.as_deref().and_then(code_named).unwrap_or(ErrorCode::ActionFailed);
        let whose = outcome.leaver.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        let message = outcome.result.pointer("/errors/0/message").and_then(Value::as_str).unwrap_or("failed");
        report.errors.push(ChainError::new(code, format!("{}{whose}: {message}", outcome.step)));
    }
    if let Some((failed, error)) = runs.failure {
        let requested: Vec<ChainStep> = plan.runs.iter().map(|r| r.step).collect();
        report.not_run = ChainStep::ALL.into_iter().filter(|s| *s > failed && requested.contains(s)).collect();
        if !report.errors.iter().any(|e| e.code == error.code) {
            report.errors.insert(0, error);
        }
    }
    report.success = report.errors.is_empty();
    report.status = if report.success { "completed" } else { "failed" }.into();
    store_evidence(deps, plan, approval, &mut report).await;
    document(deps, plan, &mut report).await;
    let kind = if report.success { OperationEventKind::Completed } else { OperationEventKind::Failed };
    let detail = json!({
        "approval": approval, "steps": report.steps, "not_run": report.not_run, "errors": report.errors,
        "skipped": report.skipped, "ticket_id": plan.ticket_id, "evidence": report.evidence,
        "ticket_closed": report.ticket_closed,
    });
    if let Err(e) = Recorder::new(deps.audit, &plan.parent_operation_id).event(kind, detail).await {
        report.errors.push(ChainError::new(ErrorCode::AuditStoreError, e.to_string()));
        report.success = false;
    }
    report
}

fn code_named(name: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
}

/// Render the evidence report from the trail and store it (docs/evidence.md), before the
/// summary note that links it. The parent's end event is not written yet, so the document
/// takes the outcome from the report. A failure undoes nothing: it is an error of the
/// report, and the end event records it.
async fn store_evidence(
    deps: &ChainDeps<'_>,
    plan: &ChainPlan,
    approval: &ChainApproval,
    report: &mut ClientOffboardingReport,
) {
    let Some(store) = deps.evidence else {
        tracing::warn!(operation_id = %plan.parent_operation_id, "no evidence store configured: report not stored");
        return;
    };
    let outcome = crate::evidence::Outcome {
        status: report.status.clone(),
        ticket_id: plan.ticket_id.clone(),
        errors: report.errors.iter().map(|e| (e.code.as_str().to_string(), e.message.clone())).collect(),
        not_run: report.not_run.iter().map(|s| s.as_str().to_string()).collect(),
        skipped: report.skipped.iter().map(|s| (s.step.as_str().to_string(), s.why.clone())).collect(),
        consent: serde_json::to_value(approval).ok(),
    };
    match crate::evidence::publish(deps.audit, store, &plan.parent_operation_id, Some(outcome)).await {
        Ok(location) => report.evidence = Some(location),
        Err(e) => {
            // Whatever stopped it (the store, reading the trail), what failed is the evidence.
            let message = format!("evidence report not stored ({}): {e}", e.code());
            report.errors.push(ChainError::new(ErrorCode::EvidenceStoreFailed, message));
            report.success = false;
            report.status = "failed".into();
        }
    }
}

/// The summary note on the chain's ticket and the notification. Their failures are
/// reported, never hidden, and never undo what the steps did.
async fn document(deps: &ChainDeps<'_>, plan: &ChainPlan, report: &mut ClientOffboardingReport) {
    // The ticket is closed only when every step succeeded in a real run, and only once its
    // summary note is on it (a closed ticket without the summary documents nothing).
    let close = report.success && !plan.dry_run;
    let mut text = summary(plan, report);
    if close && plan.ticket_id.is_some() {
        text.push_str("\nEvery step succeeded: Offramp closes this ticket.");
    }
    if let Some(ticket_id) = &plan.ticket_id {
        let note = TicketNote { title: format!("Client offboarding {}", report.status), text: text.clone() };
        match deps.psa.add_ticket_note(ticket_id, &note).await {
            Ok(()) if close => close_ticket(deps, ticket_id, report).await,
            Ok(()) => {}
            Err(e) => report.errors.push(ChainError::new(
                ErrorCode::TicketUpdateFailed,
                format!("summary note on ticket {ticket_id}: {e}; the ticket is left open"),
            )),
        }
    }
    let recipients = super::settings::recipients(deps, &plan.client_id).await.unwrap_or_default();
    if let (Some(notifier), false) = (deps.notifier, recipients.is_empty()) {
        let subject = format!("Offboarding of {} {}", plan.client_name, report.status);
        if let Err(e) = notifier.send(&Notification { to: recipients, subject, text }).await {
            report.errors.push(ChainError::new(ErrorCode::NotificationFailed, e.to_string()));
        }
    }
}

/// Close the chain's ticket. A failure is reported (and so recorded with the parent's last
/// event) and undoes nothing: the steps' changes stand.
async fn close_ticket(deps: &ChainDeps<'_>, ticket_id: &str, report: &mut ClientOffboardingReport) {
    match deps.psa.close_ticket(ticket_id).await {
        Ok(_) => report.ticket_closed = true,
        Err(e) => report
            .errors
            .push(ChainError::new(ErrorCode::TicketUpdateFailed, format!("closing ticket {ticket_id}: {e}"))),
    }
}

/// The plain-text summary: one line per run, then what did not run and why.
fn summary(plan: &ChainPlan, report: &ClientOffboardingReport) -> String {
    let mut lines = vec![
        format!("Client offboarding of {} (id {}): {}.", plan.client_name, plan.client_id, report.status),
        format!(
            "Operation {} (plan {}), approved by {}.",
            plan.parent_operation_id,
            plan.plan_hash,
            report.approved_by.as_deref().unwrap_or("-")
        ),
    ];
    if let Some(on_behalf_of) = &plan.on_behalf_of {
        lines.push(format!("Started by {} on behalf of {on_behalf_of}.", plan.initiated_by));
    }
    for outcome in &report.steps {
        let whose = outcome.leaver.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
        let status = outcome.result.get("status").and_then(Value::as_str).unwrap_or(if outcome.succeeded() {
            "done"
        } else {
            "failed"
        });
        let op = outcome.operation_id().unwrap_or("-");
        lines.push(format!("- {}{whose}: {status} (operation {op})", outcome.step));
    }
    for skipped in &report.skipped {
        lines.push(format!("- {}: skipped, {}", skipped.step, skipped.why));
    }
    for step in &report.not_run {
        lines.push(format!("- {step}: not run, an earlier step failed"));
    }
    if let Some(evidence) = &report.evidence {
        lines.push(format!("Evidence report: {} (SHA-256 {}).", evidence.location, evidence.sha256));
    }
    lines.join("\n")
}
