//! Autotask PSA REST API adapter.
//!
//! Facts from the vendor fact sheet (`psa-itglue-api.md` §2):
//! - Base URL `https://webservices{N}.autotask.net/atservicesrest/v1.0/`, found through
//!   `GET …/zoneInformation?user=` when `AUTOTASK_URL` is not set.
//! - Headers `ApiIntegrationCode`, `UserName`, `Secret` on every call.
//! - Reads through `POST /{Entity}/query` with a JSON `filter`; at most 500 records per
//!   page; the next page is `pageDetails.nextPageUrl` (absolute) until it is null.
//! - Configuration items have a boolean `isActive`; updates are `PATCH /ConfigurationItems`
//!   with `{"id", "isActive"}` in the body, answered by `{"itemId"}`.
//! - Errors are `{"errors": ["…"]}`. A bad user name or integration code answers **500**,
//!   a wrong secret 401.
//! - Limits: 10,000 requests per rolling hour per database (shared by every integration),
//!   and 3 concurrent requests per endpoint per integration. The HTTP layer enforces both
//!   (per-endpoint concurrency and a rolling-hour budget); a run that would pass the
//!   budget stops cleanly with `RequestBudgetExhausted` instead of being throttled.
//!
//! UNCONFIRMED points, and how this client copes:
//! - Whether a query without an `isActive` filter returns inactive configuration items:
//!   we run two queries, `isActive eq true` and `isActive eq false`, and merge them.
//! - Whether `nextPageUrl` may be fetched with GET after a POST query: we re-POST the same
//!   body to it, as the PowerShell wrapper does; the URL carries the cursor either way.
//! - The status code of an hourly-threshold refusal: any 429 is retried by the HTTP layer
//!   with backoff; our own budget normally stops us before Autotask has to.
//! - Which 500s are authentication failures: a 500 whose message speaks of
//!   authentication, the user name, the integration code or the secret is read as
//!   `PermissionDenied`; any other 500 is a server or validation error.
//! - Whether GET by id of a missing record is 404 or `{"item": null}`: both mean "none".
//! - Autotask has no "archived" configuration item. An inactive item whose
//!   `configurationItemType` is one of `OFFRAMP_AUTOTASK_ARCHIVED_CI_TYPES` counts as
//!   archived (listed only with `include_archived`, never changed); default: none.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::psa_common::{config_error, exactly_named, positive_id, with_trailing_slash};
use crate::domain::{
    Company, ConfigState, ConfigStatus, Configuration, ContractSummary, OffboardedCriteria, PsaKind, parse_vendor_date,
};
use crate::domain::{Contact, NewTicket, PrimaryContactSignal, Ticket, TicketAssignment, TicketNote};
use crate::error::PsaError;
use crate::http::{HttpClient, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::Psa;
use crate::secret::SecretString;

/// The most records Autotask returns per page.
const PAGE_SIZE: u32 = 500;
/// A guard against a server that keeps sending next-page URLs: 5 million records.
const MAX_PAGES: usize = 10_000;
/// Where Autotask's zone lookup lives (any zone answers it).
pub const DEFAULT_ZONE_LOOKUP_URL: &str = "https://webservices.autotask.net/atservicesrest/v1.0";

#[derive(Debug, Clone)]
pub struct AutotaskSettings {
    /// Base URL up to and including `v1.0`; `None` = look the zone up by user name.
    pub url: Option<String>,
    /// Base of the zone lookup (`…/atservicesrest/v1.0`).
    pub zone_lookup_url: String,
    pub username: String,
    pub secret: SecretString,
    pub integration_code: SecretString,
    /// `configurationItemType` values that mean "archived" for an inactive item.
    pub archived_ci_types: Vec<i64>,
    /// Ticket picklist values (tenant data; fact sheet §2.3 marks them UNCONFIRMED).
    pub tickets: AutotaskTicketSettings,
}

/// Autotask ticket picklist values. Defaults are the widely used ones; each is a setting
/// because picklists are per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutotaskTicketSettings {
    /// `status` of a complete ticket (`AUTOTASK_TICKET_COMPLETE_STATUS`, default 5): open = any other.
    pub complete_status: i64,
    /// `status` of a new ticket (`AUTOTASK_NEW_TICKET_STATUS`, default 1 New).
    pub new_status: i64,
    /// `priority` of a new ticket (`AUTOTASK_NEW_TICKET_PRIORITY`, default 2 Medium).
    pub new_priority: i64,
    /// `noteType` of notes (`AUTOTASK_NOTE_TYPE`, default 1).
    pub note_type: i64,
    /// `publish` of notes (`AUTOTASK_NOTE_PUBLISH`, default 2 = internal only).
    pub note_publish: i64,
}

impl Default for AutotaskTicketSettings {
    fn default() -> Self {
        Self { complete_status: 5, new_status: 1, new_priority: 2, note_type: 1, note_publish: 2 }
    }
}

/// A picklist field's values, value → label.
type Picklist = HashMap<i64, String>;

struct CompanyPicklists {
    company_type: Picklist,
    classification: Picklist,
}

pub struct AutotaskClient {
    http: HttpClient,
    settings: AutotaskSettings,
    base: OnceCell<url::Url>,
    picklists: OnceCell<CompanyPicklists>,
    /// Set once the budget has been told the database's usage this hour.
    budget_synced: OnceCell<()>,
}

impl AutotaskClient {
    pub fn new(settings: AutotaskSettings, http: HttpSettings) -> Result<Self, PsaError> {
        for (name, value) in [
            ("AUTOTASK_USERNAME", settings.username.as_str()),
            ("AUTOTASK_SECRET", settings.secret.expose()),
            ("AUTOTASK_INTEGRATION_CODE", settings.integration_code.expose()),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(format!("{name} is not set")));
            }
        }
        let base = OnceCell::new();
        if let Some(url) = settings.url.as_deref().filter(|u| !u.trim().is_empty()) {
            let url = url::Url::parse(url.trim())
                .map_err(|e| config_error(format!("AUTOTASK_URL is not a valid URL: {e}")))?;
            let _ = base.set(with_trailing_slash(url));
        }
        url::Url::parse(&settings.zone_lookup_url)
            .map_err(|e| config_error(format!("AUTOTASK_ZONE_LOOKUP_URL is not a valid URL: {e}")))?;
        let redactor =
            Redactor::new([settings.secret.expose().to_string(), settings.integration_code.expose().to_string()]);
        let http = HttpClient::new("autotask", http, redactor).map_err(|e| config_error(e.to_string()))?;
        Ok(Self { http, settings, base, picklists: OnceCell::new(), budget_synced: OnceCell::new() })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The zone's base URL: configured, or looked up once by user name.
    async fn base(&self) -> Result<&url::Url, PsaError> {
        self.base
            .get_or_try_init(|| async {
                let mut url = with_trailing_slash(
                    url::Url::parse(&self.settings.zone_lookup_url)
                        .map_err(|e| config_error(format!("AUTOTASK_ZONE_LOOKUP_URL: {e}")))?,
                )
                .join("zoneInformation")
                .map_err(|e| config_error(format!("AUTOTASK_ZONE_LOOKUP_URL: {e}")))?;
                url.query_pairs_mut().append_pair("user", &self.settings.username);
                // The lookup needs no credentials (the wrappers send none); we send none.
                let response = self.http.send(HttpRequest::new(Method::GET, url)).await.map_err(PsaError::from_http)?;
                if !response.is_success() {
                    let message = error_messages(&response);
                    return Err(config_error(format!(
                        "Autotask zone lookup for user '{}' failed (HTTP {}): {message}; set AUTOTASK_URL or check AUTOTASK_USERNAME",
                        self.settings.username, response.status
                    )));
                }
                let body = response.json().map_err(|e| PsaError::InvalidResponse { message: format!("zoneInformation: {e}") })?;
                let zone_url = body
                    .get("url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| PsaError::InvalidResponse { message: "zoneInformation has no url".into() })?;
                let zone = url::Url::parse(zone_url)
                    .map_err(|e| PsaError::InvalidResponse { message: format!("zoneInformation url: {e}") })?;
                let zone_name = body.get("zoneName").and_then(Value::as_str).unwrap_or_default().to_string();
                tracing::info!(zone = %zone_name, url = %zone, "Autotask zone found");
                Ok(with_trailing_slash(zone))
            })
            .await
    }

    async fn url(&self, path: &str) -> Result<url::Url, PsaError> {
        self.base()
            .await?
            .join(path.trim_start_matches('/'))
            .map_err(|e| config_error(format!("cannot build an Autotask URL for {path}: {e}")))
    }

    fn request(&self, method: Method, url: url::Url, entity: &str) -> HttpRequest {
        HttpRequest::new(method, url)
            .sensitive_header("apiintegrationcode", self.settings.integration_code.expose())
            .header("username", &self.settings.username)
            .sensitive_header("secret", self.settings.secret.expose())
            .header("accept", "application/json")
            .endpoint(entity)
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, PsaError> {
        // Before the first request of this process: a fresh Lambda or CLI process would
        // otherwise believe the whole hour's budget is its own.
        if self.http.budget().is_some() {
            self.budget_synced.get_or_try_init(|| self.sync_budget()).await?;
        }
        self.http.send(request).await.map_err(PsaError::from_http)
    }

    /// A typed error for a non-success response. `write` says whether a 500 is a refusal
    /// of our change (validation) rather than a failure to read.
    fn error_for(&self, response: &HttpResponse, what: &str, write: bool) -> PsaError {
        let message = self.http.redactor().scrub(&error_messages(response));
        let status = response.status;
        let text = format!("Autotask answered HTTP {status} to {what}: {message}");
        match status {
            401 | 403 => PsaError::PermissionDenied { message: text },
            500 if looks_like_authentication(&message) => PsaError::PermissionDenied { message: text },
            404 => PsaError::NotFound { what: what.to_string() },
            500 if write => PsaError::Rejected { status, code: None, message: text },
            429 | 500..=599 => PsaError::Connection { message: text },
            _ => PsaError::Rejected { status, code: None, message: text },
        }
    }

    /// Every record of a query, following `pageDetails.nextPageUrl`.
    async fn query_all(&self, entity: &str, filter: Value, what: &str) -> Result<Vec<Value>, PsaError> {
        let body = json!({ "filter": filter, "MaxRecords": PAGE_SIZE });
        let first = self.url(&format!("{entity}/query")).await?;
        let origin = self.base().await?.origin();
        let mut url = first;
        let mut records = Vec::new();
        for _ in 0..MAX_PAGES {
            // A query changes nothing, so it may be retried like a read.
            let request = self.request(Method::POST, url.clone(), entity).json_body(&body).retry(Retry::Idempotent);
            let response = self.send(request).await?;
            if !response.is_success() {
                return Err(self.error_for(&response, what, false));
            }
            let page = response
                .json()
                .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: body is not JSON: {e}") })?;
            let items = page
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| PsaError::InvalidResponse { message: format!("{what}: response has no items array") })?;
            records.extend(items.iter().cloned());
            let next = page.pointer("/pageDetails/nextPageUrl").and_then(Value::as_str).filter(|u| !u.is_empty());
            match next {
                None => return Ok(records),
                Some(next) => {
                    let next = url::Url::parse(next)
                        .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: bad nextPageUrl: {e}") })?;
                    // Credentials go with every request: never follow a link to another host.
                    if next.origin() != origin {
                        return Err(PsaError::InvalidResponse {
                            message: format!("{what}: nextPageUrl points to another host"),
                        });
                    }
                    if next == url {
                        return Err(PsaError::InvalidResponse {
                            message: format!("{what}: nextPageUrl repeats the current page"),
                        });
                    }
                    url = next;
                }
            }
        }
        Err(PsaError::InvalidResponse { message: format!("{what}: more than {MAX_PAGES} pages") })
    }

    /// `GET /{Entity}/{id}` → the `item`, or `None`.
    async fn get_item(&self, entity: &str, id: i64, what: &str) -> Result<Option<Value>, PsaError> {
        let url = self.url(&format!("{entity}/{id}")).await?;
        let response = self.send(self.request(Method::GET, url, entity)).await?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(self.error_for(&response, what, false));
        }
        let body = response
            .json()
            .map_err(|e| PsaError::InvalidResponse { message: format!("{what}: body is not JSON: {e}") })?;
        Ok(body.get("item").filter(|item| !item.is_null()).cloned())
    }

    async fn picklist(&self, entity: &str, field: &str) -> Result<Picklist, PsaError> {
        let url = self.url(&format!("{entity}/entityInformation/fields")).await?;
        let response = self.send(self.request(Method::GET, url, entity)).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, &format!("{entity} field information"), false));
        }
        let body = response
            .json()
            .map_err(|e| PsaError::InvalidResponse { message: format!("{entity} field information: {e}") })?;
        let mut values = Picklist::new();
        let fields = body.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
        let wanted = fields
            .iter()
            .find(|f| f.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(field)));
        for value in wanted.and_then(|f| f.get("picklistValues")).and_then(Value::as_array).into_iter().flatten() {
            let number = match value.get("value") {
                Some(Value::String(s)) => s.parse::<i64>().ok(),
                Some(v) => v.as_i64(),
                None => None,
            };
            if let (Some(number), Some(label)) = (number, value.get("label").and_then(Value::as_str)) {
                values.insert(number, label.to_string());
            }
        }
        Ok(values)
    }

    async fn company_picklists(&self) -> Result<&CompanyPicklists, PsaError> {
        self.picklists
            .get_or_try_init(|| async {
                Ok(CompanyPicklists {
                    company_type: self.picklist("Companies", "companyType").await?,
                    classification: self.picklist("Companies", "classification").await?,
                })
            })
            .await
    }

    fn parse_company(value: &Value, picklists: &CompanyPicklists) -> Result<Company, PsaError> {
        let id = field(value, "id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "company without an id".into() })?;
        let active = field(value, "isActive").and_then(Value::as_bool).unwrap_or(true);
        let mut categories = Vec::new();
        for (name, list) in [("companyType", &picklists.company_type), ("classification", &picklists.classification)] {
            if let Some(label) = field(value, name).and_then(Value::as_i64).and_then(|v| list.get(&v)) {
                categories.push(label.clone());
            }
        }
        Ok(Company {
            id: id.to_string(),
            name: field(value, "companyName").and_then(Value::as_str).unwrap_or_default().to_string(),
            identifier: field(value, "companyNumber").and_then(Value::as_str).map(str::to_string),
            status: Some(if active { "Active" } else { "Inactive" }.to_string()),
            inactive: Some(!active),
            categories,
            contracts: None,
        })
    }

    fn parse_configuration(&self, value: &Value) -> Result<Configuration, PsaError> {
        let id = field(value, "id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "configuration item without an id".into() })?;
        let active = field(value, "isActive").and_then(Value::as_bool).ok_or_else(|| PsaError::InvalidResponse {
            message: format!("configuration item {id} has no boolean isActive"),
        })?;
        let ci_type = field(value, "configurationItemType").and_then(Value::as_i64);
        let state = if active {
            ConfigState::Active
        } else if ci_type.is_some_and(|t| self.settings.archived_ci_types.contains(&t)) {
            ConfigState::Archived
        } else {
            ConfigState::Inactive
        };
        Ok(Configuration {
            id: id.to_string(),
            name: ["referenceTitle", "serialNumber", "referenceNumber"]
                .iter()
                .find_map(|f| field(value, f).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
                .map(str::to_string)
                .unwrap_or_else(|| format!("Configuration item {id}")),
            company_id: field(value, "companyID").and_then(Value::as_i64).map(|v| v.to_string()).unwrap_or_default(),
            status: status_of(state),
            type_name: ci_type.map(|t| format!("type {t}")),
            contact_id: None,
        })
    }

    async fn patch_active(&self, config: &Configuration, active: bool) -> Result<Configuration, PsaError> {
        let id = numeric_id(&config.id, "configuration item")?;
        let url = self.url("ConfigurationItems").await?;
        // Setting a flag is idempotent: repeating the PATCH after a lost answer is harmless.
        let request = self
            .request(Method::PATCH, url, "ConfigurationItems")
            .json_body(&json!({ "id": id, "isActive": active }))
            .retry(Retry::Idempotent);
        let response = self.send(request).await?;
        let what = format!("configuration item {id}");
        if !response.is_success() {
            return Err(self.error_for(&response, &what, true));
        }
        let body = response.json().unwrap_or(Value::Null);
        if let Some(item_id) = body.get("itemId").and_then(Value::as_i64)
            && item_id != id
        {
            return Err(PsaError::InvalidResponse { message: format!("{what}: Autotask answered itemId {item_id}") });
        }
        // Autotask answers only `{"itemId"}`; reading the item back would double the
        // requests against the hourly budget. The PATCH succeeded, so the flag is set.
        let mut after = config.clone();
        after.status = if active {
            status_of(ConfigState::Active)
        } else if config.status.state == ConfigState::Archived {
            config.status.clone()
        } else {
            status_of(ConfigState::Inactive)
        };
        Ok(after)
    }

    /// Autotask's own usage counter, so a run started near the hourly threshold knows it.
    async fn sync_budget(&self) -> Result<(), PsaError> {
        let url = self.url("ThresholdInformation").await?;
        let request = self.request(Method::GET, url, "ThresholdInformation");
        let response = self.http.send(request).await.map_err(PsaError::from_http)?;
        if !response.is_success() {
            return Err(self.error_for(&response, "threshold information", false));
        }
        let body = response.json().unwrap_or(Value::Null);
        let used = field(&body, "currentTimeframeRequestCount").and_then(Value::as_u64).unwrap_or(0);
        let threshold = field(&body, "externalRequestThreshold").and_then(Value::as_u64);
        if let Some(budget) = self.http.budget() {
            budget.record_external(used).await;
            let remaining = budget.remaining().await;
            tracing::info!(used, threshold, remaining, "Autotask request budget for this hour");
        }
        Ok(())
    }
}

/// A field by name ignoring case (Autotask's responses are camelCase, its models PascalCase).
fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn status_of(state: ConfigState) -> ConfigStatus {
    let name = match state {
        ConfigState::Active => "Active",
        ConfigState::Inactive => "Inactive",
        ConfigState::Archived => "Archived",
    };
    ConfigStatus { id: None, name: name.to_string(), state }
}

/// The `errors[]` of an Autotask error body, joined; else the body itself.
fn error_messages(response: &HttpResponse) -> String {
    let body = response.json().unwrap_or(Value::Null);
    let messages: Vec<String> = field(&body, "errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if messages.is_empty() { response.body_excerpt() } else { messages.join("; ") }
}

fn looks_like_authentication(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["authenticat", "user name", "username", "integration code", "integrationcode", "secret", "unauthorized"]
        .iter()
        .any(|needle| message.contains(needle))
}

fn numeric_id(id: &str, what: &str) -> Result<i64, PsaError> {
    positive_id(id, "Autotask", what)
}

fn eq(field: &str, value: Value) -> Value {
    json!({ "op": "eq", "field": field, "value": value })
}

#[async_trait]
impl Psa for AutotaskClient {
    fn kind(&self) -> PsaKind {
        PsaKind::Autotask
    }

    async fn company_by_id(&self, id: &str) -> Result<Option<Company>, PsaError> {
        let id = numeric_id(id, "company")?;
        let picklists = self.company_picklists().await?;
        match self.get_item("Companies", id, &format!("company {id}")).await? {
            Some(value) => Self::parse_company(&value, picklists).map(Some),
            None => Ok(None),
        }
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, PsaError> {
        let picklists = self.company_picklists().await?;
        let records = self.query_all("Companies", json!([eq("companyName", json!(name.trim()))]), "companies").await?;
        exactly_named(records.iter().map(|r| Self::parse_company(r, picklists)).collect(), name)
    }

    async fn offboarded_candidates(&self, criteria: &OffboardedCriteria) -> Result<Vec<Company>, PsaError> {
        let picklists = self.company_picklists().await?;
        let mut alternatives = Vec::new();
        let wants_inactive =
            criteria.inactive || criteria.statuses.iter().any(|s| s.trim().eq_ignore_ascii_case("inactive"));
        if wants_inactive {
            alternatives.push(eq("isActive", json!(false)));
        }
        if criteria.statuses.iter().any(|s| s.trim().eq_ignore_ascii_case("active")) {
            alternatives.push(eq("isActive", json!(true)));
        }
        for (field_name, list) in
            [("companyType", &picklists.company_type), ("classification", &picklists.classification)]
        {
            let values: Vec<i64> = list
                .iter()
                .filter(|(_, label)| criteria.categories.iter().any(|c| c.trim().eq_ignore_ascii_case(label)))
                .map(|(value, _)| *value)
                .collect();
            if !values.is_empty() {
                alternatives.push(json!({ "op": "in", "field": field_name, "value": values }));
            }
        }
        let unknown: Vec<&String> = criteria
            .categories
            .iter()
            .filter(|c| {
                !picklists
                    .company_type
                    .values()
                    .chain(picklists.classification.values())
                    .any(|l| l.eq_ignore_ascii_case(c.trim()))
            })
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "offboarded categories that are neither an Autotask company type nor a classification"
            );
        }
        if alternatives.is_empty() {
            return Ok(Vec::new());
        }
        let filter = json!([{ "op": "or", "items": alternatives }]);
        let records = self.query_all("Companies", filter, "companies").await?;
        records
            .iter()
            .map(|r| Self::parse_company(r, picklists))
            .filter(|c| c.as_ref().map_or(true, |c| criteria.matches(c)))
            .collect()
    }

    // Contracts are not in the fact sheet: `endDate` and `status` (1 active, 0 inactive)
    // are from the Autotask entity model and UNCONFIRMED here. An inactive contract
    // counts as ended; a missing end date as current.
    async fn companies_with_ended_contracts(&self, today: chrono::NaiveDate) -> Result<Vec<String>, PsaError> {
        let filter = json!([{ "op": "or", "items": [
            { "op": "lt", "field": "endDate", "value": format!("{today}T00:00:00") },
            eq("status", json!(0)),
        ]}]);
        let records = self.query_all("Contracts", filter, "contracts").await?;
        let mut ids: Vec<String> = records
            .iter()
            .filter_map(|c| field(c, "companyID").and_then(Value::as_i64))
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn contract_summary(&self, company_id: &str, today: chrono::NaiveDate) -> Result<ContractSummary, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let records = self
            .query_all("Contracts", json!([eq("companyID", json!(id))]), &format!("contracts of company {id}"))
            .await?;
        Ok(ContractSummary::of(
            records.iter().map(|c| {
                let end = field(c, "endDate").and_then(Value::as_str).and_then(parse_vendor_date);
                (end, field(c, "status").and_then(Value::as_i64) == Some(0))
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
        let what = format!("configuration items of company {id}");
        // Two queries: whether an unfiltered query includes inactive items is UNCONFIRMED.
        let mut by_id = BTreeMap::new();
        for active in [true, false] {
            let filter = json!([eq("companyID", json!(id)), eq("isActive", json!(active))]);
            for record in self.query_all("ConfigurationItems", filter, &what).await? {
                let config = self.parse_configuration(&record)?;
                by_id.insert(config.id.parse::<i64>().unwrap_or_default(), config);
            }
        }
        Ok(by_id.into_values().filter(|c| include_archived || c.status.state != ConfigState::Archived).collect())
    }

    async fn configuration(&self, id: &str) -> Result<Option<Configuration>, PsaError> {
        let id = numeric_id(id, "configuration item")?;
        match self.get_item("ConfigurationItems", id, &format!("configuration item {id}")).await? {
            Some(value) => self.parse_configuration(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn deactivate_configuration(&self, config: &Configuration) -> Result<Configuration, PsaError> {
        self.patch_active(config, false).await
    }

    async fn set_configuration_status(
        &self,
        config_id: &str,
        status: &ConfigStatus,
    ) -> Result<Configuration, PsaError> {
        let current = self
            .configuration(config_id)
            .await?
            .ok_or_else(|| PsaError::NotFound { what: format!("configuration item {config_id}") })?;
        self.patch_active(&current, status.state == ConfigState::Active).await
    }

    async fn check_access(&self) -> Result<(), PsaError> {
        self.sync_budget().await
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

    #[test]
    fn authentication_500s_are_told_from_other_500s() {
        assert!(looks_like_authentication("Unable to authenticate: the user name is not valid"));
        assert!(looks_like_authentication("The integration code is not valid"));
        assert!(!looks_like_authentication("Configuration item 25005 could not be updated: product locked"));
    }

    #[test]
    fn fields_are_found_ignoring_case() {
        let value = json!({"Id": 7, "isActive": true});
        assert_eq!(field(&value, "id"), Some(&json!(7)));
        assert_eq!(field(&value, "IsActive"), Some(&json!(true)));
        assert_eq!(field(&value, "companyID"), None);
    }

    #[test]
    fn missing_credentials_are_named() {
        let settings = AutotaskSettings {
            tickets: AutotaskTicketSettings::default(),
            url: None,
            zone_lookup_url: DEFAULT_ZONE_LOOKUP_URL.into(),
            username: "api@example.com".into(),
            secret: "s3cret-value".into(),
            integration_code: "".into(),
            archived_ci_types: vec![],
        };
        let err = AutotaskClient::new(settings, HttpSettings::default()).err().unwrap();
        assert!(err.to_string().contains("AUTOTASK_INTEGRATION_CODE"), "{err}");
    }
}

// Placeholder (issue 4 in progress): replaced by the real contact and ticket calls.
fn not_yet() -> PsaError {
    PsaError::Configuration { message: "contacts and tickets are not implemented for this PSA yet".into() }
}
