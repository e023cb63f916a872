//! One credential an OAuth client sends to get a token (HaloPSA's and Entra's client
//! secret), read through a secret store that rotates before each token request instead of
//! once at start, so a warm Lambda picks up a rotated secret without a cold start; and read
//! again, once, after the token endpoint refuses it (docs/architecture.md#credentials).
//! Token requests are rare (once per token lifetime), so reading the store's cache each
//! time costs nothing that matters.

use std::sync::{Arc, OnceLock};

use crate::error::SecretError;
use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, Redactor};
use crate::ports::SecretStore;
use crate::secret::SecretString;

pub(crate) struct RotatingSecret {
    /// The setting's name in the store (`HALO_CLIENT_SECRET`).
    key: &'static str,
    /// The value at start; kept when the store does not hold the key (it came from the
    /// environment).
    at_start: SecretString,
    store: OnceLock<Arc<dyn SecretStore>>,
}

impl RotatingSecret {
    pub fn new(key: &'static str, at_start: SecretString) -> Self {
        Self { key, at_start, store: OnceLock::new() }
    }

    /// Read the value through `store` from now on.
    pub fn read_from(&self, store: Arc<dyn SecretStore>) {
        let _ = self.store.set(store);
    }

    /// Whether a refusal is worth one more try with a re-read value.
    pub fn rotates(&self) -> bool {
        self.store.get().is_some()
    }

    /// The value to send now; `refresh` first drops the store's cache (after a refusal).
    /// The redactor learns it before it goes on the wire.
    pub async fn current(&self, redactor: &Redactor, refresh: bool) -> Result<SecretString, SecretError> {
        let Some(store) = self.store.get() else { return Ok(self.at_start.clone()) };
        if refresh {
            store.refresh().await;
        }
        let value = store.get(self.key).await?.unwrap_or_else(|| self.at_start.clone());
        redactor.learn(value.expose());
        Ok(value)
    }
}

/// Why a token request could not be sent ([`RotatingSecret::send_token_request`]).
pub(crate) enum TokenRequestError {
    /// The secret store could not be read.
    Secret(SecretError),
    /// The request failed in transport (after the HTTP layer's retries).
    Http(HttpError),
}

impl RotatingSecret {
    /// Sends `request_for(secret)` through `http`; when the endpoint refuses it (400/401) and
    /// the secret rotates, reads the store again and sends once more: a rotated secret is
    /// picked up without a restart. The answer, refusal or not, is the caller's to read.
    /// Shared by every client-credentials client (Entra, HaloPSA).
    pub async fn send_token_request(
        &self,
        http: &HttpClient,
        request_for: impl Fn(&SecretString) -> HttpRequest + Send + Sync,
    ) -> Result<HttpResponse, TokenRequestError> {
        let mut refreshed = false;
        loop {
            let secret = self.current(http.redactor(), refreshed).await.map_err(TokenRequestError::Secret)?;
            let response = http.send(request_for(&secret)).await.map_err(TokenRequestError::Http)?;
            if matches!(response.status, 400 | 401) && self.rotates() && !refreshed {
                refreshed = true;
                continue;
            }
            return Ok(response);
        }
    }
}
