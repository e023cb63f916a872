//! Entry points for the fuzz targets (`fuzz/`, `make fuzz`, README "Reliability"; feature
//! `fuzzing`, never on in a binary). Each hands arbitrary bytes to the parsing the Lambda
//! functions and the adapters really use and ignores the outcome: an input may be refused,
//! but nothing may panic, overflow or hang. Nothing here parses by itself: it only shapes
//! the bytes into what the real code receives (a JSON event, an HTTP answer).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::adapters::{autotask, connectwise, halo, itglue, notify_graph};
use crate::entry::{Invocation, Schedules};
use crate::http::{HttpResponse, Redactor, limits};
use crate::workflows::deactivate_configs::{self, DeactivateConfigsRequest};
use crate::workflows::deactivate_contacts::{self, DeactivateContactsRequest};
use crate::workflows::delete_itglue_org::{self, DeleteOrgRequest};
use crate::workflows::org_settings;
use crate::workflows::rollback::{self, RollbackRequest};

// ---------------------------------------------------------------------------
// Lambda events
// ---------------------------------------------------------------------------

/// The trigger an event target holds its input to, so that each shape's parsing is reached
/// whatever the fuzzer mutates (the keys `entry::Invocation::parse` recognises a shape by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventShape {
    /// API Gateway REST API proxy event.
    RestApi,
    /// API Gateway HTTP API event, payload format 2.0.
    HttpApi,
    /// EventBridge event (a schedule, or one claiming to be).
    EventBridge,
    /// Direct invoke or Step Functions task: the event is the request.
    Direct,
}

/// `data` as a Lambda event of `shape`, handed to every function's entry parsing (the
/// `aws_lambda_events` type, then one typed invocation), and every request it yields to
/// that workflow's checks.
pub fn lambda_event(shape: EventShape, data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(data) else { return };
    let event = shaped(shape, event);
    if let Some(request) = request::<DeactivateConfigsRequest>(&event, Schedules::Accepted) {
        let _ = deactivate_configs::check_request(&request);
    }
    if let Some(request) = request::<DeactivateContactsRequest>(&event, Schedules::Refused) {
        let _ = deactivate_contacts::check_request(&request, &requester_domains());
    }
    if let Some(request) = request::<RollbackRequest>(&event, Schedules::Refused) {
        let _ = rollback::checked(&request, request.operation_id.trim());
    }
    if let Some(request) = request::<DeleteOrgRequest>(&event, Schedules::Accepted) {
        let _ = delete_itglue_org::check_request(&request);
    }
    // User offboarding's checks run inside the workflow, after the parsing reached here.
    let _ = request::<crate::workflows::offboard_user::OffboardUserRequest>(&event, Schedules::Refused);
}

/// The request an event carries, through the entry parsing; a refusal's message is built.
fn request<R: DeserializeOwned>(event: &Value, schedules: Schedules) -> Option<R> {
    match Invocation::<R>::parse(event.clone(), schedules) {
        Ok(invocation) => invocation.into_request().ok().map(|(_, request)| request),
        Err(refused) => {
            let _ = refused.error.to_string();
            None
        }
    }
}

/// `event` with the keys that make it `shape` (and without those of another shape).
fn shaped(shape: EventShape, event: Value) -> Value {
    let Value::Object(mut fields) = event else { return event };
    let ensure = |fields: &mut Map<String, Value>, key: &str, value: Value| {
        fields.entry(key.to_string()).or_insert(value);
    };
    match shape {
        EventShape::RestApi => {
            ensure(&mut fields, "requestContext", json!({}));
            if fields.get("version").and_then(Value::as_str) == Some("2.0") {
                fields.insert("version".into(), json!("1.0"));
            }
        }
        EventShape::HttpApi => {
            ensure(&mut fields, "requestContext", json!({}));
            fields.insert("version".into(), json!("2.0"));
        }
        EventShape::EventBridge => {
            fields.remove("requestContext");
            ensure(&mut fields, "source", json!(crate::entry::SCHEDULE_SOURCE));
        }
        EventShape::Direct => {
            for key in ["requestContext", "source", "detail-type", "detail"] {
                fields.remove(key);
            }
        }
    }
    Value::Object(fields)
}

// ---------------------------------------------------------------------------
// Workflow inputs
// ---------------------------------------------------------------------------

/// The domains requesters may be notified in, as a deployment might set them.
fn requester_domains() -> Vec<String> {
    vec!["example.com".into()]
}

/// `data` as the JSON request of workflow 000 (configurations), then its checks.
pub fn deactivate_configs_input(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<DeactivateConfigsRequest>(data) {
        let _ = deactivate_configs::check_request(&request);
    }
}

/// `data` as the JSON request of workflow 001 (contacts), then its checks.
pub fn deactivate_contacts_input(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<DeactivateContactsRequest>(data) {
        let _ = deactivate_contacts::check_request(&request, &requester_domains());
    }
}

/// `data` as the JSON request of a rollback, then its checks.
pub fn rollback_input(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<RollbackRequest>(data) {
        let _ = rollback::checked(&request, request.operation_id.trim());
    }
}

/// `data` as the JSON request of workflow 002 (IT Glue organization), then its checks.
pub fn delete_itglue_org_input(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<DeleteOrgRequest>(data) {
        let _ = delete_itglue_org::check_request(&request);
    }
}

/// An organization setting: the first line is the key, the rest its value.
pub fn org_setting_input(data: &[u8]) {
    let (key, value) = split_line(data);
    let value = String::from_utf8_lossy(value);
    let _ = org_settings::validate_key(key);
    let _ = org_settings::validate(key, &value);
}

// ---------------------------------------------------------------------------
// Vendor answers
// ---------------------------------------------------------------------------

/// The vendor whose answers a target feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    ConnectWise,
    Autotask,
    Halo,
    ItGlue,
    Graph,
}

/// `data` as an HTTP answer of `vendor` (see [`vendor_response`]) through that adapter's own
/// readers: pages, errors, tokens and records.
pub fn vendor_answer(vendor: Vendor, data: &[u8]) {
    let response = vendor_response(data);
    match vendor {
        Vendor::ConnectWise => connectwise::fuzzing::answer(&response),
        Vendor::Autotask => autotask::fuzzing::answer(&response),
        Vendor::Halo => halo::fuzzing::answer(&response),
        Vendor::ItGlue => itglue::fuzzing::answer(&response),
        Vendor::Graph => graph_answer(&response),
    }
}

/// Microsoft Graph mail: the token endpoint's answer and both refusals.
fn graph_answer(response: &HttpResponse) {
    // A redactor per answer: each token it learns is this answer's alone.
    let redactor = Redactor::new(["fuzz-client-secret".to_string()]);
    let _ = notify_graph::token_answer(&redactor, response, std::time::Instant::now());
    let _ = notify_graph::token_error(&redactor, response);
    let _ = notify_graph::send_error(&redactor, "offboarding@example.com", response);
}

/// An HTTP answer from bytes: the first line is `STATUS HEADER`, where `STATUS` is the
/// status code (200 when it is not a number) and `HEADER` the value of both the `Link`
/// and the `Retry-After` header (when it is a valid header value); the rest is the body.
pub fn vendor_response(data: &[u8]) -> HttpResponse {
    let (first, body) = split_line(data);
    let (status, header) = first.split_once(' ').unwrap_or((first, ""));
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(value) = reqwest::header::HeaderValue::from_str(header) {
        headers.insert(reqwest::header::LINK, value.clone());
        headers.insert(reqwest::header::RETRY_AFTER, value);
    }
    HttpResponse { status: status.trim().parse().unwrap_or(200), headers, body: body.to_vec() }
}

/// The first line of `data` (as text; empty when it is not UTF-8) and the rest.
fn split_line(data: &[u8]) -> (&str, &[u8]) {
    let cut = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let line = std::str::from_utf8(&data[..cut]).unwrap_or_default();
    (line, data.get(cut + 1..).unwrap_or_default())
}

// ---------------------------------------------------------------------------
// The HTTP layer's bounds
// ---------------------------------------------------------------------------

/// `Retry-After` (the first line) at every cap, which no wait may pass; the rest as a
/// body: its JSON (depth-bounded), its excerpt, and the redactor learning the first line
/// as a secret and scrubbing the body.
pub fn http_limits(data: &[u8]) {
    let (retry_after, body) = split_line(data);
    let now = chrono::Utc::now();
    for cap in [Duration::ZERO, Duration::from_secs(120), Duration::MAX] {
        if let Some(wait) = limits::retry_after_wait(retry_after, cap, now) {
            assert!(wait <= cap, "Retry-After {retry_after:?} waits {wait:?}, past the cap {cap:?}");
        }
    }
    let answer = vendor_response(data);
    let _ = answer.json();
    let _ = answer.body_excerpt();
    let _ = limits::nesting_exceeds(body, crate::http::MAX_JSON_DEPTH);
    let _ = Redactor::new([retry_after.to_string()]).scrub(&String::from_utf8_lossy(body));
}
