//! Which companies count as offboarded: the PSA's own candidates for the configured
//! criteria, plus, for the contract criterion, companies whose every contract ended.
//! Shared by the configuration sweep, the contact sweep and the IT Glue cleanup; the
//! sweeps also share their loop (deadline check, per-company run, report) below.

use serde::{Deserialize, Serialize};

use crate::domain::{self, OffboardedCriteria};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::Deadline;
use crate::ports::Psa;

/// Every company matching `criteria`: the PSA's own candidates, plus, for the contract
/// criterion, the companies with an ended contract whose every contract has ended.
pub async fn offboarded_companies(
    psa: &dyn Psa,
    criteria: &OffboardedCriteria,
) -> Result<Vec<domain::Company>, crate::error::PsaError> {
    let mut companies = psa.offboarded_candidates(criteria).await?;
    if criteria.contract_ended {
        let today = domain::now().date_naive();
        for id in psa.companies_with_ended_contracts(today).await? {
            if companies.iter().any(|c| c.id == id) {
                continue;
            }
            if let Some(mut company) = psa.company_by_id(&id).await? {
                company.contracts = Some(psa.contract_summary(&id, today).await?);
                companies.push(company);
            }
        }
    }
    companies.retain(|c| criteria.matches(c));
    companies.sort_by_key(|c| (c.id.parse::<u64>().unwrap_or(u64::MAX), c.id.clone()));
    Ok(companies)
}

// ---------------------------------------------------------------------------
// The scheduled sweep over offboarded companies, generic over what it runs per company
// ---------------------------------------------------------------------------

/// One sweep's report: what counted as offboarded, how many companies matched, and one
/// workflow report per company that still had something to do. The configuration sweep's
/// field names (docs/workflows.md#scheduled-sweeps); the contact sweep uses the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport<Run> {
    pub success: bool,
    pub timestamp: String,
    /// What counted as offboarded in this sweep.
    pub criteria: OffboardedCriteria,
    /// Companies that matched the criteria.
    pub clients_checked: u64,
    /// Companies that still had something to do (active configurations, active contacts) and were processed.
    pub clients_processed: u64,
    /// One workflow report per processed client.
    pub operations: Vec<Run>,
    pub warnings: Vec<String>,
    /// The sweep's own errors (the listing, one company's check); a run's are in its report.
    pub errors: Vec<SweepError>,
}

/// An error of the sweep itself: `{code, message, timestamp}`, as a workflow report's errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepError {
    pub code: ErrorCode,
    pub message: String,
    pub timestamp: String,
}

/// What a sweep does for each offboarded company. Crate-private: each workflow offers its
/// own public sweep function (workflow modules never import each other; they share this).
pub(crate) trait CompanySweep {
    /// The workflow's report of one company's run.
    type Run;
    /// What the sweep looks for, for the report's warning ("active configurations").
    const LOOKS_FOR: &'static str;
    /// Whether the company still has something to do; an error is reported and the next company runs.
    async fn has_work(&self, company: &domain::Company) -> Result<bool, OfframpError>;
    /// The company's own audited run (`reason` says why the sweep started it).
    async fn run(&self, company: &domain::Company, reason: String) -> Self::Run;
    fn succeeded(run: &Self::Run) -> bool;
}

/// The sweep: every company matching `criteria` with something left to do gets its own run,
/// one after another, so one client's failure is reported and the next client still runs.
/// Past `deadline` no client is started (its run would only plan, snapshot and pause); the
/// next sweep takes the rest up. No criterion configured: nothing is done rather than guessed.
pub(crate) async fn sweep_offboarded<S: CompanySweep>(
    psa: &dyn Psa,
    criteria: &OffboardedCriteria,
    deadline: &Deadline,
    sweep: &S,
) -> SweepReport<S::Run> {
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
    let error = |e: OfframpError| SweepError { code: e.code(), message: e.to_string(), timestamp: timestamp.clone() };
    if criteria.is_empty() {
        report.success = false;
        report.errors.push(error(OfframpError::new(
            ErrorCode::ConfigurationError,
            "no offboarded criteria are configured (OFFRAMP_OFFBOARDED_STATUSES, OFFRAMP_OFFBOARDED_INACTIVE, OFFRAMP_OFFBOARDED_CATEGORIES); the sweep does nothing rather than guess",
        )));
        return report;
    }
    let companies = match offboarded_companies(psa, criteria).await {
        Ok(companies) => companies,
        Err(e) => {
            report.success = false;
            report.errors.push(error(e.into()));
            return report;
        }
    };
    report.clients_checked = companies.len() as u64;
    let total = companies.len();
    for (done, company) in companies.into_iter().enumerate() {
        if deadline.reached() {
            report.warnings.push(format!(
                "The invocation's deadline came first: {} client(s) were not started; the next sweep takes them up.",
                total - done
            ));
            break;
        }
        match sweep.has_work(&company).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                report.success = false;
                report.errors.push(error(e));
                continue;
            }
        }
        report.clients_processed += 1;
        let run = sweep.run(&company, sweep_reason(&company, criteria)).await;
        report.success &= S::succeeded(&run);
        report.operations.push(run);
    }
    if report.clients_processed == 0 {
        report.warnings.push(format!("No company matching {} has {}.", criteria.describe(), S::LOOKS_FOR));
    }
    report
}

/// Why the sweep started a company's run, as its recorded `reason`.
fn sweep_reason(company: &domain::Company, criteria: &OffboardedCriteria) -> String {
    format!(
        "Scheduled sweep: company matches {} (status '{}')",
        criteria.describe(),
        company.status.clone().unwrap_or_default()
    )
}
