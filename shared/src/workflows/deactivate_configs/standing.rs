//! Whether a client's configurations may be deactivated at all: the client meets the
//! configured offboarded criteria — the same ones the scheduled sweep uses
//! ([`ConfigDeactivationOptions::offboarded`](super::ConfigDeactivationOptions)) — or the
//! request says `allow_active_client`, which the run records. Safe by default: with no
//! criterion configured, a client can never be shown to be offboarded, so the run is
//! refused with a message that says how to configure one.
//!
//! A client that is offboarded by status (or flag, or category) but still has a current
//! contract is reported with a warning in the plan: the PSA's contracts are read through
//! the same port method the contract criterion uses (`Psa::contract_summary`).

use serde::Serialize;

use crate::domain::{self, Company, ContractSummary, OffboardedCriteria};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::Psa;

/// What the run found out about the client's standing, recorded with the operation (its
/// header's `input.offboarded`, and the `started` event) so that a deactivation of a client
/// that was not offboarded can always be told apart later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffboardedStanding {
    /// The configured criteria the client was checked against.
    pub criteria: OffboardedCriteria,
    /// Whether the client meets them (with `allow_active_client`, as far as could be told
    /// without reading its contracts).
    pub meets_criteria: bool,
    /// The request said `allow_active_client`: the run goes ahead whatever the client's standing.
    pub allow_active_client: bool,
    /// The client's contracts, when they were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contracts: Option<ContractSummary>,
    /// For the plan's report.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// How to configure a criterion, for the refusal when none is.
const HOW_TO_CONFIGURE: &str = "configure at least one: OFFRAMP_OFFBOARDED_STATUSES (company status names, e.g. \
     Offboarded), OFFRAMP_OFFBOARDED_INACTIVE=true (the company's inactive flag: Autotask, HaloPSA), \
     OFFRAMP_OFFBOARDED_CATEGORIES (Autotask company types or classifications) or \
     OFFRAMP_OFFBOARDED_CONTRACT_ENDED=true (every contract ended); the README's 'Offboarded criteria' table \
     shows each PSA";

/// How to go ahead anyway, for every refusal.
const OVERRIDE: &str = "or pass allow_active_client: true (CLI --allow-active-client) to deactivate this client \
     anyway (recorded in the audit trail)";

/// Check `client` against `criteria` (and the request's own `offboarded_statuses`, which
/// can only narrow them). Refuses, with nothing changed, a client that does not meet them,
/// unless `allow_active_client`.
pub(super) async fn check(
    psa: &dyn Psa,
    client: &Company,
    criteria: &OffboardedCriteria,
    request_statuses: &[String],
    allow_active_client: bool,
) -> Result<OffboardedStanding, OfframpError> {
    check_request_statuses(client, request_statuses)?;
    let mut standing = OffboardedStanding {
        criteria: criteria.clone(),
        meets_criteria: criteria.matches(client),
        allow_active_client,
        contracts: None,
        warnings: Vec::new(),
    };
    if allow_active_client {
        if !standing.meets_criteria {
            standing.warnings.push(format!(
                "Client {} ({}) does not meet the offboarded criteria ({}); its configurations are planned for \
                 deactivation because the request says allow_active_client (recorded).",
                client.name,
                client.id,
                criteria.describe()
            ));
        }
        return Ok(standing);
    }
    if criteria.is_empty() {
        return Err(OfframpError::new(
            ErrorCode::ClientNotOffboarded,
            format!(
                "no offboarded criteria are configured, so client {} ({}) cannot be shown to be offboarded; \
                 nothing was changed. To deactivate offboarded clients, {HOW_TO_CONFIGURE}; {OVERRIDE}",
                client.name, client.id
            ),
        ));
    }
    let today = domain::now().date_naive();
    if !standing.meets_criteria && criteria.contract_ended {
        // The contract criterion needs the contracts; a read that fails stops the run.
        let contracts = psa.contract_summary(&client.id, today).await?;
        let with_contracts = Company { contracts: Some(contracts.clone()), ..client.clone() };
        standing.meets_criteria = criteria.matches(&with_contracts);
        standing.contracts = Some(contracts);
    } else if standing.meets_criteria {
        warn_of_current_contracts(psa, client, today, &mut standing).await;
    }
    if !standing.meets_criteria {
        return Err(not_offboarded(client, criteria));
    }
    Ok(standing)
}

/// Offboarded by status, flag or category, yet a contract still runs: worth a look before
/// the configurations go. A contract read that fails is said, not fatal: the warning is advice.
async fn warn_of_current_contracts(
    psa: &dyn Psa,
    client: &Company,
    today: chrono::NaiveDate,
    standing: &mut OffboardedStanding,
) {
    match psa.contract_summary(&client.id, today).await {
        Ok(contracts) => {
            if contracts.current > 0 {
                standing.warnings.push(format!(
                    "Client {} ({}) meets the offboarded criteria ({}) but still has {} current contract(s) of {}: \
                     check that its contract really ended before its configurations are deactivated.",
                    client.name,
                    client.id,
                    standing.criteria.describe(),
                    contracts.current,
                    contracts.total
                ));
            }
            standing.contracts = Some(contracts);
        }
        Err(error) => standing.warnings.push(format!(
            "Could not read the contracts of client {} ({}) to check for a current one: {error}",
            client.name, client.id
        )),
    }
}

fn not_offboarded(client: &Company, criteria: &OffboardedCriteria) -> OfframpError {
    let flag = match client.inactive {
        Some(true) => ", inactive in the PSA",
        Some(false) => ", active in the PSA",
        None => "",
    };
    OfframpError::new(
        ErrorCode::ClientNotOffboarded,
        format!(
            "client {} ({}) does not meet the offboarded criteria ({}): status '{}'{flag}; nothing was changed. \
             Offboard it in the PSA first, {OVERRIDE}",
            client.name,
            client.id,
            criteria.describe(),
            client.status.clone().unwrap_or_default()
        ),
    )
}

/// The request's `offboarded_statuses`: a client in another status is refused. They narrow
/// the configured criteria; they never stand in for them.
fn check_request_statuses(client: &Company, statuses: &[String]) -> Result<(), OfframpError> {
    let status = client.status.clone().unwrap_or_default();
    if statuses.is_empty() || statuses.iter().any(|s| s.eq_ignore_ascii_case(status.trim())) {
        return Ok(());
    }
    Err(OfframpError::new(
        ErrorCode::ClientNotOffboarded,
        format!(
            "client {} ({}) has status '{}', which is not one of the offboarded statuses [{}]; nothing was changed",
            client.name,
            client.id,
            status,
            statuses.join(", ")
        ),
    ))
}
