//! ConnectWise Manage (fact sheet §1) under [`CW_PREFIX`](crate::CW_PREFIX).
//!
//! Basic auth `company+public:private` plus a mandatory `clientId` header (401 otherwise),
//! `conditions` filters, `page`/`pageSize` (default 25, clamped to 1000) with `Link`
//! headers, configuration status records, JSON-Patch (array) updates, the
//! `{"code","message","errors"}` error shape.
//!
//! Agreements (contracts; shape not covered by the fact sheet, so UNCONFIRMED but
//! plausible): `GET /finance/agreements`, `/finance/agreements/count`,
//! `/finance/agreements/{id}`, filtered and paged like every other list. A record is
//! `{"id","name","type":{"id":1,"name":"Managed Services"},"company":{"id","identifier","name"},
//! "startDate","endDate"|null,"noEndingDateFlag","cancelledFlag","agreementStatus","_info"}`
//! with dates `YYYY-MM-DDT00:00:00Z`; `agreementStatus` is `Cancelled` when cancelled, else
//! `Expired` when `endDate` is before the sandbox's start day, else `Active`. Conditions
//! such as `endDate<[2026-11-22T00:00:00Z]`, `company/id=250` and `cancelledFlag=false`
//! work: `[datetime]` literals compare with the ISO strings lexically, and a null
//! `endDate` matches no `<`/`>` comparison (as SQL's NULL).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::seed::{self, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY};
use crate::{PsaSim, Shared, conditions, json_response, query_map};

/// ConnectWise's data, reachable synchronously from tests.
pub struct ConnectWiseSim {
    state: Mutex<seed::CwData>,
}

impl ConnectWiseSim {
    pub(crate) fn new(data: seed::CwData) -> Self {
        Self { state: Mutex::new(data) }
    }

    pub(crate) fn add_contract(&self, contract: &seed::Contract, today: &str) {
        self.with(|d| {
            // An unknown company still gets the agreement, with a company reference of id only.
            let company = d.companies.get(&contract.company_id).cloned().unwrap_or_else(|| json!({}));
            d.agreements.insert(contract.id, seed::cw_agreement(contract, &company, today));
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut seed::CwData) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn configuration(&self, id: i64) -> Option<Value> {
        self.with(|d| d.configs.get(&id).cloned())
    }

    pub fn configurations_of(&self, company_id: i64) -> Vec<Value> {
        self.with(|d| d.configs.values().filter(|c| c["company"]["id"] == json!(company_id)).cloned().collect())
    }

    pub fn company(&self, id: i64) -> Option<Value> {
        self.with(|d| d.companies.get(&id).cloned())
    }

    /// An agreement (contract) as `/finance/agreements/{id}` renders it.
    pub fn agreement(&self, id: i64) -> Option<Value> {
        self.with(|d| d.agreements.get(&id).cloned())
    }

    /// Someone changes a configuration in the PSA.
    pub fn set_configuration_status(&self, id: i64, status_id: i64) {
        self.with(|d| {
            let status = d.config_status(status_id).expect("known status");
            if let Some(config) = d.configs.get_mut(&id) {
                seed::apply_status(config, &status);
            }
        })
    }

    /// PATCHes of configuration `id` answer HTTP `status` with `message`.
    pub fn fail_configuration_update(&self, id: i64, status: u16, message: &str) {
        self.with(|d| d.update_failures.insert(id, (status, message.to_string())));
    }

    pub fn clear_configuration_failures(&self) {
        self.with(|d| d.update_failures.clear());
    }

    /// PATCHes (array body) that reached configuration `config_id`, failed ones included.
    pub fn patch_count(&self, config_id: i64) -> usize {
        self.with(|d| d.patch_counts.get(&config_id).copied().unwrap_or(0))
    }
}

impl PsaSim for ConnectWiseSim {
    fn kind(&self) -> &'static str {
        "connectwise"
    }

    fn configuration_is_active(&self, id: i64) -> Option<bool> {
        self.configuration(id).map(|c| c["activeFlag"].as_bool().unwrap_or(false))
    }

    fn set_configuration_active(&self, id: i64, active: bool) {
        self.set_configuration_status(id, if active { 1 } else { 2 });
    }

    fn fail_configuration_update(&self, id: i64, message: &str) {
        ConnectWiseSim::fail_configuration_update(self, id, 400, message);
    }

    fn clear_configuration_failures(&self) {
        ConnectWiseSim::clear_configuration_failures(self);
    }

    fn update_count(&self, config_id: i64) -> usize {
        self.patch_count(config_id)
    }

    fn configuration_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.configurations_of(company_id).iter().filter_map(|c| c["id"].as_i64()).collect()
    }

    // Placeholders until the contact routes land (issue 4); replaced by the real ones.
    fn contact_is_active(&self, _id: i64) -> Option<bool> {
        unimplemented!("contacts not simulated yet")
    }
    fn set_contact_active(&self, _id: i64, _active: bool) {
        unimplemented!("contacts not simulated yet")
    }
    fn fail_contact_update(&self, _id: i64, _message: &str) {
        unimplemented!("contacts not simulated yet")
    }
    fn clear_contact_failures(&self) {
        unimplemented!("contacts not simulated yet")
    }
    fn contact_update_count(&self, _id: i64) -> usize {
        unimplemented!("contacts not simulated yet")
    }
    fn contact_ids_of(&self, _company_id: i64) -> Vec<i64> {
        unimplemented!("contacts not simulated yet")
    }
    fn ticket(&self, _id: i64) -> Option<crate::TicketView> {
        unimplemented!("tickets not simulated yet")
    }
    fn set_ticket_contact(&self, _id: i64, _contact_id: Option<i64>) {
        unimplemented!("tickets not simulated yet")
    }
    fn ticket_ids_of(&self, _company_id: i64) -> Vec<i64> {
        unimplemented!("tickets not simulated yet")
    }
    fn configuration_contact(&self, _id: i64) -> Option<i64> {
        unimplemented!("configuration contacts not simulated yet")
    }
    fn set_configuration_contact(&self, _id: i64, _contact_id: Option<i64>) {
        unimplemented!("configuration contacts not simulated yet")
    }
}

pub(crate) fn cw_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "code": code, "message": message }).to_string())
        .into_response()
}

/// The 401 to answer, if the request's credentials are not the sandbox's.
fn auth_failure(headers: &HeaderMap) -> Option<Response> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CW_COMPANY_ID}+{CW_PUBLIC_KEY}:{CW_PRIVATE_KEY}"))
    );
    let authorization = headers.get("authorization").and_then(|h| h.to_str().ok());
    if authorization != Some(expected.as_str()) {
        return Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", "UserNotAuthenticated"));
    }
    match headers.get("clientid").and_then(|h| h.to_str().ok()) {
        None => Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", "A clientId header is required")),
        Some(id) if id != CW_CLIENT_ID => Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unknown clientId")),
        Some(_) => None,
    }
}

/// A request under the ConnectWise prefix; `path` is the part after it.
pub(crate) fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    body: &Bytes,
) -> Response {
    if let Some(response) = auth_failure(headers) {
        return response;
    }
    let cw = &shared.cw;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query = query_map(uri);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["company", "companies"]) => {
            shared.record_route(method, "/company/companies");
            let records = cw.with(|d| d.companies.values().cloned().collect::<Vec<_>>());
            list(records, &query, uri, host)
        }
        ("GET", ["company", "companies", "count"]) => {
            shared.record_route(method, "/company/companies/count");
            let records = cw.with(|d| d.companies.values().cloned().collect::<Vec<_>>());
            count(records, &query)
        }
        ("GET", ["company", "companies", "statuses"]) => {
            shared.record_route(method, "/company/companies/statuses");
            list(cw.with(|d| d.company_statuses.clone()), &query, uri, host)
        }
        ("GET", ["company", "companies", id]) => {
            shared.record_route(method, "/company/companies/{id}");
            match id.parse::<i64>().ok().and_then(|id| cw.company(id)) {
                Some(company) => json_response(&company),
                None => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Company recId {id} not found.")),
            }
        }
        ("GET", ["finance", "agreements"]) => {
            shared.record_route(method, "/finance/agreements");
            let records = cw.with(|d| d.agreements.values().cloned().collect::<Vec<_>>());
            list(records, &query, uri, host)
        }
        ("GET", ["finance", "agreements", "count"]) => {
            shared.record_route(method, "/finance/agreements/count");
            let records = cw.with(|d| d.agreements.values().cloned().collect::<Vec<_>>());
            count(records, &query)
        }
        ("GET", ["finance", "agreements", id]) => {
            shared.record_route(method, "/finance/agreements/{id}");
            match id.parse::<i64>().ok().and_then(|id| cw.agreement(id)) {
                Some(agreement) => json_response(&agreement),
                None => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Agreement recId {id} not found.")),
            }
        }
        ("GET", ["company", "configurations"]) => {
            shared.record_route(method, "/company/configurations");
            let records = cw.with(|d| d.configs.values().cloned().collect::<Vec<_>>());
            list(records, &query, uri, host)
        }
        ("GET", ["company", "configurations", "count"]) => {
            shared.record_route(method, "/company/configurations/count");
            let records = cw.with(|d| d.configs.values().cloned().collect::<Vec<_>>());
            count(records, &query)
        }
        ("GET", ["company", "configurations", "statuses"]) => {
            shared.record_route(method, "/company/configurations/statuses");
            list(cw.with(|d| d.config_statuses.clone()), &query, uri, host)
        }
        ("GET", ["company", "configurations", id]) => {
            shared.record_route(method, "/company/configurations/{id}");
            match id.parse::<i64>().ok().and_then(|id| cw.configuration(id)) {
                Some(config) => json_response(&config),
                None => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Configuration recId {id} not found.")),
            }
        }
        ("PATCH", ["company", "configurations", id]) => {
            shared.record_route(method, "/company/configurations/{id}");
            let Ok(id) = id.parse::<i64>() else {
                return cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Configuration recId {id} not found."));
            };
            patch_configuration(shared, id, body)
        }
        _ => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("No route for {method} {path}")),
    }
}

fn filtered(records: Vec<Value>, query: &HashMap<String, String>) -> Result<Vec<Value>, Box<Response>> {
    match query.get("conditions").filter(|c| !c.trim().is_empty()) {
        None => Ok(records),
        Some(text) => {
            let condition = conditions::parse(text).map_err(|e| {
                Box::new(cw_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    &format!("conditions could not be parsed: {e}"),
                ))
            })?;
            Ok(records.into_iter().filter(|r| condition.matches(r)).collect())
        }
    }
}

fn count(records: Vec<Value>, query: &HashMap<String, String>) -> Response {
    match filtered(records, query) {
        Ok(records) => json_response(&json!({ "count": records.len() })),
        Err(response) => *response,
    }
}

fn list(records: Vec<Value>, query: &HashMap<String, String>, uri: &Uri, host: &str) -> Response {
    let mut records = match filtered(records, query) {
        Ok(records) => records,
        Err(response) => return *response,
    };
    records.sort_by_key(|r| r["id"].as_i64().unwrap_or(0));
    let page_size = query.get("pagesize").and_then(|v| v.parse::<usize>().ok()).unwrap_or(25).clamp(1, 1000);
    let page = query.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
    let pages = records.len().div_ceil(page_size).max(1);
    let items: Vec<Value> = records.into_iter().skip((page - 1) * page_size).take(page_size).collect();
    let link_to = |n: usize| {
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .filter(|(k, _)| !k.eq_ignore_ascii_case("page") && !k.eq_ignore_ascii_case("pagesize"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.push(("page".into(), n.to_string()));
        pairs.push(("pageSize".into(), page_size.to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        format!("<http://{host}{}?{query}>", uri.path())
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
        links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
    }
    if page < pages {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(pages)));
    }
    let mut response = json_response(&Value::Array(items));
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", value);
    }
    response
}

fn patch_configuration(shared: &Shared, id: i64, body: &Bytes) -> Response {
    let ops = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(ops)) => ops,
        _ => {
            return cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "The request body must be a JSON array of patch operations",
            );
        }
    };
    let response = shared.cw.with(|d| {
        if !d.configs.contains_key(&id) {
            return cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Configuration recId {id} not found."));
        }
        *d.patch_counts.entry(id).or_default() += 1;
        if let Some((status, message)) = d.update_failures.get(&id).cloned() {
            return cw_error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "InvalidObject", &message);
        }
        let mut updated = d.configs[&id].clone();
        for op in &ops {
            let path = op["path"].as_str().unwrap_or_default().trim_start_matches('/');
            if op["op"] != json!("replace") || path.is_empty() {
                return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "Only replace operations with a path are supported");
            }
            if path.eq_ignore_ascii_case("status") {
                let Some(status) = op["value"]["id"].as_i64().and_then(|sid| d.config_status(sid)) else {
                    let body = json!({"code": "InvalidObject", "message": "Configuration object is invalid",
                        "errors": [{"code": "InvalidObject", "message": "status is invalid", "resource": "configuration", "field": "status"}]});
                    return (StatusCode::BAD_REQUEST, [("content-type", "application/json")], body.to_string()).into_response();
                };
                seed::apply_status(&mut updated, &status);
            } else {
                updated[path] = op["value"].clone();
            }
        }
        d.configs.insert(id, updated.clone());
        json_response(&updated)
    });
    // Count configuration PATCHes that reached an existing configuration.
    if response.status() != StatusCode::NOT_FOUND {
        shared.stats().configuration_patches += 1;
    }
    response
}
