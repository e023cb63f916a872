//! Credentials read through a secret store that rotates (Secrets Manager), on every
//! request, instead of once at start: a warm Lambda picks up a rotated secret without a
//! cold start. The store caches its values for a TTL, so this costs no call per request;
//! after the vendor refuses the credentials (401/403) the store is refreshed once and the
//! request sent again with what it holds now (docs/architecture.md#credentials).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Authorize, StaticHeaders, VendorError};
use crate::http::{HttpClient, HttpRequest};
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// The credential values by setting name (`CONNECTWISE_PRIVATE_KEY`), as the store holds
/// them now, else as they were at start.
pub(crate) type Values = HashMap<&'static str, SecretString>;

/// Builds a vendor's headers from the current values.
pub(crate) type Compose = Box<dyn Fn(&Values) -> StaticHeaders + Send + Sync>;

pub(crate) struct RotatingHeaders {
    store: Arc<dyn SecretStore>,
    /// The values at start: a key the store does not hold keeps its start value (it came
    /// from the environment).
    at_start: Values,
    compose: Compose,
    /// A fingerprint of the values the redactor last learned, so it learns each value once.
    learned: Mutex<Option<u64>>,
}

impl RotatingHeaders {
    pub fn new(store: Arc<dyn SecretStore>, at_start: Values, compose: Compose) -> Self {
        Self { store, at_start, compose, learned: Mutex::new(None) }
    }

    async fn current(&self) -> Result<Values, crate::error::SecretError> {
        let mut values = self.at_start.clone();
        for (key, value) in values.iter_mut() {
            if let Some(now) = self.store.get(key).await? {
                *value = now;
            }
        }
        Ok(values)
    }

    /// Teach the redactor the values and the headers made of them, once per set of values.
    fn learn(&self, http: &HttpClient, values: &Values, headers: &StaticHeaders) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut keys: Vec<&&str> = values.keys().collect();
        keys.sort();
        for key in keys {
            values[*key].expose().hash(&mut hasher);
        }
        let fingerprint = hasher.finish();
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        if *learned == Some(fingerprint) {
            return;
        }
        for value in values.values().map(SecretString::expose).chain(headers.secret_forms()) {
            http.redactor().learn(value);
        }
        *learned = Some(fingerprint);
    }
}

#[async_trait]
impl<E: VendorError> Authorize<E> for RotatingHeaders {
    async fn authorize(&self, http: &HttpClient, request: HttpRequest, renew: bool) -> Result<HttpRequest, E> {
        if renew {
            self.store.refresh().await;
        }
        let values = self.current().await.map_err(|e| E::configuration(format!("reading the credentials: {e}")))?;
        let headers = (self.compose)(&values);
        self.learn(http, &values, &headers);
        <StaticHeaders as Authorize<E>>::authorize(&headers, http, request, renew).await
    }

    /// A refusal of the credentials is worth one more try after the store is read again.
    fn renewable(&self) -> bool {
        true
    }

    fn renew_on_forbidden(&self) -> bool {
        true
    }
}
