//! Validation helpers shared by the workflows' inputs.

use serde::{Deserialize, Deserializer};

use crate::error::OfframpError;

/// Accept an id given as a JSON string or a JSON integer (`"12345"` or `12345`).
pub fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
    }
    Ok(Option::<Raw>::deserialize(deserializer)?.map(|raw| match raw {
        Raw::Text(text) => text,
        Raw::Int(number) => number.to_string(),
    }))
}

/// A free-text field of a request, as every entry point (Lambda, API, CLI) spells it, with
/// the most characters it may hold. Every free-text field of every workflow's request is
/// one of these constants and goes through [`text`]: one rule for what reaches the audit
/// trail, ticket notes and e-mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextField {
    pub name: &'static str,
    pub max_chars: usize,
}

impl TextField {
    pub const fn new(name: &'static str, max_chars: usize) -> Self {
        Self { name, max_chars }
    }
}

/// Why a run is made: recorded, and written into ticket notes and notifications.
pub const REASON: TextField = TextField::new("reason", 1000);
/// Who asked: recorded, and named in ticket notes and notifications. Room for the
/// authenticated principal, which a step of the state machine gives as its execution's ARN
/// (up to about 250 characters: two names of up to 80), and the name it acts on behalf of
/// (docs/architecture.md#who-is-asking); the end-to-end test's chain reached 210.
pub const INITIATED_BY: TextField = TextField::new("initiated_by", 600);
/// Who approved a plan (workflow 000's `approval`).
pub const APPROVED_BY: TextField = TextField::new("approval.approved_by", 200);
pub const CLIENT_NAME: TextField = TextField::new("client_name", 200);
pub const OFFBOARDED_STATUS: TextField = TextField::new("offboarded_statuses[]", 100);
/// An address is at most 254 characters (RFC 5321 path limit).
pub const REQUESTER_EMAIL: TextField = TextField::new("requester_email", 254);
pub const ORG_ID: TextField = TextField::new("org_id", 64);
pub const ORG_NAME: TextField = TextField::new("org_name", 255);
/// An organization setting's free-text value (ticket board, queue names).
pub const SETTING_TEXT: TextField = TextField::new("setting value", 100);

/// Unicode format characters (general category Cf, Unicode 15.1) and the two separators
/// (U+2028, U+2029) that break lines without being control characters. Format characters
/// are invisible: bidi overrides and isolates reorder what a reader sees (a reason that
/// reads "refund" may be stored as "dnufer"), zero-width characters hide text or make two
/// equal-looking names differ. None belongs in a reason or a name.
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is a Unicode format character (or a line/paragraph separator).
pub fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS.iter().any(|&(first, last)| (first..=last).contains(&c))
}

/// A free-text field: trimmed, at most `field.max_chars` characters, no control
/// characters (tabs and line breaks included) and no Unicode format characters. Empty
/// means absent. The error names the field and the offending character's code point,
/// never echoes the value.
pub fn text(field: TextField, value: Option<&str>) -> Result<Option<String>, OfframpError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let name = field.name;
    if value.chars().count() > field.max_chars {
        return Err(OfframpError::invalid_input(format!("{name} is longer than {} characters", field.max_chars)));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(OfframpError::invalid_input(format!(
            "{name} contains a control character (U+{:04X}); nothing was changed",
            c as u32
        )));
    }
    if let Some(c) = value.chars().find(|&c| is_format_character(c)) {
        return Err(OfframpError::invalid_input(format!(
            "{name} contains an invisible Unicode format character (U+{:04X}: bidi override, zero-width or \
             similar); nothing was changed",
            c as u32
        )));
    }
    Ok(Some(value.to_string()))
}

/// Whether `value` is a GUID (8-4-4-4-12 hexadecimal digits).
pub fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `value` is a DNS domain name: two labels or more of letters, digits and inner
/// hyphens, at most 253 characters.
pub fn is_domain(value: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    value.len() <= 253 && value.split('.').count() >= 2 && value.split('.').all(label)
}

/// A Microsoft tenant: its id (a GUID) or one of its domains, lower-cased. It goes into URL
/// paths (`/{tenant}/oauth2/v2.0/token`, docs/vendors/microsoft-graph.md#customer-tenants),
/// so nothing else passes: no `/`, `..`, `%`, `?`, `#` or spaces.
pub fn tenant(field: &'static str, value: Option<&str>) -> Result<Option<String>, OfframpError> {
    let Some(value) = text(TextField::new(field, 253), value)? else { return Ok(None) };
    let value = value.to_ascii_lowercase();
    if is_guid(&value) || is_domain(&value) {
        return Ok(Some(value));
    }
    Err(OfframpError::invalid_input(format!(
        "{field} is not a Microsoft tenant: give its tenant id (a GUID) or one of its domains (name.onmicrosoft.com)"
    )))
}

/// A directory user: a user principal name (`name@domain`) or an object id (a GUID). It goes
/// into URL paths and Exchange parameters, so the local part holds only the characters
/// Entra ID allows in a UPN (letters, digits, `.`, `-`, `_`, `'`, `+`; no `/`, `%`, `?`, `#`).
pub fn directory_user(field: &'static str, value: Option<&str>) -> Result<Option<String>, OfframpError> {
    let Some(value) = text(TextField::new(field, 1024), value)? else { return Ok(None) };
    if is_guid(&value) {
        return Ok(Some(value.to_ascii_lowercase()));
    }
    let upn = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && local.len() <= 113
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '\'' | '+'))
            && is_domain(domain)
    });
    if upn {
        return Ok(Some(value));
    }
    Err(OfframpError::invalid_input(format!(
        "{field} is not a user: give a user principal name (name@contoso.com) or an object id (a GUID)"
    )))
}

/// Characters AD never allows in a `sAMAccountName` (docs/vendors/active-directory.md#names).
const SAM_FORBIDDEN: &str = "\"/\\[]:;|=,+*?<>@";

/// Whether `value` can be an AD account's `sAMAccountName`: 1 to 20 characters, none of
/// those AD forbids, no control character, not only dots and spaces.
pub fn is_sam_account_name(value: &str) -> bool {
    let count = value.chars().count();
    (1..=20).contains(&count)
        && value.chars().all(|c| !c.is_control() && !SAM_FORBIDDEN.contains(c))
        && !value.chars().all(|c| c == '.' || c == ' ')
}

/// Whether `value` reads as an LDAP distinguished name (`CN=…,OU=…,DC=…`): RDNs of an
/// attribute name, `=` and a value, at most 1,024 characters, no control character. A
/// syntax check only: the directory says whether the entry exists.
pub fn is_distinguished_name(value: &str) -> bool {
    if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
        return false;
    }
    let mut rdns = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => {
                rdns.push(&value[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    rdns.push(&value[start..]);
    rdns.iter().all(|rdn| {
        rdn.split_once('=').is_some_and(|(attr, val)| {
            let attr = attr.trim();
            !attr.is_empty() && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !val.trim().is_empty()
        })
    })
}

/// A leaver as any directory names it: a user principal name, an object id, or an AD
/// `sAMAccountName` (modes with on-premises AD), or a distinguished name when
/// `allow_dn` (an explicit pairing).
pub fn account(field: &'static str, value: Option<&str>, allow_dn: bool) -> Result<Option<String>, OfframpError> {
    let Some(value) = text(TextField::new(field, 1024), value)? else { return Ok(None) };
    if directory_user(field, Some(&value)).is_ok() || is_sam_account_name(&value) {
        return Ok(Some(value));
    }
    if allow_dn && is_distinguished_name(&value) {
        return Ok(Some(value));
    }
    Err(OfframpError::invalid_input(format!(
        "{field} is not a user: give a user principal name (name@contoso.com), an object id (a GUID) or an AD account \
         name (sAMAccountName){}",
        if allow_dn { " or distinguished name" } else { "" }
    )))
}

/// `approval: {plan_hash, approved_by}`: a plan reviewed and approved (workflows 000 and
/// 003, docs/workflows.md#000-inputs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub plan_hash: String,
    pub approved_by: String,
}

/// `require_approval` / `approval` as the engine's consent, the same contract for every
/// workflow that takes them. An approval applies a plan, so it cannot come with a dry run.
pub fn approval_consent(
    approval: Option<&Approval>,
    dry_run: bool,
    require_approval: bool,
    override_blast_radius: bool,
) -> Result<crate::operation::Consent, OfframpError> {
    use crate::operation::{ApprovalProof, ApprovalVia};
    let proof = match approval {
        Some(approval) => Some(ApprovalProof {
            plan_hash: Some(plan_hash(&approval.plan_hash)?),
            approved_by: text(APPROVED_BY, Some(&approval.approved_by))?
                .ok_or_else(|| OfframpError::invalid_input("approval.approved_by is required"))?,
            via: ApprovalVia::Approval,
        }),
        None => None,
    };
    if proof.is_some() && dry_run {
        return Err(OfframpError::invalid_input("an approval applies a plan; it cannot be combined with dry_run"));
    }
    Ok(crate::operation::Consent {
        dry_run,
        approval_required: require_approval,
        missing_status: crate::domain::RunStatus::ApprovalRequired,
        proof,
        override_blast_radius,
    })
}

/// An identifier: letters, digits, `-`, `_`, `.`, at most 64 characters.
pub fn identifier(field: &'static str, value: Option<&str>) -> Result<Option<String>, OfframpError> {
    let Some(value) = text(TextField::new(field, 64), value)? else { return Ok(None) };
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(OfframpError::invalid_input(format!("{field} '{value}' contains characters an id cannot have")));
    }
    Ok(Some(value))
}

/// An operation id: a UUID as Offramp makes them.
pub fn operation_id(value: &str) -> Result<String, OfframpError> {
    uuid::Uuid::parse_str(value.trim()).map(|u| u.to_string()).map_err(|_| {
        OfframpError::invalid_input(format!("operation_id '{value}' is not an Offramp operation id (a UUID)"))
    })
}

/// A plan hash: 64 hexadecimal characters (SHA-256).
pub fn plan_hash(value: &str) -> Result<String, OfframpError> {
    let value = value.trim().to_ascii_lowercase();
    if value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(OfframpError::invalid_input("approval.plan_hash is not a SHA-256 hex digest (64 hex characters)"))
    }
}

/// An idempotency key: 1–128 printable ASCII characters without spaces (a UUID, a
/// webhook delivery id, a ticket number with a prefix).
pub fn idempotency_key(value: Option<&str>) -> Result<Option<String>, OfframpError> {
    let Some(value) = value else { return Ok(None) };
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(OfframpError::invalid_input(
            "idempotency_key must be 1 to 128 printable ASCII characters without spaces",
        ));
    }
    Ok(Some(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_trims_bounds_and_rejects_control_characters() {
        let reason = TextField::new("reason", 10);
        assert_eq!(text(reason, Some("  ended  ")).unwrap().as_deref(), Some("ended"));
        assert_eq!(text(reason, Some("   ")).unwrap(), None);
        assert!(text(reason, Some("01234567890")).is_err());
        assert!(text(reason, Some("a\u{0}b")).is_err());
        assert!(text(reason, Some("a\tb")).is_err());
        assert_eq!(text(reason, Some("Zoë Müller")).unwrap().as_deref(), Some("Zoë Müller"), "letters of any script");
    }

    #[test]
    fn tenants_are_guids_or_domains_and_nothing_that_changes_a_url_path() {
        let guid = "7A3F9C2E-1B4D-4E8F-9A0B-C1D2E3F4A5B6";
        assert_eq!(tenant("tenant", Some(guid)).unwrap().unwrap(), guid.to_ascii_lowercase());
        assert_eq!(tenant("tenant", Some(" Contoso.OnMicrosoft.com ")).unwrap().unwrap(), "contoso.onmicrosoft.com");
        for bad in ["contoso", "../common", "a/b.com", "a.com/..", "a%2f.com", "a.com?x", "a .com", "-a.com", "a..com"]
        {
            let error = tenant("tenant", Some(bad)).unwrap_err();
            assert_eq!(error.code(), crate::error::ErrorCode::InvalidInput, "{bad}");
            assert!(!error.to_string().contains(bad), "the message does not echo the value: {error}");
        }
        assert_eq!(tenant("tenant", None).unwrap(), None);
    }

    #[test]
    fn users_are_upns_or_object_ids() {
        assert!(directory_user("user", Some("jane.o'neil+x@contoso.example")).unwrap().is_some());
        assert!(directory_user("user", Some("7a3f9c2e-1b4d-4e8f-9a0b-c1d2e3f4a5b6")).unwrap().is_some());
        for bad in ["jane", "jane@", "@contoso.com", "ja/ne@contoso.com", "jane@contoso", "ja%20ne@x.com", "a..b@x.com"]
        {
            assert!(directory_user("user", Some(bad)).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever else it holds, a value with a path separator, a dot-dot or a percent
        /// sign is never a tenant nor a user: both are put into URL paths.
        #[test]
        fn path_characters_never_pass(prefix in "[a-z0-9.@-]{0,12}", bad in "(/|\\.\\.|%|\\?|#)", suffix in "[a-z0-9.@-]{0,12}") {
            let value = format!("{prefix}{bad}{suffix}");
            proptest::prop_assert!(tenant("tenant", Some(&value)).is_err());
            proptest::prop_assert!(directory_user("user", Some(&value)).is_err());
        }
    }

    /// Bidi overrides and isolates, zero-width characters and the BOM are refused, naming
    /// the field and the code point.
    #[test]
    fn text_rejects_unicode_format_characters() {
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{2028}'] {
            let error = text(REASON, Some(&format!("refund{c}ok"))).unwrap_err();
            assert_eq!(error.code(), crate::error::ErrorCode::InvalidInput);
            let message = error.to_string();
            assert!(message.contains("reason") && message.contains(&format!("U+{:04X}", c as u32)), "{message}");
        }
        assert!(is_format_character('\u{E0041}') && !is_format_character('é') && !is_format_character(' '));
    }

    #[test]
    fn identifiers_reject_condition_syntax() {
        assert_eq!(identifier("client_id", Some("250")).unwrap().as_deref(), Some("250"));
        assert!(identifier("client_id", Some("250 or id>0")).is_err());
        assert!(identifier("client_id", Some("\"x\"")).is_err());
    }

    #[test]
    fn plan_hash_and_operation_id_formats() {
        assert!(plan_hash(&"a".repeat(64)).is_ok());
        assert!(plan_hash("abc").is_err());
        assert!(operation_id("not-a-uuid").is_err());
        assert!(operation_id("0190f5e2-7b1c-7cc0-8a55-6a3b1c2d3e4f").is_ok());
    }
}
