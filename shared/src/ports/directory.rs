//! The directory and mailbox ports of user offboarding (issue 14).
//!
//! Three traits, not one:
//! - [`Directory`]: identity as any directory has it (a user, the manager, groups, the
//!   account, the password, sessions). Microsoft Entra ID implements it over Graph; an
//!   on-premises Active Directory (LDAP, a later issue) will implement it too.
//! - [`CloudDirectory`]: what only a cloud directory has (licences, Intune devices). A
//!   separate trait rather than methods answering "not supported" on AD: a workflow that
//!   needs licences then asks for a `CloudDirectory` and the compiler, not a run-time
//!   error half-way through an offboarding, says whether the directory can do it.
//! - [`Mailboxes`]: Exchange Online (docs/vendors/exchange-online.md). Graph has no API for
//!   these, and an on-premises Exchange would be a different adapter again.
//!
//! Every call names the tenant: one multi-tenant app serves every customer with one token
//! per (tenant, resource) (docs/vendors/microsoft-graph.md#customer-tenants). An AD
//! adapter takes the domain it serves as its tenant.

use crate::ports::async_trait;
use crate::secret::SecretString;

/// A failed directory or mailbox call, with the vendor's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The user, group, manager, mailbox or membership is not there.
    #[error("not found ({code}): {message}")]
    NotFound { code: String, message: String },
    /// The object is mastered on-premises (synced from AD) or out of the app's write
    /// scope: change it in AD instead.
    #[error("mastered on-premises ({code}): {message}")]
    OnPremisesMastered { code: String, message: String },
    /// The vendor refused the request for another reason (a dynamic group, an inherited
    /// licence, a password below the complexity rules, …).
    #[error("refused (HTTP {status}, {code}): {message}")]
    Refused { status: u16, code: String, message: String },
    /// Throttled after the retries the HTTP layer allows, or our own request budget is spent.
    #[error("throttled: {message}")]
    Throttled { message: String },
    /// Missing consent, permission or role; refused credentials.
    #[error("permission denied ({code}): {message}")]
    PermissionDenied { code: String, message: String },
    /// Transport failure or a server error after the retries.
    #[error("connection error: {message}")]
    Connection { message: String },
    /// The answer could not be read.
    #[error("invalid response: {message}")]
    InvalidResponse { message: String },
    /// A setting is missing or malformed.
    #[error("configuration error: {message}")]
    Configuration { message: String },
}

impl DirectoryError {
    /// The vendor's error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::NotFound { code, .. }
            | Self::OnPremisesMastered { code, .. }
            | Self::Refused { code, .. }
            | Self::PermissionDenied { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// On-premises attributes of a user synced from AD: what names the user's AD account, for
/// the engineer (or a later AD adapter) who must act there. The Graph adapter reads them all
/// (`onPremisesSamAccountName`, `onPremisesDistinguishedName`, `onPremisesImmutableId`,
/// docs/vendors/microsoft-graph.md#synced-users); each is `None` when the directory has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnPremises {
    pub sync_enabled: bool,
    pub sam_account_name: Option<String>,
    pub distinguished_name: Option<String>,
    pub immutable_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub enabled: bool,
    pub employee_id: Option<String>,
    /// `Some` for a user synced from on-premises AD.
    pub on_premises: Option<OnPremises>,
}

impl DirectoryUser {
    pub fn is_synced(&self) -> bool {
        self.on_premises.as_ref().is_some_and(|o| o.sync_enabled)
    }
}

/// What a group is, which decides where a membership can be changed
/// (docs/vendors/microsoft-graph.md#groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Security,
    /// Microsoft 365 group (`Unified`).
    Unified,
    /// Membership by rule: change the rule or the user's attributes.
    Dynamic,
    /// Synced from AD: change it there.
    Synced,
    /// Exchange-owned: [`Mailboxes::remove_distribution_member`].
    MailEnabledSecurity,
    /// Exchange-owned: [`Mailboxes::remove_distribution_member`].
    DistributionList,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub id: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub kind: GroupKind,
}

/// A group the user owns, and how many owners it has (1: the user is the sole owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedGroup {
    pub group: DirectoryGroup,
    pub owner_count: usize,
}

/// A licence the user holds: direct (`by_group` None) or inherited from a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    pub sku_id: String,
    pub by_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedDevice {
    pub id: String,
    pub name: String,
    pub operating_system: String,
    pub management_state: String,
}

/// Identity in a directory (Entra ID, later on-premises AD). `user` is an object id or a UPN.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The user, or `None` when the directory has no such user.
    async fn user(&self, tenant: &str, user: &str) -> Result<Option<DirectoryUser>, DirectoryError>;
    /// The user's manager, or `None` when there is none. Read it before removing it.
    async fn manager(&self, tenant: &str, user: &str) -> Result<Option<DirectoryUser>, DirectoryError>;
    async fn remove_manager(&self, tenant: &str, user: &str) -> Result<(), DirectoryError>;
    /// `manager` is the manager's object id (a rollback).
    async fn set_manager(&self, tenant: &str, user: &str, manager: &str) -> Result<(), DirectoryError>;
    /// Every direct membership, all pages.
    async fn groups_of(&self, tenant: &str, user: &str) -> Result<Vec<DirectoryGroup>, DirectoryError>;
    async fn add_member(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError>;
    async fn remove_member(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError>;
    /// Removes several memberships with as few requests as the directory allows; one
    /// result per group, in order.
    async fn remove_memberships(&self, tenant: &str, user: &str, groups: &[String]) -> Vec<Result<(), DirectoryError>> {
        let mut results = Vec::with_capacity(groups.len());
        for group in groups {
            results.push(self.remove_member(tenant, group, user).await);
        }
        results
    }
    async fn set_enabled(&self, tenant: &str, user: &str, enabled: bool) -> Result<(), DirectoryError>;
    /// `None` clears it.
    async fn set_employee_id(&self, tenant: &str, user: &str, employee_id: Option<&str>) -> Result<(), DirectoryError>;
    /// The password is never logged nor put in an error.
    async fn reset_password(&self, tenant: &str, user: &str, password: &SecretString) -> Result<(), DirectoryError>;
    /// Invalidates refresh tokens and session cookies (not access tokens already issued).
    async fn revoke_sessions(&self, tenant: &str, user: &str) -> Result<(), DirectoryError>;
    /// Groups the user owns, each with its owner count.
    async fn owned_groups(&self, tenant: &str, user: &str) -> Result<Vec<OwnedGroup>, DirectoryError>;
    /// Makes `user` (an object id) an owner of `group`; a user who already is one is done.
    async fn add_owner(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError>;
    /// Removes `user` from `group`'s owners (not from its members).
    async fn remove_owner(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError>;
}

/// What only a cloud directory has: licences and Intune devices.
#[async_trait]
pub trait CloudDirectory: Directory {
    /// Every enabled user of the tenant holding at least one licence (direct or through a
    /// group), all pages: the leavers of "every licensed user" (docs/vendors/microsoft-graph.md#licensed-users).
    async fn licensed_users(&self, tenant: &str) -> Result<Vec<DirectoryUser>, DirectoryError>;
    async fn licences(&self, tenant: &str, user: &str) -> Result<Vec<Licence>, DirectoryError>;
    /// Removes direct licences (group-inherited ones are refused: leave the group).
    async fn remove_licences(&self, tenant: &str, user: &str, sku_ids: &[String]) -> Result<(), DirectoryError>;
    async fn restore_licences(&self, tenant: &str, user: &str, sku_ids: &[String]) -> Result<(), DirectoryError>;
    async fn managed_devices(&self, tenant: &str, user_id: &str) -> Result<Vec<ManagedDevice>, DirectoryError>;
    /// Removes company data and management (not a wipe).
    async fn retire_device(&self, tenant: &str, device_id: &str) -> Result<(), DirectoryError>;

    /// The leaver and everything around it, or `None` when there is no such user. The
    /// default reads each part on its own; a directory with batches reads them together.
    async fn leaver(&self, tenant: &str, user: &str) -> Result<Option<LeaverState>, DirectoryError> {
        read_leaver_one_by_one(self, tenant, user).await
    }

    /// Makes `changes` to `user` (an object id); one result per change, in order. The
    /// default sends them one by one.
    async fn apply_user_changes(
        &self,
        tenant: &str,
        user: &str,
        changes: &[UserChange],
    ) -> Vec<Result<(), DirectoryError>> {
        apply_changes_one_by_one(self, tenant, user, changes).await
    }
}

/// [`CloudDirectory::leaver`] read part by part: the default, and what a directory with
/// batches does when they are turned off.
pub async fn read_leaver_one_by_one<D: CloudDirectory + ?Sized>(
    directory: &D,
    tenant: &str,
    user: &str,
) -> Result<Option<LeaverState>, DirectoryError> {
    let Some(found) = directory.user(tenant, user).await? else { return Ok(None) };
    let id = found.id.as_str();
    let (manager, groups, licences, owned_groups, devices) = futures::try_join!(
        directory.manager(tenant, id),
        directory.groups_of(tenant, id),
        directory.licences(tenant, id),
        directory.owned_groups(tenant, id),
        directory.managed_devices(tenant, id),
    )?;
    Ok(Some(LeaverState { user: found, manager, groups, licences, owned_groups, devices }))
}

/// [`CloudDirectory::apply_user_changes`] one change after the other: the default, and what
/// a directory with batches does when they are turned off.
pub async fn apply_changes_one_by_one<D: CloudDirectory + ?Sized>(
    directory: &D,
    tenant: &str,
    user: &str,
    changes: &[UserChange],
) -> Vec<Result<(), DirectoryError>> {
    let mut results = Vec::with_capacity(changes.len());
    for change in changes {
        results.push(apply_one(directory, tenant, user, change).await);
    }
    results
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxType {
    User,
    Shared,
    /// Room, equipment, …: named as Exchange answered it.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub identity: String,
    pub kind: MailboxType,
    pub hidden_from_address_lists: bool,
    pub forwarding_address: Option<String>,
    pub forwarding_smtp_address: Option<String>,
    pub deliver_to_mailbox_and_forward: bool,
    pub dir_synced: bool,
}

/// Where mail is forwarded: a recipient of the tenant, or an external SMTP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarding {
    Internal { recipient: String, keep_copy: bool },
    External { address: String, keep_copy: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReplyState {
    Disabled,
    Enabled,
    Scheduled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReply {
    pub state: AutoReplyState,
    pub internal_message: String,
    pub external_message: String,
    /// Exchange's `None`, `Known` or `All`.
    pub external_audience: String,
    /// RFC 3339; both needed when scheduled.
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileDevice {
    pub identity: String,
    pub guid: String,
}

/// Exchange Online mailboxes and distribution groups (docs/vendors/exchange-online.md).
#[async_trait]
pub trait Mailboxes: Send + Sync {
    async fn mailbox(&self, tenant: &str, mailbox: &str) -> Result<Option<MailboxInfo>, DirectoryError>;
    /// Converts to shared (`true`) or back to a user mailbox.
    async fn set_shared(&self, tenant: &str, mailbox: &str, shared: bool) -> Result<(), DirectoryError>;
    async fn set_hidden(&self, tenant: &str, mailbox: &str, hidden: bool) -> Result<(), DirectoryError>;
    /// `None` clears both forwarding addresses.
    async fn set_forwarding(&self, tenant: &str, mailbox: &str, to: Option<&Forwarding>) -> Result<(), DirectoryError>;
    async fn grant_full_access(
        &self,
        tenant: &str,
        mailbox: &str,
        trustee: &str,
        automapping: bool,
    ) -> Result<(), DirectoryError>;
    async fn remove_full_access(&self, tenant: &str, mailbox: &str, trustee: &str) -> Result<(), DirectoryError>;
    async fn grant_send_as(&self, tenant: &str, mailbox: &str, trustee: &str) -> Result<(), DirectoryError>;
    async fn remove_send_as(&self, tenant: &str, mailbox: &str, trustee: &str) -> Result<(), DirectoryError>;
    async fn auto_reply(&self, tenant: &str, mailbox: &str) -> Result<AutoReply, DirectoryError>;
    async fn set_auto_reply(&self, tenant: &str, mailbox: &str, reply: &AutoReply) -> Result<(), DirectoryError>;
    async fn mobile_devices(&self, tenant: &str, mailbox: &str) -> Result<Vec<MobileDevice>, DirectoryError>;
    /// `identity` as [`MobileDevice::identity`].
    async fn remove_mobile_device(&self, tenant: &str, identity: &str) -> Result<(), DirectoryError>;
    async fn add_distribution_member(&self, tenant: &str, group: &str, member: &str) -> Result<(), DirectoryError>;
    async fn remove_distribution_member(&self, tenant: &str, group: &str, member: &str) -> Result<(), DirectoryError>;
}

/// Everything user offboarding reads about a leaver before it changes anything (the
/// pre-change snapshot), and again afterwards to confirm what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaverState {
    pub user: DirectoryUser,
    pub manager: Option<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    pub licences: Vec<Licence>,
    pub owned_groups: Vec<OwnedGroup>,
    pub devices: Vec<ManagedDevice>,
}

/// One change user offboarding (or its rollback) makes to a user. Several go to the
/// directory together ([`CloudDirectory::apply_user_changes`]), so that a directory with
/// batches (Graph `$batch`, docs/vendors/microsoft-graph.md#batch) sends them in as few
/// requests as it can. They are independent of each other: what must happen in order goes
/// in separate calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    SetEnabled(bool),
    /// Never logged, never in an error.
    ResetPassword(SecretString),
    /// `None` clears it.
    SetEmployeeId(Option<String>),
    RevokeSessions,
    RemoveManager,
    /// The manager's object id.
    SetManager(String),
    /// A group id.
    RemoveMembership(String),
    /// A group id.
    AddMembership(String),
    /// SKU ids.
    RemoveLicences(Vec<String>),
    /// SKU ids.
    RestoreLicences(Vec<String>),
    /// An Intune managed device id.
    RetireDevice(String),
    /// A group id: the user becomes one of its owners (a manager taking over a group the
    /// leaver owned alone).
    AddOwner(String),
    /// A group id.
    RemoveOwner(String),
}

/// One [`UserChange`] through the directory's own methods.
pub async fn apply_one<D: CloudDirectory + ?Sized>(
    directory: &D,
    tenant: &str,
    user: &str,
    change: &UserChange,
) -> Result<(), DirectoryError> {
    match change {
        UserChange::SetEnabled(enabled) => directory.set_enabled(tenant, user, *enabled).await,
        UserChange::ResetPassword(password) => directory.reset_password(tenant, user, password).await,
        UserChange::SetEmployeeId(id) => directory.set_employee_id(tenant, user, id.as_deref()).await,
        UserChange::RevokeSessions => directory.revoke_sessions(tenant, user).await,
        UserChange::RemoveManager => directory.remove_manager(tenant, user).await,
        UserChange::SetManager(manager) => directory.set_manager(tenant, user, manager).await,
        UserChange::RemoveMembership(group) => directory.remove_member(tenant, group, user).await,
        UserChange::AddMembership(group) => directory.add_member(tenant, group, user).await,
        UserChange::RemoveLicences(skus) => directory.remove_licences(tenant, user, skus).await,
        UserChange::RestoreLicences(skus) => directory.restore_licences(tenant, user, skus).await,
        UserChange::RetireDevice(device) => directory.retire_device(tenant, device).await,
        UserChange::AddOwner(group) => directory.add_owner(tenant, group, user).await,
        UserChange::RemoveOwner(group) => directory.remove_owner(tenant, group, user).await,
    }
}
