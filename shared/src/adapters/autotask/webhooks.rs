//! Autotask company webhooks registered by `offramp webhooks register --psa autotask`
//! (docs/vendors/autotask.md#webhooks): `POST /CompanyWebhooks` creates the webhook (its
//! `webhookUrl`, a `deactivationUrl` — both required —, the `secretKey` Offramp verifies
//! deliveries with, the events it subscribes to), `POST /CompanyWebhooks/{id}/Fields` adds the
//! field whose change fires it, `POST /CompanyWebhooks/{id}/ExcludedResources` keeps the
//! changes of a given resource (Offramp's own API user) from coming back.
//!
//! UNCONFIRMED, and how this copes:
//! - Whether `CompanyWebhooks` (and `CompanyWebhookFields`) can be queried like other
//!   entities: assumed, since every Autotask entity is; the URL is compared here as well,
//!   exactly, whatever the PSA's `eq` does with case.
//! - Where a field's `fieldID` comes from is not documented: the caller names it
//!   (`--active-field-id`); nothing is guessed.
//! - The `ExcludedResources` body (`resourceID`) follows the `…Fields` pattern.
//! - Whether `secretKey` is read back: never relied on; an existing webhook's key is not checked.
//!
//! Registering again is safe: a webhook with the same URL is reported, not duplicated, and
//! a field or excluded resource it lacks (a first run stopped half-way) is added.

use serde_json::{Value, json};

use super::AutotaskClient;
use super::client::config_error;
use crate::error::PsaError;

/// Autotask's limit on a webhook's secret key (docs/vendors/autotask.md#webhooks).
pub const MAX_SECRET_KEY_CHARS: usize = 64;

/// The webhook's `name`: how an existing registration is recognised besides its URL.
pub const WEBHOOK_NAME: &str = "Offramp";

/// What to register.
#[derive(Debug, Clone)]
pub struct CompanyWebhookSpec<'a> {
    pub webhook_url: &'a str,
    pub deactivation_url: &'a str,
    pub secret_key: &'a str,
    /// The `fieldID` of the company's `isActive` field (its change is what Offramp acts on).
    pub active_field_id: i64,
    /// The resource whose own changes are not delivered (Offramp's API user), if known.
    pub excluded_resource_id: Option<i64>,
    pub notification_email: Option<&'a str>,
}

/// What the registration found and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookRegistration {
    pub id: i64,
    /// `false`: a webhook with this URL existed; it was reported, not duplicated.
    pub created: bool,
    /// The `isActive` field subscription was added by this run.
    pub field_added: bool,
    /// The excluded resource was added by this run.
    pub excluded_resource_added: bool,
    /// Autotask's `isActive` and `isReady` of the webhook, as last read (`None`: not said).
    pub active: Option<bool>,
    pub ready: Option<bool>,
}

impl AutotaskClient {
    /// Register a company webhook for `spec.webhook_url`, unless one exists; complete it.
    pub async fn register_company_webhook(
        &self,
        spec: &CompanyWebhookSpec<'_>,
    ) -> Result<WebhookRegistration, PsaError> {
        check(spec)?;
        let existing = self.company_webhook_by_url(spec.webhook_url).await?;
        let (id, created, record) = match existing {
            Some((id, record)) => (id, false, Some(record)),
            None => {
                (self.create("CompanyWebhooks", "CompanyWebhooks", &body(spec), "company webhook").await?, true, None)
            }
        };
        let field_added = self.ensure_child(id, "Fields", "fieldID", spec.active_field_id, &field_body(spec)).await?;
        let excluded_resource_added = match spec.excluded_resource_id {
            Some(resource) => {
                self.ensure_child(id, "ExcludedResources", "resourceID", resource, &json!({"resourceID": resource}))
                    .await?
            }
            None => false,
        };
        // Read once more: `isReady` is Autotask's word on whether the webhook delivers.
        let record = match self.get_item("CompanyWebhooks", id, "company webhook").await? {
            Some(now) => Some(now),
            None => record,
        };
        let flag = |name: &str| record.as_ref().and_then(|r| r.get(name)).and_then(Value::as_bool);
        Ok(WebhookRegistration {
            id,
            created,
            field_added,
            excluded_resource_added,
            active: flag("isActive"),
            ready: flag("isReady"),
        })
    }

    async fn company_webhook_by_url(&self, url: &str) -> Result<Option<(i64, Value)>, PsaError> {
        let filter = json!([{"op": "eq", "field": "webhookUrl", "value": url}]);
        let found = self
            .query("CompanyWebhooks", filter, "company webhooks", |record| {
                let id = record.get("id").and_then(Value::as_i64);
                Ok((id, record.clone()))
            })
            .await?;
        Ok(found.into_iter().find_map(|(id, record)| {
            (record.get("webhookUrl").and_then(Value::as_str) == Some(url)).then_some((id?, record))
        }))
    }

    /// Add `POST /CompanyWebhooks/{id}/{child}` unless a child with `key == value` is there.
    async fn ensure_child(&self, id: i64, child: &str, key: &str, value: i64, body: &Value) -> Result<bool, PsaError> {
        let entity = format!("CompanyWebhook{child}");
        let filter = json!([{"op": "eq", "field": "webhookID", "value": id}]);
        let values = self
            .query(&entity, filter, &format!("company webhook {child}"), |record| {
                Ok(record.get(key).and_then(Value::as_i64))
            })
            .await?;
        if values.contains(&Some(value)) {
            return Ok(false);
        }
        let path = format!("CompanyWebhooks/{id}/{child}");
        self.create(&path, "CompanyWebhooks", body, &format!("company webhook {child}")).await?;
        Ok(true)
    }
}

/// Refuse, before anything is sent, what Autotask would refuse or Offramp could not verify.
fn check(spec: &CompanyWebhookSpec<'_>) -> Result<(), PsaError> {
    let key = spec.secret_key.trim();
    if key.is_empty() || key.chars().count() > MAX_SECRET_KEY_CHARS {
        return Err(config_error(format!(
            "AUTOTASK_WEBHOOK_SECRET must be 1 to {MAX_SECRET_KEY_CHARS} characters (Autotask's limit on a \
             webhook's secret key); nothing was registered"
        )));
    }
    if spec.active_field_id <= 0 {
        return Err(config_error("the isActive field's id must be a positive number; nothing was registered"));
    }
    Ok(())
}

/// `POST /CompanyWebhooks`: active, subscribed to updates only: a company going inactive is
/// an update, and the webhook function judges created and updated companies alone
/// (`webhook::routing`), so deletions and creations would only be deliveries to ignore.
fn body(spec: &CompanyWebhookSpec<'_>) -> Value {
    let mut body = json!({
        "name": WEBHOOK_NAME,
        "isActive": true,
        "webhookUrl": spec.webhook_url,
        "deactivationUrl": spec.deactivation_url,
        "secretKey": spec.secret_key.trim(),
        "isSubscribedToCreateEvents": false,
        "isSubscribedToUpdateEvents": true,
        "isSubscribedToDeleteEvents": false,
        "sendThresholdExceededNotification": spec.notification_email.is_some(),
    });
    if let Some(address) = spec.notification_email {
        body["notificationEmailAddress"] = json!(address);
    }
    body
}

fn field_body(spec: &CompanyWebhookSpec<'_>) -> Value {
    json!({"fieldID": spec.active_field_id, "isSubscribedField": true, "isDisplayAlwaysField": false})
}
