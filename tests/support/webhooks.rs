//! Signed PSA webhook deliveries for the tests, written from the vendors' descriptions
//! (docs/vendors/connectwise.md#webhooks, autotask.md#webhooks, halopsa.md#webhooks) and
//! not with the library's own code, so a mistake there shows as a refused delivery here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use offramp::webhook::WebhookRequest;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The token the tests put in ConnectWise's registered callback URL.
pub const CW_URL_TOKEN: &str = "cw-url-token-5f1d8a2c9b7e4d10";
/// The Autotask webhook's secret key.
pub const AT_SECRET_KEY: &str = "autotask-webhook-secret-0c9e";
/// HaloPSA's Basic credentials.
pub const HALO_USER: &str = "halo-webhook";
pub const HALO_PASSWORD: &str = "halo-webhook-password-77a1";

/// base64(HMAC-SHA256(key = SHA-256(signing key), body)): ConnectWise's `x-content-signature`.
pub fn connectwise_signature(signing_key: &str, body: &[u8]) -> String {
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `sha1=` + base64(HMAC-SHA1(secret, body)): Autotask's `X-Hook-Signature`.
pub fn autotask_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha1={}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A ConnectWise company callback: `Entity` JSON-encoded as a string, as ConnectWise often sends it.
pub fn connectwise_company_body(message_id: &str, key_url: &str, company_id: i64, status: &str) -> Vec<u8> {
    let entity = json!({"id": company_id, "identifier": format!("C{company_id}"), "name": "Client",
        "status": {"id": 3, "name": status}, "deletedFlag": false});
    json!({
        "MessageId": message_id,
        "FromUrl": "https://api-na.myconnectwise.net",
        "CompanyId": "mspcompany",
        "MemberId": "apiuser",
        "Action": "updated",
        "Type": "company",
        "ID": company_id,
        "ProductInstanceId": null,
        "PartnerId": null,
        "Entity": entity.to_string(),
        "Metadata": {"key_url": key_url},
        "CallbackObjectRecId": 1
    })
    .to_string()
    .into_bytes()
}

/// A delivery of `body` to the ConnectWise endpoint, signed with `signing_key`, through a URL
/// carrying `url_token`.
pub fn connectwise_request(body: Vec<u8>, signing_key: &str, url_token: &str) -> WebhookRequest {
    let signature = connectwise_signature(signing_key, &body);
    WebhookRequest::new(body).with_header("x-content-signature", &signature).with_url_token(url_token)
}

/// An Autotask company webhook delivery.
pub fn autotask_company_body(guid: &str, company_id: i64, sequence: u64, active: bool) -> Vec<u8> {
    json!({"Action": "Update", "Guid": guid, "EntityType": "Company", "Id": company_id,
        "Fields": {"isActive": active, "companyName": "Client & Sons"}, "EventTime": "2026-01-22T10:30:00Z",
        "SequenceNumber": sequence, "PersonID": 29682885})
    .to_string()
    .into_bytes()
}

pub fn autotask_request(body: Vec<u8>, secret: &str) -> WebhookRequest {
    let signature = autotask_signature(secret, &body);
    WebhookRequest::new(body).with_header("X-Hook-Signature", &signature)
}

/// HaloPSA's documented custom payload for a client event.
pub fn halo_client_body(event_id: &str, client_id: i64, inactive: bool) -> Vec<u8> {
    json!({"event_id": event_id, "entity": "client", "action": "updated", "id": client_id,
        "client_id": client_id, "inactive": inactive})
    .to_string()
    .into_bytes()
}

pub fn halo_request(body: Vec<u8>, user: &str, password: &str) -> WebhookRequest {
    let credentials = STANDARD.encode(format!("{user}:{password}"));
    WebhookRequest::new(body).with_header("Authorization", &format!("Basic {credentials}"))
}

/// `body` with one bit of byte `index` flipped.
pub fn flip_bit(mut bytes: Vec<u8>, index: usize) -> Vec<u8> {
    let index = index % bytes.len().max(1);
    if let Some(byte) = bytes.get_mut(index) {
        *byte ^= 0x01;
    }
    bytes
}

/// A base64 signature with one bit of its decoded bytes flipped (the `sha1=` prefix kept).
pub fn flip_signature_bit(signature: &str) -> String {
    let (prefix, encoded) = signature.split_once('=').filter(|(p, _)| *p == "sha1").unwrap_or(("", signature));
    let flipped = STANDARD.encode(flip_bit(STANDARD.decode(encoded).expect("base64"), 3));
    if prefix.is_empty() { flipped } else { format!("{prefix}={flipped}") }
}

/// The value of a JSON body, for assertions.
pub fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON")
}

/// A delivery log that counts every call, so a test can show a refused delivery touched nothing.
#[derive(Default)]
pub struct CountingLog {
    pub inner: offramp::adapters::delivery_log::MemoryDeliveryLog,
    pub calls: std::sync::atomic::AtomicUsize,
}

#[offramp::ports::async_trait]
impl offramp::ports::DeliveryLog for CountingLog {
    async fn claim(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<offramp::ports::DeliveryClaim>, offramp::error::AuditError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.claim(key, ttl).await
    }
    async fn keep(
        &self,
        claim: &offramp::ports::DeliveryClaim,
        ttl: std::time::Duration,
    ) -> Result<(), offramp::error::AuditError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.keep(claim, ttl).await
    }
    async fn forget(&self, key: &str) -> Result<(), offramp::error::AuditError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.forget(key).await
    }
}
