//! Which companies count as offboarded: the PSA's own candidates for the configured
//! criteria, plus, for the contract criterion, companies whose every contract ended.
//! Shared by the configuration sweep and the IT Glue cleanup.

use crate::domain::{self, OffboardedCriteria};
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
