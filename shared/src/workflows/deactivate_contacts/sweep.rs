//! The nightly contact sweep: every company that matches the offboarded criteria (the same
//! settings the configuration sweep reads, `OFFRAMP_OFFBOARDED_*`) and still has active
//! contacts gets its own audited contact deactivation (workflow 001), one after another.
//! Every parameter comes from the settings, none from the event (docs/workflows.md#scheduled-sweeps).
//!
//! The schedule is the consent: the deployment that configured the criteria and the
//! schedule asked for these runs, so each run is confirmed (a dry run when
//! `OFFRAMP_SWEEP_DRY_RUN` says so). The blast-radius guard is never overridden here: a
//! company over the limit is reported as stopped, for a person to look at.

use super::{ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts};
use crate::domain::{self, OffboardedCriteria};
use crate::error::OfframpError;
use crate::workflows::offboarded::{self, CompanySweep};

/// The contact sweep's report: the configuration sweep's shape, one workflow 001 report per client.
pub type ContactSweepReport = offboarded::SweepReport<ContactDeactivationReport>;

/// Sweep the offboarded companies' active contacts.
pub async fn sweep_offboarded_contacts(
    deps: &ContactDeps<'_>,
    criteria: &OffboardedCriteria,
    dry_run: bool,
    initiated_by: &str,
) -> ContactSweepReport {
    let sweep = ContactSweep { deps, criteria, dry_run, initiated_by };
    offboarded::sweep_offboarded(deps.psa, criteria, &deps.deadline, &sweep).await
}

struct ContactSweep<'a> {
    deps: &'a ContactDeps<'a>,
    criteria: &'a OffboardedCriteria,
    dry_run: bool,
    initiated_by: &'a str,
}

impl CompanySweep for ContactSweep<'_> {
    type Run = ContactDeactivationReport;
    const LOOKS_FOR: &'static str = "active contacts";

    /// Workflow 001 does not check a client's standing itself (a person names the company),
    /// so the sweep reads the company again just before its run: one re-activated since the
    /// list was read is passed over, not swept. (Contracts are not read again: the fresh
    /// record carries none, and the listing has just read them.)
    async fn has_work(&self, company: &domain::Company) -> Result<bool, OfframpError> {
        let Some(fresh) = self.deps.psa.company_by_id(&company.id).await? else {
            return Ok(false);
        };
        let fresh = domain::Company { contracts: company.contracts.clone(), ..fresh };
        if !self.criteria.matches(&fresh) {
            return Ok(false);
        }
        let contacts = self.deps.psa.list_contacts(&company.id).await?;
        Ok(contacts.iter().any(|c| c.active))
    }

    async fn run(&self, company: &domain::Company, reason: String) -> ContactDeactivationReport {
        let request = DeactivateContactsRequest {
            company_id: Some(company.id.clone()),
            dry_run: self.dry_run,
            confirmation: true,
            reason: Some(reason),
            initiated_by: Some(self.initiated_by.to_string()),
            ..DeactivateContactsRequest::default()
        };
        Box::pin(deactivate_contacts(self.deps, request)).await
    }

    fn succeeded(run: &ContactDeactivationReport) -> bool {
        run.success
    }
}
