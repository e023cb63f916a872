//! ConnectWise callbacks (webhooks) registered by `offramp webhooks register`
//! (docs/vendors/connectwise.md#webhooks): `GET /system/callbacks` lists them,
//! `POST /system/callbacks` adds one. ConnectWise is not known to refuse a second callback
//! of one URL, so the registration looks first and reports the existing one instead.

use serde_json::{Value, json};

use super::ConnectWiseClient;
use crate::error::PsaError;

/// What the registration did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallbackRegistration {
    pub id: Option<i64>,
    /// `false`: a callback with this URL existed and was left as it was.
    pub created: bool,
}

impl ConnectWiseClient {
    /// Register a company callback (`type` company, `level` owner: every company) posting to
    /// `url`, unless one with that exact URL exists.
    pub async fn register_company_callback(&self, url: &str) -> Result<CallbackRegistration, PsaError> {
        let existing: Vec<(Option<i64>, String)> =
            self.list("system/callbacks", None, "callbacks", |record| Ok(callback_of(record))).await?;
        if let Some((id, _)) = existing.into_iter().find(|(_, u)| u == url) {
            return Ok(CallbackRegistration { id, created: false });
        }
        // objectId 1 with level owner: every record of the type (as public integrations register it).
        let entry = json!({"url": url, "type": "company", "level": "owner", "objectId": 1,
            "description": "Offramp", "inactiveFlag": false});
        let created = self.post("system/callbacks", &entry, "callback").await?;
        Ok(CallbackRegistration { id: created.get("id").and_then(Value::as_i64), created: true })
    }
}

fn callback_of(record: &Value) -> (Option<i64>, String) {
    let url = record.get("url").and_then(Value::as_str).unwrap_or_default().to_string();
    (record.get("id").and_then(Value::as_i64), url)
}
