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
//! - Contacts are users (`/api/users`, rows under `users`, boolean `inactive`), set
//!   inactive by the same array upsert. The only primary signal is the client's main site's
//!   `maincontact_id` (`/api/site/{main_site_id}`). Tickets: `/api/tickets` (`open_only=true`),
//!   reassigned by upsert (`user_id`, `agent_id`, `team` by name); notes are actions
//!   (`POST /api/actions`) with a mandatory `outcome_id` and `hiddenfromuser`.
//! - Assets have no documented contact field: configuration contacts are not supported.
//!
//! Requests per operation: `list_contacts`, `open_tickets` one per page; `contact`,
//! `ticket`, `set_contact_active`, `add_ticket_note` one; `primary_contacts` two (client,
//! site); `update_ticket` two (read, upsert; three if the answer lacks the saved ticket);
//! `create_ticket` two (client for its main site, create).
//!
//! UNCONFIRMED points, and how this client copes:
//! - Whether inactive assets, clients and users are listed by default: we always send both
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
//! - Whether an upsert with an id that does not exist is refused or creates a record:
//!   `update_ticket` reads the ticket first. Users come from a listing and are not re-read.
//! - Ticket closed statuses (`CLOSED_STATUS_IDS`, 9 "Closed"), clearing a ticket's contact
//!   (`user_id` 0) or owner (`agent_id` 0) or team (`""`), the user title field (`jobtitle`),
//!   the site main contact as "primary", the note outcome id (a setting): see the comments
//!   where each is used.
//! - HaloPSA has no "archived" asset flag. An inactive asset whose `status_id` is one of
//!   `OFFRAMP_HALO_ARCHIVED_STATUS_IDS` counts as archived; default: none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
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
/// `status_id` values of closed tickets: 9 is "Closed" in a default tenant. UNCONFIRMED
/// (tenants define their own statuses); lists use `open_only=true` and only a single
/// ticket read relies on this.
const CLOSED_STATUS_IDS: [i64; 1] = [9];
/// `user_id` that leaves a ticket without a contact. UNCONFIRMED: the fact sheet knows
/// only `-1` as "the client's General User" on create; 0 means no user here.
const NO_USER: i64 = 0;
/// `agent_id` of an unassigned ticket (UNCONFIRMED).
const NO_AGENT: i64 = 0;
/// The primary-contact signal HaloPSA has: the client's main site's main contact.
const MAIN_CONTACT_SIGNAL: &str = "site.maincontact_id";

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
    /// Rows asked for per page of a list ([`PAGE_SIZE`] unless [`HaloClient::with_page_size`]).
    page_size: u32,
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
        Ok(Self { http, settings, api, token_url, token: Mutex::new(None), page_size: PAGE_SIZE })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Ask for `page_size` rows per page (1..=1000) instead of 500: for tenants whose
    /// server caps pages lower (the maximum is UNCONFIRMED), and for tests of paging.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, 1000);
        self
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
                ("page_size", self.page_size.to_string()),
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
            let used_size = body.get("page_size").and_then(Value::as_u64).unwrap_or(u64::from(self.page_size)).max(1);
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

    /// A user (Halo's contact). `client_hint`: the client listed, should a row lack `client_id`.
    fn parse_user(value: &Value, client_hint: Option<i64>) -> Result<Contact, PsaError> {
        let id = int(value, "id").ok_or_else(|| PsaError::InvalidResponse { message: "user without an id".into() })?;
        let inactive = value
            .get("inactive")
            .and_then(Value::as_bool)
            .ok_or_else(|| PsaError::InvalidResponse { message: format!("user {id} has no boolean inactive") })?;
        let joined = [text(value, "firstname"), text(value, "surname")].into_iter().flatten().collect::<Vec<_>>();
        let email = text(value, "emailaddress");
        let name = if joined.is_empty() {
            text(value, "name").or_else(|| email.clone()).unwrap_or_else(|| format!("User {id}"))
        } else {
            joined.join(" ")
        };
        Ok(Contact {
            id: id.to_string(),
            company_id: int(value, "client_id")
                .filter(|c| *c > 0)
                .or(client_hint)
                .map(|c| c.to_string())
                .unwrap_or_default(),
            name,
            email,
            // The job title's field name is UNCONFIRMED (not in the fact sheet's user
            // fields): `jobtitle`, else `title`, else none.
            title: text(value, "jobtitle").or_else(|| text(value, "title")),
            active: !inactive,
            // Halo's only primary signal is company-level (the main site's contact), read by
            // `primary_contacts`; `isimportantcontact` is a different flag.
            primary_signals: Vec::new(),
        })
    }

    fn parse_ticket(value: &Value) -> Result<Ticket, PsaError> {
        let id =
            int(value, "id").ok_or_else(|| PsaError::InvalidResponse { message: "ticket without an id".into() })?;
        Ok(Ticket {
            id: id.to_string(),
            company_id: int(value, "client_id").map(|c| c.to_string()).unwrap_or_default(),
            summary: value.get("summary").and_then(Value::as_str).unwrap_or_default().to_string(),
            // 0, -1 (the General User) or null: no contact.
            contact_id: positive(value, "user_id"),
            owner_id: positive(value, "agent_id"),
            owner_role_id: None,
            queue: text(value, "team"),
            closed: int(value, "status_id").is_some_and(|s| CLOSED_STATUS_IDS.contains(&s)),
        })
    }

    /// The ticket, or `NotFound`.
    async fn existing_ticket(&self, id: i64) -> Result<Ticket, PsaError> {
        let what = format!("ticket {id}");
        match self.get_json(&format!("tickets/{id}"), &[], &what).await? {
            Some(value) => Self::parse_ticket(&value),
            None => Err(PsaError::NotFound { what }),
        }
    }

    /// The upsert object for `change`; ids are checked before anything is sent.
    fn ticket_update(id: i64, change: &TicketAssignment) -> Result<Value, PsaError> {
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        if let Some(contact) = &change.contact_id {
            let value = match contact {
                Some(contact) => numeric_id(contact, "user")?,
                None => NO_USER,
            };
            body.insert("user_id".into(), json!(value));
        }
        if let Some(owner) = &change.owner {
            let value = match owner {
                Some(owner) => numeric_id(&owner.id, "agent")?,
                None => NO_AGENT,
            };
            body.insert("agent_id".into(), json!(value));
        }
        if let Some(queue) = &change.queue {
            // By name: the team-id variant is UNCONFIRMED (§3.3). Clearing sends an empty
            // name (UNCONFIRMED too).
            let name = queue.as_deref().map(str::trim).unwrap_or_default();
            body.insert("team".into(), json!(name));
        }
        Ok(Value::Object(body))
    }

    /// `POST /api/{path}` with a JSON array; the saved rows when Halo returns them (an
    /// array, one object, or nothing: all read).
    async fn post(&self, path: &str, body: &Value, retry: Retry, what: &str) -> Result<Vec<Value>, PsaError> {
        let response = self.send(Method::POST, self.url(path, &[])?, Some(body), retry).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, what, true));
        }
        Ok(match response.json().unwrap_or(Value::Null) {
            Value::Array(rows) => rows,
            row @ Value::Object(_) => vec![row],
            _ => Vec::new(),
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

/// A non-empty string field, trimmed.
fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A positive integer id field as a string; 0, negative (-1 is the General User) or null is none.
fn positive(value: &Value, name: &str) -> Option<String> {
    int(value, name).filter(|v| *v > 0).map(|v| v.to_string())
}

/// Plain text as `note_html`: blank-line separated paragraphs in `<p>`, line breaks as
/// `<br>`, everything HTML-escaped (a note is text, never markup).
fn note_html(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", p.split('\n').map(escape_html).collect::<Vec<_>>().join("<br>")))
        .collect();
    if paragraphs.is_empty() { "<p></p>".to_string() } else { paragraphs.concat() }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

    async fn list_contacts(&self, company_id: &str) -> Result<Vec<Contact>, PsaError> {
        let id = numeric_id(company_id, "client")?;
        // Both flags, as for assets: whether inactive users are listed by default is UNCONFIRMED.
        let mut query = both_states();
        query.push(("client_id", id.to_string()));
        let mut contacts = self
            .list_all("users", &query, "users", &format!("users of client {id}"), |row| Self::parse_user(row, Some(id)))
            .await?;
        contacts.sort_by_key(|c| c.id.parse::<i64>().unwrap_or_default());
        contacts.dedup_by(|a, b| a.id == b.id);
        Ok(contacts)
    }

    async fn contact(&self, id: &str) -> Result<Option<Contact>, PsaError> {
        let id = numeric_id(id, "user")?;
        match self.get_json(&format!("users/{id}"), &[], &format!("user {id}")).await? {
            Some(value) => Self::parse_user(&value, None).map(Some),
            None => Ok(None),
        }
    }

    // Two reads: the client (for `main_site_id`) and its main site. Treating the main
    // site's `maincontact_id` as the client's primary contact is UNCONFIRMED (fact sheet
    // §3.3); `isimportantcontact` is a separate flag and deliberately not read as primary.
    async fn primary_contacts(&self, company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError> {
        let id = numeric_id(&company.id, "client")?;
        let client = self
            .get_json(&format!("client/{id}"), &[], &format!("client {id}"))
            .await?
            .ok_or_else(|| PsaError::NotFound { what: format!("client {id}") })?;
        let Some(site_id) = int(&client, "main_site_id").filter(|s| *s > 0) else {
            tracing::info!(client = id, "HaloPSA client has no main site; no main contact to protect");
            return Ok(Vec::new());
        };
        let what = format!("main site {site_id} of client {id}");
        let Some(site) = self.get_json(&format!("site/{site_id}"), &[], &what).await? else {
            tracing::warn!(client = id, site = site_id, "HaloPSA main site not found; no main contact to protect");
            return Ok(Vec::new());
        };
        Ok(positive(&site, "maincontact_id")
            .map(|contact_id| PrimaryContactSignal { contact_id, signal: MAIN_CONTACT_SIGNAL.to_string() })
            .into_iter()
            .collect())
    }

    async fn set_contact_active(&self, contact: &Contact, active: bool) -> Result<Contact, PsaError> {
        let id = numeric_id(&contact.id, "user")?;
        let what = format!("user {id}");
        // A minimal upsert with the id (partial-update semantics UNCONFIRMED, §3.8). The id
        // comes from a listing, so it exists; setting a flag is idempotent, hence retried.
        let body = json!([{ "id": id, "inactive": !active }]);
        let saved = self.post("users", &body, Retry::Idempotent, &what).await?;
        match saved.into_iter().find(|row| int(row, "id") == Some(id)) {
            Some(row) if row.get("inactive").and_then(Value::as_bool).is_some() => {
                let mut after = Self::parse_user(&row, numeric_id(&contact.company_id, "client").ok())?;
                // Halo's answer may omit fields a listing has; keep what we knew.
                after.primary_signals = contact.primary_signals.clone();
                Ok(after)
            }
            _ => Ok(Contact { active, ..contact.clone() }),
        }
    }

    async fn open_tickets(&self, company_id: &str) -> Result<Vec<Ticket>, PsaError> {
        let id = numeric_id(company_id, "client")?;
        let query = [("client_id", id.to_string()), ("open_only", "true".to_string())];
        let tickets = self
            .list_all("tickets", &query, "tickets", &format!("open tickets of client {id}"), Self::parse_ticket)
            .await?;
        // `open_only=true` is trusted to leave out every closed status (tenants define their
        // own); a ticket in a known closed status is dropped as well, should the filter be ignored.
        let mut tickets: Vec<Ticket> = tickets.into_iter().filter(|t| !t.closed).collect();
        tickets.sort_by_key(|t| t.id.parse::<i64>().unwrap_or_default());
        tickets.dedup_by(|a, b| a.id == b.id);
        Ok(tickets)
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, PsaError> {
        let id = numeric_id(id, "ticket")?;
        match self.get_json(&format!("tickets/{id}"), &[], &format!("ticket {id}")).await? {
            Some(value) => Self::parse_ticket(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn update_ticket(&self, ticket_id: &str, change: &TicketAssignment) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let body = Self::ticket_update(id, change)?;
        // Read first: writes are upserts, and whether an id that does not exist is refused
        // or creates a ticket is UNCONFIRMED. A missing ticket is NotFound, nothing is sent.
        let current = self.existing_ticket(id).await?;
        if change.is_empty() {
            return Ok(current);
        }
        let what = format!("ticket {id}");
        // Setting fields to given values is idempotent: repeating it is harmless.
        let saved = self.post("tickets", &json!([body]), Retry::Idempotent, &what).await?;
        match saved.iter().find(|row| int(row, "id") == Some(id) && row.get("client_id").is_some()) {
            Some(row) => Self::parse_ticket(row),
            // No saved row in the answer: read it back.
            None => self.existing_ticket(id).await,
        }
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, PsaError> {
        let client = numeric_id(&ticket.company_id, "client")?;
        let team = ticket.queue.as_deref().map(str::trim).filter(|t| !t.is_empty());
        // The client's main site: Halo wants a site with the ticket (fact sheet §3.3 example).
        let record = self
            .get_json(&format!("client/{client}"), &[], &format!("client {client}"))
            .await?
            .ok_or_else(|| PsaError::NotFound { what: format!("client {client}") })?;
        let site = int(&record, "main_site_id")
            .filter(|s| *s > 0)
            .ok_or_else(|| config_error(format!("HaloPSA client {client} has no main site to open a ticket on")))?;
        let mut body = json!({
            "client_id": client,
            "site_id": site,
            "summary": ticket.summary,
            "details": ticket.description,
            "tickettype_id": self.settings.new_ticket_type_id,
        });
        if let Some(team) = team {
            body["team"] = json!(team);
        }
        let what = format!("a new ticket for client {client}");
        // Never repeated after an unknown outcome (a second ticket): only on 429.
        let saved = self.post("tickets", &json!([body]), Retry::OnlyWhenThrottled, &what).await?;
        let row = saved
            .into_iter()
            .find(|row| int(row, "id").is_some_and(|id| id > 0))
            .ok_or_else(|| PsaError::InvalidResponse { message: format!("{what}: the answer carries no ticket id") })?;
        if row.get("client_id").is_some() && row.get("summary").is_some() {
            return Self::parse_ticket(&row);
        }
        let id = int(&row, "id").unwrap_or_default();
        self.ticket(&id.to_string()).await?.ok_or_else(|| PsaError::InvalidResponse {
            message: format!("ticket {id} was created but cannot be read back"),
        })
    }

    // An internal note is an action with an outcome (mandatory in Halo) and
    // `hiddenfromuser`. The outcome id is tenant-specific (UNCONFIRMED, setting
    // `HALO_NOTE_OUTCOME_ID`). Actions have no documented title field: the note carries
    // only its text; `note.title` is not sent.
    async fn add_ticket_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let body = json!([{
            "ticket_id": id,
            "outcome_id": self.settings.note_outcome_id,
            "note_html": note_html(&note.text),
            "hiddenfromuser": true,
        }]);
        // Never repeated after an unknown outcome (a second note): only on 429.
        self.post("actions", &body, Retry::OnlyWhenThrottled, &format!("a note on ticket {id}")).await?;
        Ok(())
    }

    fn supports_configuration_contacts(&self) -> bool {
        false
    }

    async fn set_configuration_contact(
        &self,
        config_id: &str,
        _contact_id: Option<&str>,
    ) -> Result<Configuration, PsaError> {
        Err(config_error(format!(
            "HaloPSA assets have no documented contact field: the contact of asset {config_id} cannot be changed"
        )))
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
    fn notes_are_escaped_paragraphs() {
        assert_eq!(
            note_html("a < b & \"c\"\nnext line\n\nSecond 'para'"),
            "<p>a &lt; b &amp; &quot;c&quot;<br>next line</p><p>Second &#39;para&#39;</p>"
        );
        assert_eq!(note_html("<script>x</script>"), "<p>&lt;script&gt;x&lt;/script&gt;</p>");
        assert_eq!(note_html(""), "<p></p>");
    }

    #[test]
    fn users_fall_back_for_names_and_titles_and_need_inactive() {
        let user = json!({"id": 7.0, "name": "Display Name", "emailaddress": " x@y.example ", "title": "Boss",
            "inactive": true, "isimportantcontact": true});
        let contact = HaloClient::parse_user(&user, Some(250)).unwrap();
        assert_eq!((contact.id.as_str(), contact.company_id.as_str()), ("7", "250"));
        assert_eq!((contact.name.as_str(), contact.email.as_deref()), ("Display Name", Some("x@y.example")));
        assert_eq!((contact.title.as_deref(), contact.active), (Some("Boss"), false));
        assert!(contact.primary_signals.is_empty(), "isimportantcontact is not a primary signal");
        let bare = HaloClient::parse_user(&json!({"id": 8, "inactive": false, "client_id": 9}), None).unwrap();
        assert_eq!((bare.name.as_str(), bare.company_id.as_str(), bare.title), ("User 8", "9", None));
        assert!(HaloClient::parse_user(&json!({"id": 9}), None).is_err(), "no inactive flag: not guessed");
    }

    #[test]
    fn tickets_read_none_for_zero_minus_one_and_null_references() {
        for none in [json!(0), json!(-1), Value::Null] {
            let ticket = HaloClient::parse_ticket(&json!({"id": 1, "client_id": 2, "user_id": none,
                "agent_id": none, "team": "", "status_id": 9}))
            .unwrap();
            assert_eq!((ticket.contact_id, ticket.owner_id, ticket.queue), (None, None, None));
            assert!(ticket.closed);
        }
        let open = HaloClient::parse_ticket(&json!({"id": 1, "user_id": 5.0, "agent_id": 11, "team": "Offboarding",
            "status_id": 1}))
        .unwrap();
        assert_eq!((open.contact_id.as_deref(), open.owner_id.as_deref()), (Some("5"), Some("11")));
        assert_eq!((open.queue.as_deref(), open.closed), (Some("Offboarding"), false));
    }

    #[test]
    fn ticket_updates_send_only_what_changes_and_clear_with_zero() {
        let change = TicketAssignment {
            contact_id: Some(None),
            owner: Some(Some(crate::domain::TicketOwner { id: "12".into(), role_id: Some("8".into()) })),
            queue: None,
        };
        assert_eq!(HaloClient::ticket_update(5, &change).unwrap(), json!({"id": 5, "user_id": 0, "agent_id": 12}));
        let queue = TicketAssignment { queue: Some(None), ..Default::default() };
        assert_eq!(HaloClient::ticket_update(5, &queue).unwrap(), json!({"id": 5, "team": ""}));
        let bad = TicketAssignment { contact_id: Some(Some("5; x".into())), ..Default::default() };
        assert!(matches!(HaloClient::ticket_update(5, &bad), Err(PsaError::InvalidId { .. })));
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
