//! The state of the simulated Microsoft 365 tenants: users, groups, SKUs, mailboxes and
//! devices, and how Graph and Exchange Online render them (docs/vendors/microsoft-graph.md
//! #users-and-groups, docs/vendors/exchange-online.md#answers).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// One customer tenant.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
    /// Whether the MSP's multi-tenant app has a consented service principal here.
    pub consented: bool,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    pub skus: Vec<Sku>,
    /// Keyed by the owning user's id.
    pub mailboxes: BTreeMap<String, Mailbox>,
    pub managed_devices: BTreeMap<String, ManagedDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub job_title: Option<String>,
    pub account_enabled: bool,
    pub employee_id: Option<String>,
    /// Synced from on-premises AD (Entra Connect): identity attributes are mastered there.
    pub on_premises_sync_enabled: bool,
    /// The AD account's `sAMAccountName`, distinguished name and `ImmutableId` (the source
    /// anchor), set by Entra Connect on a synced user and `null` on a cloud one.
    pub on_premises_sam_account_name: Option<String>,
    pub on_premises_distinguished_name: Option<String>,
    pub on_premises_immutable_id: Option<String>,
    pub manager_id: Option<String>,
    /// SKU ids assigned directly (group-based ones come from [`Group::assigned_licenses`]).
    pub direct_licenses: Vec<String>,
    pub sign_in_sessions_valid_from: Option<String>,
    /// Accepted password resets (the password itself is not kept).
    pub password_resets: u32,
    pub force_change_password_next_sign_in: bool,
    /// Deleted by a `DELETE /groups/{id}/members/{id}` without `/$ref` (the documented trap).
    pub deleted: bool,
}

/// What a group is, for the rules on changing its members (docs/vendors/microsoft-graph.md#groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// `groupTypes` has `DynamicMembership`: members follow a rule.
    Dynamic,
    /// Synced from on-premises AD: members are mastered there.
    Synced,
    /// Mail-enabled, not security: Exchange owns the members.
    DistributionList,
    /// Mail-enabled security group: Exchange owns the members.
    MailEnabledSecurity,
    /// Microsoft 365 group (`groupTypes` has `Unified`).
    Unified,
    /// Cloud security group.
    Security,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub group_types: Vec<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub on_premises_sync_enabled: bool,
    pub membership_rule: Option<String>,
    pub members: BTreeSet<String>,
    pub owners: BTreeSet<String>,
    /// SKU ids the group assigns to its members (group-based licensing).
    pub assigned_licenses: Vec<String>,
}

impl Group {
    pub fn kind(&self) -> GroupKind {
        let has = |t: &str| self.group_types.iter().any(|g| g.eq_ignore_ascii_case(t));
        if has("DynamicMembership") {
            GroupKind::Dynamic
        } else if self.on_premises_sync_enabled {
            GroupKind::Synced
        } else if has("Unified") {
            GroupKind::Unified
        } else if self.mail_enabled && self.security_enabled {
            GroupKind::MailEnabledSecurity
        } else if self.mail_enabled {
            GroupKind::DistributionList
        } else {
            GroupKind::Security
        }
    }

    pub(crate) fn to_graph(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.group",
            "id": self.id,
            "displayName": self.display_name,
            "mail": self.mail,
            "mailEnabled": self.mail_enabled,
            "securityEnabled": self.security_enabled,
            "groupTypes": self.group_types,
            "membershipRule": self.membership_rule,
            "onPremisesSyncEnabled": self.on_premises_sync_enabled.then_some(true),
            "assignedLicenses": self.assigned_licenses.iter()
                .map(|sku| json!({"skuId": sku, "disabledPlans": []})).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub sku_id: String,
    pub sku_part_number: String,
    pub enabled_units: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailboxKind {
    #[default]
    User,
    Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoReplyState {
    #[default]
    Disabled,
    Enabled,
    Scheduled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExternalAudience {
    #[default]
    None,
    Known,
    All,
}

/// One out-of-office setting, read and written by Graph `mailboxSettings` and by
/// `Set-MailboxAutoReplyConfiguration` alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoReply {
    pub state: AutoReplyState,
    pub internal_message: String,
    pub external_message: String,
    pub external_audience: ExternalAudience,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailbox {
    pub user_id: String,
    pub kind: MailboxKind,
    pub hidden_from_address_lists: bool,
    pub forwarding_address: Option<String>,
    pub forwarding_smtp_address: Option<String>,
    pub deliver_to_mailbox_and_forward: bool,
    /// FullAccess trustees (UPN, lower case) and their AutoMapping.
    pub full_access: BTreeMap<String, bool>,
    /// SendAs trustees (UPN, lower case).
    pub send_as: BTreeSet<String>,
    pub auto_reply: AutoReply,
    pub mobile_devices: Vec<MobileDevice>,
}

/// An Exchange ActiveSync / Outlook mobile partnership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileDevice {
    pub guid: String,
    pub name: String,
    pub device_model: String,
    pub device_os: String,
}

/// An Intune managed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedDevice {
    pub id: String,
    pub user_id: String,
    pub device_name: String,
    pub operating_system: String,
    /// `managed`, or `retirePending` once retired.
    pub management_state: String,
}

impl ManagedDevice {
    pub(crate) fn to_graph(&self) -> Value {
        json!({
            "id": self.id, "userId": self.user_id, "deviceName": self.device_name,
            "operatingSystem": self.operating_system, "managementState": self.management_state,
            "managedDeviceOwnerType": "company",
        })
    }
}

impl Tenant {
    /// A user by object id or UPN (ignoring case); deleted users are gone.
    pub fn find_user(&self, key: &str) -> Option<&User> {
        self.users
            .get(key)
            .or_else(|| {
                self.users
                    .values()
                    .find(|u| u.id.eq_ignore_ascii_case(key) || u.user_principal_name.eq_ignore_ascii_case(key))
            })
            .filter(|u| !u.deleted)
    }

    pub(crate) fn user_id(&self, key: &str) -> Option<String> {
        self.find_user(key).map(|u| u.id.clone())
    }

    /// A group by object id, mail or display name (ignoring case).
    pub fn find_group(&self, key: &str) -> Option<&Group> {
        self.groups.get(key).or_else(|| {
            self.groups.values().find(|g| {
                g.id.eq_ignore_ascii_case(key)
                    || g.mail.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(key))
                    || g.display_name.eq_ignore_ascii_case(key)
            })
        })
    }

    /// Groups the user is a direct member of, by id.
    pub fn groups_of(&self, user_id: &str) -> Vec<&Group> {
        self.groups.values().filter(|g| g.members.contains(user_id)).collect()
    }

    /// Every licence the user holds: `(skuId, None)` direct, `(skuId, Some(groupId))` inherited.
    pub fn licence_states(&self, user: &User) -> Vec<(String, Option<String>)> {
        let mut states: Vec<(String, Option<String>)> =
            user.direct_licenses.iter().map(|sku| (sku.clone(), None)).collect();
        for group in self.groups_of(&user.id) {
            states.extend(group.assigned_licenses.iter().map(|sku| (sku.clone(), Some(group.id.clone()))));
        }
        states
    }

    /// The user as Graph holds it, every property (`$select` picks from it).
    pub(crate) fn user_json(&self, user: &User) -> Value {
        let states = self.licence_states(user);
        let mut assigned: Vec<&String> = states.iter().map(|(sku, _)| sku).collect();
        assigned.sort();
        assigned.dedup();
        json!({
            "@odata.type": "#microsoft.graph.user",
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "mail": user.mail,
            "jobTitle": user.job_title,
            "businessPhones": [],
            "givenName": user.display_name.split(' ').next(),
            "surname": user.display_name.split(' ').nth(1),
            "mobilePhone": null,
            "officeLocation": null,
            "preferredLanguage": "en-US",
            "accountEnabled": user.account_enabled,
            "employeeId": user.employee_id,
            "onPremisesSyncEnabled": user.on_premises_sync_enabled.then_some(true),
            "onPremisesSamAccountName": user.on_premises_sam_account_name,
            "onPremisesDistinguishedName": user.on_premises_distinguished_name,
            "onPremisesImmutableId": user.on_premises_immutable_id,
            "signInSessionsValidFromDateTime": user.sign_in_sessions_valid_from,
            "assignedLicenses": assigned.iter().map(|sku| json!({"skuId": sku, "disabledPlans": []})).collect::<Vec<_>>(),
            "licenseAssignmentStates": states.iter().map(|(sku, group)| json!({
                "skuId": sku, "assignedByGroup": group, "state": "Active", "error": "None", "disabledPlans": [],
            })).collect::<Vec<_>>(),
        })
    }

    /// Recipients Exchange resolves: a user with a mailbox by UPN, object id or alias.
    pub(crate) fn mailbox_owner(&self, identity: &str) -> Option<&User> {
        let identity = identity.trim();
        let user = self.find_user(identity).or_else(|| {
            self.users.values().find(|u| {
                !u.deleted
                    && (u
                        .user_principal_name
                        .split('@')
                        .next()
                        .is_some_and(|alias| alias.eq_ignore_ascii_case(identity))
                        || u.mail.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(identity)))
            })
        })?;
        self.mailboxes.contains_key(&user.id).then_some(user)
    }
}
