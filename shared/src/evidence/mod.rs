//! The evidence report (docs/evidence.md): one printable HTML document of a whole client
//! offboarding (or of one workflow run), rendered from the audit trail alone, which an MSP
//! hands to the departing client or to an auditor. The chain's finalizer stores it
//! ([`crate::ports::EvidenceStore`]) and links it from the ticket's summary note;
//! `offramp audit report` renders it again from the trail at any time.

mod model;
mod render;
#[cfg(test)]
mod tests;

pub use model::{Evidence, ItemLine, Outcome, RunEvidence, differences};
pub use render::{content_security_policy, render};

use crate::error::OfframpError;
use crate::ports::{AuditStore, EvidenceLocation, EvidenceStore};

/// The document of `operation_id`, from the trail.
pub async fn render_operation(audit: &dyn AuditStore, operation_id: &str) -> Result<String, OfframpError> {
    Ok(render(&Evidence::gather(audit, operation_id).await?))
}

/// Render the document of `operation_id` and store it. `outcome`, when given, is how the
/// operation ends (the finalizer knows it before its last event is in the trail).
pub async fn publish(
    audit: &dyn AuditStore,
    store: &dyn EvidenceStore,
    operation_id: &str,
    outcome: Option<Outcome>,
) -> Result<EvidenceLocation, OfframpError> {
    let mut evidence = Evidence::gather(audit, operation_id).await?;
    if let Some(outcome) = outcome {
        evidence.outcome = outcome;
    }
    Ok(store.put(operation_id, &render(&evidence)).await?)
}
