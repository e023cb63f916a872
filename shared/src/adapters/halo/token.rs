//! HaloPSA's credentials: an OAuth2 client-credentials token, cached and renewed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::adapters::rotating_secret::{RotatingSecret, TokenRequestError};
use crate::adapters::vendor_http::{Authorize, Fields};
use crate::error::PsaError;
use crate::http::{HttpClient, HttpRequest, HttpResponse, Redactor, Retry};
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// Refresh a token this long before HaloPSA says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

pub(super) struct Token {
    header: SecretString,
    valid_until: Instant,
}

/// `POST {auth}/token` with the client credentials; the bearer token on every request.
pub(super) struct ClientCredentials {
    pub token_url: url::Url,
    pub client_id: String,
    /// Read through the secret store before each token request, when it rotates.
    client_secret: RotatingSecret,
    pub scope: String,
    token: Mutex<Option<Token>>,
}

impl ClientCredentials {
    pub fn new(token_url: url::Url, client_id: String, client_secret: SecretString, scope: String) -> Self {
        let client_secret = RotatingSecret::new("HALO_CLIENT_SECRET", client_secret);
        Self { token_url, client_id, client_secret, scope, token: Mutex::new(None) }
    }

    /// Read the client secret through `store` before each token request, and once more
    /// after the token endpoint refuses it: a rotated secret is picked up without a restart.
    pub fn read_secret_from(&self, store: Arc<dyn SecretStore>) {
        self.client_secret.read_from(store);
    }

    /// The `Authorization` header value, fetching a token when there is none, it is about to
    /// expire, or `force_new` (after a 401: revoked, or clock skew).
    pub async fn authorization(&self, http: &HttpClient, force_new: bool) -> Result<SecretString, PsaError> {
        let mut token = self.token.lock().await;
        if !force_new
            && let Some(current) = token.as_ref()
            && Instant::now() < current.valid_until
        {
            return Ok(current.header.clone());
        }
        let response = self.client_secret.send_token_request(http, |secret| self.token_request(secret)).await.map_err(
            |error| match error {
                TokenRequestError::Secret(e) => {
                    PsaError::Configuration { message: format!("reading HALO_CLIENT_SECRET: {e}") }
                }
                TokenRequestError::Http(e) => PsaError::from_http(e),
            },
        )?;
        let fetched = token_answer(http.redactor(), &response, Instant::now())?;
        let header = fetched.header.clone();
        *token = Some(fetched);
        Ok(header)
    }
}

/// The token the token endpoint answered (learned by the redactor: HaloPSA may echo it in a
/// refusal), valid until `now` plus its lifetime less a margin; or why there is none.
pub(super) fn token_answer(redactor: &Redactor, response: &HttpResponse, now: Instant) -> Result<Token, PsaError> {
    if !response.is_success() {
        let message = redactor.scrub(&super::errors::read_error(response).message);
        return Err(match response.status {
            400 | 401 | 403 => PsaError::PermissionDenied {
                message: format!("HaloPSA refused the client credentials (HTTP {}): {message}", response.status),
            },
            status => {
                PsaError::Connection { message: format!("HaloPSA token endpoint answered HTTP {status}: {message}") }
            }
        });
    }
    let body = response.json().map_err(|e| PsaError::InvalidResponse { message: format!("token: {e}") })?;
    let body = Fields::of(&body);
    let access = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| PsaError::InvalidResponse { message: "token response has no access_token".into() })?;
    // The token is a credential from now on: HaloPSA may echo it in a refusal.
    redactor.learn(access);
    let kind = body.text("token_type").unwrap_or_else(|| "Bearer".into());
    let lifetime = Duration::from_secs(body.uint("expires_in").unwrap_or(3600));
    let header = SecretString::new(format!("{kind} {access}"));
    tracing::debug!(expires_in_s = lifetime.as_secs(), "HaloPSA token fetched");
    Ok(Token { header, valid_until: crate::http::limits::token_renewal(now, lifetime, TOKEN_MARGIN) })
}

impl ClientCredentials {
    fn token_request(&self, secret: &SecretString) -> HttpRequest {
        HttpRequest::new(Method::POST, self.token_url.clone())
            .form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", secret.expose()),
                ("scope", &self.scope),
            ])
            .header("accept", "application/json")
            // A token request creates nothing that matters: repeating it is harmless.
            .retry(Retry::Idempotent)
            .max_body(crate::http::SMALL_BODY_BYTES)
    }
}

#[async_trait]
impl Authorize<PsaError> for ClientCredentials {
    async fn authorize(&self, http: &HttpClient, request: HttpRequest, renew: bool) -> Result<HttpRequest, PsaError> {
        let authorization = self.authorization(http, renew).await?;
        Ok(request.sensitive_header("authorization", authorization.expose()))
    }

    fn renewable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::limits::MAX_TOKEN_LIFETIME;

    /// Found writing the `make fuzz` targets (reproduced by vendor_halo): `"expires_in":
    /// 18446744073709551615` panicked adding the lifetime to the clock, and a release build
    /// aborts on a panic.
    #[test]
    fn any_expires_in_is_read_without_panicking_and_capped() {
        for expires_in in ["18446744073709551615", "9223372036854775807", "0", "3600"] {
            let body = format!(r#"{{"access_token": "tok-123", "expires_in": {expires_in}}}"#);
            let response = HttpResponse { status: 200, headers: Default::default(), body: body.into_bytes() };
            let now = Instant::now();
            let token = token_answer(&Redactor::default(), &response, now).unwrap();
            assert!(token.valid_until <= now + MAX_TOKEN_LIFETIME, "{expires_in}");
            assert_eq!(token.header.expose(), "Bearer tok-123");
        }
    }
}
