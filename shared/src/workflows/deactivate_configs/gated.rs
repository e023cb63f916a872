//! A configuration plan as the operation engine drives it (`crate::operation::gated`):
//! what it records, how it answers when the gates stop it, and how it is applied.

use serde_json::{Value, json};

use super::plan::{ConfigBlastRadius, ConfigGuardLimit, Plan, deactivates};
use super::report::{self, ConfigDeactivationReport, ReportError};
use super::{Deps, OffboardedStanding, execute};
use crate::domain::{Company, ItemSnapshot, OperationRecord, RunStatus};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{BoundApproval, Gate, GatedPlan};

pub(super) struct ConfigPlan<'d, 'r> {
    pub deps: &'d Deps<'r>,
    pub client: Company,
    pub plan: Plan,
    pub guard: ConfigGuardLimit,
    pub blast: ConfigBlastRadius,
    pub standing: OffboardedStanding,
}

impl GatedPlan for ConfigPlan<'_, '_> {
    type Report = ConfigDeactivationReport;

    fn lease_target(&self) -> String {
        crate::operation::lease::target(self.deps.psa.kind().as_str(), &self.client.id)
    }

    fn over_guard(&self) -> bool {
        self.blast.exceeded
    }

    fn detail(&self) -> Value {
        let mut detail = self.plan.summary();
        detail["blast_radius"] = json!(self.blast);
        detail["offboarded"] = json!(self.standing);
        detail
    }

    fn started(&self) -> Value {
        json!({ "planned": self.plan.to_deactivate(), "blast_radius": self.blast, "offboarded": self.standing })
    }

    fn snapshots<'a>(&'a self, operation_id: &'a str) -> impl Iterator<Item = ItemSnapshot> + 'a {
        self.plan.configs.iter().map(move |config| execute::snapshot(operation_id, config))
    }

    fn answer(self, record: &OperationRecord, gate: &Gate) -> Result<ConfigDeactivationReport, OfframpError> {
        let mut report = report::planned(&self.client, &record.operation_id, &self.plan, record.dry_run);
        report.blast_radius = Some(self.blast.clone());
        report.warnings.extend(self.standing.warnings.iter().cloned());
        match gate {
            Gate::BlastRadiusExceeded => {
                report.success = false;
                report.status = Some(RunStatus::BlastRadiusExceeded);
                let message = self.guard.refusal(self.blast.configs_to_deactivate);
                report.errors.push(ReportError::new(ErrorCode::BlastRadiusExceeded, message, None));
            }
            Gate::AwaitingApproval { status } => {
                report.status = Some(*status);
                report.warnings.push(format!(
                    "Approval required: nothing was changed. To apply exactly this plan, run again with \
                     approval.plan_hash = {}",
                    self.plan.hash
                ));
            }
            Gate::DryRun | Gate::PlanChanged { .. } | Gate::Apply(_) => {}
        }
        Ok(report)
    }

    async fn apply(
        self,
        record: OperationRecord,
        _approval: BoundApproval,
    ) -> Result<ConfigDeactivationReport, OfframpError> {
        let work = self
            .plan
            .configs
            .into_iter()
            .map(|c| {
                let action = if deactivates(&c) { execute::WorkAction::Deactivate } else { execute::WorkAction::Skip };
                execute::Work { before: c, action }
            })
            .collect();
        let applied = execute::execute(self.deps, &record.operation_id, work).await;
        let warnings = self.standing.warnings;
        let mut report =
            execute::finish(self.deps, &self.client, &record.operation_id, Some(self.plan.hash), applied, warnings)
                .await?;
        report.blast_radius = Some(self.blast);
        Ok(report)
    }
}
