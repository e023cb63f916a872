//! Reads: a user, a group, whether an entry exists, whether the schema has an attribute.

use ldap3::controls::RawControl;
use ldap3::{Scope, SearchEntry};

use super::LdapDirectory;
use super::entries::{self, GROUP_ATTRIBUTES, USER_ATTRIBUTES};
use super::errors;
use crate::ports::{AdGroup, AdUser, DirectoryError};

/// LDAP_SERVER_DOMAIN_SCOPE_OID: no referrals to other naming contexts (the Configuration
/// partition, other domains) in a subtree search (docs/vendors/active-directory.md#search).
const DOMAIN_SCOPE: &str = "1.2.840.113556.1.4.1339";

/// "No attributes" (RFC 4511 4.5.1.8): an existence check.
const NO_ATTRIBUTES: &str = "1.1";

impl LdapDirectory {
    /// The entries a search finds; a base that does not exist is `NotFound`.
    async fn search(
        &self,
        op: &'static str,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let result = self
            .connection
            .run(op, base, |mut ldap| async move {
                if scope == Scope::Subtree {
                    ldap.with_controls(RawControl { ctype: DOMAIN_SCOPE.into(), crit: false, val: None });
                }
                ldap.search(base, scope, filter, attrs.to_vec()).await
            })
            .await?;
        let (entries, result) = (result.0, result.1);
        errors::check(result)?;
        // `search` keeps entries only (references go to the result), so each parses.
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// A base-scope read of `dn`; `None` when there is no such entry (or it does not match).
    async fn read_entry(
        &self,
        op: &'static str,
        dn: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        match self.search(op, dn, Scope::Base, filter, attrs).await {
            Ok(entries) => Ok(entries.into_iter().next()),
            Err(DirectoryError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// By DN (a base-scope read), else by `sAMAccountName` or UPN under the base DN.
    pub(super) async fn read_user(&self, user: &str) -> Result<Option<AdUser>, DirectoryError> {
        let user = user.trim();
        if user.is_empty() {
            return Ok(None);
        }
        let entry = if entries::is_dn(user) {
            self.read_entry("find_user", user, entries::user_class_filter(), &USER_ATTRIBUTES).await?
        } else {
            self.one_user("find_user", user, &entries::user_filter(user)).await?
        };
        entry.as_ref().map(entries::parse_user).transpose()
    }

    pub(super) async fn read_user_by_mail(&self, mail: &str) -> Result<Option<AdUser>, DirectoryError> {
        let mail = mail.trim();
        if mail.is_empty() {
            return Ok(None);
        }
        let entry = self.one_user("find_user_by_mail", mail, &entries::mail_filter(mail)).await?;
        entry.as_ref().map(entries::parse_user).transpose()
    }

    /// The one user `filter` finds under the base DN; two are an error naming both, never a guess.
    async fn one_user(
        &self,
        op: &'static str,
        named: &str,
        filter: &str,
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        let base = &self.connection.settings().base_dn;
        let mut found = self.search(op, base, Scope::Subtree, filter, &USER_ATTRIBUTES).await?;
        if found.len() > 1 {
            let dns: Vec<&str> = found.iter().map(|e| e.dn.as_str()).collect();
            return Err(DirectoryError::InvalidResponse {
                message: format!("'{named}' names {} accounts: {}", found.len(), dns.join("; ")),
            });
        }
        Ok(found.pop())
    }

    pub(super) async fn read_group(&self, dn: &str) -> Result<Option<AdGroup>, DirectoryError> {
        let entry = self.read_entry("group", dn, "(objectClass=group)", &GROUP_ATTRIBUTES).await?;
        Ok(entry.as_ref().map(entries::parse_group))
    }

    pub(super) async fn exists(&self, dn: &str) -> Result<bool, DirectoryError> {
        Ok(self.read_entry("entry_exists", dn, "(objectClass=*)", &[NO_ATTRIBUTES]).await?.is_some())
    }

    /// Looks `ldap_name` up among the `attributeSchema` entries of the schema partition
    /// (found through the rootDSE once).
    /// Asked once per attribute for the adapter's life: every offboarding asks whether the
    /// schema can hide a mailbox, and a schema extension is a rare event that a new process
    /// (a new Lambda container, the next CLI run) picks up.
    pub(super) async fn schema_attribute(&self, ldap_name: &str) -> Result<bool, DirectoryError> {
        let key = ldap_name.to_ascii_lowercase();
        if let Some(known) = self.schema_answers.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(*known);
        }
        let schema = self.schema_nc.get_or_try_init(|| self.schema_naming_context()).await?;
        let filter = format!("(&(objectClass=attributeSchema)(lDAPDisplayName={}))", ldap3::ldap_escape(ldap_name));
        let found = self.search("schema_has_attribute", schema, Scope::OneLevel, &filter, &[NO_ATTRIBUTES]).await?;
        let has = !found.is_empty();
        self.schema_answers.lock().unwrap_or_else(|e| e.into_inner()).insert(key, has);
        Ok(has)
    }

    async fn schema_naming_context(&self) -> Result<String, DirectoryError> {
        let root = self.read_entry("root_dse", "", "(objectClass=*)", &["schemaNamingContext"]).await?;
        root.and_then(|entry| entry.attrs.into_iter().find(|(k, _)| k.eq_ignore_ascii_case("schemaNamingContext")))
            .and_then(|(_, values)| values.into_iter().next())
            .ok_or_else(|| DirectoryError::InvalidResponse { message: "the rootDSE has no schemaNamingContext".into() })
    }
}
