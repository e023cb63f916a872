//! ConnectWise's callback signing keys: fetched from the `Metadata.key_url` the payload
//! names, but only from an allow-listed origin, through the shared HTTP layer, and cached
//! per URL (docs/vendors/connectwise.md#webhooks).
//!
//! Why the allow-list comes first: the URL is part of the payload, which nobody has
//! authenticated yet. Fetched from anywhere, an attacker would name a server of their own,
//! serve a key of their choosing and sign their forged body with it. A URL off the list is
//! refused without any request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::WebhookError;
use crate::http::{HttpClient, HttpRequest, HttpSettings, Redactor, SMALL_BODY_BYTES, origin};
use crate::secret::SecretString;

/// The ConnectWise cloud hosts a production key URL may name (docs/vendors/connectwise.md#webhooks):
/// the API hosts of the three regions, their sandboxes, and the regional hosts.
pub const CONNECTWISE_CLOUD_HOSTS: &[&str] = &[
    "api-na.myconnectwise.net",
    "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net",
    "sandbox-na.myconnectwise.net",
    "sandbox-eu.myconnectwise.net",
    "sandbox-au.myconnectwise.net",
    "na.myconnectwise.net",
    "eu.myconnectwise.net",
    "au.myconnectwise.net",
];

/// The origins (scheme, host, port) a key URL may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUrlAllowList {
    origins: Vec<url::Origin>,
}

impl KeyUrlAllowList {
    /// The production default: https on the ConnectWise cloud hosts, default port.
    pub fn connectwise_cloud() -> Self {
        let origins = CONNECTWISE_CLOUD_HOSTS
            .iter()
            .filter_map(|host| Url::parse(&format!("https://{host}/")).ok())
            .map(|url| url.origin())
            .collect();
        Self { origins }
    }

    /// Exactly these origins (an on-premises ConnectWise, or the loopback sandbox in tests),
    /// each an https URL (plain http only to a loopback address); a path is ignored.
    pub fn origins<S: AsRef<str>>(origins: &[S]) -> Result<Self, String> {
        let origins = origins
            .iter()
            .map(|raw| origin::secure_url("ConnectWise key URL origin", raw.as_ref()).map(|url| url.origin()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { origins })
    }

    /// Whether a key may be fetched from `url`: its origin is on the list, and it carries no
    /// user name or password.
    pub fn allows(&self, url: &Url) -> bool {
        url.username().is_empty()
            && url.password().is_none()
            && origin::transport_allowed(url)
            && self.origins.contains(&url.origin())
    }
}

/// How keys are fetched and kept.
#[derive(Debug, Clone)]
pub struct KeyCacheSettings {
    /// How long a fetched key is used before it is fetched again.
    pub ttl: Duration,
    /// Most key URLs kept at once (expired entries go first, then the oldest).
    pub max_entries: usize,
    pub http: HttpSettings,
}

impl Default for KeyCacheSettings {
    fn default() -> Self {
        let http = HttpSettings {
            connect_timeout: Duration::from_secs(3),
            // A webhook answers within API Gateway's limit: a slow key server must not hold it.
            request_timeout: Duration::from_secs(5),
            max_retries: 1,
            max_body_bytes: SMALL_BODY_BYTES,
            ..HttpSettings::default()
        };
        Self { ttl: Duration::from_secs(3600), max_entries: 64, http }
    }
}

struct CachedKey {
    key: SecretString,
    fetched: Instant,
}

/// One slot per key URL: concurrent deliveries naming the same URL wait for one fetch.
type Slot = Arc<tokio::sync::Mutex<Option<CachedKey>>>;

/// Fetches and caches signing keys. Clones share the cache.
#[derive(Clone)]
pub struct SigningKeys {
    allow: KeyUrlAllowList,
    http: HttpClient,
    ttl: Duration,
    max_entries: usize,
    slots: Arc<Mutex<HashMap<String, (Instant, Slot)>>>,
}

impl SigningKeys {
    pub fn new(allow: KeyUrlAllowList, settings: KeyCacheSettings) -> Result<Self, WebhookError> {
        let http = HttpClient::new("connectwise-callback-keys", settings.http, Redactor::default())
            .map_err(|e| WebhookError::Configuration { message: e.to_string() })?;
        Ok(Self { allow, http, ttl: settings.ttl, max_entries: settings.max_entries.max(1), slots: Arc::default() })
    }

    /// The key served at `key_url`, from the cache while fresh. A URL off the allow-list is
    /// [`WebhookError::Unauthenticated`] and nothing is sent.
    pub async fn key_for(&self, key_url: &str) -> Result<SecretString, WebhookError> {
        let url =
            Url::parse(key_url.trim()).map_err(|_| WebhookError::unauthenticated("Metadata.key_url is not a URL"))?;
        if !self.allow.allows(&url) {
            return Err(WebhookError::unauthenticated(format!(
                "Metadata.key_url names {}://{}, which is not an allowed ConnectWise origin; no key was fetched",
                url.scheme(),
                origin::host_of(&url)
            )));
        }
        let slot = self.slot(url.as_str());
        let mut cached = slot.lock().await;
        if let Some(entry) = cached.as_ref().filter(|entry| entry.fetched.elapsed() < self.ttl) {
            return Ok(entry.key.clone());
        }
        let key = self.fetch(url).await?;
        *cached = Some(CachedKey { key: key.clone(), fetched: Instant::now() });
        Ok(key)
    }

    /// The cache slot of `url`, made room for when the cache is full.
    fn slot(&self, url: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = slots.get(url) {
            return slot.clone();
        }
        if slots.len() >= self.max_entries {
            let ttl = self.ttl;
            slots.retain(|_, (created, _)| created.elapsed() < ttl);
            if slots.len() >= self.max_entries
                && let Some(oldest) = slots.iter().min_by_key(|(_, (created, _))| *created).map(|(k, _)| k.clone())
            {
                slots.remove(&oldest);
            }
        }
        let slot = Slot::default();
        slots.insert(url.to_string(), (Instant::now(), slot.clone()));
        slot
    }

    /// `GET key_url` → `{"signing_key": "…"}`. A refusal (4xx) means no such key: the
    /// delivery cannot be genuine. A failure to reach ConnectWise is not the sender's fault,
    /// and ConnectWise will deliver again: [`WebhookError::KeyUnavailable`].
    async fn fetch(&self, url: Url) -> Result<SecretString, WebhookError> {
        let host = origin::host_of(&url);
        let response = self
            .http
            .send(HttpRequest::new(reqwest::Method::GET, url).header("accept", "application/json"))
            .await
            .map_err(|e| WebhookError::KeyUnavailable { message: e.to_string() })?;
        match response.status {
            200..=299 => {}
            400..=499 if response.status != 429 => {
                return Err(WebhookError::unauthenticated(format!(
                    "{host} answered HTTP {} for the signing key Metadata.key_url names",
                    response.status
                )));
            }
            status => {
                return Err(WebhookError::KeyUnavailable { message: format!("{host} answered HTTP {status}") });
            }
        }
        let body = response
            .json()
            .map_err(|_| WebhookError::KeyUnavailable { message: format!("{host} answered a key that is not JSON") })?;
        let key = super::event::fields::get(&body, "signing_key").and_then(|v| v.as_str()).unwrap_or_default();
        if key.is_empty() {
            return Err(WebhookError::KeyUnavailable { message: format!("{host} answered no signing_key") });
        }
        self.http.redactor().learn(key);
        Ok(SecretString::new(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn the_cloud_list_takes_https_connectwise_hosts_only() {
        let list = KeyUrlAllowList::connectwise_cloud();
        assert!(list.allows(&url("https://api-na.myconnectwise.net/v4_6_release/apis/3.0/key?id=1")));
        assert!(list.allows(&url("https://API-EU.myconnectwise.net:443/x")));
        for refused in [
            "http://api-na.myconnectwise.net/x",
            "https://api-na.myconnectwise.net:8443/x",
            "https://evil.example/api-na.myconnectwise.net",
            "https://api-na.myconnectwise.net.evil.example/x",
            "https://user:pw@api-na.myconnectwise.net/x",
            "https://myconnectwise.net/x",
            "http://127.0.0.1:8080/x",
        ] {
            assert!(!list.allows(&url(refused)), "{refused}");
        }
    }

    #[test]
    fn configured_origins_are_exact() {
        let list = KeyUrlAllowList::origins(&["http://127.0.0.1:4000"]).unwrap();
        assert!(list.allows(&url("http://127.0.0.1:4000/keys/1")));
        assert!(!list.allows(&url("http://127.0.0.1:4001/keys/1")));
        assert!(KeyUrlAllowList::origins(&["http://cw.partner.example"]).is_err(), "plain http off loopback");
    }
}
