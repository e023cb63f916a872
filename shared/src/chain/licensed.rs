//! "Every licensed user of the client's Microsoft 365 tenant" as the chain's leavers
//! (docs/architecture.md#the-client-offboarding-chain): the tenant from the client's
//! `m365_tenant_id` setting, the users from the directory (licensed and enabled), one
//! `offboard_user` run each. Read only: nothing is changed here.

use super::ChainDeps;
use crate::error::{ErrorCode, OfframpError};
use crate::ports::DirectoryError;
use crate::workflows::org_settings::{self, M365_TENANT};

/// The user principal names of every licensed, enabled user of the client's tenant,
/// sorted (the plan, and so its hash, does not depend on the directory's order).
pub(super) async fn licensed_leavers(deps: &ChainDeps<'_>, client_id: &str) -> Result<Vec<String>, OfframpError> {
    let Some(directory) = deps.directory else {
        return Err(OfframpError::configuration(
            "all_licensed_users needs Microsoft 365 (MS_CLIENT_ID and its secret); nothing was changed",
        ));
    };
    let psa = deps.psa.kind().to_string();
    let tenant = org_settings::resolve_one(deps.settings, &psa, client_id, M365_TENANT).await?.ok_or_else(|| {
        OfframpError::invalid_input(format!(
            "all_licensed_users: client {client_id} has no {M365_TENANT} setting; nothing was changed"
        ))
    })?;
    let users = directory.licensed_users(&tenant).await.map_err(|e| listing_error(&tenant, e))?;
    let mut leavers: Vec<String> = users
        .into_iter()
        .filter(|u| u.enabled && !u.user_principal_name.is_empty())
        .map(|u| u.user_principal_name)
        .collect();
    leavers.sort();
    leavers.dedup();
    Ok(leavers)
}

fn listing_error(tenant: &str, error: DirectoryError) -> OfframpError {
    let code = match &error {
        DirectoryError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DirectoryError::Configuration { .. } => ErrorCode::ConfigurationError,
        DirectoryError::Throttled { .. } => ErrorCode::RequestBudgetExhausted,
        _ => ErrorCode::DirectoryConnectionError,
    };
    OfframpError::new(code, format!("listing the licensed users of tenant {tenant}: {error}; nothing was changed"))
}
