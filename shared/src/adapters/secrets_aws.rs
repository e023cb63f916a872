//! Secrets from AWS Secrets Manager: the Lambda deployment's secret store.
//!
//! One secret holds all of Offramp's credentials as a JSON object of strings,
//! keyed like the environment variables of [`super::secrets_env::EnvSecretStore`]:
//!
//! ```json
//! {"CONNECTWISE_COMPANY_ID": "acme", "CONNECTWISE_PUBLIC_KEY": "…", "CONNECTWISE_PRIVATE_KEY": "…"}
//! ```
//!
//! The parsed object is cached in memory for a TTL (5 minutes by default), so a
//! warm Lambda does not call Secrets Manager on every invocation yet picks up a
//! rotated secret within the TTL. Concurrent callers share one fetch. As with
//! the environment, an empty value counts as absent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::SecretError;
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// How long a fetched secret is used before it is fetched again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

type Values = Arc<HashMap<String, SecretString>>;

struct Cached {
    values: Values,
    fetched_at: Instant,
}

/// The values of one Secrets Manager secret (a JSON object of strings).
pub struct SecretsManagerStore {
    client: Client,
    secret_id: String,
    ttl: Duration,
    /// A tokio mutex held across the fetch: callers arriving during a fetch wait
    /// for it and use its result instead of fetching again.
    cache: Mutex<Option<Cached>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("secret_id", &self.secret_id)
            .field("ttl", &self.ttl)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl SecretsManagerStore {
    /// `secret_id` is the secret's name or ARN; `ttl` how long its value is cached
    /// ([`DEFAULT_TTL`] is a good choice).
    pub fn new(client: Client, secret_id: impl Into<String>, ttl: Duration) -> Self {
        Self { client, secret_id: secret_id.into(), ttl, cache: Mutex::new(None), fetches: AtomicU64::new(0) }
    }

    /// [`Self::new`] with [`DEFAULT_TTL`].
    pub fn with_default_ttl(client: Client, secret_id: impl Into<String>) -> Self {
        Self::new(client, secret_id, DEFAULT_TTL)
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// How many times the secret was fetched from Secrets Manager (successful or not).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Forget the cached value: the next `get` fetches the secret again (e.g. after
    /// a PSA refused credentials that may just have been rotated).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// The secret's values, from the cache while it is fresh.
    async fn values(&self) -> Result<Values, SecretError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.fetched_at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(&cached.values));
        }
        // A failed fetch is not cached: the next call tries again.
        let values = Arc::new(self.fetch().await?);
        *cache = Some(Cached { values: Arc::clone(&values), fetched_at: Instant::now() });
        Ok(values)
    }

    async fn fetch(&self) -> Result<HashMap<String, SecretString>, SecretError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let out = match self.client.get_secret_value().secret_id(&self.secret_id).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                return Err(SecretError::NotFound { id: self.secret_id.clone() });
            }
            Err(e) => {
                // The SDK error describes the request and the service's answer,
                // never the secret's value (there is none on a failure).
                return Err(SecretError::Unavailable {
                    message: format!("GetSecretValue {} failed: {}", self.secret_id, DisplayErrorContext(&e)),
                });
            }
        };
        // A binary secret has no SecretString: not the JSON object expected.
        let text = out.secret_string().ok_or_else(|| SecretError::Malformed { id: self.secret_id.clone() })?;
        parse_values(text).ok_or_else(|| SecretError::Malformed { id: self.secret_id.clone() })
    }
}

/// The secret's JSON object of strings, or `None` if it is anything else. No
/// parse error is passed on: serde's messages may quote part of the input.
fn parse_values(text: &str) -> Option<HashMap<String, SecretString>> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    object
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => Some((key, SecretString::new(s))),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let values = self.values().await?;
        Ok(values.get(key).filter(|v| !v.is_empty()).cloned())
    }

    async fn refresh(&self) {
        self.invalidate().await;
    }

    fn rotates(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_object_of_strings() {
        let values = parse_values(r#"{"A": "1", "B": ""}"#).expect("object");
        assert_eq!(values.get("A").map(SecretString::expose), Some("1"));
        assert_eq!(values.get("B").map(SecretString::expose), Some(""));
    }

    #[test]
    fn refuses_anything_else() {
        for text in ["", "not json", "[\"a\"]", "\"a\"", "{\"A\": 1}", "{\"A\": null}", "{\"A\": {\"B\": \"c\"}}"] {
            assert!(parse_values(text).is_none(), "{text}");
        }
    }
}
