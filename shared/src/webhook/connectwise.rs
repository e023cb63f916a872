//! ConnectWise PSA callbacks: authentication and reading (docs/vendors/connectwise.md#webhooks).
//!
//! Two checks, the cheap one first:
//! 1. the unguessable token Offramp put in the callback URL it registered, so a stranger
//!    cannot even make us fetch a key;
//! 2. `x-content-signature` = base64(HMAC-SHA256(key = SHA-256(signing key), raw body)),
//!    the signing key fetched from the payload's `Metadata.key_url` through [`SigningKeys`]
//!    (allow-listed origins only, cached).

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::compare::secrets_equal;
use super::event::{Action, DeliveryKey, EntityKind, WebhookEvent, fields};
use super::signing_keys::SigningKeys;
use super::{WebhookError, WebhookRequest, parse_body};
use crate::domain::PsaKind;
use crate::secret::SecretString;

/// The header ConnectWise signs callbacks in.
pub const SIGNATURE_HEADER: &str = "x-content-signature";

/// What a ConnectWise callback must prove.
#[derive(Clone)]
pub struct ConnectWiseAuth {
    /// The token in the registered callback URL (path segment or query parameter; the entry
    /// point extracts it into [`WebhookRequest::url_token`]).
    pub url_token: SecretString,
    pub keys: SigningKeys,
}

/// Authenticate a callback; returns its body, parsed once.
pub(super) async fn authenticate(auth: &ConnectWiseAuth, request: &WebhookRequest) -> Result<Value, WebhookError> {
    if auth.url_token.is_empty() {
        return Err(WebhookError::Configuration { message: "no ConnectWise callback URL token is configured".into() });
    }
    let token_ok = request
        .url_token
        .as_deref()
        .is_some_and(|token| secrets_equal(token.as_bytes(), auth.url_token.expose().as_bytes()));
    if !token_ok {
        return Err(WebhookError::unauthenticated("the callback URL's token is missing or wrong"));
    }
    let presented = signature(request)?;
    // Unauthenticated until the signature matches: a body that cannot be read names no key,
    // so it is refused as unauthenticated (401), never as malformed (400).
    let body = parse_body(&request.body)
        .map_err(|_| WebhookError::unauthenticated("the body is not JSON, so it names no signing key"))?;
    let key_url = fields::get(&body, "Metadata")
        .and_then(|metadata| fields::get(metadata, "key_url"))
        .and_then(Value::as_str)
        .ok_or_else(|| WebhookError::unauthenticated("the body has no Metadata.key_url"))?;
    let signing_key = auth.keys.key_for(key_url).await?;
    let expected = expected_signature(signing_key.expose().as_bytes(), &request.body)?;
    if !secrets_equal(&presented, &expected) {
        return Err(WebhookError::unauthenticated(format!("{SIGNATURE_HEADER} does not match the body")));
    }
    Ok(body)
}

/// The decoded signature header.
fn signature(request: &WebhookRequest) -> Result<Vec<u8>, WebhookError> {
    use base64::Engine;
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or_else(|| WebhookError::unauthenticated(format!("no {SIGNATURE_HEADER} header")))?;
    base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| WebhookError::unauthenticated(format!("{SIGNATURE_HEADER} is not base64")))
}

/// HMAC-SHA256 of the raw body, keyed with the SHA-256 of the signing key.
fn expected_signature(signing_key: &[u8], body: &[u8]) -> Result<Vec<u8>, WebhookError> {
    let key = Sha256::digest(signing_key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|_| WebhookError::Configuration { message: "HMAC-SHA256 refused a 32-byte key".into() })?;
    mac.update(body);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Read an authenticated callback. `Type`, `Action` and `ID` are required; `Entity` (the
/// record, an object or a JSON-encoded string) gives the company, status and inactive flag.
///
/// The top-level `CompanyId` is the MSP's own ConnectWise login company, not the client:
/// the client is the record itself (type `company`) or the record's `company.id`.
pub(super) fn parse(body: &Value, raw: &[u8]) -> Result<WebhookEvent, WebhookError> {
    if !body.is_object() {
        return Err(WebhookError::malformed("a ConnectWise callback is a JSON object"));
    }
    let required = |name: &str| {
        fields::first(body, &[name]).ok_or_else(|| WebhookError::malformed(format!("the callback has no {name}")))
    };
    let entity =
        EntityKind::from_vendor(required("Type")?.as_str().ok_or_else(|| WebhookError::malformed("Type is not text"))?);
    let action =
        Action::from_vendor(required("Action")?.as_str().ok_or_else(|| WebhookError::malformed("Action is not text"))?);
    let record_id = fields::id(required("ID")?).ok_or_else(|| WebhookError::malformed("ID is not an id"))?;
    let record = entity_record(body)?;
    let company_id = match entity {
        EntityKind::Company => Some(record_id.clone()),
        _ => record
            .as_ref()
            .and_then(|r| fields::get(r, "company"))
            .and_then(|c| fields::get(c, "id"))
            .and_then(fields::id),
    };
    let status = record
        .as_ref()
        .and_then(|r| fields::get(r, "status"))
        .and_then(|status| fields::text(status).or_else(|| fields::get(status, "name").and_then(fields::text)));
    let inactive = record.as_ref().and_then(|r| {
        fields::get(r, "inactiveFlag")
            .and_then(fields::flag)
            .or_else(|| fields::get(r, "activeFlag").and_then(fields::flag).map(|active| !active))
    });
    let message_id = fields::get(body, "MessageId").and_then(fields::id);
    let delivery_key = DeliveryKey::of_identity(PsaKind::ConnectWise, &[message_id])
        .unwrap_or_else(|| DeliveryKey::of_body(PsaKind::ConnectWise, raw));
    Ok(WebhookEvent {
        psa: PsaKind::ConnectWise,
        delivery_key,
        entity,
        action,
        record_id,
        company_id,
        status,
        inactive,
        received_at: crate::domain::now(),
    })
}

/// `Entity` as an object: given as one, or as a JSON-encoded string of one (ConnectWise
/// often sends the latter); absent or null for a deleted record.
fn entity_record(body: &Value) -> Result<Option<Value>, WebhookError> {
    match fields::get(body, "Entity") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(_)) => Ok(fields::get(body, "Entity").cloned()),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => match parse_body(text.as_bytes()) {
            Ok(value @ Value::Object(_)) => Ok(Some(value)),
            Ok(Value::Null) => Ok(None),
            _ => Err(WebhookError::malformed("Entity is a string that is not a JSON object")),
        },
        Some(_) => Err(WebhookError::malformed("Entity is neither an object nor a JSON-encoded string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(body: Value) -> Result<WebhookEvent, WebhookError> {
        let raw = body.to_string().into_bytes();
        parse(&body, &raw)
    }

    #[test]
    fn entity_may_be_an_object_or_a_json_string() {
        let record = json!({"id": 250, "status": {"id": 3, "name": "Offboarded"}, "inactiveFlag": false});
        for entity in [record.clone(), Value::String(record.to_string())] {
            let event = parsed(json!({"MessageId": "m1", "Type": "company", "Action": "updated", "ID": 250,
                "CompanyId": "msp", "Entity": entity}))
            .unwrap();
            assert_eq!(event.entity, EntityKind::Company);
            assert_eq!(event.company_id.as_deref(), Some("250"));
            assert_eq!(event.status.as_deref(), Some("Offboarded"));
            assert_eq!(event.inactive, Some(false));
            assert_eq!(event.delivery_key.as_str(), "connectwise:id:m1");
        }
    }

    #[test]
    fn a_contact_belongs_to_its_company_not_to_the_login_company() {
        let event = parsed(json!({"Type": "contact", "Action": "added", "ID": "7", "CompanyId": "msp",
            "Entity": {"company": {"id": 250}, "inactiveFlag": true}}))
        .unwrap();
        assert_eq!(event.company_id.as_deref(), Some("250"));
        assert_eq!(event.inactive, Some(true));
        assert!(event.delivery_key.as_str().starts_with("connectwise:body:"), "no MessageId: the body's hash");
    }

    #[test]
    fn missing_or_garbled_fields_are_malformed() {
        for body in [
            json!([]),
            json!({"Action": "updated", "ID": 1}),
            json!({"Type": "company", "ID": 1}),
            json!({"Type": "company", "Action": "updated"}),
            json!({"Type": "company", "Action": "updated", "ID": {"x": 1}}),
            json!({"Type": "company", "Action": "updated", "ID": 1, "Entity": "{not json"}),
            json!({"Type": "company", "Action": "updated", "ID": 1, "Entity": 5}),
        ] {
            assert!(matches!(parsed(body.clone()), Err(WebhookError::Malformed { .. })), "{body}");
        }
    }

    #[test]
    fn the_signature_is_keyed_with_the_hash_of_the_signing_key() {
        let key = Sha256::digest(b"k");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(b"body");
        assert_eq!(expected_signature(b"k", b"body").unwrap(), mac.finalize().into_bytes().to_vec());
        assert_ne!(expected_signature(b"k", b"body").unwrap(), expected_signature(b"k", b"bodz").unwrap());
    }
}
