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
//! - Contacts (`isActive` an integer 1/0, `primaryContact` a boolean) are read through
//!   `POST /Contacts/query` and `GET /Contacts/{id}`, but, being a child of the company,
//!   written only through the parent: `PATCH /Companies/{companyID}/Contacts` with
//!   `{"id", "isActive": 0|1}`. Ticket notes likewise: `POST /Tickets/{id}/Notes`.
//! - Tickets: `POST /Tickets/query`, `GET /Tickets/{id}`, `PATCH /Tickets` with `{"id", …}`
//!   (a `null` clears a field), `POST /Tickets` → `{"itemId"}`. A resource is always sent
//!   with its role (`assignedResourceID` + `assignedResourceRoleID`): Autotask refuses one
//!   without the other.
//!
//! Requests per operation (besides the one-time zone lookup and `ThresholdInformation`):
//! `list_contacts` 2 queries (+1 per further 500), `contact` 1, `primary_contacts` 1,
//! `set_contact_active` 1 PATCH, `open_tickets` 1 query (+1 per further 500), `ticket` 1,
//! `update_ticket` PATCH + read-back (+1 GET first when the owner comes without a role),
//! `create_ticket` POST + read-back, `add_ticket_note` 1 POST, `set_configuration_contact`
//! PATCH + read-back.
//!
//! UNCONFIRMED points, and how this client copes:
//! - Whether a query without an `isActive` filter returns inactive configuration items:
//!   we run two queries, `isActive eq true` and `isActive eq false`, and merge them.
//!   Contacts are listed the same way (`isActive eq 1` and `isActive eq 0`): the fact sheet
//!   only says "query by companyID", and a deactivation run must see every contact.
//! - "Complete" = ticket status 5, the new ticket's status and priority, and the notes'
//!   `noteType` / `publish`: picklists are tenant data, so each is a setting
//!   ([`AutotaskTicketSettings`]). Open tickets = `status noteq complete_status`.
//! - Which fields a ticket create requires: we send `companyID`, `title`, `description`,
//!   `status`, `priority` and `queueID` (the working minimal body reported), leaving
//!   `queueID` out when no queue is given.
//! - The thread-limit "endpoint" of a parent-path write (`Companies/{id}/Contacts`,
//!   `Tickets/{id}/Notes`): we count it under the URL's first segment (`Companies`,
//!   `Tickets`), the object endpoint the URL names.
//! - A ticket owner given without a role: Autotask needs one; we reuse the ticket's current
//!   `assignedResourceRoleID` and refuse (configuration error, nothing sent) if it has none.
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
use serde_json::{Map, Value, json};
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
            contact_id: id_field(value, "contactID"),
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

    /// Send a write and read the `itemId` of the answer (`None` when the body has none).
    /// `endpoint` is the unit of the per-endpoint thread limit.
    async fn write(
        &self,
        method: Method,
        path: &str,
        endpoint: &str,
        body: &Value,
        retry: Retry,
        what: &str,
    ) -> Result<Option<i64>, PsaError> {
        let url = self.url(path).await?;
        let request = self.request(method, url, endpoint).json_body(body).retry(retry);
        let response = self.send(request).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, what, true));
        }
        Ok(response.json().ok().and_then(|b| field(&b, "itemId").and_then(Value::as_i64)))
    }

    /// A `PATCH` of the record `id`: the answer, if it names an item, must name this one.
    async fn patch(&self, path: &str, endpoint: &str, id: i64, body: &Value, what: &str) -> Result<(), PsaError> {
        // Setting fields is idempotent: repeating the PATCH after a lost answer is harmless.
        match self.write(Method::PATCH, path, endpoint, body, Retry::Idempotent, what).await? {
            Some(item_id) if item_id != id => {
                Err(PsaError::InvalidResponse { message: format!("{what}: Autotask answered itemId {item_id}") })
            }
            _ => Ok(()),
        }
    }

    /// A `POST` that creates a record; returns the new record's id.
    async fn create(&self, path: &str, endpoint: &str, body: &Value, what: &str) -> Result<i64, PsaError> {
        // Never repeated after an unknown outcome (a second ticket or note): only on 429.
        self.write(Method::POST, path, endpoint, body, Retry::OnlyWhenThrottled, what)
            .await?
            .ok_or_else(|| PsaError::InvalidResponse { message: format!("{what}: the answer has no itemId") })
    }

    fn parse_contact(value: &Value) -> Result<Contact, PsaError> {
        let id = field(value, "id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "contact without an id".into() })?;
        // An integer 1/0 (fact sheet §2.8); a boolean is read too, should a version answer one.
        let active = match field(value, "isActive") {
            Some(Value::Number(n)) => n.as_i64().map(|n| n != 0),
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
        .ok_or_else(|| PsaError::InvalidResponse { message: format!("contact {id} has no isActive") })?;
        let text = |name: &str| {
            field(value, name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
        };
        let name = [text("firstName"), text("lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let email = text("emailAddress");
        let primary = field(value, "primaryContact").and_then(Value::as_bool) == Some(true);
        Ok(Contact {
            id: id.to_string(),
            company_id: id_field(value, "companyID").unwrap_or_default(),
            name: if name.is_empty() { email.clone().unwrap_or_else(|| format!("Contact {id}")) } else { name },
            email,
            title: text("title"),
            active,
            primary_signals: if primary { vec![PRIMARY_SIGNAL.to_string()] } else { Vec::new() },
        })
    }

    fn parse_ticket(&self, value: &Value) -> Result<Ticket, PsaError> {
        let id = field(value, "id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::InvalidResponse { message: "ticket without an id".into() })?;
        let status = field(value, "status").and_then(Value::as_i64);
        Ok(Ticket {
            id: id.to_string(),
            company_id: id_field(value, "companyID").unwrap_or_default(),
            summary: field(value, "title").and_then(Value::as_str).unwrap_or_default().to_string(),
            contact_id: id_field(value, "contactID"),
            owner_id: id_field(value, "assignedResourceID"),
            owner_role_id: id_field(value, "assignedResourceRoleID"),
            queue: id_field(value, "queueID"),
            closed: status == Some(self.settings.tickets.complete_status),
        })
    }

    /// The ticket, or `NotFound`.
    async fn existing_ticket(&self, id: i64) -> Result<Ticket, PsaError> {
        let what = format!("ticket {id}");
        match self.get_item("Tickets", id, &what).await? {
            Some(value) => self.parse_ticket(&value),
            None => Err(PsaError::NotFound { what }),
        }
    }

    /// The `PATCH /Tickets` body for `change`; ids are checked before anything is sent.
    async fn ticket_patch(&self, id: i64, change: &TicketAssignment) -> Result<Value, PsaError> {
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        // `null` clears a field (fact sheet §2.8: PATCH overwrites with what is sent).
        if let Some(contact) = &change.contact_id {
            let value = match contact {
                Some(contact) => json!(numeric_id(contact, "contact")?),
                None => Value::Null,
            };
            body.insert("contactID".into(), value);
        }
        if let Some(queue) = &change.queue {
            let value = match queue {
                Some(queue) => json!(numeric_id(queue, "queue")?),
                None => Value::Null,
            };
            body.insert("queueID".into(), value);
        }
        if let Some(owner) = &change.owner {
            // Resource and role travel together: Autotask refuses one without the other.
            let (resource, role) = match owner {
                None => (Value::Null, Value::Null),
                Some(owner) => {
                    let resource = numeric_id(&owner.id, "resource")?;
                    let role = match owner.role_id.as_deref() {
                        Some(role) => numeric_id(role, "role")?,
                        None => {
                            let current = self.existing_ticket(id).await?;
                            let role = current.owner_role_id.ok_or_else(|| {
                                config_error(format!(
                                    "Autotask needs a role with resource {resource} for ticket {id}, and the ticket has no assignedResourceRoleID to keep"
                                ))
                            })?;
                            numeric_id(&role, "role")?
                        }
                    };
                    (json!(resource), json!(role))
                }
            };
            body.insert("assignedResourceID".into(), resource);
            body.insert("assignedResourceRoleID".into(), role);
        }
        Ok(Value::Object(body))
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

/// An id-valued field as a string (`None` when null or missing).
fn id_field(value: &Value, name: &str) -> Option<String> {
    match field(value, name)? {
        Value::Number(n) => n.as_i64().map(|n| n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// The primary-contact signal Autotask carries on the contact record.
const PRIMARY_SIGNAL: &str = "contact.primaryContact";

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

    async fn list_contacts(&self, company_id: &str) -> Result<Vec<Contact>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let what = format!("contacts of company {id}");
        // Two queries, as for configuration items: whether a query without an `isActive`
        // filter includes inactive contacts is UNCONFIRMED, and a run must see them all.
        // `isActive` is an integer on contacts (fact sheet §2.8), hence 1 and 0.
        let mut by_id = BTreeMap::new();
        for active in [1, 0] {
            let filter = json!([eq("companyID", json!(id)), eq("isActive", json!(active))]);
            for record in self.query_all("Contacts", filter, &what).await? {
                let contact = Self::parse_contact(&record)?;
                by_id.insert(contact.id.parse::<i64>().unwrap_or_default(), contact);
            }
        }
        Ok(by_id.into_values().collect())
    }

    async fn contact(&self, id: &str) -> Result<Option<Contact>, PsaError> {
        let id = numeric_id(id, "contact")?;
        match self.get_item("Contacts", id, &format!("contact {id}")).await? {
            Some(value) => Self::parse_contact(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn primary_contacts(&self, company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError> {
        let id = numeric_id(&company.id, "company")?;
        // One query, no `isActive` filter: a primary contact that the query leaves out
        // because it is inactive (UNCONFIRMED) is not one a run needs to protect.
        let filter = json!([eq("companyID", json!(id)), eq("primaryContact", json!(true))]);
        let records = self.query_all("Contacts", filter, &format!("primary contacts of company {id}")).await?;
        let mut signals = Vec::new();
        for record in &records {
            // Checked again here: a signal must come from the record, not from our filter.
            let contact = Self::parse_contact(record)?;
            if contact.primary_signals.iter().any(|s| s == PRIMARY_SIGNAL) && contact.company_id == id.to_string() {
                signals.push(PrimaryContactSignal { contact_id: contact.id, signal: PRIMARY_SIGNAL.to_string() });
            }
        }
        Ok(signals)
    }

    async fn set_contact_active(&self, contact: &Contact, active: bool) -> Result<Contact, PsaError> {
        let id = numeric_id(&contact.id, "contact")?;
        let company = numeric_id(&contact.company_id, "company")?;
        // A child entity: written through its company, never `PATCH /Contacts`. An integer,
        // not a boolean (Autotask refuses `true`/`false` here).
        let body = json!({ "id": id, "isActive": i32::from(active) });
        self.patch(&format!("Companies/{company}/Contacts"), "Companies", id, &body, &format!("contact {id}")).await?;
        // Autotask answers only `{"itemId"}`; as for configuration items, no read-back
        // (a bulk run would double its requests against the hourly budget).
        Ok(Contact { active, ..contact.clone() })
    }

    async fn open_tickets(&self, company_id: &str) -> Result<Vec<Ticket>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let complete = self.settings.tickets.complete_status;
        let filter = json!([eq("companyID", json!(id)), { "op": "noteq", "field": "status", "value": complete }]);
        let records = self.query_all("Tickets", filter, &format!("open tickets of company {id}")).await?;
        let tickets = records.iter().map(|r| self.parse_ticket(r)).collect::<Result<Vec<_>, _>>()?;
        Ok(tickets.into_iter().filter(|t| !t.closed).collect())
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, PsaError> {
        let id = numeric_id(id, "ticket")?;
        match self.get_item("Tickets", id, &format!("ticket {id}")).await? {
            Some(value) => self.parse_ticket(&value).map(Some),
            None => Ok(None),
        }
    }

    async fn update_ticket(&self, ticket_id: &str, change: &TicketAssignment) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        if change.is_empty() {
            return self.existing_ticket(id).await;
        }
        let body = self.ticket_patch(id, change).await?;
        self.patch("Tickets", "Tickets", id, &body, &format!("ticket {id}")).await?;
        // Read back: Autotask answers only `{"itemId"}` and may change more than was sent.
        self.existing_ticket(id).await
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, PsaError> {
        let company = numeric_id(&ticket.company_id, "company")?;
        let settings = &self.settings.tickets;
        let mut body = json!({
            "companyID": company,
            "title": ticket.summary,
            "description": ticket.description,
            "status": settings.new_status,
            "priority": settings.new_priority,
        });
        if let Some(queue) = &ticket.queue {
            body["queueID"] = json!(numeric_id(queue, "queue")?);
        }
        let id = self.create("Tickets", "Tickets", &body, &format!("a ticket for company {company}")).await?;
        self.ticket(&id.to_string()).await?.ok_or_else(|| PsaError::InvalidResponse {
            message: format!("ticket {id} was created but cannot be read back"),
        })
    }

    async fn add_ticket_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let settings = &self.settings.tickets;
        // A child entity: created through its ticket (`POST /TicketNotes` is refused).
        let body = json!({
            "title": note.title,
            "description": note.text,
            "noteType": settings.note_type,
            "publish": settings.note_publish,
        });
        self.create(&format!("Tickets/{id}/Notes"), "Tickets", &body, &format!("ticket {id}")).await?;
        Ok(())
    }

    async fn set_configuration_contact(
        &self,
        config_id: &str,
        contact_id: Option<&str>,
    ) -> Result<Configuration, PsaError> {
        let id = numeric_id(config_id, "configuration item")?;
        let contact = match contact_id {
            Some(contact) => json!(numeric_id(contact, "contact")?),
            None => Value::Null,
        };
        let what = format!("configuration item {id}");
        let body = json!({ "id": id, "contactID": contact });
        self.patch("ConfigurationItems", "ConfigurationItems", id, &body, &what).await?;
        self.configuration(config_id).await?.ok_or(PsaError::NotFound { what })
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
    fn contacts_read_an_integer_is_active_and_fall_back_for_names() {
        let contact = AutotaskClient::parse_contact(&json!({
            "id": 7, "companyID": 250, "firstName": " ", "lastName": null, "emailAddress": "a@b.example",
            "isActive": 0, "primaryContact": false,
        }))
        .unwrap();
        assert!(!contact.active);
        assert_eq!((contact.name.as_str(), contact.company_id.as_str()), ("a@b.example", "250"));
        assert!(contact.primary_signals.is_empty());
        let primary = AutotaskClient::parse_contact(&json!({"id": 8, "isActive": 1, "primaryContact": true})).unwrap();
        assert_eq!((primary.name.as_str(), primary.active), ("Contact 8", true));
        assert_eq!(primary.primary_signals, [PRIMARY_SIGNAL]);
        assert!(AutotaskClient::parse_contact(&json!({"id": 9})).is_err(), "no isActive: not guessed");
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
