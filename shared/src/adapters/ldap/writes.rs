//! Writes: each change is one Modify (or one ModifyDN for a move)
//! (docs/vendors/active-directory.md#writes).

use std::collections::HashSet;

use ldap3::Mod;

use super::LdapDirectory;
use super::entries;
use super::errors::{
    self, ATTRIBUTE_OR_VALUE_EXISTS, ENTRY_ALREADY_EXISTS, NO_SUCH_ATTRIBUTE, OTHER, UNWILLING_TO_PERFORM,
};
use crate::ports::DirectoryError;
use crate::secret::SecretString;

impl LdapDirectory {
    /// One Modify of `dn`; the raw LDAP result code when it is not success.
    async fn modify(
        &self,
        op: &'static str,
        dn: &str,
        change: &Mod<Vec<u8>>,
    ) -> Result<Result<(), ldap3::LdapResult>, DirectoryError> {
        let result = self
            .connection
            .run(op, dn, |mut ldap| {
                let change = change.clone();
                async move { ldap.modify(dn, vec![change]).await }
            })
            .await?;
        Ok(if result.rc == errors::SUCCESS { Ok(()) } else { Err(result) })
    }

    /// Replaces every value of `attribute` with `value`; `None` clears it, which is done
    /// whether or not there was a value (a Delete of an absent value is refused).
    pub(super) async fn replace(
        &self,
        dn: &str,
        attribute: &'static str,
        value: Option<Vec<u8>>,
    ) -> Result<(), DirectoryError> {
        let values: HashSet<Vec<u8>> = value.into_iter().collect();
        let change = Mod::Replace(attribute.as_bytes().to_vec(), values);
        self.modify(attribute, dn, &change).await?.map_err(|result| errors::from_result(&result))
    }

    /// An administrative reset: one Replace of `unicodePwd`, and only over TLS. Without TLS
    /// nothing is sent, not even a connection opened.
    pub(super) async fn replace_password(&self, dn: &str, password: &SecretString) -> Result<(), DirectoryError> {
        if !self.connection.encrypted() {
            return Err(DirectoryError::Configuration {
                message: "a password is only sent over TLS: AD_LDAP_URL must be ldaps:// or ldap:// with StartTLS"
                    .into(),
            });
        }
        let value = entries::unicode_pwd(password.expose());
        let change = Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([value]));
        self.modify("reset_password", dn, &change).await?.map_err(|result| errors::from_result(&result))
    }

    /// Adds `user_dn` to the group's `member`; a user who already is a member is done (a
    /// repeated rollback).
    pub(super) async fn add_group_member(&self, group_dn: &str, user_dn: &str) -> Result<(), DirectoryError> {
        let change = Mod::Add(b"member".to_vec(), HashSet::from([user_dn.as_bytes().to_vec()]));
        match self.modify("add_member", group_dn, &change).await? {
            Err(result) if matches!(result.rc, ATTRIBUTE_OR_VALUE_EXISTS | ENTRY_ALREADY_EXISTS) => Ok(()),
            other => other.map_err(|result| errors::from_result(&result)),
        }
    }

    /// Deletes `user_dn` from the group's `member`. Not a member is `NotFound`: Samba answers
    /// 53 (see [`not_a_member`]), a server may answer 16 noSuchAttribute.
    pub(super) async fn remove_group_member(&self, group_dn: &str, user_dn: &str) -> Result<(), DirectoryError> {
        let change = Mod::Delete(b"member".to_vec(), HashSet::from([user_dn.as_bytes().to_vec()]));
        match self.modify("remove_member", group_dn, &change).await? {
            Err(result) if not_a_member(&result) => Err(DirectoryError::NotFound {
                code: errors::rc_name(result.rc).into(),
                message: format!("not a member of {group_dn}: {}", result.text.trim_end_matches('\0')),
            }),
            other => other.map_err(|result| errors::from_result(&result)),
        }
    }

    /// ModifyDN to `new_parent`, keeping the RDN (and deleting no value: the RDN is the same).
    pub(super) async fn move_to(&self, dn: &str, new_parent: &str) -> Result<String, DirectoryError> {
        let parent = crate::ports::parent_dn(dn);
        let rdn = dn[..dn.len() - parent.len()].trim_end_matches(',');
        if rdn.is_empty() || parent.is_empty() {
            return Err(DirectoryError::Configuration { message: format!("'{dn}' is not a DN with a parent") });
        }
        let result = self
            .connection
            .run("move_entry", dn, |mut ldap| async move { ldap.modifydn(dn, rdn, true, Some(new_parent)).await })
            .await?;
        if missing_parent(&result) {
            return Err(DirectoryError::NotFound {
                code: errors::rc_name(result.rc).into(),
                message: format!("no such OU {new_parent}: {}", result.text.trim_end_matches('\0')),
            });
        }
        errors::check(result)?;
        Ok(format!("{rdn},{new_parent}"))
    }
}

/// A move into an OU that does not exist: 32 noSuchObject, or (Samba) 80 `other` with
/// "00002095: … parent does not exist!" (docs/vendors/active-directory.md#move).
fn missing_parent(result: &ldap3::LdapResult) -> bool {
    result.rc == errors::NO_SUCH_OBJECT || (result.rc == OTHER && result.text.contains("parent does not exist"))
}

/// Samba answers 53 "Attribute member already deleted for target GUID …" for a former member
/// and 53 "Attribute member doesn't exist for target GUID …" for someone who never was one.
fn not_a_member(result: &ldap3::LdapResult) -> bool {
    let text = result.text.to_ascii_lowercase();
    result.rc == NO_SUCH_ATTRIBUTE
        || (result.rc == UNWILLING_TO_PERFORM && (text.contains("already deleted") || text.contains("doesn't exist")))
}
