//! On-premises Active Directory over LDAP with TLS (issue 16): [`LdapDirectory`] implements
//! [`OnPremDirectory`] after docs/vendors/active-directory.md.
//!
//! - `connection`: one multiplexed connection (`ldap3`, rustls with aws-lc-rs), a simple
//!   bind as the service account made once and again after the connection broke, a timeout
//!   on every operation, at most `AD_MAX_CONCURRENCY` operations in flight;
//! - `reads`: users (by `sAMAccountName`, UPN or DN), groups, entries, the schema;
//! - `writes`: the offboarding changes, each one Modify or ModifyDN;
//! - `entries`: attributes, filters, `objectGUID`, `unicodePwd`;
//! - `errors`: LDAP result codes as [`DirectoryError`].
//!
//! Spans name the operation and the DN; the bind password and a new password are never in
//! them (they travel as [`crate::secret::SecretString`] up to the request).

mod connection;
mod entries;
mod errors;
mod reads;
mod settings;
mod writes;

pub use settings::{AdSettings, AdTransport, DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, domain_of};

use crate::ports::{AdGroup, AdUser, DirectoryError, OnPremDirectory, async_trait};
use crate::secret::SecretString;
use connection::Connection;

/// One AD domain, through the service account of [`AdSettings`].
pub struct LdapDirectory {
    connection: Connection,
    domain: String,
    /// `schemaNamingContext` of the rootDSE, read once.
    schema_nc: tokio::sync::OnceCell<String>,
    /// Whether the schema has an attribute, by lower-cased name (`schema_attribute`).
    schema_answers: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl LdapDirectory {
    /// Checks the settings; connects on the first call.
    pub fn new(settings: AdSettings) -> Result<Self, DirectoryError> {
        settings.check()?;
        let domain = domain_of(&settings.base_dn);
        Ok(Self {
            connection: Connection::new(settings),
            domain,
            schema_nc: Default::default(),
            schema_answers: Default::default(),
        })
    }

    /// LDAP operations sent so far, binds included (a benchmark's figure).
    pub fn operations_sent(&self) -> u64 {
        self.connection.sent()
    }

    /// Where offboarded accounts go (`AD_DISABLED_OU`), when configured.
    pub fn disabled_ou(&self) -> Option<&str> {
        self.connection.settings().disabled_ou.as_deref()
    }

    pub fn settings(&self) -> &AdSettings {
        self.connection.settings()
    }
}

#[async_trait]
impl OnPremDirectory for LdapDirectory {
    fn domain(&self) -> &str {
        &self.domain
    }

    fn disabled_ou(&self) -> Option<&str> {
        LdapDirectory::disabled_ou(self)
    }

    async fn find_user(&self, user: &str) -> Result<Option<AdUser>, DirectoryError> {
        self.read_user(user).await
    }

    async fn find_user_by_mail(&self, mail: &str) -> Result<Option<AdUser>, DirectoryError> {
        self.read_user_by_mail(mail).await
    }

    async fn group(&self, dn: &str) -> Result<Option<AdGroup>, DirectoryError> {
        self.read_group(dn).await
    }

    async fn entry_exists(&self, dn: &str) -> Result<bool, DirectoryError> {
        self.exists(dn).await
    }

    async fn schema_has_attribute(&self, ldap_name: &str) -> Result<bool, DirectoryError> {
        self.schema_attribute(ldap_name).await
    }

    async fn set_user_account_control(&self, dn: &str, value: u32) -> Result<(), DirectoryError> {
        self.replace(dn, "userAccountControl", Some(value.to_string().into_bytes())).await
    }

    async fn reset_password(&self, dn: &str, password: &SecretString) -> Result<(), DirectoryError> {
        self.replace_password(dn, password).await
    }

    async fn set_employee_id(&self, dn: &str, employee_id: Option<&str>) -> Result<(), DirectoryError> {
        self.replace(dn, "employeeID", employee_id.map(|v| v.as_bytes().to_vec())).await
    }

    async fn set_manager(&self, dn: &str, manager: Option<&str>) -> Result<(), DirectoryError> {
        self.replace(dn, "manager", manager.map(|v| v.as_bytes().to_vec())).await
    }

    async fn add_member(&self, group_dn: &str, user_dn: &str) -> Result<(), DirectoryError> {
        self.add_group_member(group_dn, user_dn).await
    }

    async fn remove_member(&self, group_dn: &str, user_dn: &str) -> Result<(), DirectoryError> {
        self.remove_group_member(group_dn, user_dn).await
    }

    async fn move_entry(&self, dn: &str, new_parent: &str) -> Result<String, DirectoryError> {
        self.move_to(dn, new_parent).await
    }

    async fn set_hidden_from_address_lists(&self, dn: &str, hidden: bool) -> Result<(), DirectoryError> {
        let value = if hidden { "TRUE" } else { "FALSE" };
        self.replace(dn, "msExchHideFromAddressLists", Some(value.as_bytes().to_vec())).await
    }
}
