//! A user offboarding plan as the operation engine drives it (`crate::operation::gated`).

use serde_json::{Value, json};

use super::OffboardUserDeps;
use super::plan::Plan;
use super::read::Leaver;
use super::report::{OffboardStatus, OffboardUserReport};
use super::selection::ClientSettings;
use crate::domain::{ItemSnapshot, OperationRecord};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{BoundApproval, Gate, GatedPlan};

pub(super) struct UserPlan<'d, 'r, 'p> {
    pub deps: &'d OffboardUserDeps<'r>,
    pub client: ClientSettings,
    pub leaver: Leaver,
    pub plan: Plan,
    /// The ticket the request named (checked to be the client's).
    pub ticket: Option<String>,
    pub report: &'p mut OffboardUserReport,
}

/// The plan as the trail keeps it: every task with its state before and what it does.
pub(super) fn detail(plan: &Plan) -> Value {
    json!({
        "tenant": plan.tenant,
        "user_id": plan.user_id,
        "user_principal_name": plan.user_principal_name,
        "identity_mode": plan.mode,
        "ad_account": plan.ad_account,
        "tasks": plan.tasks,
        "sole_owner_groups": plan.sole_owner_groups,
        "notify_manager": plan.notify,
    })
}

impl GatedPlan for UserPlan<'_, '_, '_> {
    type Report = ();

    fn lease_target(&self) -> String {
        self.plan.lease_target()
    }

    fn detail(&self) -> Value {
        detail(&self.plan)
    }

    fn started(&self) -> Value {
        json!({ "tasks": self.plan.tasks.len(), "ticket_id": self.ticket })
    }

    /// A task's snapshot holds the whole task (what it does and the state before), so that
    /// a resume rebuilds the plan from the trail alone.
    fn snapshots<'a>(&'a self, operation_id: &'a str) -> impl Iterator<Item = ItemSnapshot> + 'a {
        self.plan.tasks.iter().map(move |task| ItemSnapshot {
            operation_id: operation_id.to_string(),
            item_type: task.kind,
            item_id: task.id.clone(),
            item_name: task.name.clone(),
            state: json!(task),
            planned_action: task.planned_action(),
        })
    }

    fn answer(self, _record: &OperationRecord, gate: &Gate) -> Result<(), OfframpError> {
        self.report.plan(&self.plan);
        match gate {
            Gate::AwaitingApproval { .. } => {
                self.report.status = OffboardStatus::ApprovalRequired;
                self.report.warnings.push(format!(
                    "Nothing was changed: approve this plan with approval {{plan_hash: {}, approved_by}} (CLI \
                     --approve {})",
                    self.plan.hash, self.plan.hash
                ));
                Ok(())
            }
            Gate::DryRun => {
                self.report.status = OffboardStatus::Planned;
                self.report.warnings.push("Nothing was changed: this is the plan of a run.".into());
                Ok(())
            }
            _ => Err(OfframpError::new(ErrorCode::BlastRadiusExceeded, "the plan was refused; nothing was changed")),
        }
    }

    async fn apply(self, record: OperationRecord, _approval: BoundApproval) -> Result<(), OfframpError> {
        let run = super::run::Run::new(self.deps, &record.operation_id, &self.client, &self.plan);
        run.fresh(self.leaver, self.ticket, self.report).await
    }
}
