//! Autotask webhooks: authentication and reading (docs/vendors/autotask.md#webhooks).
//!
//! `X-Hook-Signature: sha1=<base64(HMAC-SHA1(secret key, body))>`, the secret key being the
//! one Offramp gave the webhook when it registered it. Autotask appears to sign a JSON text
//! in which some characters inside strings are `\uXXXX`-escaped (UNCONFIRMED; see the doc):
//! the raw body is tried first, then that escaped form of it.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha1::Sha1;

use super::compare::secrets_equal;
use super::event::{Action, DeliveryKey, EntityKind, WebhookEvent, fields};
use super::{WebhookError, WebhookRequest};
use crate::domain::PsaKind;
use crate::secret::SecretString;

/// The header Autotask signs webhooks in.
pub const SIGNATURE_HEADER: &str = "x-hook-signature";

/// What an Autotask webhook must prove.
#[derive(Clone)]
pub struct AutotaskAuth {
    /// The webhook's `secretKey` (at most 64 characters on Autotask's side).
    pub secret: SecretString,
}

/// Authenticate a delivery by its signature over the raw body.
pub(super) fn authenticate(auth: &AutotaskAuth, request: &WebhookRequest) -> Result<(), WebhookError> {
    use base64::Engine;
    if auth.secret.is_empty() {
        return Err(WebhookError::Configuration { message: "no Autotask webhook secret is configured".into() });
    }
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or_else(|| WebhookError::unauthenticated(format!("no {SIGNATURE_HEADER} header")))?;
    let encoded = header
        .trim()
        .strip_prefix("sha1=")
        .ok_or_else(|| WebhookError::unauthenticated(format!("{SIGNATURE_HEADER} does not start with sha1=")))?;
    let presented = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| WebhookError::unauthenticated(format!("{SIGNATURE_HEADER} is not base64")))?;
    let secret = auth.secret.expose().as_bytes();
    if secrets_equal(&presented, &hmac_sha1(secret, &request.body)?) {
        return Ok(());
    }
    let escaped = escaped_form(&request.body);
    if escaped != request.body && secrets_equal(&presented, &hmac_sha1(secret, &escaped)?) {
        return Ok(());
    }
    Err(WebhookError::unauthenticated(format!("{SIGNATURE_HEADER} does not match the body")))
}

fn hmac_sha1(secret: &[u8], body: &[u8]) -> Result<Vec<u8>, WebhookError> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret)
        .map_err(|_| WebhookError::Configuration { message: "HMAC-SHA1 refused the secret".into() })?;
    mac.update(body);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The body with `" & ' + < >` and every non-ASCII character inside JSON strings written
/// as `\uXXXX` (UTF-16, upper-case hex), the escaping .NET's JSON writer applies by default,
/// which is what Autotask seems to sign (docs/vendors/autotask.md#webhooks). Bytes outside
/// strings, and escapes already there (but `\"`), are kept as they are. A body that is not
/// UTF-8 is returned unchanged.
fn escaped_form(body: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else { return body.to_vec() };
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if !in_string {
            in_string = c == '"';
            out.push(c);
            continue;
        }
        if escaped {
            escaped = false;
            if c == '"' {
                out.pop();
                out.push_str("\\u0022");
            } else {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                in_string = false;
                out.push(c);
            }
            '&' | '\'' | '+' | '<' | '>' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Read an authenticated delivery: `EntityType`, `Action` and `Id` are required; `Fields`
/// holds the subscribed fields (`isActive`, `companyID`) when the webhook subscribed to them.
pub(super) fn parse(body: &Value, raw: &[u8]) -> Result<WebhookEvent, WebhookError> {
    if !body.is_object() {
        return Err(WebhookError::malformed("an Autotask webhook delivery is a JSON object"));
    }
    let text = |name: &str| {
        fields::first(body, &[name])
            .and_then(Value::as_str)
            .ok_or_else(|| WebhookError::malformed(format!("the delivery has no {name} text")))
    };
    let entity = EntityKind::from_vendor(text("EntityType")?);
    let action = Action::from_vendor(text("Action")?);
    let record_id = fields::first(body, &["Id"])
        .and_then(fields::id)
        .ok_or_else(|| WebhookError::malformed("the delivery has no Id"))?;
    let subscribed = fields::get(body, "Fields").filter(|f| f.is_object());
    if fields::get(body, "Fields").is_some_and(|f| !f.is_null() && !f.is_object()) {
        return Err(WebhookError::malformed("Fields is not an object"));
    }
    let field = |name: &str| subscribed.and_then(|f| fields::get(f, name)).filter(|v| !v.is_null());
    let company_id = match entity {
        EntityKind::Company => Some(record_id.clone()),
        _ => field("companyID").and_then(fields::id),
    };
    let inactive = field("isActive").and_then(fields::flag).map(|active| !active);
    let identity = |name: &str| fields::get(body, name).and_then(fields::id);
    let delivery_key = DeliveryKey::of_identity(
        PsaKind::Autotask,
        &[identity("Guid"), Some(record_id.clone()), identity("SequenceNumber")],
    )
    .unwrap_or_else(|| DeliveryKey::of_body(PsaKind::Autotask, raw));
    Ok(WebhookEvent {
        psa: PsaKind::Autotask,
        delivery_key,
        entity,
        action,
        record_id,
        company_id,
        status: None,
        inactive,
        received_at: crate::domain::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_escaped_form_escapes_inside_strings_only() {
        let body = br#"{"Name":"A&B <x> 'q' + \"z\" caf\u00e9","n":1}"#;
        let body = String::from_utf8_lossy(body).replace("\\u00e9", "é");
        let escaped = String::from_utf8(escaped_form(body.as_bytes())).unwrap();
        assert_eq!(escaped, r#"{"Name":"A\u0026B \u003Cx\u003E \u0027q\u0027 \u002B \u0022z\u0022 caf\u00E9","n":1}"#);
        assert_eq!(escaped_form(b"{\"a\":1}"), b"{\"a\":1}".to_vec());
    }

    #[test]
    fn a_delivery_is_read_with_its_identity() {
        let body = json!({"Action": "Update", "Guid": "g-1", "EntityType": "Company", "Id": 250,
            "Fields": {"isActive": false}, "SequenceNumber": 4, "EventTime": "2026-01-01T00:00:00Z"});
        let event = parse(&body, body.to_string().as_bytes()).unwrap();
        assert_eq!(event.delivery_key.as_str(), "autotask:id:g-1:250:4");
        assert_eq!((event.entity, event.action), (EntityKind::Company, Action::Updated));
        assert_eq!((event.company_id.as_deref(), event.inactive), (Some("250"), Some(true)));
        let contact = json!({"Action": "Create", "EntityType": "Contact", "Id": "9", "Fields": {"companyID": 250, "isActive": 1}});
        let event = parse(&contact, b"raw").unwrap();
        assert_eq!((event.company_id.as_deref(), event.inactive), (Some("250"), Some(false)));
        assert!(event.delivery_key.as_str().starts_with("autotask:body:"));
        let bad = json!({"Action": "Create", "EntityType": "Contact", "Id": 9, "Fields": [1]});
        assert!(matches!(parse(&bad, b"raw"), Err(WebhookError::Malformed { .. })));
    }
}
