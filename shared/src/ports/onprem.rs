//! The on-premises Active Directory port of user offboarding (issue 16,
//! docs/vendors/active-directory.md).
//!
//! A separate trait from [`crate::ports::Directory`]: AD names everything by distinguished
//! name, has no sessions, licences nor devices, and keeps state Entra ID has not
//! (`userAccountControl`, the user's OU, the primary group). The LDAP adapter
//! (`crate::adapters::ldap`) implements it; the workflow asks for it only in the identity
//! modes that have an AD account (docs/workflows.md#003-identity-modes).
//!
//! Every method takes a DN found by [`OnPremDirectory::find_user`] (or the group DNs in
//! [`AdUser::member_of`]): the workflow never builds a DN from user input.

use crate::ports::async_trait;
use crate::ports::directory::DirectoryError;
use crate::secret::SecretString;

/// `userAccountControl` bit ADS_UF_ACCOUNTDISABLE (docs/vendors/active-directory.md#disable).
pub const ACCOUNT_DISABLED: u32 = 0x2;

/// A user as AD has it, with every attribute offboarding changes or puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdUser {
    /// The distinguished name, as the directory spells it.
    pub dn: String,
    /// `objectGUID` in its registry form (`xxxxxxxx-xxxx-…`): stable across moves and
    /// renames, so the trail and the lease name the account by it.
    pub object_guid: String,
    pub sam_account_name: String,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_account_control: u32,
    pub employee_id: Option<String>,
    /// The manager's DN.
    pub manager: Option<String>,
    /// DNs of the groups the user is a direct member of (`memberOf`; the primary group is
    /// not among them, AD keeps it in `primaryGroupID`).
    pub member_of: Vec<String>,
    /// The RID of the primary group (513: Domain Users).
    pub primary_group_id: Option<u32>,
    /// `msExchHideFromAddressLists`; `None` when the user has no value (or the schema has no
    /// such attribute: ask [`OnPremDirectory::schema_has_attribute`]).
    pub hidden_from_address_lists: Option<bool>,
}

impl AdUser {
    pub fn enabled(&self) -> bool {
        self.user_account_control & ACCOUNT_DISABLED == 0
    }

    /// The DN of the container the user is in (everything after the first unescaped `,`).
    pub fn parent_dn(&self) -> &str {
        parent_dn(&self.dn)
    }

    /// The user's RDN (`CN=Lee Leaver`).
    pub fn rdn(&self) -> &str {
        let parent = self.parent_dn();
        let cut = self.dn.len().saturating_sub(parent.len());
        self.dn[..cut].trim_end_matches(',')
    }
}

/// The parent of a DN: what follows the first `,` not escaped by a `\`.
pub fn parent_dn(dn: &str) -> &str {
    let bytes = dn.as_bytes();
    let mut escaped = false;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'\\' if !escaped => escaped = true,
            b',' if !escaped => return &dn[i + 1..],
            _ => escaped = false,
        }
    }
    ""
}

/// A group the user is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdGroup {
    pub dn: String,
    /// `sAMAccountName`, else the CN.
    pub name: String,
    /// A built-in group (under `CN=Builtin`, or `isCriticalSystemObject`): Administrators,
    /// Remote Desktop Users, … Removed like any other, but reported as such.
    pub built_in: bool,
}

/// On-premises Active Directory, over LDAP with TLS (docs/vendors/active-directory.md).
/// Errors use [`DirectoryError`]: `NotFound` for LDAP 32 (and a member already removed,
/// LDAP 53 "already deleted"), `PermissionDenied` for 50 and refused binds, `Refused` with
/// the LDAP result code for the rest (19 constraint violation, 53 unwilling to perform),
/// `Configuration` for a password change over a connection without TLS (refused before
/// anything is sent).
#[async_trait]
pub trait OnPremDirectory: Send + Sync {
    /// The domain the adapter serves (`test.local`): the lease and the trail name it.
    fn domain(&self) -> &str;
    /// The deployment's disabled users OU (`AD_DISABLED_OU`); a client's `ad_disabled_ou`
    /// setting comes first.
    fn disabled_ou(&self) -> Option<&str> {
        None
    }
    /// A user by `sAMAccountName`, user principal name or DN; `None` when there is none.
    async fn find_user(&self, user: &str) -> Result<Option<AdUser>, DirectoryError>;
    /// A user by e-mail address (`mail`, or an SMTP proxy address): how an unsynced cloud
    /// account finds its AD twin when the client pairs them by mail. `None` when there is none.
    async fn find_user_by_mail(&self, mail: &str) -> Result<Option<AdUser>, DirectoryError>;
    /// The group at `dn`, or `None`.
    async fn group(&self, dn: &str) -> Result<Option<AdGroup>, DirectoryError>;
    /// Whether an entry (an OU) exists at `dn`.
    async fn entry_exists(&self, dn: &str) -> Result<bool, DirectoryError>;
    /// Whether the schema defines the attribute (`msExchHideFromAddressLists` needs the
    /// Exchange schema extension).
    async fn schema_has_attribute(&self, ldap_name: &str) -> Result<bool, DirectoryError>;
    /// Replaces `userAccountControl` (read it first and change only the bits you mean).
    async fn set_user_account_control(&self, dn: &str, value: u32) -> Result<(), DirectoryError>;
    /// An administrative reset (`unicodePwd` replaced); only over TLS.
    async fn reset_password(&self, dn: &str, password: &SecretString) -> Result<(), DirectoryError>;
    /// `None` clears it (idempotent).
    async fn set_employee_id(&self, dn: &str, employee_id: Option<&str>) -> Result<(), DirectoryError>;
    /// The manager's DN; `None` clears it (idempotent).
    async fn set_manager(&self, dn: &str, manager: Option<&str>) -> Result<(), DirectoryError>;
    async fn add_member(&self, group_dn: &str, user_dn: &str) -> Result<(), DirectoryError>;
    async fn remove_member(&self, group_dn: &str, user_dn: &str) -> Result<(), DirectoryError>;
    /// Moves the entry under `new_parent` keeping its RDN; answers the new DN.
    async fn move_entry(&self, dn: &str, new_parent: &str) -> Result<String, DirectoryError>;
    async fn set_hidden_from_address_lists(&self, dn: &str, hidden: bool) -> Result<(), DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_parent_skips_escaped_commas() {
        assert_eq!(parent_dn("CN=Lee Leaver,OU=Staff,DC=test,DC=local"), "OU=Staff,DC=test,DC=local");
        assert_eq!(parent_dn(r"CN=Leaver\, Lee,OU=Staff,DC=test"), "OU=Staff,DC=test");
        assert_eq!(parent_dn("DC=local"), "");
    }
}
