//! Resume: the plan is rebuilt from the trail alone (each task's snapshot holds the whole
//! task), the latest record of each task says what is left, and the same
//! [`super::apply::Run::carry_out`] sends it under the leaver's lease. Every directory and
//! mailbox task sets a state, so a task in flight when the run stopped is sent again
//! safely (a second reset makes another random password nobody knows); notes and the
//! notification in flight are never sent twice (docs/architecture.md#resume).

use serde_json::{Value, json};

use super::plan::{Plan, Task};
use super::report::{OffboardUserReport, TaskResult};
use super::run::Run;
use super::selection::{self, ClientSettings};
use super::ticket::{Documented, NOTIFICATION, OPENED_TICKET};
use super::{OffboardUserDeps, WORKFLOW, tasks, verify};
use crate::domain::{ItemKind, ItemOutcome, OperationDetail, OperationEventKind};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::resume::{latest_changes, load_resumable, not_resumable};
use crate::operation::{Deadline, Recorder, with_lease};
use crate::ports::DirectoryUser;

pub(super) async fn resume(
    deps: &OffboardUserDeps<'_>,
    operation_id: &str,
    break_lease: bool,
    report: &mut OffboardUserReport,
) -> Result<(), OfframpError> {
    // User offboarding runs without a deadline (docs/architecture.md#runs-that-outlive-one-invocation).
    let detail = load_resumable(deps.audit, WORKFLOW, deps.psa.kind().as_str(), operation_id, Deadline::none()).await?;
    let input = &detail.operation.input;
    let text = |key: &str| input[key].as_str().map(str::to_string);
    let tenant = text("tenant").ok_or_else(|| not_resumable(operation_id, "its record names no tenant"))?;
    let client = selection::client_settings(deps, &detail.operation.client_id, Some(&tenant)).await?;
    let plan = plan_from_trail(&detail, &tenant)?;
    let manager = manager_from_record(input);
    let (due, in_flight, documented) = left_to_do(&detail, &plan, report);
    if due.is_empty() && in_flight.is_empty() && documented.notes.contains("summary") {
        return Err(not_resumable(operation_id, "every task and the summary are done; there is nothing left"));
    }
    report.operation_id = Some(operation_id.to_string());
    report.user = serde_json::from_value(input["user"].clone()).ok();
    report.manager = manager.as_ref().map(super::report::ReportedUser::from);
    report.initiated_by = detail.operation.initiated_by.clone();
    report.reason = detail.operation.reason.clone();
    report.tenant = Some(tenant.clone());
    report.identity_mode = Some(plan.mode);
    report.identity_mode_decided_by = Some("the interrupted operation's record".into());
    report.client_id = Some(client.client_id.clone());
    report.client_name = Some(client.company_name.clone());
    let target = text("lease_target").unwrap_or_else(|| plan.lease_target());
    let left = Left { due, in_flight, documented };
    let work = carry_on(deps, operation_id, &client, &plan, left, manager, report);
    with_lease(deps.audit, deps.options.lease, target, operation_id, break_lease, work).await?
}

/// What the trail leaves to do.
struct Left {
    /// No record, or failed: sent again.
    due: Vec<usize>,
    /// Sent when the run stopped, answer unknown.
    in_flight: Vec<usize>,
    documented: Documented,
}

async fn carry_on(
    deps: &OffboardUserDeps<'_>,
    operation_id: &str,
    client: &ClientSettings,
    plan: &Plan,
    left: Left,
    manager: Option<DirectoryUser>,
    report: &mut OffboardUserReport,
) -> Result<(), OfframpError> {
    let Left { mut due, in_flight, documented } = left;
    let detail = json!({ "due": due.len(), "in_flight": in_flight.len(), "ticket_id": documented.ticket_id });
    Recorder::new(deps.audit, operation_id).event(OperationEventKind::Resumed, detail).await?;
    let run = Run::new(deps, operation_id, client, plan);
    due.extend(settle_in_flight(&run, in_flight, report).await?);
    due.sort_unstable();
    run.carry_out(due, documented, manager, report).await
}

/// A task in flight when the run stopped is read back: found as it would leave it, it is
/// recorded as uncertain (probably this operation's, never sent twice); otherwise, or when
/// it cannot be read back, it is due again (every task sets a state: sending it twice
/// leaves the same state).
async fn settle_in_flight(
    run: &Run<'_, '_>,
    in_flight: Vec<usize>,
    report: &mut OffboardUserReport,
) -> Result<Vec<usize>, OfframpError> {
    if in_flight.is_empty() {
        return Ok(in_flight);
    }
    let found = verify::already_left(run, &in_flight).await;
    let mut due = Vec::new();
    let mut uncertain = Vec::new();
    for (i, left) in in_flight.into_iter().zip(found) {
        if !left {
            due.push(i);
            continue;
        }
        let task = &run.plan.tasks[i];
        uncertain.push(tasks::record(&run.target, task, ItemOutcome::Uncertain, Some(task.before.clone())));
        report.tasks[i].result = TaskResult::Uncertain;
    }
    if !uncertain.is_empty() {
        run.deps.audit.put_changes(&uncertain).await?;
    }
    Ok(due)
}

/// The tasks as their snapshots recorded them, in plan order.
fn plan_from_trail(detail: &OperationDetail, tenant: &str) -> Result<Plan, OfframpError> {
    let op = &detail.operation;
    let mut tasks = Vec::with_capacity(detail.snapshots.len());
    for snapshot in &detail.snapshots {
        let task: Task = serde_json::from_value(snapshot.state.clone()).map_err(|e| {
            OfframpError::new(
                ErrorCode::AuditStoreError,
                format!("snapshot of {} {}: {e}", snapshot.item_type, snapshot.item_id),
            )
        })?;
        tasks.push(task);
    }
    super::plan::sort(&mut tasks);
    let input = &op.input;
    Ok(Plan {
        tenant: tenant.to_string(),
        user_id: input["user_id"].as_str().unwrap_or_default().to_string(),
        user_principal_name: input["user_principal_name"].as_str().unwrap_or_default().to_string(),
        // Operations from before the identity modes were all cloud.
        mode: serde_json::from_value(input["identity_mode"].clone()).unwrap_or(crate::domain::IdentityMode::Cloud),
        ad_account: input["ad_account"].as_str().map(str::to_string),
        tasks,
        hash: op.plan_hash.clone().unwrap_or_default(),
        sole_owner_groups: serde_json::from_value(input["sole_owner_groups"].clone()).unwrap_or_default(),
        notify: input["notify"].as_bool().unwrap_or(false),
        // Operations from before the setting wrote every note.
        progress_notes: input["progress_notes"].as_bool().unwrap_or(true),
    })
}

fn manager_from_record(input: &Value) -> Option<DirectoryUser> {
    let manager = input.get("manager").filter(|m| !m.is_null())?;
    let text = |key: &str| manager[key].as_str().map(str::to_string);
    Some(DirectoryUser {
        id: text("id")?,
        user_principal_name: text("user_principal_name").unwrap_or_default(),
        display_name: text("display_name").unwrap_or_default(),
        mail: text("mail"),
        enabled: true,
        employee_id: None,
        on_premises: None,
    })
}

/// Which tasks are left (no record, or failed, or in flight), what the report says of the
/// others, and which notes, ticket and notification the trail already has.
fn left_to_do(
    detail: &OperationDetail,
    plan: &Plan,
    report: &mut OffboardUserReport,
) -> (Vec<usize>, Vec<usize>, Documented) {
    report.plan(plan);
    let latest = latest_changes(detail);
    let (mut due, mut in_flight) = (Vec::new(), Vec::new());
    for (i, task) in plan.tasks.iter().enumerate() {
        let result = match latest.get(&(task.kind, task.id.as_str())).map(|c| c.outcome) {
            Some(ItemOutcome::Changed) => TaskResult::Done,
            Some(ItemOutcome::Skipped) => TaskResult::Skipped,
            Some(ItemOutcome::Uncertain) => TaskResult::Uncertain,
            Some(ItemOutcome::Intended) => {
                in_flight.push(i);
                continue;
            }
            Some(ItemOutcome::Failed) | None => {
                due.push(i);
                continue;
            }
        };
        report.tasks[i].result = result;
    }
    let mut documented = Documented::default();
    for ((kind, id), change) in &latest {
        let in_trail = matches!(change.outcome, ItemOutcome::Changed | ItemOutcome::Intended);
        match kind {
            ItemKind::SummaryTicket if *id == OPENED_TICKET => {
                documented.ticket_id = change.after.as_ref().and_then(|a| a["ticket_id"].as_str()).map(str::to_string);
                documented.ticket_in_flight = change.outcome == ItemOutcome::Intended;
            }
            ItemKind::TicketNote if in_trail => {
                documented.notes.insert(id.to_string());
            }
            ItemKind::Notification if *id == NOTIFICATION && in_trail => {
                documented.notified = Some((change.outcome == ItemOutcome::Changed).then_some(true));
            }
            _ => {}
        }
    }
    if documented.ticket_id.is_none() {
        documented.ticket_id = detail.operation.input["request"]["ticket_id"].as_str().map(str::to_string);
    }
    (due, in_flight, documented)
}
