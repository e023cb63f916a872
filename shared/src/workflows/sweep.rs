//! The scheduled sweep: every company whose status is one of the offboarded statuses
//! and that still has active configurations is processed, each as its own audited
//! operation. Companies are handled one after another so that one client's failure
//! is reported and the next client still runs.

use serde::{Deserialize, Serialize};

use crate::domain::{self, ConfigState};
use crate::error::{ErrorCode, OfframpError};
use crate::workflows::deactivate_configs::{
    ConfigDeactivationReport, DeactivateConfigsRequest, Deps, ReportError, deactivate_configs,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub success: bool,
    pub timestamp: String,
    pub offboarded_statuses: Vec<String>,
    /// Companies whose status matched.
    pub clients_checked: u64,
    /// Companies that still had active configurations and were processed.
    pub clients_processed: u64,
    /// One seed-000 report per processed client.
    pub operations: Vec<ConfigDeactivationReport>,
    pub warnings: Vec<String>,
    pub errors: Vec<ReportError>,
}

pub async fn sweep_offboarded_clients(
    deps: &Deps<'_>,
    offboarded_statuses: &[String],
    dry_run: bool,
    initiated_by: &str,
) -> SweepReport {
    let timestamp = domain::iso8601(domain::now());
    let mut report = SweepReport {
        success: true,
        timestamp: timestamp.clone(),
        offboarded_statuses: offboarded_statuses.to_vec(),
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
    if offboarded_statuses.iter().all(|s| s.trim().is_empty()) {
        report.success = false;
        report.errors.push(error(OfframpError::new(
            ErrorCode::ConfigurationError,
            "no offboarded statuses are configured (OFFRAMP_OFFBOARDED_STATUSES); the sweep does nothing rather than guess",
        )));
        return report;
    }
    let companies = match deps.psa.companies_with_status(offboarded_statuses).await {
        Ok(companies) => companies,
        Err(e) => {
            report.success = false;
            report.errors.push(error(e.into()));
            return report;
        }
    };
    report.clients_checked = companies.len() as u64;
    for company in companies {
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
        let request = DeactivateConfigsRequest {
            client_id: Some(company.id.clone()),
            offboarded_statuses: Some(offboarded_statuses.to_vec()),
            dry_run,
            reason: Some(format!("Scheduled sweep: company status '{}'", company.status.clone().unwrap_or_default())),
            initiated_by: Some(initiated_by.to_string()),
            ..DeactivateConfigsRequest::default()
        };
        let operation = deactivate_configs(deps, request).await;
        report.success &= operation.success;
        report.operations.push(operation);
    }
    if report.clients_processed == 0 {
        report
            .warnings
            .push(format!("No company with status in [{}] has active configurations.", offboarded_statuses.join(", ")));
    }
    report
}
