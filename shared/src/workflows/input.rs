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

/// A free-text field: trimmed, bounded, no control characters. Empty means absent.
pub fn text(field: &str, value: Option<&str>, max_len: usize) -> Result<Option<String>, OfframpError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max_len {
        return Err(OfframpError::invalid_input(format!("{field} is longer than {max_len} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(OfframpError::invalid_input(format!("{field} contains control characters")));
    }
    Ok(Some(value.to_string()))
}

/// An identifier: letters, digits, `-`, `_`, `.`, at most 64 characters.
pub fn identifier(field: &str, value: Option<&str>) -> Result<Option<String>, OfframpError> {
    let Some(value) = text(field, value, 64)? else { return Ok(None) };
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
        assert_eq!(text("reason", Some("  ended  "), 10).unwrap().as_deref(), Some("ended"));
        assert_eq!(text("reason", Some("   "), 10).unwrap(), None);
        assert!(text("reason", Some("01234567890"), 10).is_err());
        assert!(text("reason", Some("a\u{0}b"), 10).is_err());
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
