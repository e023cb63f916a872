//! ConnectWise Manage (docs/vendors/connectwise.md) under [`CW_PREFIX`](crate::CW_PREFIX).
//!
//! Basic auth `company+public:private` plus a mandatory `clientId` header (401 otherwise),
//! `conditions` filters, `page`/`pageSize` (default 25, clamped to 1000) with `Link`
//! headers, configuration status records, JSON-Patch (array) updates, the
//! `{"code","message","errors"}` error shape.
//!
//! Agreements (contracts; shape UNCONFIRMED, docs/vendors/connectwise.md#unconfirmed-points, but
//! plausible): `GET /finance/agreements`, `/finance/agreements/count`,
//! `/finance/agreements/{id}`, filtered and paged like every other list. A record is
//! `{"id","name","type":{"id":1,"name":"Managed Services"},"company":{"id","identifier","name"},
//! "startDate","endDate"|null,"noEndingDateFlag","cancelledFlag","agreementStatus","_info"}`
//! with dates `YYYY-MM-DDT00:00:00Z`; `agreementStatus` is `Cancelled` when cancelled, else
//! `Expired` when `endDate` is before the sandbox's start day, else `Active`. Conditions
//! such as `endDate<[2026-11-22T00:00:00Z]`, `company/id=250` and `cancelledFlag=false`
//! work: `[datetime]` literals compare with the ISO strings lexically, and a null
//! `endDate` matches no `<`/`>` comparison (as SQL's NULL).
//!
//! Contacts (docs/vendors/connectwise.md#endpoints-used):
//! - `GET /company/contacts`, `/company/contacts/count`, `/company/contacts/{id}`. Every
//!   contact is listed, inactive ones included, unless the conditions say otherwise
//!   (`company/id=250 and inactiveFlag=false`). A record is `{"id","firstName","lastName",
//!   "company":{"id","identifier","name"},"inactiveFlag","defaultFlag","defaultBillingFlag",
//!   "title","types":[],"communicationItems":[…]}`; the items are a default phone
//!   (`communicationType: "Phone"`) first, then the email (`type: {"name":"Email"}`,
//!   `communicationType: "Email"`, `defaultFlag: true`).
//! - `PATCH /company/contacts/{id}`: JSON-Patch array of `replace` ops on `inactiveFlag`
//!   (boolean), `firstName`, `lastName`, `title` (strings); anything else, a wrong type or
//!   another op → 400 `InvalidObject` and nothing changes. Unknown id → 404. Injected
//!   failures ([`PsaSim::fail_contact_update`]) answer 400 `InvalidObject` with the message.
//! - Companies with a primary contact carry `defaultContact: {"id","name"}`; that contact
//!   also has `defaultFlag: true`.
//!
//! Tickets (docs/vendors/connectwise.md#endpoints-used):
//! - `GET /service/tickets`, `/service/tickets/count`, `/service/tickets/{id}`. A record is
//!   `{"id","summary","company":{…},"board":{"id","name"},"status":{"id","name"},"closedFlag",
//!   "contact":{"id","name"}?,"owner":{"id","identifier","name"}?,"resources"?}`; `contact`
//!   and `owner` are absent when unset. `conditions=company/id=250 and closedFlag=false`.
//! - `PATCH /service/tickets/{id}`: one JSON-Patch array, applied all or nothing. `replace`
//!   on `contact` (`{"id"}` of an existing contact), `owner` (`{"id"}` of a member in
//!   [`seed::OWNERS`]), `board` (`{"id"}` in [`seed::BOARDS`]), `summary` (string), `status`
//!   (`{"id"}` or `{"name"}` of one of [`seed::CW_TICKET_STATUSES`], the same on every board;
//!   it sets `closedFlag` from the status: docs/vendors/ticket-close.md#connectwise);
//!   `remove` on `contact` only (clearing it; removing an absent contact is accepted).
//!   Owner and board are treated as required: removing them → 400 `InvalidObject`
//!   (UNCONFIRMED against real ConnectWise). Other paths, ops or wrong types → 400.
//! - `POST /service/tickets` `{"summary","company":{"id"},"board":{"id"}?,"contact":{"id"}?,
//!   "owner":{"id"}?,"initialDescription"?}` → 201 with the ticket. `summary` and an
//!   existing `company` are required; without `board` the ticket goes to board 1 "Service
//!   Desk" (the real default is UNCONFIRMED). `initialDescription` is write-only and becomes
//!   the ticket's first note (`detailDescriptionFlag: true`), as in the ConnectWise UI.
//! - `GET /service/tickets/{id}/notes` (paged list), `POST /service/tickets/{id}/notes`
//!   `{"text","detailDescriptionFlag"?,"internalAnalysisFlag"?,"resolutionFlag"?}` → 201 with
//!   `{"id","ticketId","text",flags…}`. `text` is required and at least one flag must be true
//!   (UNCONFIRMED, docs/vendors/connectwise.md#unconfirmed-points; plausible, so enforced); flags
//!   must be booleans. Unknown ticket → 404. After [`ConnectWiseSim::fail_ticket_notes`] every POST
//!   answers 400 with the given message.
//! - `GET /system/callbacks` (every registered callback, one page), `POST /system/callbacks`
//!   `{"url","type","level","objectId","description"?}` → 201 with the entry and its `id`; the
//!   four are required (400 otherwise). No duplicate check, as far as is known: a second
//!   POST of one URL is a second callback ([`ConnectWiseSim::callbacks`]; stats key
//!   `POST /system/callbacks`).
//!
//! Configurations carry `contact: {"id","name"}` when they have one; the configuration
//! PATCH also takes `replace` on `contact` (`{"id"}` of an existing contact) and `remove` on
//! `contact` (clears it; UNCONFIRMED).
//!
//! Strictness (docs/vendors/connectwise.md#unconfirmed-points, the reading that catches
//! client bugs): every PATCH refuses an empty operations array, the configuration PATCH a
//! path outside [`CONFIGURATION_PATHS`], and every list or count `conditions` naming a field
//! its entity does not have ([`Entity`]), each with a 400 `InvalidObject`. Stats keys: `GET /company/contacts`,
//! `PATCH /company/contacts/{id}`, `GET /service/tickets`, `PATCH /service/tickets/{id}`,
//! `POST /service/tickets`, `POST /service/tickets/{id}/notes` (and the count/by-id variants).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::seed::{self, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY};
use crate::{PsaSim, Shared, conditions, json_response, json_status, query_map};

/// ConnectWise's data, reachable synchronously from tests.
pub struct ConnectWiseSim {
    state: Mutex<seed::CwData>,
    /// Set: every new ticket note is refused with this message (400).
    note_failure: Mutex<Option<String>>,
    /// The private key accepted now ([`CW_PRIVATE_KEY`] until [`Self::rotate_private_key`]).
    private_key: Mutex<String>,
    /// Requests per private key presented (decoded from the Basic header), accepted or not.
    presented: Mutex<std::collections::HashMap<String, u64>>,
    /// Registered callbacks (`/system/callbacks`), in creation order.
    callbacks: Mutex<Vec<Value>>,
}

impl ConnectWiseSim {
    pub(crate) fn new(data: seed::CwData) -> Self {
        Self {
            state: Mutex::new(data),
            note_failure: Mutex::new(None),
            private_key: Mutex::new(CW_PRIVATE_KEY.to_string()),
            presented: Mutex::default(),
            callbacks: Mutex::default(),
        }
    }

    /// The registered callbacks (`POST /system/callbacks`), in creation order.
    pub fn callbacks(&self) -> Vec<Value> {
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `POST /system/callbacks`: `url`, `type`, `level`, `objectId` required (400 otherwise).
    fn register_callback(&self, body: &Bytes) -> Response {
        let Ok(mut entry) = serde_json::from_slice::<Value>(body) else {
            return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "The body is not a callback entry");
        };
        for field in ["url", "type", "level", "objectId"] {
            if entry.get(field).is_none_or(Value::is_null) {
                return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", &format!("{field} is required"));
            }
        }
        let mut callbacks = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        entry["id"] = json!(callbacks.len() as i64 + 1);
        callbacks.push(entry.clone());
        json_status(StatusCode::CREATED, &entry)
    }

    /// The API member's private key is rotated: from now on only `new_key` is accepted.
    pub fn rotate_private_key(&self, new_key: &str) {
        *self.private_key.lock().unwrap_or_else(|e| e.into_inner()) = new_key.to_string();
    }

    /// How many requests presented `private_key` (in a well-formed Basic header).
    pub fn requests_with_private_key(&self, private_key: &str) -> u64 {
        self.presented.lock().unwrap_or_else(|e| e.into_inner()).get(private_key).copied().unwrap_or(0)
    }

    fn accepted_private_key(&self) -> String {
        self.private_key.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn count_presented(&self, decoded: &str) {
        if let Some((_, key)) = decoded.split_once(':') {
            *self.presented.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_string()).or_default() += 1;
        }
    }

    /// From now on `POST /service/tickets/{id}/notes` answers 400 with `message`
    /// (`None`: notes are accepted again). Tickets can still be created.
    pub fn fail_ticket_notes(&self, message: Option<&str>) {
        *self.note_failure.lock().unwrap_or_else(|e| e.into_inner()) = message.map(str::to_string);
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

    /// Every company's id, ascending (a sweep's test works out on its own which should be swept).
    pub fn company_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.with(|d| d.companies.keys().copied().collect());
        ids.sort_unstable();
        ids
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

    /// Someone renames a contact in the PSA (free text a vendor hands on as it is: the
    /// evidence report's tests give one a hostile name).
    pub fn set_contact_name(&self, id: i64, first_name: &str, last_name: &str) {
        self.with(|d| {
            if let Some(contact) = d.contacts.get_mut(&id) {
                contact["firstName"] = json!(first_name);
                contact["lastName"] = json!(last_name);
            }
        })
    }

    /// Someone renames a configuration in the PSA.
    pub fn set_configuration_name(&self, id: i64, name: &str) {
        self.with(|d| {
            if let Some(config) = d.configs.get_mut(&id) {
                config["name"] = json!(name);
            }
        })
    }

    /// A contact as `/company/contacts/{id}` renders it.
    pub fn contact(&self, id: i64) -> Option<Value> {
        self.with(|d| d.contacts.get(&id).cloned())
    }

    /// A ticket as `/service/tickets/{id}` renders it.
    pub fn ticket_record(&self, id: i64) -> Option<Value> {
        self.with(|d| d.tickets.get(&id).cloned())
    }

    /// A ticket's notes as `/service/tickets/{id}/notes` renders them, oldest first.
    pub fn ticket_notes(&self, id: i64) -> Vec<Value> {
        self.with(|d| d.ticket_notes.get(&id).cloned().unwrap_or_default())
    }

    /// Someone changes a ticket's owner in the PSA (`None` unassigns it).
    pub fn set_ticket_owner(&self, id: i64, owner_id: Option<i64>) {
        self.with(|d| {
            if let Some(ticket) = d.tickets.get_mut(&id)
                && let Some(object) = ticket.as_object_mut()
            {
                match owner_id.and_then(seed::cw_member_ref) {
                    Some(owner) => {
                        object.insert("resources".into(), owner["identifier"].clone());
                        object.insert("owner".into(), owner);
                    }
                    None => {
                        object.remove("owner");
                        object.remove("resources");
                    }
                }
            }
        })
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

    fn delete_configuration(&self, id: i64) {
        self.with(|d| d.configs.remove(&id));
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

    fn contact_is_active(&self, id: i64) -> Option<bool> {
        self.contact(id).map(|c| !c["inactiveFlag"].as_bool().unwrap_or(false))
    }

    fn set_contact_active(&self, id: i64, active: bool) {
        self.with(|d| {
            if let Some(contact) = d.contacts.get_mut(&id) {
                contact["inactiveFlag"] = json!(!active);
            }
        })
    }

    fn delete_contact(&self, id: i64) {
        self.with(|d| d.contacts.remove(&id));
    }

    fn fail_contact_update(&self, id: i64, message: &str) {
        self.with(|d| d.contact_failures.insert(id, (400, message.to_string())));
    }

    fn clear_contact_failures(&self) {
        self.with(|d| d.contact_failures.clear());
    }

    fn contact_update_count(&self, id: i64) -> usize {
        self.with(|d| d.contact_patch_counts.get(&id).copied().unwrap_or(0))
    }

    fn contact_ids_of(&self, company_id: i64) -> Vec<i64> {
        // BTreeMap: ascending ids.
        self.with(|d| {
            d.contacts
                .values()
                .filter(|c| c["company"]["id"] == json!(company_id))
                .filter_map(|c| c["id"].as_i64())
                .collect()
        })
    }

    fn ticket(&self, id: i64) -> Option<crate::TicketView> {
        self.with(|d| {
            let t = d.tickets.get(&id)?;
            Some(crate::TicketView {
                id,
                company_id: t["company"]["id"].as_i64().unwrap_or_default(),
                summary: t["summary"].as_str().unwrap_or_default().to_string(),
                contact_id: t["contact"]["id"].as_i64(),
                owner_id: t["owner"]["id"].as_i64(),
                board_id: t["board"]["id"].as_i64(),
                closed: t["closedFlag"].as_bool().unwrap_or(false),
                notes: d
                    .ticket_notes
                    .get(&id)
                    .map(|notes| notes.iter().filter_map(|n| n["text"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            })
        })
    }

    fn set_ticket_contact(&self, id: i64, contact_id: Option<i64>) {
        self.with(|d| {
            let contact = contact_id.and_then(|c| d.contact_ref(c));
            if let Some(ticket) = d.tickets.get_mut(&id)
                && let Some(object) = ticket.as_object_mut()
            {
                match contact {
                    Some(contact) => object.insert("contact".into(), contact),
                    None => object.remove("contact"),
                };
            }
        })
    }

    fn ticket_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.with(|d| {
            d.tickets
                .values()
                .filter(|t| t["company"]["id"] == json!(company_id))
                .filter_map(|t| t["id"].as_i64())
                .collect()
        })
    }

    fn configuration_contact(&self, id: i64) -> Option<i64> {
        self.configuration(id).and_then(|c| c["contact"]["id"].as_i64())
    }

    fn set_configuration_contact(&self, id: i64, contact_id: Option<i64>) {
        self.with(|d| {
            let contact = contact_id.and_then(|c| d.contact_ref(c));
            if let Some(config) = d.configs.get_mut(&id)
                && let Some(object) = config.as_object_mut()
            {
                match contact {
                    Some(contact) => object.insert("contact".into(), contact),
                    None => object.remove("contact"),
                };
            }
        })
    }
}

pub(crate) fn cw_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "code": code, "message": message }).to_string())
        .into_response()
}

/// The 401 to answer, if the request's credentials are not the sandbox's. Like some real
/// APIs, the refusal echoes what was presented (the header and the decoded
/// `company+public:private`), so tests can see whether a client lets it reach its logs.
fn auth_failure(cw: &ConnectWiseSim, headers: &HeaderMap) -> Option<Response> {
    let private_key = cw.accepted_private_key();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CW_COMPANY_ID}+{CW_PUBLIC_KEY}:{private_key}"))
    );
    let authorization = headers.get("authorization").and_then(|h| h.to_str().ok());
    let presented = authorization.unwrap_or_default();
    let decoded = presented
        .strip_prefix("Basic ")
        .and_then(|token| base64::engine::general_purpose::STANDARD.decode(token.trim()).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    cw.count_presented(&decoded);
    if authorization != Some(expected.as_str()) {
        let message = format!("UserNotAuthenticated: '{decoded}' (Authorization: {presented}) was refused");
        return Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", &message));
    }
    match headers.get("clientid").and_then(|h| h.to_str().ok()) {
        None => Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", "A clientId header is required")),
        Some(id) if id != CW_CLIENT_ID => {
            Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", &format!("Unknown clientId {id}")))
        }
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
    let cw = &shared.cw;
    if let Some(response) = auth_failure(cw, headers) {
        return response;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query = query_map(uri);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["system", "callbacks"]) => {
            shared.record_route(method, "/system/callbacks");
            json_response(&Value::Array(cw.callbacks()))
        }
        ("POST", ["system", "callbacks"]) => {
            shared.record_route(method, "/system/callbacks");
            cw.register_callback(body)
        }
        ("GET", ["company", "companies"]) => {
            shared.record_route(method, "/company/companies");
            cw.with(|d| list(d.companies.values().collect(), &query, &COMPANIES, uri, host))
        }
        ("GET", ["company", "companies", "count"]) => {
            shared.record_route(method, "/company/companies/count");
            cw.with(|d| count(d.companies.values().collect(), &query, &COMPANIES))
        }
        ("GET", ["company", "companies", "statuses"]) => {
            shared.record_route(method, "/company/companies/statuses");
            cw.with(|d| list(d.company_statuses.iter().collect(), &query, &COMPANY_STATUSES, uri, host))
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
            cw.with(|d| list(d.agreements.values().collect(), &query, &AGREEMENTS, uri, host))
        }
        ("GET", ["finance", "agreements", "count"]) => {
            shared.record_route(method, "/finance/agreements/count");
            cw.with(|d| count(d.agreements.values().collect(), &query, &AGREEMENTS))
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
            cw.with(|d| list(d.configs.values().collect(), &query, &CONFIGURATIONS, uri, host))
        }
        ("GET", ["company", "configurations", "count"]) => {
            shared.record_route(method, "/company/configurations/count");
            cw.with(|d| count(d.configs.values().collect(), &query, &CONFIGURATIONS))
        }
        ("GET", ["company", "configurations", "statuses"]) => {
            shared.record_route(method, "/company/configurations/statuses");
            cw.with(|d| list(d.config_statuses.iter().collect(), &query, &CONFIGURATION_STATUSES, uri, host))
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
        ("GET", ["company", "contacts"]) => {
            shared.record_route(method, "/company/contacts");
            cw.with(|d| list(d.contacts.values().collect(), &query, &CONTACTS, uri, host))
        }
        ("GET", ["company", "contacts", "count"]) => {
            shared.record_route(method, "/company/contacts/count");
            cw.with(|d| count(d.contacts.values().collect(), &query, &CONTACTS))
        }
        ("GET", ["company", "contacts", id]) => {
            shared.record_route(method, "/company/contacts/{id}");
            match id.parse::<i64>().ok().and_then(|id| cw.contact(id)) {
                Some(contact) => json_response(&contact),
                None => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Contact recId {id} not found.")),
            }
        }
        ("PATCH", ["company", "contacts", id]) => {
            shared.record_route(method, "/company/contacts/{id}");
            let Ok(id) = id.parse::<i64>() else {
                return cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Contact recId {id} not found."));
            };
            patch_contact(shared, id, body)
        }
        ("GET", ["service", "tickets"]) => {
            shared.record_route(method, "/service/tickets");
            cw.with(|d| list(d.tickets.values().collect(), &query, &TICKETS, uri, host))
        }
        ("GET", ["service", "tickets", "count"]) => {
            shared.record_route(method, "/service/tickets/count");
            cw.with(|d| count(d.tickets.values().collect(), &query, &TICKETS))
        }
        ("POST", ["service", "tickets"]) => {
            shared.record_route(method, "/service/tickets");
            create_ticket(shared, body)
        }
        ("GET", ["service", "tickets", id]) => {
            shared.record_route(method, "/service/tickets/{id}");
            match id.parse::<i64>().ok().and_then(|id| cw.ticket_record(id)) {
                Some(ticket) => json_response(&ticket),
                None => ticket_not_found(id),
            }
        }
        ("PATCH", ["service", "tickets", id]) => {
            shared.record_route(method, "/service/tickets/{id}");
            let Ok(id) = id.parse::<i64>() else { return ticket_not_found(id) };
            patch_ticket(shared, id, body)
        }
        ("GET", ["service", "tickets", id, "notes"]) => {
            shared.record_route(method, "/service/tickets/{id}/notes");
            match id.parse::<i64>().ok().filter(|id| cw.ticket_record(*id).is_some()) {
                Some(id) => list(cw.ticket_notes(id).iter().collect(), &query, &NOTES, uri, host),
                None => ticket_not_found(id),
            }
        }
        ("POST", ["service", "tickets", id, "notes"]) => {
            shared.record_route(method, "/service/tickets/{id}/notes");
            let Ok(id) = id.parse::<i64>() else { return ticket_not_found(id) };
            add_note(shared, id, body)
        }
        _ => cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("No route for {method} {path}")),
    }
}

fn ticket_not_found(id: &str) -> Response {
    cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Ticket recId {id} not found."))
}

/// A 400 `InvalidObject` naming the field, as ConnectWise reports validation failures.
fn invalid(resource: &str, field: &str, message: &str) -> Response {
    let mut title = resource.to_string();
    if let Some(first) = title.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let body = json!({"code": "InvalidObject", "message": format!("{title} object is invalid"),
        "errors": [{"code": "InvalidObject", "message": message, "resource": resource, "field": field}]});
    (StatusCode::BAD_REQUEST, [("content-type", "application/json")], body.to_string()).into_response()
}

/// The operations of a JSON-Patch body, which must be an array.
fn patch_ops(body: &Bytes) -> Result<Vec<Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        // An empty patch changes nothing and says nothing: refused, so a client that sends
        // one (and would count the record as changed) is caught.
        Ok(Value::Array(ops)) if ops.is_empty() => {
            Err(Box::new(cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "The patch operations array is empty")))
        }
        Ok(Value::Array(ops)) => Ok(ops),
        _ => Err(Box::new(cw_error(
            StatusCode::BAD_REQUEST,
            "InvalidObject",
            "The request body must be a JSON array of patch operations",
        ))),
    }
}

/// `op` and `path` (without a leading `/`, lower-cased) of one operation.
fn op_and_path(op: &Value) -> (String, String) {
    (
        op["op"].as_str().unwrap_or_default().to_ascii_lowercase(),
        op["path"].as_str().unwrap_or_default().trim_start_matches('/').to_ascii_lowercase(),
    )
}

/// The id of a reference object `{"id": N}`; anything else (a bare number, a string id) is refused.
fn reference_id(value: &Value) -> Option<i64> {
    value.as_object()?.get("id")?.as_i64()
}

fn patch_contact(shared: &Shared, id: i64, body: &Bytes) -> Response {
    let ops = match patch_ops(body) {
        Ok(ops) => ops,
        Err(response) => return *response,
    };
    shared.cw.with(|d| {
        if !d.contacts.contains_key(&id) {
            return cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("Contact recId {id} not found."));
        }
        *d.contact_patch_counts.entry(id).or_default() += 1;
        if let Some((status, message)) = d.contact_failures.get(&id).cloned() {
            return cw_error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                "InvalidObject",
                &message,
            );
        }
        let mut updated = d.contacts[&id].clone();
        for op in &ops {
            let (kind, path) = op_and_path(op);
            if kind != "replace" {
                return invalid("contact", &path, &format!("Operation '{kind}' is not supported on {path}"));
            }
            let value = &op["value"];
            let (field, ok) = match path.as_str() {
                "inactiveflag" => ("inactiveFlag", value.is_boolean()),
                "firstname" => ("firstName", value.as_str().is_some_and(|v| !v.trim().is_empty())),
                "lastname" => ("lastName", value.is_string()),
                "title" => ("title", value.is_string()),
                _ => return invalid("contact", &path, &format!("'{path}' cannot be changed on a contact here")),
            };
            if !ok {
                return invalid("contact", field, &format!("{field} has an invalid value: {value}"));
            }
            updated[field] = value.clone();
        }
        d.contacts.insert(id, updated.clone());
        json_response(&updated)
    })
}

fn patch_ticket(shared: &Shared, id: i64, body: &Bytes) -> Response {
    let ops = match patch_ops(body) {
        Ok(ops) => ops,
        Err(response) => return *response,
    };
    shared.cw.with(|d| {
        let Some(ticket) = d.tickets.get(&id) else { return ticket_not_found(&id.to_string()) };
        let mut updated = ticket.clone();
        for op in &ops {
            let (kind, path) = op_and_path(op);
            let value = &op["value"];
            match (kind.as_str(), path.as_str()) {
                ("replace", "contact") => match reference_id(value).and_then(|c| d.contact_ref(c)) {
                    Some(contact) => updated["contact"] = contact,
                    None => return invalid("ticket", "contact", &format!("contact {value} is not a contact")),
                },
                ("remove", "contact") => {
                    if let Some(object) = updated.as_object_mut() {
                        object.remove("contact");
                    }
                }
                ("replace", "owner") => match reference_id(value).and_then(seed::cw_member_ref) {
                    Some(owner) => {
                        updated["resources"] = owner["identifier"].clone();
                        updated["owner"] = owner;
                    }
                    None => return invalid("ticket", "owner", &format!("owner {value} is not a member")),
                },
                ("replace", "board") => match reference_id(value).and_then(seed::cw_board_ref) {
                    Some(board) => updated["board"] = board,
                    None => return invalid("ticket", "board", &format!("board {value} is not a service board")),
                },
                ("replace", "status") => match seed::cw_ticket_status_named(value) {
                    Some((status, closed)) => {
                        updated["status"] = status;
                        updated["closedFlag"] = json!(closed);
                    }
                    None => {
                        return invalid("ticket", "status", &format!("status {value} is not a status of the board"));
                    }
                },
                ("replace", "summary") if value.as_str().is_some_and(|v| !v.trim().is_empty()) => {
                    updated["summary"] = value.clone();
                }
                ("remove", "owner" | "board" | "summary") => {
                    return invalid("ticket", &path, &format!("{path} is required"));
                }
                _ => {
                    return invalid(
                        "ticket",
                        &path,
                        &format!("Operation '{kind}' on '{path}' with value {value} is not supported"),
                    );
                }
            }
        }
        d.tickets.insert(id, updated.clone());
        json_response(&updated)
    })
}

fn create_ticket(shared: &Shared, body: &Bytes) -> Response {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
        return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "The request body must be a ticket object");
    };
    let field = |name: &str| input.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    shared.cw.with(|d| {
        let Some(summary) = field("summary").and_then(|v| v.as_str().map(str::to_string)).filter(|v| !v.trim().is_empty())
        else {
            return invalid("ticket", "summary", "summary is required");
        };
        let Some(company) = field("company").and_then(|v| reference_id(&v)).and_then(|c| d.company_ref(c)) else {
            return invalid("ticket", "company", "company is required and must be an existing company");
        };
        // The board a ticket gets without one is UNCONFIRMED; the sandbox uses "Service Desk".
        let board = match field("board") {
            None | Some(Value::Null) => seed::cw_board_ref(1),
            Some(value) => reference_id(&value).and_then(seed::cw_board_ref),
        };
        let Some(board) = board else { return invalid("ticket", "board", "board is not a service board") };
        let id = d.next_ticket_id;
        let mut ticket = json!({
            "id": id, "summary": summary, "company": company, "board": board,
            "status": seed::cw_ticket_status(false), "closedFlag": false, "_info": {"ticket_href": format!("/ticket/{id}")},
        });
        if let Some(value) = field("contact").filter(|v| !v.is_null()) {
            match reference_id(&value).and_then(|c| d.contact_ref(c)) {
                Some(contact) => ticket["contact"] = contact,
                None => return invalid("ticket", "contact", "contact is not a contact"),
            }
        }
        if let Some(value) = field("owner").filter(|v| !v.is_null()) {
            match reference_id(&value).and_then(seed::cw_member_ref) {
                Some(owner) => {
                    ticket["resources"] = owner["identifier"].clone();
                    ticket["owner"] = owner;
                }
                None => return invalid("ticket", "owner", "owner is not a member"),
            }
        }
        let description = match field("initialDescription") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(_) => return invalid("ticket", "initialDescription", "initialDescription must be a string"),
        };
        d.next_ticket_id += 1;
        d.tickets.insert(id, ticket.clone());
        // Write-only: it becomes the first (discussion) note and is not returned on the ticket.
        if let Some(text) = description.filter(|t| !t.trim().is_empty()) {
            d.add_note(id, &text, [true, false, false]);
        }
        json_status(StatusCode::CREATED, &ticket)
    })
}

fn add_note(shared: &Shared, ticket_id: i64, body: &Bytes) -> Response {
    if let Some(message) = shared.cw.note_failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", &message);
    }
    shared.cw.with(|d| {
        if !d.tickets.contains_key(&ticket_id) {
            return ticket_not_found(&ticket_id.to_string());
        }
        let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
            return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "The request body must be a note object");
        };
        let Some(text) = input.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) else {
            return invalid("serviceNote", "text", "text is required");
        };
        let mut flags = [false; 3];
        for (i, name) in ["detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag"].iter().enumerate() {
            match input.get(*name) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(flag)) => flags[i] = *flag,
                Some(other) => return invalid("serviceNote", name, &format!("{name} must be a boolean, not {other}")),
            }
        }
        if !flags.iter().any(|f| *f) {
            return invalid(
                "serviceNote",
                "detailDescriptionFlag",
                "At least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true",
            );
        }
        json_status(StatusCode::CREATED, &d.add_note(ticket_id, text, flags))
    })
}

/// The fields `conditions` may name on one entity: its own fields, and `{reference}/{id|name|
/// identifier|lastUpdated|updatedBy}` of its reference objects (`_info` included).
pub(crate) struct Entity {
    pub name: &'static str,
    pub fields: &'static [&'static str],
    pub references: &'static [&'static str],
}

const REFERENCE_FIELDS: [&str; 5] = ["id", "name", "identifier", "lastUpdated", "updatedBy"];

impl Entity {
    fn knows(&self, path: &str) -> bool {
        let same = |a: &&str, b: &str| a.eq_ignore_ascii_case(b);
        match path.split_once('/') {
            None => path.eq_ignore_ascii_case("lastUpdated") || self.fields.iter().any(|f| same(f, path)),
            Some((reference, field)) => {
                self.references.iter().any(|r| same(r, reference)) && REFERENCE_FIELDS.iter().any(|f| same(f, field))
            }
        }
    }
}

const COMPANIES: Entity = Entity {
    name: "company",
    fields: &["id", "identifier", "name", "deletedFlag"],
    references: &["status", "defaultContact", "_info"],
};
const COMPANY_STATUSES: Entity =
    Entity { name: "companyStatus", fields: &["id", "name", "defaultFlag", "inactiveFlag"], references: &[] };
const CONFIGURATIONS: Entity = Entity {
    name: "configuration",
    fields: &["id", "name", "serialNumber", "tagNumber", "activeFlag", "notes"],
    references: &["type", "company", "status", "contact", "_info"],
};
const CONFIGURATION_STATUSES: Entity = Entity {
    name: "configurationStatus",
    fields: &["id", "description", "closedFlag", "defaultFlag"],
    references: &[],
};
const AGREEMENTS: Entity = Entity {
    name: "agreement",
    fields: &["id", "name", "startDate", "endDate", "noEndingDateFlag", "cancelledFlag", "agreementStatus"],
    references: &["type", "company", "_info"],
};
const CONTACTS: Entity = Entity {
    name: "contact",
    fields: &["id", "firstName", "lastName", "inactiveFlag", "defaultFlag", "defaultBillingFlag", "title"],
    references: &["company", "_info"],
};
const TICKETS: Entity = Entity {
    name: "ticket",
    fields: &["id", "summary", "closedFlag", "resources"],
    references: &["company", "board", "status", "contact", "owner", "_info"],
};
const NOTES: Entity = Entity {
    name: "serviceNote",
    fields: &[
        "id",
        "ticketId",
        "text",
        "detailDescriptionFlag",
        "internalAnalysisFlag",
        "resolutionFlag",
        "dateCreated",
        "createdBy",
    ],
    references: &["_info"],
};

/// `records` filtered by the `conditions` parameter. A condition naming a field the entity
/// does not have is refused (400 `InvalidObject`), not treated as matching nothing: a client
/// that misspells a field would otherwise read an empty list as "nothing there".
/// The records the query's `conditions` select, as references: a listing clones only the
/// page it answers (a 100,000-configuration client is listed a page at a time).
fn filtered<'a>(
    records: Vec<&'a Value>,
    query: &HashMap<String, String>,
    entity: &Entity,
) -> Result<Vec<&'a Value>, Box<Response>> {
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
            if let Some(unknown) = condition.fields().into_iter().find(|f| !entity.knows(f)) {
                let message = format!("Unknown field '{unknown}' in conditions");
                return Err(Box::new(invalid(entity.name, unknown, &message)));
            }
            Ok(records.into_iter().filter(|r| condition.matches(r)).collect())
        }
    }
}

fn count(records: Vec<&Value>, query: &HashMap<String, String>, entity: &Entity) -> Response {
    match filtered(records, query, entity) {
        Ok(records) => json_response(&json!({ "count": records.len() })),
        Err(response) => *response,
    }
}

fn list(records: Vec<&Value>, query: &HashMap<String, String>, entity: &Entity, uri: &Uri, host: &str) -> Response {
    let mut records = match filtered(records, query, entity) {
        Ok(records) => records,
        Err(response) => return *response,
    };
    records.sort_by_key(|r| r["id"].as_i64().unwrap_or(0));
    let page_size = query.get("pagesize").and_then(|v| v.parse::<usize>().ok()).unwrap_or(25).clamp(1, 1000);
    let page = query.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
    let pages = records.len().div_ceil(page_size).max(1);
    let items: Vec<Value> = records.into_iter().skip((page - 1) * page_size).take(page_size).cloned().collect();
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

/// Configuration fields a PATCH may `replace` (plus `remove` of `contact`); any other path
/// is refused with 400 `InvalidObject` naming it, not stored as a new field.
const CONFIGURATION_PATHS: [&str; 6] = ["status", "contact", "name", "serialNumber", "tagNumber", "notes"];

fn patch_configuration(shared: &Shared, id: i64, body: &Bytes) -> Response {
    let ops = match patch_ops(body) {
        Ok(ops) => ops,
        Err(response) => return *response,
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
            if op["op"] == json!("remove") && path.eq_ignore_ascii_case("contact") {
                if let Some(object) = updated.as_object_mut() {
                    object.remove("contact");
                }
                continue;
            }
            if op["op"] != json!("replace") || path.is_empty() {
                return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "Only replace operations with a path are supported");
            }
            if path.eq_ignore_ascii_case("contact") {
                let Some(contact) = reference_id(&op["value"]).and_then(|c| d.contact_ref(c)) else {
                    return invalid("configuration", "contact", &format!("contact {} is not a contact", op["value"]));
                };
                updated["contact"] = contact;
            } else if path.eq_ignore_ascii_case("status") {
                let Some(status) = op["value"]["id"].as_i64().and_then(|sid| d.config_status(sid)) else {
                    let body = json!({"code": "InvalidObject", "message": "Configuration object is invalid",
                        "errors": [{"code": "InvalidObject", "message": "status is invalid", "resource": "configuration", "field": "status"}]});
                    return (StatusCode::BAD_REQUEST, [("content-type", "application/json")], body.to_string()).into_response();
                };
                seed::apply_status(&mut updated, &status);
            } else if let Some(field) = CONFIGURATION_PATHS.iter().find(|f| f.eq_ignore_ascii_case(path)) {
                if !op["value"].is_string() {
                    return invalid("configuration", field, &format!("{field} must be a string"));
                }
                updated[*field] = op["value"].clone();
            } else {
                return invalid("configuration", path, &format!("'{path}' is not a field of configuration"));
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
