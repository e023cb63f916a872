//! The seed report of configuration deactivation: `success`, `client_id`, `client_name`,
//! `timestamp`, `statistics{configs_found, configs_deactivated, configs_skipped, errors}`,
//! `configs[{config_id, config_name, status, previous_status}]`, `warnings`,
//! `errors[{code, message, timestamp, config_id?}]` (docs/workflows.md#000-report), plus Offramp's
//! `operation_id`, `dry_run`, `plan_hash`, `status` and `blast_radius`.

use serde::{Deserialize, Serialize};

use super::plan::{ConfigBlastRadius, Plan};
use crate::domain::{self, Company, Configuration, ItemOutcome, RunStatus};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{Continuation, IdempotentReport, sort_key};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    pub configs_found: u64,
    pub configs_deactivated: u64,
    pub configs_skipped: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub config_id: String,
    pub config_name: String,
    pub status: String,
    pub previous_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    pub code: ErrorCode,
    pub message: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
}

impl ReportError {
    pub fn new(code: ErrorCode, message: impl Into<String>, config_id: Option<String>) -> Self {
        Self { code, message: message.into(), timestamp: domain::iso8601(domain::now()), config_id }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDeactivationReport {
    pub success: bool,
    /// Present when the run stopped at a gate: `approval_required`, `blast_radius_exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    pub operation_id: Option<String>,
    pub dry_run: bool,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub timestamp: String,
    pub statistics: Statistics,
    pub configs: Vec<ConfigEntry>,
    pub warnings: Vec<String>,
    pub errors: Vec<ReportError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<ConfigBlastRadius>,
    /// Present when the run stopped at its invocation's deadline: call again with its
    /// `operation_id` (docs/architecture.md#runs-that-outlive-one-invocation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
}

impl ConfigDeactivationReport {
    /// A report for a run that ended on `error` before (or instead of) changing anything.
    pub fn failure(
        error: &OfframpError,
        client: Option<&Company>,
        operation_id: Option<String>,
        dry_run: bool,
    ) -> Self {
        let mut report = Self::empty(client, operation_id, dry_run);
        report.success = false;
        report.errors.push(ReportError::new(error.code(), error.to_string(), None));
        report
    }

    fn empty(client: Option<&Company>, operation_id: Option<String>, dry_run: bool) -> Self {
        Self {
            success: true,
            status: None,
            operation_id,
            dry_run,
            client_id: client.map(|c| c.id.clone()),
            client_name: client.map(|c| c.name.clone()),
            timestamp: domain::iso8601(domain::now()),
            statistics: Statistics::default(),
            configs: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            plan_hash: None,
            blast_radius: None,
            continuation: None,
        }
    }

    /// The most significant error code, for an exit status.
    pub fn primary_error(&self) -> Option<ErrorCode> {
        self.errors
            .iter()
            .map(|e| e.code)
            .find(|c| *c != ErrorCode::ConfigUpdateFailed)
            .or(self.errors.first().map(|e| e.code))
    }
}

impl IdempotentReport for ConfigDeactivationReport {
    fn from_error(error: &OfframpError) -> Self {
        Self::failure(error, None, None, false)
    }

    fn error_codes(&self) -> Vec<ErrorCode> {
        self.primary_error().into_iter().collect()
    }

    fn operation_id(&self) -> Option<String> {
        self.operation_id.clone()
    }
}

/// The report of a plan that was not applied (dry run, or stopped at a gate): statistics
/// and statuses show what a real run would do.
pub fn planned(client: &Company, operation_id: &str, plan: &Plan, dry_run: bool) -> ConfigDeactivationReport {
    let mut report = ConfigDeactivationReport::empty(Some(client), Some(operation_id.to_string()), dry_run);
    report.statistics.configs_found = plan.configs.len() as u64;
    for config in &plan.configs {
        let status = if plan::deactivates(config) {
            report.statistics.configs_deactivated += 1;
            "inactive".to_string()
        } else {
            report.statistics.configs_skipped += 1;
            config.status.label()
        };
        report.configs.push(entry(config, status));
    }
    if dry_run {
        report.warnings.push(
            "Dry run: nothing was changed. The statistics and statuses show what a real run would do.".to_string(),
        );
    }
    report.plan_hash = Some(plan.hash.clone());
    report
}

use super::plan;

fn entry(config: &Configuration, status: String) -> ConfigEntry {
    ConfigEntry {
        config_id: config.id.clone(),
        config_name: config.name.clone(),
        status,
        previous_status: config.status.label(),
    }
}

/// One configuration's result in a real run.
pub struct ItemResult {
    pub before: Configuration,
    pub after: Option<Configuration>,
    pub outcome: ItemOutcome,
    pub error: Option<(ErrorCode, String)>,
}

/// The seed report for the results of a run (pure: records nothing).
pub fn applied(
    client: &Company,
    operation_id: &str,
    mut results: Vec<ItemResult>,
    not_attempted: usize,
    stopped: Option<&OfframpError>,
    warnings: Vec<String>,
) -> ConfigDeactivationReport {
    let mut report = ConfigDeactivationReport::empty(Some(client), Some(operation_id.to_string()), false);
    report.warnings = warnings;
    results.sort_by_key(|r| sort_key(&r.before.id));
    report.statistics.configs_found = (results.len() + not_attempted) as u64;
    for result in &results {
        let status = tally(&mut report, result);
        report.configs.push(entry(&result.before, status));
    }
    report.continuation = Continuation::after(stopped, operation_id, not_attempted as u64);
    if let Some(stop) = stopped {
        report.errors.push(ReportError::new(
            stop.code(),
            format!("{stop}; the run stopped early and can be resumed with operation_id {operation_id}"),
            None,
        ));
        let untouched = if not_attempted > 0 { format!(", {not_attempted} not yet attempted") } else { String::new() };
        report.warnings.push(format!(
            "Interrupted: the run stopped after {} configuration(s){untouched}; resume with operation_id {operation_id}",
            results.len()
        ));
    }
    report.success = report.errors.is_empty();
    report
}

/// Count one result and return its `status` for the report.
fn tally(report: &mut ConfigDeactivationReport, result: &ItemResult) -> String {
    let previous = result.before.status.label();
    let after = result.after.as_ref().map(|a| a.status.label());
    match result.outcome {
        // Uncertain: inactive now, after this run's update was in flight (see resume.rs).
        ItemOutcome::Changed | ItemOutcome::Uncertain => {
            report.statistics.configs_deactivated += 1;
            after.unwrap_or_else(|| "inactive".into())
        }
        ItemOutcome::Skipped | ItemOutcome::Intended => {
            report.statistics.configs_skipped += 1;
            previous
        }
        ItemOutcome::Failed => {
            report.statistics.errors += 1;
            if let Some((code, message)) = &result.error {
                report.errors.push(ReportError::new(*code, message.clone(), Some(result.before.id.clone())));
            }
            after.unwrap_or(previous)
        }
    }
}
