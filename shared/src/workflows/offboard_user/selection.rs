//! Which actions a run takes, from the request's options and the client's defaults
//! (docs/workflows.md#003-inputs), and the client's settings a run reads once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{OffboardUserDeps, OffboardUserRequest};
use crate::domain::{IdentityMode, OffboardAction};
use crate::error::{ErrorCode, OfframpError};
use crate::workflows::input::{self, TextField};
use crate::workflows::org_settings;

/// The literal trustee or forwarding target that means "the leaver's manager" (read in the
/// snapshot): a client default can name no person.
pub const MANAGER: &str = "manager";
/// Most people one run grants mailbox permissions to.
const MAX_TRUSTEES: usize = 20;
/// Exchange's limit on an automatic reply is far larger; a ticket note must stay readable.
const AUTO_REPLY: TextField = TextField::new("out_of_office", 4000);

/// The seed's form: one option per action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionOptions {
    #[serde(default)]
    pub revoke_sessions: bool,
    /// A random strong password, never logged nor reported.
    #[serde(default)]
    pub reset_password: bool,
    /// Keep the new password in the secret vault (Secrets Manager) for the MSP.
    #[serde(default)]
    pub store_password: bool,
    #[serde(default)]
    pub disable_account: bool,
    /// Exchange mobile device partnerships.
    #[serde(default)]
    pub remove_mobile_devices: bool,
    /// Intune retire of the leaver's managed devices.
    #[serde(default)]
    pub retire_devices: bool,
    #[serde(default)]
    pub convert_to_shared: bool,
    /// FullAccess on the mailbox for these users (`manager`: the leaver's manager).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_full_access: Vec<String>,
    /// Whether the mailbox opens by itself in the trustees' Outlook.
    #[serde(default = "yes")]
    pub full_access_automapping: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_send_as: Vec<String>,
    #[serde(default)]
    pub hide_from_gal: bool,
    /// Forward mail to this address (`manager`: the leaver's manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to: Option<String>,
    /// Keep a copy in the mailbox as well.
    #[serde(default)]
    pub forward_keep_copy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_office: Option<OutOfOffice>,
    #[serde(default)]
    pub remove_groups: bool,
    /// Memberships kept when removing groups: group ids or display names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_groups: Vec<String>,
    /// Add the leaver to the client's leaver group (`user_offboarding_leaver_group`).
    #[serde(default)]
    pub add_to_leaver_group: bool,
    /// Make the manager an owner of groups the leaver owns alone.
    #[serde(default)]
    pub transfer_ownership: bool,
    #[serde(default)]
    pub clear_employee_id: bool,
    #[serde(default)]
    pub clear_manager: bool,
    #[serde(default)]
    pub disable_psa_contact: bool,
    #[serde(default)]
    pub remove_licences: bool,
    #[serde(default)]
    pub notify_manager: bool,
    /// On-premises AD: move the account to the client's disabled users OU
    /// (`ad_disabled_ou`, default `AD_DISABLED_OU`), last.
    #[serde(default)]
    pub move_to_disabled_ou: bool,
    /// The disabled users OU is inside Entra Connect's sync scope. Without it a synced
    /// leaver's move is refused together with the shared mailbox conversion: moving out of
    /// scope deletes the cloud user and its mailbox at the next sync
    /// (docs/vendors/active-directory.md#move).
    #[serde(default)]
    pub disabled_ou_in_sync_scope: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfOffice {
    pub internal: String,
    /// Default: the internal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

impl ActionOptions {
    /// The shape of the options, before anything is read.
    pub(super) fn check(&self) -> Result<(), OfframpError> {
        if self.grant_full_access.len() + self.grant_send_as.len() > MAX_TRUSTEES {
            return Err(OfframpError::invalid_input(format!("at most {MAX_TRUSTEES} mailbox permissions per run")));
        }
        for trustee in self.grant_full_access.iter().chain(&self.grant_send_as).chain(&self.forward_to) {
            if trustee != MANAGER && !org_settings::looks_like_email(trustee) {
                return Err(OfframpError::invalid_input(format!(
                    "'{trustee}' is neither an e-mail address nor 'manager' (mailbox permissions and forwarding)"
                )));
            }
        }
        if let Some(reply) = &self.out_of_office {
            input::text(AUTO_REPLY, Some(&reply.internal))?
                .ok_or_else(|| OfframpError::invalid_input("out_of_office.internal is empty"))?;
            input::text(AUTO_REPLY, reply.external.as_deref())?;
        }
        for group in &self.keep_groups {
            input::text(TextField::new("keep_groups[]", 256), Some(group))?;
        }
        if self.store_password && !self.reset_password {
            return Err(OfframpError::invalid_input("store_password keeps the new password: it needs reset_password"));
        }
        Ok(())
    }

    /// Turn on the actions a client's defaults name; parameterised ones act for the manager.
    fn add_defaults(&mut self, defaults: &[OffboardAction]) {
        for action in defaults {
            match action {
                OffboardAction::RevokeSessions => self.revoke_sessions = true,
                OffboardAction::ResetPassword => self.reset_password = true,
                OffboardAction::DisableAccount => self.disable_account = true,
                OffboardAction::RemoveMobileDevices => self.remove_mobile_devices = true,
                OffboardAction::RetireDevices => self.retire_devices = true,
                OffboardAction::ConvertToShared => self.convert_to_shared = true,
                OffboardAction::GrantFullAccess if self.grant_full_access.is_empty() => {
                    self.grant_full_access.push(MANAGER.into())
                }
                OffboardAction::GrantSendAs if self.grant_send_as.is_empty() => self.grant_send_as.push(MANAGER.into()),
                OffboardAction::HideFromGal => self.hide_from_gal = true,
                OffboardAction::ForwardMail => {
                    self.forward_to.get_or_insert_with(|| MANAGER.into());
                }
                OffboardAction::RemoveGroups => self.remove_groups = true,
                OffboardAction::AddToLeaverGroup => self.add_to_leaver_group = true,
                OffboardAction::TransferOwnership => self.transfer_ownership = true,
                OffboardAction::ClearEmployeeId => self.clear_employee_id = true,
                OffboardAction::ClearManager => self.clear_manager = true,
                OffboardAction::DisablePsaContact => self.disable_psa_contact = true,
                OffboardAction::RemoveLicences => self.remove_licences = true,
                OffboardAction::NotifyManager => self.notify_manager = true,
                OffboardAction::MoveToDisabledOu => self.move_to_disabled_ou = true,
                OffboardAction::GrantFullAccess | OffboardAction::GrantSendAs | OffboardAction::OutOfOffice => {}
            }
        }
    }

    /// Whether any action is selected.
    pub fn any(&self) -> bool {
        let nothing = ActionOptions {
            full_access_automapping: self.full_access_automapping,
            disabled_ou_in_sync_scope: self.disabled_ou_in_sync_scope,
            ..Default::default()
        };
        *self != nothing
    }
}

/// The client as a run sees it: its PSA company, its tenant and its settings.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub client_id: String,
    pub company_name: String,
    /// The Microsoft 365 tenant; for a client without one whose users live in on-premises
    /// AD, the AD domain (then `has_tenant` is false and Entra ID is never asked).
    pub tenant: String,
    pub has_tenant: bool,
    /// `user_offboarding_identity_mode`: `None` detects it.
    pub identity_mode: Option<IdentityMode>,
    /// `user_offboarding_ad_pairing`: `mail`, else the UPN.
    pub pair_by_mail: bool,
    /// `ad_disabled_ou`, else the AD adapter's `AD_DISABLED_OU`.
    pub disabled_ou: Option<String>,
    pub default_actions: Vec<OffboardAction>,
    pub ticket_board: Option<String>,
    pub recipients: Vec<String>,
    pub leaver_group: Option<String>,
    /// key → where its value came from (recorded in the operation).
    pub sources: BTreeMap<String, String>,
}

/// The client's company and settings; the tenant from the request, else the client's setting.
pub(super) async fn client_settings(
    deps: &OffboardUserDeps<'_>,
    client_id: &str,
    tenant: Option<&str>,
) -> Result<ClientSettings, OfframpError> {
    let psa = deps.psa.kind().as_str();
    let company = deps.psa.company_by_id(client_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::ClientNotFound, format!("no {psa} company has id {}", client_id))
    })?;
    let raw = org_settings::resolve_raw(deps.settings, psa, client_id).await?;
    let get = |key: &str| -> Result<Option<String>, OfframpError> {
        let Some((Some(value), _)) = raw.get(key) else { return Ok(None) };
        org_settings::validate(key, value).map(Some)
    };
    let onprem_domain = deps.onprem.map(|d| d.domain().to_string());
    let (tenant, has_tenant) = match (tenant, get(org_settings::M365_TENANT)?, onprem_domain) {
        (Some(tenant), _, _) => (tenant.to_string(), true),
        (None, Some(tenant), _) => (tenant, true),
        (None, None, Some(domain)) => (domain, false),
        (None, None, None) => {
            return Err(OfframpError::invalid_input(format!(
                "no tenant: give tenant, or set {} for client {}",
                org_settings::M365_TENANT,
                client_id
            )));
        }
    };
    let identity_mode = get(org_settings::USER_OFFBOARDING_IDENTITY_MODE)?.and_then(|m| m.parse().ok());
    let disabled_ou =
        get(org_settings::AD_DISABLED_OU)?.or_else(|| deps.onprem.and_then(|d| d.disabled_ou().map(str::to_string)));
    let actions = get(org_settings::USER_OFFBOARDING_ACTIONS)?.unwrap_or_default();
    let recipients = get(org_settings::USER_OFFBOARDING_RECIPIENTS)?.unwrap_or_default();
    Ok(ClientSettings {
        client_id: company.id.clone(),
        company_name: company.name,
        tenant,
        has_tenant,
        identity_mode,
        pair_by_mail: get(org_settings::USER_OFFBOARDING_AD_PAIRING)?.as_deref() == Some("mail"),
        disabled_ou,
        default_actions: org_settings::offboard_actions(&actions).unwrap_or_default(),
        ticket_board: get(org_settings::USER_OFFBOARDING_TICKET_BOARD)?,
        recipients: recipients.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect(),
        leaver_group: get(org_settings::USER_OFFBOARDING_LEAVER_GROUP)?,
        sources: raw.into_iter().map(|(key, (_, source))| (key, source)).collect(),
    })
}

/// The actions of this run: the request's, plus the client's defaults when asked.
pub(super) fn select(
    request: &OffboardUserRequest,
    client: &ClientSettings,
    has_vault: bool,
) -> Result<ActionOptions, OfframpError> {
    let mut actions = request.actions.clone();
    if request.use_client_defaults {
        let defaults: Vec<OffboardAction> =
            client.default_actions.iter().copied().filter(|a| !request.skip_default_actions.contains(a)).collect();
        actions.add_defaults(&defaults);
    }
    if !actions.any() {
        return Err(OfframpError::invalid_input(
            "no action selected: choose actions, or use the client's defaults (use_client_defaults, CLI --all)",
        ));
    }
    if actions.store_password && !has_vault {
        return Err(OfframpError::new(
            ErrorCode::ConfigurationError,
            "store_password needs a secret vault (AWS Secrets Manager, deployed); none is configured here. Nothing \
             was changed",
        ));
    }
    if actions.add_to_leaver_group && client.leaver_group.is_none() {
        return Err(OfframpError::invalid_input(format!(
            "add_to_leaver_group needs the client's {} setting (the group's object id); nothing was changed",
            org_settings::USER_OFFBOARDING_LEAVER_GROUP
        )));
    }
    Ok(actions)
}
