//! The client's settings the chain reads (docs/configuration: `offramp settings`).

use super::ChainDeps;
use crate::error::OfframpError;
use crate::workflows::org_settings::{self, CHAIN_RECIPIENTS, CHAIN_REQUIRE_APPROVAL};

/// Whether the client's settings ask for an approval before its offboarding changes anything.
pub async fn approval_required(deps: &ChainDeps<'_>, client_id: &str) -> Result<bool, OfframpError> {
    let value =
        org_settings::resolve_one(deps.settings, &deps.psa.kind().to_string(), client_id, CHAIN_REQUIRE_APPROVAL)
            .await?;
    Ok(value.as_deref() != Some("false"))
}

/// Who is told the offboarding finished.
pub async fn recipients(deps: &ChainDeps<'_>, client_id: &str) -> Result<Vec<String>, OfframpError> {
    let value =
        org_settings::resolve_one(deps.settings, &deps.psa.kind().to_string(), client_id, CHAIN_RECIPIENTS).await?;
    Ok(value
        .map(|v| v.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect())
        .unwrap_or_default())
}
