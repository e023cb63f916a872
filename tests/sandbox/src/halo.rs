//! HaloPSA (fact sheet §3): `authinfo` discovery, OAuth2 client-credentials tokens that
//! really expire, Bearer auth, clients and assets with the `includeinactive`/`includeactive`
//! flags and `pageinate` paging, atomic POST-array asset updates, heterogeneous error
//! bodies, and the rolling 5-minute request window.
//!
//! Client contracts (UNCONFIRMED but plausible shape): `GET /api/ClientContract?client_id=`
//! (all contracts without `client_id`; `pageinate`/`page_size`/`page_no` as for assets) →
//! `{"record_count","page_no","page_size","contracts":[…]}`, and `GET /api/ClientContract/{id}`.
//! A record is `{"id","client_id","client_name","ref","start_date","end_date"|null,"active"}`
//! with dates `YYYY-MM-DDT00:00:00`; `active` = not cancelled and open-ended or ending on or
//! after the sandbox's start day. Same Bearer auth, rate window and stats as other routes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::seed;

use crate::seed::{ConfigState, Fixture, HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT};
use crate::{PsaSim, Shared, json_response, json_status, query_map, text_status};

const WINDOW: Duration = Duration::from_secs(300);
/// Page size when `pageinate=true` comes without `page_size`.
pub const HALO_DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page served.
pub const HALO_MAX_PAGE_SIZE: usize = 500;

struct HaloData {
    clients: BTreeMap<i64, Value>,
    contracts: BTreeMap<i64, Value>,
    assets: BTreeMap<i64, Value>,
    update_failures: HashMap<i64, String>,
    update_counts: HashMap<i64, usize>,
}

/// HaloPSA's data, tokens and rate window, reachable synchronously from tests.
pub struct HaloSim {
    data: Mutex<HaloData>,
    tokens: Mutex<HashMap<String, Instant>>,
    token_ttl: Mutex<Duration>,
    tokens_issued: AtomicU64,
    rate_limit: Mutex<Option<u32>>,
    window: Mutex<VecDeque<Instant>>,
}

/// Halo status of a neutral state: 1 Active, 2 Inactive, 3 On Order, 4 Disposed.
fn status_id(state: ConfigState) -> i64 {
    match state {
        ConfigState::Active => 1,
        ConfigState::Inactive => 2,
        ConfigState::OnOrder => 3,
        ConfigState::Disposed => 4,
    }
}

/// Halo asset types (tenant data in real Halo).
fn asset_type(type_name: &str) -> i64 {
    match type_name.to_ascii_lowercase().as_str() {
        "workstation" => 1,
        "server" => 2,
        "laptop" => 3,
        "firewall" => 4,
        "network switch" => 5,
        "network" => 6,
        "storage" => 7,
        "backup" => 8,
        "tablet" => 9,
        _ => 10,
    }
}

fn main_site_id(client_id: i64) -> i64 {
    client_id * 10 + 1
}

impl HaloSim {
    pub(crate) fn new(fx: &Fixture, rate_limit: Option<u32>, token_ttl: Duration) -> Self {
        let clients = fx
            .companies
            .iter()
            .map(|c| {
                let client = json!({
                    "id": c.id, "name": c.name, "inactive": c.offboarded, "toplevel_id": 1,
                    "toplevel_name": "Offramp Demo", "main_site_id": main_site_id(c.id), "main_site_name": "Main",
                    "customfields": [],
                });
                (c.id, client)
            })
            .collect();
        let assets = fx
            .configurations
            .iter()
            .map(|c| {
                let client_name = fx.company(c.company_id).map(|co| co.name.clone()).unwrap_or_default();
                let asset = json!({
                    "id": c.id, "inventory_number": c.name, "key_field": c.name,
                    "client_id": c.company_id, "client_name": client_name, "site_id": main_site_id(c.company_id),
                    "site_name": "Main", "assettype_id": asset_type(&c.type_name), "assettype_name": c.type_name,
                    "inactive": !c.state.is_active(), "status_id": status_id(c.state),
                    "fields": [], "customfields": [],
                });
                (c.id, asset)
            })
            .collect();
        Self {
            data: Mutex::new(HaloData {
                contracts: fx
                    .contracts
                    .iter()
                    .map(|c| {
                        let client_name = fx.company(c.company_id).map(|co| co.name.clone()).unwrap_or_default();
                        (c.id, seed::halo_contract(c, &client_name, &fx.today))
                    })
                    .collect(),
                clients,
                assets,
                update_failures: HashMap::new(),
                update_counts: HashMap::new(),
            }),
            tokens: Mutex::new(HashMap::new()),
            token_ttl: Mutex::new(token_ttl),
            tokens_issued: AtomicU64::new(0),
            rate_limit: Mutex::new(rate_limit),
            window: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn add_contract(&self, contract: &seed::Contract, today: &str) {
        self.with(|d| {
            let client_name =
                d.clients.get(&contract.company_id).and_then(|c| c["name"].as_str()).unwrap_or("").to_string();
            d.contracts.insert(contract.id, seed::halo_contract(contract, &client_name, today));
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut HaloData) -> T) -> T {
        f(&mut self.data.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A client contract as `GET /api/ClientContract/{id}` renders it.
    pub fn contract(&self, id: i64) -> Option<Value> {
        self.with(|d| d.contracts.get(&id).cloned())
    }

    pub fn client(&self, id: i64) -> Option<Value> {
        self.with(|d| d.clients.get(&id).cloned())
    }

    pub fn asset(&self, id: i64) -> Option<Value> {
        self.with(|d| d.assets.get(&id).cloned())
    }

    pub fn assets_of(&self, client_id: i64) -> Vec<Value> {
        self.with(|d| d.assets.values().filter(|a| a["client_id"] == json!(client_id)).cloned().collect())
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        *self.token_ttl.lock().unwrap_or_else(|e| e.into_inner()) = ttl;
    }

    /// Every token issued so far stops working.
    pub fn revoke_tokens(&self) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn tokens_issued(&self) -> u64 {
        self.tokens_issued.load(Ordering::SeqCst)
    }

    pub fn rate_limit(&self) -> Option<u32> {
        *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests per rolling 5 minutes (`None` = unlimited).
    pub fn set_rate_limit(&self, limit: Option<u32>) {
        *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) = limit;
    }

    /// Requests admitted in the last rolling 5 minutes.
    pub fn requests_in_window(&self) -> usize {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut window, Instant::now());
        window.len()
    }

    fn issue_token(&self) -> (String, Duration) {
        let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let a = RandomState::new().hash_one((n, nanos));
        let b = RandomState::new().hash_one((a, n));
        let token = format!("{a:016x}{b:016x}");
        let ttl = *self.token_ttl.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token.clone(), now + ttl);
        (token, ttl)
    }

    fn token_valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(token).is_some_and(|expiry| *expiry > Instant::now())
    }
}

fn prune(window: &mut VecDeque<Instant>, now: Instant) {
    while window.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        window.pop_front();
    }
}

impl PsaSim for HaloSim {
    fn kind(&self) -> &'static str {
        "halo"
    }

    fn configuration_is_active(&self, id: i64) -> Option<bool> {
        self.asset(id).map(|a| !a["inactive"].as_bool().unwrap_or(false))
    }

    fn set_configuration_active(&self, id: i64, active: bool) {
        self.with(|d| {
            if let Some(asset) = d.assets.get_mut(&id) {
                asset["inactive"] = json!(!active);
                asset["status_id"] = json!(if active { 1 } else { 2 });
            }
        })
    }

    fn fail_configuration_update(&self, id: i64, message: &str) {
        self.with(|d| d.update_failures.insert(id, message.to_string()));
    }

    fn clear_configuration_failures(&self) {
        self.with(|d| d.update_failures.clear());
    }

    fn update_count(&self, config_id: i64) -> usize {
        self.with(|d| d.update_counts.get(&config_id).copied().unwrap_or(0))
    }

    fn configuration_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.assets_of(company_id).iter().filter_map(|a| a["id"].as_i64()).collect()
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

/// The .NET exception error shape.
pub(crate) fn exception(status: StatusCode, message: &str) -> Response {
    json_status(status, &json!({ "ClassName": "System.Exception", "Message": message }))
}

fn result_error(message: &str) -> Response {
    json_status(StatusCode::BAD_REQUEST, &json!({ "resultCode": 1, "errorMessage": message }))
}

/// The rolling 5-minute window; counts the request or answers 429.
pub(crate) fn admit(shared: &Shared) -> Result<(), Box<Response>> {
    let Some(limit) = shared.halo.rate_limit() else { return Ok(()) };
    let now = Instant::now();
    let mut window = shared.halo.window.lock().unwrap_or_else(|e| e.into_inner());
    prune(&mut window, now);
    if window.len() >= limit as usize {
        drop(window);
        shared.stats().throttled += 1;
        return Err(Box::new(text_status(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Rate Limit Reached - {limit} Requests per rolling 5 minute window"),
        )));
    }
    window.push_back(now);
    Ok(())
}

fn flag(query: &HashMap<String, String>, name: &str) -> Option<bool> {
    query.get(name).and_then(|v| v.trim().to_ascii_lowercase().parse::<bool>().ok())
}

fn number(query: &HashMap<String, String>, name: &str) -> Option<i64> {
    query.get(name).and_then(|v| v.trim().parse::<i64>().ok())
}

/// A request below `/halo`; `path` is the part after it.
pub(crate) fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    body: &Bytes,
) -> Response {
    let lower = path.trim_matches('/').to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('/').collect();
    let query = query_map(uri);
    let not_found = || exception(StatusCode::NOT_FOUND, "No HTTP resource was found that matches the request URI");
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["auth", "token"]) => {
            shared.record_route(method, "/halo/auth/token");
            return token(shared, &query, body);
        }
        ("GET", ["api", "authinfo"]) => {
            shared.record_route(method, "/halo/api/authinfo");
            return json_response(&json!({ "auth_url": format!("http://{host}/halo/auth"), "tenant_id": HALO_TENANT }));
        }
        (_, ["api", ..]) => {}
        _ => return not_found(),
    }
    let authorized =
        headers.get("authorization").and_then(|h| h.to_str().ok()).and_then(|h| h.split_once(' ')).is_some_and(
            |(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && shared.halo.token_valid(token.trim()),
        );
    if !authorized {
        return text_status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    match (method.as_str(), &segments[1..]) {
        ("GET", ["client"]) => {
            shared.record_route(method, "/halo/api/client");
            let search = query.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty());
            let toplevel = number(&query, "toplevel_id");
            let records = shared.halo.with(|d| {
                d.clients
                    .values()
                    .filter(|c| included(c, &query))
                    .filter(|c| {
                        search.as_ref().is_none_or(|s| c["name"].as_str().unwrap_or("").to_lowercase().contains(s))
                    })
                    .filter(|c| toplevel.is_none_or(|t| c["toplevel_id"] == json!(t)))
                    .cloned()
                    .collect()
            });
            json_response(&paginate(records, &query, "clients"))
        }
        ("GET", ["client", id]) => {
            shared.record_route(method, "/halo/api/client/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.halo.client(id)) {
                Some(client) => json_response(&client),
                None => exception(StatusCode::NOT_FOUND, "Client not found"),
            }
        }
        ("GET", ["asset"]) => {
            shared.record_route(method, "/halo/api/asset");
            let search = query.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty());
            let filters: Vec<(&str, i64)> = ["client_id", "site_id", "assettype_id"]
                .into_iter()
                .filter_map(|k| number(&query, k).map(|n| (k, n)))
                .collect();
            let records = shared.halo.with(|d| {
                d.assets
                    .values()
                    .filter(|a| included(a, &query))
                    .filter(|a| filters.iter().all(|(k, n)| a[*k] == json!(n)))
                    .filter(|a| {
                        search.as_ref().is_none_or(|s| {
                            ["inventory_number", "key_field"]
                                .iter()
                                .any(|k| a[*k].as_str().unwrap_or("").to_lowercase().contains(s))
                        })
                    })
                    .cloned()
                    .collect()
            });
            json_response(&paginate(records, &query, "assets"))
        }
        ("GET", ["asset", id]) => {
            shared.record_route(method, "/halo/api/asset/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.halo.asset(id)) {
                Some(asset) => json_response(&asset),
                None => exception(StatusCode::NOT_FOUND, "Asset not found"),
            }
        }
        ("POST", ["asset"]) => {
            shared.record_route(method, "/halo/api/asset");
            update_assets(shared, body)
        }
        ("GET", ["clientcontract"]) => {
            shared.record_route(method, "/halo/api/ClientContract");
            let client = number(&query, "client_id");
            let records = shared.halo.with(|d| {
                d.contracts.values().filter(|c| client.is_none_or(|id| c["client_id"] == json!(id))).cloned().collect()
            });
            json_response(&paginate(records, &query, "contracts"))
        }
        ("GET", ["clientcontract", id]) => {
            shared.record_route(method, "/halo/api/ClientContract/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.halo.contract(id)) {
                Some(contract) => json_response(&contract),
                None => exception(StatusCode::NOT_FOUND, "Contract not found"),
            }
        }
        _ => not_found(),
    }
}

/// Inactive rows only with `includeinactive=true`; active rows unless `includeactive=false`.
fn included(record: &Value, query: &HashMap<String, String>) -> bool {
    if record["inactive"].as_bool().unwrap_or(false) {
        flag(query, "includeinactive").unwrap_or(false)
    } else {
        flag(query, "includeactive").unwrap_or(true)
    }
}

fn paginate(records: Vec<Value>, query: &HashMap<String, String>, key: &str) -> Value {
    let record_count = records.len();
    let (page_no, page_size, rows) = if flag(query, "pageinate") == Some(true) {
        let page_size = number(query, "page_size")
            .map(|n| n.clamp(1, HALO_MAX_PAGE_SIZE as i64) as usize)
            .unwrap_or(HALO_DEFAULT_PAGE_SIZE);
        let page_no = number(query, "page_no").unwrap_or(1).max(1) as usize;
        let rows: Vec<Value> =
            records.into_iter().skip((page_no - 1).saturating_mul(page_size)).take(page_size).collect();
        (page_no, page_size, rows)
    } else {
        let rows: Vec<Value> = match number(query, "count").filter(|n| *n > 0) {
            Some(n) => records.into_iter().take(n as usize).collect(),
            None => records,
        };
        (1, rows.len(), rows)
    };
    json!({ "record_count": record_count, "page_no": page_no, "page_size": page_size, key: rows })
}

fn token(shared: &Shared, query: &HashMap<String, String>, body: &Bytes) -> Response {
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if query.get("tenant").is_none_or(|t| !t.eq_ignore_ascii_case(HALO_TENANT)) {
        return json_status(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "unknown tenant"}),
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None => {
            return json_status(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_request", "error_description": "grant_type is required"}),
            );
        }
        Some(_) => return json_status(StatusCode::BAD_REQUEST, &json!({"error": "unsupported_grant_type"})),
    }
    if form.get("client_id").map(String::as_str) != Some(HALO_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(HALO_CLIENT_SECRET)
    {
        return json_status(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_client"}));
    }
    let scope = form.get("scope").filter(|s| !s.trim().is_empty()).cloned().unwrap_or_else(|| "all".to_string());
    let (access_token, ttl) = shared.halo.issue_token();
    json_response(&json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": scope,
    }))
}

/// `POST /api/asset`: an atomic batch of partial updates.
fn update_assets(shared: &Shared, body: &Bytes) -> Response {
    let elements = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(elements)) => elements,
        Ok(_) => return result_error("The request body must be a JSON array of assets"),
        Err(e) => return result_error(&format!("The request body could not be read: {e}")),
    };
    let mut updates = Vec::with_capacity(elements.len());
    for element in &elements {
        let Some(object) = element.as_object() else {
            return result_error("Every element must be a JSON object");
        };
        let id = match object.get("id") {
            Some(id) if id.is_i64() => id.as_i64().unwrap_or_default(),
            Some(id) if id.is_number() => return result_error(&format!("Invalid id {id}: ids must be integers")),
            _ => return result_error("Creating assets is not supported by this sandbox: every element needs an id"),
        };
        if id <= 0 {
            return result_error("Creating assets is not supported by this sandbox: every element needs an id");
        }
        updates.push((id, object));
    }
    let (result, reached) = shared.halo.with(|d| {
        let mut reached = 0u64;
        let mut error: Option<String> = None;
        for (id, object) in &updates {
            if !d.assets.contains_key(id) {
                error.get_or_insert_with(|| format!("Asset {id} does not exist"));
                continue;
            }
            reached += 1;
            *d.update_counts.entry(*id).or_default() += 1;
            if let Some(message) = d.update_failures.get(id) {
                error.get_or_insert_with(|| message.clone());
            }
            if object.get("inactive").is_some_and(|v| !v.is_boolean()) {
                error.get_or_insert_with(|| format!("Asset {id}: inactive must be true or false"));
            }
            if object.get("status_id").is_some_and(|v| !v.is_i64()) {
                error.get_or_insert_with(|| format!("Asset {id}: status_id must be an integer"));
            }
        }
        if let Some(message) = error {
            return (Err(message), reached);
        }
        let mut staged: BTreeMap<i64, Value> = BTreeMap::new();
        let mut order = Vec::new();
        for (id, object) in &updates {
            let asset = staged.entry(*id).or_insert_with(|| d.assets[id].clone());
            for (key, value) in *object {
                if key.eq_ignore_ascii_case("id") {
                    continue;
                }
                // Known fields match ignoring case; unknown ones are ignored.
                let known = asset.as_object().and_then(|a| a.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned());
                if let Some(field) = known {
                    asset[field.as_str()] = value.clone();
                }
            }
            order.push(*id);
        }
        for (id, asset) in &staged {
            d.assets.insert(*id, asset.clone());
        }
        (Ok(order.iter().map(|id| staged[id].clone()).collect::<Vec<_>>()), reached)
    });
    shared.stats().configuration_patches += reached;
    match result {
        Ok(updated) => json_status(StatusCode::CREATED, &Value::Array(updated)),
        Err(message) => result_error(&message),
    }
}
