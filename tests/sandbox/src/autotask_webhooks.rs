//! Autotask company webhooks (docs/vendors/autotask.md#webhooks), behind the same header
//! auth, hourly budget and thread limit as every Autotask route (`autotask::route` hands
//! them here after its checks), with its error shape (`{"errors": [...]}`).
//!
//! - `POST /CompanyWebhooks` `{"name","isActive","webhookUrl","deactivationUrl","secretKey",
//!   "isSubscribedTo{Create,Update,Delete}Events",…}` → `{"itemId"}`. Both URLs required,
//!   `secretKey` 1–64 characters, `isActive` a boolean: 500 otherwise.
//! - `GET /CompanyWebhooks/{id}` → `{"item"}` without `secretKey` (whether Autotask returns
//!   it is UNCONFIRMED; the sandbox does not, so a client cannot lean on it); `isReady` is
//!   true once the webhook has a subscribed field (the sandbox's reading of "check isReady").
//! - `POST /CompanyWebhooks/{id}/Fields` `{"fieldID","isSubscribedField","isDisplayAlwaysField"}`
//!   and `POST /CompanyWebhooks/{id}/ExcludedResources` `{"resourceID"}` → `{"itemId"}`;
//!   unknown webhook → 404; the same field or resource twice → 500.
//! - `POST /CompanyWebhooks/query`, `/CompanyWebhookFields/query`,
//!   `/CompanyWebhookExcludedResources/query`: `eq` filters only (`webhookUrl`, `webhookID`,
//!   `id`), one page; any other filter → 500.
//!
//! Stats keys: `POST /autotask/CompanyWebhooks`, `POST /autotask/CompanyWebhooks/{id}/Fields`,
//! `POST /autotask/CompanyWebhooks/{id}/ExcludedResources`, `GET /autotask/CompanyWebhooks/{id}`,
//! `POST /autotask/{Entity}/query`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::autotask::at_error;
use crate::{Shared, json_response};

/// Autotask's limit on a webhook's secret key.
const MAX_SECRET_KEY_CHARS: usize = 64;

/// The company webhooks, their fields and excluded resources.
#[derive(Default)]
pub(crate) struct AtWebhooks {
    webhooks: BTreeMap<i64, Value>,
    /// Each webhook's fields and excluded resources, by their own ids.
    fields: BTreeMap<i64, Value>,
    excluded: BTreeMap<i64, Value>,
    next_id: i64,
}

impl AtWebhooks {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        // Far from every fixture id, so a mix-up shows.
        700_000 + self.next_id
    }

    /// A webhook as `GET` renders it: no secret key, `isReady` once a field is subscribed.
    fn rendered(&self, id: i64) -> Option<Value> {
        let mut webhook = self.webhooks.get(&id)?.clone();
        let ready = self.fields.values().any(|f| f["webhookID"] == json!(id) && f["isSubscribedField"] == true);
        if let Some(object) = webhook.as_object_mut() {
            object.remove("secretKey");
            object.insert("isReady".into(), json!(ready));
        }
        Some(webhook)
    }

    /// Every webhook with its fields and excluded resources, for tests (secret key included).
    pub(crate) fn snapshot(&self) -> Vec<Value> {
        self.webhooks
            .iter()
            .map(|(id, webhook)| {
                let of = |m: &BTreeMap<i64, Value>| -> Vec<Value> {
                    m.values().filter(|v| v["webhookID"] == json!(id)).cloned().collect()
                };
                let mut webhook = webhook.clone();
                webhook["isReady"] = self.rendered(*id).map_or(json!(false), |r| r["isReady"].clone());
                webhook["fields"] = json!(of(&self.fields));
                webhook["excludedResources"] = json!(of(&self.excluded));
                webhook
            })
            .collect()
    }
}

/// A company-webhook route (`segments` lowercased, after the zone prefix), or `None` when
/// the path is not one.
pub(crate) fn route(shared: &Shared, method: &Method, segments: &[&str], body: &Bytes) -> Option<Response> {
    let entity = *segments.first()?;
    let hooks = || shared.at.webhooks.lock().unwrap_or_else(|e| e.into_inner());
    let response = match (method.as_str(), entity, &segments[1..]) {
        ("POST", "companywebhooks", []) => {
            shared.record_route(method, "/autotask/CompanyWebhooks");
            create_webhook(&mut hooks(), body)
        }
        ("GET", "companywebhooks", [id]) => {
            shared.record_route(method, "/autotask/CompanyWebhooks/{id}");
            match id.parse::<i64>().ok().and_then(|id| hooks().rendered(id)) {
                Some(item) => json_response(&json!({ "item": item })),
                None => at_error(StatusCode::NOT_FOUND, &format!("CompanyWebhook with id {id} not found")),
            }
        }
        ("POST", "companywebhooks", [id, child @ ("fields" | "excludedresources")]) => {
            let name = if *child == "fields" { "Fields" } else { "ExcludedResources" };
            shared.record_route(method, &format!("/autotask/CompanyWebhooks/{{id}}/{name}"));
            match id.parse::<i64>() {
                Ok(id) => add_child(&mut hooks(), id, child, body),
                Err(_) => at_error(StatusCode::NOT_FOUND, &format!("No route for {method} /CompanyWebhooks/{id}")),
            }
        }
        ("POST", "companywebhooks" | "companywebhookfields" | "companywebhookexcludedresources", ["query"]) => {
            let name = match entity {
                "companywebhooks" => "CompanyWebhooks",
                "companywebhookfields" => "CompanyWebhookFields",
                _ => "CompanyWebhookExcludedResources",
            };
            shared.record_route(method, &format!("/autotask/{name}/query"));
            query(&hooks(), entity, body)
        }
        (_, "companywebhooks" | "companywebhookfields" | "companywebhookexcludedresources", _) => {
            at_error(StatusCode::NOT_FOUND, &format!("No route for {method} /{}", segments.join("/")))
        }
        _ => return None,
    };
    Some(response)
}

fn invalid(message: &str) -> Response {
    at_error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

fn create_webhook(hooks: &mut AtWebhooks, body: &Bytes) -> Response {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return invalid("The request body must be a JSON object");
    };
    let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    if text("webhookUrl").is_none() || text("deactivationUrl").is_none() {
        return invalid("WebhookUrl and DeactivationUrl are required");
    }
    match text("secretKey").map(|k| k.chars().count()) {
        Some(1..=MAX_SECRET_KEY_CHARS) => {}
        _ => return invalid("SecretKey is required and may not exceed 64 characters"),
    }
    if !fields.get("isActive").is_some_and(Value::is_boolean) || text("name").is_none() {
        return invalid("Name and IsActive (a boolean) are required");
    }
    let id = hooks.next();
    let mut webhook = Value::Object(fields);
    webhook["id"] = json!(id);
    hooks.webhooks.insert(id, webhook);
    json_response(&json!({ "itemId": id }))
}

fn add_child(hooks: &mut AtWebhooks, webhook_id: i64, child: &str, body: &Bytes) -> Response {
    if !hooks.webhooks.contains_key(&webhook_id) {
        return at_error(StatusCode::NOT_FOUND, &format!("CompanyWebhook with id {webhook_id} not found"));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return invalid("The request body must be a JSON object");
    };
    let key = if child == "fields" { "fieldID" } else { "resourceID" };
    let Some(value) = fields.get(key).and_then(Value::as_i64).filter(|v| *v > 0) else {
        return invalid(&format!("{key} is required and must be a positive integer"));
    };
    if child == "fields" && !fields.get("isSubscribedField").is_some_and(Value::is_boolean) {
        return invalid("IsSubscribedField (a boolean) is required");
    }
    let id = hooks.next();
    let map = if child == "fields" { &mut hooks.fields } else { &mut hooks.excluded };
    if map.values().any(|v| v["webhookID"] == json!(webhook_id) && v[key] == json!(value)) {
        return invalid(&format!("The webhook already has {key} {value}"));
    }
    let mut record = Value::Object(fields);
    record["id"] = json!(id);
    record["webhookID"] = json!(webhook_id);
    map.insert(id, record);
    json_response(&json!({ "itemId": id }))
}

fn query(hooks: &AtWebhooks, entity: &str, body: &Bytes) -> Response {
    let Ok(query) = serde_json::from_slice::<Value>(body) else {
        return invalid("Unable to parse the query body");
    };
    let mut conditions = Vec::new();
    for condition in query["filter"].as_array().into_iter().flatten() {
        let (Some("eq"), Some(field)) = (condition["op"].as_str(), condition["field"].as_str()) else {
            return invalid("The sandbox's webhook queries take eq filters only");
        };
        let field = match field.to_ascii_lowercase().as_str() {
            "webhookurl" => "webhookUrl",
            "webhookid" => "webhookID",
            "id" => "id",
            other => return invalid(&format!("Unknown field {other}")),
        };
        conditions.push((field, condition["value"].clone()));
    }
    let rows: Vec<Value> = match entity {
        "companywebhooks" => hooks.webhooks.keys().filter_map(|id| hooks.rendered(*id)).collect(),
        "companywebhookfields" => hooks.fields.values().cloned().collect(),
        _ => hooks.excluded.values().cloned().collect(),
    };
    let items: Vec<Value> =
        rows.into_iter().filter(|row| conditions.iter().all(|(field, value)| &row[*field] == value)).collect();
    json_response(&json!({
        "items": items,
        "pageDetails": { "count": items.len(), "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null },
    }))
}
