//! The scheduled sweep: every company that matches the offboarded criteria (status
//! names, the PSA's inactive flag, categories; see [`OffboardedCriteria`]) and that still
//! has active configurations is processed, each as its own audited operation. The loop
//! (deadline, one client after another, the report) is shared with the contact sweep
//! (`crate::workflows::offboarded::sweep_offboarded`).

use super::{ConfigDeactivationOptions, ConfigDeactivationReport, DeactivateConfigsRequest, Deps, deactivate_configs};
use crate::domain::{self, ConfigState, OffboardedCriteria};
use crate::error::OfframpError;
use crate::workflows::offboarded::{self, CompanySweep};

/// The configuration sweep's report (workflow 000 reports, docs/workflows.md#000-report, per client).
pub type SweepReport = offboarded::SweepReport<ConfigDeactivationReport>;

pub async fn sweep_offboarded_clients(
    deps: &Deps<'_>,
    criteria: &OffboardedCriteria,
    dry_run: bool,
    initiated_by: &str,
) -> SweepReport {
    // Each client's run checks the client against the sweep's criteria again, fresh from
    // the PSA: a client re-activated since the list was read is refused, not deactivated.
    let deps = Deps {
        psa: deps.psa,
        audit: deps.audit,
        progress: deps.progress,
        options: ConfigDeactivationOptions { offboarded: criteria.clone(), ..deps.options.clone() },
    };
    let sweep = ConfigSweep { deps: &deps, dry_run, initiated_by };
    offboarded::sweep_offboarded(deps.psa, criteria, &deps.options.deadline, &sweep).await
}

struct ConfigSweep<'a> {
    deps: &'a Deps<'a>,
    dry_run: bool,
    initiated_by: &'a str,
}

impl CompanySweep for ConfigSweep<'_> {
    type Run = ConfigDeactivationReport;
    const LOOKS_FOR: &'static str = "active configurations";

    async fn has_work(&self, company: &domain::Company) -> Result<bool, OfframpError> {
        let configs = self.deps.psa.list_configurations(&company.id, false).await?;
        Ok(configs.iter().any(|c| c.status.state == ConfigState::Active))
    }

    async fn run(&self, company: &domain::Company, reason: String) -> ConfigDeactivationReport {
        let request = DeactivateConfigsRequest {
            client_id: Some(company.id.clone()),
            dry_run: self.dry_run,
            reason: Some(reason),
            initiated_by: Some(self.initiated_by.to_string()),
            ..DeactivateConfigsRequest::default()
        };
        deactivate_configs(self.deps, request).await
    }

    fn succeeded(run: &ConfigDeactivationReport) -> bool {
        run.success
    }
}
