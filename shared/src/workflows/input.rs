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
/// Who asked: recorded, and named in ticket notes and notifications.
pub const INITIATED_BY: TextField = TextField::new("initiated_by", 200);
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
