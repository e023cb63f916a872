//! Loopback simulators of the SaaS vendors Offramp talks to, over real HTTP.
//!
//! Now: ConnectWise Manage (fact sheet `psa-itglue-api.md` §1) under
//! `/v4_6_release/apis/3.0`. Faithful where the client depends on it: Basic auth plus a
//! mandatory `clientId` header (401 otherwise), `conditions` filters, `page`/`pageSize`
//! (default 25, clamped to 1000) with `Link` headers, configuration status records,
//! JSON-Patch (array) updates, the `{"code","message","errors"}` error shape. Around
//! every vendor route: injectable latency, a token-bucket rate limit answered with 429
//! and `Retry-After`, and faults (HTTP errors, dropped connections, per-configuration
//! update failures).
//!
//! Admin API (no auth, never used by the production client) under `/_sandbox/`:
//! `GET stats`, `POST reset-stats`, `POST faults {"fail_next":N,"status":S,"drop_next":N}`,
//! `POST settings {"latency_ms":N,"rate_limit":N|null}`.
//!
//! Forward-only pagination (`pagination-type: forward-only`) is not simulated: Offramp's
//! client uses navigable pagination.

mod conditions;
pub mod seed;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

pub use seed::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY};

/// The path prefix of the ConnectWise API (codebase + `apis/3.0`).
pub const CW_PREFIX: &str = "/v4_6_release/apis/3.0";

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub latency: Duration,
    pub rate_limit_per_sec: Option<u32>,
    /// Configurations of the large client (company 300); 0 = do not seed it.
    pub large_client_configs: usize,
    /// Configurations of the bench client (company 500); 0 = no bench client.
    pub bench_client_configs: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            rate_limit_per_sec: None,
            large_client_configs: 10_000,
            bench_client_configs: 0,
        }
    }
}

/// Request counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StatsSnapshot {
    pub total_requests: u64,
    pub throttled: u64,
    pub by_route: BTreeMap<String, u64>,
    pub configuration_patches: u64,
}

impl StatsSnapshot {
    pub fn total(&self) -> u64 {
        self.total_requests
    }
    pub fn throttled(&self) -> u64 {
        self.throttled
    }
    /// PATCHes of configurations that reached the handler (past auth and faults).
    pub fn patches(&self) -> u64 {
        self.configuration_patches
    }
    /// Requests on one route template, e.g. `("GET", "/company/configurations")`.
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.by_route.get(&format!("{method} {route}")).copied().unwrap_or(0)
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct Shared {
    cw: ConnectWiseSim,
    latency_ms: AtomicU64,
    rate_limit: Mutex<Option<u32>>,
    bucket: Mutex<Bucket>,
    fail_next: AtomicU32,
    fail_status: AtomicU32,
    drop_next: AtomicU32,
    stats: Mutex<StatsSnapshot>,
}

/// ConnectWise's data, reachable synchronously from tests.
pub struct ConnectWiseSim {
    state: Mutex<seed::CwData>,
}

impl ConnectWiseSim {
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

    /// Someone changes a configuration in the PSA.
    pub fn set_configuration_status(&self, id: i64, status_id: i64) {
        self.with(|d| {
            let status = d.config_status(status_id).expect("known status");
            if let Some(config) = d.configs.get_mut(&id) {
                seed::apply_status(config, &status);
            }
        })
    }

    pub fn fail_configuration_update(&self, id: i64, status: u16, message: &str) {
        self.with(|d| d.update_failures.insert(id, (status, message.to_string())));
    }

    pub fn clear_configuration_failures(&self) {
        self.with(|d| d.update_failures.clear());
    }

    pub fn patch_count(&self, config_id: i64) -> usize {
        self.with(|d| d.patch_counts.get(&config_id).copied().unwrap_or(0))
    }
}

pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Sandbox {
    /// Start on 127.0.0.1 with a free port.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        Self::start_on(config, 0).await
    }

    pub async fn start_on(config: SandboxConfig, port: u16) -> anyhow::Result<Sandbox> {
        let data = seed::connectwise(config.large_client_configs, config.bench_client_configs);
        let shared = Arc::new(Shared {
            cw: ConnectWiseSim { state: Mutex::new(data) },
            latency_ms: AtomicU64::new(config.latency.as_millis() as u64),
            rate_limit: Mutex::new(config.rate_limit_per_sec),
            bucket: Mutex::new(Bucket { tokens: config.rate_limit_per_sec.unwrap_or(0) as f64, last: Instant::now() }),
            fail_next: AtomicU32::new(0),
            fail_status: AtomicU32::new(503),
            drop_next: AtomicU32::new(0),
            stats: Mutex::new(StatsSnapshot::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sandbox { addr, shared, shutdown: Some(tx) })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connectwise_url(&self) -> String {
        format!("{}{CW_PREFIX}", self.base_url())
    }

    pub fn connectwise(&self) -> &ConnectWiseSim {
        &self.shared.cw
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset_stats(&self) {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = StatsSnapshot::default();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.shared.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.set_rate_limit(per_second);
    }

    /// The next `n` vendor requests answer HTTP `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.fail_status.store(status as u32, Ordering::SeqCst);
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` vendor requests lose their connection mid-response.
    pub fn drop_next(&self, n: u32) {
        self.shared.drop_next.store(n, Ordering::SeqCst);
    }
}

impl Shared {
    fn set_rate_limit(&self, per_second: Option<u32>) {
        *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) = per_second;
        *self.bucket.lock().unwrap_or_else(|e| e.into_inner()) =
            Bucket { tokens: per_second.unwrap_or(0) as f64, last: Instant::now() };
    }

    /// Token bucket: `rate` tokens per second, capacity one second's worth.
    fn admit(&self) -> bool {
        let Some(rate) = *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) else { return true };
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate as f64;
        bucket.tokens = (bucket.tokens + refill).min(rate as f64);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn take(counter: &AtomicU32) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

fn cw_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "code": code, "message": message }).to_string())
        .into_response()
}

fn json_response(value: &Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if let Some(admin) = path.strip_prefix("/_sandbox/") {
        return admin_route(&shared, &method, admin, &body);
    }
    shared.stats.lock().unwrap_or_else(|e| e.into_inner()).total_requests += 1;
    if !shared.admit() {
        shared.stats.lock().unwrap_or_else(|e| e.into_inner()).throttled += 1;
        let mut response =
            cw_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests, try again later");
        response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        return response;
    }
    let latency = shared.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if Shared::take(&shared.drop_next) {
        // Headers go out, then the body breaks: the client sees a broken connection.
        let stream =
            futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("dropped by sandbox")) });
        return Response::builder().status(200).body(Body::from_stream(stream)).unwrap_or_default();
    }
    if Shared::take(&shared.fail_next) {
        let status = StatusCode::from_u16(shared.fail_status.load(Ordering::SeqCst) as u16)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return cw_error(status, "ServiceUnavailable", "Injected fault");
    }
    let Some(api_path) = path.strip_prefix(CW_PREFIX) else {
        return cw_error(StatusCode::NOT_FOUND, "NotFound", "No such API");
    };
    if let Some(response) = auth_failure(&headers) {
        return response;
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    connectwise_route(&shared, &method, api_path, &uri, &host, &body)
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

fn admin_route(shared: &Shared, method: &Method, path: &str, body: &Bytes) -> Response {
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), path) {
        ("GET", "stats") => json_response(
            &serde_json::to_value(&*shared.stats.lock().unwrap_or_else(|e| e.into_inner())).unwrap_or_default(),
        ),
        ("POST", "reset-stats") => {
            *shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = StatsSnapshot::default();
            json_response(&json!({"ok": true}))
        }
        ("POST", "faults") => {
            if let Some(status) = input["status"].as_u64() {
                shared.fail_status.store(status as u32, Ordering::SeqCst);
            }
            shared.fail_next.store(input["fail_next"].as_u64().unwrap_or(0) as u32, Ordering::SeqCst);
            shared.drop_next.store(input["drop_next"].as_u64().unwrap_or(0) as u32, Ordering::SeqCst);
            json_response(&json!({"ok": true}))
        }
        ("POST", "settings") => {
            if let Some(latency) = input["latency_ms"].as_u64() {
                shared.latency_ms.store(latency, Ordering::SeqCst);
            }
            if input.get("rate_limit").is_some() {
                shared.set_rate_limit(input["rate_limit"].as_u64().map(|r| r as u32));
            }
            json_response(&json!({"ok": true}))
        }
        _ => cw_error(StatusCode::NOT_FOUND, "NotFound", "unknown sandbox admin route"),
    }
}

fn record_route(shared: &Shared, method: &Method, route: &str) {
    *shared.stats.lock().unwrap_or_else(|e| e.into_inner()).by_route.entry(format!("{method} {route}")).or_default() +=
        1;
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn connectwise_route(shared: &Shared, method: &Method, path: &str, uri: &Uri, host: &str, body: &Bytes) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query = query_map(uri);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["company", "companies"]) => {
            record_route(shared, method, "/company/companies");
            let records = shared.cw.with(|d| d.companies.values().cloned().collect::<Vec<_>>());
            list(records, &query, uri, host)
        }
        ("GET", ["company", "companies", "count"]) => {
            record_route(shared, method, "/company/companies/count");
            let records = shared.cw.with(|d| d.companies.values().cloned().collect::<Vec<_>>());
            count(records, &query)
        }
        ("GET", ["company", "companies", "statuses"]) => {
            record_route(shared, method, "/company/companies/statuses");
            list(shared.cw.with(|d| d.company_statuses.clone()), &query, uri, host)
        }
        ("GET", ["company", "companies", id]) => {
            record_route(shared, method, "/company/companies/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.cw.company(id)) {
                Some(company) => json_response(&company),
                None => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Company recId {id} not found.")),
            }
        }
        ("GET", ["company", "configurations"]) => {
            record_route(shared, method, "/company/configurations");
            let records = shared.cw.with(|d| d.configs.values().cloned().collect::<Vec<_>>());
            list(records, &query, uri, host)
        }
        ("GET", ["company", "configurations", "count"]) => {
            record_route(shared, method, "/company/configurations/count");
            let records = shared.cw.with(|d| d.configs.values().cloned().collect::<Vec<_>>());
            count(records, &query)
        }
        ("GET", ["company", "configurations", "statuses"]) => {
            record_route(shared, method, "/company/configurations/statuses");
            list(shared.cw.with(|d| d.config_statuses.clone()), &query, uri, host)
        }
        ("GET", ["company", "configurations", id]) => {
            record_route(shared, method, "/company/configurations/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.cw.configuration(id)) {
                Some(config) => json_response(&config),
                None => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Configuration recId {id} not found.")),
            }
        }
        ("PATCH", ["company", "configurations", id]) => {
            record_route(shared, method, "/company/configurations/{id}");
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
        shared.stats.lock().unwrap_or_else(|e| e.into_inner()).configuration_patches += 1;
    }
    response
}
