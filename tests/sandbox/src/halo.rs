//! HaloPSA (docs/vendors/halopsa.md): `authinfo` discovery, OAuth2 client-credentials tokens that
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
//!
//! Contacts, tickets and notes (docs/vendors/halopsa.md#endpoints-used; workflow 001,
//! docs/workflows.md#001-contact-deactivation). Same Bearer auth, rate window and stats
//! (`"{METHOD} /halo/api/{route}"`) as every other route; ids in paths are integers, unknown
//! ones → 404 `{"ClassName","Message"}`.
//! - `GET /api/users?client_id&site_id&search&includeinactive&includeactive&pageinate&
//!   page_size&page_no` → `{…,"users"}` (inactive users only with `includeinactive=true`,
//!   as for assets; `search` over `name` and `emailaddress`); `GET /api/users/{id}`. A user
//!   is `{"id","name","firstname","surname","emailaddress","jobtitle","site_id","site_name",
//!   "client_id","client_name","inactive","isimportantcontact"}`; `isimportantcontact` is
//!   true for managers (5002, 5007, 7003), never a primary-contact signal.
//! - `POST /api/users` `[{"id":N,"inactive":bool,…}]`: atomic like assets (unknown id, the
//!   `fail_contact_update` control, a non-boolean `inactive`/`isimportantcontact` or a changed
//!   `client_id` → 400 `{"resultCode":1,"errorMessage"}` and nothing changes; every element
//!   that reached a user counts as an update attempt); success → 201 with the saved users.
//! - `GET /api/site/{id}` → `{"id","name":"Main","client_id","client_name","maincontact_id",
//!   "maincontact_name"}`: one site per client, id 10 × client id + 1 (the client's
//!   `main_site_id`); the main contact is the fixture's primary contact (0 and "" if none).
//! - `GET /api/tickets?client_id&site_id&user_id&agent_id&status_id&open_only&closed_only&
//!   pageinate…` → `{…,"tickets"}`; `GET /api/tickets/{id}`. A ticket is `{"id","summary",
//!   "details","status_id","tickettype_id","priority_id","client_id","client_name","site_id",
//!   "user_id","agent_id","team","dateoccurred"}`. Statuses 1 New, 2 In Progress, 9 Closed
//!   (the only closed one); types 1 Incident, 2 Service Request. No contact is `user_id` 0,
//!   no agent `agent_id` 0, no team `""`; agents are the fixture owners (11, 12), teams the
//!   fixture boards by name ("Service Desk", "Offboarding"; matched ignoring case).
//! - `POST /api/tickets` `[{…}]`: an element with a positive `id` updates that ticket (only the
//!   fields sent; unknown fields ignored), one without `id` (or `id` 0) creates a ticket and needs
//!   `client_id`, `site_id` (a site of that client: the sandbox insists, as
//!   docs/vendors/halopsa.md#tickets-and-notes says a new ticket needs one) and `summary`;
//!   `tickettype_id` defaults to 1, `status_id` to 1. Atomic; 400 `{"resultCode":1,"errorMessage"}`
//!   on: an unknown ticket, a non-integer id or id field, a user that does not exist or belongs to
//!   another client (inactive users are accepted), an agent other than 11/12, an unknown team,
//!   status or ticket type. Success → 201 with the saved ticket: the object itself for a
//!   one-element body, an array for several. Created ids continue after 9900.
//! - `POST /api/actions` `[{"ticket_id","outcome_id","note_html"|"note","hiddenfromuser"}]`:
//!   new actions only (an `id` → 400). No `outcome_id` → 400 "An Outcome must be entered for
//!   this Action"; outcomes 1 Update and 7 Private Note exist, others → 400; an unknown
//!   ticket → 400 (and every action after [`HaloSim::fail_ticket_notes`], with the given
//!   message). The action stores `note_html` and its plain text (`note`: `<br>` a line
//!   break, `</p>` a blank line, other tags dropped, entities decoded), which
//!   [`crate::TicketView::notes`] shows. → 201 with the action (object or array as above).
//!   `GET /api/actions?ticket_id&pageinate…` → `{…,"actions"}`.
//! - Assets have no contact field: [`PsaSim::configuration_contact`] is always `None`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::seed;

use crate::seed::{ConfigState, Fixture, HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT};
use crate::window::RollingWindow;
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
    users: BTreeMap<i64, Value>,
    sites: BTreeMap<i64, Value>,
    tickets: BTreeMap<i64, Value>,
    /// Ticket actions (notes), by action id; each carries its `ticket_id`.
    actions: BTreeMap<i64, Value>,
    user_failures: HashMap<i64, String>,
    user_update_counts: HashMap<i64, usize>,
    next_ticket_id: i64,
    next_action_id: i64,
}

/// HaloPSA's data, tokens and rate window, reachable synchronously from tests.
pub struct HaloSim {
    data: Mutex<HaloData>,
    /// Issued tokens: expiry and the scopes granted.
    tokens: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    /// The `scope` of every token request, oldest first.
    scopes_requested: Mutex<Vec<String>>,
    /// Asset ids a successful `POST /api/asset` leaves out of its answer (still updated).
    asset_answer_omits: Mutex<Vec<i64>>,
    /// Asset ids a successful `POST /api/asset` accepts but does not change (and leaves out).
    asset_updates_ignored: Mutex<Vec<i64>>,
    token_ttl: Mutex<Duration>,
    tokens_issued: AtomicU64,
    rate_limit: Mutex<Option<u32>>,
    window: RollingWindow,
    /// Set: every new action (note) is refused with this message (400).
    note_failure: Mutex<Option<String>>,
    /// The client secret accepted now ([`HALO_CLIENT_SECRET`] until rotated).
    client_secret: Mutex<String>,
    /// Token requests per client secret presented, accepted or not.
    secrets_presented: Mutex<HashMap<String, u64>>,
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

/// Ticket statuses: 9 "Closed" is the only closed one.
const STATUS_NEW: i64 = 1;
const STATUS_CLOSED: i64 = 9;
const TICKET_STATUSES: [(i64, &str); 3] = [(STATUS_NEW, "New"), (2, "In Progress"), (STATUS_CLOSED, "Closed")];
const TICKET_TYPES: [(i64, &str); 2] = [(1, "Incident"), (2, "Service Request")];
/// Action outcomes (tenant data in real Halo; 7 is a default tenant's "Internal Note",
/// docs/vendors/halopsa.md#tickets-and-notes).
const OUTCOMES: [(i64, &str); 2] = [(1, "Update"), (7, "Private Note")];

fn full_name(c: &seed::Contact) -> String {
    format!("{} {}", c.first_name, c.last_name)
}

/// A Halo user. `isimportantcontact` is set for managers (not the primary contact): a
/// flag clients must not read as "primary".
fn halo_user(c: &seed::Contact, client_name: &str) -> Value {
    json!({
        "id": c.id, "name": full_name(c), "firstname": c.first_name, "surname": c.last_name,
        "emailaddress": c.email, "jobtitle": c.title, "site_id": main_site_id(c.company_id), "site_name": "Main",
        "client_id": c.company_id, "client_name": client_name, "inactive": !c.active,
        "isimportantcontact": c.title.contains("Manager"),
    })
}

/// A Halo ticket: no contact / owner is 0, the board is rendered as its team name.
fn halo_ticket(t: &seed::Ticket, client_name: &str) -> Value {
    json!({
        "id": t.id, "summary": t.summary, "details": "",
        "status_id": if t.closed { STATUS_CLOSED } else { STATUS_NEW }, "tickettype_id": 1, "priority_id": 3,
        "client_id": t.company_id, "client_name": client_name, "site_id": main_site_id(t.company_id),
        "user_id": t.contact_id.unwrap_or(0), "agent_id": t.owner_id.unwrap_or(0),
        "team": board_name(t.board_id).unwrap_or_default(), "dateoccurred": "2026-11-01T09:00:00",
    })
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
        let client_name = |id: i64| fx.company(id).map(|co| co.name.clone()).unwrap_or_default();
        let sites = fx
            .companies
            .iter()
            .map(|c| {
                let primary = fx.contacts.iter().find(|p| p.company_id == c.id && p.primary);
                let site = json!({
                    "id": main_site_id(c.id), "name": "Main", "client_id": c.id, "client_name": c.name,
                    "maincontact_id": primary.map_or(0, |p| p.id),
                    "maincontact_name": primary.map(full_name).unwrap_or_default(),
                });
                (main_site_id(c.id), site)
            })
            .collect();
        Self {
            data: Mutex::new(HaloData {
                users: fx.contacts.iter().map(|c| (c.id, halo_user(c, &client_name(c.company_id)))).collect(),
                sites,
                tickets: fx.tickets.iter().map(|t| (t.id, halo_ticket(t, &client_name(t.company_id)))).collect(),
                actions: BTreeMap::new(),
                user_failures: HashMap::new(),
                user_update_counts: HashMap::new(),
                next_ticket_id: fx.tickets.iter().map(|t| t.id).max().unwrap_or(0).max(9900) + 1,
                next_action_id: 1,
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
            scopes_requested: Mutex::new(Vec::new()),
            asset_answer_omits: Mutex::new(Vec::new()),
            asset_updates_ignored: Mutex::new(Vec::new()),
            token_ttl: Mutex::new(token_ttl),
            tokens_issued: AtomicU64::new(0),
            rate_limit: Mutex::new(rate_limit),
            window: RollingWindow::new(WINDOW),
            note_failure: Mutex::new(None),
            client_secret: Mutex::new(HALO_CLIENT_SECRET.to_string()),
            secrets_presented: Mutex::default(),
        }
    }

    /// From now on `POST /api/actions` answers 400 with `message` (`None`: actions are
    /// accepted again). Tickets can still be created.
    pub fn fail_ticket_notes(&self, message: Option<&str>) {
        *self.note_failure.lock().unwrap_or_else(|e| e.into_inner()) = message.map(str::to_string);
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

    /// A user as `GET /api/users/{id}` renders it.
    pub fn user(&self, id: i64) -> Option<Value> {
        self.with(|d| d.users.get(&id).cloned())
    }

    /// A site as `GET /api/site/{id}` renders it.
    pub fn site(&self, id: i64) -> Option<Value> {
        self.with(|d| d.sites.get(&id).cloned())
    }

    /// A ticket as `GET /api/tickets/{id}` renders it.
    pub fn ticket_record(&self, id: i64) -> Option<Value> {
        self.with(|d| d.tickets.get(&id).cloned())
    }

    /// The actions of a ticket as `GET /api/actions?ticket_id=` renders them, oldest first.
    pub fn actions_of(&self, ticket_id: i64) -> Vec<Value> {
        self.with(|d| d.actions.values().filter(|a| a["ticket_id"] == json!(ticket_id)).cloned().collect())
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        *self.token_ttl.lock().unwrap_or_else(|e| e.into_inner()) = ttl;
    }

    /// Every token issued so far stops working.
    /// The application's client secret is rotated: only `new_secret` gets a token from now
    /// on, and tokens issued so far are revoked.
    pub fn rotate_client_secret(&self, new_secret: &str) {
        *self.client_secret.lock().unwrap_or_else(|e| e.into_inner()) = new_secret.to_string();
        self.revoke_tokens();
    }

    /// How many token requests presented `secret`.
    pub fn token_requests_with_secret(&self, secret: &str) -> u64 {
        self.secrets_presented.lock().unwrap_or_else(|e| e.into_inner()).get(secret).copied().unwrap_or(0)
    }

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
        self.window.len()
    }

    /// The length of the rolling window (default 5 minutes): tests shorten it.
    pub fn set_rate_window(&self, length: Duration) {
        self.window.set_length(length);
    }

    /// Another integration of the same tenant sends `n` requests now.
    pub fn record_foreign_requests(&self, n: usize) {
        self.window.record_foreign(n);
    }

    /// The `scope` of every token request so far, oldest first.
    pub fn scopes_requested(&self) -> Vec<String> {
        self.scopes_requested.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every access token issued and still known (valid or expired, not revoked).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// From now on a successful `POST /api/asset` applies every element but leaves these
    /// asset ids out of its answer (HaloPSA's answer to an upsert is UNCONFIRMED,
    /// docs/vendors/halopsa.md#unconfirmed-points). An empty list answers every item again.
    pub fn omit_from_asset_answers(&self, ids: &[i64]) {
        *self.asset_answer_omits.lock().unwrap_or_else(|e| e.into_inner()) = ids.to_vec();
    }

    /// From now on a successful `POST /api/asset` answers 201 but leaves these assets as
    /// they were, and out of its answer: whether an upsert can skip an element silently is
    /// UNCONFIRMED. The attempt still counts as an update. An empty list ends it.
    pub fn ignore_asset_updates(&self, ids: &[i64]) {
        *self.asset_updates_ignored.lock().unwrap_or_else(|e| e.into_inner()) = ids.to_vec();
    }

    fn issue_token(&self, scopes: Vec<String>) -> (String, Duration) {
        let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let a = RandomState::new().hash_one((n, nanos));
        let b = RandomState::new().hash_one((a, n));
        let token = format!("{a:016x}{b:016x}");
        let ttl = *self.token_ttl.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (expiry, _)| *expiry > now);
        tokens.insert(token.clone(), (now + ttl, scopes));
        (token, ttl)
    }

    /// The scopes of a valid token; `None` when it is unknown, revoked or expired.
    fn token_scopes(&self, token: &str) -> Option<Vec<String>> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(token).filter(|(expiry, _)| *expiry > Instant::now()).map(|(_, scopes)| scopes.clone())
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

    fn delete_configuration(&self, id: i64) {
        self.with(|d| d.assets.remove(&id));
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

    fn contact_is_active(&self, id: i64) -> Option<bool> {
        self.user(id).map(|u| !u["inactive"].as_bool().unwrap_or(false))
    }

    fn set_contact_active(&self, id: i64, active: bool) {
        self.with(|d| {
            if let Some(user) = d.users.get_mut(&id) {
                user["inactive"] = json!(!active);
            }
        })
    }

    fn delete_contact(&self, id: i64) {
        self.with(|d| d.users.remove(&id));
    }

    fn fail_contact_update(&self, id: i64, message: &str) {
        self.with(|d| d.user_failures.insert(id, message.to_string()));
    }

    fn clear_contact_failures(&self) {
        self.with(|d| d.user_failures.clear());
    }

    fn contact_update_count(&self, id: i64) -> usize {
        self.with(|d| d.user_update_counts.get(&id).copied().unwrap_or(0))
    }

    fn contact_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.with(|d| {
            d.users.values().filter(|u| u["client_id"] == json!(company_id)).filter_map(|u| u["id"].as_i64()).collect()
        })
    }

    fn ticket(&self, id: i64) -> Option<crate::TicketView> {
        self.with(|d| {
            let t = d.tickets.get(&id)?;
            let positive = |field: &str| t[field].as_i64().filter(|v| *v > 0);
            Some(crate::TicketView {
                id,
                company_id: t["client_id"].as_i64().unwrap_or_default(),
                summary: t["summary"].as_str().unwrap_or_default().to_string(),
                contact_id: positive("user_id"),
                owner_id: positive("agent_id"),
                board_id: t["team"].as_str().and_then(team_id),
                closed: t["status_id"].as_i64() == Some(STATUS_CLOSED),
                notes: d
                    .actions
                    .values()
                    .filter(|a| a["ticket_id"] == json!(id))
                    .map(|a| a["note"].as_str().unwrap_or_default().to_string())
                    .collect(),
            })
        })
    }

    fn set_ticket_contact(&self, id: i64, contact_id: Option<i64>) {
        self.with(|d| {
            if let Some(ticket) = d.tickets.get_mut(&id) {
                ticket["user_id"] = json!(contact_id.unwrap_or(0));
            }
        })
    }

    fn ticket_ids_of(&self, company_id: i64) -> Vec<i64> {
        self.with(|d| {
            d.tickets
                .values()
                .filter(|t| t["client_id"] == json!(company_id))
                .filter_map(|t| t["id"].as_i64())
                .collect()
        })
    }

    /// HaloPSA assets have no documented contact field.
    fn configuration_contact(&self, _id: i64) -> Option<i64> {
        None
    }

    /// HaloPSA assets have no documented contact field: nothing to change.
    fn set_configuration_contact(&self, _id: i64, _contact_id: Option<i64>) {}
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
    if !shared.halo.window.admit(limit) {
        shared.stats().throttled += 1;
        return Err(Box::new(text_status(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Rate Limit Reached - {limit} Requests per rolling 5 minute window"),
        )));
    }
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
    if let Err(refusal) = authorize(shared, method, &segments[1..], headers) {
        return *refusal;
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
        ("GET", ["users"]) => {
            shared.record_route(method, "/halo/api/users");
            let search = query.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty());
            let filters: Vec<(&str, i64)> =
                ["client_id", "site_id"].into_iter().filter_map(|k| number(&query, k).map(|n| (k, n))).collect();
            let records = shared.halo.with(|d| {
                d.users
                    .values()
                    .filter(|u| included(u, &query))
                    .filter(|u| filters.iter().all(|(k, n)| u[*k] == json!(n)))
                    .filter(|u| {
                        search.as_ref().is_none_or(|s| {
                            ["name", "emailaddress"]
                                .iter()
                                .any(|k| u[*k].as_str().unwrap_or("").to_lowercase().contains(s))
                        })
                    })
                    .cloned()
                    .collect()
            });
            json_response(&paginate(records, &query, "users"))
        }
        ("GET", ["users", id]) => {
            shared.record_route(method, "/halo/api/users/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.halo.user(id)) {
                Some(user) => json_response(&user),
                None => exception(StatusCode::NOT_FOUND, "User not found"),
            }
        }
        ("POST", ["users"]) => {
            shared.record_route(method, "/halo/api/users");
            update_users(shared, body)
        }
        ("GET", ["site", id]) => {
            shared.record_route(method, "/halo/api/site/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.halo.site(id)) {
                Some(site) => json_response(&site),
                None => exception(StatusCode::NOT_FOUND, "Site not found"),
            }
        }
        ("GET", ["tickets"]) => {
            shared.record_route(method, "/halo/api/tickets");
            let filters: Vec<(&str, i64)> = ["client_id", "site_id", "user_id", "agent_id", "status_id"]
                .into_iter()
                .filter_map(|k| number(&query, k).map(|n| (k, n)))
                .collect();
            let open_only = flag(&query, "open_only") == Some(true);
            let closed_only = flag(&query, "closed_only") == Some(true);
            let records = shared.halo.with(|d| {
                d.tickets
                    .values()
                    .filter(|t| filters.iter().all(|(k, n)| t[*k] == json!(n)))
                    .filter(|t| {
                        let closed = t["status_id"].as_i64() == Some(STATUS_CLOSED);
                        !(open_only && closed || closed_only && !closed)
                    })
                    .cloned()
                    .collect()
            });
            json_response(&paginate(records, &query, "tickets"))
        }
        ("GET", ["tickets", id]) => {
            shared.record_route(method, "/halo/api/tickets/{id}");
            match id.parse::<i64>().ok().and_then(|id| shared.halo.ticket_record(id)) {
                Some(ticket) => json_response(&ticket),
                None => exception(StatusCode::NOT_FOUND, "Ticket not found"),
            }
        }
        ("POST", ["tickets"]) => {
            shared.record_route(method, "/halo/api/tickets");
            post_tickets(shared, body)
        }
        ("GET", ["actions"]) => {
            shared.record_route(method, "/halo/api/actions");
            let ticket = number(&query, "ticket_id");
            let records = shared.halo.with(|d| {
                d.actions.values().filter(|a| ticket.is_none_or(|t| a["ticket_id"] == json!(t))).cloned().collect()
            });
            json_response(&paginate(records, &query, "actions"))
        }
        ("POST", ["actions"]) => {
            shared.record_route(method, "/halo/api/actions");
            post_actions(shared, body)
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

/// The scope a request needs: `read:{area}` to read, `edit:{area}` to write; `all` grants
/// every one (docs/vendors/halopsa.md#authentication).
fn needed_scope(method: &Method, segments: &[&str]) -> String {
    let area = match segments.first().copied().unwrap_or_default() {
        "asset" => "assets",
        "tickets" | "actions" => "tickets",
        "clientcontract" => "contracts",
        _ => "customers",
    };
    let access = if method == Method::GET { "read" } else { "edit" };
    format!("{access}:{area}")
}

/// The Bearer token of an API call: valid, and granted the scope the route needs. The
/// refusals echo the token presented, as some real APIs do.
fn authorize(shared: &Shared, method: &Method, segments: &[&str], headers: &HeaderMap) -> Result<(), Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(scopes) = token.and_then(|t| shared.halo.token_scopes(t)) else {
        let message = format!("Unauthorized: token '{}' is not valid", token.unwrap_or_default());
        return Err(Box::new(text_status(StatusCode::UNAUTHORIZED, &message)));
    };
    let needed = needed_scope(method, segments);
    if scopes.iter().any(|s| s == "all" || *s == needed) {
        return Ok(());
    }
    let message = format!("The token '{}' does not have the scope {needed}", token.unwrap_or_default());
    Err(Box::new(exception(StatusCode::FORBIDDEN, &message)))
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
    let presented = form.get("client_secret").cloned().unwrap_or_default();
    *shared.halo.secrets_presented.lock().unwrap_or_else(|e| e.into_inner()).entry(presented.clone()).or_default() += 1;
    let accepted = shared.halo.client_secret.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if form.get("client_id").map(String::as_str) != Some(HALO_CLIENT_ID) || presented != accepted {
        // The refusal echoes the request it refused (the secret in it form-encoded), as
        // some real APIs do.
        let description = format!("No client matches the request {}", String::from_utf8_lossy(body));
        return json_status(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": description}),
        );
    }
    let scope = form.get("scope").filter(|s| !s.trim().is_empty()).cloned().unwrap_or_else(|| "all".to_string());
    shared.halo.scopes_requested.lock().unwrap_or_else(|e| e.into_inner()).push(scope.clone());
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_string).collect();
    if let Some(unknown) = scopes.iter().find(|s| !known_scope(s)) {
        return json_status(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_scope", "error_description": format!("unknown scope {unknown}")}),
        );
    }
    let (access_token, ttl) = shared.halo.issue_token(scopes);
    json_response(&json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": scope,
    }))
}

/// Scopes the sandbox grants: `all`, and `read:`/`edit:` of the areas it serves.
fn known_scope(scope: &str) -> bool {
    scope == "all"
        || scope.split_once(':').is_some_and(|(access, area)| {
            matches!(access, "read" | "edit") && matches!(area, "customers" | "assets" | "tickets" | "contracts")
        })
}

/// Objects of a POST body, which must be a JSON array (`what`: "assets", "users", …).
fn array_body(body: &Bytes, what: &str) -> Result<Vec<Map<String, Value>>, Box<Response>> {
    let elements = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(elements)) => elements,
        Ok(_) => return Err(Box::new(result_error(&format!("The request body must be a JSON array of {what}")))),
        Err(e) => return Err(Box::new(result_error(&format!("The request body could not be read: {e}")))),
    };
    elements
        .into_iter()
        .map(|element| match element {
            Value::Object(object) => Ok(object),
            _ => Err(Box::new(result_error("Every element must be a JSON object"))),
        })
        .collect()
}

/// An element's `id`: `None` when absent, null or 0 (a create); integers only (HaloPSA
/// refuses `95.0`).
fn element_id(object: &Map<String, Value>) -> Result<Option<i64>, String> {
    match object.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(id) if id.is_i64() => Ok(id.as_i64().filter(|id| *id != 0)),
        Some(id) => Err(format!("Invalid id {id}: ids must be integers")),
    }
}

/// One element of an update batch: the record id and the fields sent.
type Update<'a> = (i64, &'a Map<String, Value>);

/// Update elements (all with a positive integer id) of a batch that creates nothing.
fn update_elements<'a>(elements: &'a [Map<String, Value>], what: &str) -> Result<Vec<Update<'a>>, String> {
    let needs_id = || format!("Creating {what} is not supported by this sandbox: every element needs an id");
    elements
        .iter()
        .map(|object| match element_id(object)? {
            Some(id) if id > 0 => Ok((id, object)),
            _ => Err(needs_id()),
        })
        .collect()
}

/// Known fields of `record` set from `object`, names matched ignoring case; unknown ones
/// and `id` are ignored.
fn merge(record: &mut Value, object: &Map<String, Value>) {
    for (key, value) in object {
        if key.eq_ignore_ascii_case("id") {
            continue;
        }
        let known = record.as_object().and_then(|r| r.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned());
        if let Some(field) = known {
            record[field.as_str()] = value.clone();
        }
    }
}

/// A sent field, its name matched ignoring case.
fn sent<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// An atomic batch of partial updates of `records`: every element is checked (unknown id,
/// injected failure, `check` of the current record and the sent fields) before anything
/// changes. Returns the updated records in order, or the first error, and how many
/// elements reached an existing record.
fn apply_updates(
    records: &mut BTreeMap<i64, Value>,
    failures: &HashMap<i64, String>,
    counts: &mut HashMap<i64, usize>,
    updates: &[Update<'_>],
    noun: &str,
    check: impl Fn(i64, &Value, &Map<String, Value>) -> Option<String>,
) -> (Result<Vec<Value>, String>, u64) {
    let mut reached = 0u64;
    let mut error: Option<String> = None;
    for (id, object) in updates {
        let Some(current) = records.get(id) else {
            error.get_or_insert_with(|| format!("{noun} {id} does not exist"));
            continue;
        };
        reached += 1;
        *counts.entry(*id).or_default() += 1;
        if let Some(message) = failures.get(id) {
            error.get_or_insert_with(|| message.clone());
        }
        if let Some(message) = check(*id, current, object) {
            error.get_or_insert(message);
        }
    }
    if let Some(message) = error {
        return (Err(message), reached);
    }
    let mut staged: BTreeMap<i64, Value> = BTreeMap::new();
    for (id, object) in updates {
        merge(staged.entry(*id).or_insert_with(|| records[id].clone()), object);
    }
    for (id, record) in &staged {
        records.insert(*id, record.clone());
    }
    (Ok(updates.iter().map(|(id, _)| staged[id].clone()).collect()), reached)
}

/// `POST /api/asset`: an atomic batch of partial updates.
fn update_assets(shared: &Shared, body: &Bytes) -> Response {
    let elements = match array_body(body, "assets") {
        Ok(elements) => elements,
        Err(response) => return *response,
    };
    let updates = match update_elements(&elements, "assets") {
        Ok(updates) => updates,
        Err(message) => return result_error(&message),
    };
    let ignored = shared.halo.asset_updates_ignored.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (result, reached) = shared.halo.with(|d| {
        let untouched: Vec<(i64, Value)> =
            ignored.iter().filter_map(|id| d.assets.get(id).map(|a| (*id, a.clone()))).collect();
        let outcome = apply_updates(
            &mut d.assets,
            &d.update_failures,
            &mut d.update_counts,
            &updates,
            "Asset",
            |id, _, object| {
                if sent(object, "inactive").is_some_and(|v| !v.is_boolean()) {
                    return Some(format!("Asset {id}: inactive must be true or false"));
                }
                if sent(object, "status_id").is_some_and(|v| !v.is_i64()) {
                    return Some(format!("Asset {id}: status_id must be an integer"));
                }
                None
            },
        );
        if outcome.0.is_ok() {
            d.assets.extend(untouched);
        }
        outcome
    });
    shared.stats().configuration_patches += reached;
    let mut omitted = shared.halo.asset_answer_omits.lock().unwrap_or_else(|e| e.into_inner()).clone();
    omitted.extend(ignored);
    match result {
        Ok(mut updated) => {
            updated.retain(|asset| !asset["id"].as_i64().is_some_and(|id| omitted.contains(&id)));
            json_status(StatusCode::CREATED, &Value::Array(updated))
        }
        Err(message) => result_error(&message),
    }
}

/// `POST /api/users`: an atomic batch of partial updates, like assets.
fn update_users(shared: &Shared, body: &Bytes) -> Response {
    let elements = match array_body(body, "users") {
        Ok(elements) => elements,
        Err(response) => return *response,
    };
    let updates = match update_elements(&elements, "users") {
        Ok(updates) => updates,
        Err(message) => return result_error(&message),
    };
    let result = shared.halo.with(|d| {
        apply_updates(
            &mut d.users,
            &d.user_failures,
            &mut d.user_update_counts,
            &updates,
            "User",
            |id, user, object| {
                for flag in ["inactive", "isimportantcontact"] {
                    if sent(object, flag).is_some_and(|v| !v.is_boolean()) {
                        return Some(format!("User {id}: {flag} must be true or false"));
                    }
                }
                if sent(object, "client_id").is_some_and(|v| *v != user["client_id"]) {
                    return Some(format!("User {id}: client_id cannot be changed"));
                }
                None
            },
        )
        .0
    });
    match result {
        Ok(updated) => json_status(StatusCode::CREATED, &Value::Array(updated)),
        Err(message) => result_error(&message),
    }
}

/// A ticket record's references and types (after the sent fields were merged).
fn check_ticket(d: &HaloData, record: &Value) -> Result<(), String> {
    let id = record["id"].as_i64().unwrap_or_default();
    let label = if id > 0 { format!("Ticket {id}") } else { "New ticket".to_string() };
    for field in ["client_id", "site_id", "user_id", "agent_id", "status_id", "tickettype_id", "priority_id"] {
        if !record[field].is_i64() {
            return Err(format!("{label}: {field} must be an integer"));
        }
    }
    for field in ["summary", "details", "team"] {
        if !record[field].is_string() {
            return Err(format!("{label}: {field} must be a string"));
        }
    }
    if record["summary"].as_str().is_some_and(|s| s.trim().is_empty()) {
        return Err(format!("{label}: a summary is required"));
    }
    let number = |field: &str| record[field].as_i64().unwrap_or_default();
    let client = number("client_id");
    if !d.clients.contains_key(&client) {
        return Err(format!("Client {client} does not exist"));
    }
    let site = number("site_id");
    match d.sites.get(&site) {
        Some(s) if s["client_id"] == json!(client) => {}
        Some(_) => return Err(format!("Site {site} does not belong to client {client}")),
        None => return Err(format!("{label}: a site of client {client} is required (site_id {site} does not exist)")),
    }
    match number("user_id") {
        0 => {}
        user => match d.users.get(&user) {
            Some(u) if u["client_id"] == json!(client) => {}
            Some(_) => return Err(format!("User {user} does not belong to client {client}")),
            None => return Err(format!("User {user} does not exist")),
        },
    }
    let agent = number("agent_id");
    if agent != 0 && !seed::OWNERS.iter().any(|(id, _)| *id == agent) {
        return Err(format!("Agent {agent} does not exist"));
    }
    let team = record["team"].as_str().unwrap_or_default();
    if !team.is_empty() && team_id(team).is_none() {
        return Err(format!("Team '{team}' does not exist"));
    }
    if !TICKET_STATUSES.iter().any(|(s, _)| *s == number("status_id")) {
        return Err(format!("Status {} does not exist", number("status_id")));
    }
    if !TICKET_TYPES.iter().any(|(t, _)| *t == number("tickettype_id")) {
        return Err(format!("Ticket type {} does not exist", number("tickettype_id")));
    }
    Ok(())
}

/// `POST /api/tickets`: elements with an id update that ticket, elements without one
/// create a ticket. Atomic: one invalid element and nothing changes.
fn post_tickets(shared: &Shared, body: &Bytes) -> Response {
    let elements = match array_body(body, "tickets") {
        Ok(elements) => elements,
        Err(response) => return *response,
    };
    let single = elements.len() == 1;
    let result = shared.halo.with(|d| {
        let mut staged: Vec<Value> = Vec::with_capacity(elements.len());
        let mut next_id = d.next_ticket_id;
        for object in &elements {
            let mut record = match element_id(object)? {
                Some(id) if id > 0 => {
                    // Earlier elements of the same batch count.
                    let current = staged.iter().rev().find(|t| t["id"] == json!(id)).or_else(|| d.tickets.get(&id));
                    current.cloned().ok_or_else(|| format!("Ticket {id} does not exist"))?
                }
                Some(id) => return Err(format!("Invalid id {id}")),
                None => {
                    for required in ["client_id", "site_id", "summary"] {
                        if sent(object, required).is_none() {
                            return Err(format!("New ticket: {required} is required"));
                        }
                    }
                    let id = next_id;
                    next_id += 1;
                    json!({
                        "id": id, "summary": "", "details": "", "status_id": STATUS_NEW, "tickettype_id": 1,
                        "priority_id": 3, "client_id": 0, "client_name": "", "site_id": 0, "user_id": 0,
                        "agent_id": 0, "team": "", "dateoccurred": "2026-11-01T09:00:00",
                    })
                }
            };
            merge(&mut record, object);
            check_ticket(d, &record)?;
            if let Some(team) = record["team"].as_str().and_then(team_id).and_then(board_name) {
                record["team"] = json!(team);
            }
            let client = record["client_id"].as_i64().unwrap_or_default();
            record["client_name"] = d.clients.get(&client).map(|c| c["name"].clone()).unwrap_or_default();
            staged.push(record);
        }
        d.next_ticket_id = next_id;
        for record in &staged {
            d.tickets.insert(record["id"].as_i64().unwrap_or_default(), record.clone());
        }
        Ok(staged)
    });
    match result {
        // One element is answered with the saved object itself, several with an array.
        Ok(mut saved) if single => json_status(StatusCode::CREATED, &saved.remove(0)),
        Ok(saved) => json_status(StatusCode::CREATED, &Value::Array(saved)),
        Err(message) => result_error(&message),
    }
}

/// `POST /api/actions`: new actions (notes) on existing tickets; an outcome is mandatory.
fn post_actions(shared: &Shared, body: &Bytes) -> Response {
    if let Some(message) = shared.halo.note_failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        return result_error(&message);
    }
    let elements = match array_body(body, "actions") {
        Ok(elements) => elements,
        Err(response) => return *response,
    };
    let single = elements.len() == 1;
    let result = shared.halo.with(|d| {
        let mut staged = Vec::with_capacity(elements.len());
        let mut next_id = d.next_action_id;
        for object in &elements {
            if element_id(object)?.is_some() {
                return Err("Updating actions is not supported by this sandbox".to_string());
            }
            let ticket_id = match sent(object, "ticket_id") {
                Some(id) if id.is_i64() => id.as_i64().unwrap_or_default(),
                Some(id) => return Err(format!("Invalid ticket_id {id}: ids must be integers")),
                None => return Err("A ticket_id is required".to_string()),
            };
            if !d.tickets.contains_key(&ticket_id) {
                return Err(format!("Ticket {ticket_id} does not exist"));
            }
            let outcome_id = match sent(object, "outcome_id") {
                None | Some(Value::Null) => return Err("An Outcome must be entered for this Action".to_string()),
                Some(id) if id.is_i64() => id.as_i64().unwrap_or_default(),
                Some(id) => return Err(format!("Invalid outcome_id {id}: ids must be integers")),
            };
            let Some((_, outcome)) = OUTCOMES.iter().find(|(id, _)| *id == outcome_id) else {
                return Err(format!("Outcome {outcome_id} does not exist"));
            };
            let html = match (sent(object, "note_html"), sent(object, "note")) {
                (Some(Value::String(html)), _) => html.clone(),
                (None, Some(Value::String(text))) => escape_text(text),
                (None, None) => String::new(),
                _ => return Err("note_html must be a string".to_string()),
            };
            let hidden = match sent(object, "hiddenfromuser") {
                None => false,
                Some(Value::Bool(hidden)) => *hidden,
                Some(_) => return Err("hiddenfromuser must be true or false".to_string()),
            };
            let id = next_id;
            next_id += 1;
            staged.push(json!({
                "id": id, "ticket_id": ticket_id, "outcome_id": outcome_id, "outcome": outcome,
                "note_html": html, "note": html_to_text(&html), "hiddenfromuser": hidden, "who": "API",
                "actiondatecreated": "2026-11-01T09:00:00",
            }));
        }
        d.next_action_id = next_id;
        for action in &staged {
            d.actions.insert(action["id"].as_i64().unwrap_or_default(), action.clone());
        }
        Ok(staged)
    });
    match result {
        Ok(mut saved) if single => json_status(StatusCode::CREATED, &saved.remove(0)),
        Ok(saved) => json_status(StatusCode::CREATED, &Value::Array(saved)),
        Err(message) => result_error(&message),
    }
}

/// The fixture board id of a team name (ignoring case).
fn team_id(name: &str) -> Option<i64> {
    seed::BOARDS.iter().find(|(_, board)| board.eq_ignore_ascii_case(name.trim())).map(|(id, _)| *id)
}

fn board_name(id: i64) -> Option<&'static str> {
    seed::BOARDS.iter().find(|(board, _)| *board == id).map(|(_, name)| *name)
}

fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `note_html` as plain text: `<br>` a line break, the end of a paragraph a blank line,
/// other tags removed, entities decoded.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + len].trim().to_ascii_lowercase();
        let closing = tag.starts_with('/');
        let name = tag.trim_start_matches('/').split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        match name {
            "br" => out.push('\n'),
            "p" | "div" if closing => out.push_str("\n\n"),
            _ => {}
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    decode_entities(&out).trim().to_string()
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let entity = tail.find(';').filter(|end| *end <= 10).map(|end| &tail[..=end]);
        let decoded = entity.and_then(|e| match e {
            "&amp;" => Some('&'),
            "&lt;" => Some('<'),
            "&gt;" => Some('>'),
            "&quot;" => Some('"'),
            "&#39;" | "&#x27;" | "&apos;" => Some('\''),
            "&nbsp;" => Some(' '),
            _ => {
                let number = e.strip_prefix("&#")?.strip_suffix(';')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(code)
            }
        });
        match (entity, decoded) {
            (Some(entity), Some(c)) => {
                out.push(c);
                rest = &tail[entity.len()..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
