//! Everything read before anything changes (the pre-change snapshot): the user and what
//! surrounds them in the directory (one `leaver` call: a `$batch` on Graph), the mailbox
//! and, when the run touches them, its automatic replies and mobile devices, and the
//! leaver's PSA contact.

use super::failures::read_error;
use super::identity::{self, Identity, OnPremLeaver};
use super::selection::{ActionOptions, ClientSettings};
use super::{OffboardUserDeps, Validated};
use crate::domain::{Contact, IdentityMode};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AutoReply, LeaverState, MailboxInfo, MobileDevice};

/// The leaver as found before the run.
#[derive(Debug, Clone)]
pub(crate) struct Leaver {
    pub identity: Identity,
    /// The Entra ID user; for an on-premises-only leaver, the AD account as a user.
    pub state: LeaverState,
    /// The AD account, in the modes that have one.
    pub onprem: Option<OnPremLeaver>,
    /// `None`: the user has no Exchange Online mailbox.
    pub mailbox: Option<MailboxInfo>,
    pub auto_reply: Option<AutoReply>,
    pub mobile_devices: Vec<MobileDevice>,
    /// The PSA contacts of the client with the leaver's address (normally one).
    pub contacts: Vec<Contact>,
}

pub(super) async fn read(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    actions: &ActionOptions,
    v: &Validated,
    mode: Option<IdentityMode>,
) -> Result<Leaver, OfframpError> {
    let (identity, state, onprem) = directories(deps, client, v, mode, actions.move_to_disabled_ou).await?;
    identity::check_actions(identity.mode, actions, client)?;
    let tenant = client.tenant.as_str();
    let upn = state.user.user_principal_name.clone();
    let mailbox = if identity.mode.has_cloud() {
        deps.mailboxes.mailbox(tenant, &upn).await.map_err(|e| read_error("the mailbox", e))?
    } else {
        None
    };
    let has_mailbox = mailbox.is_some();
    let auto_reply = async {
        if !(has_mailbox && actions.out_of_office.is_some()) {
            return Ok(None);
        }
        deps.mailboxes.auto_reply(tenant, &upn).await.map(Some)
    };
    let mobile = async {
        if !(has_mailbox && actions.remove_mobile_devices) {
            return Ok(Vec::new());
        }
        deps.mailboxes.mobile_devices(tenant, &upn).await
    };
    let (auto_reply, mobile_devices) =
        futures::try_join!(auto_reply, mobile).map_err(|e| read_error("the mailbox settings", e))?;
    let contacts = if actions.disable_psa_contact { psa_contacts(deps, client, &state).await? } else { Vec::new() };
    Ok(Leaver { identity, state, onprem, mailbox, auto_reply, mobile_devices, contacts })
}

/// The identity mode, the leaver in Entra ID (or its AD account as a user, on-premises
/// only) and the AD account in the modes that have one.
async fn directories(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    v: &Validated,
    mode: Option<IdentityMode>,
    moves: bool,
) -> Result<(Identity, LeaverState, Option<OnPremLeaver>), OfframpError> {
    let requested = identity::requested(mode, client);
    // On-premises only by the request: Entra ID is not asked. By the client's setting it
    // is, for an e-mail-only user of a client whose people live in AD.
    let cloud = match &requested {
        Some(asked) if asked.mode == IdentityMode::OnPrem && asked.from_request => None,
        // Asked only to find an e-mail-only user: a deployment without Microsoft 365 has none.
        Some(asked) if asked.mode == IdentityMode::OnPrem => match cloud_user(deps, client, &v.user).await {
            Err(e) if e.code() == ErrorCode::ConfigurationError => None,
            other => other?,
        },
        _ => cloud_user(deps, client, &v.user).await?,
    };
    let identity = match (requested, &cloud) {
        (Some(asked), _) => asked,
        (None, Some(cloud)) => identity::detected(cloud, deps.onprem.is_some()),
        // Not in Entra ID, nothing asked: an on-premises-only user when AD has it.
        (None, None) if deps.onprem.is_some() => {
            Identity { mode: IdentityMode::OnPrem, decided_by: "detected: not in Entra ID".into(), from_request: false }
        }
        (None, None) => return Err(user_not_found(client, &v.user)),
    };
    if !identity.mode.has_onprem() {
        let state = cloud.ok_or_else(|| user_not_found(client, &v.user))?;
        return Ok((identity, state, None));
    }
    onprem_side(deps, client, v, identity, cloud, moves).await
}

/// The AD account of a mode that has one. A client whose users live in AD may still have
/// an e-mail-only user in the cloud: found in Entra ID but not in AD, by the client's
/// setting rather than the request, it is offboarded as a cloud user.
async fn onprem_side(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    v: &Validated,
    identity: Identity,
    cloud: Option<LeaverState>,
    moves: bool,
) -> Result<(Identity, LeaverState, Option<OnPremLeaver>), OfframpError> {
    let mode = identity.mode;
    let ad = identity::onprem(deps, mode)?;
    if mode.has_cloud() && cloud.is_none() && identity.from_request {
        return Err(user_not_found(client, &v.user));
    }
    let account = identity::account_key(
        mode,
        v.onprem_user.as_deref(),
        &v.user,
        cloud.as_ref().map(|c| &c.user),
        client.pair_by_mail,
    )
    .ok_or_else(|| {
        OfframpError::invalid_input("the cloud user has no mail to pair its AD account by; give onprem_user")
    })?;
    let onprem = identity::read_onprem(ad, &account).await?;
    if let (Some(_), Some(ou), true) = (&onprem, client.disabled_ou.as_deref(), moves) {
        check_ou(ad, ou).await?;
    }
    match (onprem, cloud) {
        (Some(onprem), Some(cloud)) if mode.has_cloud() => Ok((identity, cloud, Some(onprem))),
        (Some(onprem), None) if mode.has_cloud() => {
            let decided_by = format!("{}; not in Entra ID: on-premises only", identity.decided_by);
            let identity = Identity { mode: IdentityMode::OnPrem, decided_by, from_request: false };
            Ok((identity, identity::onprem_state(&onprem, ad.domain()), Some(onprem)))
        }
        (Some(onprem), _) => Ok((identity, identity::onprem_state(&onprem, ad.domain()), Some(onprem))),
        (None, Some(cloud)) if !identity.from_request && v.onprem_user.is_none() => {
            let decided_by = format!("{}; an e-mail-only user: in Entra ID, not in AD", identity.decided_by);
            Ok((Identity { mode: IdentityMode::Cloud, decided_by, from_request: false }, cloud, None))
        }
        (None, _) => Err(OfframpError::new(
            ErrorCode::UserNotFound,
            format!("AD ({}) has no account '{account}'; nothing was changed", ad.domain()),
        )),
    }
}

/// The disabled users OU must exist before anything changes: a move that fails last would
/// leave a half-offboarded account for a typo.
async fn check_ou(ad: &dyn crate::ports::OnPremDirectory, ou: &str) -> Result<(), OfframpError> {
    let exists = ad.entry_exists(ou).await.map_err(|e| read_error("the disabled users OU", e))?;
    if exists {
        return Ok(());
    }
    Err(OfframpError::invalid_input(format!(
        "the disabled users OU '{ou}' does not exist in AD ({}): fix ad_disabled_ou (or AD_DISABLED_OU); nothing was \
         changed",
        ad.domain()
    )))
}

/// The leaver in Entra ID (`None`: not there); never asked for a client without a tenant.
async fn cloud_user(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    user: &str,
) -> Result<Option<LeaverState>, OfframpError> {
    if !client.has_tenant {
        return Ok(None);
    }
    if crate::workflows::input::directory_user("user", Some(user)).is_err() {
        // An AD account name: Entra ID knows users by UPN or object id only.
        return Ok(None);
    }
    deps.directory.leaver(&client.tenant, user).await.map_err(|e| read_error("the user", e))
}

fn user_not_found(client: &ClientSettings, user: &str) -> OfframpError {
    OfframpError::new(
        ErrorCode::UserNotFound,
        format!("tenant {} has no user '{user}'; nothing was changed", client.tenant),
    )
}

/// The client's contacts whose address is the leaver's mail or UPN (case-insensitive).
async fn psa_contacts(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    state: &LeaverState,
) -> Result<Vec<Contact>, OfframpError> {
    let addresses: Vec<String> = [state.user.mail.as_deref(), Some(state.user.user_principal_name.as_str())]
        .into_iter()
        .flatten()
        .map(str::to_ascii_lowercase)
        .collect();
    let contacts = deps.psa.list_contacts(&client.client_id).await?;
    Ok(contacts
        .into_iter()
        .filter(|c| c.email.as_deref().is_some_and(|e| addresses.contains(&e.trim().to_ascii_lowercase())))
        .collect())
}
