//! IT Glue (docs/vendors/itglue.md): JSON:API documents (`data.id` a string, kebab-case attributes,
//! `application/vnd.api+json`), the `x-api-key` header, `page[number]`/`page[size]` paging
//! with `meta`/`links`, `filter[…]` in snake_case or kebab-case, the asynchronous bulk
//! `DELETE /organizations`, account exports, and the rolling 5-minute request window.
//!
//! Where docs/vendors/itglue.md#unconfirmed-points lists a behaviour, the simulator takes the
//! reading that is worst for a client, so a client that relies on the favourable one fails in
//! tests:
//! - `filter[name]` on organizations is a case-sensitive substring match (a third party
//!   reports this): a client must compare names itself to find an exact match.
//! - `GET /configurations` and `GET /passwords` leave archived records out unless
//!   `filter[archived]` is sent: a client must count `true` and `false` separately.
//! - The nested documents route can be switched off ([`ItGlueSim::set_documents_route_available`]).
//! - A 429 carries no `Retry-After`.
//! - Deletion is asynchronous: a deleted organization is still served until the deletion
//!   delay has passed, then it answers 404.
//!
//! # Fixture
//! Organizations (`organization-type-id` 1 "Customer"; `primary` false, `parent-id` null,
//! `ancestor-ids` []; `psa-integration-type` "manage" when `psa-id` is set, else null):
//!
//! | id | name | status | psa-id | dependents |
//! |---|---|---|---|---|
//! | 9001 | Contoso Dental | 1 Active | "250" | configurations 90010101–90010103 + 90010104 archived; documents 90010501–90010502; flexible assets 90010601–90010602 (type 1 "Applications"), 90010603 (type 2 "Email"), none of type 3 "Backup"; passwords 90010201–90010202 + 90010203 archived; contacts 90010301–90010303; location 90010401 |
//! | 9002 | Adatum Travel | 1 Active | "260" | none at all |
//! | 9003 | Litware Inc | 1 Active | "410" | configuration 90030101 |
//! | 9004 | LITWARE INC | 1 Active | "411" | none |
//! | 9005 | Fabrikam Legal | 1 Active | "100" | configurations 90050101–90050102; password 90050201 |
//! | 9006 | Northwind Logistics | 2 Inactive | null | none |
//! | 9007 | Contoso Dental Lab | 1 Active | null | location 90070401 |
//!
//! Dependent ids are `org × 10,000 + kind × 100 + n` with kinds 1 configurations,
//! 2 passwords, 3 contacts, 4 locations, 5 documents, 6 flexible assets. Organizations added
//! at run time ([`ItGlueSim::add_organizations`]) get ids from 20001 on and no dependents.
//! 9001's `quick-notes` are longer than 250 characters: lists truncate them (as IT Glue
//! does), `GET /organizations/{id}` does not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::Shared;
use crate::window::RollingWindow;

/// The sandbox's IT Glue API key (fake; IT Glue keys start with `ITG.`).
pub const ITGLUE_API_KEY: &str = "ITG.sandbox-itglue-key-6e0c94d1";
/// The path prefix of the IT Glue API (the equivalent of `https://api.itglue.com`).
pub const ITGLUE_PREFIX: &str = "/itglue";
/// The JSON:API media type: every response carries it, every request body must.
pub const ITGLUE_MEDIA_TYPE: &str = "application/vnd.api+json";
/// Page size without `page[size]`.
pub const ITGLUE_DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page served; larger `page[size]` values are clamped to it.
pub const ITGLUE_MAX_PAGE_SIZE: usize = 1000;

const WINDOW: Duration = Duration::from_secs(300);
const DEFAULT_RATE_LIMIT: u32 = 3000;
const DEFAULT_DELETION_DELAY: Duration = Duration::from_millis(300);
const DEFAULT_EXPORT_DELAY: Duration = Duration::from_millis(200);
/// Bytes of a finished export after the zip magic number.
const DEFAULT_EXPORT_SIZE: usize = 48 * 1024;
/// IT Glue truncates `quick-notes` to this many characters in list responses.
const QUICK_NOTES_IN_LISTS: usize = 250;
/// `created-at`/`updated-at` of fixture records: fixed, so responses are reproducible.
const FIXTURE_TIME: &str = "2024-03-04T09:30:00.000Z";
/// Ids of organizations added at run time start here, clear of the fixture's.
const FIRST_ADDED_ORG_ID: i64 = 20_001;

const STATUS_ACTIVE: i64 = 1;
const STATUS_INACTIVE: i64 = 2;
const ORGANIZATION_STATUSES: [(i64, &str); 2] = [(STATUS_ACTIVE, "Active"), (STATUS_INACTIVE, "Inactive")];
const FLEXIBLE_ASSET_TYPES: [(i64, &str); 3] = [(1, "Applications"), (2, "Email"), (3, "Backup")];

/// `(id, name, psa-id, status)`.
const ORGANIZATIONS: [(i64, &str, Option<&str>, i64); 7] = [
    (9001, "Contoso Dental", Some("250"), STATUS_ACTIVE),
    (9002, "Adatum Travel", Some("260"), STATUS_ACTIVE),
    (9003, "Litware Inc", Some("410"), STATUS_ACTIVE),
    (9004, "LITWARE INC", Some("411"), STATUS_ACTIVE),
    (9005, "Fabrikam Legal", Some("100"), STATUS_ACTIVE),
    // Mirrors the PSA fixture, where Northwind (company 300) has the ConnectWise status Inactive.
    (9006, "Northwind Logistics", None, STATUS_INACTIVE),
    (9007, "Contoso Dental Lab", None, STATUS_ACTIVE),
];

/// `(organization, kind, name, archived, detail)`; `detail` is the kind's extra attribute
/// (configuration type, password username, contact title, location city, flexible asset type).
const DEPENDENTS: &[(i64, Kind, &str, bool, &str)] = &[
    (9001, Kind::Configurations, "CD-FS01", false, "Server"),
    (9001, Kind::Configurations, "CD-RECEPTION-PC", false, "Workstation"),
    (9001, Kind::Configurations, "CD-FW01", false, "Firewall"),
    (9001, Kind::Configurations, "CD-OLD-XRAY-PC", true, "Workstation"),
    (9001, Kind::Passwords, "Domain Admin", false, "administrator"),
    (9001, Kind::Passwords, "Firewall Admin", false, "admin"),
    (9001, Kind::Passwords, "Old Wi-Fi", true, "guest"),
    (9001, Kind::Contacts, "Jane Doe", false, "CEO"),
    (9001, Kind::Contacts, "Bob Wilson", false, "IT Manager"),
    (9001, Kind::Contacts, "Carla Mendes", false, "Receptionist"),
    (9001, Kind::Locations, "Main Office", false, "Seattle"),
    (9001, Kind::Documents, "Network Overview", false, ""),
    (9001, Kind::Documents, "Onboarding Runbook", false, ""),
    (9001, Kind::FlexibleAssets, "Dentrix", false, "1"),
    (9001, Kind::FlexibleAssets, "Microsoft 365", false, "1"),
    (9001, Kind::FlexibleAssets, "Exchange Online", false, "2"),
    (9003, Kind::Configurations, "LIT-PC01", false, "Workstation"),
    (9005, Kind::Configurations, "FAB-DC01", false, "Server"),
    (9005, Kind::Configurations, "FAB-PC01", false, "Workstation"),
    (9005, Kind::Passwords, "Fabrikam Wi-Fi", false, "staff"),
    (9007, Kind::Locations, "Lab", false, "Tacoma"),
];

/// Organization dependents. Ids are unique across kinds (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Configurations,
    Passwords,
    Contacts,
    Locations,
    Documents,
    FlexibleAssets,
}

impl Kind {
    /// The JSON:API `type`.
    fn type_name(self) -> &'static str {
        match self {
            Kind::Configurations => "configurations",
            Kind::Passwords => "passwords",
            Kind::Contacts => "contacts",
            Kind::Locations => "locations",
            Kind::Documents => "documents",
            Kind::FlexibleAssets => "flexible-assets",
        }
    }

    /// The path segment (top-level route or nested relationship).
    fn path(self) -> &'static str {
        match self {
            Kind::FlexibleAssets => "flexible_assets",
            other => other.type_name(),
        }
    }

    fn id_code(self) -> i64 {
        match self {
            Kind::Configurations => 1,
            Kind::Passwords => 2,
            Kind::Contacts => 3,
            Kind::Locations => 4,
            Kind::Documents => 5,
            Kind::FlexibleAssets => 6,
        }
    }

    /// Kinds with an `archived` attribute, which are hidden unless `filter[archived]` asks.
    fn archivable(self) -> bool {
        matches!(self, Kind::Configurations | Kind::Passwords)
    }

    /// Top-level list routes. Documents have none: third parties report `GET /documents`
    /// answers 404.
    fn top_level(segment: &str) -> Option<Kind> {
        match segment {
            "configurations" => Some(Kind::Configurations),
            "passwords" => Some(Kind::Passwords),
            "contacts" => Some(Kind::Contacts),
            "locations" => Some(Kind::Locations),
            "flexible_assets" => Some(Kind::FlexibleAssets),
            _ => None,
        }
    }

    /// `GET /organizations/{id}/relationships/{segment}`
    /// (docs/vendors/itglue.md#counting-dependencies).
    fn nested(segment: &str) -> Option<Kind> {
        match segment {
            "configurations" => Some(Kind::Configurations),
            "passwords" => Some(Kind::Passwords),
            "contacts" => Some(Kind::Contacts),
            "locations" => Some(Kind::Locations),
            "documents" => Some(Kind::Documents),
            _ => None,
        }
    }
}

struct Organization {
    /// The resource object as `GET /organizations/{id}` serves it.
    value: Value,
    /// Set by an accepted DELETE; the organization disappears once this has passed.
    remove_at: Option<Instant>,
}

struct Dependent {
    kind: Kind,
    org_id: i64,
    value: Value,
}

struct Export {
    id: i64,
    org_id: Option<i64>,
    org_name: Option<String>,
    include_logs: bool,
    created: Instant,
    created_at: DateTime<Utc>,
    /// Captured at creation, so changing the delay does not move exports already running.
    delay: Duration,
    /// `fail_exports` was on when it was requested.
    fails: bool,
    /// The host its link names instead of `host` ([`ItGlueSim::set_export_download_host`]).
    download_host: Option<String>,
    /// The Host of the POST, for an absolute `download-url` (unless a download host is set).
    host: String,
}

/// The bytes a finished export serves: a zip's magic number, then `size` bytes that depend
/// only on the export's id (a test compares what it archived with this).
pub fn export_bytes(export_id: i64, size: usize) -> Vec<u8> {
    let mut state = (export_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = b"PK\x03\x04".to_vec();
    bytes.extend((0..size).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    }));
    bytes
}

/// The bearer token in an export's download link: the link alone grants the download.
pub fn export_link_token(export_id: i64) -> String {
    format!("sandbox-export-token-{export_id}-7c1e")
}

impl Export {
    /// The resource object as served at `now`: pending for the first half of the delay,
    /// processing for the second, then done (with a download URL) or failed.
    fn render(&self, now: Instant) -> Value {
        let elapsed = now.saturating_duration_since(self.created);
        let half = self.delay / 2;
        let (status, since) = if elapsed.is_zero() || elapsed < half {
            ("pending", Duration::ZERO)
        } else if elapsed < self.delay {
            ("processing", half)
        } else if self.fails {
            ("failed", self.delay)
        } else {
            ("done", self.delay)
        };
        let updated = self.created_at + chrono::Duration::from_std(since).unwrap_or_default();
        let download = (status == "done").then(|| {
            let host = self.download_host.as_deref().unwrap_or(&self.host);
            format!("http://{host}{ITGLUE_PREFIX}/_exports/{}.zip?token={}", self.id, export_link_token(self.id))
        });
        json!({
            "id": self.id.to_string(),
            "type": "exports",
            "attributes": {
                "organization-id": self.org_id,
                "organization-name": self.org_name,
                "status": status,
                "download-url": download,
                "include-logs": self.include_logs,
                "created-at": timestamp(self.created_at),
                "updated-at": timestamp(updated),
            },
        })
    }
}

struct Data {
    organizations: BTreeMap<i64, Organization>,
    /// Every dependent by id (ids are unique across kinds).
    dependents: BTreeMap<i64, Dependent>,
    /// Organizations accepted for deletion, removed or not.
    marked: BTreeSet<i64>,
    deletion_failures: HashMap<i64, String>,
    exports: BTreeMap<i64, Export>,
    next_org_id: i64,
    next_export_id: i64,
}

impl Data {
    /// Removes organizations whose deletion delay has passed, with their dependents.
    /// Lazy (on every access) because nothing else in the sandbox runs timers.
    fn purge(&mut self, now: Instant) {
        let gone: BTreeSet<i64> = self
            .organizations
            .iter()
            .filter(|(_, org)| org.remove_at.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        if gone.is_empty() {
            return;
        }
        self.organizations.retain(|id, _| !gone.contains(id));
        self.dependents.retain(|_, dep| !gone.contains(&dep.org_id));
    }
}

/// IT Glue's data, controls and rate window, reachable synchronously from tests.
pub struct ItGlueSim {
    data: Mutex<Data>,
    deletion_delay: Mutex<Duration>,
    export_delay: Mutex<Duration>,
    fail_exports: AtomicBool,
    refuse_exports: AtomicBool,
    documents_route: AtomicBool,
    export_requests: AtomicU64,
    export_size: Mutex<usize>,
    download_host: Mutex<Option<String>>,
    downloads: AtomicU64,
    downloads_with_key: AtomicU64,
    rate_limit: Mutex<Option<u32>>,
    window: RollingWindow,
    /// The accepted API key (the sandbox's constant until replaced).
    api_key: Mutex<String>,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Initials, upper-cased: IT Glue short names are short codes.
fn short_name(name: &str) -> String {
    name.split_whitespace().filter_map(|w| w.chars().next()).collect::<String>().to_uppercase()
}

fn organization(id: i64, name: &str, psa_id: Option<&str>, status: i64, quick_notes: &str) -> Value {
    let status_name = ORGANIZATION_STATUSES.iter().find(|(s, _)| *s == status).map_or("Active", |(_, n)| n);
    json!({
        "id": id.to_string(),
        "type": "organizations",
        "attributes": {
            "name": name,
            "organization-type-id": 1,
            "organization-type-name": "Customer",
            "organization-status-id": status,
            "organization-status-name": status_name,
            "short-name": short_name(name),
            "primary": false,
            "parent-id": null,
            "ancestor-ids": [],
            "alert": "",
            "description": "",
            "quick-notes": quick_notes,
            "psa-id": psa_id,
            "psa-integration-type": psa_id.map(|_| "manage"),
            "created-at": FIXTURE_TIME,
            "updated-at": FIXTURE_TIME,
        },
    })
}

fn dependent(id: i64, org_id: i64, org_name: &str, kind: Kind, name: &str, archived: bool, detail: &str) -> Value {
    let mut attributes = json!({
        "organization-id": org_id,
        "organization-name": org_name,
        "name": name,
        "created-at": FIXTURE_TIME,
        "updated-at": FIXTURE_TIME,
    });
    let extra = match kind {
        Kind::Configurations => json!({"configuration-type-name": detail, "hostname": name, "archived": archived}),
        // No `password` value: lists never carry one.
        Kind::Passwords => json!({"username": detail, "password-category-name": "General", "archived": archived}),
        Kind::Contacts => {
            let (first, last) = name.split_once(' ').unwrap_or((name, ""));
            json!({"first-name": first, "last-name": last, "title": detail, "important": false})
        }
        Kind::Locations => json!({"city": detail, "primary": true}),
        Kind::Documents => json!({"public": false}),
        Kind::FlexibleAssets => {
            let type_id: i64 = detail.parse().unwrap_or(1);
            let type_name = FLEXIBLE_ASSET_TYPES.iter().find(|(t, _)| *t == type_id).map_or("", |(_, n)| n);
            json!({"flexible-asset-type-id": type_id, "flexible-asset-type-name": type_name, "traits": {}})
        }
    };
    if let (Some(target), Some(extra)) = (attributes.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    json!({"id": id.to_string(), "type": kind.type_name(), "attributes": attributes})
}

fn fixture() -> Data {
    let quick_notes = "Front desk opens 07:30; the imaging server is in the back office. ".repeat(5);
    let organizations = ORGANIZATIONS
        .iter()
        .map(|(id, name, psa_id, status)| {
            let notes = if *id == 9001 { quick_notes.trim_end() } else { "" };
            (*id, Organization { value: organization(*id, name, *psa_id, *status, notes), remove_at: None })
        })
        .collect();
    let mut dependents = BTreeMap::new();
    let mut counts: HashMap<(i64, i64), i64> = HashMap::new();
    for (org_id, kind, name, archived, detail) in DEPENDENTS {
        let n = counts.entry((*org_id, kind.id_code())).or_default();
        *n += 1;
        let id = org_id * 10_000 + kind.id_code() * 100 + *n;
        let org_name = ORGANIZATIONS.iter().find(|o| o.0 == *org_id).map_or("", |o| o.1);
        let value = dependent(id, *org_id, org_name, *kind, name, *archived, detail);
        dependents.insert(id, Dependent { kind: *kind, org_id: *org_id, value });
    }
    Data {
        organizations,
        dependents,
        marked: BTreeSet::new(),
        deletion_failures: HashMap::new(),
        exports: BTreeMap::new(),
        next_org_id: FIRST_ADDED_ORG_ID,
        next_export_id: 1,
    }
}

impl ItGlueSim {
    pub(crate) fn new() -> Self {
        Self {
            data: Mutex::new(fixture()),
            deletion_delay: Mutex::new(DEFAULT_DELETION_DELAY),
            export_delay: Mutex::new(DEFAULT_EXPORT_DELAY),
            fail_exports: AtomicBool::new(false),
            refuse_exports: AtomicBool::new(false),
            documents_route: AtomicBool::new(true),
            export_requests: AtomicU64::new(0),
            export_size: Mutex::new(DEFAULT_EXPORT_SIZE),
            download_host: Mutex::new(None),
            downloads: AtomicU64::new(0),
            downloads_with_key: AtomicU64::new(0),
            rate_limit: Mutex::new(Some(DEFAULT_RATE_LIMIT)),
            window: RollingWindow::new(WINDOW),
            api_key: Mutex::new(ITGLUE_API_KEY.to_string()),
        }
    }

    /// From now on only `key` is accepted (a rotated API key).
    pub fn rotate_api_key(&self, key: &str) {
        *self.api_key.lock().unwrap_or_else(|e| e.into_inner()) = key.to_string();
    }

    fn accepted_api_key(&self) -> String {
        self.api_key.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` on the data after removing organizations whose deletion is due.
    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        data.purge(Instant::now());
        f(&mut data)
    }

    /// Organizations marked for deletion by accepted DELETE requests, each counted once
    /// however often it was sent.
    pub fn deletions_requested(&self) -> u64 {
        self.with(|d| d.marked.len() as u64)
    }

    /// Removes every record of organization `org_id` (its configurations, passwords,
    /// documents...), as an MSP would clean them out before deleting it; returns how many.
    pub fn remove_dependents(&self, org_id: i64) -> usize {
        self.with(|d| {
            let before = d.dependents.len();
            d.dependents.retain(|_, dependent| dependent.org_id != org_id);
            before - d.dependents.len()
        })
    }

    /// Accepted `POST /exports` requests.
    pub fn export_requests(&self) -> u64 {
        self.export_requests.load(Ordering::SeqCst)
    }

    /// Whether `GET /organizations/{id}` still serves the organization (marked for deletion
    /// but not yet removed counts as existing).
    pub fn organization_exists(&self, id: i64) -> bool {
        self.with(|d| d.organizations.contains_key(&id))
    }

    /// Whether an accepted DELETE marked the organization; stays true after its removal, so
    /// tests do not race the deletion delay.
    pub fn marked_for_deletion(&self, id: i64) -> bool {
        self.with(|d| d.marked.contains(&id))
    }

    /// The organization as `GET /organizations/{id}` serves it, if it is still there.
    pub fn organization(&self, id: i64) -> Option<Value> {
        self.with(|d| d.organizations.get(&id).map(|o| o.value.clone()))
    }

    /// Exports requested while on end in status "failed" without a download URL.
    pub fn fail_exports(&self, on: bool) {
        self.fail_exports.store(on, Ordering::SeqCst);
    }

    /// While on, `POST /exports` answers 403: a key that may not export (one third-party
    /// wrapper says exports need a user access token, not an API key).
    pub fn refuse_exports(&self, on: bool) {
        self.refuse_exports.store(on, Ordering::SeqCst);
    }

    /// Served export downloads (`GET /itglue/_exports/{id}.zip` with the right token).
    pub fn export_downloads(&self) -> u64 {
        self.downloads.load(Ordering::SeqCst)
    }

    /// Export download requests that carried an `x-api-key` header (any value).
    pub fn export_downloads_with_key(&self) -> u64 {
        self.downloads_with_key.load(Ordering::SeqCst)
    }

    /// Bytes after the zip magic number of every export served from now on.
    pub fn set_export_size(&self, size: usize) {
        *self.export_size.lock().unwrap_or_else(|e| e.into_inner()) = size;
    }

    fn export_size(&self) -> usize {
        *self.export_size.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes export `id` serves (see [`export_bytes`]).
    pub fn export_content(&self, id: i64) -> Vec<u8> {
        export_bytes(id, self.export_size())
    }

    /// Links of exports requested from now on name `host` (e.g. `localhost:PORT`: another
    /// origin than the API's `127.0.0.1:PORT`, as a storage host would be) instead of the
    /// request's Host. `None`: the API's own host.
    pub fn set_export_download_host(&self, host: Option<String>) {
        *self.download_host.lock().unwrap_or_else(|e| e.into_inner()) = host;
    }

    /// How long exports requested from now on stay pending/processing before done.
    pub fn set_export_delay(&self, delay: Duration) {
        *self.export_delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    /// Off: `GET /organizations/{id}/relationships/documents` answers 404 (the route is
    /// undocumented, so a client must survive its absence).
    pub fn set_documents_route_available(&self, on: bool) {
        self.documents_route.store(on, Ordering::SeqCst);
    }

    /// DELETE requests that include `org_id` answer 422 with `message` and mark nothing.
    pub fn fail_deletion(&self, org_id: i64, message: &str) {
        self.with(|d| d.deletion_failures.insert(org_id, message.to_string()));
    }

    /// Undoes every [`ItGlueSim::fail_deletion`].
    pub fn clear_deletion_failures(&self) {
        self.with(|d| d.deletion_failures.clear());
    }

    /// Adds `n` active organizations without dependents or PSA link, named
    /// `"{name_prefix} {k}"` for k = 1..=n; returns their ids (ascending).
    pub fn add_organizations(&self, n: usize, name_prefix: &str) -> Vec<i64> {
        (1..=n).map(|k| self.add_organization(&format!("{name_prefix} {k}"))).collect()
    }

    /// Adds one active organization named `name`, without dependents or PSA link; its id.
    pub fn add_organization(&self, name: &str) -> i64 {
        self.with(|d| {
            let id = d.next_org_id;
            d.next_org_id += 1;
            let value = organization(id, name, None, STATUS_ACTIVE, "");
            d.organizations.insert(id, Organization { value, remove_at: None });
            id
        })
    }

    pub fn rate_limit(&self) -> Option<u32> {
        *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests per rolling 5 minutes (`None` = unlimited; IT Glue's documented limit,
    /// 3000, is the default).
    pub fn set_rate_limit(&self, limit: Option<u32>) {
        *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) = limit;
    }

    /// The length of the rolling window (default 5 minutes): tests shorten it.
    pub fn set_rate_window(&self, length: Duration) {
        self.window.set_length(length);
    }

    /// Another client of the same account sends `n` requests now.
    pub fn record_foreign_requests(&self, n: usize) {
        self.window.record_foreign(n);
    }

    /// The export records as `GET /exports/{id}` would serve them now, oldest first.
    pub fn exports(&self) -> Vec<Value> {
        let now = Instant::now();
        self.with(|d| d.exports.values().map(|e| e.render(now)).collect())
    }

    /// How long after an accepted DELETE organizations marked from now on disappear.
    pub fn set_deletion_delay(&self, delay: Duration) {
        *self.deletion_delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    fn deletion_delay(&self) -> Duration {
        *self.deletion_delay.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn export_delay(&self) -> Duration {
        *self.export_delay.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The rolling 5-minute window, counting every request below the prefix (authenticated or
/// not, as IT Glue counts per account and IP); over it → 429 without `Retry-After`.
pub(crate) fn admit(shared: &Shared) -> Result<(), Box<Response>> {
    let Some(limit) = shared.itglue.rate_limit() else { return Ok(()) };
    if !shared.itglue.window.admit(limit) {
        shared.stats().throttled += 1;
        return Err(Box::new(error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Rate limit exceeded: a maximum of {limit} requests within a 5-minute window"),
        )));
    }
    Ok(())
}

fn api_status(status: StatusCode, value: &Value) -> Response {
    (status, [("content-type", ITGLUE_MEDIA_TYPE)], value.to_string()).into_response()
}

fn api_ok(value: &Value) -> Response {
    api_status(StatusCode::OK, value)
}

fn error_object(status: StatusCode, detail: &str) -> Value {
    // `status` as a string, as JSON:API defines it (IT Glue has been seen sending numbers
    // too; clients accept both, the sandbox sends the spec's form).
    json!({"status": status.as_u16().to_string(), "title": status.canonical_reason().unwrap_or("Error"), "detail": detail})
}

/// A JSON:API error document.
pub(crate) fn error(status: StatusCode, detail: &str) -> Response {
    api_status(status, &json!({"errors": [error_object(status, detail)]}))
}

/// A JSON:API error pointing at the offending part of the request body.
fn error_at(status: StatusCode, detail: &str, pointer: &str) -> Response {
    let mut object = error_object(status, detail);
    object["source"] = json!({"pointer": pointer});
    api_status(status, &json!({"errors": [object]}))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "The requested resource could not be found")
}

/// The query string: raw pairs in order (for page links) and `filter[…]` values by
/// normalized name (lower case, `-` → `_`, so both spellings of the docs work).
struct Query {
    pairs: Vec<(String, String)>,
    filters: BTreeMap<String, String>,
}

impl Query {
    fn parse(uri: &Uri) -> Self {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let filters = pairs
            .iter()
            .filter_map(|(k, v)| {
                let key = k.to_ascii_lowercase();
                let name = key.strip_prefix("filter[")?.strip_suffix(']')?.replace('-', "_");
                Some((name, v.clone()))
            })
            .collect();
        Self { pairs, filters }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A filter's value; blank values count as absent (as if the client sent no filter).
    fn filter(&self, name: &str) -> Option<&str> {
        self.filters.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// A filter value's alternatives: commas separate them, `\,` is a literal comma (fact
/// sheet: "commas in filter values must be escaped").
fn alternatives(raw: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                chars.next();
                current.push(',');
            }
            ',' => values.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    values.push(current);
    values
}

/// How a filter compares with a record.
#[derive(Clone, Copy)]
enum Match {
    /// `data.id`.
    Id,
    /// A numeric attribute equals one of the values.
    Number(&'static str),
    /// A string attribute equals one of the values exactly.
    Exact(&'static str),
    /// A string attribute contains one of the values, case-sensitively.
    Substring(&'static str),
}

const ORGANIZATION_FILTERS: &[(&str, Match)] = &[
    ("id", Match::Id),
    ("name", Match::Substring("name")),
    ("organization_type_id", Match::Number("organization-type-id")),
    ("organization_status_id", Match::Number("organization-status-id")),
    ("psa_id", Match::Exact("psa-id")),
    ("psa_integration_type", Match::Exact("psa-integration-type")),
];
const DEPENDENT_FILTERS: &[(&str, Match)] = &[("id", Match::Id), ("organization_id", Match::Number("organization-id"))];
const FLEXIBLE_ASSET_FILTERS: &[(&str, Match)] = &[
    ("id", Match::Id),
    ("organization_id", Match::Number("organization-id")),
    ("flexible_asset_type_id", Match::Number("flexible-asset-type-id")),
];
const TYPE_FILTERS: &[(&str, Match)] = &[("id", Match::Id), ("name", Match::Exact("name"))];

fn matches(record: &Value, how: Match, raw: &str) -> bool {
    let values = alternatives(raw);
    let attribute = |name: &str| &record["attributes"][name];
    match how {
        Match::Id => values.iter().any(|v| record["id"].as_str() == Some(v.trim())),
        Match::Number(name) => {
            let actual = attribute(name).as_i64();
            actual.is_some() && values.iter().any(|v| v.trim().parse::<i64>().ok() == actual)
        }
        Match::Exact(name) => values.iter().any(|v| attribute(name).as_str() == Some(v.as_str())),
        Match::Substring(name) => {
            let actual = attribute(name).as_str().unwrap_or("");
            values.iter().any(|v| actual.contains(v.as_str()))
        }
    }
}

/// Keeps the records every known filter matches. Unknown filters are ignored, so a
/// misspelt one silently widens the result (as a lenient server would).
fn apply_filters(records: Vec<Value>, query: &Query, spec: &[(&str, Match)]) -> Vec<Value> {
    let active: Vec<(Match, &str)> =
        spec.iter().filter_map(|(name, how)| query.filter(name).map(|raw| (*how, raw))).collect();
    records.into_iter().filter(|r| active.iter().all(|(how, raw)| matches(r, *how, raw))).collect()
}

/// `filter[archived]`: `Ok(None)` when absent, 400 when not a boolean.
fn archived_filter(query: &Query) -> Result<Option<bool>, Box<Response>> {
    let Some(raw) = query.filter("archived") else { return Ok(None) };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(Some(true)),
        "false" | "0" => Ok(Some(false)),
        _ => Err(Box::new(error(StatusCode::BAD_REQUEST, "filter[archived] must be true or false"))),
    }
}

/// `sort=field` or `sort=-field` over `id`, `name`, `created_at`, `updated_at`; id
/// ascending without it. Names sort ignoring case, ties by id.
fn sort(records: &mut [Value], query: &Query) -> Result<(), Box<Response>> {
    let raw = query.get("sort").map(str::trim).filter(|s| !s.is_empty()).unwrap_or("id");
    let (descending, field) = match raw.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, raw),
    };
    let id = |r: &Value| r["id"].as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or_default();
    let text = |r: &Value, name: &str| r["attributes"][name].as_str().unwrap_or("").to_lowercase();
    match field.replace('-', "_").as_str() {
        "id" => records.sort_by_key(id),
        "name" => records.sort_by_cached_key(|r| (text(r, "name"), id(r))),
        "created_at" => records.sort_by_cached_key(|r| (text(r, "created-at"), id(r))),
        "updated_at" => records.sort_by_cached_key(|r| (text(r, "updated-at"), id(r))),
        other => {
            return Err(Box::new(error(StatusCode::BAD_REQUEST, &format!("{other} is not a sortable field"))));
        }
    }
    if descending {
        records.reverse();
    }
    Ok(())
}

/// One page of `records` as a JSON:API collection document with IT Glue's `meta` and
/// absolute `links` (built from the request's Host, keeping its other parameters).
fn page(records: Vec<Value>, query: &Query, host: &str, path: &str) -> Value {
    let size = query
        .get("page[size]")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(ITGLUE_DEFAULT_PAGE_SIZE as i64)
        .clamp(1, ITGLUE_MAX_PAGE_SIZE as i64) as usize;
    let number = query.get("page[number]").and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(1).max(1) as usize;
    let total = records.len();
    // Zero pages for an empty collection (Kaminari's arithmetic, which IT Glue's Rails
    // stack most likely uses): a client must not assume at least one page.
    let pages = total.div_ceil(size);
    let data: Vec<Value> = records.into_iter().skip((number - 1).saturating_mul(size)).take(size).collect();
    let link = |n: usize| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.pairs {
            if !k.eq_ignore_ascii_case("page[number]") && !k.eq_ignore_ascii_case("page[size]") {
                serializer.append_pair(k, v);
            }
        }
        serializer.append_pair("page[number]", &n.to_string()).append_pair("page[size]", &size.to_string());
        format!("http://{host}{ITGLUE_PREFIX}{path}?{}", serializer.finish())
    };
    let next = (number < pages).then_some(number + 1);
    let prev = (number > 1).then(|| (number - 1).min(pages.max(1)));
    let mut links = json!({"self": link(number), "first": link(1), "last": link(pages.max(1))});
    if let Some(next) = next {
        links["next"] = json!(link(next));
    }
    if let Some(prev) = prev {
        links["prev"] = json!(link(prev));
    }
    json!({
        "data": data,
        "meta": {
            "current-page": number,
            "next-page": next,
            "prev-page": prev,
            "total-pages": pages,
            "total-count": total,
            "filters": {},
        },
        "links": links,
    })
}

/// A route below the prefix, with its stats template.
enum Route<'a> {
    Organizations,
    Organization(&'a str),
    DeleteOrganizations,
    OrganizationStatuses,
    Nested(&'a str, Kind),
    List(Kind),
    FlexibleAssetTypes,
    CreateExport,
    Exports,
    Export(&'a str),
}

impl<'a> Route<'a> {
    /// Paths are case-sensitive, as on IT Glue (Rails routes).
    fn resolve(method: &Method, segments: &[&'a str]) -> Option<Route<'a>> {
        Some(match (method.as_str(), segments) {
            ("GET", ["organizations"]) => Route::Organizations,
            ("DELETE", ["organizations"]) => Route::DeleteOrganizations,
            ("GET", ["organizations", id]) => Route::Organization(id),
            ("GET", ["organizations", id, "relationships", kind]) => Route::Nested(id, Kind::nested(kind)?),
            ("GET", ["organization_statuses"]) => Route::OrganizationStatuses,
            ("GET", ["flexible_asset_types"]) => Route::FlexibleAssetTypes,
            ("POST", ["exports"]) => Route::CreateExport,
            ("GET", ["exports"]) => Route::Exports,
            ("GET", [kind]) => Route::List(Kind::top_level(kind)?),
            ("GET", ["exports", id]) => Route::Export(id),
            _ => return None,
        })
    }

    fn template(&self) -> String {
        let path = match self {
            Route::Organizations | Route::DeleteOrganizations => "/organizations".to_string(),
            Route::Organization(_) => "/organizations/{id}".to_string(),
            Route::OrganizationStatuses => "/organization_statuses".to_string(),
            Route::Nested(_, kind) => format!("/organizations/{{id}}/relationships/{}", kind.path()),
            Route::List(kind) => format!("/{}", kind.path()),
            Route::FlexibleAssetTypes => "/flexible_asset_types".to_string(),
            Route::CreateExport | Route::Exports => "/exports".to_string(),
            Route::Export(_) => "/exports/{id}".to_string(),
        };
        format!("{ITGLUE_PREFIX}{path}")
    }
}

fn has_api_media_type(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(ITGLUE_MEDIA_TYPE))
}

/// A request below `/itglue`; `path` is the part after it.
pub(crate) fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    body: &Bytes,
) -> Response {
    if let Some(file) = path.trim_matches('/').strip_prefix("_exports/") {
        return download(&shared.itglue, method, file, uri, headers);
    }
    // Missing key → 401, wrong key → 403: the docs name 403 for a wrong key.
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("") => return error(StatusCode::UNAUTHORIZED, "An API key is required (x-api-key header)"),
        // The refusal echoes the key presented, as some real APIs do.
        Some(key) if key != shared.itglue.accepted_api_key() => {
            return error(StatusCode::FORBIDDEN, &format!("The API key {key} is not valid"));
        }
        Some(_) => {}
    }
    let trimmed = path.trim_matches('/');
    let segments: Vec<&str> = trimmed.split('/').collect();
    let Some(route) = Route::resolve(method, &segments) else { return not_found() };
    shared.record_route(method, &route.template());
    if !body.is_empty() && !has_api_media_type(headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Requests with a body must be sent as Content-Type: {ITGLUE_MEDIA_TYPE}"),
        );
    }
    let sim = &shared.itglue;
    let query = Query::parse(uri);
    let path = format!("/{trimmed}");
    let result = match route {
        Route::Organizations => list_organizations(sim, &query, host, &path),
        Route::Organization(id) => match id.parse::<i64>().ok().and_then(|id| sim.organization(id)) {
            Some(org) => Ok(api_ok(&json!({"data": org}))),
            None => Ok(error(StatusCode::NOT_FOUND, "Record not found")),
        },
        Route::DeleteOrganizations => Ok(delete_organizations(sim, &query, body)),
        Route::OrganizationStatuses => {
            let records = ORGANIZATION_STATUSES
                .iter()
                .map(|(id, name)| json!({"id": id.to_string(), "type": "organization-statuses", "attributes": {"name": name}}))
                .collect();
            listing(apply_filters(records, &query, TYPE_FILTERS), &query, host, &path)
        }
        Route::FlexibleAssetTypes => {
            let records = FLEXIBLE_ASSET_TYPES
                .iter()
                .map(|(id, name)| {
                    json!({"id": id.to_string(), "type": "flexible-asset-types",
                        "attributes": {"name": name, "enabled": true, "created-at": FIXTURE_TIME, "updated-at": FIXTURE_TIME}})
                })
                .collect();
            listing(apply_filters(records, &query, TYPE_FILTERS), &query, host, &path)
        }
        Route::List(kind) => list_dependents(sim, kind, &query, host, &path),
        Route::Nested(id, kind) => nested(sim, id, kind, &query, host, &path),
        Route::CreateExport => Ok(create_export(sim, body, host)),
        Route::Exports => {
            let now = Instant::now();
            let records = sim.with(|d| d.exports.values().map(|e| e.render(now)).collect());
            listing(apply_filters(records, &query, &[("id", Match::Id)]), &query, host, &path)
        }
        Route::Export(id) => {
            let now = Instant::now();
            let export = id.parse::<i64>().ok().and_then(|id| sim.with(|d| d.exports.get(&id).map(|e| e.render(now))));
            Ok(match export {
                Some(export) => api_ok(&json!({"data": export})),
                None => error(StatusCode::NOT_FOUND, "Record not found"),
            })
        }
    };
    result.unwrap_or_else(|response| *response)
}

/// Sorts and pages a filtered collection.
fn listing(mut records: Vec<Value>, query: &Query, host: &str, path: &str) -> Result<Response, Box<Response>> {
    sort(&mut records, query)?;
    Ok(api_ok(&page(records, query, host, path)))
}

fn list_organizations(sim: &ItGlueSim, query: &Query, host: &str, path: &str) -> Result<Response, Box<Response>> {
    let records = sim.with(|d| d.organizations.values().map(|o| o.value.clone()).collect());
    let mut records = apply_filters(records, query, ORGANIZATION_FILTERS);
    for record in &mut records {
        let notes = &mut record["attributes"]["quick-notes"];
        if let Some(text) = notes.as_str().filter(|t| t.chars().count() > QUICK_NOTES_IN_LISTS) {
            *notes = json!(text.chars().take(QUICK_NOTES_IN_LISTS).collect::<String>());
        }
    }
    listing(records, query, host, path)
}

/// The dependents of `kind`, archived ones only when `archived` says so (`None` = hide them:
/// the unfavourable reading of the UNCONFIRMED default).
fn dependents_of(sim: &ItGlueSim, kind: Kind, org: Option<i64>, archived: Option<bool>) -> Vec<Value> {
    let wanted = archived.unwrap_or(false);
    sim.with(|d| {
        d.dependents
            .values()
            .filter(|dep| dep.kind == kind && org.is_none_or(|o| dep.org_id == o))
            .filter(|dep| !kind.archivable() || dep.value["attributes"]["archived"].as_bool() == Some(wanted))
            .map(|dep| dep.value.clone())
            .collect()
    })
}

fn list_dependents(
    sim: &ItGlueSim,
    kind: Kind,
    query: &Query,
    host: &str,
    path: &str,
) -> Result<Response, Box<Response>> {
    let spec = if kind == Kind::FlexibleAssets {
        // The docs make the type filter mandatory: one request per flexible asset type.
        if query.filter("flexible_asset_type_id").is_none() {
            return Err(Box::new(error_at(
                StatusCode::BAD_REQUEST,
                "filter[flexible_asset_type_id] is required",
                "/filter/flexible_asset_type_id",
            )));
        }
        FLEXIBLE_ASSET_FILTERS
    } else {
        DEPENDENT_FILTERS
    };
    let archived = if kind.archivable() { archived_filter(query)? } else { None };
    let records = apply_filters(dependents_of(sim, kind, None, archived), query, spec);
    listing(records, query, host, path)
}

/// `GET /organizations/{id}/relationships/{kind}`: no filters allowed (the docs say so);
/// archived records stay hidden because they cannot be asked for here.
fn nested(
    sim: &ItGlueSim,
    id: &str,
    kind: Kind,
    query: &Query,
    host: &str,
    path: &str,
) -> Result<Response, Box<Response>> {
    if kind == Kind::Documents && !sim.documents_route.load(Ordering::SeqCst) {
        return Ok(not_found());
    }
    if !query.filters.is_empty() {
        return Ok(error(StatusCode::BAD_REQUEST, "filtering in nested relationship routes is not possible"));
    }
    let Some(org_id) = id.parse::<i64>().ok().filter(|id| sim.organization_exists(*id)) else {
        return Ok(error(StatusCode::NOT_FOUND, "Record not found"));
    };
    listing(dependents_of(sim, kind, Some(org_id), None), query, host, path)
}

/// A numeric id sent as a JSON number or a string of digits.
fn id_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn json_body(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "A request body with data is required")));
    }
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, &format!("The request body is not valid JSON: {e}"))))
}

/// The organization ids of a bulk DELETE body: `{"data":[{"type":"organizations",
/// "attributes":{"id":N}}]}`.
fn deletion_ids(body: &Bytes) -> Result<Vec<i64>, Box<Response>> {
    let document = json_body(body)?;
    let bad = |detail: &str, pointer: &str| Box::new(error_at(StatusCode::BAD_REQUEST, detail, pointer));
    let items = match document.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(bad("data must not be empty", "/data")),
        Some(_) => return Err(bad("data must be an array of organizations", "/data")),
        None => return Err(bad("data is required", "/data")),
    };
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if item.get("type").and_then(Value::as_str) != Some("organizations") {
            return Err(bad("type must be organizations", &format!("/data/{i}/type")));
        }
        let Some(id) = item.get("attributes").and_then(|a| a.get("id")).and_then(id_value) else {
            return Err(bad("attributes.id must be an organization id", &format!("/data/{i}/attributes/id")));
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `DELETE /organizations`: all or nothing. Accepted organizations are marked now and
/// removed after the deletion delay; until then they are still served.
fn delete_organizations(sim: &ItGlueSim, query: &Query, body: &Bytes) -> Response {
    let ids = match deletion_ids(body) {
        Ok(ids) => ids,
        Err(response) => return *response,
    };
    if !query.filters.is_empty() {
        return error(StatusCode::BAD_REQUEST, "data cannot be combined with filter");
    }
    let remove_at = Instant::now() + sim.deletion_delay();
    let result = sim.with(|d| {
        if let Some(missing) = ids.iter().find(|id| !d.organizations.contains_key(id)) {
            return Err((StatusCode::NOT_FOUND, format!("Organization {missing} not found")));
        }
        if let Some(message) = ids.iter().find_map(|id| d.deletion_failures.get(id)) {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, message.clone()));
        }
        let mut deleted = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(org) = d.organizations.get_mut(id) {
                // A repeated DELETE keeps the first schedule: it cannot postpone the removal.
                org.remove_at.get_or_insert(remove_at);
                deleted.push(org.value.clone());
            }
            d.marked.insert(*id);
        }
        Ok(deleted)
    });
    match result {
        Ok(deleted) => api_ok(&json!({"data": deleted})),
        Err((status, detail)) => error(status, &detail),
    }
}

/// `POST /exports`: an export of one organization, or of the whole account when the body
/// names none (as on IT Glue, so a client that forgets the id exports everything).
fn create_export(sim: &ItGlueSim, body: &Bytes, host: &str) -> Response {
    if sim.refuse_exports.load(Ordering::SeqCst) {
        return error(StatusCode::FORBIDDEN, "This API key is not allowed to create exports");
    }
    let document = match json_body(body) {
        Ok(document) => document,
        Err(response) => return *response,
    };
    let data = &document["data"];
    if !data.is_object() {
        return error_at(StatusCode::BAD_REQUEST, "data must be an export object", "/data");
    }
    if data["type"].as_str() != Some("exports") {
        return error_at(StatusCode::BAD_REQUEST, "type must be exports", "/data/type");
    }
    let attributes = &data["attributes"];
    let attribute = |kebab: &str, snake: &str| match attributes.get(kebab) {
        Some(value) => Some(value.clone()),
        None => attributes.get(snake).cloned(),
    };
    let include_logs = match attribute("include-logs", "include_logs") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => on,
        Some(_) => {
            return error_at(
                StatusCode::BAD_REQUEST,
                "include-logs must be a boolean",
                "/data/attributes/include-logs",
            );
        }
    };
    let org_id = match attribute("organization-id", "organization_id") {
        None | Some(Value::Null) => None,
        Some(value) => match id_value(&value) {
            Some(id) => Some(id),
            None => {
                return error_at(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "organization must exist",
                    "/data/attributes/organization-id",
                );
            }
        },
    };
    let fails = sim.fail_exports.load(Ordering::SeqCst);
    let delay = sim.export_delay();
    let download_host = sim.download_host.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let created = sim.with(|d| {
        let org_name = match org_id {
            Some(id) => Some(d.organizations.get(&id)?.value["attributes"]["name"].as_str()?.to_string()),
            None => None,
        };
        let id = d.next_export_id;
        d.next_export_id += 1;
        let export = Export {
            id,
            org_id,
            org_name,
            include_logs,
            created: Instant::now(),
            created_at: Utc::now(),
            delay,
            fails,
            host: host.to_string(),
            download_host: download_host.clone(),
        };
        let rendered = export.render(export.created);
        d.exports.insert(id, export);
        Some(rendered)
    });
    match created {
        Some(export) => {
            sim.export_requests.fetch_add(1, Ordering::SeqCst);
            api_status(StatusCode::CREATED, &json!({"data": export}))
        }
        None => {
            error_at(StatusCode::UNPROCESSABLE_ENTITY, "organization must exist", "/data/attributes/organization-id")
        }
    }
}

/// `GET /itglue/_exports/{id}.zip?token=…`: a finished export's bytes. The link is a bearer
/// link (the token in it is the only credential), so no API key is asked for; one presented
/// anyway is counted ([`ItGlueSim::export_downloads_with_key`]). Wrong token → 403, unknown
/// or unfinished export → 404.
fn download(sim: &ItGlueSim, method: &Method, file: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    if headers.contains_key("x-api-key") {
        sim.downloads_with_key.fetch_add(1, Ordering::SeqCst);
    }
    let id = file.strip_suffix(".zip").and_then(|id| id.parse::<i64>().ok());
    let (Some(id), true) = (id, method == Method::GET) else { return not_found() };
    let token = uri.query().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("token="));
    if token != Some(export_link_token(id).as_str()) {
        return error(StatusCode::FORBIDDEN, "This link is not valid");
    }
    let now = Instant::now();
    let done = sim.with(|d| d.exports.get(&id).map(|e| e.render(now)["attributes"]["status"] == "done"));
    if done != Some(true) {
        return not_found();
    }
    sim.downloads.fetch_add(1, Ordering::SeqCst);
    let mut response = Response::new(axum::body::Body::from(sim.export_content(id)));
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/zip"));
    response
}
