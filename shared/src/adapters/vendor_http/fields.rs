//! Reading vendor JSON defensively, and checking ids before they reach a URL.

use serde_json::Value;

use super::VendorError;
use crate::domain::{Company, ConfigState, ConfigStatus};
use crate::error::PsaError;

/// The fields of one vendor record. A name starting with `/` is a JSON pointer
/// (`/company/id`); any other name is a key of the record itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    value: &'a Value,
    ignore_case: bool,
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value) -> Self {
        Self { value, ignore_case: false }
    }

    /// Keys found ignoring case (Autotask answers camelCase, its models are PascalCase).
    pub fn ignoring_case(value: &'a Value) -> Self {
        Self { value, ignore_case: true }
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        if name.starts_with('/') {
            return self.value.pointer(name);
        }
        let object = self.value.as_object()?;
        match object.get(name) {
            Some(value) => Some(value),
            None if self.ignore_case => object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v),
            None => None,
        }
    }

    /// An integer, also when sent as `95.0` (HaloPSA does).
    pub fn int(&self, name: &str) -> Option<i64> {
        let value = self.get(name)?;
        value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    }

    pub fn uint(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(Value::as_u64)
    }

    pub fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// A string as it is, `""` when missing.
    pub fn str(&self, name: &str) -> String {
        self.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    /// A non-empty string, trimmed.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
    }

    /// An id or short text: a string as it is (trimmed, non-empty), a number as text.
    pub fn id(&self, name: &str) -> Option<String> {
        id_text(self.get(name))
    }

    /// A positive integer id as text; 0, negative (HaloPSA's -1 "General User") or null is none.
    pub fn positive(&self, name: &str) -> Option<String> {
        self.int(name).filter(|v| *v > 0).map(|v| v.to_string())
    }

    /// The record's own integer id; a record without one is an invalid answer.
    pub fn record_id<E: VendorError>(&self, what: &str) -> Result<i64, E> {
        self.int("id").ok_or_else(|| E::invalid_response(format!("{what} without an id")))
    }
}

/// A value that should hold an id or a short text: strings trimmed, numbers as text.
pub(crate) fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(i.to_string()),
            // An integer sent as `95.0` is the integer.
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some((f as i64).to_string()),
            _ => Some(n.to_string()),
        },
        _ => None,
    }
}

/// A record id as every vendor here uses them: a positive integer. Anything else is refused
/// before a request is built, so no input can reach a URL or a filter unchecked.
pub(crate) fn positive_id<E: VendorError>(id: &str, vendor: &str, what: &str) -> Result<i64, E> {
    id.trim().parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        E::invalid_id(format!("'{id}' is not {} {vendor} {what} id (a positive integer)", article(vendor)))
    })
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" }
}

/// The state of a record that has only an active flag (Autotask `isActive`, HaloPSA
/// `inactive`): inactive is archived when the vendor-specific `archived` test says so (a
/// type or status configured as archived), since neither vendor has an archived flag.
pub(crate) fn flag_state(active: bool, archived: bool) -> ConfigState {
    match (active, archived) {
        (true, _) => ConfigState::Active,
        (false, true) => ConfigState::Archived,
        (false, false) => ConfigState::Inactive,
    }
}

/// A status named after its state, keeping the vendor's status id (if any).
pub(crate) fn status_of(state: ConfigState, id: Option<String>) -> ConfigStatus {
    let name = match state {
        ConfigState::Active => "Active",
        ConfigState::Inactive => "Inactive",
        ConfigState::Archived => "Archived",
    };
    ConfigStatus { id, name: name.to_string(), state }
}

/// `url` with a trailing `/`, so that `join` appends to its path instead of replacing the last segment.
pub(crate) fn with_trailing_slash(mut url: url::Url) -> url::Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Keep the companies named exactly `name`, ignoring case and surrounding spaces (vendor
/// name filters may be case-sensitive, substring or fuzzy: the answer is checked here).
pub(crate) fn exactly_named(companies: Vec<Result<Company, PsaError>>, name: &str) -> Result<Vec<Company>, PsaError> {
    let wanted = name.trim().to_lowercase();
    companies.into_iter().filter(|c| c.as_ref().map_or(true, |c| c.name.trim().to_lowercase() == wanted)).collect()
}

/// `found` has `wanted`: equal, or for an object, each of `wanted`'s fields held (a record
/// read back after a write whose answer was lost, against what the write set).
pub(crate) fn holds(found: &Value, wanted: &Value) -> bool {
    match wanted {
        Value::Object(fields) => fields.iter().all(|(key, value)| holds(&found[key], value)),
        other => found == other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DocError;
    use serde_json::json;

    #[test]
    fn fields_read_pointers_floats_and_case() {
        let value = json!({"Id": 7, "count": 95.0, "half": 95.5, "company": {"id": 250}, "name": " x ", "none": null});
        assert_eq!(Fields::of(&value).int("Id"), Some(7));
        assert_eq!(Fields::of(&value).int("id"), None);
        assert_eq!(Fields::ignoring_case(&value).int("id"), Some(7));
        assert_eq!(Fields::of(&value).int("count"), Some(95));
        assert_eq!(Fields::of(&value).int("half"), None);
        assert_eq!(Fields::of(&value).id("/company/id").as_deref(), Some("250"));
        assert_eq!(Fields::of(&value).text("name").as_deref(), Some("x"));
        assert_eq!(Fields::of(&value).str("name"), " x ");
        assert_eq!(Fields::of(&value).id("none"), None);
    }

    #[test]
    fn ids_must_be_positive_integers() {
        assert_eq!(positive_id::<PsaError>(" 250 ", "ConnectWise", "company").unwrap(), 250);
        for bad in ["", "abc", "-3", "0", "1; drop", "250 or 1=1", "../x"] {
            assert!(matches!(positive_id::<PsaError>(bad, "ConnectWise", "company"), Err(PsaError::InvalidId { .. })));
            assert!(matches!(positive_id::<DocError>(bad, "IT Glue", "export"), Err(DocError::InvalidId { .. })));
        }
        let err = positive_id::<DocError>("x", "IT Glue", "organization").unwrap_err();
        assert_eq!(err.to_string(), "'x' is not an IT Glue organization id (a positive integer)");
    }
}
