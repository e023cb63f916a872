//! Where the leaver's identity lives (docs/workflows.md#003-identity-modes), decided before
//! anything changes: the request's `directory`, else the client's
//! `user_offboarding_identity_mode`, else detected from Entra ID (`onPremisesSyncEnabled`).
//! In the modes with an AD account the account is found and read here too: the user, the
//! groups it is a direct member of, its manager, and whether the schema can hide it from
//! the address lists.

use super::OffboardUserDeps;
use super::failures::read_error;
use super::selection::{ActionOptions, ClientSettings};
use crate::domain::IdentityMode;
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AdGroup, AdUser, DirectoryUser, LeaverState, OnPremDirectory, OnPremises};

/// The attribute that hides an AD-mastered mailbox (docs/vendors/active-directory.md#hide-from-gal).
pub(crate) const HIDE_ATTRIBUTE: &str = "msExchHideFromAddressLists";

/// The leaver's AD account as read before the run.
#[derive(Debug, Clone)]
pub(crate) struct OnPremLeaver {
    pub user: AdUser,
    pub groups: Vec<AdGroup>,
    pub manager: Option<AdUser>,
    /// Whether the schema has [`HIDE_ATTRIBUTE`].
    pub can_hide: bool,
}

/// The mode a run works in, and why.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub mode: IdentityMode,
    /// Said in the report and the trail: "request", "client setting", "detected: …".
    pub decided_by: String,
    /// The request named the mode: nothing else is tried.
    pub from_request: bool,
}

/// Who asked for which mode: the request wins over the client's setting.
pub(crate) fn requested(request: Option<IdentityMode>, client: &ClientSettings) -> Option<Identity> {
    let asked = |mode, decided_by: &str, from_request| Identity { mode, decided_by: decided_by.into(), from_request };
    match (request, client.identity_mode) {
        (Some(mode), _) => Some(asked(mode, "request", true)),
        (None, Some(mode)) => Some(asked(mode, "client setting user_offboarding_identity_mode", false)),
        (None, None) if !client.has_tenant => {
            Some(asked(IdentityMode::OnPrem, "the client has no Microsoft 365 tenant, only on-premises AD", false))
        }
        (None, None) => None,
    }
}

/// The mode when nothing asked for one: a synced user is hybrid synced when AD is
/// configured here; everything else is cloud.
pub(crate) fn detected(cloud: &LeaverState, has_onprem: bool) -> Identity {
    if cloud.user.is_synced() && has_onprem {
        return Identity {
            mode: IdentityMode::HybridSynced,
            decided_by: "detected: the user is synced from on-premises AD (onPremisesSyncEnabled)".into(),
            from_request: false,
        };
    }
    let decided_by = if cloud.user.is_synced() {
        "detected: synced from AD, but no AD is configured here (AD_LDAP_URL): AD-mastered attributes are skipped"
    } else {
        "detected: a cloud-only user"
    };
    Identity { mode: IdentityMode::Cloud, decided_by: decided_by.into(), from_request: false }
}

/// The AD port, or the error that refuses a mode needing it.
pub(crate) fn onprem<'a>(
    deps: &OffboardUserDeps<'a>,
    mode: IdentityMode,
) -> Result<&'a dyn OnPremDirectory, OfframpError> {
    deps.onprem.ok_or_else(|| {
        OfframpError::new(
            ErrorCode::ConfigurationError,
            format!(
                "identity mode {mode} needs on-premises AD, which is not configured here (AD_LDAP_URL, AD_BIND_DN, \
                 AD_BIND_PASSWORD, AD_BASE_DN); nothing was changed"
            ),
        )
    })
}

/// How the AD account is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountKey {
    /// A `sAMAccountName`, a user principal name or a DN.
    Name(String),
    /// An e-mail address (`user_offboarding_ad_pairing = mail`).
    Mail(String),
}

impl std::fmt::Display for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountKey::Name(name) => f.write_str(name),
            AccountKey::Mail(mail) => write!(f, "with mail {mail}"),
        }
    }
}

/// How the AD account is named, by mode: the request's `onprem_user` first; a synced user's
/// `onPremisesSamAccountName`; an unsynced pair's UPN or mail (`user_offboarding_ad_pairing`);
/// on-premises only, the request's `user`. `None`: pairing by mail a user without one.
pub(crate) fn account_key(
    mode: IdentityMode,
    explicit: Option<&str>,
    user: &str,
    cloud: Option<&DirectoryUser>,
    pair_by_mail: bool,
) -> Option<AccountKey> {
    if let Some(explicit) = explicit {
        return Some(AccountKey::Name(explicit.to_string()));
    }
    let Some(cloud) = cloud.filter(|_| mode != IdentityMode::OnPrem) else {
        return Some(AccountKey::Name(user.to_string()));
    };
    match mode {
        IdentityMode::HybridSynced => {
            let synced = cloud.on_premises.as_ref().and_then(|o| o.sam_account_name.clone());
            Some(AccountKey::Name(synced.unwrap_or_else(|| cloud.user_principal_name.clone())))
        }
        _ if pair_by_mail => cloud.mail.clone().map(AccountKey::Mail),
        _ => Some(AccountKey::Name(cloud.user_principal_name.clone())),
    }
}

/// The AD account and what surrounds it; `None` when AD has no such account.
pub(crate) async fn read_onprem(
    ad: &dyn OnPremDirectory,
    key: &AccountKey,
) -> Result<Option<OnPremLeaver>, OfframpError> {
    let found = match key {
        AccountKey::Name(name) => ad.find_user(name).await,
        AccountKey::Mail(mail) => ad.find_user_by_mail(mail).await,
    };
    let Some(user) = found.map_err(|e| read_error("the AD account", e))? else {
        return Ok(None);
    };
    let groups = futures::future::try_join_all(user.member_of.iter().map(|dn| async move {
        let found = ad.group(dn).await?;
        Ok(found.unwrap_or_else(|| AdGroup { dn: dn.clone(), name: first_value(dn), built_in: false }))
    }));
    let manager = async {
        match &user.manager {
            Some(dn) => ad.find_user(dn).await,
            None => Ok(None),
        }
    };
    let can_hide = ad.schema_has_attribute(HIDE_ATTRIBUTE);
    let (groups, manager, can_hide) =
        futures::try_join!(groups, manager, can_hide).map_err(|e| read_error("the AD account's groups", e))?;
    Ok(Some(OnPremLeaver { user, groups, manager, can_hide }))
}

/// The value of a DN's first RDN (`CN=Sales,OU=…` → `Sales`).
pub(crate) fn first_value(dn: &str) -> String {
    let rdn = dn.len() - crate::ports::parent_dn(dn).len();
    let rdn = dn[..rdn].trim_end_matches(',');
    rdn.split_once('=').map(|(_, v)| v.replace('\\', "")).unwrap_or_else(|| rdn.to_string())
}

/// An AD account as the rest of the workflow sees a user (on-premises only: the report,
/// the ticket, the PSA contact and the manager's notification work as for a cloud user).
pub(crate) fn as_directory_user(user: &AdUser, domain: &str) -> DirectoryUser {
    DirectoryUser {
        id: user.object_guid.clone(),
        user_principal_name: user
            .user_principal_name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", user.sam_account_name, domain)),
        display_name: user.display_name.clone().unwrap_or_else(|| user.sam_account_name.clone()),
        mail: user.mail.clone(),
        enabled: user.enabled(),
        employee_id: user.employee_id.clone(),
        on_premises: Some(OnPremises {
            sync_enabled: false,
            sam_account_name: Some(user.sam_account_name.clone()),
            distinguished_name: Some(user.dn.clone()),
            immutable_id: None,
        }),
    }
}

/// The snapshot of an on-premises-only leaver: no groups, licences nor devices in a cloud.
pub(crate) fn onprem_state(onprem: &OnPremLeaver, domain: &str) -> LeaverState {
    LeaverState {
        user: as_directory_user(&onprem.user, domain),
        manager: onprem.manager.as_ref().map(|m| as_directory_user(m, domain)),
        groups: Vec::new(),
        licences: Vec::new(),
        owned_groups: Vec::new(),
        devices: Vec::new(),
    }
}

/// Refusals that depend on the mode, before anything changes.
pub(crate) fn check_actions(
    mode: IdentityMode,
    actions: &ActionOptions,
    client: &ClientSettings,
) -> Result<(), OfframpError> {
    if !actions.move_to_disabled_ou {
        return Ok(());
    }
    if !mode.has_onprem() {
        return Err(OfframpError::invalid_input(format!(
            "move_to_disabled_ou moves an AD account; identity mode {mode} has none. Nothing was changed"
        )));
    }
    if client.disabled_ou.is_none() {
        return Err(OfframpError::invalid_input(
            "move_to_disabled_ou needs the OU: set ad_disabled_ou for the client, or AD_DISABLED_OU. Nothing was changed",
        ));
    }
    // Moving a synced account out of sync scope deletes its cloud user and mailbox at the
    // next sync (docs/vendors/active-directory.md#move): not together with a conversion to
    // shared unless the OU is known to be synced.
    if mode == IdentityMode::HybridSynced && actions.convert_to_shared && !actions.disabled_ou_in_sync_scope {
        return Err(OfframpError::invalid_input(
            "move_to_disabled_ou with convert_to_shared on a synced user: if the disabled users OU is outside Entra \
             Connect's sync scope, the next sync deletes the cloud user and the shared mailbox with it. Say \
             disabled_ou_in_sync_scope (CLI --disabled-ou-in-sync-scope) if it is inside, or leave one of the two \
             out. Nothing was changed",
        ));
    }
    Ok(())
}
