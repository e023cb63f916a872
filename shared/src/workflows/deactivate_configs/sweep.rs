//! The scheduled sweep: every company that matches the offboarded criteria (status
//! names, the PSA's inactive flag, categories; see [`OffboardedCriteria`]) and that still
//! has active configurations is processed, each as its own audited operation. Companies are handled one after another so that one client's failure
//! is reported and the next client still runs.

use serde::{Deserialize, Serialize};

use super::{
    ConfigDeactivationOptions, ConfigDeactivationReport, DeactivateConfigsRequest, Deps, ReportError,
    deactivate_configs,
};
use crate::domain::{self, ConfigState, OffboardedCriteria};
use crate::error::{ErrorCode, OfframpError};
use crate::workflows::offboarded::offboarded_companies;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub success: bool,
    pub timestamp: String,
    /// What counted as offboarded in this sweep.
    pub criteria: OffboardedCriteria,
    /// Companies that matched the criteria.
    pub clients_checked: u64,
    /// Companies that still had active configurations and were processed.
    pub clients_processed: u64,
    /// One workflow 000 report (docs/workflows.md#000-report) per processed client.
    pub operations: Vec<ConfigDeactivationReport>,
    pub warnings: Vec<String>,
    pub errors: Vec<ReportError>,
}

pub async fn sweep_offboarded_clients(
    deps: &Deps<'_>,
    criteria: &OffboardedCriteria,
    dry_run: bool,
    initiated_by: &str,
) -> SweepReport {
    let timestamp = domain::iso8601(domain::now());
    let mut report = SweepReport {
        success: true,
        timestamp: timestamp.clone(),
        criteria: criteria.clone(),
        clients_checked: 0,
        clients_processed: 0,
        operations: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let error = |e: OfframpError| ReportError {
        code: e.code(),
        message: e.to_string(),
        timestamp: timestamp.clone(),
        config_id: None,
    };
    if criteria.is_empty() {
        report.success = false;
        report.errors.push(error(OfframpError::new(
            ErrorCode::ConfigurationError,
            "no offboarded criteria are configured (OFFRAMP_OFFBOARDED_STATUSES, OFFRAMP_OFFBOARDED_INACTIVE, OFFRAMP_OFFBOARDED_CATEGORIES); the sweep does nothing rather than guess",
        )));
        return report;
    }
    let companies = match offboarded_companies(deps.psa, criteria).await {
        Ok(companies) => companies,
        Err(e) => {
            report.success = false;
            report.errors.push(error(e.into()));
            return report;
        }
    };
    report.clients_checked = companies.len() as u64;
    // Each client's run checks the client against the sweep's criteria again, fresh from
    // the PSA: a client re-activated since the list was read is refused, not deactivated.
    let deps = &Deps {
        psa: deps.psa,
        audit: deps.audit,
        progress: deps.progress,
        options: ConfigDeactivationOptions { offboarded: criteria.clone(), ..deps.options.clone() },
    };
    let total = companies.len();
    for (done, company) in companies.into_iter().enumerate() {
        // Past the invocation's deadline no client is started: its run would only plan,
        // snapshot and pause. The next sweep takes the rest up (a paused run is resumable).
        if deps.options.deadline.reached() {
            report.warnings.push(format!(
                "The invocation's deadline came first: {} client(s) were not started; the next sweep takes them up.",
                total - done
            ));
            break;
        }
        let configs = match deps.psa.list_configurations(&company.id, false).await {
            Ok(configs) => configs,
            Err(e) => {
                report.success = false;
                report.errors.push(error(OfframpError::from(e)));
                continue;
            }
        };
        if !configs.iter().any(|c| c.status.state == ConfigState::Active) {
            continue;
        }
        report.clients_processed += 1;
        let operation = deactivate_configs(deps, request(&company, criteria, dry_run, initiated_by)).await;
        report.success &= operation.success;
        report.operations.push(operation);
    }
    if report.clients_processed == 0 {
        report.warnings.push(format!("No company matching {} has active configurations.", criteria.describe()));
    }
    report
}

/// One swept company's run.
fn request(
    company: &domain::Company,
    criteria: &OffboardedCriteria,
    dry_run: bool,
    initiated_by: &str,
) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest {
        client_id: Some(company.id.clone()),
        dry_run,
        reason: Some(format!(
            "Scheduled sweep: company matches {} (status '{}')",
            criteria.describe(),
            company.status.clone().unwrap_or_default()
        )),
        initiated_by: Some(initiated_by.to_string()),
        ..DeactivateConfigsRequest::default()
    }
}
