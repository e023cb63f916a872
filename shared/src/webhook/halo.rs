//! HaloPSA webhooks: authentication and reading (docs/vendors/halopsa.md#webhooks).
//!
//! HaloPSA does not sign its webhooks. Its webhook can send Basic credentials, a bearer
//! token or an API-key header; Offramp checks whichever the deployment configured, in
//! constant time. Its default payload is UNCONFIRMED, so the doc gives a custom JSON payload
//! and the reader here accepts that and the plausible default field names.

use base64::Engine;
use serde_json::Value;

use super::compare::secrets_equal;
use super::event::{Action, DeliveryKey, EntityKind, WebhookEvent, fields};
use super::{WebhookError, WebhookRequest};
use crate::domain::PsaKind;
use crate::secret::SecretString;

/// How a HaloPSA webhook authenticates.
#[derive(Clone)]
pub enum HaloAuth {
    /// A header with a fixed value: an API key (`x-api-key: …`) or a bearer token
    /// (`authorization: Bearer …`, the value given whole).
    Header { name: String, value: SecretString },
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: SecretString },
}

/// Authenticate a delivery by its configured header or Basic credentials.
pub(super) fn authenticate(auth: &HaloAuth, request: &WebhookRequest) -> Result<(), WebhookError> {
    let (name, expected) = match auth {
        HaloAuth::Header { name, value } => (name.as_str(), value.expose().to_string()),
        HaloAuth::Basic { user, password } => {
            let pair = format!("{user}:{}", password.expose());
            ("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
        }
    };
    if expected.trim().is_empty() {
        return Err(WebhookError::Configuration { message: "no HaloPSA webhook credential is configured".into() });
    }
    let presented = request.header(name).ok_or_else(|| WebhookError::unauthenticated(format!("no {name} header")))?;
    if !secrets_equal(presented.trim().as_bytes(), expected.as_bytes()) {
        return Err(WebhookError::unauthenticated(format!("the {name} header is wrong")));
    }
    Ok(())
}

/// Read an authenticated delivery. The payload may be the documented custom JSON
/// (`event_id`, `entity`, `action`, `id`, `client_id`, `inactive`, `status`) or carry the
/// same facts under HaloPSA's own names; the record id is required.
pub(super) fn parse(body: &Value, raw: &[u8]) -> Result<WebhookEvent, WebhookError> {
    if !body.is_object() {
        return Err(WebhookError::malformed("a HaloPSA webhook delivery is a JSON object"));
    }
    let entity = fields::first(body, &["entity", "object", "type", "entity_type"])
        .and_then(Value::as_str)
        .map(EntityKind::from_vendor)
        .ok_or_else(|| WebhookError::malformed("the delivery names no entity"))?;
    let action = fields::first(body, &["action", "event", "event_type"])
        .and_then(Value::as_str)
        .map(Action::from_vendor)
        .unwrap_or(Action::Updated);
    let record_id = fields::first(body, &["id", "record_id", "object_id"])
        .and_then(fields::id)
        .ok_or_else(|| WebhookError::malformed("the delivery has no record id"))?;
    let company_id = match entity {
        EntityKind::Company => Some(record_id.clone()),
        _ => fields::first(body, &["client_id", "company_id"]).and_then(fields::id),
    };
    let inactive = fields::first(body, &["inactive"])
        .and_then(fields::flag)
        .or_else(|| fields::first(body, &["active", "is_active"]).and_then(fields::flag).map(|a| !a));
    let status = fields::first(body, &["status", "status_name"]).and_then(fields::text);
    let identity = fields::first(body, &["event_id", "webhook_event_id", "guid", "message_id"]).and_then(fields::id);
    let delivery_key = DeliveryKey::of_identity(PsaKind::Halo, &[identity])
        .unwrap_or_else(|| DeliveryKey::of_body(PsaKind::Halo, raw));
    Ok(WebhookEvent {
        psa: PsaKind::Halo,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn basic_credentials_and_headers_are_checked() {
        let basic = HaloAuth::Basic { user: "halo".into(), password: SecretString::new("pw") };
        let good = WebhookRequest::new(b"{}".to_vec()).with_header("Authorization", "Basic aGFsbzpwdw==");
        assert!(authenticate(&basic, &good).is_ok());
        let wrong = WebhookRequest::new(b"{}".to_vec()).with_header("Authorization", "Basic aGFsbzpwdx==");
        assert!(matches!(authenticate(&basic, &wrong), Err(WebhookError::Unauthenticated { .. })));
        let key = HaloAuth::Header { name: "x-api-key".into(), value: SecretString::new("k-123") };
        let good = WebhookRequest::new(b"{}".to_vec()).with_header("X-Api-Key", "k-123");
        assert!(authenticate(&key, &good).is_ok());
        assert!(authenticate(&key, &WebhookRequest::new(b"{}".to_vec())).is_err());
    }

    #[test]
    fn the_custom_payload_is_read() {
        let body = json!({"event_id": "e-1", "entity": "client", "action": "updated", "id": 12, "inactive": true});
        let event = parse(&body, b"raw").unwrap();
        assert_eq!(event.delivery_key.as_str(), "halo:id:e-1");
        assert_eq!(
            (event.entity, event.company_id.as_deref(), event.inactive),
            (EntityKind::Company, Some("12"), Some(true))
        );
        assert!(matches!(parse(&json!({"id": 1}), b"x"), Err(WebhookError::Malformed { .. })));
    }
}
