//! `GET /users`: the tenant's users, paged (docs/vendors/microsoft-graph.md#licensed-users).
//!
//! - `$top` 1..=999 (default 100), `$skiptoken` from the previous page's absolute
//!   `@odata.nextLink`, which repeats `$filter`, `$count` and `$select`.
//! - `$filter`: only `assignedLicenses/$count ne 0` (users holding a licence, direct or
//!   through a group) and `assignedLicenses/$count eq 0`; any other → 400 `BadRequest`.
//! - A filter on a collection's `$count` is an advanced query: without `ConsistencyLevel:
//!   eventual` **and** `$count=true` Graph answers 400 `Request_UnsupportedQuery`, as here —
//!   on every page, not only the first.
//! - `$count=true` adds `@odata.count` (the number of matching users) to each page.
//! - Deleted users are not listed; disabled ones are (the caller decides).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::graph::{Answer, Call};
use super::graph_users::{DEFAULT_USER_PROPERTIES, select};
use crate::Shared;

const PAGE: usize = 100;
const MAX_PAGE: usize = 999;
const SKIP_PREFIX: &str = "X'4453707402";

/// What `$filter` asks: licensed users (`true`), unlicensed ones (`false`), or every user.
fn licence_filter(filter: Option<&String>) -> Result<Option<bool>, Answer> {
    let Some(filter) = filter else { return Ok(None) };
    let words: Vec<String> = filter.split_whitespace().map(str::to_ascii_lowercase).collect();
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["assignedlicenses/$count", "ne", "0"] => Ok(Some(true)),
        ["assignedlicenses/$count", "eq", "0"] => Ok(Some(false)),
        _ => Err(Answer::error(StatusCode::BAD_REQUEST, "BadRequest", &format!("Invalid filter clause: {filter}"))),
    }
}

pub(crate) fn list_users(shared: &Shared, call: &Call) -> Answer {
    let licensed = match licence_filter(call.query.get("$filter")) {
        Ok(licensed) => licensed,
        Err(answer) => return answer,
    };
    let count = call.query.get("$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    if licensed.is_some() && !(count && call.consistency_eventual) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query: a filter on a collection's $count needs $count=true and the ConsistencyLevel: eventual header.",
        );
    }
    let top = match call.query.get("$top").map(|t| t.parse::<usize>()) {
        None => PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Answer::bad_request("Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.");
        }
    };
    let skip = match call.query.get("$skiptoken").map(|t| t.strip_prefix(SKIP_PREFIX).and_then(|n| n.parse().ok())) {
        None => 0,
        Some(Some(n)) => n,
        Some(None) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            );
        }
    };
    let state = shared.m365.state();
    let Some(tenant) = state.tenants.get(&call.tenant) else { return Answer::not_found(&call.tenant) };
    let matching: Vec<Value> = tenant
        .users
        .values()
        .filter(|u| !u.deleted)
        .filter(|u| licensed.is_none_or(|want| tenant.licence_states(u).is_empty() != want))
        .map(|u| tenant.user_json(u))
        .collect();
    let mut page = Vec::new();
    for full in matching.iter().skip(skip).take(top) {
        match select(full, call.query.get("$select"), &DEFAULT_USER_PROPERTIES, "user") {
            Ok(user) => page.push(user),
            Err(answer) => return answer,
        }
    }
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": page});
    if count {
        body["@odata.count"] = json!(matching.len());
    }
    if skip + top < matching.len() {
        body["@odata.nextLink"] = json!(next_link(call, top, skip + top));
    }
    Answer::ok(body)
}

fn next_link(call: &Call, top: usize, skip: usize) -> String {
    let mut url = url::Url::parse(&format!("http://{}/graph/v1.0/users", call.host)).expect("a sandbox url");
    {
        let mut query = url.query_pairs_mut();
        for key in ["$filter", "$count", "$select"] {
            if let Some(value) = call.query.get(key) {
                query.append_pair(key, value);
            }
        }
        query.append_pair("$top", &top.to_string()).append_pair("$skiptoken", &format!("{SKIP_PREFIX}{skip}"));
    }
    url.to_string()
}
