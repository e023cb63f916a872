//! `POST /$batch` (docs/vendors/microsoft-graph.md#batch): at most 20 requests with unique
//! ids, each answered with its own status, headers and body; `dependsOn` runs a request
//! after the ones it names and answers 424 when one of them failed; each inner request
//! meets the limits by itself (an inner 429 carries its own `Retry-After`, UNCONFIRMED).
//! Responses are listed in REVERSE order of the requests: Graph may answer in any order,
//! and a client must correlate by id.
//!
//! Each inner request is counted apart from the batch itself ([`super::M365Sim::requests`]).
//!
//! Whole-batch 400 `BadRequest`: a body that is not `{"requests":[…]}`, more than 20
//! requests, a missing or repeated id, a missing method or url, an absolute url, a body
//! without a `Content-Type` header (UNCONFIRMED: Graph may answer this per request),
//! `dependsOn` naming an id not listed before it, or a nested `$batch`.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::graph::{Answer, Call, dispatch, parse_query, split_path};
use crate::Shared;

pub(crate) const MAX_BATCH: usize = 20;

struct Inner {
    id: String,
    method: Method,
    path: String,
    query: String,
    body: Vec<u8>,
    depends_on: Vec<String>,
    consistency_eventual: bool,
}

fn bad(message: &str) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn parse_one(request: &Value, seen: &[String]) -> Result<Inner, Answer> {
    let id = match &request["id"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad("Every batch request needs an 'id'.")),
    };
    if seen.contains(&id) {
        return Err(bad(&format!("Batch request ids must be unique; '{id}' is repeated.")));
    }
    let method = request["method"].as_str().and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
    let Some(method) = method else { return Err(bad(&format!("Request '{id}' has no valid 'method'."))) };
    let Some(url) = request["url"].as_str() else { return Err(bad(&format!("Request '{id}' has no 'url'."))) };
    if url.contains("://") {
        return Err(bad(&format!("Request '{id}': the url must be relative to the version, e.g. /users/{{id}}.")));
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if split_path(path).first().is_some_and(|s| s == "$batch") {
        return Err(bad("A batch cannot contain a batch."));
    }
    let body = match request.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(body) => {
            let has_type = request["headers"]
                .as_object()
                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")));
            if !has_type {
                return Err(bad(&format!("Request '{id}' has a body but no Content-Type header.")));
            }
            body.to_string().into_bytes()
        }
    };
    let depends_on: Vec<String> = request["dependsOn"]
        .as_array()
        .map(|list| list.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if let Some(unknown) = depends_on.iter().find(|d| !seen.contains(d)) {
        return Err(bad(&format!(
            "Request '{id}' depends on '{unknown}', which is not an earlier request of the batch."
        )));
    }
    let consistency_eventual = request["headers"].as_object().is_some_and(|h| {
        h.iter().any(|(k, v)| k.eq_ignore_ascii_case("consistencylevel") && v.as_str() == Some("eventual"))
    });
    Ok(Inner { id, method, path: path.to_string(), query: query.to_string(), body, depends_on, consistency_eventual })
}

fn parse(body: &[u8]) -> Result<Vec<Inner>, Answer> {
    let input: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("Invalid batch payload: {e}")))?;
    let Some(requests) = input["requests"].as_array() else { return Err(bad("Invalid batch payload format.")) };
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Err(bad(&format!("A batch holds 1 to {MAX_BATCH} requests; this one has {}.", requests.len())));
    }
    let mut parsed: Vec<Inner> = Vec::with_capacity(requests.len());
    for request in requests {
        let seen: Vec<String> = parsed.iter().map(|p| p.id.clone()).collect();
        parsed.push(parse_one(request, &seen)?);
    }
    Ok(parsed)
}

fn render(id: &str, answer: Answer) -> Value {
    let headers: Map<String, Value> = answer.headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let mut out = json!({"id": id, "status": answer.status.as_u16(), "headers": headers});
    if let Some(body) = answer.body {
        out["body"] = body;
    }
    out
}

/// The whole batch: 200 with every inner answer, or 400 for a malformed batch.
pub(crate) fn run(shared: &Shared, call: &Call) -> Answer {
    if call.method != Method::POST {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        );
    }
    shared.record_route(&call.method, "/graph/v1.0/$batch");
    let requests = match parse(call.body) {
        Ok(requests) => requests,
        Err(answer) => return answer,
    };
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(requests.len());
    for inner in requests {
        shared.m365.requests.inner(&call.tenant);
        let failed = inner.depends_on.iter().find(|d| statuses.get(*d).is_none_or(|s| *s >= 400));
        let answer = match failed {
            Some(dependency) => Answer::error(
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                &format!("The request depends on request '{dependency}', which failed."),
            ),
            None => {
                let sub = Call {
                    tenant: call.tenant.clone(),
                    method: inner.method.clone(),
                    segments: split_path(&inner.path),
                    query: parse_query(&inner.query),
                    body: &inner.body,
                    host: call.host,
                    consistency_eventual: inner.consistency_eventual,
                };
                dispatch(shared, &sub)
            }
        };
        statuses.insert(inner.id.clone(), answer.status.as_u16());
        responses.push(render(&inner.id, answer));
    }
    responses.reverse();
    Answer::ok(json!({"responses": responses}))
}
