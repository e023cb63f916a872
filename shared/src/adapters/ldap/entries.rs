//! What is read from and written to entries: the attributes asked for, a user and a group
//! from a search entry, `objectGUID` in its registry form, the `unicodePwd` value and the
//! filters (values escaped after RFC 4515).

use std::collections::HashMap;

use ldap3::SearchEntry;

use crate::ports::{AdGroup, AdUser, DirectoryError};

/// The attributes of [`AdUser`].
pub(super) const USER_ATTRIBUTES: [&str; 12] = [
    "objectGUID",
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "mail",
    "userAccountControl",
    "employeeID",
    "manager",
    "memberOf",
    "primaryGroupID",
    "msExchHideFromAddressLists",
    "objectClass",
];

pub(super) const GROUP_ATTRIBUTES: [&str; 3] = ["sAMAccountName", "cn", "isCriticalSystemObject"];

/// A person's user account (not a computer, which is a `user` too).
const USER_CLASS: &str = "(&(objectCategory=person)(objectClass=user))";

/// The filter that finds `user` by `sAMAccountName` or user principal name.
pub(super) fn user_filter(user: &str) -> String {
    let value = ldap3::ldap_escape(user);
    format!("(&{USER_CLASS}(|(sAMAccountName={value})(userPrincipalName={value})))")
}

/// The filter of a user by e-mail address (`mail`, or a `proxyAddresses` entry `smtp:…` in
/// any case, where the schema has Exchange's attribute).
pub(super) fn mail_filter(mail: &str) -> String {
    let value = ldap3::ldap_escape(mail);
    format!("(&{USER_CLASS}(|(mail={value})(proxyAddresses=smtp:{value})))")
}

/// The filter of a base-scope read of a user's DN.
pub(super) fn user_class_filter() -> &'static str {
    USER_CLASS
}

/// Whether `user` is a DN (`CN=…,OU=…`) rather than an account name: it starts with an
/// attribute type and `=`, which neither a `sAMAccountName` (where `=` is not allowed) nor a
/// user principal name (`name@domain`) does.
pub(super) fn is_dn(user: &str) -> bool {
    let Some((attribute, _)) = user.split_once('=') else { return false };
    let mut chars = attribute.trim().chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        && user.contains(',')
}

/// The password as `unicodePwd` takes it: in double quotes, UTF-16LE
/// (docs/vendors/active-directory.md#password).
pub(super) fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A 16-byte `objectGUID` in registry form: the first three fields little-endian.
pub(super) fn guid_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// Attribute names as the server spells them (AD answers with the schema's case).
struct Attributes<'a>(&'a HashMap<String, Vec<String>>);

impl Attributes<'_> {
    fn all(&self, name: &str) -> &[String] {
        self.0.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map_or(&[], |(_, values)| values.as_slice())
    }

    fn first(&self, name: &str) -> Option<String> {
        self.all(name).first().cloned()
    }

    fn number(&self, name: &str) -> Result<Option<u32>, DirectoryError> {
        let Some(text) = self.first(name) else { return Ok(None) };
        // AD writes 32-bit values as signed integers.
        let value: i64 = text
            .parse()
            .map_err(|_| DirectoryError::InvalidResponse { message: format!("{name}: '{text}' is not a number") })?;
        Ok(Some(value as u32))
    }

    fn boolean(&self, name: &str) -> Option<bool> {
        self.first(name).map(|v| v.eq_ignore_ascii_case("TRUE"))
    }
}

pub(super) fn parse_user(entry: &SearchEntry) -> Result<AdUser, DirectoryError> {
    let attrs = Attributes(&entry.attrs);
    let invalid = |what: &str| DirectoryError::InvalidResponse { message: format!("{}: {what}", entry.dn) };
    let guid = entry
        .bin_attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("objectGUID"))
        .and_then(|(_, values)| values.first())
        .and_then(|bytes| guid_string(bytes))
        .ok_or_else(|| invalid("no 16-byte objectGUID"))?;
    Ok(AdUser {
        dn: entry.dn.clone(),
        object_guid: guid,
        sam_account_name: attrs.first("sAMAccountName").ok_or_else(|| invalid("no sAMAccountName"))?,
        user_principal_name: attrs.first("userPrincipalName"),
        display_name: attrs.first("displayName"),
        mail: attrs.first("mail"),
        user_account_control: attrs.number("userAccountControl")?.ok_or_else(|| invalid("no userAccountControl"))?,
        employee_id: attrs.first("employeeID"),
        manager: attrs.first("manager"),
        member_of: attrs.all("memberOf").to_vec(),
        primary_group_id: attrs.number("primaryGroupID")?,
        hidden_from_address_lists: attrs.boolean("msExchHideFromAddressLists"),
    })
}

/// A group; built in when it lies under `CN=Builtin` or is a critical system object
/// (Domain Admins, Domain Users, …).
pub(super) fn parse_group(entry: &SearchEntry) -> AdGroup {
    let attrs = Attributes(&entry.attrs);
    let under_builtin = crate::ports::parent_dn(&entry.dn)
        .split(',')
        .next()
        .is_some_and(|rdn| rdn.trim().eq_ignore_ascii_case("CN=Builtin"));
    AdGroup {
        dn: entry.dn.clone(),
        name: attrs.first("sAMAccountName").or_else(|| attrs.first("cn")).unwrap_or_default(),
        built_in: under_builtin || attrs.boolean("isCriticalSystemObject").unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_in_registry_form() {
        let bytes = [0x77, 0x36, 0xf8, 0x99, 0x23, 0x6e, 0x44, 0x4f, 0x85, 0x56, 0xe5, 0x71, 0x30, 0x20, 0xba, 0x69];
        assert_eq!(guid_string(&bytes).unwrap(), "99f83677-6e23-4f44-8556-e5713020ba69");
        assert!(guid_string(&bytes[..15]).is_none());
    }

    #[test]
    fn the_password_is_quoted_utf16le() {
        assert_eq!(unicode_pwd("aé"), vec![b'"', 0, b'a', 0, 0xe9, 0, b'"', 0]);
    }

    #[test]
    fn filter_values_are_escaped_and_dns_told_from_names() {
        assert_eq!(
            user_filter("a*)(cn=*"),
            "(&(&(objectCategory=person)(objectClass=user))(|(sAMAccountName=a\\2a\\29\\28cn=\\2a)\
             (userPrincipalName=a\\2a\\29\\28cn=\\2a)))"
        );
        assert!(is_dn("CN=Lee Leaver,OU=Staff,DC=test,DC=local"));
        assert!(!is_dn("lee.leaver"));
        assert!(!is_dn("lee.leaver@test.local"));
        assert!(!is_dn("a=b@test.local"));
    }

    #[test]
    fn builtin_groups_are_marked() {
        let entry = |dn: &str, critical: Option<&str>| SearchEntry {
            dn: dn.into(),
            attrs: critical.map(|c| ("isCriticalSystemObject".to_string(), vec![c.to_string()])).into_iter().collect(),
            bin_attrs: HashMap::new(),
        };
        assert!(parse_group(&entry("CN=Remote Desktop Users,CN=Builtin,DC=test,DC=local", None)).built_in);
        assert!(parse_group(&entry("CN=Domain Admins,CN=Users,DC=test,DC=local", Some("TRUE"))).built_in);
        assert!(!parse_group(&entry("CN=Sales,OU=Groups,DC=test,DC=local", None)).built_in);
    }
}
