//! HaloPSA API adapter.
//!
//! Facts from the vendor fact sheet (`psa-itglue-api.md` §3):
//! - Resource server `{HALO_URL}/api`, authorisation server `{HALO_URL}/auth` (or
//!   `HALO_AUTH_URL`); OAuth2 client credentials: `POST {auth}/token?tenant=` with a form
//!   body, answered by `access_token`, `token_type`, `expires_in`.
//! - Lists wrap their rows in a resource key (`clients`, `assets`) with `record_count`;
//!   pages with `pageinate=true` (sic), `page_size`, `page_no` (1-based).
//! - Assets have a boolean `inactive`; writes are upserts: `POST /api/asset` with a JSON
//!   **array** of objects carrying `id`, which lets one request update many assets.
//! - Hosted tenants allow about 300 requests per rolling five minutes; 429 comes without
//!   `Retry-After`. The HTTP layer keeps a rolling five-minute budget (`HALO_RATE_LIMIT`).
//! - Error bodies are heterogeneous: `{"resultCode","errorMessage"}`, `{"ClassName","Message"}`,
//!   `{"Message"}`, OAuth `{"error"}`, or plain text. All are read.
//!
//! UNCONFIRMED points, and how this client copes:
//! - Whether inactive assets and clients are listed by default: we always send both
//!   `includeinactive=true` and `includeactive=true`.
//! - The largest page size: we ask for 500 and page by the `page_size` the server says
//!   it used, stopping at `record_count` or at a short page.
//! - Whether an array POST that fails for one element changes the others: a failed batch
//!   is retried element by element, so each asset gets its own result; re-sending
//!   `inactive: true` to an asset that did change is harmless.
//! - What a POST answers: an array of the saved objects, one object, or nothing; we read
//!   whichever comes and otherwise trust the 2xx.
//! - Token lifetime: cached until 60 s before `expires_in`, and fetched again once if an
//!   API call answers 401 anyway (revoked or clock skew).
//! - HaloPSA has no "archived" asset flag. An inactive asset whose `status_id` is one of
//!   `OFFRAMP_HALO_ARCHIVED_STATUS_IDS` counts as archived; default: none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::psa_common::{config_error, exactly_named, positive_id, with_trailing_slash};
use crate::domain::{
    Company, ConfigState, ConfigStatus, Configuration, ContractSummary, OffboardedCriteria, PsaKind, parse_vendor_date,
};
use crate::domain::{Contact, NewTicket, PrimaryContactSignal, Ticket, TicketAssignment, TicketNote};
use crate::error::PsaError;
use crate::http::{HttpClient, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::Psa;
use crate::secret::SecretString;

const PAGE_SIZE: u32 = 500;
const MAX_PAGES: usize = 100_000;
/// Refresh a token this long before HaloPSA says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct HaloSettings {
    /// The instance root, e.g. `https://acme.halopsa.com` (the API is under `/api`).
    pub url: String,
    /// The authorisation server; default `{url}/auth`.
    pub auth_url: Option<String>,
    /// Tenant name for Halo-hosted instances (`?tenant=` on the token request).
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    /// OAuth scopes (space-separated).
    pub scope: String,
    /// `status_id` values that mean "archived" for an inactive asset.
    pub archived_status_ids: Vec<i64>,
    /// Assets per update request.
    pub update_batch: usize,
    /// `outcome_id` of the internal-note action (`HALO_NOTE_OUTCOME_ID`, default 7: tenant
    /// specific, UNCONFIRMED in fact sheet §3.3).
    pub note_outcome_id: i64,
    /// `tickettype_id` of tickets Offramp opens (`HALO_NEW_TICKET_TYPE_ID`, default 1).
    pub new_ticket_type_id: i64,
}

struct Token {
    header: SecretString,
    valid_until: Instant,
}

pub struct HaloClient {
    http: HttpClient,
    settings: HaloSettings,
    api: url::Url,
    token_url: url::Url,
    token: Mutex<Option<Token>>,
}

impl HaloClient {
    pub fn new(settings: HaloSettings, http: HttpSettings) -> Result<Self, PsaError> {
        for (name, value) in
            [("HALO_CLIENT_ID", settings.client_id.as_str()), ("HALO_CLIENT_SECRET", settings.client_secret.expose())]
        {
            if value.trim().is_empty() {
                return Err(config_error(format!("{name} is not set")));
            }
        }
        let root = with_trailing_slash(
            url::Url::parse(settings.url.trim())
                .map_err(|e| config_error(format!("HALO_URL is not a valid URL: {e}")))?,
        );
        // Accept HALO_URL given with or without the trailing `/api`.
        let root = if root.path().trim_end_matches('/').to_ascii_lowercase().ends_with("/api") {
            root.join("..").map_err(|e| config_error(format!("HALO_URL: {e}")))?
        } else {
            root
        };
        let api = root.join("api/").map_err(|e| config_error(format!("HALO_URL: {e}")))?;
        let auth = match settings.auth_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => with_trailing_slash(
                url::Url::parse(url.trim())
                    .map_err(|e| config_error(format!("HALO_AUTH_URL is not a valid URL: {e}")))?,
            ),
            None => root.join("auth/").map_err(|e| config_error(format!("HALO_URL: {e}")))?,
        };
        let mut token_url = auth.join("token").map_err(|e| config_error(format!("HALO_AUTH_URL: {e}")))?;
        if let Some(tenant) = settings.tenant.as_deref().filter(|t| !t.trim().is_empty()) {
            token_url.query_pairs_mut().append_pair("tenant", tenant.trim());
        }
        let redactor = Redactor::new([settings.client_secret.expose().to_string()]);
        let http = HttpClient::new("halo", http, redactor).map_err(|e| config_error(e.to_string()))?;
        Ok(Self { http, settings, api, token_url, token: Mutex::new(None) })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The `Authorization` header value, fetching a token when there is none or it is about to expire.
    async fn authorization(&self, force_new: bool) -> Result<SecretString, PsaError> {
        let mut token = self.token.lock().await;
        if !force_new
            && let Some(current) = token.as_ref()
            && Instant::now() < current.valid_until
        {
            return Ok(current.header.clone());
        }
        let request = HttpRequest::new(Method::POST, self.token_url.clone())
            .form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.settings.client_id),
                ("client_secret", self.settings.client_secret.expose()),
                ("scope", &self.settings.scope),
            ])
            .header("accept", "application/json")
            // A token request creates nothing that matters: repeating it is harmless.
            .retry(Retry::Idempotent);
        let response = self.http.send(request).await.map_err(PsaError::from_http)?;
        if !response.is_success() {
            let message = self.http.redactor().scrub(&error_message(&response));
            return Err(match response.status {
                400 | 401 | 403 => PsaError::PermissionDenied {
                    message: format!("HaloPSA refused the client credentials (HTTP {}): {message}", response.status),
                },
                status => PsaError::Connection {
                    message: format!("HaloPSA token endpoint answered HTTP {status}: {message}"),
                },
            });
        }
        let body = response.json().map_err(|e| PsaError::InvalidResponse { message: format!("token: {e}") })?;
        let access = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| PsaError::InvalidResponse { message: "token response has no access_token".into() })?;
        let kind = body.get("token_type").and_then(Value::as_str).unwrap_or("Bearer");
        let lifetime = Duration::from_secs(body.get("expires_in").and_then(Value::as_u64).unwrap_or(3600));
        let header = SecretString::new(format!("{kind} {access}"));
        *token =
            Some(Token { header: header.clone(), valid_until: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN) });
        tracing::debug!(expires_in_s = lifetime.as_secs(), "HaloPSA token fetched");
        Ok(header)
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, PsaError> {
        let mut url = self
            .api
            .join(path.trim_start_matches('/'))
            .map_err(|e| config_error(format!("cannot build a HaloPSA URL for {path}: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        Ok(url)
    }

    /// Send with a bearer token; on 401, fetch a new token and send once more.
    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<HttpResponse, PsaError> {
        let mut force_new = false;
        loop {
            let authorization = self.authorization(force_new).await?;
            let mut request = HttpRequest::new(method.clone(), url.clone())
                .sensitive_header("authorization", authorization.expose())
                .header("accept", "application/json")
                .retry(retry);
            if let Some(body) = body {
                request = request.json_body(body);
            }
            let response = self.http.send(request).await.map_err(PsaError::from_http)?;
            if response.status == 401 && !force_new {
                tracing::info!("HaloPSA answered 401; fetching a new token once");
                force_new = true;
                continue;
            }
            return Ok(response);
        }
    }

    fn error_for(&self, response: &HttpResponse, what: &str, write: bool) -> PsaError {
        let message = self.http.redactor().scrub(&error_message(response));
        let status = response.status;
        let text = format!("HaloPSA answered HTTP {status} to {what}: {message}");
        match status {
            401 | 403 => PsaError::PermissionDenied { message: text },
            404 => PsaError::NotFound { what: what.to_string() },
            429 | 500..=599 => PsaError::Connection { message: text },
            400 | 409 | 422 if write => PsaError::Rejected { status, code: None, message: text },
            _ => PsaError::Rejected { status, code: None, message: text },
        }
    }

    async fn get_json(&self, path: &str, query: &[(&str, String)], what: &str) -> Result<Option<Value>, PsaError> {
        let response = self.send(Method::GET, self.url(path, query)?, None, Retry::Idempotent).await?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(self.error_for(&response, what, false));
        }
        response
            .json()
            .map(Some)
            .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: body is not JSON: {e}") })
    }

    /// Every row of a list endpoint (`key` is the array's name in the response), each
    /// turned into a `T` as its page arrives: a client with tens of thousands of assets
    /// never holds them all as JSON at once.
    async fn list_all<T>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        key: &str,
        what: &str,
        mut each: impl FnMut(&Value) -> Result<T, PsaError> + Send,
    ) -> Result<Vec<T>, PsaError> {
        let mut rows = Vec::new();
        let mut seen: u64 = 0;
        for page_no in 1..=MAX_PAGES as u64 {
            let mut query: Vec<(&str, String)> = filters.to_vec();
            query.extend([
                ("pageinate", "true".to_string()),
                ("page_size", PAGE_SIZE.to_string()),
                ("page_no", page_no.to_string()),
            ]);
            let body = self
                .get_json(path, &query, what)
                .await?
                .ok_or_else(|| PsaError::InvalidResponse { message: format!("{what}: endpoint not found") })?;
            let page = body.get(key).and_then(Value::as_array).ok_or_else(|| PsaError::InvalidResponse {
                message: format!("{what}: response has no '{key}' array"),
            })?;
            let page_len = page.len() as u64;
            seen += page_len;
            for row in page {
                rows.push(each(row)?);
            }
            let total = body.get("record_count").and_then(Value::as_u64);
            let used_size = body.get("page_size").and_then(Value::as_u64).unwrap_or(u64::from(PAGE_SIZE)).max(1);
            let done = match total {
                Some(total) => seen >= total || page_len == 0,
                None => page_len < used_size,
            };
            if done {
                return Ok(rows);
            }
        }
        Err(PsaError::InvalidResponse { message: format!("{what}: more than {MAX_PAGES} pages") })
    }

    fn parse_client(value: &Value) -> Result<Company, PsaError> {
        let id =
            int(value, "id").ok_or_else(|| PsaError::InvalidResponse { message: "client without an id".into() })?;
        let inactive = value.get("inactive").and_then(Value::as_bool).unwrap_or(false);
        Ok(Company {
            id: id.to_string(),
            name: value.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            identifier: None,
            status: Some(if inactive { "Inactive" } else { "Active" }.to_string()),
            inactive: Some(inactive),
            categories: Vec::new(),
            contracts: None,
        })
    }

    fn parse_asset(&self, value: &Value) -> Result<Configuration, PsaError> {
        let id = int(value, "id").ok_or_else(|| PsaError::InvalidResponse { message: "asset without an id".into() })?;
        let inactive = value
            .get("inactive")
            .and_then(Value::as_bool)
            .ok_or_else(|| PsaError::InvalidResponse { message: format!("asset {id} has no boolean inactive") })?;
        let status_id = int(value, "status_id");
        let state = if !inactive {
            ConfigState::Active
        } else if status_id.is_some_and(|s| self.settings.archived_status_ids.contains(&s)) {
            ConfigState::Archived
        } else {
            ConfigState::Inactive
        };
        Ok(Configuration {
            id: id.to_string(),
            name: ["key_field", "inventory_number"]
                .iter()
                .find_map(|f| value.get(*f).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
                .map(str::to_string)
                .unwrap_or_else(|| format!("Asset {id}")),
            company_id: int(value, "client_id").map(|v| v.to_string()).unwrap_or_default(),
            status: ConfigStatus { id: status_id.map(|s| s.to_string()), name: state_name(state).into(), state },
            type_name: value.get("assettype_name").and_then(Value::as_str).map(str::to_string),
            contact_id: None,
        })
    }

    /// One upsert of `inactive` for these assets; the saved rows by id when HaloPSA returns them.
    async fn post_inactive(&self, configs: &[&Configuration], inactive: bool) -> Result<HashMap<i64, Value>, PsaError> {
        let mut body = Vec::with_capacity(configs.len());
        for config in configs {
            // HaloPSA rejects ids sent as floats (95.0): send integers.
            body.push(json!({ "id": numeric_id(&config.id, "asset")?, "inactive": inactive }));
        }
        let url = self.url("asset", &[])?;
        // Setting a flag is idempotent: repeating the POST after a lost answer is harmless.
        let response = self.send(Method::POST, url, Some(&Value::Array(body)), Retry::Idempotent).await?;
        let what = match configs {
            [one] => format!("asset {}", one.id),
            many => format!("{} assets", many.len()),
        };
        if !response.is_success() {
            return Err(self.error_for(&response, &what, true));
        }
        let saved = match response.json().unwrap_or(Value::Null) {
            Value::Array(rows) => rows,
            row @ Value::Object(_) => vec![row],
            _ => Vec::new(),
        };
        Ok(saved.into_iter().filter_map(|row| int(&row, "id").map(|id| (id, row))).collect())
    }

    fn after_update(
        &self,
        before: &Configuration,
        saved: Option<&Value>,
        inactive: bool,
    ) -> Result<Configuration, PsaError> {
        match saved {
            Some(row) if row.get("inactive").is_some() => self.parse_asset(row),
            _ => {
                let mut after = before.clone();
                let state = if !inactive {
                    ConfigState::Active
                } else if before.status.state == ConfigState::Archived {
                    ConfigState::Archived
                } else {
                    ConfigState::Inactive
                };
                after.status = ConfigStatus { id: before.status.id.clone(), name: state_name(state).into(), state };
                Ok(after)
            }
        }
    }
}

fn state_name(state: ConfigState) -> &'static str {
    match state {
        ConfigState::Active => "Active",
        ConfigState::Inactive => "Inactive",
        ConfigState::Archived => "Archived",
    }
}

/// An integer field, also when HaloPSA sends it as `95.0`.
fn int(value: &Value, name: &str) -> Option<i64> {
    let v = value.get(name)?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// The message of any of HaloPSA's error shapes.
fn error_message(response: &HttpResponse) -> String {
    let body = response.json().unwrap_or(Value::Null);
    for key in ["errorMessage", "Message", "message", "error_description", "error"] {
        if let Some(text) = body.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            return text.to_string();
        }
    }
    response.body_excerpt()
}

fn numeric_id(id: &str, what: &str) -> Result<i64, PsaError> {
    positive_id(id, "HaloPSA", what)
}

const BOTH: [(&str, &str); 2] = [("includeinactive", "true"), ("includeactive", "true")];

fn both_states() -> Vec<(&'static str, String)> {
    BOTH.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[async_trait]
impl Psa for HaloClient {
    fn kind(&self) -> PsaKind {
        PsaKind::Halo
    }

    async fn company_by_id(&self, id: &str) -> Result<Option<Company>, PsaError> {
        let id = numeric_id(id, "client")?;
        match self.get_json(&format!("client/{id}"), &[], &format!("client {id}")).await? {
            Some(value) => Self::parse_client(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, PsaError> {
        let mut query = both_states();
        query.push(("search", name.trim().to_string()));
        let clients = self.list_all("client", &query, "clients", "clients", |row| Ok(Self::parse_client(row))).await?;
        exactly_named(clients, name)
    }

    async fn offboarded_candidates(&self, criteria: &OffboardedCriteria) -> Result<Vec<Company>, PsaError> {
        if !criteria.categories.is_empty() {
            return Err(config_error(
                "OFFRAMP_OFFBOARDED_CATEGORIES is not supported on HaloPSA; use OFFRAMP_OFFBOARDED_INACTIVE",
            ));
        }
        let wants_active = criteria.statuses.iter().any(|s| s.trim().eq_ignore_ascii_case("active"));
        let wants_inactive =
            criteria.inactive || criteria.statuses.iter().any(|s| s.trim().eq_ignore_ascii_case("inactive"));
        if !wants_active && !wants_inactive {
            return Ok(Vec::new());
        }
        let query = vec![("includeinactive", "true".to_string()), ("includeactive", wants_active.to_string())];
        let clients = self.list_all("client", &query, "clients", "clients", Self::parse_client).await?;
        Ok(clients.into_iter().filter(|c| criteria.matches(c)).collect())
    }

    // Client contracts (`/api/ClientContract`, rows under `contracts`, fields `end_date`
    // and `active`) are not in the fact sheet: UNCONFIRMED. There is no documented date
    // filter, so all contracts are listed and read here. An inactive contract counts as
    // ended; a missing end date as current.
    async fn companies_with_ended_contracts(&self, today: chrono::NaiveDate) -> Result<Vec<String>, PsaError> {
        let ended_by_client = self
            .list_all("ClientContract", &[], "contracts", "client contracts", |c| {
                let ended =
                    c.get("end_date").and_then(Value::as_str).and_then(parse_vendor_date).is_some_and(|e| e < today);
                let ended = ended || c.get("active").and_then(Value::as_bool) == Some(false);
                Ok(int(c, "client_id").filter(|_| ended))
            })
            .await?;
        let mut ids: Vec<String> = ended_by_client.into_iter().flatten().map(|id| id.to_string()).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn contract_summary(&self, company_id: &str, today: chrono::NaiveDate) -> Result<ContractSummary, PsaError> {
        let id = numeric_id(company_id, "client")?;
        let query = [("client_id", id.to_string())];
        let contracts = self
            .list_all("ClientContract", &query, "contracts", &format!("contracts of client {id}"), |c| {
                let end = c.get("end_date").and_then(Value::as_str).and_then(parse_vendor_date);
                let ended_early = c.get("active").and_then(Value::as_bool) == Some(false);
                Ok((end, ended_early))
            })
            .await?;
        Ok(ContractSummary::of(contracts, today))
    }

    async fn list_configurations(
        &self,
        company_id: &str,
        include_archived: bool,
    ) -> Result<Vec<Configuration>, PsaError> {
        let id = numeric_id(company_id, "client")?;
        let mut query = both_states();
        query.push(("client_id", id.to_string()));
        let configs = self
            .list_all("asset", &query, "assets", &format!("assets of client {id}"), |row| self.parse_asset(row))
            .await?;
        let mut configs: Vec<Configuration> =
            configs.into_iter().filter(|c| include_archived || c.status.state != ConfigState::Archived).collect();
        configs.sort_by_key(|c| c.id.parse::<i64>().unwrap_or_default());
        Ok(configs)
    }

    async fn configuration(&self, id: &str) -> Result<Option<Configuration>, PsaError> {
        let id = numeric_id(id, "asset")?;
        match self.get_json(&format!("asset/{id}"), &[], &format!("asset {id}")).await? {
            Some(value) => self.parse_asset(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn deactivate_configuration(&self, config: &Configuration) -> Result<Configuration, PsaError> {
        let saved = self.post_inactive(&[config], true).await?;
        self.after_update(config, saved.get(&numeric_id(&config.id, "asset")?), true)
    }

    fn update_batch_size(&self) -> usize {
        self.settings.update_batch.clamp(1, 100)
    }

    async fn deactivate_configurations(&self, configs: &[Configuration]) -> Vec<Result<Configuration, PsaError>> {
        if configs.len() <= 1 {
            let mut results = Vec::new();
            for config in configs {
                results.push(self.deactivate_configuration(config).await);
            }
            return results;
        }
        let refs: Vec<&Configuration> = configs.iter().collect();
        match self.post_inactive(&refs, true).await {
            Ok(saved) => configs
                .iter()
                .map(|c| {
                    let id = c.id.parse::<i64>().unwrap_or_default();
                    self.after_update(c, saved.get(&id), true)
                })
                .collect(),
            // The batch failed as a whole: find out which asset by sending them one by
            // one. Errors that are not about an asset (auth, budget) would only repeat.
            Err(error @ (PsaError::PermissionDenied { .. } | PsaError::BudgetExhausted { .. })) => {
                let message = error.to_string();
                configs
                    .iter()
                    .map(|_| {
                        Err(match &error {
                            PsaError::BudgetExhausted { resets_in, .. } => {
                                PsaError::BudgetExhausted { message: message.clone(), resets_in: *resets_in }
                            }
                            _ => PsaError::PermissionDenied { message: message.clone() },
                        })
                    })
                    .collect()
            }
            Err(error) => {
                tracing::info!(assets = configs.len(), error = %error, "batch update failed; retrying asset by asset");
                let mut results = Vec::with_capacity(configs.len());
                for config in configs {
                    results.push(self.deactivate_configuration(config).await);
                }
                results
            }
        }
    }

    async fn set_configuration_status(
        &self,
        config_id: &str,
        status: &ConfigStatus,
    ) -> Result<Configuration, PsaError> {
        let current = self
            .configuration(config_id)
            .await?
            .ok_or_else(|| PsaError::NotFound { what: format!("asset {config_id}") })?;
        let inactive = status.state != ConfigState::Active;
        let saved = self.post_inactive(&[&current], inactive).await?;
        self.after_update(&current, saved.get(&numeric_id(config_id, "asset")?), inactive)
    }

    async fn check_access(&self) -> Result<(), PsaError> {
        self.authorization(false).await.map(|_| ())
    }

    // Placeholders until the contact routes land (issue 4); replaced by the real ones.
    async fn list_contacts(&self, _company_id: &str) -> Result<Vec<Contact>, PsaError> {
        Err(not_yet())
    }
    async fn contact(&self, _id: &str) -> Result<Option<Contact>, PsaError> {
        Err(not_yet())
    }
    async fn primary_contacts(&self, _company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError> {
        Err(not_yet())
    }
    async fn set_contact_active(&self, _contact: &Contact, _active: bool) -> Result<Contact, PsaError> {
        Err(not_yet())
    }
    async fn open_tickets(&self, _company_id: &str) -> Result<Vec<Ticket>, PsaError> {
        Err(not_yet())
    }
    async fn ticket(&self, _id: &str) -> Result<Option<Ticket>, PsaError> {
        Err(not_yet())
    }
    async fn update_ticket(&self, _ticket_id: &str, _change: &TicketAssignment) -> Result<Ticket, PsaError> {
        Err(not_yet())
    }
    async fn create_ticket(&self, _ticket: &NewTicket) -> Result<Ticket, PsaError> {
        Err(not_yet())
    }
    async fn add_ticket_note(&self, _ticket_id: &str, _note: &TicketNote) -> Result<(), PsaError> {
        Err(not_yet())
    }
    async fn set_configuration_contact(
        &self,
        _config_id: &str,
        _contact_id: Option<&str>,
    ) -> Result<Configuration, PsaError> {
        Err(not_yet())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> HaloSettings {
        HaloSettings {
            note_outcome_id: 7,
            new_ticket_type_id: 1,
            url: url.into(),
            auth_url: None,
            tenant: Some("acme".into()),
            client_id: "id".into(),
            client_secret: "secret-value".into(),
            scope: "all".into(),
            archived_status_ids: vec![],
            update_batch: 50,
        }
    }

    #[test]
    fn urls_are_derived_from_the_instance_root_with_or_without_api() {
        for root in ["https://acme.halopsa.com", "https://acme.halopsa.com/", "https://acme.halopsa.com/api"] {
            let client = HaloClient::new(settings(root), HttpSettings::default()).unwrap();
            assert_eq!(client.api.as_str(), "https://acme.halopsa.com/api/", "{root}");
            assert_eq!(client.token_url.as_str(), "https://acme.halopsa.com/auth/token?tenant=acme", "{root}");
        }
    }

    #[test]
    fn integers_sent_as_floats_are_read() {
        assert_eq!(int(&json!({"id": 95.0}), "id"), Some(95));
        assert_eq!(int(&json!({"id": 95.5}), "id"), None);
    }

    #[test]
    fn every_error_shape_yields_its_message() {
        let response =
            |body: &str| HttpResponse { status: 400, headers: Default::default(), body: body.as_bytes().to_vec() };
        assert_eq!(error_message(&response(r#"{"resultCode":1,"errorMessage":"locked"}"#)), "locked");
        assert_eq!(error_message(&response(r#"{"ClassName":"System.Exception","Message":"boom"}"#)), "boom");
        assert_eq!(error_message(&response(r#"{"error":"invalid_client"}"#)), "invalid_client");
        assert_eq!(error_message(&response("Rate Limit Reached")), "Rate Limit Reached");
    }
}

// Placeholder (issue 4 in progress): replaced by the real contact and ticket calls.
fn not_yet() -> PsaError {
    PsaError::Configuration { message: "contacts and tickets are not implemented for this PSA yet".into() }
}
