//! One credential an OAuth client sends to get a token (HaloPSA's and Entra's client
//! secret), read through a secret store that rotates before each token request instead of
//! once at start, so a warm Lambda picks up a rotated secret without a cold start; and read
//! again, once, after the token endpoint refuses it (docs/architecture.md#credentials).
//! Token requests are rare (once per token lifetime), so reading the store's cache each
//! time costs nothing that matters.

use std::sync::{Arc, OnceLock};

use crate::error::SecretError;
use crate::http::Redactor;
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
