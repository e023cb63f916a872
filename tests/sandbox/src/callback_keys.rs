//! ConnectWise callback signing keys, prefix [`CW_KEYS_PREFIX`] = `/cw-callback-keys`
//! ([`crate::Sandbox::connectwise_key_url`]).
//!
//! A ConnectWise callback names, in `Metadata.key_url`, where its signing key is served;
//! the receiver fetches `{"signing_key": "…"}` from there (docs/vendors/connectwise.md#webhooks).
//! The real URL's path is ConnectWise's business (the receiver only follows the payload's
//! URL, after checking its origin), so the sandbox serves keys under a path of its own:
//! - `GET /cw-callback-keys/{key_id}` → 200 `{"signing_key"}` for a key set with
//!   [`CallbackKeysSim::set_key`]; unknown id → 404 `{"code":"NotFound","message"}`; other
//!   methods → 405. No authentication (the key URL is a bearer of nothing but the key).
//!
//! Every request is counted per key id, found or not ([`CallbackKeysSim::fetches`]), so a
//! test can show that a key URL off the allow-list was never requested and that a cached
//! key is fetched once for many deliveries. Stats key `GET /cw-callback-keys/{id}`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::{Shared, json_response, json_status};

/// The path prefix of the signing-key endpoint.
pub const CW_KEYS_PREFIX: &str = "/cw-callback-keys";

/// The signing keys the sandbox serves, and how often each was asked for.
#[derive(Default)]
pub struct CallbackKeysSim {
    keys: Mutex<HashMap<String, String>>,
    fetches: Mutex<HashMap<String, u64>>,
}

impl CallbackKeysSim {
    /// Serve `signing_key` for `key_id` from now on (replacing any earlier one: a rotation).
    pub fn set_key(&self, key_id: &str, signing_key: &str) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).insert(key_id.to_string(), signing_key.to_string());
    }

    /// Requests for `key_id`, answered or not.
    pub fn fetches(&self, key_id: &str) -> u64 {
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).get(key_id).copied().unwrap_or(0)
    }

    /// Requests for any key.
    pub fn total_fetches(&self) -> u64 {
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }
}

pub(crate) fn route(shared: &Shared, method: &Method, rest: &str) -> Response {
    let key_id = rest.trim_start_matches('/');
    if *method != Method::GET {
        return json_status(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"code": "MethodNotAllowed", "message": "GET only"}),
        );
    }
    shared.record_route(method, &format!("{CW_KEYS_PREFIX}/{{id}}"));
    let sim = &shared.cw_keys;
    *sim.fetches.lock().unwrap_or_else(|e| e.into_inner()).entry(key_id.to_string()).or_default() += 1;
    match sim.keys.lock().unwrap_or_else(|e| e.into_inner()).get(key_id) {
        Some(key) => json_response(&json!({ "signing_key": key })),
        None => json_status(StatusCode::NOT_FOUND, &json!({"code": "NotFound", "message": "no such signing key"})),
    }
}
