//! ConnectWise PSA (Manage) REST API adapter.
//!
//! Facts from the vendor fact sheet (`psa-itglue-api.md` §1):
//! - Base URL up to and including `apis/3.0`; Basic auth `companyId+publicKey:privateKey`
//!   plus a `clientId` header on every request.
//! - Lists: `conditions` filter, `pageSize` at most 1000 (default 25 silently truncates),
//!   next page from the `Link` header's `rel="next"`.
//! - Updates: `PATCH` with a JSON-Patch **array**, even for one operation.
//! - A configuration's status is a reference to a configuration-status record; "inactive"
//!   is the status whose description is configured (default `Inactive`), looked up by name
//!   because its id differs per tenant.
//! - Errors: `{"code","message","errors":[…]}`; 401/403 auth and permission.
//!
//! UNCONFIRMED points, and how this client copes:
//! - Whether an unfiltered configuration list includes inactive ones: we never rely on a
//!   server-side status filter; we list all of a company's configurations and classify them here.
//! - How `closedFlag` relates to `activeFlag`: the status record decides; `activeFlag` is only read.
//! - Whether `=` on strings is case-insensitive: we filter by name on the server and then
//!   again here, ignoring case, so either behaviour gives the same result.
//!
//! Contacts and tickets (seed 001):
//! - Contacts are listed with `conditions=company/id=N` only: whether inactive contacts come
//!   back without a filter is third-party evidence, so we add no `inactiveFlag` condition and
//!   read `inactiveFlag` on every record. Email = the default email communication item, else
//!   the first email one (an item is an email by `communicationType`, or by its type name
//!   when `communicationType` is missing).
//! - Which of `Company.defaultContact` and `Contact.defaultFlag` the UI calls "primary" is
//!   UNCONFIRMED: both are read and reported as separate signals.
//! - Open tickets: `company/id=N and closedFlag=false`, and `closedFlag` is checked again here.
//! - Clearing a ticket's (or configuration's) contact with a JSON-Patch `remove` op is
//!   UNCONFIRMED (the fact sheet only shows `replace`); owner and board are cleared the same
//!   way when asked, and ConnectWise's answer (it may refuse: they look required) is returned.
//! - A new ticket without a board gets the PSA's default board (UNCONFIRMED which one).
//! - Notes are posted with `internalAnalysisFlag: true`: internal, and a flag set in case
//!   "at least one flag must be true" (UNCONFIRMED) holds. ConnectWise notes have no title,
//!   so a title becomes the note's first line.

mod conditions;

pub use conditions::quote as quote_condition_value;

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::psa_common::{config_error, exactly_named, positive_id, with_trailing_slash};
use crate::domain::{
    Company, ConfigState, ConfigStatus, Configuration, ContractSummary, OffboardedCriteria, PsaKind, parse_vendor_date,
};
use crate::domain::{Contact, NewTicket, PrimaryContactSignal, Ticket, TicketAssignment, TicketNote};
use crate::error::PsaError;
use crate::http::{HttpClient, HttpRequest, HttpResponse, HttpSettings, Redactor};
use crate::ports::Psa;
use crate::secret::SecretString;

/// The most records ConnectWise returns per page.
const PAGE_SIZE: u32 = 1000;
/// A guard against a server that keeps sending `next` links: 10 million records.
const MAX_PAGES: usize = 10_000;

#[derive(Debug, Clone)]
pub struct ConnectWiseSettings {
    /// Base URL up to and including `apis/3.0`.
    pub url: String,
    pub company_id: String,
    pub public_key: SecretString,
    pub private_key: SecretString,
    pub client_id: SecretString,
    /// Description of the configuration status that means "inactive".
    pub inactive_status: String,
}

/// A configuration status record (`/company/configurations/statuses`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusRecord {
    id: i64,
    description: String,
    #[serde(default)]
    closed_flag: bool,
}

#[derive(Debug)]
struct StatusTable {
    by_id: HashMap<i64, StatusRecord>,
    inactive: StatusRecord,
}

pub struct ConnectWiseClient {
    http: HttpClient,
    base: url::Url,
    /// Records per list request; [`PAGE_SIZE`] unless a test asks for smaller pages.
    page_size: u32,
    authorization: String,
    client_id: SecretString,
    inactive_status_name: String,
    statuses: OnceCell<StatusTable>,
}

impl ConnectWiseClient {
    pub fn new(settings: ConnectWiseSettings, http: HttpSettings) -> Result<Self, PsaError> {
        let base = with_trailing_slash(
            url::Url::parse(settings.url.trim())
                .map_err(|e| config_error(format!("CONNECTWISE_URL is not a valid URL: {e}")))?,
        );
        for (name, value) in [
            ("CONNECTWISE_COMPANY_ID", settings.company_id.as_str()),
            ("CONNECTWISE_PUBLIC_KEY", settings.public_key.expose()),
            ("CONNECTWISE_PRIVATE_KEY", settings.private_key.expose()),
            ("CONNECTWISE_CLIENT_ID", settings.client_id.expose()),
        ] {
            if value.trim().is_empty() {
                return Err(PsaError::Configuration { message: format!("{name} is not set") });
            }
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}+{}:{}",
            settings.company_id,
            settings.public_key.expose(),
            settings.private_key.expose()
        ));
        let redactor = Redactor::new([
            settings.public_key.expose().to_string(),
            settings.private_key.expose().to_string(),
            token.clone(),
        ]);
        let http = HttpClient::new("connectwise", http, redactor)
            .map_err(|e| PsaError::Configuration { message: e.to_string() })?;
        Ok(Self {
            http,
            base,
            page_size: PAGE_SIZE,
            authorization: format!("Basic {token}"),
            client_id: settings.client_id,
            inactive_status_name: settings.inactive_status,
            statuses: OnceCell::new(),
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Smaller list pages (1 to 1000 records), so that tests can exercise paging on small data.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, PAGE_SIZE);
        self
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, PsaError> {
        let mut url = self.base.join(path.trim_start_matches('/')).map_err(|e| PsaError::Configuration {
            message: format!("cannot build a ConnectWise URL for {path}: {e}"),
        })?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        Ok(url)
    }

    fn request(&self, method: Method, url: url::Url) -> HttpRequest {
        HttpRequest::new(method, url)
            .sensitive_header("authorization", &self.authorization)
            .sensitive_header("clientid", self.client_id.expose())
            .header("accept", "application/vnd.connectwise.com+json")
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, PsaError> {
        self.http.send(request).await.map_err(PsaError::from_http)
    }

    /// Map a non-success response to a typed error, with ConnectWise's own message.
    fn error_for(&self, response: &HttpResponse, what: &str) -> PsaError {
        let body = response.json().unwrap_or(Value::Null);
        let code = body.get("code").and_then(Value::as_str).map(str::to_string);
        let mut message =
            body.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| response.body_excerpt());
        if let Some(details) = body.get("errors").and_then(Value::as_array) {
            let details: Vec<String> =
                details.iter().filter_map(|e| e.get("message").and_then(Value::as_str).map(str::to_string)).collect();
            if !details.is_empty() {
                message = format!("{message} ({})", details.join("; "));
            }
        }
        let message = self.http.redactor().scrub(&message);
        match response.status {
            401 | 403 => PsaError::PermissionDenied {
                message: format!("ConnectWise answered HTTP {} to {what}: {message}", response.status),
            },
            404 => PsaError::NotFound { what: what.to_string() },
            429 | 500..=599 => PsaError::Connection {
                message: format!("ConnectWise answered HTTP {} to {what}: {message}", response.status),
            },
            status => PsaError::Rejected { status, code, message },
        }
    }

    async fn get_json(&self, path: &str, query: &[(&str, String)], what: &str) -> Result<Option<Value>, PsaError> {
        let response = self.send(self.request(Method::GET, self.url(path, query)?)).await?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(self.error_for(&response, what));
        }
        response
            .json()
            .map(Some)
            .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: body is not JSON: {e}") })
    }

    /// Every record of a list endpoint, following `Link: <…>; rel="next"`.
    async fn list_all(&self, path: &str, conditions: Option<String>, what: &str) -> Result<Vec<Value>, PsaError> {
        let mut query = vec![("pageSize", self.page_size.to_string()), ("page", "1".to_string())];
        if let Some(conditions) = conditions {
            query.insert(0, ("conditions", conditions));
        }
        let mut url = self.url(path, &query)?;
        let mut records = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.send(self.request(Method::GET, url.clone())).await?;
            if !response.is_success() {
                return Err(self.error_for(&response, what));
            }
            let page: Vec<Value> = serde_json::from_slice(&response.body)
                .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: expected a JSON array: {e}") })?;
            records.extend(page);
            match response.header("link").and_then(next_link) {
                Some(next) => {
                    let next = url
                        .join(&next)
                        .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: bad Link header: {e}") })?;
                    // Credentials go with every request: never follow a link to another host.
                    if next.origin() != self.base.origin() {
                        return Err(PsaError::InvalidResponse {
                            message: format!(
                                "{what}: next-page link points to another host ({})",
                                next.origin().ascii_serialization()
                            ),
                        });
                    }
                    if next == url {
                        return Err(PsaError::InvalidResponse {
                            message: format!("{what}: next-page link repeats the current page"),
                        });
                    }
                    url = next;
                }
                None => return Ok(records),
            }
        }
        Err(PsaError::InvalidResponse { message: format!("{what}: more than {MAX_PAGES} pages") })
    }

    async fn statuses(&self) -> Result<&StatusTable, PsaError> {
        self.statuses
            .get_or_try_init(|| async {
                let records = self.list_all("company/configurations/statuses", None, "configuration statuses").await?;
                let mut by_id = HashMap::new();
                for record in records {
                    let status: StatusRecord = serde_json::from_value(record).map_err(|e| PsaError::InvalidResponse {
                        message: format!("configuration status: {e}"),
                    })?;
                    by_id.insert(status.id, status);
                }
                let inactive = by_id
                    .values()
                    .find(|s| s.description.eq_ignore_ascii_case(self.inactive_status_name.trim()))
                    .cloned()
                    .ok_or_else(|| PsaError::Configuration {
                        message: format!(
                            "ConnectWise has no configuration status named '{}' (known: {}); set OFFRAMP_CW_INACTIVE_STATUS",
                            self.inactive_status_name,
                            sorted_names(&by_id)
                        ),
                    })?;
                Ok(StatusTable { by_id, inactive })
            })
            .await
    }

    fn parse_company(value: &Value) -> Result<Company, PsaError> {
        let id = value
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "company without an id".into() })?;
        Ok(Company {
            id: id.to_string(),
            name: value.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            identifier: value.get("identifier").and_then(Value::as_str).map(str::to_string),
            status: value.pointer("/status/name").and_then(Value::as_str).map(str::to_string),
            inactive: None,
            contracts: None,
            categories: value
                .get("types")
                .and_then(Value::as_array)
                .map(|types| {
                    types.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).map(str::to_string).collect()
                })
                .unwrap_or_default(),
        })
    }

    fn parse_configuration(&self, value: &Value, statuses: &StatusTable) -> Result<Configuration, PsaError> {
        let id = value
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "configuration without an id".into() })?;
        let status_id = value.pointer("/status/id").and_then(Value::as_i64);
        let record = status_id.and_then(|id| statuses.by_id.get(&id));
        let name = record
            .map(|r| r.description.clone())
            .or_else(|| value.pointer("/status/name").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "(no status)".to_string());
        // The status record decides, because status is what we write. A configuration
        // without a status, or in a status this tenant does not list, counts as in use.
        let state = match record {
            Some(r) if r.id == statuses.inactive.id => ConfigState::Inactive,
            Some(r) if r.closed_flag => ConfigState::Archived,
            _ => ConfigState::Active,
        };
        Ok(Configuration {
            id: id.to_string(),
            name: value.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            company_id: value.pointer("/company/id").and_then(Value::as_i64).map(|v| v.to_string()).unwrap_or_default(),
            status: ConfigStatus { id: status_id.map(|v| v.to_string()), name, state },
            type_name: value.pointer("/type/name").and_then(Value::as_str).map(str::to_string),
            contact_id: value.pointer("/contact/id").and_then(Value::as_i64).map(|v| v.to_string()),
        })
    }

    async fn patch_status(&self, config_id: &str, status_id: i64) -> Result<Configuration, PsaError> {
        let ops = json!([{ "op": "replace", "path": "status", "value": { "id": status_id } }]);
        self.patch_configuration(config_id, &ops).await
    }

    async fn patch_configuration(&self, config_id: &str, ops: &Value) -> Result<Configuration, PsaError> {
        let id = numeric_id(config_id, "configuration")?;
        let statuses = self.statuses().await?;
        let value = self.patch(&format!("company/configurations/{id}"), ops, &format!("configuration {id}")).await?;
        self.parse_configuration(&value, statuses)
    }

    /// `PATCH` a JSON-Patch array; the record as it is afterwards.
    async fn patch(&self, path: &str, ops: &Value, what: &str) -> Result<Value, PsaError> {
        let url = self.url(path, &[])?;
        // `replace` and `remove` set a value: sending them twice leaves the same record, so
        // they may be retried.
        let request = self.request(Method::PATCH, url).json_body(ops).retry(crate::http::Retry::Idempotent);
        let response = self.send(request).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, what));
        }
        response.json().map_err(|e| PsaError::InvalidResponse { message: format!("{what}: {e}") })
    }

    /// `POST` a new record (not retried unless throttled: a repeat would create a second one).
    async fn post(&self, path: &str, body: &Value, what: &str) -> Result<Value, PsaError> {
        let request = self.request(Method::POST, self.url(path, &[])?).json_body(body);
        let response = self.send(request).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, what));
        }
        response.json().map_err(|e| PsaError::InvalidResponse { message: format!("{what}: body is not JSON: {e}") })
    }

    fn parse_contact(value: &Value) -> Result<Contact, PsaError> {
        let id = value
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "contact without an id".into() })?;
        let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
        let name = [text("firstName"), text("lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let mut primary_signals = Vec::new();
        if value.get("defaultFlag").and_then(Value::as_bool) == Some(true) {
            primary_signals.push(SIGNAL_CONTACT_DEFAULT.to_string());
        }
        Ok(Contact {
            id: id.to_string(),
            company_id: value.pointer("/company/id").and_then(Value::as_i64).map(|v| v.to_string()).unwrap_or_default(),
            name,
            email: contact_email(value),
            title: text("title").map(str::to_string),
            // `inactiveFlag` defaults to false in ConnectWise: a record without it is in use.
            active: !value.get("inactiveFlag").and_then(Value::as_bool).unwrap_or(false),
            primary_signals,
        })
    }

    fn parse_ticket(value: &Value) -> Result<Ticket, PsaError> {
        let id = value
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "ticket without an id".into() })?;
        let reference =
            |field: &str| value.pointer(&format!("/{field}/id")).and_then(Value::as_i64).map(|v| v.to_string());
        Ok(Ticket {
            id: id.to_string(),
            company_id: reference("company").unwrap_or_default(),
            summary: value.get("summary").and_then(Value::as_str).unwrap_or_default().to_string(),
            contact_id: reference("contact"),
            owner_id: reference("owner"),
            owner_role_id: None,
            queue: reference("board"),
            closed: value.get("closedFlag").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// Signal names, as [`PrimaryContactSignal::signal`] and [`Contact::primary_signals`] carry them.
const SIGNAL_COMPANY_DEFAULT: &str = "company.defaultContact";
const SIGNAL_CONTACT_DEFAULT: &str = "contact.defaultFlag";

/// The contact's email: the default email communication item, else the first email one.
fn contact_email(contact: &Value) -> Option<String> {
    let items = contact.get("communicationItems").and_then(Value::as_array)?;
    let emails: Vec<&Value> = items
        .iter()
        .filter(|item| {
            match item.get("communicationType").and_then(Value::as_str) {
                Some(kind) => kind.eq_ignore_ascii_case("email"),
                // Without `communicationType`, trust a type name that says so.
                None => item
                    .pointer("/type/name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.to_ascii_lowercase().contains("email")),
            }
        })
        .filter(|item| item.get("value").and_then(Value::as_str).is_some_and(|v| !v.trim().is_empty()))
        .collect();
    let chosen = emails
        .iter()
        .find(|item| item.get("defaultFlag").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())?;
    chosen.get("value").and_then(Value::as_str).map(|v| v.trim().to_string())
}

/// A JSON-Patch operation setting a reference field (`{"id": N}`), or removing it when `id` is `None`.
fn reference_op(path: &str, id: Option<i64>) -> Value {
    match id {
        Some(id) => json!({ "op": "replace", "path": path, "value": { "id": id } }),
        None => json!({ "op": "remove", "path": path }),
    }
}

fn sorted_names(by_id: &HashMap<i64, StatusRecord>) -> String {
    let mut names: Vec<&str> = by_id.values().map(|s| s.description.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

fn numeric_id(id: &str, what: &str) -> Result<i64, PsaError> {
    positive_id(id, "ConnectWise", what)
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        (is_next && target.starts_with('<') && target.ends_with('>')).then(|| target[1..target.len() - 1].to_string())
    })
}

#[async_trait]
impl Psa for ConnectWiseClient {
    fn kind(&self) -> PsaKind {
        PsaKind::ConnectWise
    }

    async fn company_by_id(&self, id: &str) -> Result<Option<Company>, PsaError> {
        let id = numeric_id(id, "company")?;
        match self.get_json(&format!("company/companies/{id}"), &[], &format!("company {id}")).await? {
            Some(value) => Self::parse_company(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, PsaError> {
        let conditions = format!("name={}", conditions::quote(name));
        let records = self.list_all("company/companies", Some(conditions), "companies").await?;
        let companies = records
            .iter()
            .filter(|c| !c.get("deletedFlag").and_then(Value::as_bool).unwrap_or(false))
            .map(Self::parse_company)
            .collect();
        exactly_named(companies, name)
    }

    async fn offboarded_candidates(&self, criteria: &OffboardedCriteria) -> Result<Vec<Company>, PsaError> {
        // ConnectWise has no company-level inactive flag (it is a property of the status
        // record), and company types are a child collection filtered with `childConditions`,
        // which Offramp does not use yet: name the statuses instead.
        if !criteria.categories.is_empty() {
            return Err(PsaError::Configuration {
                message:
                    "OFFRAMP_OFFBOARDED_CATEGORIES is not supported on ConnectWise; use OFFRAMP_OFFBOARDED_STATUSES"
                        .into(),
            });
        }
        let clauses: Vec<String> =
            criteria.statuses.iter().map(|s| format!("status/name={}", conditions::quote(s))).collect();
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.list_all("company/companies", Some(clauses.join(" or ")), "companies").await?;
        records
            .iter()
            .filter(|c| !c.get("deletedFlag").and_then(Value::as_bool).unwrap_or(false))
            .map(Self::parse_company)
            .filter(|c| c.as_ref().map_or(true, |c| criteria.matches(c)))
            .collect()
    }

    // Agreements (`/finance/agreements`) are not in the fact sheet: the route and the
    // fields `endDate`, `noEndingDateFlag`, `cancelledFlag` are UNCONFIRMED. Missing
    // fields are read as "no end date" and "not cancelled", i.e. as a current contract,
    // so a misread can only keep a company out of the sweep, never put one in.
    async fn companies_with_ended_contracts(&self, today: chrono::NaiveDate) -> Result<Vec<String>, PsaError> {
        let conditions = format!("endDate<[{today}T00:00:00Z] or cancelledFlag=true");
        let records = self.list_all("finance/agreements", Some(conditions), "agreements").await?;
        let mut ids: Vec<String> = records
            .iter()
            .filter_map(|a| a.pointer("/company/id").and_then(Value::as_i64))
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn contract_summary(&self, company_id: &str, today: chrono::NaiveDate) -> Result<ContractSummary, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let records = self
            .list_all("finance/agreements", Some(format!("company/id={id}")), &format!("agreements of company {id}"))
            .await?;
        Ok(ContractSummary::of(
            records.iter().map(|a| {
                let open_ended = a.get("noEndingDateFlag").and_then(Value::as_bool).unwrap_or(false);
                let end = if open_ended {
                    None
                } else {
                    a.get("endDate").and_then(Value::as_str).and_then(parse_vendor_date)
                };
                (end, a.get("cancelledFlag").and_then(Value::as_bool).unwrap_or(false))
            }),
            today,
        ))
    }

    async fn list_configurations(
        &self,
        company_id: &str,
        include_archived: bool,
    ) -> Result<Vec<Configuration>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let statuses = self.statuses().await?;
        let records = self
            .list_all(
                "company/configurations",
                Some(format!("company/id={id}")),
                &format!("configurations of company {id}"),
            )
            .await?;
        let mut configs = Vec::with_capacity(records.len());
        for record in &records {
            let config = self.parse_configuration(record, statuses)?;
            if include_archived || config.status.state != ConfigState::Archived {
                configs.push(config);
            }
        }
        Ok(configs)
    }

    async fn configuration(&self, id: &str) -> Result<Option<Configuration>, PsaError> {
        let id = numeric_id(id, "configuration")?;
        let statuses = self.statuses().await?;
        match self.get_json(&format!("company/configurations/{id}"), &[], &format!("configuration {id}")).await? {
            Some(value) => self.parse_configuration(&value, statuses).map(Some),
            None => Ok(None),
        }
    }

    async fn deactivate_configuration(&self, config: &Configuration) -> Result<Configuration, PsaError> {
        let inactive = self.statuses().await?.inactive.id;
        self.patch_status(&config.id, inactive).await
    }

    async fn set_configuration_status(
        &self,
        config_id: &str,
        status: &ConfigStatus,
    ) -> Result<Configuration, PsaError> {
        let status_id = status.id.as_deref().and_then(|id| id.parse::<i64>().ok()).ok_or_else(|| {
            PsaError::InvalidId { message: format!("status '{}' has no ConnectWise status id", status.name) }
        })?;
        self.patch_status(config_id, status_id).await
    }

    async fn check_access(&self) -> Result<(), PsaError> {
        self.statuses().await.map(|_| ())
    }

    async fn list_contacts(&self, company_id: &str) -> Result<Vec<Contact>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        // No `inactiveFlag` condition: every contact, active or not (see the module doc).
        let records = self
            .list_all("company/contacts", Some(format!("company/id={id}")), &format!("contacts of company {id}"))
            .await?;
        records.iter().map(Self::parse_contact).collect()
    }

    async fn contact(&self, id: &str) -> Result<Option<Contact>, PsaError> {
        let id = numeric_id(id, "contact")?;
        match self.get_json(&format!("company/contacts/{id}"), &[], &format!("contact {id}")).await? {
            Some(value) => Self::parse_contact(&value).map(Some),
            None => Ok(None),
        }
    }

    // Two requests: the company (for `defaultContact`) and the company's contacts that have
    // `defaultFlag=true` (one page unless a company has over 1000 of them). Both signals are
    // reported, also when they name the same contact.
    async fn primary_contacts(&self, company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError> {
        let id = numeric_id(&company.id, "company")?;
        let what = format!("company {id}");
        let record = self
            .get_json(&format!("company/companies/{id}"), &[], &what)
            .await?
            .ok_or_else(|| PsaError::NotFound { what: what.clone() })?;
        let mut signals = Vec::new();
        if let Some(contact_id) = record.pointer("/defaultContact/id").and_then(Value::as_i64) {
            signals.push(PrimaryContactSignal {
                contact_id: contact_id.to_string(),
                signal: SIGNAL_COMPANY_DEFAULT.to_string(),
            });
        }
        let flagged = self
            .list_all(
                "company/contacts",
                Some(format!("company/id={id} and defaultFlag=true")),
                &format!("default contacts of company {id}"),
            )
            .await?;
        for record in &flagged {
            // Checked again here, in case the server ignored part of the condition.
            let contact = Self::parse_contact(record)?;
            if contact.company_id == id.to_string()
                && contact.primary_signals.iter().any(|s| s == SIGNAL_CONTACT_DEFAULT)
            {
                signals
                    .push(PrimaryContactSignal { contact_id: contact.id, signal: SIGNAL_CONTACT_DEFAULT.to_string() });
            }
        }
        Ok(signals)
    }

    async fn set_contact_active(&self, contact: &Contact, active: bool) -> Result<Contact, PsaError> {
        let id = numeric_id(&contact.id, "contact")?;
        let ops = json!([{ "op": "replace", "path": "inactiveFlag", "value": !active }]);
        let value = self.patch(&format!("company/contacts/{id}"), &ops, &format!("contact {id}")).await?;
        Self::parse_contact(&value)
    }

    async fn open_tickets(&self, company_id: &str) -> Result<Vec<Ticket>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let records = self
            .list_all(
                "service/tickets",
                Some(format!("company/id={id} and closedFlag=false")),
                &format!("open tickets of company {id}"),
            )
            .await?;
        let mut tickets = Vec::with_capacity(records.len());
        for record in &records {
            let ticket = Self::parse_ticket(record)?;
            // Checked again here, in case the server ignored part of the condition.
            if !ticket.closed && ticket.company_id == id.to_string() {
                tickets.push(ticket);
            }
        }
        Ok(tickets)
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, PsaError> {
        let id = numeric_id(id, "ticket")?;
        match self.get_json(&format!("service/tickets/{id}"), &[], &format!("ticket {id}")).await? {
            Some(value) => Self::parse_ticket(&value).map(Some),
            None => Ok(None),
        }
    }

    // One PATCH carrying every change (ConnectWise applies the array as one update).
    async fn update_ticket(&self, ticket_id: &str, change: &TicketAssignment) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let what = format!("ticket {id}");
        let mut ops = Vec::new();
        if let Some(contact) = &change.contact_id {
            ops.push(reference_op("contact", contact.as_deref().map(|c| numeric_id(c, "contact")).transpose()?));
        }
        if let Some(owner) = &change.owner {
            // Autotask's role id has no meaning here and is ignored.
            ops.push(reference_op("owner", owner.as_ref().map(|o| numeric_id(&o.id, "member")).transpose()?));
        }
        if let Some(queue) = &change.queue {
            ops.push(reference_op("board", queue.as_deref().map(|q| numeric_id(q, "board")).transpose()?));
        }
        if ops.is_empty() {
            // Nothing to change: the ticket as it is.
            return self.ticket(&id.to_string()).await?.ok_or(PsaError::NotFound { what });
        }
        let value = self.patch(&format!("service/tickets/{id}"), &Value::Array(ops), &what).await?;
        Self::parse_ticket(&value)
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, PsaError> {
        let company = numeric_id(&ticket.company_id, "company")?;
        let mut body = json!({
            "summary": ticket.summary,
            "company": { "id": company },
            "initialDescription": ticket.description,
        });
        // Without a board ConnectWise picks its default (which one is UNCONFIRMED).
        if let Some(board) = &ticket.queue {
            body["board"] = json!({ "id": numeric_id(board, "board")? });
        }
        let value = self.post("service/tickets", &body, &format!("new ticket for company {company}")).await?;
        Self::parse_ticket(&value)
    }

    async fn add_ticket_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let text = match note.title.trim() {
            "" => note.text.clone(),
            title => format!("{title}\n\n{}", note.text),
        };
        // Internal (not shown to the customer); "at least one flag true" is UNCONFIRMED, and this one is.
        let body = json!({ "text": text, "internalAnalysisFlag": true });
        self.post(&format!("service/tickets/{id}/notes"), &body, &format!("note on ticket {id}")).await.map(|_| ())
    }

    // `replace` with a reference sets the contact; clearing it with `remove` is UNCONFIRMED.
    async fn set_configuration_contact(
        &self,
        config_id: &str,
        contact_id: Option<&str>,
    ) -> Result<Configuration, PsaError> {
        let contact = contact_id.map(|c| numeric_id(c, "contact")).transpose()?;
        self.patch_configuration(config_id, &json!([reference_op("contact", contact)])).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let header = r#"<https://h/apis/3.0/x?page=1>; rel="first", <https://h/apis/3.0/x?page=3&pageSize=1000>; rel="next", <https://h/apis/3.0/x?page=9>; rel="last""#;
        assert_eq!(next_link(header).as_deref(), Some("https://h/apis/3.0/x?page=3&pageSize=1000"));
        assert_eq!(next_link(r#"<https://h/x?page=1>; rel="prev""#), None);
    }

    #[test]
    fn ids_must_be_positive_integers() {
        assert_eq!(numeric_id(" 250 ", "company").unwrap(), 250);
        for bad in ["", "abc", "-3", "0", "1; drop", "250 or 1=1"] {
            assert!(matches!(numeric_id(bad, "company"), Err(PsaError::InvalidId { .. })), "{bad}");
        }
    }

    #[test]
    fn email_is_the_default_email_item_else_the_first_one() {
        let phone =
            json!({"type": {"name": "Direct"}, "value": "555", "communicationType": "Phone", "defaultFlag": true});
        let other = json!({"type": {"name": "Email"}, "value": "other@x.example", "communicationType": "Email"});
        let default = json!({"type": {"name": "Email"}, "value": " main@x.example ", "communicationType": "Email", "defaultFlag": true});
        let contact = json!({"communicationItems": [phone, other, default]});
        assert_eq!(contact_email(&contact).as_deref(), Some("main@x.example"));
        let contact = json!({"communicationItems": [phone, other]});
        assert_eq!(contact_email(&contact).as_deref(), Some("other@x.example"));
        // No `communicationType`: the type name decides.
        let untyped = json!({"communicationItems": [{"type": {"name": "Email Work"}, "value": "w@x.example"}]});
        assert_eq!(contact_email(&untyped).as_deref(), Some("w@x.example"));
        assert_eq!(contact_email(&json!({"communicationItems": [phone]})), None);
        assert_eq!(contact_email(&json!({})), None);
    }

    #[test]
    fn contacts_and_tickets_are_read_defensively() {
        let contact = ConnectWiseClient::parse_contact(&json!({
            "id": 7, "firstName": "Cher", "company": {"id": 250}, "defaultFlag": true, "title": " "
        }))
        .unwrap();
        assert_eq!((contact.name.as_str(), contact.active, contact.title), ("Cher", true, None));
        assert_eq!(contact.primary_signals, ["contact.defaultFlag"]);
        let inactive = ConnectWiseClient::parse_contact(&json!({"id": 8, "inactiveFlag": true})).unwrap();
        assert!(!inactive.active && inactive.primary_signals.is_empty());
        assert!(ConnectWiseClient::parse_contact(&json!({"firstName": "No id"})).is_err());
        let ticket = ConnectWiseClient::parse_ticket(&json!({
            "id": 9, "summary": "s", "company": {"id": 250}, "board": {"id": 4, "name": "Offboarding"}
        }))
        .unwrap();
        assert_eq!(
            (ticket.queue.as_deref(), ticket.contact_id, ticket.owner_id, ticket.closed),
            (Some("4"), None, None, false)
        );
    }

    #[test]
    fn reference_ops_replace_or_remove() {
        assert_eq!(reference_op("owner", Some(11)), json!({"op": "replace", "path": "owner", "value": {"id": 11}}));
        assert_eq!(reference_op("contact", None), json!({"op": "remove", "path": "contact"}));
    }

    #[test]
    fn settings_missing_a_key_is_a_configuration_error() {
        let settings = ConnectWiseSettings {
            url: "http://127.0.0.1:1/apis/3.0".into(),
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: "".into(),
            client_id: "cid".into(),
            inactive_status: "Inactive".into(),
        };
        let err = ConnectWiseClient::new(settings, HttpSettings::default()).err().unwrap();
        assert!(err.to_string().contains("CONNECTWISE_PRIVATE_KEY"), "{err}");
    }
}
