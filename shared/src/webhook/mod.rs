//! PSA webhooks: a delivery from ConnectWise, Autotask or HaloPSA is authenticated, read
//! into one [`WebhookEvent`], recorded once ([`delivery`]), and routed by the client's
//! settings ([`routing`]) to "start the offboarding chain" or "ignore"
//! (docs/architecture.md#psa-webhooks).
//!
//! The order of the checks is the contract:
//! 1. size: a body over the limit is refused (413) before it is read as JSON;
//! 2. authentication ([`connectwise`], [`autotask`], [`halo`]): anything unproven is 401,
//!    and nothing has been recorded or started;
//! 3. reading: an authenticated body Offramp cannot read is 400;
//! 4. the delivery log: a delivery seen before is acknowledged and does nothing.
//!
//! Every comparison with a secret is constant-time ([`compare`]). No token, signature,
//! signing key or credential is ever logged or put into an error message.

pub mod autotask;
pub mod compare;
pub mod connectwise;
pub mod delivery;
mod error;
pub mod event;
pub mod halo;
pub mod routing;
pub mod signing_keys;

pub use autotask::AutotaskAuth;
pub use connectwise::ConnectWiseAuth;
pub use delivery::{DEFAULT_DELIVERY_TTL, Delivery, record_delivery};
pub use error::WebhookError;
pub use event::{Action, DeliveryKey, EntityKind, WebhookEvent, execution_name};
pub use halo::HaloAuth;
pub use routing::{RouteDecision, TriggerPolicy, route, trigger_policy};
pub use signing_keys::{KeyCacheSettings, KeyUrlAllowList, SigningKeys};

use crate::domain::PsaKind;

/// The largest body a webhook reads by default: PSA events are a few kilobytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// One inbound delivery as the entry point received it: the raw body bytes (decoded from
/// API Gateway's base64 when it was, never re-serialised: the signatures cover the exact
/// bytes), the headers, and the token from the registered URL if it had one.
#[derive(Clone, Default)]
pub struct WebhookRequest {
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url_token: Option<String>,
}

/// Names the headers, never their values (they carry signatures and credentials).
impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("WebhookRequest")
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .field("url_token", &self.url_token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl WebhookRequest {
    pub fn new(body: Vec<u8>) -> Self {
        Self { body, ..Self::default() }
    }

    /// Add a header (API Gateway's HTTP API lowercases names; lookups ignore case anyway).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_url_token(mut self, token: &str) -> Self {
        self.url_token = Some(token.to_string());
        self
    }

    /// The first header of this name, ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a PSA's deliveries must prove.
#[derive(Clone)]
pub enum PsaAuth {
    ConnectWise(ConnectWiseAuth),
    Autotask(AutotaskAuth),
    Halo(HaloAuth),
}

impl PsaAuth {
    pub fn psa(&self) -> PsaKind {
        match self {
            PsaAuth::ConnectWise(_) => PsaKind::ConnectWise,
            PsaAuth::Autotask(_) => PsaKind::Autotask,
            PsaAuth::Halo(_) => PsaKind::Halo,
        }
    }
}

/// Authenticates and reads one PSA's deliveries.
#[derive(Clone)]
pub struct WebhookReceiver {
    auth: PsaAuth,
    max_body_bytes: usize,
}

impl WebhookReceiver {
    pub fn new(auth: PsaAuth) -> Self {
        Self { auth, max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }

    /// Refuse bodies larger than `bytes` (413).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    pub fn psa(&self) -> PsaKind {
        self.auth.psa()
    }

    /// The largest body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The delivery, authenticated and read; nothing is recorded here.
    pub async fn receive(&self, request: &WebhookRequest) -> Result<WebhookEvent, WebhookError> {
        let result = self.check(request).await;
        if let Err(error) = &result {
            // The reason names the check, never a value; the PSA is all that identifies it.
            tracing::info!(psa = %self.psa(), status = error.http_status(), reason = %error, "webhook refused");
        }
        result
    }

    async fn check(&self, request: &WebhookRequest) -> Result<WebhookEvent, WebhookError> {
        if request.body.len() > self.max_body_bytes {
            return Err(WebhookError::TooLarge { size: request.body.len(), limit: self.max_body_bytes });
        }
        let raw = request.body.as_slice();
        match &self.auth {
            PsaAuth::ConnectWise(auth) => {
                let body = connectwise::authenticate(auth, request).await?;
                connectwise::parse(&body, raw)
            }
            PsaAuth::Autotask(auth) => {
                autotask::authenticate(auth, request)?;
                autotask::parse(&parse_authenticated(raw)?, raw)
            }
            PsaAuth::Halo(auth) => {
                halo::authenticate(auth, request)?;
                halo::parse(&parse_authenticated(raw)?, raw)
            }
        }
    }
}

/// A body as JSON, nested at most [`crate::http::MAX_JSON_DEPTH`] levels (the HTTP layer's
/// bound, checked before parsing).
pub(crate) fn parse_body(raw: &[u8]) -> Result<serde_json::Value, crate::http::JsonError> {
    crate::http::limits::parse_json(raw)
}

/// An authenticated body that is not JSON is malformed (400).
fn parse_authenticated(raw: &[u8]) -> Result<serde_json::Value, WebhookError> {
    parse_body(raw).map_err(|e| WebhookError::malformed(format!("the body is not JSON: {e}")))
}
