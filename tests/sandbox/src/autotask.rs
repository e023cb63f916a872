//! Autotask PSA REST (docs/vendors/autotask.md): zone lookup, header auth with the vendor's
//! 500-vs-401 quirks, `{"item"}`/`{"items","pageDetails"}` envelopes, JSON filter queries
//! with cursor paging, PATCH of configuration items, picklist metadata, the per-endpoint
//! thread limit and the rolling hourly request budget.
//!
//! Entities: `Companies`, `ConfigurationItems` and `Contracts`. Contracts (UNCONFIRMED but
//! plausible shape) are `{"id","companyID","contractName","contractType":1,"startDate",
//! "endDate","status"}` with dates `YYYY-MM-DDT00:00:00`; `status` is 1 active, 0 inactive
//! (cancelled). Autotask contracts always end, so an open-ended fixture contract renders
//! `endDate` `2099-12-31T00:00:00`. Filters compare date-times as case-insensitive strings,
//! which orders ISO-8601 values correctly (`{"op":"lt","field":"endDate","value":
//! "2026-11-22T00:00:00"}`). Contracts count against the thread limit under endpoint
//! `contracts` and against the hourly budget like every other entity.
//!
//! Contacts, tickets and ticket notes (docs/vendors/autotask.md#endpoints-used; workflow 001,
//! docs/workflows.md#001-contact-deactivation). All of them go through the same auth, thread limit
//! (endpoint = first path segment, so parent-path writes count under `companies` / `tickets`) and
//! hourly budget as every other route.
//! - `Contacts` `{"id","companyID","firstName","lastName","emailAddress","title","isActive":1|0,
//!   "primaryContact":bool,"createDate"}`: `isActive` is an **integer**. Queryable at top level
//!   (`/Contacts/query`, `GET /Contacts/{id}`); a boolean filter value on an integer field
//!   (`isActive eq true`) → 500.
//! - `PATCH /Companies/{companyID}/Contacts` `{"id",…}` → `{"itemId"}` (the child-entity rule):
//!   unknown company, unknown contact, or a contact of another company → 404; `isActive` other
//!   than the integer 1 or 0 (a boolean included) → 500; a changed `companyID` → 500; the
//!   `fail_contact_update` control → 500 with its message (the attempt is counted).
//! - `POST|PATCH|PUT|DELETE /Contacts` and `/TicketNotes` at top level → **405** `{"errors":
//!   ["The requested resource does not support http method '…'. … is a child entity: …"]}`
//!   (Autotask documents only that child entities are written through the parent,
//!   docs/vendors/autotask.md#child-entities; 405 is the sandbox's choice, recorded under
//!   `"{METHOD} /autotask/Contacts"`).
//! - `Tickets` `{"id","ticketNumber","title","description","companyID","contactID","status",
//!   "priority","queueID","assignedResourceID","assignedResourceRoleID","configurationItemID",
//!   "ticketType","ticketCategory","createDate"}`. Status picklist 1 New, 5 Complete (closed
//!   fixture tickets), 7 Waiting Customer, 8 In Progress; priority 1–4; `queueID` a picklist
//!   of the fixture boards (1 Service Desk, 4 Offboarding); resources are the fixture owners
//!   (11, 12) with role [`seed::AT_RESOURCE_ROLE`].
//! - `PATCH /Tickets` `{"id",…}` → `{"itemId"}`: only the fields sent change, `null` clears;
//!   unknown id → 404. Validation failures → 500 `{"errors":[…]}`: wrong types, picklist
//!   values, a `contactID` that does not exist or belongs to another company, an unknown
//!   resource, a role other than 8, and a resource sent without its role (or a role without
//!   its resource): "When assigning a Resource, you must assign both a assignedResourceID and
//!   assignedResourceRoleID."
//! - `POST /Tickets` → `{"itemId"}` (ids continue after the highest): required `companyID`
//!   (existing), `title`, `status`, `priority`; `queueID`, `contactID`, resource + role
//!   optional and validated as above.
//! - `TicketNotes` `{"id","ticketID","title","description","noteType","publish",
//!   "createDateTime","creatorResourceID"}`, queryable at top level; created only by `POST
//!   /Tickets/{id}/Notes` `{"title","description","noteType","publish"}` → `{"itemId"}`
//!   (unknown ticket → 404; `description`, `noteType` (1–3), `publish` (1 All Autotask Users,
//!   2 Internal Only) required → 500 otherwise; after [`AutotaskSim::fail_ticket_notes`]
//!   → 500 with the given message).
//! - `ConfigurationItems` carry `contactID` (the fixture's configuration contacts, else null);
//!   `PATCH /ConfigurationItems` accepts `contactID` null or a contact of the item's company
//!   (500 otherwise).
//!
//! Stats keys: `PATCH /autotask/Companies/{id}/Contacts`, `PATCH /autotask/Tickets`, `POST
//! /autotask/Tickets`, `POST /autotask/Tickets/{id}/Notes`, plus the generic
//! `/autotask/{Entity}/query`, `/autotask/{Entity}/{id}` keys.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::seed;

use crate::seed::{AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, ConfigState, Fixture};
use crate::window::RollingWindow;
use crate::{AT_PREFIX, PsaSim, Shared, json_response, json_status, query_map};

/// Concurrent requests allowed per (integration code, endpoint).
pub const AT_THREAD_LIMIT: usize = 3;
/// Records per query page, at most.
pub const AT_MAX_PAGE: usize = 500;
const HOUR: Duration = Duration::from_secs(3600);
const MAX_OR_CONDITIONS: usize = 500;

type ThreadMap = Arc<Mutex<HashMap<(String, String), usize>>>;

/// Ticket `status` of a complete (closed) ticket: the widely used value
/// (docs/vendors/autotask.md#picklists).
pub const AT_COMPLETE_STATUS: i64 = 5;
/// Ticket `status` of the fixture's open tickets ("New").
const AT_NEW_STATUS: i64 = 1;

struct AtData {
    companies: BTreeMap<i64, Value>,
    contracts: BTreeMap<i64, Value>,
    configs: BTreeMap<i64, Value>,
    update_failures: HashMap<i64, String>,
    update_counts: HashMap<i64, usize>,
    contacts: BTreeMap<i64, Value>,
    contact_failures: HashMap<i64, String>,
    contact_update_counts: HashMap<i64, usize>,
    tickets: BTreeMap<i64, Value>,
    /// Ticket notes, by note id; each carries its `ticketID`.
    notes: BTreeMap<i64, Value>,
}

/// Autotask's data and limits, reachable synchronously from tests.
pub struct AutotaskSim {
    data: Mutex<AtData>,
    hourly_limit: AtomicU32,
    window: RollingWindow,
    threads: ThreadMap,
    /// Set: every new ticket note is refused with this message (500).
    note_failure: Mutex<Option<String>>,
    /// Set: `GET /ThresholdInformation` answers this status (a database without the route).
    threshold_failure: Mutex<Option<StatusCode>>,
    /// The accepted API user's secret and integration code (the seed's until replaced).
    credentials: Mutex<(String, String)>,
    /// Company webhooks (`autotask_webhooks.rs`).
    pub(crate) webhooks: Mutex<crate::autotask_webhooks::AtWebhooks>,
}

/// An Autotask contact: `isActive` is an integer 1/0 (docs/vendors/autotask.md#field-types).
fn at_contact(c: &seed::Contact) -> Value {
    json!({
        "id": c.id, "companyID": c.company_id, "firstName": c.first_name, "lastName": c.last_name,
        "emailAddress": c.email, "title": c.title, "isActive": i64::from(c.active), "primaryContact": c.primary,
        "createDate": "2024-01-15T09:00:00Z", "userDefinedFields": [],
    })
}

/// An Autotask ticket: open ones are status 1 (New), closed ones 5 (Complete); owners get
/// role [`seed::AT_RESOURCE_ROLE`]; the board is the queue.
fn at_ticket(t: &seed::Ticket) -> Value {
    json!({
        "id": t.id, "ticketNumber": ticket_number(t.id), "title": t.summary, "description": "",
        "companyID": t.company_id, "contactID": t.contact_id,
        "status": if t.closed { AT_COMPLETE_STATUS } else { AT_NEW_STATUS }, "priority": 2, "queueID": t.board_id,
        "assignedResourceID": t.owner_id, "assignedResourceRoleID": t.owner_id.map(|_| seed::AT_RESOURCE_ROLE),
        "configurationItemID": null, "ticketType": 1, "ticketCategory": 3, "createDate": "2026-10-01T09:00:00Z",
    })
}

fn ticket_number(id: i64) -> String {
    format!("T20261001.{:04}", id % 10_000)
}

/// Autotask `configurationItemType` of a neutral type name.
fn ci_type(type_name: &str) -> i64 {
    match type_name.to_ascii_lowercase().as_str() {
        "workstation" => 1,
        "server" => 2,
        "laptop" => 3,
        "firewall" | "network switch" | "network" => 4,
        "storage" => 5,
        "tablet" => 6,
        "backup" => 7,
        _ => 8,
    }
}

impl AutotaskSim {
    pub(crate) fn new(fx: &Fixture, hourly_limit: u32) -> Self {
        let companies = fx
            .companies
            .iter()
            .map(|c| {
                let (company_type, classification) = if c.offboarded { (6, 101) } else { (1, 100) };
                let company = json!({
                    "id": c.id, "companyName": c.name, "companyNumber": c.identifier,
                    "companyType": company_type, "classification": classification, "isActive": !c.offboarded,
                    "ownerResourceID": 29682885, "parentCompanyID": null,
                    "createDate": "2024-01-15T09:00:00Z", "userDefinedFields": [],
                });
                (c.id, company)
            })
            .collect();
        let configs = fx
            .configurations
            .iter()
            .map(|c| {
                let item_type = if c.state == ConfigState::Disposed { 9 } else { ci_type(&c.type_name) };
                let config = json!({
                    "id": c.id, "companyID": c.company_id, "isActive": c.state.is_active(),
                    "referenceTitle": c.name, "referenceNumber": format!("T{}", c.id),
                    "serialNumber": format!("SN{:08}", c.id), "configurationItemType": item_type,
                    "productID": 1000 + ci_type(&c.type_name),
                    "contactID": fx.configuration_contacts.get(&c.id), "parentConfigurationItemID": null,
                    "installDate": "2024-03-01T00:00:00Z", "userDefinedFields": [],
                });
                (c.id, config)
            })
            .collect();
        Self {
            data: Mutex::new(AtData {
                companies,
                contracts: fx.contracts.iter().map(|c| (c.id, seed::at_contract(c))).collect(),
                configs,
                update_failures: HashMap::new(),
                update_counts: HashMap::new(),
                contacts: fx.contacts.iter().map(|c| (c.id, at_contact(c))).collect(),
                contact_failures: HashMap::new(),
                contact_update_counts: HashMap::new(),
                tickets: fx.tickets.iter().map(|t| (t.id, at_ticket(t))).collect(),
                notes: BTreeMap::new(),
            }),
            hourly_limit: AtomicU32::new(hourly_limit),
            window: RollingWindow::new(HOUR),
            threads: Arc::new(Mutex::new(HashMap::new())),
            note_failure: Mutex::new(None),
            threshold_failure: Mutex::new(None),
            credentials: Mutex::new((AT_SECRET.to_string(), AT_INTEGRATION_CODE.to_string())),
            webhooks: Mutex::new(Default::default()),
        }
    }

    /// Every company webhook with its `fields` and `excludedResources` (secret key included).
    pub fn company_webhooks(&self) -> Vec<Value> {
        self.webhooks.lock().unwrap_or_else(|e| e.into_inner()).snapshot()
    }

    /// From now on `GET /ThresholdInformation` answers `status` with an `errors` body
    /// (`None`: it answers again). The request still counts against the hourly budget.
    /// From now on only this secret and integration code are accepted (a rotated credential).
    pub fn rotate_credentials(&self, secret: &str, integration_code: &str) {
        *self.credentials.lock().unwrap_or_else(|e| e.into_inner()) =
            (secret.to_string(), integration_code.to_string());
    }

    pub fn fail_threshold_information(&self, status: Option<u16>) {
        let status = status.map(|s| StatusCode::from_u16(s).expect("a valid HTTP status"));
        *self.threshold_failure.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// From now on `POST /Tickets/{id}/Notes` answers 500 with `message` (`None`: notes
    /// are accepted again). Tickets can still be created.
    pub fn fail_ticket_notes(&self, message: Option<&str>) {
        *self.note_failure.lock().unwrap_or_else(|e| e.into_inner()) = message.map(str::to_string);
    }

    pub(crate) fn add_contract(&self, contract: &seed::Contract) {
        self.with(|d| d.contracts.insert(contract.id, seed::at_contract(contract)));
    }

    fn with<T>(&self, f: impl FnOnce(&mut AtData) -> T) -> T {
        f(&mut self.data.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn company(&self, id: i64) -> Option<Value> {
        self.with(|d| d.companies.get(&id).cloned())
    }

    pub fn configuration(&self, id: i64) -> Option<Value> {
        self.with(|d| d.configs.get(&id).cloned())
    }

    /// A contact as `GET /Contacts/{id}` renders it (without the `item` envelope).
    pub fn contact(&self, id: i64) -> Option<Value> {
        self.with(|d| d.contacts.get(&id).cloned())
    }

    /// A ticket as `GET /Tickets/{id}` renders it (without the `item` envelope).
    pub fn ticket_record(&self, id: i64) -> Option<Value> {
        self.with(|d| d.tickets.get(&id).cloned())
    }

    /// The notes of a ticket as `TicketNotes` renders them, oldest first.
    pub fn ticket_notes(&self, ticket_id: i64) -> Vec<Value> {
        self.with(|d| d.notes.values().filter(|n| n["ticketID"] == json!(ticket_id)).cloned().collect())
    }

    /// A contract as `GET /Contracts/{id}` renders it (without the `item` envelope).
    pub fn contract(&self, id: i64) -> Option<Value> {
        self.with(|d| d.contracts.get(&id).cloned())
    }

    pub fn configurations_of(&self, company_id: i64) -> Vec<Value> {
        self.with(|d| d.configs.values().filter(|c| c["companyID"] == json!(company_id)).cloned().collect())
    }

    pub fn hourly_limit(&self) -> u32 {
        self.hourly_limit.load(Ordering::SeqCst)
    }

    pub fn set_hourly_limit(&self, limit: u32) {
        self.hourly_limit.store(limit, Ordering::SeqCst);
    }

    /// Requests counted against the hourly budget in the last rolling hour.
    pub fn requests_in_last_hour(&self) -> usize {
        self.window.len()
    }

    /// Requests currently holding a thread slot (all integration codes and endpoints).
    pub fn threads_in_use(&self) -> usize {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    /// Counts the request against the hourly budget; `Err(limit)` when it is spent.
    fn admit_hourly(&self) -> Result<(), u32> {
        let limit = self.hourly_limit();
        if self.window.admit(limit) { Ok(()) } else { Err(limit) }
    }

    /// The "hour" of the budget (default 3600 s): tests shorten it to reach the limit fast.
    pub fn set_hourly_window(&self, length: Duration) {
        self.window.set_length(length);
    }

    /// Another integration of the same database sends `n` requests now: they count toward
    /// the hourly threshold (and `ThresholdInformation`) like ours.
    pub fn record_foreign_requests(&self, n: usize) {
        self.window.record_foreign(n);
    }
}

impl PsaSim for AutotaskSim {
    fn kind(&self) -> &'static str {
        "autotask"
    }

    fn configuration_is_active(&self, id: i64) -> Option<bool> {
        self.configuration(id).map(|c| c["isActive"].as_bool().unwrap_or(false))
    }

    fn set_configuration_active(&self, id: i64, active: bool) {
        self.with(|d| {
            if let Some(config) = d.configs.get_mut(&id) {
                config["isActive"] = json!(active);
            }
        })
    }

    fn delete_configuration(&self, id: i64) {
        self.with(|d| d.configs.remove(&id));
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
        self.configurations_of(company_id).iter().filter_map(|c| c["id"].as_i64()).collect()
    }

    fn contact_is_active(&self, id: i64) -> Option<bool> {
        self.contact(id).map(|c| c["isActive"].as_i64() == Some(1))
    }

    fn set_contact_active(&self, id: i64, active: bool) {
        self.with(|d| {
            if let Some(contact) = d.contacts.get_mut(&id) {
                contact["isActive"] = json!(i64::from(active));
            }
        })
    }

    fn delete_contact(&self, id: i64) {
        self.with(|d| d.contacts.remove(&id));
    }

    fn fail_contact_update(&self, id: i64, message: &str) {
        self.with(|d| d.contact_failures.insert(id, message.to_string()));
    }

    fn clear_contact_failures(&self) {
        self.with(|d| d.contact_failures.clear());
    }

    fn contact_update_count(&self, id: i64) -> usize {
        self.with(|d| d.contact_update_counts.get(&id).copied().unwrap_or(0))
    }

    fn contact_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.with(|d| {
            d.contacts
                .values()
                .filter(|c| c["companyID"] == json!(company_id))
                .filter_map(|c| c["id"].as_i64())
                .collect()
        })
    }

    fn ticket(&self, id: i64) -> Option<crate::TicketView> {
        self.with(|d| {
            let t = d.tickets.get(&id)?;
            let notes = d
                .notes
                .values()
                .filter(|n| n["ticketID"] == json!(id))
                .map(|n| n["description"].as_str().unwrap_or_default().to_string())
                .collect();
            Some(crate::TicketView {
                id,
                company_id: t["companyID"].as_i64().unwrap_or_default(),
                summary: t["title"].as_str().unwrap_or_default().to_string(),
                contact_id: t["contactID"].as_i64(),
                owner_id: t["assignedResourceID"].as_i64(),
                board_id: t["queueID"].as_i64(),
                closed: t["status"].as_i64() == Some(AT_COMPLETE_STATUS),
                notes,
            })
        })
    }

    fn set_ticket_contact(&self, id: i64, contact_id: Option<i64>) {
        self.with(|d| {
            if let Some(ticket) = d.tickets.get_mut(&id) {
                ticket["contactID"] = json!(contact_id);
            }
        })
    }

    fn ticket_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.with(|d| {
            d.tickets
                .values()
                .filter(|t| t["companyID"] == json!(company_id))
                .filter_map(|t| t["id"].as_i64())
                .collect()
        })
    }

    fn configuration_contact(&self, id: i64) -> Option<i64> {
        self.configuration(id).and_then(|c| c["contactID"].as_i64())
    }

    fn set_configuration_contact(&self, id: i64, contact_id: Option<i64>) {
        self.with(|d| {
            if let Some(config) = d.configs.get_mut(&id) {
                config["contactID"] = json!(contact_id);
            }
        })
    }
}

/// A taken thread slot; gives it back when dropped.
pub(crate) struct ThreadSlot {
    threads: ThreadMap,
    key: (String, String),
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = threads.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                threads.remove(&self.key);
            }
        }
    }
}

/// Takes one of the 3 thread slots of (integration code, endpoint) or answers 429.
pub(crate) fn acquire_thread(shared: &Shared, path: &str, headers: &HeaderMap) -> Result<ThreadSlot, Box<Response>> {
    let code = header(headers, "apiintegrationcode").unwrap_or_default().to_string();
    let endpoint = path.trim_start_matches('/').split('/').next().unwrap_or_default().to_ascii_lowercase();
    let key = (code, endpoint);
    let threads = shared.at.threads.clone();
    {
        let mut map = threads.lock().unwrap_or_else(|e| e.into_inner());
        let in_use = map.entry(key.clone()).or_default();
        if *in_use >= AT_THREAD_LIMIT {
            drop(map);
            let mut stats = shared.stats();
            stats.throttled += 1;
            stats.thread_limit_rejections += 1;
            return Err(Box::new(at_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Thread Threshold Exceeded - The Autotask API thread threshold of {AT_THREAD_LIMIT} threads has been exceeded"
                ),
            )));
        }
        *in_use += 1;
    }
    Ok(ThreadSlot { threads, key })
}

pub(crate) fn at_error(status: StatusCode, message: &str) -> Response {
    json_status(status, &json!({ "errors": [message] }))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|h| h.to_str().ok())
}

/// The response to answer, if the request's credentials are not the sandbox's.
fn auth_failure(sim: &AutotaskSim, headers: &HeaderMap) -> Option<Response> {
    let (Some(user), Some(code), Some(secret)) =
        (header(headers, "username"), header(headers, "apiintegrationcode"), header(headers, "secret"))
    else {
        return Some(at_error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    };
    if !user.eq_ignore_ascii_case(AT_USERNAME) {
        return Some(at_error(StatusCode::INTERNAL_SERVER_ERROR, "Unable to authenticate: the user name is not valid"));
    }
    // The refusals echo what was presented, as some real APIs do: a client must not let it
    // reach its logs or reports.
    let (accepted_secret, accepted_code) = sim.credentials.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if code != accepted_code {
        return Some(at_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Unable to authenticate: the integration code {code} is not valid"),
        ));
    }
    if secret != accepted_secret {
        return Some(at_error(StatusCode::UNAUTHORIZED, &format!("Unauthorized: secret '{secret}' for user {user}")));
    }
    None
}

/// The zone-lookup service (no auth, exempt from the limits); `path` follows `/atservicesrest`.
pub(crate) fn zone_route(shared: &Shared, method: &Method, path: &str, uri: &Uri, host: &str) -> Response {
    let lower = path.trim_end_matches('/').to_ascii_lowercase();
    match (method.as_str(), lower.as_str()) {
        ("GET", "/v1.0/zoneinformation") => {
            shared.record_route(method, "/autotask/zoneInformation");
            let user = query_map(uri).remove("user").unwrap_or_default();
            if user.eq_ignore_ascii_case(AT_USERNAME) {
                json_response(&json!({
                    "zoneName": "Sandbox Zone 5",
                    "url": format!("http://{host}{AT_PREFIX}/"),
                    "webUrl": format!("http://{host}/at5/"),
                    "ci": 5,
                }))
            } else {
                at_error(StatusCode::NOT_FOUND, &format!("Zone information could not be determined for user {user}"))
            }
        }
        ("GET", "/versioninformation") => {
            shared.record_route(method, "/autotask/versionInformation");
            json_response(&json!({ "apiVersions": ["1.0"] }))
        }
        _ => at_error(StatusCode::NOT_FOUND, &format!("No route for {method} {path}")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Entity {
    Companies,
    ConfigurationItems,
    Contracts,
    Contacts,
    Tickets,
    TicketNotes,
}

impl Entity {
    fn parse(segment: &str) -> Option<Entity> {
        match segment.to_ascii_lowercase().as_str() {
            "companies" => Some(Entity::Companies),
            "configurationitems" => Some(Entity::ConfigurationItems),
            "contracts" => Some(Entity::Contracts),
            "contacts" => Some(Entity::Contacts),
            "tickets" => Some(Entity::Tickets),
            "ticketnotes" => Some(Entity::TicketNotes),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Entity::Companies => "Companies",
            Entity::ConfigurationItems => "ConfigurationItems",
            Entity::Contracts => "Contracts",
            Entity::Contacts => "Contacts",
            Entity::Tickets => "Tickets",
            Entity::TicketNotes => "TicketNotes",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Entity::Companies => "Company",
            Entity::ConfigurationItems => "ConfigurationItem",
            Entity::Contracts => "Contract",
            Entity::Contacts => "Contact",
            Entity::Tickets => "Ticket",
            Entity::TicketNotes => "TicketNote",
        }
    }

    fn records<T>(self, data: &AtData, f: impl FnOnce(&BTreeMap<i64, Value>) -> T) -> T {
        match self {
            Entity::Companies => f(&data.companies),
            Entity::ConfigurationItems => f(&data.configs),
            Entity::Contracts => f(&data.contracts),
            Entity::Contacts => f(&data.contacts),
            Entity::Tickets => f(&data.tickets),
            Entity::TicketNotes => f(&data.notes),
        }
    }

    /// A child entity: queried at top level, written only through its parent's path.
    fn parent_path(self) -> Option<&'static str> {
        match self {
            Entity::Contacts => Some("/Companies/{parentId}/Contacts"),
            Entity::TicketNotes => Some("/Tickets/{parentId}/Notes"),
            _ => None,
        }
    }

    /// `(name, dataType, isReadOnly, isRequired, referenceEntityType, picklist)`.
    #[allow(clippy::type_complexity)]
    fn field_specs(self) -> Vec<(&'static str, &'static str, bool, bool, &'static str, Vec<(i64, &'static str)>)> {
        match self {
            Entity::Companies => vec![
                ("id", "long", true, true, "", vec![]),
                ("companyName", "string", false, true, "", vec![]),
                ("companyNumber", "string", false, false, "", vec![]),
                (
                    "companyType",
                    "integer",
                    false,
                    true,
                    "",
                    vec![
                        (1, "Customer"),
                        (2, "Lead"),
                        (3, "Prospect"),
                        (4, "Dead"),
                        (6, "Cancellation"),
                        (7, "Vendor"),
                        (8, "Partner"),
                    ],
                ),
                ("classification", "integer", false, false, "", vec![(100, "Standard"), (101, "Offboarded")]),
                ("isActive", "boolean", false, true, "", vec![]),
                ("ownerResourceID", "integer", false, true, "Resource", vec![]),
                ("parentCompanyID", "integer", false, false, "Company", vec![]),
                ("createDate", "datetime", true, false, "", vec![]),
            ],
            Entity::ConfigurationItems => vec![
                ("id", "long", true, true, "", vec![]),
                ("companyID", "integer", false, true, "Company", vec![]),
                ("isActive", "boolean", false, true, "", vec![]),
                ("referenceTitle", "string", false, false, "", vec![]),
                ("referenceNumber", "string", false, false, "", vec![]),
                ("serialNumber", "string", false, false, "", vec![]),
                (
                    "configurationItemType",
                    "integer",
                    false,
                    false,
                    "",
                    vec![
                        (1, "Workstation"),
                        (2, "Server"),
                        (3, "Laptop"),
                        (4, "Network"),
                        (5, "Storage"),
                        (6, "Tablet"),
                        (7, "Backup"),
                        (8, "Other"),
                        (9, "Retired"),
                    ],
                ),
                ("productID", "integer", false, true, "Product", vec![]),
                ("contactID", "integer", false, false, "Contact", vec![]),
                ("parentConfigurationItemID", "integer", false, false, "ConfigurationItem", vec![]),
                ("installDate", "datetime", false, false, "", vec![]),
            ],
            Entity::Contracts => vec![
                ("id", "long", true, true, "", vec![]),
                ("companyID", "integer", false, true, "Company", vec![]),
                ("contractName", "string", false, true, "", vec![]),
                ("contractType", "integer", false, true, "", vec![(1, "Time & Materials"), (7, "Recurring Service")]),
                ("startDate", "datetime", false, true, "", vec![]),
                ("endDate", "datetime", false, true, "", vec![]),
                ("status", "integer", false, true, "", vec![(0, "Inactive"), (1, "Active")]),
            ],
            Entity::Contacts => vec![
                ("id", "long", true, true, "", vec![]),
                ("companyID", "integer", false, true, "Company", vec![]),
                ("firstName", "string", false, true, "", vec![]),
                ("lastName", "string", false, true, "", vec![]),
                ("emailAddress", "string", false, false, "", vec![]),
                ("title", "string", false, false, "", vec![]),
                ("isActive", "integer", false, true, "", vec![]),
                ("primaryContact", "boolean", false, false, "", vec![]),
                ("createDate", "datetime", true, false, "", vec![]),
            ],
            Entity::Tickets => vec![
                ("id", "long", true, true, "", vec![]),
                ("ticketNumber", "string", true, false, "", vec![]),
                ("title", "string", false, true, "", vec![]),
                ("description", "string", false, false, "", vec![]),
                ("companyID", "integer", false, true, "Company", vec![]),
                ("contactID", "integer", false, false, "Contact", vec![]),
                (
                    "status",
                    "integer",
                    false,
                    true,
                    "",
                    vec![(1, "New"), (AT_COMPLETE_STATUS, "Complete"), (7, "Waiting Customer"), (8, "In Progress")],
                ),
                ("priority", "integer", false, true, "", vec![(1, "High"), (2, "Medium"), (3, "Low"), (4, "Critical")]),
                ("queueID", "integer", false, false, "", seed::BOARDS.to_vec()),
                ("assignedResourceID", "integer", false, false, "Resource", vec![]),
                ("assignedResourceRoleID", "integer", false, false, "Role", vec![]),
                ("configurationItemID", "integer", false, false, "ConfigurationItem", vec![]),
                ("ticketType", "integer", false, false, "", vec![(1, "Service Request"), (2, "Incident")]),
                ("ticketCategory", "integer", false, false, "", vec![(3, "Standard")]),
                ("createDate", "datetime", true, false, "", vec![]),
            ],
            Entity::TicketNotes => vec![
                ("id", "long", true, true, "", vec![]),
                ("ticketID", "integer", true, true, "Ticket", vec![]),
                ("title", "string", false, false, "", vec![]),
                ("description", "string", false, true, "", vec![]),
                (
                    "noteType",
                    "integer",
                    false,
                    true,
                    "",
                    vec![(1, "Task Detail"), (2, "Task Summary"), (3, "Task Notes")],
                ),
                ("publish", "integer", false, true, "", vec![(1, "All Autotask Users"), (2, "Internal Only")]),
                ("createDateTime", "datetime", true, false, "", vec![]),
                ("creatorResourceID", "integer", true, false, "Resource", vec![]),
            ],
        }
    }

    fn fields_json(self) -> Value {
        let fields: Vec<Value> = self
            .field_specs()
            .into_iter()
            .map(|(name, data_type, read_only, required, reference, picklist)| {
                let values: Vec<Value> = picklist
                    .iter()
                    .enumerate()
                    .map(|(i, (value, label))| {
                        json!({"value": value.to_string(), "label": label, "valueSortOrder": i, "parentValue": "",
                               "isDefaultValue": i == 0, "isSystem": true, "isActive": true})
                    })
                    .collect();
                json!({
                    "name": name, "dataType": data_type, "length": if data_type == "string" { 100 } else { 0 },
                    "isRequired": required, "isReadOnly": read_only, "isQueryable": true,
                    "isReference": !reference.is_empty(), "referenceEntityType": reference,
                    "isPickList": !values.is_empty(),
                    "picklistValues": if values.is_empty() { Value::Null } else { Value::Array(values) },
                    "picklistParentValueField": "", "isSupportedWebhookField": true,
                })
            })
            .collect();
        json!({ "fields": fields })
    }

    /// The canonical name of a field, matched ignoring case.
    fn field(self, name: &str) -> Option<(&'static str, bool)> {
        self.field_specs().into_iter().find(|f| f.0.eq_ignore_ascii_case(name)).map(|f| (f.0, f.2))
    }

    /// The `dataType` of a field (`integer`, `long`, `boolean`, `string`, `datetime`).
    fn data_type(self, name: &str) -> &'static str {
        self.field_specs().into_iter().find(|f| f.0.eq_ignore_ascii_case(name)).map_or("", |f| f.1)
    }
}

/// A request under the zone's API prefix; `path` is the part after it.
pub(crate) fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    body: &Bytes,
) -> Response {
    if let Some(response) = auth_failure(&shared.at, headers) {
        return response;
    }
    if let Err(limit) = shared.at.admit_hourly() {
        shared.stats().throttled += 1;
        return at_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("The request threshold of {limit} requests per hour has been exceeded"),
        );
    }
    let segments: Vec<String> = path.trim_matches('/').split('/').map(|s| s.to_ascii_lowercase()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let not_found = || at_error(StatusCode::NOT_FOUND, &format!("No route for {method} {path}"));
    if let (m, ["thresholdinformation"]) = (method.as_str(), segments.as_slice()) {
        if m != "GET" {
            return not_found();
        }
        shared.record_route(method, "/autotask/ThresholdInformation");
        if let Some(status) = *shared.at.threshold_failure.lock().unwrap_or_else(|e| e.into_inner()) {
            return at_error(status, "No route for GET /ThresholdInformation");
        }
        return json_response(&json!({
            "externalRequestThreshold": shared.at.hourly_limit(),
            "requestThresholdTimeframe": 60,
            "currentTimeframeRequestCount": shared.at.requests_in_last_hour(),
        }));
    }
    if let Some(response) = crate::autotask_webhooks::route(shared, method, &segments, body) {
        return response;
    }
    let Some(entity) = segments.first().and_then(|s| Entity::parse(s)) else {
        return not_found();
    };
    let name = entity.name();
    let query = query_map(uri);
    match (method.as_str(), &segments[1..]) {
        ("GET", [id]) if id.parse::<i64>().is_ok() => {
            shared.record_route(method, &format!("/autotask/{name}/{{id}}"));
            let id: i64 = id.parse().unwrap_or_default();
            match shared.at.with(|d| entity.records(d, |r| r.get(&id).cloned())) {
                Some(item) => json_response(&json!({ "item": item })),
                None => at_error(StatusCode::NOT_FOUND, &format!("{} with id {id} not found", entity.singular())),
            }
        }
        ("GET", ["entityinformation"]) => {
            shared.record_route(method, &format!("/autotask/{name}/entityInformation"));
            json_response(&json!({ "info": {
                "name": entity.singular(), "canCreate": true, "canDelete": false, "canQuery": true, "canUpdate": true,
                "userAccessForCreate": "All", "userAccessForDelete": "None", "userAccessForQuery": "All",
                "userAccessForUpdate": "All", "hasUserDefinedFields": true, "supportsWebhookCallouts": true,
            }}))
        }
        ("GET", ["entityinformation", "fields"]) => {
            shared.record_route(method, &format!("/autotask/{name}/entityInformation/fields"));
            json_response(&entity.fields_json())
        }
        ("GET" | "POST", ["query"]) => {
            shared.record_route(method, &format!("/autotask/{name}/query"));
            match query_spec(method, &query, body) {
                Ok(spec) => run_query(shared, entity, spec, None, host),
                Err(message) => at_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
            }
        }
        ("GET" | "POST", ["query", "count"]) => {
            shared.record_route(method, &format!("/autotask/{name}/query/count"));
            let counted = query_spec(method, &query, body).and_then(|spec| compile(entity, &spec)).map(|filter| {
                shared.at.with(|d| entity.records(d, |records| records.values().filter(|r| filter.matches(r)).count()))
            });
            match counted {
                Ok(n) => json_response(&json!({ "queryCount": n })),
                Err(message) => at_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
            }
        }
        ("GET" | "POST", ["query", "next"]) => {
            shared.record_route(method, &format!("/autotask/{name}/query/next"));
            let cursor = match query.get("paging").map(|p| Cursor::decode(p)) {
                Some(Some(cursor)) => cursor,
                _ => return at_error(StatusCode::INTERNAL_SERVER_ERROR, "The paging parameter is missing or invalid"),
            };
            // The search in the URL wins; a POST may re-send the original body instead.
            let spec = if query.contains_key("search") {
                query_spec(&Method::GET, &query, body)
            } else {
                query_spec(&Method::POST, &query, body)
            };
            match spec {
                Ok(spec) => run_query(shared, entity, spec, Some(cursor), host),
                Err(message) => at_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
            }
        }
        ("PATCH", []) if entity == Entity::ConfigurationItems => {
            shared.record_route(method, &format!("/autotask/{name}"));
            patch_configuration(shared, body)
        }
        ("PATCH", []) if entity == Entity::Tickets => {
            shared.record_route(method, "/autotask/Tickets");
            patch_ticket(shared, body)
        }
        ("POST", []) if entity == Entity::Tickets => {
            shared.record_route(method, "/autotask/Tickets");
            create_ticket(shared, body)
        }
        ("POST" | "PATCH" | "PUT" | "DELETE", []) if entity.parent_path().is_some() => {
            // The child-entity rule (docs/vendors/autotask.md#child-entities): 405, in Autotask's
            // error shape.
            shared.record_route(method, &format!("/autotask/{name}"));
            let parent = entity.parent_path().unwrap_or_default();
            at_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "The requested resource does not support http method '{method}'. {name} is a child entity: \
                     create, update and delete it through {parent}"
                ),
            )
        }
        ("PATCH", [company, "contacts"]) if entity == Entity::Companies => {
            shared.record_route(method, "/autotask/Companies/{id}/Contacts");
            match company.parse::<i64>() {
                Ok(company) => patch_contact(shared, company, body),
                Err(_) => not_found(),
            }
        }
        ("POST", [ticket, "notes"]) if entity == Entity::Tickets => {
            shared.record_route(method, "/autotask/Tickets/{id}/Notes");
            match ticket.parse::<i64>() {
                Ok(ticket) => create_note(shared, ticket, body),
                Err(_) => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// A parsed query: the raw JSON (for page URLs), the filter, the projection, the page size.
struct QuerySpec {
    raw: Value,
    filter: Vec<Value>,
    include: Option<Vec<String>>,
    page_size: usize,
}

fn get_ci<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn query_spec(method: &Method, query: &HashMap<String, String>, body: &Bytes) -> Result<QuerySpec, String> {
    let raw: Value = if method == Method::GET {
        let search = query.get("search").ok_or("A filter is required")?;
        serde_json::from_str(search).map_err(|e| format!("Unable to parse the search parameter: {e}"))?
    } else {
        serde_json::from_slice(body).map_err(|e| format!("Unable to parse the query body: {e}"))?
    };
    if !raw.is_object() {
        return Err("The query must be a JSON object".into());
    }
    let filter = match get_ci(&raw, "filter") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err("filter must be an array".into()),
    };
    if filter.is_empty() {
        return Err("A filter is required".into());
    }
    let include = match get_ci(&raw, "includeFields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(fields)) if fields.is_empty() => None,
        Some(Value::Array(fields)) => Some(
            fields
                .iter()
                .map(|f| f.as_str().map(str::to_string).ok_or("includeFields must be strings"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("includeFields must be an array".into()),
    };
    let page_size = match get_ci(&raw, "MaxRecords") {
        None | Some(Value::Null) => AT_MAX_PAGE,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => (n as usize).min(AT_MAX_PAGE),
            _ => return Err("MaxRecords must be an integer between 1 and 500".into()),
        },
    };
    Ok(QuerySpec { raw, filter, include, page_size })
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

enum Filter {
    Group { any: bool, items: Vec<Filter> },
    Compare { field: &'static str, op: Op, value: Value },
}

fn compile_filter(entity: Entity, item: &Value, or_conditions: &mut usize) -> Result<Filter, String> {
    let op_name = get_ci(item, "op").and_then(Value::as_str).ok_or("Every filter needs an op")?;
    let lower = op_name.to_ascii_lowercase();
    if lower == "and" || lower == "or" {
        let items = get_ci(item, "items").and_then(Value::as_array).filter(|i| !i.is_empty());
        let items = items.ok_or_else(|| format!("The {op_name} group requires a non-empty items array"))?;
        if lower == "or" {
            *or_conditions += items.len();
            if *or_conditions > MAX_OR_CONDITIONS {
                return Err(format!("A query may contain at most {MAX_OR_CONDITIONS} OR conditions"));
            }
        }
        let items = items.iter().map(|i| compile_filter(entity, i, or_conditions)).collect::<Result<_, _>>()?;
        return Ok(Filter::Group { any: lower == "or", items });
    }
    let op = match lower.as_str() {
        "eq" => Op::Eq,
        "noteq" => Op::NotEq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "beginswith" => Op::BeginsWith,
        "endswith" => Op::EndsWith,
        "contains" => Op::Contains,
        "exist" => Op::Exist,
        "notexist" => Op::NotExist,
        "in" => Op::In,
        "notin" => Op::NotIn,
        _ => return Err(format!("Invalid filter operator: {op_name}")),
    };
    if get_ci(item, "udf").and_then(Value::as_bool) == Some(true) {
        return Err("User-defined field filters are not supported for this entity".into());
    }
    let field_name = get_ci(item, "field").and_then(Value::as_str).ok_or("Every filter condition needs a field")?;
    let (field, _) = entity
        .field(field_name)
        .ok_or_else(|| format!("Unable to find {field_name} in the {} entity.", entity.singular()))?;
    let value = get_ci(item, "value").cloned().unwrap_or(Value::Null);
    // Typed columns: a boolean cannot be compared with an integer field (contacts' `isActive`).
    let numeric = matches!(entity.data_type(field), "integer" | "long");
    let has_bool = value.is_boolean() || value.as_array().is_some_and(|v| v.iter().any(Value::is_boolean));
    if numeric && has_bool {
        return Err(format!("Unable to convert the value {value} of the {op_name} filter on {field} to an integer"));
    }
    match op {
        Op::Exist | Op::NotExist => {}
        Op::In | Op::NotIn if !value.as_array().is_some_and(|v| !v.is_empty() && v.iter().all(|x| !x.is_null())) => {
            return Err(format!("The {op_name} operator on {field} requires a non-empty array of values"));
        }
        Op::In | Op::NotIn => {}
        _ if value.is_null() => return Err(format!("The value of the {op_name} filter on {field} cannot be null")),
        _ if value.is_array() || value.is_object() => {
            return Err(format!("The value of the {op_name} filter on {field} must be a single value"));
        }
        _ => {}
    }
    Ok(Filter::Compare { field, op, value })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Autotask sits on SQL Server: strings compare ignoring case; numbers in strings coerce.
fn compare(actual: &Value, wanted: &Value) -> Option<CmpOrdering> {
    match (actual, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::Number(a), Value::String(b)) => a.as_f64()?.partial_cmp(&b.trim().parse::<f64>().ok()?),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::String(b)) => Some(a.cmp(&b.trim().to_ascii_lowercase().parse::<bool>().ok()?)),
        (Value::String(_), Value::String(_) | Value::Number(_)) => Some(text(actual)?.cmp(&text(wanted)?)),
        _ => None,
    }
}

impl Filter {
    fn matches(&self, record: &Value) -> bool {
        match self {
            Filter::Group { any: true, items } => items.iter().any(|f| f.matches(record)),
            Filter::Group { any: false, items } => items.iter().all(|f| f.matches(record)),
            Filter::Compare { field, op, value } => {
                let actual = record.get(*field).unwrap_or(&Value::Null);
                let ordering = || compare(actual, value);
                let texts = || text(actual).zip(text(value));
                let is_in = || {
                    value.as_array().is_some_and(|v| v.iter().any(|w| compare(actual, w).is_some_and(|o| o.is_eq())))
                };
                match op {
                    Op::Eq => ordering().is_some_and(|o| o.is_eq()),
                    Op::NotEq => !ordering().is_some_and(|o| o.is_eq()),
                    Op::Gt => ordering().is_some_and(|o| o.is_gt()),
                    Op::Gte => ordering().is_some_and(|o| o.is_ge()),
                    Op::Lt => ordering().is_some_and(|o| o.is_lt()),
                    Op::Lte => ordering().is_some_and(|o| o.is_le()),
                    Op::BeginsWith => texts().is_some_and(|(a, w)| a.starts_with(&w)),
                    Op::EndsWith => texts().is_some_and(|(a, w)| a.ends_with(&w)),
                    Op::Contains => texts().is_some_and(|(a, w)| a.contains(&w)),
                    Op::Exist => !actual.is_null() && actual != &json!(""),
                    Op::NotExist => actual.is_null() || actual == &json!(""),
                    Op::In => is_in(),
                    Op::NotIn => !is_in(),
                }
            }
        }
    }
}

/// The spec's filter as one AND group (top-level items are ANDed).
fn compile(entity: Entity, spec: &QuerySpec) -> Result<Filter, String> {
    let mut or_conditions = 0;
    let items = spec.filter.iter().map(|i| compile_filter(entity, i, &mut or_conditions)).collect::<Result<_, _>>()?;
    Ok(Filter::Group { any: false, items })
}

/// Keyset paging: the page after or before an id.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    After(i64),
    Before(i64),
}

impl Cursor {
    fn encode(self) -> String {
        let json = match self {
            Cursor::After(id) => json!({ "after": id }),
            Cursor::Before(id) => json!({ "before": id }),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn decode(text: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let json: Value = serde_json::from_slice(&bytes).ok()?;
        if let Some(id) = json["after"].as_i64() {
            Some(Cursor::After(id))
        } else {
            json["before"].as_i64().map(Cursor::Before)
        }
    }
}

fn project(record: &Value, include: &Option<Vec<String>>) -> Value {
    let Some(fields) = include else { return record.clone() };
    let mut out = Map::new();
    if let Some(object) = record.as_object() {
        for (key, value) in object {
            if key == "id" || fields.iter().any(|f| f.eq_ignore_ascii_case(key)) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

fn run_query(shared: &Shared, entity: Entity, spec: QuerySpec, cursor: Option<Cursor>, host: &str) -> Response {
    let filter = match compile(entity, &spec) {
        Ok(filter) => filter,
        Err(message) => return at_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
    };
    let n = spec.page_size;
    let (page, has_prev, has_next) = shared.at.with(|d| {
        entity.records(d, |records| {
            let matches: Vec<&Value> = records.values().filter(|r| filter.matches(r)).collect();
            let id = |r: &&Value| r["id"].as_i64().unwrap_or_default();
            let start = match cursor {
                None => 0,
                Some(Cursor::After(after)) => matches.partition_point(|r| id(r) <= after),
                Some(Cursor::Before(before)) => matches.partition_point(|r| id(r) < before).saturating_sub(n),
            };
            let end = match cursor {
                Some(Cursor::Before(before)) => matches.partition_point(|r| id(r) < before),
                _ => (start + n).min(matches.len()),
            };
            let page: Vec<Value> = matches[start..end].iter().map(|r| project(r, &spec.include)).collect();
            (page, start > 0 && end > start, end < matches.len())
        })
    });
    let url = |cursor: Cursor| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("paging", &cursor.encode())
            .append_pair("search", &spec.raw.to_string())
            .finish();
        format!("http://{host}{AT_PREFIX}/{}/query/next?{query}", entity.name())
    };
    let first = page.first().and_then(|r| r["id"].as_i64());
    let last = page.last().and_then(|r| r["id"].as_i64());
    let prev = first.filter(|_| has_prev).map(|id| url(Cursor::Before(id)));
    let next = last.filter(|_| has_next).map(|id| url(Cursor::After(id)));
    json_response(&json!({
        "items": page.clone(),
        "pageDetails": { "count": page.len(), "requestCount": n, "prevPageUrl": prev, "nextPageUrl": next },
    }))
}

fn patch_configuration(shared: &Shared, body: &Bytes) -> Response {
    let internal = |message: &str| at_error(StatusCode::INTERNAL_SERVER_ERROR, message);
    let input: Value = match serde_json::from_slice(body) {
        Ok(input @ Value::Object(_)) => input,
        _ => return internal("The request body must be a JSON object"),
    };
    let Some(id) = get_ci(&input, "id").and_then(Value::as_i64) else {
        return internal("An integer id is required to update a ConfigurationItem");
    };
    let entity = Entity::ConfigurationItems;
    let (response, reached) = shared.at.with(|d| {
        if !d.configs.contains_key(&id) {
            return (at_error(StatusCode::NOT_FOUND, &format!("ConfigurationItem with id {id} not found")), false);
        }
        *d.update_counts.entry(id).or_default() += 1;
        if let Some(message) = d.update_failures.get(&id) {
            return (internal(message), true);
        }
        let mut updated = d.configs[&id].clone();
        for (key, value) in input.as_object().into_iter().flatten() {
            // Unknown and read-only fields are ignored, as the vendor's deserializer does.
            let Some((field, read_only)) = entity.field(key) else { continue };
            if read_only {
                continue;
            }
            if field == "isActive" && !value.is_boolean() {
                return (internal("isActive: the value must be a boolean (true or false)"), true);
            }
            if field == "contactID"
                && let Err(message) = check_contact(d, value, updated["companyID"].as_i64().unwrap_or_default())
            {
                return (internal(&message), true);
            }
            updated[field] = value.clone();
        }
        d.configs.insert(id, updated);
        (json_response(&json!({ "itemId": id })), true)
    });
    if reached {
        shared.stats().configuration_patches += 1;
    }
    response
}

/// A body that must be a JSON object; else the 500 to answer.
fn object_body(body: &Bytes) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(input)) => Ok(input),
        _ => Err(Box::new(at_error(StatusCode::INTERNAL_SERVER_ERROR, "The request body must be a JSON object"))),
    }
}

/// A `contactID` value: null, or an existing contact of `company_id`.
fn check_contact(d: &AtData, value: &Value, company_id: i64) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let Some(contact_id) = value.as_i64().filter(|_| !value.is_boolean()) else {
        return Err(format!("contactID: the value {value} is not an integer"));
    };
    match d.contacts.get(&contact_id) {
        None => Err(format!("contactID: Contact {contact_id} does not exist")),
        Some(contact) if contact["companyID"] != json!(company_id) => {
            Err(format!("contactID: Contact {contact_id} does not belong to Company {company_id}"))
        }
        Some(_) => Ok(()),
    }
}

/// Fields sent for `entity`, merged into `record`: unknown and read-only ones are ignored,
/// as the vendor's deserializer does.
fn merge(entity: Entity, record: &mut Value, input: &Map<String, Value>) {
    for (key, value) in input {
        if let Some((field, false)) = entity.field(key) {
            record[field] = value.clone();
        }
    }
}

/// Type checks of `record`'s fields against the entity's field list: integers are JSON
/// integers, booleans booleans, strings strings; picklist values must exist; required
/// fields must be set.
fn check_types(entity: Entity, record: &Value) -> Result<(), String> {
    for (field, data_type, _, required, _, picklist) in entity.field_specs() {
        let value = &record[field];
        if value.is_null() {
            if required && field != "id" {
                return Err(format!("{field}: a value is required"));
            }
            continue;
        }
        let ok = match data_type {
            "integer" | "long" => value.is_i64(),
            "boolean" => value.is_boolean(),
            "string" | "datetime" => value.is_string(),
            _ => true,
        };
        if !ok {
            return Err(format!("{field}: the value {value} is not of type {data_type}"));
        }
        if !picklist.is_empty() && !picklist.iter().any(|(v, _)| value.as_i64() == Some(*v)) {
            return Err(format!("{field}: {value} is not a valid picklist value"));
        }
        if required && data_type == "string" && value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Err(format!("{field}: a value is required"));
        }
    }
    Ok(())
}

/// `PATCH /Companies/{companyID}/Contacts`: `isActive` must be the integer 1 or 0.
fn patch_contact(shared: &Shared, company_id: i64, body: &Bytes) -> Response {
    let internal = |message: &str| at_error(StatusCode::INTERNAL_SERVER_ERROR, message);
    let input = match object_body(body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    let Some(id) = get_ci(&Value::Object(input.clone()), "id").and_then(Value::as_i64) else {
        return internal("An integer id is required to update a Contact");
    };
    shared.at.with(|d| {
        if !d.companies.contains_key(&company_id) {
            return at_error(StatusCode::NOT_FOUND, &format!("Company with id {company_id} not found"));
        }
        // Under another company's path the contact does not exist.
        let Some(current) = d.contacts.get(&id).filter(|c| c["companyID"] == json!(company_id)) else {
            return at_error(
                StatusCode::NOT_FOUND,
                &format!("Contact with id {id} not found for Company with id {company_id}"),
            );
        };
        let mut updated = current.clone();
        *d.contact_update_counts.entry(id).or_default() += 1;
        if let Some(message) = d.contact_failures.get(&id) {
            return internal(message);
        }
        if let Some((_, active)) = input.iter().find(|(k, _)| k.eq_ignore_ascii_case("isActive"))
            && !(active.is_i64() && matches!(active.as_i64(), Some(0 | 1)))
        {
            return internal(&format!(
                "isActive: the value {active} is not valid: an integer, 1 (active) or 0 (inactive)"
            ));
        }
        merge(Entity::Contacts, &mut updated, &input);
        if updated["companyID"] != json!(company_id) {
            return internal("companyID: a contact cannot be moved to another company through this path");
        }
        if let Err(message) = check_types(Entity::Contacts, &updated) {
            return internal(&message);
        }
        d.contacts.insert(id, updated);
        json_response(&json!({ "itemId": id }))
    })
}

/// Rules of a ticket record beyond types: references exist; a resource always comes with
/// its role (`sent` is the request body, which must carry both).
fn check_ticket(d: &AtData, record: &Value, sent: &Map<String, Value>) -> Result<(), String> {
    check_types(Entity::Tickets, record)?;
    let company_id = record["companyID"].as_i64().unwrap_or_default();
    if !d.companies.contains_key(&company_id) {
        return Err(format!("companyID: Company {company_id} does not exist"));
    }
    check_contact(d, &record["contactID"], company_id)?;
    let sent_value = |name: &str| sent.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let sent_resource = sent_value("assignedResourceID").is_some_and(|v| !v.is_null());
    let sent_role = sent_value("assignedResourceRoleID").is_some_and(|v| !v.is_null());
    let (resource, role) = (record["assignedResourceID"].as_i64(), record["assignedResourceRoleID"].as_i64());
    if sent_resource != sent_role || resource.is_some() != role.is_some() {
        return Err(
            "When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID.".into()
        );
    }
    if let (Some(resource), Some(role)) = (resource, role) {
        if !seed::OWNERS.iter().any(|(id, _)| *id == resource) {
            return Err(format!("assignedResourceID: Resource {resource} does not exist or is not active"));
        }
        if role != seed::AT_RESOURCE_ROLE {
            return Err(format!("assignedResourceRoleID: Role {role} is not a role of Resource {resource}"));
        }
    }
    Ok(())
}

/// `PATCH /Tickets` `{"id", …}`: only the fields sent change; `null` clears.
fn patch_ticket(shared: &Shared, body: &Bytes) -> Response {
    let input = match object_body(body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    let Some(id) = get_ci(&Value::Object(input.clone()), "id").and_then(Value::as_i64) else {
        return at_error(StatusCode::INTERNAL_SERVER_ERROR, "An integer id is required to update a Ticket");
    };
    shared.at.with(|d| {
        let Some(mut updated) = d.tickets.get(&id).cloned() else {
            return at_error(StatusCode::NOT_FOUND, &format!("Ticket with id {id} not found"));
        };
        merge(Entity::Tickets, &mut updated, &input);
        if let Err(message) = check_ticket(d, &updated, &input) {
            return at_error(StatusCode::INTERNAL_SERVER_ERROR, &message);
        }
        d.tickets.insert(id, updated);
        json_response(&json!({ "itemId": id }))
    })
}

/// `POST /Tickets`: required `companyID`, `title`, `status`, `priority`; → `{"itemId"}`.
fn create_ticket(shared: &Shared, body: &Bytes) -> Response {
    let input = match object_body(body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    shared.at.with(|d| {
        let id = d.tickets.keys().next_back().copied().unwrap_or(0) + 1;
        let mut record = Map::new();
        for (field, ..) in Entity::Tickets.field_specs() {
            record.insert(field.to_string(), Value::Null);
        }
        let mut record = Value::Object(record);
        merge(Entity::Tickets, &mut record, &input);
        record["id"] = json!(id);
        record["ticketNumber"] = json!(ticket_number(id));
        record["createDate"] = json!("2026-11-01T09:00:00Z");
        if let Err(message) = check_ticket(d, &record, &input) {
            return at_error(StatusCode::INTERNAL_SERVER_ERROR, &message);
        }
        d.tickets.insert(id, record);
        json_response(&json!({ "itemId": id }))
    })
}

/// `POST /Tickets/{id}/Notes`: required `description`, `noteType`, `publish`; → `{"itemId"}`.
fn create_note(shared: &Shared, ticket_id: i64, body: &Bytes) -> Response {
    if let Some(message) = shared.at.note_failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        return at_error(StatusCode::INTERNAL_SERVER_ERROR, &message);
    }
    let input = match object_body(body) {
        Ok(input) => input,
        Err(response) => return *response,
    };
    shared.at.with(|d| {
        if !d.tickets.contains_key(&ticket_id) {
            return at_error(StatusCode::NOT_FOUND, &format!("Ticket with id {ticket_id} not found"));
        }
        let id = d.notes.keys().next_back().copied().unwrap_or(70_000) + 1;
        let mut record = Map::new();
        for (field, ..) in Entity::TicketNotes.field_specs() {
            record.insert(field.to_string(), Value::Null);
        }
        let mut record = Value::Object(record);
        merge(Entity::TicketNotes, &mut record, &input);
        record["id"] = json!(id);
        record["ticketID"] = json!(ticket_id);
        record["createDateTime"] = json!("2026-11-01T09:00:00Z");
        if let Err(message) = check_types(Entity::TicketNotes, &record) {
            return at_error(StatusCode::INTERNAL_SERVER_ERROR, &message);
        }
        d.notes.insert(id, record);
        json_response(&json!({ "itemId": id }))
    })
}
