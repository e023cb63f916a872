//! The chain's one PSA ticket: every step documents itself on it, the approval request
//! and the summary note go on it.

use super::ChainDeps;
use super::model::ChainPlan;
use crate::domain::NewTicket;
use crate::error::OfframpError;
use crate::workflows::client_ticket::opened_earlier;

/// The summary of a client's offboarding ticket: the same for every attempt, so an open
/// one is found again and reused instead of opening a second.
pub fn summary(client_name: &str) -> String {
    format!("Client offboarding: {client_name}")
}

/// The open offboarding ticket of the client, or a new one.
pub async fn open_or_reuse(deps: &ChainDeps<'_>, plan: &ChainPlan) -> Result<String, OfframpError> {
    let summary = summary(&plan.client_name);
    if let Some(ticket) = opened_earlier(deps.psa, &plan.client_id, &summary).await? {
        return Ok(ticket.id);
    }
    let description = format!(
        "Offramp is offboarding {} (operation {}), started by {}.{}",
        plan.client_name,
        plan.parent_operation_id,
        plan.initiated_by,
        plan.reason.as_deref().map(|r| format!(" Reason: {r}")).unwrap_or_default()
    );
    let ticket = NewTicket { company_id: plan.client_id.clone(), summary, queue: None, description };
    Ok(deps.psa.create_ticket(&ticket).await?.id)
}
