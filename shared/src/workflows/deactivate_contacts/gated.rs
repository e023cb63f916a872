//! A contact plan as the operation engine drives it (`crate::operation::gated`): what it
//! records, how it answers when the gates stop it, and how it is applied.

use std::future::Future;

use serde_json::{Value, json};

use super::plan::{self, Plan};
use super::report::{self, ContactDeactivationReport};
use super::run::RunContext;
use super::{ContactDeps, execute};
use crate::domain::{ItemSnapshot, OperationRecord, RunStatus};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{BoundApproval, Gate, GatedPlan};

pub(super) struct ContactPlan<'d, 'r> {
    pub deps: &'d ContactDeps<'r>,
    pub ctx: RunContext,
    pub plan: Plan,
    /// The request's `override_blast_radius`, as `started` records it.
    pub override_requested: bool,
}

impl GatedPlan for ContactPlan<'_, '_> {
    type Report = ContactDeactivationReport;

    fn lease_target(&self) -> String {
        crate::operation::lease::target(self.deps.psa.kind().as_str(), &self.ctx.company.id)
    }

    fn over_guard(&self) -> bool {
        self.plan.blast.exceeded
    }

    fn detail(&self) -> Value {
        plan::detail(&self.plan)
    }

    fn started(&self) -> Value {
        json!({ "override_blast_radius": self.override_requested })
    }

    fn snapshots<'a>(&'a self, operation_id: &'a str) -> impl Iterator<Item = ItemSnapshot> + 'a {
        execute::snapshots(operation_id, &self.plan)
    }

    fn answer(self, record: &OperationRecord, gate: &Gate) -> Result<ContactDeactivationReport, OfframpError> {
        let mut report = plan::planned_report(&self.ctx.company, record, &self.plan);
        let (status, error) = match gate {
            Gate::AwaitingApproval { status } => (
                *status,
                Some(report::report_error(
                    ErrorCode::ConfirmationRequired,
                    "confirmation: true is required to deactivate contacts; this is the plan, and nothing was changed",
                    None,
                )),
            ),
            Gate::BlastRadiusExceeded => (
                RunStatus::BlastRadiusExceeded,
                Some(report::report_error(ErrorCode::BlastRadiusExceeded, self.refusal(), None)),
            ),
            _ => (RunStatus::Planned, None),
        };
        report.dry_run = matches!(gate, Gate::DryRun);
        report.status = Some(status);
        report.success = error.is_none();
        report.errors.extend(error);
        report.warnings.insert(0, "Nothing was changed: this is the plan of a run.".into());
        Ok(report)
    }

    fn apply(
        self,
        record: OperationRecord,
        _approval: BoundApproval,
    ) -> impl Future<Output = Result<ContactDeactivationReport, OfframpError>> {
        execute::apply_plan(self.deps, record, self.ctx, self.plan)
    }
}

impl ContactPlan<'_, '_> {
    fn refusal(&self) -> String {
        let blast = &self.plan.blast;
        format!(
            "this run would deactivate {} of {} contacts ({}%), above the guard's limits ({} contacts, {}%); nothing \
             was changed. Review the plan and run again with override_blast_radius (CLI --override-blast-radius)",
            blast.contacts_to_deactivate,
            blast.company_contacts,
            blast.share_percent,
            blast.max_contacts,
            blast.max_share_percent
        )
    }
}
