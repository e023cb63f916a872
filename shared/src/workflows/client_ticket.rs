//! The one rule for a ticket a request names (workflows 001 and 003 document their run on
//! it): it must exist and be the client's own, checked before anything changes.

use crate::domain::Ticket;
use crate::error::{OfframpError, PsaError};
use crate::ports::Psa;

/// `ticket_id` must be a ticket of company `company_id`.
pub async fn check_ticket(psa: &dyn Psa, company_id: &str, ticket_id: &str) -> Result<(), OfframpError> {
    match psa.ticket(ticket_id).await? {
        Some(ticket) if ticket.company_id == company_id => Ok(()),
        Some(ticket) => Err(OfframpError::invalid_input(format!(
            "ticket {ticket_id} belongs to company {}, not {company_id}; nothing was changed",
            ticket.company_id
        ))),
        None => Err(OfframpError::invalid_input(format!("ticket {ticket_id} does not exist; nothing was changed"))),
    }
}

/// The open ticket of the company with exactly `summary`, the oldest if several: one an
/// earlier attempt of the same operation opened (each run names its operation in the
/// summary), found again when the answer to its creation was lost.
pub async fn opened_earlier(psa: &dyn Psa, company_id: &str, summary: &str) -> Result<Option<Ticket>, PsaError> {
    let open = psa.open_tickets(company_id).await?;
    Ok(open.into_iter().filter(|t| t.summary == summary).min_by_key(|t| t.id.parse::<i64>().unwrap_or(i64::MAX)))
}
