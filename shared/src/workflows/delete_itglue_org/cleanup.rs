//! The scheduled mode: the monthly cleanup of IT Glue organizations whose PSA company has
//! been offboarded long enough. Every organization goes through the same workflow as a
//! manual run, never forced.

use serde::{Deserialize, Serialize};

use super::plan::integration_matches;
use super::report::{DeleteOrgError, DeleteOrgReport, error};
use super::{DeleteOrgDeps, DeleteOrgRequest, delete_itglue_org, doc_code};
use crate::domain::{self, Company, OperationEventKind, Organization, Workflow};
use crate::error::{DocError, ErrorCode, OfframpError};
use crate::ports::{AuditStore, Psa};

/// One PSA company the scheduled cleanup looked at and left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupSkip {
    pub company_id: String,
    pub company_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub success: bool,
    pub timestamp: String,
    pub dry_run: bool,
    /// Companies offboarded for at least this many days were considered.
    pub offboarded_days: u64,
    /// One workflow 002 report (docs/workflows.md#002-report) per organization processed.
    pub organizations: Vec<DeleteOrgReport>,
    pub skipped: Vec<CleanupSkip>,
    pub errors: Vec<DeleteOrgError>,
}

impl CleanupReport {
    fn failed(mut self, code: ErrorCode, message: String) -> Self {
        self.success = false;
        self.errors.push(error(code, message));
        self
    }
}

/// A listing names no organization, so IT Glue refusing it (a 4xx other than 401, 403,
/// 404 and 429) says Offramp's IT Glue settings are wrong, not the connection.
fn listing_code(e: &DocError) -> ErrorCode {
    match e {
        DocError::Rejected { .. } => ErrorCode::ConfigurationError,
        other => doc_code(other),
    }
}

/// Since when a company counts as offboarded: the first completed Offramp deactivation
/// (configurations or contacts) recorded for it, else the end of its last contract.
/// `None` when neither is known: such a company is never cleaned up automatically.
async fn offboarded_since(
    audit: &dyn AuditStore,
    psa: &dyn Psa,
    company: &Company,
) -> Result<Option<chrono::NaiveDate>, OfframpError> {
    let filter = domain::OperationFilter {
        client_id: Some(company.id.clone()),
        psa: Some(psa.kind().as_str().to_string()),
        limit: 1000,
    };
    let first = audit
        .list_operations(&filter)
        .await?
        .into_iter()
        .filter(|o| {
            !o.operation.dry_run
                && matches!(o.operation.workflow, Workflow::DeactivateConfigs | Workflow::DeactivateContacts)
                && o.last_event == Some(OperationEventKind::Completed)
        })
        .map(|o| o.operation.created_at.date_naive())
        .min();
    if first.is_some() {
        return Ok(first);
    }
    let contracts = match &company.contracts {
        Some(summary) => summary.clone(),
        None => psa.contract_summary(&company.id, domain::now().date_naive()).await?,
    };
    Ok(if contracts.all_ended() { contracts.last_end } else { None })
}

/// The monthly cleanup: for every PSA company offboarded for at least `offboarded_days`,
/// the IT Glue organization linked to it (same name, and IT Glue's `psa-id` naming the
/// company: a name match alone is never enough) is deleted under the same rules as a
/// manual run, never forced.
pub async fn cleanup_offboarded_organizations(
    deps: &DeleteOrgDeps<'_>,
    offboarded_days: u64,
    dry_run: bool,
    initiated_by: &str,
) -> CleanupReport {
    let mut report = CleanupReport {
        success: true,
        timestamp: domain::iso8601(domain::now()),
        dry_run,
        offboarded_days,
        organizations: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    let Some(psa) = deps.psa else {
        return report.failed(ErrorCode::ConfigurationError, "the scheduled cleanup needs a PSA".into());
    };
    let companies = match crate::workflows::offboarded::offboarded_companies(psa, &deps.options.offboarded).await {
        Ok(companies) => companies,
        Err(e) => return report.failed(e.code(), e.to_string()),
    };
    // One listing for the whole run: the name filter cannot be trusted (see the IT Glue
    // adapter), and a listing per company would spend the request budget many times over.
    let organizations = match deps.docs.organizations().await {
        Ok(organizations) => organizations,
        Err(e) => return report.failed(listing_code(&e), format!("listing IT Glue organizations: {e}")),
    };
    let cleanup = Cleanup { deps, psa, organizations, offboarded_days, dry_run, initiated_by };
    for company in companies {
        cleanup.company(&company, &mut report).await;
    }
    if !report.errors.is_empty() {
        report.success = false;
    }
    report
}

struct Cleanup<'a> {
    deps: &'a DeleteOrgDeps<'a>,
    psa: &'a dyn Psa,
    organizations: Vec<Organization>,
    offboarded_days: u64,
    dry_run: bool,
    initiated_by: &'a str,
}

impl Cleanup<'_> {
    /// Decide about one offboarded company, and delete its organization when it is due.
    async fn company(&self, company: &Company, report: &mut CleanupReport) {
        let skip =
            |reason: String| CleanupSkip { company_id: company.id.clone(), company_name: company.name.clone(), reason };
        let since = match offboarded_since(self.deps.audit, self.psa, company).await {
            Ok(Some(since)) => since,
            Ok(None) => {
                let why = "offboarding date unknown (no completed Offramp run, no ended contract)";
                return report.skipped.push(skip(why.into()));
            }
            Err(e) => return report.errors.push(error(e.code(), format!("{} ({}): {e}", company.name, company.id))),
        };
        let days = (domain::now().date_naive() - since).num_days().max(0) as u64;
        if days < self.offboarded_days {
            let why = format!("offboarded {days} day(s) ago, fewer than {}", self.offboarded_days);
            return report.skipped.push(skip(why));
        }
        let org = match self.linked(company).as_slice() {
            [] => {
                return report
                    .skipped
                    .push(skip("no IT Glue organization of that name is linked to this company".into()));
            }
            [org] => (*org).clone(),
            _ => return report.skipped.push(skip("several IT Glue organizations are linked to this company".into())),
        };
        let request = DeleteOrgRequest {
            org_id: Some(org.id.clone()),
            confirm_delete: true,
            dry_run: self.dry_run,
            reason: Some(format!("Scheduled cleanup: {} offboarded {days} days ago", company.name)),
            initiated_by: Some(self.initiated_by.to_string()),
            ..DeleteOrgRequest::default()
        };
        let result = delete_itglue_org(self.deps, request).await;
        if !result.success && result.primary_error() != Some(ErrorCode::DeletionBlocked) {
            report.success = false;
        }
        report.organizations.push(result);
    }

    /// The organizations linked to `company`: same name, and IT Glue's `psa-id` naming it.
    fn linked(&self, company: &Company) -> Vec<&Organization> {
        let wanted = company.name.trim().to_lowercase();
        self.organizations
            .iter()
            .filter(|o| {
                o.name.trim().to_lowercase() == wanted
                    && o.psa_id.as_deref() == Some(company.id.as_str())
                    && integration_matches(o, self.psa.kind())
            })
            .collect()
    }
}
