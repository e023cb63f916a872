//! Organization settings: workflow 001's settings (docs/workflows.md#001-settings) and Offramp's
//! own per-client knobs, with global defaults.
//!
//! A value is looked up for the client first, then for [`GLOBAL_SCOPE`], then the built-in
//! default applies. The resolved set (with where each value came from) is read once per run
//! and recorded in the operation, so a run can always be explained later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{GLOBAL_SCOPE, TicketOwner};
use crate::error::OfframpError;
use crate::ports::SettingsStore;

/// PSA board (ConnectWise board id, Autotask queue id, HaloPSA team name) for the ticket a
/// run opens when it is given no `ticket_id`.
pub const TICKET_BOARD: &str = "psa_contact_deactivation_ticket_board";
/// Keep the primary contact active (`true`/`false`); the request's `preserve_primary` wins.
pub const PRESERVE_PRIMARY: &str = "psa_contact_preserve_primary";
/// Who is told, besides the requester: comma-separated e-mail addresses.
pub const NOTIFICATION_RECIPIENTS: &str = "psa_contact_notification_recipients";
/// New contact of an open ticket whose contact is deactivated: `primary` (the preserved
/// primary contact, else none), `none`, or a contact id.
pub const TICKET_CONTACT: &str = "psa_contact_ticket_contact";
/// New owner of such tickets: a member / resource / agent id (Autotask: `resource:role`).
pub const TICKET_OWNER: &str = "psa_contact_ticket_owner";
/// New board / queue / team of such tickets.
pub const TICKET_QUEUE: &str = "psa_contact_ticket_queue";
/// New contact of a configuration whose contact is deactivated: `primary`, `none`, or a contact id.
pub const CONFIGURATION_CONTACT: &str = "psa_contact_configuration_contact";
/// Blast-radius guard: most contacts one run may deactivate without an override.
pub const GUARD_MAX_CONTACTS: &str = "offramp_guard_max_contacts";
/// Blast-radius guard: largest share (percent) of a company's contacts one run may deactivate.
pub const GUARD_MAX_CONTACT_SHARE: &str = "offramp_guard_max_contact_share";
/// Blast-radius guard: most configurations one run may deactivate without an override.
pub const GUARD_MAX_CONFIGURATIONS: &str = "offramp_guard_max_configurations";

/// User offboarding (docs/workflows.md#003-settings): the client's Microsoft 365 tenant
/// (its id or a domain).
pub const M365_TENANT: &str = "m365_tenant_id";
/// The actions `--all` (`use_client_defaults`) runs: comma-separated action names.
pub const USER_OFFBOARDING_ACTIONS: &str = "user_offboarding_default_actions";
/// Board / queue / team of the ticket a user offboarding opens when given no `ticket_id`.
pub const USER_OFFBOARDING_TICKET_BOARD: &str = "user_offboarding_ticket_board";
/// Who is told about a user offboarding besides the leaver's manager.
pub const USER_OFFBOARDING_RECIPIENTS: &str = "user_offboarding_notification_recipients";
/// The group a leaver is added to (e.g. a Conditional Access block group): its object id.
pub const USER_OFFBOARDING_LEAVER_GROUP: &str = "user_offboarding_leaver_group";
/// Where the client's users live (docs/workflows.md#003-identity-modes): `cloud`, `onprem`,
/// `hybrid-synced` or `hybrid-unsynced`; unset: detected from Entra ID.
pub const USER_OFFBOARDING_IDENTITY_MODE: &str = "user_offboarding_identity_mode";
/// How a cloud user is paired with its AD account when they are not synced: `upn` or `mail`.
pub const USER_OFFBOARDING_AD_PAIRING: &str = "user_offboarding_ad_pairing";
/// The OU leavers' AD accounts are moved to (`move_to_disabled_ou`); default `AD_DISABLED_OU`.
pub const AD_DISABLED_OU: &str = "ad_disabled_ou";

/// PSA webhooks (docs/architecture.md#psa-webhooks): the workflows a PSA event saying the
/// client became offboarded starts, comma-separated (`deactivate-contacts`,
/// `deactivate-configs`), or `none`. The default is seed 000's event-driven trigger.
pub const WEBHOOK_WORKFLOWS: &str = "webhook_offboarding_workflows";
/// Whether such an event also deletes the client's IT Glue organization (seed 002's
/// event-driven trigger): `true` is the deletion's confirmation, recorded with its source.
pub const WEBHOOK_ITGLUE_DELETION: &str = "webhook_itglue_deletion";
/// The workflows [`WEBHOOK_WORKFLOWS`] may name.
pub const WEBHOOK_WORKFLOW_NAMES: &[crate::domain::Workflow] =
    &[crate::domain::Workflow::DeactivateContacts, crate::domain::Workflow::DeactivateConfigs];

/// The workflows of a [`WEBHOOK_WORKFLOWS`] value, in the chain's order (contacts before
/// configurations); `None` if a name is not one of [`WEBHOOK_WORKFLOW_NAMES`].
pub fn webhook_workflows(value: &str) -> Option<Vec<crate::domain::Workflow>> {
    let value = value.trim().to_ascii_lowercase();
    if value == "none" {
        return Some(Vec::new());
    }
    let mut named = Vec::new();
    for name in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let workflow = name.parse::<crate::domain::Workflow>().ok().filter(|w| WEBHOOK_WORKFLOW_NAMES.contains(w))?;
        named.push(workflow);
    }
    if named.is_empty() {
        return None;
    }
    Some(WEBHOOK_WORKFLOW_NAMES.iter().copied().filter(|w| named.contains(w)).collect())
}

/// Approvals (docs/architecture.md#approvals): who is asked to approve a client's
/// offboarding, comma-separated e-mail addresses; unset: `OFFRAMP_APPROVERS`.
pub const APPROVERS: &str = "approvers";
/// Whether the approver must be someone other than the requester (`true`/`false`); unset:
/// `OFFRAMP_APPROVER_MUST_DIFFER`.
pub const APPROVER_MUST_DIFFER: &str = "approval_approver_must_differ";

/// Workflow 002's policy on the linked PSA company (docs/workflows.md#002-psa-policy). Kept
/// under the [`ITGLUE_NAMESPACE`] instead of a PSA's: its scope is an IT Glue organization
/// id (or `global`). Unset everywhere, `OFFRAMP_ITGLUE_PSA_POLICY` applies.
pub const ITGLUE_PSA_POLICY: &str = "itglue_psa_policy";
/// Where keys starting with `itglue_` are stored: per IT Glue organization, not per PSA company.
pub const ITGLUE_NAMESPACE: &str = "itglue";

/// The namespace a key is stored under: [`ITGLUE_NAMESPACE`] for `itglue_` keys, else the PSA's.
pub fn namespace<'a>(key: &str, psa: &'a str) -> &'a str {
    if key.starts_with("itglue_") { ITGLUE_NAMESPACE } else { psa }
}

/// Whether a client offboarding (the chain) waits for an approval before changing anything.
pub const CHAIN_REQUIRE_APPROVAL: &str = "client_offboarding_require_approval";
/// Who is told a client offboarding finished.
pub const CHAIN_RECIPIENTS: &str = "client_offboarding_notification_recipients";

/// Every known key with its built-in default (`None`: unset) and what it holds.
pub const KEYS: &[(&str, Option<&str>, &str)] = &[
    (TICKET_BOARD, None, "board / queue / team for the summary ticket (PSA default when unset)"),
    (PRESERVE_PRIMARY, Some("false"), "true or false"),
    (NOTIFICATION_RECIPIENTS, None, "comma-separated e-mail addresses"),
    (TICKET_CONTACT, Some("primary"), "primary, none, or a contact id"),
    (TICKET_OWNER, None, "member / resource / agent id (Autotask resource:role)"),
    (TICKET_QUEUE, None, "board / queue / team"),
    (CONFIGURATION_CONTACT, Some("primary"), "primary, none, or a contact id"),
    (GUARD_MAX_CONTACTS, Some("200"), "a whole number"),
    (GUARD_MAX_CONTACT_SHARE, Some("100"), "a percentage, 1 to 100"),
    (GUARD_MAX_CONFIGURATIONS, Some("5000"), "a whole number"),
    (M365_TENANT, None, "Microsoft 365 tenant id (GUID) or domain"),
    (
        USER_OFFBOARDING_ACTIONS,
        Some(DEFAULT_USER_OFFBOARDING_ACTIONS),
        "comma-separated user offboarding actions (out_of_office needs its text and is never a default)",
    ),
    (USER_OFFBOARDING_TICKET_BOARD, None, "board / queue / team for a user offboarding ticket"),
    (USER_OFFBOARDING_RECIPIENTS, None, "comma-separated e-mail addresses"),
    (USER_OFFBOARDING_LEAVER_GROUP, None, "object id (GUID) of the group leavers are added to"),
    (USER_OFFBOARDING_IDENTITY_MODE, None, "cloud, onprem, hybrid-synced or hybrid-unsynced (unset: detected)"),
    (USER_OFFBOARDING_AD_PAIRING, Some("upn"), "upn or mail: how an unsynced cloud user finds its AD account"),
    (AD_DISABLED_OU, None, "distinguished name of the OU leavers' AD accounts are moved to"),
    (
        WEBHOOK_WORKFLOWS,
        Some("deactivate-configs"),
        "none, or comma-separated: deactivate-contacts, deactivate-configs (started when a PSA webhook says the client is offboarded)",
    ),
    (WEBHOOK_ITGLUE_DELETION, Some("false"), "true or false: such a webhook also deletes the IT Glue organization"),
    (CHAIN_REQUIRE_APPROVAL, Some("true"), "true or false: a client offboarding waits for an approval"),
    (CHAIN_RECIPIENTS, None, "comma-separated e-mail addresses told when a client offboarding ends"),
    (APPROVERS, None, "comma-separated e-mail addresses asked to approve an offboarding (unset: OFFRAMP_APPROVERS)"),
    (
        APPROVER_MUST_DIFFER,
        None,
        "true or false: the approver must not be the requester (unset: OFFRAMP_APPROVER_MUST_DIFFER)",
    ),
];

/// The actions a client's defaults run when none are configured: every action that needs
/// no parameter, except those that act on devices or write secrets.
pub const DEFAULT_USER_OFFBOARDING_ACTIONS: &str = "revoke_sessions,reset_password,disable_account,\
convert_to_shared,hide_from_gal,remove_mobile_devices,remove_groups,clear_employee_id,clear_manager,\
disable_psa_contact,remove_licences,notify_manager";

/// The action names of a `user_offboarding_default_actions` value; `None` if one is unknown
/// or needs a parameter no setting gives (`out_of_office`).
pub fn offboard_actions(value: &str) -> Option<Vec<crate::domain::OffboardAction>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|name| name.parse::<crate::domain::OffboardAction>().ok())
        .map(|action| action.filter(|a| *a != crate::domain::OffboardAction::OutOfOffice))
        .collect()
}

/// The keys of IT Glue organizations ([`ITGLUE_NAMESPACE`]), like [`KEYS`]: `CLIENT` is an
/// IT Glue organization id (or `global`).
pub const ITGLUE_KEYS: &[(&str, Option<&str>, &str)] = &[(
    ITGLUE_PSA_POLICY,
    None,
    "require_offboarded_psa_company, allow_unlinked or off (OFFRAMP_ITGLUE_PSA_POLICY when unset)",
)];

/// The keys stored under `namespace`: [`ITGLUE_KEYS`] for IT Glue, [`KEYS`] for a PSA.
fn keys_of(namespace: &str) -> &'static [(&'static str, Option<&'static str>, &'static str)] {
    if namespace == ITGLUE_NAMESPACE { ITGLUE_KEYS } else { KEYS }
}

fn known(key: &str) -> Option<&'static (&'static str, Option<&'static str>, &'static str)> {
    KEYS.iter().chain(ITGLUE_KEYS).find(|(k, _, _)| *k == key)
}

fn unknown(key: &str) -> OfframpError {
    let known: Vec<&str> = KEYS.iter().chain(ITGLUE_KEYS).map(|(k, _, _)| *k).collect();
    OfframpError::invalid_input(format!("unknown setting '{key}'; known: {}", known.join(", ")))
}

/// Where a contact reference in a related record goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "contact_id")]
pub enum ContactTarget {
    /// The preserved primary contact; none when the primary is not kept.
    Primary,
    None,
    Contact(String),
}

/// The resolved settings of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgSettings {
    pub ticket_board: Option<String>,
    pub preserve_primary: bool,
    pub notification_recipients: Vec<String>,
    pub ticket_contact: ContactTarget,
    pub ticket_owner: Option<TicketOwner>,
    pub ticket_queue: Option<String>,
    pub configuration_contact: ContactTarget,
    pub guard_max_contacts: u64,
    pub guard_max_contact_share: u64,
    pub guard_max_configurations: u64,
    /// key → where its value came from: `client`, `global` or `default`.
    pub sources: BTreeMap<String, String>,
}

fn invalid(key: &str, value: &str, expected: &str) -> OfframpError {
    OfframpError::invalid_input(format!("setting {key} = '{value}' is not valid: expected {expected}"))
}

fn is_email(value: &str) -> bool {
    let mut parts = value.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(local), Some(domain), None)
        if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            && !value.chars().any(|c| c.is_whitespace() || c == ',' || c == ';'))
}

fn is_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Check a value for `key` (unknown keys are refused), returning it normalised.
pub fn validate(key: &str, value: &str) -> Result<String, OfframpError> {
    let Some((_, _, expected)) = known(key) else { return Err(unknown(key)) };
    let value = value.trim();
    let ok = match key {
        PRESERVE_PRIMARY | WEBHOOK_ITGLUE_DELETION | CHAIN_REQUIRE_APPROVAL | APPROVER_MUST_DIFFER => {
            matches!(value.to_ascii_lowercase().as_str(), "true" | "false")
        }
        WEBHOOK_WORKFLOWS => webhook_workflows(value).is_some(),
        M365_TENANT => crate::workflows::input::tenant(M365_TENANT, Some(value)).is_ok(),
        USER_OFFBOARDING_ACTIONS => offboard_actions(value).is_some(),
        USER_OFFBOARDING_LEAVER_GROUP => crate::workflows::input::is_guid(value),
        USER_OFFBOARDING_IDENTITY_MODE => value.parse::<crate::domain::IdentityMode>().is_ok(),
        USER_OFFBOARDING_AD_PAIRING => matches!(value, "upn" | "mail"),
        AD_DISABLED_OU => crate::workflows::input::is_distinguished_name(value),
        NOTIFICATION_RECIPIENTS | USER_OFFBOARDING_RECIPIENTS | CHAIN_RECIPIENTS | APPROVERS => {
            value.split(',').map(str::trim).filter(|v| !v.is_empty()).all(is_email)
        }
        TICKET_CONTACT | CONFIGURATION_CONTACT => {
            matches!(value.to_ascii_lowercase().as_str(), "primary" | "none") || is_id(value)
        }
        TICKET_OWNER => {
            let mut parts = value.split(':');
            let (id, role) = (parts.next().unwrap_or_default(), parts.next());
            is_id(id) && role.is_none_or(is_id) && parts.next().is_none()
        }
        // Names that end up in tickets: the free-text rule every request field follows.
        TICKET_BOARD | TICKET_QUEUE | USER_OFFBOARDING_TICKET_BOARD => {
            crate::workflows::input::text(crate::workflows::input::SETTING_TEXT, Some(value)).is_ok_and(|v| v.is_some())
        }
        GUARD_MAX_CONTACTS | GUARD_MAX_CONFIGURATIONS => value.parse::<u64>().is_ok(),
        GUARD_MAX_CONTACT_SHARE => value.parse::<u64>().is_ok_and(|v| (1..=100).contains(&v)),
        ITGLUE_PSA_POLICY => value.parse::<crate::domain::ItGluePsaPolicy>().is_ok(),
        _ => false,
    };
    if ok {
        Ok(
            if matches!(
                key,
                PRESERVE_PRIMARY
                    | ITGLUE_PSA_POLICY
                    | M365_TENANT
                    | USER_OFFBOARDING_LEAVER_GROUP
                    | WEBHOOK_WORKFLOWS
                    | WEBHOOK_ITGLUE_DELETION
                    | CHAIN_REQUIRE_APPROVAL
            ) {
                value.to_ascii_lowercase()
            } else {
                value.to_string()
            },
        )
    } else {
        Err(invalid(key, value, expected))
    }
}

fn target(value: &str) -> ContactTarget {
    match value.to_ascii_lowercase().as_str() {
        "primary" => ContactTarget::Primary,
        "none" => ContactTarget::None,
        _ => ContactTarget::Contact(value.to_string()),
    }
}

/// Refuse a key Offramp does not know.
pub fn validate_key(key: &str) -> Result<(), OfframpError> {
    known(key).map(|_| ()).ok_or_else(|| unknown(key))
}

/// Every key's value for `scope` on `psa` and where it comes from (`client`, `global`,
/// `default`), without interpreting it.
pub async fn resolve_raw(
    store: &dyn SettingsStore,
    psa: &str,
    scope: &str,
) -> Result<BTreeMap<String, (Option<String>, String)>, OfframpError> {
    let client = if scope == GLOBAL_SCOPE { Vec::new() } else { store.list_settings(psa, scope).await? };
    let global = store.list_settings(psa, GLOBAL_SCOPE).await?;
    let mut resolved = BTreeMap::new();
    for (key, default, _) in keys_of(psa) {
        let from = |records: &[crate::domain::SettingRecord]| {
            records.iter().find(|r| r.key == *key).and_then(|r| r.value.clone())
        };
        // A client record with no value means "unset here": the global value applies again.
        let (value, source) = match (from(&client), from(&global)) {
            (Some(v), _) => (Some(v), "client"),
            (None, Some(v)) => (Some(v), "global"),
            (None, None) => (default.map(str::to_string), "default"),
        };
        resolved.insert(key.to_string(), (value, source.to_string()));
    }
    Ok(resolved)
}

/// Read every key for `client_id` on `psa`, falling back to the global scope and the defaults.
/// A stored value that no longer validates is an error: a run never guesses around a bad setting.
pub async fn resolve(store: &dyn SettingsStore, psa: &str, client_id: &str) -> Result<OrgSettings, OfframpError> {
    let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for (key, (value, source)) in resolve_raw(store, psa, client_id).await? {
        let value = value.map(|v| validate(&key, &v)).transpose()?;
        sources.insert(key.clone(), source);
        values.insert(key, value);
    }
    let get = |key: &str| values.get(key).cloned().flatten();
    let number = |key: &str| get(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or_default();
    Ok(OrgSettings {
        ticket_board: get(TICKET_BOARD),
        preserve_primary: get(PRESERVE_PRIMARY).as_deref() == Some("true"),
        notification_recipients: get(NOTIFICATION_RECIPIENTS)
            .map(|v| v.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
        ticket_contact: get(TICKET_CONTACT).map_or(ContactTarget::Primary, |v| target(&v)),
        ticket_owner: get(TICKET_OWNER).map(|v| {
            let mut parts = v.splitn(2, ':');
            TicketOwner { id: parts.next().unwrap_or_default().to_string(), role_id: parts.next().map(str::to_string) }
        }),
        ticket_queue: get(TICKET_QUEUE),
        configuration_contact: get(CONFIGURATION_CONTACT).map_or(ContactTarget::Primary, |v| target(&v)),
        guard_max_contacts: number(GUARD_MAX_CONTACTS),
        guard_max_contact_share: number(GUARD_MAX_CONTACT_SHARE),
        guard_max_configurations: number(GUARD_MAX_CONFIGURATIONS),
        sources,
    })
}

/// One key's value for `client_id` on `psa` (client, else global, else its default),
/// checked: a stored value that no longer validates is an error.
pub async fn resolve_one(
    store: &dyn SettingsStore,
    psa: &str,
    client_id: &str,
    key: &str,
) -> Result<Option<String>, OfframpError> {
    let resolved = resolve_raw(store, psa, client_id).await?;
    let value = resolved.get(key).and_then(|(value, _)| value.clone());
    value.map(|v| validate(key, &v)).transpose()
}

/// The configuration guard's limit for `client_id` on `psa` and where it comes from
/// (`client`, `global` or `default`), resolved like every other setting.
///
/// Only this key is read and checked: a configuration run must not fail on a contact
/// setting it never uses. A stored value that no longer validates is an error, never
/// replaced by the default, because the default (5,000) may be wider than the limit
/// somebody meant to set.
pub async fn guard_max_configurations(
    store: &dyn SettingsStore,
    psa: &str,
    client_id: &str,
) -> Result<(u64, String), OfframpError> {
    let resolved = resolve_raw(store, psa, client_id).await?;
    let (value, source) = resolved.get(GUARD_MAX_CONFIGURATIONS).cloned().unwrap_or_default();
    let default = KEYS.iter().find(|(k, _, _)| *k == GUARD_MAX_CONFIGURATIONS).and_then(|(_, d, _)| *d);
    let value = value.as_deref().or(default).unwrap_or_default();
    let limit = validate(GUARD_MAX_CONFIGURATIONS, value)?
        .parse::<u64>()
        .map_err(|_| invalid(GUARD_MAX_CONFIGURATIONS, value, "a whole number"))?;
    Ok((limit, source))
}

/// Workflow 002's PSA policy for IT Glue organization `org_id`: its own setting, else the
/// `global` one, else `configured` (`OFFRAMP_ITGLUE_PSA_POLICY`); with where it came from
/// (`organization`, `global`, `environment`). A stored value that does not parse is an error.
pub async fn itglue_psa_policy(
    store: &dyn SettingsStore,
    org_id: &str,
    configured: crate::domain::ItGluePsaPolicy,
) -> Result<(crate::domain::ItGluePsaPolicy, &'static str), OfframpError> {
    for (scope, source) in [(org_id, "organization"), (GLOBAL_SCOPE, "global")] {
        let record = store.get_setting(ITGLUE_NAMESPACE, scope, ITGLUE_PSA_POLICY).await?;
        if let Some(value) = record.and_then(|r| r.value) {
            let policy =
                value.parse().map_err(|_| invalid(ITGLUE_PSA_POLICY, &value, crate::domain::ItGluePsaPolicy::NAMES))?;
            return Ok((policy, source));
        }
    }
    Ok((configured, "environment"))
}

/// Whether `value` looks like an e-mail address (for requesters and recipients).
pub fn looks_like_email(value: &str) -> bool {
    is_email(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_per_key() {
        assert_eq!(validate(PRESERVE_PRIMARY, " TRUE ").unwrap(), "true");
        assert!(validate(PRESERVE_PRIMARY, "yes").is_err());
        assert!(validate(NOTIFICATION_RECIPIENTS, "a@x.example, b@y.example").is_ok());
        assert!(validate(NOTIFICATION_RECIPIENTS, "a@x.example; b").is_err());
        assert!(validate(TICKET_OWNER, "29:8").is_ok());
        assert!(validate(TICKET_OWNER, "29:8:1").is_err());
        assert!(validate(GUARD_MAX_CONTACT_SHARE, "0").is_err());
        assert!(validate(GUARD_MAX_CONTACT_SHARE, "50").is_ok());
        assert!(validate("psa_contact_unknown", "x").is_err());
        assert!(validate(TICKET_CONTACT, "primary").is_ok() && validate(TICKET_CONTACT, "id with space").is_err());
        assert!(validate(TICKET_QUEUE, "Offboarding").is_ok());
        assert!(validate(TICKET_QUEUE, "Off\u{202E}boarding").is_err(), "a bidi override in a queue name");
        assert_eq!(validate(WEBHOOK_WORKFLOWS, " Deactivate-Configs ").unwrap(), "deactivate-configs");
        assert!(validate(WEBHOOK_WORKFLOWS, "none").is_ok());
        assert!(validate(WEBHOOK_WORKFLOWS, "delete-itglue-org").is_err(), "the IT Glue deletion has its own key");
        assert!(validate(WEBHOOK_WORKFLOWS, "").is_err());
        assert!(validate(WEBHOOK_ITGLUE_DELETION, "TRUE").is_ok() && validate(WEBHOOK_ITGLUE_DELETION, "y").is_err());
        use crate::domain::Workflow;
        assert_eq!(
            webhook_workflows("deactivate-configs,deactivate-contacts"),
            Some(vec![Workflow::DeactivateContacts, Workflow::DeactivateConfigs]),
            "in the chain's order"
        );
    }
}
