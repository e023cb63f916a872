//! The one shape every PSA's delivery is read into, and the identity of a delivery.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::PsaKind;

/// What kind of record a delivery is about. Types Offramp does not act on are kept by name,
/// so that they can be acknowledged and ignored rather than refused as malformed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Company,
    Contact,
    Configuration,
    Ticket,
    Other(String),
}

impl EntityKind {
    /// Reads the vendors' names of a record type, ignoring case and a plural `s`:
    /// ConnectWise `company`, Autotask `Company` / `ConfigurationItem`, HaloPSA `client` / `asset`.
    pub fn from_vendor(name: &str) -> Self {
        let lower = name.trim().to_ascii_lowercase();
        let singular = lower.strip_suffix('s').unwrap_or(&lower);
        match singular {
            "company" | "companie" | "client" | "account" => EntityKind::Company,
            "contact" | "user" => EntityKind::Contact,
            "configuration" | "configurationitem" | "asset" | "device" => EntityKind::Configuration,
            "ticket" | "fault" => EntityKind::Ticket,
            _ => EntityKind::Other(name.trim().chars().take(64).collect()),
        }
    }
}

/// What happened to the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Other(String),
}

impl Action {
    /// ConnectWise `added` / `updated` / `deleted`, Autotask `Create` / `Update` / `Delete`,
    /// HaloPSA's own words; anything else kept by name (Autotask's `Deactivated`, for one).
    pub fn from_vendor(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().as_str() {
            "added" | "add" | "create" | "created" | "insert" | "new" => Action::Created,
            "updated" | "update" | "change" | "changed" | "edit" => Action::Updated,
            "deleted" | "delete" | "remove" | "removed" => Action::Deleted,
            _ => Action::Other(name.trim().chars().take(64).collect()),
        }
    }
}

/// The identity of one delivery: the vendor's own event identity where it has one, else
/// the SHA-256 of the raw body. Always prefixed by the PSA, so two PSAs cannot collide, and
/// bounded in length (a long vendor identity is hashed), so it fits any store key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryKey(String);

/// Longest vendor identity kept as it is; longer ones are hashed.
const MAX_IDENTITY_CHARS: usize = 160;

impl DeliveryKey {
    /// The key of the vendor's event identity `parts` (joined with `:`); `None` when a part
    /// is missing or blank, so the caller falls back to [`DeliveryKey::of_body`].
    pub fn of_identity(psa: PsaKind, parts: &[Option<String>]) -> Option<Self> {
        let parts: Option<Vec<&str>> =
            parts.iter().map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty())).collect();
        let identity = parts?.join(":");
        let printable = identity.chars().all(|c| c.is_ascii_graphic());
        let identity = if identity.chars().count() <= MAX_IDENTITY_CHARS && printable {
            identity
        } else {
            format!("sha256-{}", sha256_hex(identity.as_bytes()))
        };
        Some(DeliveryKey(format!("{psa}:id:{identity}")))
    }

    /// The key of a delivery without an identity: the SHA-256 of its raw body.
    pub fn of_body(psa: PsaKind, body: &[u8]) -> Self {
        DeliveryKey(format!("{psa}:body:{}", sha256_hex(body)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The Step Functions execution name of the chain a delivery starts: the same for every
/// delivery of one event, so two deliveries racing past the delivery log still cannot start
/// two executions (Step Functions refuses a second execution of a name within 90 days).
/// `{psa}-{64 hex digits}`: at most 76 characters of `[A-Za-z0-9_-]`, inside the 80 allowed.
pub fn execution_name(key: &DeliveryKey) -> String {
    let psa = key.as_str().split(':').next().unwrap_or("psa");
    let psa: String = psa.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    format!("{psa}-{}", sha256_hex(key.as_str().as_bytes()))
}

/// One delivery, read and authenticated, in the same shape for every PSA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub psa: PsaKind,
    pub delivery_key: DeliveryKey,
    pub entity: EntityKind,
    pub action: Action,
    /// The id of the record the event is about.
    pub record_id: String,
    /// The PSA company (the MSP's client) the record is, or belongs to, when the delivery says.
    pub company_id: Option<String>,
    /// The record's status name, when the delivery carries it (ConnectWise company status).
    pub status: Option<String>,
    /// Whether the record is inactive, when the delivery carries it.
    pub inactive: Option<bool>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// Defensive readers over an untrusted JSON body: field names compared ignoring ASCII case,
/// ids taken from numbers or strings, booleans from `true`/`false`, `0`/`1` or their text.
pub(crate) mod fields {
    use super::Value;

    /// The value of `name` in `object`, ignoring ASCII case.
    pub fn get<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
        let map = object.as_object()?;
        map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
    }

    /// The first of `names` present and not null.
    pub fn first<'a>(object: &'a Value, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|name| get(object, name).filter(|v| !v.is_null()))
    }

    /// An id: a whole number or a non-blank string of at most 64 printable characters.
    pub fn id(value: &Value) -> Option<String> {
        match value {
            Value::Number(n) => n.as_i64().map(|n| n.to_string()).or_else(|| n.as_u64().map(|n| n.to_string())),
            Value::String(s) => {
                let s = s.trim();
                (!s.is_empty() && s.chars().count() <= 64 && !s.chars().any(char::is_control)).then(|| s.to_string())
            }
            _ => None,
        }
    }

    /// Text of at most 200 characters, control characters dropped.
    pub fn text(value: &Value) -> Option<String> {
        let s = value.as_str()?.trim();
        (!s.is_empty()).then(|| s.chars().filter(|c| !c.is_control()).take(200).collect())
    }

    /// A boolean as the vendors write them.
    pub fn flag(value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_valid_and_stable() {
        let key = DeliveryKey::of_identity(PsaKind::ConnectWise, &[Some("m-1".into())]).unwrap();
        let name = execution_name(&key);
        assert_eq!(name, execution_name(&key.clone()));
        assert!(name.starts_with("connectwise-"), "{name}");
        assert!((1..=80).contains(&name.len()), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{name}");
        let other = DeliveryKey::of_identity(PsaKind::ConnectWise, &[Some("m-2".into())]).unwrap();
        assert_ne!(execution_name(&other), name);
    }

    #[test]
    fn identities_are_bounded_and_missing_parts_fall_back() {
        assert!(DeliveryKey::of_identity(PsaKind::Autotask, &[Some("g".into()), None]).is_none());
        assert!(DeliveryKey::of_identity(PsaKind::Autotask, &[Some(" ".into())]).is_none());
        let long = DeliveryKey::of_identity(PsaKind::Halo, &[Some("x".repeat(500))]).unwrap();
        assert!(long.as_str().len() < 100, "{long}");
        let spaced = DeliveryKey::of_identity(PsaKind::Halo, &[Some("a b".into())]).unwrap();
        assert!(spaced.as_str().starts_with("halo:id:sha256-"), "{spaced}");
        assert_ne!(DeliveryKey::of_body(PsaKind::Halo, b"{}"), DeliveryKey::of_body(PsaKind::Autotask, b"{}"));
    }

    #[test]
    fn vendor_names_are_read_loosely() {
        assert_eq!(EntityKind::from_vendor("Companies"), EntityKind::Company);
        assert_eq!(EntityKind::from_vendor("ConfigurationItem"), EntityKind::Configuration);
        assert_eq!(EntityKind::from_vendor("client"), EntityKind::Company);
        assert_eq!(EntityKind::from_vendor("TicketNote"), EntityKind::Other("TicketNote".into()));
        assert_eq!(Action::from_vendor("added"), Action::Created);
        assert_eq!(Action::from_vendor("Update"), Action::Updated);
        assert_eq!(Action::from_vendor("Deactivated"), Action::Other("Deactivated".into()));
    }
}
