//! Loopback simulators of the SaaS vendors Offramp talks to, over real HTTP on 127.0.0.1.
//! One server (one port, one [`Sandbox`]) serves every vendor; requests are dispatched by
//! path prefix. Production clients must not be able to tell it from the vendor: shapes,
//! auth quirks, paging and limits follow docs/vendors/ (connectwise.md, autotask.md,
//! halopsa.md, itglue.md, microsoft-graph.md).
//!
//! All vendors render the same vendor-neutral fixture (same company and configuration ids,
//! see [`seed`]). Credentials are fake constants re-exported here (`CW_*`, `AT_*`, `HALO_*`,
//! [`ITGLUE_API_KEY`]).
//!
//! # ConnectWise Manage, prefix [`CW_PREFIX`] = `/v4_6_release/apis/3.0`
//! Vendor behaviour: docs/vendors/connectwise.md.
//! Basic auth `CW_COMPANY_ID+CW_PUBLIC_KEY:CW_PRIVATE_KEY` plus a mandatory `clientId`
//! header (401 otherwise); `{"code","message","errors"}` errors.
//! - `GET /company/companies`, `/company/companies/count`, `/company/companies/statuses`,
//!   `/company/companies/{id}`
//! - `GET /company/configurations`, `/company/configurations/count`,
//!   `/company/configurations/statuses`, `/company/configurations/{id}`
//! - `PATCH /company/configurations/{id}` (JSON-Patch array of `replace` ops on `status`,
//!   `contact`, `name`, `serialNumber`, `tagNumber`, `notes`; `remove` of `contact`). An empty
//!   array or any other path → 400 `InvalidObject` naming it, and nothing changes.
//! - `GET /finance/agreements`, `/finance/agreements/count`, `/finance/agreements/{id}`
//!   (contracts): `{"id","name","type":{"id":1,"name":"Managed Services"},"company":{"id",
//!   "identifier","name"},"startDate","endDate"|null,"noEndingDateFlag","cancelledFlag",
//!   "agreementStatus":"Active"|"Expired"|"Cancelled"}`, dates `YYYY-MM-DDT00:00:00Z`
//!
//! Lists take `conditions` filters and `page`/`pageSize` (default 25, clamped to 1000) and
//! answer `Link` headers. A condition on a field the entity does not have → 400
//! `InvalidObject` naming it (never "no match"); `lastUpdated` reads `_info/lastUpdated`. Forward-only pagination is not simulated. `[datetime]` literals
//! compare with ISO-8601 strings lexically (`endDate<[2026-11-22T00:00:00Z]`); a null field
//! matches no ordering comparison.
//!
//! # Autotask PSA
//! Vendor behaviour: docs/vendors/autotask.md.
//! Zone lookup (no auth, exempt from limits), prefix `/atservicesrest`
//! ([`Sandbox::autotask_zone_lookup_url`] = `…/atservicesrest/v1.0`):
//! - `GET /v1.0/zoneInformation?user={user}` → `{"zoneName","url","webUrl","ci"}` for
//!   `AT_USERNAME` (case-insensitive); 404 `{"errors":[…]}` for other users
//! - `GET /versioninformation` → `{"apiVersions":["1.0"]}`
//!
//! API, prefix [`AT_PREFIX`] = `/at5/atservicesrest/v1.0` ([`Sandbox::autotask_url`]); paths
//! case-insensitive; headers `ApiIntegrationCode`, `UserName`, `Secret` on every call.
//! Unknown user → 500, wrong integration code → 500, wrong secret or missing headers → 401;
//! errors are `{"errors":["…"]}`. Entities: `Companies`, `ConfigurationItems`, `Contracts`
//! (`{"id","companyID","contractName","contractType":1,"startDate","endDate","status"}`,
//! dates `YYYY-MM-DDT00:00:00`, `endDate` always set — open-ended renders 2099-12-31 —
//! `status` 1 active / 0 inactive when cancelled).
//! - `GET /{Entity}/{id}` → `{"item":{…}}` (404 when missing)
//! - `POST /{Entity}/query` (JSON body) and `GET /{Entity}/query?search={json}`:
//!   `{"filter":[…],"includeFields":[…],"MaxRecords":n}` (keys and field names
//!   case-insensitive). Ops `eq noteq gt gte lt lte beginsWith endsWith contains exist
//!   notExist in notIn` and groups `{"op":"and"|"or","items":[…]}`; string compares ignore
//!   case (ISO date-times therefore compare correctly as strings). A missing/empty filter,
//!   a null value, an unknown op or field → 500. Sorted by id,
//!   at most min(MaxRecords, 500) per page; `{"items","pageDetails":{"count","requestCount",
//!   "prevPageUrl","nextPageUrl"}}` with absolute page URLs
//! - `GET|POST /{Entity}/query/next?paging={cursor}&search={json}` (the page URLs; the
//!   cursor in the URL wins over any re-sent body)
//! - `GET|POST /{Entity}/query/count` → `{"queryCount":n}`
//! - `GET /{Entity}/entityInformation`, `GET /{Entity}/entityInformation/fields` (picklists:
//!   `companyType`, `classification`, `configurationItemType`)
//! - `PATCH /ConfigurationItems` `{"id":N,…}` → `{"itemId":N}`; only supplied fields change;
//!   `isActive` must be a boolean (500 otherwise); unknown id → 404
//! - `GET /ThresholdInformation` → `{"externalRequestThreshold","requestThresholdTimeframe":60,
//!   "currentTimeframeRequestCount"}`
//!
//! Limits: at most 3 concurrent requests per (`ApiIntegrationCode`, endpoint = first path
//! segment) — the 4th answers 429 "Thread Threshold Exceeded" at once (the slot is held
//! through the injected latency and released when the request ends or its client goes
//! away); an hourly budget over a rolling hour of authenticated API requests
//! ([`SandboxConfig::autotask_hourly_limit`], default 10,000) → 429 "The request threshold of
//! N requests per hour has been exceeded". Only admitted requests count toward the budget.
//!
//! # HaloPSA, prefix [`HALO_PREFIX`] = `/halo` ([`Sandbox::halo_url`], the instance root)
//! Vendor behaviour: docs/vendors/halopsa.md.
//! Paths case-insensitive. Errors are heterogeneous, as in Halo.
//! - `GET /api/authinfo` (no auth) → `{"auth_url":"http://{host}/halo/auth","tenant_id"}`
//! - `POST /auth/token?tenant=HALO_TENANT`, form `grant_type=client_credentials&client_id&
//!   client_secret&scope=all` → `{"access_token","token_type":"Bearer","expires_in","scope"}`;
//!   unknown tenant → 400 `invalid_request`, other grant → 400 `unsupported_grant_type`, bad
//!   client → 401 `invalid_client`. Tokens expire after the TTL (default 3600 s) and can be
//!   revoked ([`Sandbox::revoke_halo_tokens`]).
//! - Every other `/api/…` call needs `Authorization: Bearer {token}`; else 401 text
//!   `Unauthorized: …`. The token carries the scopes asked for (space-separated; unknown ones
//!   → 400 `invalid_scope`): `all`, or `read:`/`edit:` + `customers` (client, site, users),
//!   `assets`, `tickets` (tickets, actions), `contracts`. A GET needs `read:`, a POST `edit:`
//!   of its area; otherwise 403 `{"ClassName","Message"}` naming the missing scope.
//! - `GET /api/client/{id}`; `GET /api/client?search&includeinactive&includeactive&toplevel_id`
//!   → `{"record_count","page_no","page_size","clients"}`
//! - `GET /api/asset/{id}`; `GET /api/asset?client_id&site_id&assettype_id&search&
//!   includeinactive&includeactive` → `{…,"assets"}`. Inactive rows only with
//!   `includeinactive=true`; active rows unless `includeactive=false`. Paging only with
//!   `pageinate=true`: `page_no` 1-based, `page_size` default 50 clamped to 1..=500.
//! - `POST /api/asset` with a JSON array of `{"id":N,…}` (integer ids only): atomic — one
//!   unknown id or injected failure → 400 `{"resultCode":1,"errorMessage"}` and nothing
//!   changes; success → 201 with the updated assets, except those named by
//!   [`HaloSim::omit_from_asset_answers`] (updated, but left out of the answer) and
//!   [`HaloSim::ignore_asset_updates`] (left unchanged and out of the answer). Creating
//!   assets is not simulated.
//! - `GET /api/ClientContract?client_id&pageinate&page_size&page_no` (all contracts without
//!   `client_id`) → `{…,"contracts"}`; `GET /api/ClientContract/{id}`. Records
//!   `{"id","client_id","client_name","ref","start_date","end_date"|null,"active"}`, dates
//!   `YYYY-MM-DDT00:00:00`, `active` = not cancelled and not ended before today.
//!
//! Limit: a rolling 5-minute window per sandbox ([`SandboxConfig::halo_rate_limit`], default
//! 300, token endpoint included) → 429 text `Rate Limit Reached - N Requests per rolling 5
//! minute window`, no `Retry-After`.
//!
//! # IT Glue, prefix [`ITGLUE_PREFIX`] = `/itglue` ([`Sandbox::itglue_url`], the API base)
//! Vendor behaviour: docs/vendors/itglue.md.
//! JSON:API throughout: resource objects `{"id":"<string>","type","attributes":{kebab-case}}`,
//! responses `Content-Type: application/vnd.api+json`, errors
//! `{"errors":[{"status":"403","title","detail"}]}` (status a string). Paths are
//! case-sensitive. The fixture table (organizations 9001–9007 and their dependents) and the
//! UNCONFIRMED behaviours the simulator reads unfavourably are in `src/itglue.rs`.
//! - Auth: `x-api-key: ITGLUE_API_KEY`; missing → 401, wrong → 403. A request with a body
//!   must say `Content-Type: application/vnd.api+json` (415 otherwise).
//! - Lists take `page[number]` (1-based) and `page[size]` (default 50, clamped to 1..=1000) →
//!   `{"data","meta":{"current-page","next-page","prev-page","total-pages","total-count",
//!   "filters":{}},"links":{"self","first","last","next"?,"prev"?}}` (absolute URLs; an empty
//!   list has 0 pages); sorted by id unless `sort=[-]id|name|created_at|updated_at`.
//!   `filter[…]` names work in snake_case and kebab-case; commas separate alternatives
//!   (`\,` is a literal comma); blank and unknown filters are ignored.
//! - `GET /organizations` (`filter[id|name|psa_id|psa_integration_type|organization_status_id|
//!   organization_type_id]`; `name` is a CASE-SENSITIVE SUBSTRING match; `quick-notes`
//!   truncated to 250 characters), `GET /organizations/{id}` (non-numeric or unknown → 404),
//!   `GET /organization_statuses` (1 Active, 2 Inactive).
//! - `DELETE /organizations` `{"data":[{"type":"organizations","attributes":{"id":N|"N"}}]}`:
//!   all or nothing. Missing/empty/malformed body → 400, `filter[…]` with it → 400, an
//!   unknown or already removed id → 404, a [`ItGlueSim::fail_deletion`] org → 422; else 200
//!   with the organizations to be deleted. They are still served until the deletion delay
//!   (default 300 ms, [`Sandbox::set_itglue_deletion_delay`]) has passed, then they and their
//!   dependents are gone. Re-deleting a marked organization is accepted and counts once.
//! - `GET /configurations`, `GET /passwords` (`filter[organization_id|id|archived]`; archived
//!   records are listed ONLY with `filter[archived]=true`), `GET /contacts`, `GET /locations`
//!   (`filter[organization_id|id]`), `GET /flexible_asset_types` (1 Applications, 2 Email,
//!   3 Backup), `GET /flexible_assets` (`filter[flexible_asset_type_id]` REQUIRED → 400
//!   without; `filter[organization_id]`).
//! - `GET /organizations/{id}/relationships/{configurations|contacts|locations|passwords|
//!   documents}`: any `filter[…]` → 400 "filtering in nested relationship routes is not
//!   possible", unknown organization → 404, archived records hidden. The documents route is
//!   undocumented: [`ItGlueSim::set_documents_route_available`]`(false)` makes it 404.
//!   Top-level `GET /documents` → 404.
//! - `POST /exports` `{"data":{"type":"exports","attributes":{"organization-id":N,
//!   "include-logs":false}}}` (`organization_id` and string ids accepted): without an
//!   organization id the WHOLE ACCOUNT is exported (record with `organization-id` null);
//!   unknown organization → 422; [`ItGlueSim::refuse_exports`] → 403. → 201
//!   `{"data":{"id","type":"exports","attributes":{"organization-id","organization-name",
//!   "status":"pending","download-url":null,"include-logs","created-at","updated-at"}}}`.
//! - `GET /exports/{id}` (and `GET /exports`): "pending" for the first half of the export
//!   delay (default 200 ms), "processing" for the second, then "done" with `download-url`
//!   `http://{host}/itglue/_exports/{id}.zip?token=…` or "failed" without one.
//! - `GET /itglue/_exports/{id}.zip?token=…`: the finished export's bytes
//!   ([`itglue::export_bytes`]); a bearer link, so no API key is asked for (one sent anyway is
//!   counted: [`ItGlueSim::export_downloads_with_key`]); wrong token → 403.
//!   [`ItGlueSim::set_export_download_host`] makes links name another host (another origin).
//! - Anything else → 404.
//!
//! Limit: a rolling 5-minute window per sandbox (default 3000, [`ItGlueSim::set_rate_limit`]),
//! counting authenticated and unauthenticated requests → 429 JSON:API error without
//! `Retry-After` (UNCONFIRMED for IT Glue). Stats keys: `"{METHOD} /itglue/{route template}"`,
//! e.g. `GET /itglue/organizations/{id}`, `DELETE /itglue/organizations`,
//! `GET /itglue/organizations/{id}/relationships/documents`.
//!
//! # ConnectWise callback signing keys, prefix [`CW_KEYS_PREFIX`] = `/cw-callback-keys`
//! Module `callback_keys`: `GET /cw-callback-keys/{key_id}` → `{"signing_key"}` for a key
//! set with [`CallbackKeysSim::set_key`] (404 otherwise), every request counted per key id
//! ([`Sandbox::connectwise_key_url`], [`Sandbox::callback_keys`]).
//!
//! # Microsoft 365 customer tenants (issue 14), module [`m365`]
//! Vendor behaviour: docs/vendors/microsoft-graph.md#user-offboarding and
//! docs/vendors/exchange-online.md. The Entra token endpoint above also issues tokens of the
//! MSP's multi-tenant app for customer tenants (one per tenant and resource: Graph or
//! Exchange Online); Graph requests with such a token reach the user-offboarding routes
//! (users, manager, memberOf, group members, licences, mailboxSettings, Intune devices,
//! subscribedSkus, `$batch`), limited per tenant by a write quota and resource units;
//! Exchange Online's InvokeCommand is under [`EXO_PREFIX`] = `/exo`
//! ([`Sandbox::exchange_url`]). State and per-item write counts: [`Sandbox::m365`].
//!
//! # Contracts
//! The contract shapes above are UNCONFIRMED (see the "Unconfirmed points" of
//! docs/vendors/connectwise.md, autotask.md and halopsa.md) but plausible. Dates are relative to
//! the UTC day the sandbox starts ([`Sandbox::today`]; table in [`seed`]), so tests pass on any
//! date; [`Sandbox::add_contract`] adds one to all three vendors at run time. Stats keys:
//! `GET /finance/agreements`, `POST /autotask/Contracts/query`, `GET /halo/api/ClientContract`
//! (and the count/by-id variants).
//!
//! # Around every vendor route
//! In order: the global token-bucket rate limit ([`SandboxConfig::rate_limit_per_sec`]; 429
//! with `Retry-After: 1` in the vendor's error shape), the vendor's own limits (above),
//! injectable latency, then faults (`fail_next`: an HTTP error in the vendor's shape;
//! `drop_next`: the connection breaks mid-response; route faults; a redirect set by
//! [`Sandbox::redirect_every_request`]), then auth and the route (absolute URLs in answers
//! name [`Sandbox::set_link_host`]'s host when set). After the
//! route, faults that strike a write once it was applied ([`Sandbox::fault_after_write`],
//! per route and per id: the connection breaks, or a 504 replaces the answer). Per-item
//! update failures and state changes are injected through [`PsaSim`]. The vendors' rolling
//! windows can be shortened and partly used by "another integration"
//! (`set_hourly_window`/`set_rate_window`, `record_foreign_requests` on the simulators).
//!
//! # Admin API (no auth, never used by production clients), under `/_sandbox/`
//! `GET stats`, `POST reset-stats`, `POST faults {"fail_next":N,"status":S,"drop_next":N}`,
//! `POST settings {"latency_ms":N,"rate_limit":N|null,"autotask_hourly_limit":N,
//! "halo_rate_limit":N|null,"halo_token_ttl_secs":N,"itglue_rate_limit":N|null,
//! "halo_asset_answer_omits":[ids],"m365_throttle":{"write_quota":N,"write_window_ms":N,
//! "resource_units":N|null,"unit_window_ms":N}}` (`m365_throttle` replaces the Microsoft 365
//! limits, missing fields taking Graph's values).
//!
//! # Refusals echo the credential presented
//! Some real APIs quote what they refused; the simulators do, so the secret-leak tests can
//! fail: ConnectWise's 401 names the Basic header and its decoded `company+public:private`,
//! Autotask's names the secret (401) or integration code (500), HaloPSA's token endpoint
//! quotes the form body it refused (the secret form-encoded) and its API 401/403 the bearer
//! token, IT Glue's 403 the key, Entra's AADSTS7000215 the secret and Graph's 401 the token.

mod autotask;
mod autotask_webhooks;
mod callback_keys;
mod chaos;
mod conditions;
mod connectwise;
mod detours;
mod faults;
mod halo;
mod itglue;
pub mod leaks;
pub mod m365;
mod notify;
pub mod seed;
mod window;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use autotask::AutotaskSim;
pub use callback_keys::{CW_KEYS_PREFIX, CallbackKeysSim};
pub use chaos::{ChaosFault, ChaosReport, ChaosSettings};
pub use connectwise::ConnectWiseSim;
pub use faults::AfterWrite;
use faults::AfterWriteFault;
pub use halo::HaloSim;
pub use itglue::{ITGLUE_API_KEY, ITGLUE_MEDIA_TYPE, ITGLUE_PREFIX, ItGlueSim, export_bytes, export_link_token};
pub use m365::{EXO_PREFIX, M365Sim};
pub use notify::{
    ENTRA_PREFIX, GRAPH_BLOCKED_SENDER, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_PREFIX, GRAPH_SENDER,
    GRAPH_SENDER_ID, GRAPH_TENANT_DOMAIN, GRAPH_TENANT_ID, HOOKS_PREFIX, NotifySim, SANDBOX_WEBHOOK_TOKEN,
};
pub use seed::{
    AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY,
    HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT,
};

use connectwise::cw_error;

/// The path prefix of the ConnectWise API (codebase + `apis/3.0`).
pub const CW_PREFIX: &str = "/v4_6_release/apis/3.0";
/// The path prefix of the Autotask zone-lookup service.
pub const AT_ZONE_PREFIX: &str = "/atservicesrest";
/// The path prefix of the Autotask REST API in the sandbox's zone.
pub const AT_PREFIX: &str = "/at5/atservicesrest/v1.0";
/// The path prefix of the HaloPSA instance (`/api`, `/auth` below it).
pub const HALO_PREFIX: &str = "/halo";

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub latency: Duration,
    pub rate_limit_per_sec: Option<u32>,
    /// The global rate limit applies to ConnectWise's routes only (the headline bench: the
    /// other vendors keep their own limits, and a ConnectWise stand-in rate must not slow
    /// Microsoft 365 or IT Glue).
    pub rate_limit_connectwise_only: bool,
    /// Configurations of the large client (company 300); 0 = do not seed it.
    pub large_client_configs: usize,
    /// Configurations of the bench client (company 500); 0 = no bench client.
    pub bench_client_configs: usize,
    /// Contacts of the bench client (company 500, only with `bench_client_configs`); the
    /// first 100 carry the bench leavers' addresses (`bench.leaver.{n}@contoso.example`,
    /// `M365Sim::add_bench_leavers`).
    pub bench_client_contacts: usize,
    /// Autotask API requests per rolling hour (the vendor's default is 10,000).
    pub autotask_hourly_limit: u32,
    /// HaloPSA requests per rolling 5 minutes; `None` = unlimited.
    pub halo_rate_limit: Option<u32>,
    /// Lifetime of HaloPSA access tokens.
    pub halo_token_ttl: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            rate_limit_per_sec: None,
            rate_limit_connectwise_only: false,
            large_client_configs: 10_000,
            bench_client_configs: 0,
            bench_client_contacts: 0,
            autotask_hourly_limit: 10_000,
            halo_rate_limit: Some(300),
            halo_token_ttl: Duration::from_secs(3600),
        }
    }
}

/// Request counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StatsSnapshot {
    pub total_requests: u64,
    /// Requests answered 429 by any limit (global, Autotask thread/hourly, Halo window).
    pub throttled: u64,
    /// Keys `"{METHOD} {route}"`, e.g. `"GET /company/configurations"`,
    /// `"POST /autotask/ConfigurationItems/query"`, `"POST /halo/api/asset"`.
    pub by_route: BTreeMap<String, u64>,
    /// Requests that reached each vendor (throttled ones included), keyed `connectwise`,
    /// `graph`, `exchange`, `entra`, `itglue`, `webhook`, …
    pub by_vendor: BTreeMap<String, u64>,
    /// Configuration updates that reached an existing configuration, on every vendor
    /// (HaloPSA: per array element).
    pub configuration_patches: u64,
    /// Autotask requests refused by the thread limit (also counted in `throttled`).
    pub thread_limit_rejections: u64,
    /// Writes that were applied and whose answer an after-write fault replaced.
    pub after_write_faults: u64,
}

impl StatsSnapshot {
    pub fn total(&self) -> u64 {
        self.total_requests
    }
    pub fn throttled(&self) -> u64 {
        self.throttled
    }
    /// Configuration updates that reached the handler (past auth and faults).
    pub fn patches(&self) -> u64 {
        self.configuration_patches
    }
    pub fn thread_limit_rejections(&self) -> u64 {
        self.thread_limit_rejections
    }
    /// Requests on one route template, e.g. `("GET", "/company/configurations")` or
    /// `("PATCH", "/autotask/ConfigurationItems")`.
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.by_route.get(&format!("{method} {route}")).copied().unwrap_or(0)
    }
}

/// Test controls every simulated PSA offers, for tests written once for all vendors.
pub trait PsaSim: Send + Sync {
    /// `"connectwise"`, `"autotask"` or `"halo"`.
    fn kind(&self) -> &'static str;
    /// Whether the configuration is in use (CW: status not closed; Autotask: `isActive`;
    /// Halo: `!inactive`); `None` if it does not exist.
    fn configuration_is_active(&self, id: i64) -> Option<bool>;
    /// Someone changes the configuration in the PSA (CW: status 1 Active / 2 Inactive).
    fn set_configuration_active(&self, id: i64, active: bool);
    /// Someone deletes the configuration in the PSA.
    fn delete_configuration(&self, id: i64);
    /// Updates of configuration `id` fail with `message` (CW: HTTP 400; Autotask: 500;
    /// Halo: the whole batch 400).
    fn fail_configuration_update(&self, id: i64, message: &str);
    fn clear_configuration_failures(&self);
    /// Update attempts that reached the configuration, failed ones included.
    fn update_count(&self, config_id: i64) -> usize;
    /// Ids of the company's configurations, ascending.
    fn configuration_ids_of(&self, company_id: i64) -> Vec<i64>;

    // Contacts, tickets and configuration contacts (workflow 001,
    // docs/workflows.md#001-contact-deactivation). Ids are the fixture's.

    /// Whether the contact is active; `None` if it does not exist.
    fn contact_is_active(&self, id: i64) -> Option<bool>;
    /// Someone changes the contact in the PSA.
    fn set_contact_active(&self, id: i64, active: bool);
    /// Someone deletes the contact in the PSA.
    fn delete_contact(&self, id: i64);
    /// Updates of contact `id` fail with `message` (CW: 400; Autotask: 500; Halo: 400).
    fn fail_contact_update(&self, id: i64, message: &str);
    fn clear_contact_failures(&self);
    /// Update attempts that reached the contact, failed ones included.
    fn contact_update_count(&self, id: i64) -> usize;
    /// Ids of the company's contacts (active and inactive), ascending.
    fn contact_ids_of(&self, company_id: i64) -> Vec<i64>;
    /// A ticket as tests see it on every vendor; `None` if it does not exist.
    fn ticket(&self, id: i64) -> Option<TicketView>;
    /// Someone changes the ticket's contact in the PSA.
    fn set_ticket_contact(&self, id: i64, contact_id: Option<i64>);
    /// Ids of the company's tickets (open and closed, created ones included), ascending.
    fn ticket_ids_of(&self, company_id: i64) -> Vec<i64>;
    /// The configuration's contact id (`None` when it has none or the configuration does
    /// not exist). HaloPSA: always `None` (assets have no documented contact field).
    fn configuration_contact(&self, id: i64) -> Option<i64>;
    /// Someone changes the configuration's contact in the PSA (no-op on HaloPSA).
    fn set_configuration_contact(&self, id: i64, contact_id: Option<i64>);
}

/// A ticket, vendor-neutral, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    pub id: i64,
    pub company_id: i64,
    pub summary: String,
    pub contact_id: Option<i64>,
    /// Member / resource / agent id.
    pub owner_id: Option<i64>,
    /// Board / queue id; HaloPSA: the id of the team name, if it is a fixture board.
    pub board_id: Option<i64>,
    pub closed: bool,
    /// Note texts, oldest first (ConnectWise notes, Autotask ticket notes, HaloPSA actions),
    /// as plain text (HaloPSA `note_html` with tags removed).
    pub notes: Vec<String>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct Shared {
    cw: ConnectWiseSim,
    at: AutotaskSim,
    halo: HaloSim,
    itglue: ItGlueSim,
    notify: NotifySim,
    /// Microsoft 365 customer tenants (Graph and Exchange Online, issue 14).
    m365: M365Sim,
    /// ConnectWise callback signing keys.
    cw_keys: CallbackKeysSim,
    latency_ms: AtomicU64,
    rate_limit: Mutex<Option<u32>>,
    rate_limit_connectwise_only: bool,
    bucket: Mutex<Bucket>,
    fail_next: AtomicU32,
    fail_status: AtomicU32,
    drop_next: AtomicU32,
    /// `(method, path fragment, status)`: matching requests answer that status until cleared.
    route_faults: Mutex<Vec<(String, String, u16)>>,
    /// Faults that strike a write after the route applied it.
    after_write: Mutex<Vec<AfterWriteFault>>,
    /// Redirects and foreign hosts in returned URLs ([`Sandbox::redirect_every_request`]).
    detours: detours::Detours,
    /// The seeded random fault mode and the per-item count of applied writes.
    chaos: chaos::Chaos,
    stats: Mutex<StatsSnapshot>,
    /// The day the sandbox started (UTC), `YYYY-MM-DD`: contracts are dated from it.
    today: String,
}

pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Sandbox {
    /// Start on 127.0.0.1 with a free port.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        Self::start_on(config, 0).await
    }

    pub async fn start_on(config: SandboxConfig, port: u16) -> anyhow::Result<Sandbox> {
        let fixture =
            seed::fixture(config.large_client_configs, config.bench_client_configs, config.bench_client_contacts);
        let shared = Arc::new(Shared {
            cw: ConnectWiseSim::new(seed::connectwise_from(&fixture)),
            at: AutotaskSim::new(&fixture, config.autotask_hourly_limit),
            halo: HaloSim::new(&fixture, config.halo_rate_limit, config.halo_token_ttl),
            itglue: ItGlueSim::new(),
            notify: NotifySim::new(),
            m365: M365Sim::new(),
            cw_keys: CallbackKeysSim::default(),
            latency_ms: AtomicU64::new(config.latency.as_millis() as u64),
            rate_limit: Mutex::new(config.rate_limit_per_sec),
            rate_limit_connectwise_only: config.rate_limit_connectwise_only,
            bucket: Mutex::new(Bucket { tokens: config.rate_limit_per_sec.unwrap_or(0) as f64, last: Instant::now() }),
            fail_next: AtomicU32::new(0),
            fail_status: AtomicU32::new(503),
            drop_next: AtomicU32::new(0),
            route_faults: Mutex::new(Vec::new()),
            after_write: Mutex::new(Vec::new()),
            detours: detours::Detours::default(),
            chaos: chaos::Chaos::default(),
            stats: Mutex::new(StatsSnapshot::default()),
            today: fixture.today.clone(),
        });
        drop(fixture);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sandbox { addr, shared, shutdown: Some(tx) })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connectwise_url(&self) -> String {
        format!("{}{CW_PREFIX}", self.base_url())
    }

    /// The Autotask REST base of the sandbox's zone: `http://127.0.0.1:PORT/at5/atservicesrest/v1.0`.
    pub fn autotask_url(&self) -> String {
        format!("{}{AT_PREFIX}", self.base_url())
    }

    /// The Autotask zone-lookup base: `http://127.0.0.1:PORT/atservicesrest/v1.0`
    /// (append `/zoneInformation?user=…`).
    pub fn autotask_zone_lookup_url(&self) -> String {
        format!("{}{AT_ZONE_PREFIX}/v1.0", self.base_url())
    }

    /// The HaloPSA instance root: `http://127.0.0.1:PORT/halo` (append `/api/…`, `/auth/…`).
    pub fn halo_url(&self) -> String {
        format!("{}{HALO_PREFIX}", self.base_url())
    }

    /// The IT Glue API base: `http://127.0.0.1:PORT/itglue` (append `/organizations`, …).
    pub fn itglue_url(&self) -> String {
        format!("{}{ITGLUE_PREFIX}", self.base_url())
    }

    /// The Entra ID authority: `http://127.0.0.1:PORT/entra` (append `/{tenant}/oauth2/v2.0/token`).
    pub fn entra_url(&self) -> String {
        format!("{}{ENTRA_PREFIX}", self.base_url())
    }

    /// Microsoft Graph: `http://127.0.0.1:PORT/graph/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}{GRAPH_PREFIX}", self.base_url())
    }

    /// Exchange Online: `http://127.0.0.1:PORT/exo` (append `/adminapi/beta/{tenantId}/InvokeCommand`).
    pub fn exchange_url(&self) -> String {
        format!("{}{EXO_PREFIX}", self.base_url())
    }

    /// Where the sandbox serves the ConnectWise callback signing key `key_id`: what a
    /// callback's `Metadata.key_url` names.
    pub fn connectwise_key_url(&self, key_id: &str) -> String {
        format!("{}{CW_KEYS_PREFIX}/{key_id}", self.base_url())
    }

    /// The ConnectWise callback signing keys: set them, count their fetches.
    pub fn callback_keys(&self) -> &CallbackKeysSim {
        &self.shared.cw_keys
    }

    /// Microsoft 365 customer tenants: state, applied writes, limits, tokens.
    pub fn m365(&self) -> &M365Sim {
        &self.shared.m365
    }

    /// The valid incoming-webhook URL (its token is [`SANDBOX_WEBHOOK_TOKEN`]).
    pub fn webhook_url(&self) -> String {
        format!("{}{HOOKS_PREFIX}/{SANDBOX_WEBHOOK_TOKEN}", self.base_url())
    }

    /// Mail Graph accepted, oldest first: `{"sender","message","saveToSentItems"}`.
    pub fn sent_mail(&self) -> Vec<Value> {
        self.shared.notify.sent_mail()
    }

    /// Payloads the webhook accepted, oldest first.
    pub fn webhook_posts(&self) -> Vec<Value> {
        self.shared.notify.webhook_posts()
    }

    /// The notification services (Entra, Graph, webhooks): token controls.
    pub fn notify(&self) -> &NotifySim {
        &self.shared.notify
    }

    pub fn connectwise(&self) -> &ConnectWiseSim {
        &self.shared.cw
    }

    pub fn autotask(&self) -> &AutotaskSim {
        &self.shared.at
    }

    pub fn halo(&self) -> &HaloSim {
        &self.shared.halo
    }

    /// IT Glue: organizations, exports, deletion and fault controls.
    pub fn itglue(&self) -> &ItGlueSim {
        &self.shared.itglue
    }

    /// How long after an accepted `DELETE /organizations` IT Glue actually removes the
    /// organizations (default 300 ms); applies to deletions requested from now on.
    pub fn set_itglue_deletion_delay(&self, delay: Duration) {
        self.shared.itglue.set_deletion_delay(delay);
    }

    /// The simulator of `kind`: `"connectwise"`, `"autotask"` or `"halo"`.
    ///
    /// # Panics
    /// On any other kind.
    pub fn psa(&self, kind: &str) -> &dyn PsaSim {
        match kind {
            "connectwise" => &self.shared.cw,
            "autotask" => &self.shared.at,
            "halo" => &self.shared.halo,
            other => panic!("unknown PSA kind {other:?} (expected connectwise, autotask or halo)"),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats().clone()
    }

    pub fn reset_stats(&self) {
        *self.shared.stats() = StatsSnapshot::default();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.shared.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.set_rate_limit(per_second);
    }

    /// The next `n` vendor requests answer HTTP `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.fail_status.store(status as u32, Ordering::SeqCst);
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every vendor request with this method whose path contains `path_fragment` answers
    /// HTTP `status` (in the vendor's error shape) until [`Self::clear_route_faults`]: one
    /// route refused (a listing, a lookup) while the others work.
    pub fn fail_route(&self, method: &str, path_fragment: &str, status: u16) {
        let fault = (method.to_ascii_uppercase(), path_fragment.to_string(), status);
        self.shared.route_faults.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    pub fn clear_route_faults(&self) {
        self.shared.route_faults.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The next `times` requests with this method whose path contains `path_fragment`
    /// (ignoring ASCII case; a fragment ending in `$` must end the path) and, when `id` is given, that name `id` (a path segment, or an
    /// `"id"` of the JSON body or of one of its array elements) are APPLIED by the route,
    /// and then their answer is lost: `fault` replaces a successful answer (a failed write
    /// is answered as it is, and does not use up the fault). The write happened; the client
    /// cannot know it.
    pub fn fault_after_write(&self, method: &str, path_fragment: &str, id: Option<i64>, fault: AfterWrite, times: u32) {
        let fault = AfterWriteFault {
            method: method.to_ascii_uppercase(),
            fragment: path_fragment.to_ascii_lowercase(),
            target: id.map_or(faults::Target::Any, faults::Target::Id),
            fault,
            remaining: times,
        };
        self.shared.after_write.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    /// Like [`Self::fault_after_write`], for creations only (a body naming no `id`): the
    /// record is created and the answer carrying its id is lost.
    pub fn fault_after_create(&self, method: &str, path_fragment: &str, fault: AfterWrite, times: u32) {
        let fault = AfterWriteFault {
            method: method.to_ascii_uppercase(),
            fragment: path_fragment.to_ascii_lowercase(),
            target: faults::Target::New,
            fault,
            remaining: times,
        };
        self.shared.after_write.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    /// How many after-write faults have struck so far.
    pub fn after_write_faults_struck(&self) -> u64 {
        self.shared.stats().after_write_faults
    }

    pub fn clear_after_write_faults(&self) {
        self.shared.after_write.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The next `n` vendor requests lose their connection mid-response.
    pub fn drop_next(&self, n: u32) {
        self.shared.drop_next.store(n, Ordering::SeqCst);
    }

    /// Autotask API requests allowed per rolling hour.
    pub fn set_autotask_hourly_limit(&self, limit: u32) {
        self.shared.at.set_hourly_limit(limit);
    }

    /// HaloPSA requests allowed per rolling 5 minutes (`None` = unlimited).
    pub fn set_halo_rate_limit(&self, limit: Option<u32>) {
        self.shared.halo.set_rate_limit(limit);
    }

    /// Lifetime of HaloPSA tokens issued from now on.
    pub fn set_halo_token_ttl(&self, ttl: Duration) {
        self.shared.halo.set_token_ttl(ttl);
    }

    /// Every HaloPSA token issued so far stops working.
    pub fn revoke_halo_tokens(&self) {
        self.shared.halo.revoke_tokens();
    }

    /// HaloPSA access tokens issued since start.
    pub fn halo_tokens_issued(&self) -> u64 {
        self.shared.halo.tokens_issued()
    }

    /// The day the sandbox started (UTC), `YYYY-MM-DD`. Fixture contracts are dated
    /// relative to it, and contract states (expired, active) are judged against it.
    pub fn today(&self) -> &str {
        &self.shared.today
    }

    /// Someone records a contract for `company_id` in the PSA; all three vendors see it
    /// (ConnectWise agreement, Autotask contract, HaloPSA client contract).
    ///
    /// `end` is `YYYY-MM-DD`, or `None` for an open-ended contract (Autotask renders it as
    /// ending 2099-12-31). The contract is named `Contract {contract_id}` and starts 30 days
    /// before [`Sandbox::today`]; an existing contract with the same id is replaced.
    pub fn add_contract(&self, company_id: i64, contract_id: i64, end: Option<&str>, cancelled: bool) {
        let today = &self.shared.today;
        let start = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
            .map(|day| seed::day_offset(day, -30))
            .unwrap_or_else(|_| today.clone());
        let contract = seed::Contract {
            id: contract_id,
            company_id,
            name: format!("Contract {contract_id}"),
            start,
            end: end.map(str::to_string),
            cancelled,
        };
        self.shared.cw.add_contract(&contract, today);
        self.shared.at.add_contract(&contract);
        self.shared.halo.add_contract(&contract, today);
    }
}

impl Shared {
    pub(crate) fn stats(&self) -> MutexGuard<'_, StatsSnapshot> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_route(&self, method: &Method, route: &str) {
        *self.stats().by_route.entry(format!("{method} {route}")).or_default() += 1;
    }

    fn set_rate_limit(&self, per_second: Option<u32>) {
        *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) = per_second;
        *self.bucket.lock().unwrap_or_else(|e| e.into_inner()) =
            Bucket { tokens: per_second.unwrap_or(0) as f64, last: Instant::now() };
    }

    /// Token bucket: `rate` tokens per second, capacity one second's worth.
    fn admit(&self) -> bool {
        let Some(rate) = *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) else { return true };
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate as f64;
        bucket.tokens = (bucket.tokens + refill).min(rate as f64);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn take(counter: &AtomicU32) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

pub(crate) fn json_response(value: &Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

pub(crate) fn json_status(status: StatusCode, value: &Value) -> Response {
    (status, [("content-type", "application/json")], value.to_string()).into_response()
}

pub(crate) fn text_status(status: StatusCode, text: &str) -> Response {
    (status, [("content-type", "text/plain; charset=utf-8")], text.to_string()).into_response()
}

/// Query parameters with lower-cased names (last one wins).
pub(crate) fn query_map(uri: &Uri) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

/// `path` without `prefix` (compared ignoring ASCII case), if it continues with `/` or ends.
fn strip_prefix_ci<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    let rest = &path[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && (rest.is_empty() || rest.starts_with('/'))).then_some(rest)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Vendor {
    ConnectWise,
    AutotaskZone,
    Autotask,
    Halo,
    ItGlue,
    Entra,
    Graph,
    Exchange,
    Webhook,
    CallbackKeys,
    Unknown,
}

impl Vendor {
    /// The key of [`StatsSnapshot::by_vendor`].
    fn name(self) -> &'static str {
        match self {
            Vendor::ConnectWise => "connectwise",
            Vendor::AutotaskZone => "autotask_zone",
            Vendor::Autotask => "autotask",
            Vendor::Halo => "halo",
            Vendor::ItGlue => "itglue",
            Vendor::Entra => "entra",
            Vendor::Graph => "graph",
            Vendor::Exchange => "exchange",
            Vendor::Webhook => "webhook",
            Vendor::CallbackKeys => "callback_keys",
            Vendor::Unknown => "unknown",
        }
    }

    /// The vendor and the path below its prefix.
    fn of(path: &str) -> (Vendor, &str) {
        if let Some(rest) = path.strip_prefix(CW_PREFIX).filter(|r| r.is_empty() || r.starts_with('/')) {
            (Vendor::ConnectWise, rest)
        } else if let Some(rest) = strip_prefix_ci(path, AT_PREFIX) {
            (Vendor::Autotask, rest)
        } else if let Some(rest) = strip_prefix_ci(path, AT_ZONE_PREFIX) {
            (Vendor::AutotaskZone, rest)
        } else if let Some(rest) = strip_prefix_ci(path, HALO_PREFIX) {
            (Vendor::Halo, rest)
        } else if let Some(rest) = strip_prefix_ci(path, ITGLUE_PREFIX) {
            (Vendor::ItGlue, rest)
        } else if let Some(rest) = strip_prefix_ci(path, ENTRA_PREFIX) {
            (Vendor::Entra, rest)
        } else if let Some(rest) = strip_prefix_ci(path, GRAPH_PREFIX) {
            (Vendor::Graph, rest)
        } else if let Some(rest) = strip_prefix_ci(path, EXO_PREFIX) {
            (Vendor::Exchange, rest)
        } else if let Some(rest) = strip_prefix_ci(path, HOOKS_PREFIX) {
            (Vendor::Webhook, rest)
        } else if let Some(rest) = strip_prefix_ci(path, CW_KEYS_PREFIX) {
            (Vendor::CallbackKeys, rest)
        } else {
            (Vendor::Unknown, path)
        }
    }

    /// An error in the vendor's usual shape.
    fn error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Vendor::ConnectWise | Vendor::CallbackKeys | Vendor::Unknown => {
                let code = match status {
                    StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
                    StatusCode::NOT_FOUND => "NotFound",
                    _ => "ServiceUnavailable",
                };
                cw_error(status, code, message)
            }
            Vendor::Autotask | Vendor::AutotaskZone => autotask::at_error(status, message),
            Vendor::Halo if status == StatusCode::TOO_MANY_REQUESTS => text_status(status, message),
            Vendor::Halo => halo::exception(status, message),
            Vendor::ItGlue => itglue::error(status, message),
            Vendor::Entra => notify::entra_fault(status, message),
            Vendor::Graph => notify::graph_fault(status, message),
            Vendor::Exchange => m365::exchange_fault(status, message),
            Vendor::Webhook => text_status(status, message),
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if let Some(admin) = path.strip_prefix("/_sandbox/") {
        return admin_route(&shared, &method, admin, &body);
    }
    let (vendor, rest) = Vendor::of(&path);
    {
        let mut stats = shared.stats();
        stats.total_requests += 1;
        *stats.by_vendor.entry(vendor.name().to_string()).or_default() += 1;
    }
    let limited = !shared.rate_limit_connectwise_only || matches!(vendor, Vendor::ConnectWise);
    if limited && !shared.admit() {
        shared.stats().throttled += 1;
        let mut response = vendor.error(StatusCode::TOO_MANY_REQUESTS, "Too many requests, try again later");
        response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        return response;
    }
    // The vendor's own limits; an Autotask thread slot stays taken until this request ends
    // (or is dropped because its client went away).
    let _thread_slot = match vendor {
        Vendor::Autotask => match autotask::acquire_thread(&shared, rest, &headers) {
            Ok(slot) => Some(slot),
            Err(response) => return *response,
        },
        Vendor::Halo => {
            if let Err(response) = halo::admit(&shared) {
                return *response;
            }
            None
        }
        // Before auth: IT Glue's window counts unauthenticated requests too.
        Vendor::ItGlue => {
            if let Err(response) = itglue::admit(&shared) {
                return *response;
            }
            None
        }
        _ => None,
    };
    let latency = shared.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let path_and_query = uri.path_and_query().map_or(path.as_str(), |p| p.as_str());
    let chaos = shared.chaos.strike(&method, path_and_query, &body);
    if let Some(response) = chaos_before_handler(&shared, vendor, chaos, path_and_query).await {
        return response;
    }
    if Shared::take(&shared.drop_next) {
        return broken_response();
    }
    if Shared::take(&shared.fail_next) {
        let status = StatusCode::from_u16(shared.fail_status.load(Ordering::SeqCst) as u16)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return vendor.error(status, "Injected fault");
    }
    let route_fault =
        shared.route_faults.lock().unwrap_or_else(|e| e.into_inner()).iter().find_map(|(m, fragment, status)| {
            (m == method.as_str() && path.contains(fragment.as_str())).then_some(*status)
        });
    if let Some(status) = route_fault {
        return vendor.error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "Injected route fault");
    }
    if let Some(redirect) = shared.detours.redirect() {
        return redirect;
    }
    let host = shared
        .detours
        .link_host()
        .unwrap_or_else(|| headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string());
    let response = route(&shared, vendor, &method, rest, &uri, &headers, &host, &body);
    if !response.status().is_success() {
        return response;
    }
    shared.chaos.count_write(&method, &path, &body);
    if chaos == Some(ChaosFault::DropAfterWrite) {
        return broken_response();
    }
    match shared.strike_after_write(&method, &path, &body) {
        None => response,
        Some(AfterWrite::Drop) => broken_response(),
        Some(AfterWrite::DropThenOutage(n)) => {
            shared.fail_status.store(503, Ordering::SeqCst);
            shared.fail_next.store(n, Ordering::SeqCst);
            broken_response()
        }
        Some(AfterWrite::Status(status)) => vendor.error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::GATEWAY_TIMEOUT),
            "Injected fault after the write was applied",
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn route(
    shared: &Shared,
    vendor: Vendor,
    method: &Method,
    rest: &str,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    body: &Bytes,
) -> Response {
    match vendor {
        Vendor::ConnectWise => connectwise::route(shared, method, rest, uri, headers, host, body),
        Vendor::Autotask => autotask::route(shared, method, rest, uri, headers, host, body),
        Vendor::AutotaskZone => autotask::zone_route(shared, method, rest, uri, host),
        Vendor::Halo => halo::route(shared, method, rest, uri, headers, host, body),
        Vendor::ItGlue => itglue::route(shared, method, rest, uri, headers, host, body),
        Vendor::Entra => notify::entra_route(shared, method, rest, body),
        Vendor::Graph => m365::graph_entry(shared, method, rest, uri, headers, host, body)
            .unwrap_or_else(|| notify::graph_route(shared, method, rest, headers, body)),
        Vendor::Exchange => m365::exchange_route(shared, method, rest, headers, body),
        Vendor::Webhook => notify::hook_route(shared, method, rest, body),
        Vendor::CallbackKeys => callback_keys::route(shared, method, rest),
        Vendor::Unknown => cw_error(StatusCode::NOT_FOUND, "NotFound", "No such API"),
    }
}

/// The answer of a request the random fault mode struck before its handler runs: a 429
/// (with or without `Retry-After`), a 5xx, a broken connection; a slow request is delayed
/// and then handled. `None`: handle it.
async fn chaos_before_handler(
    shared: &Shared,
    vendor: Vendor,
    fault: Option<ChaosFault>,
    path_and_query: &str,
) -> Option<Response> {
    match fault? {
        ChaosFault::ThrottledWithRetryAfter => {
            let mut response = vendor.error(StatusCode::TOO_MANY_REQUESTS, "Too many requests, try again later");
            let seconds = HeaderValue::from(shared.chaos.retry_after_secs());
            response.headers_mut().insert("retry-after", seconds);
            Some(response)
        }
        ChaosFault::ThrottledWithoutRetryAfter => {
            Some(vendor.error(StatusCode::TOO_MANY_REQUESTS, "Too many requests, try again later"))
        }
        ChaosFault::ServerError => {
            let status = StatusCode::from_u16(chaos::Chaos::server_status(path_and_query))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(vendor.error(status, "Injected fault (chaos)"))
        }
        ChaosFault::DropBeforeHandler => Some(broken_response()),
        ChaosFault::Slow => {
            tokio::time::sleep(shared.chaos.slow()).await;
            None
        }
        ChaosFault::DropAfterWrite => None,
    }
}

/// Headers go out, then the body breaks: the client sees a broken connection.
fn broken_response() -> Response {
    let stream =
        futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("dropped by sandbox")) });
    Response::builder().status(200).body(Body::from_stream(stream)).unwrap_or_default()
}

fn admin_route(shared: &Shared, method: &Method, path: &str, body: &Bytes) -> Response {
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), path) {
        ("GET", "stats") => json_response(&serde_json::to_value(&*shared.stats()).unwrap_or_default()),
        ("POST", "reset-stats") => {
            *shared.stats() = StatsSnapshot::default();
            json_response(&json!({"ok": true}))
        }
        ("GET", "chaos") => json_response(&serde_json::to_value(shared.chaos.report()).unwrap_or_default()),
        ("POST", "chaos") => {
            // `{"seed","rate","retry_after_secs","slow_ms"}` turns the mode on; `null` off.
            let settings = serde_json::from_value::<Option<ChaosSettings>>(input).ok().flatten();
            shared.chaos.set(settings);
            json_response(&json!({"ok": true}))
        }
        ("POST", "chaos/reset") => {
            shared.chaos.reset_report();
            json_response(&json!({"ok": true}))
        }
        ("GET", admin) if admin.starts_with("configurations/") => chaos::configurations_admin(shared, admin),
        ("POST", "faults") => {
            if let Some(status) = input["status"].as_u64() {
                shared.fail_status.store(status as u32, Ordering::SeqCst);
            }
            shared.fail_next.store(input["fail_next"].as_u64().unwrap_or(0) as u32, Ordering::SeqCst);
            shared.drop_next.store(input["drop_next"].as_u64().unwrap_or(0) as u32, Ordering::SeqCst);
            json_response(&json!({"ok": true}))
        }
        ("POST", "settings") => {
            if let Some(latency) = input["latency_ms"].as_u64() {
                shared.latency_ms.store(latency, Ordering::SeqCst);
            }
            if input.get("rate_limit").is_some() {
                shared.set_rate_limit(input["rate_limit"].as_u64().map(|r| r as u32));
            }
            if let Some(limit) = input["autotask_hourly_limit"].as_u64() {
                shared.at.set_hourly_limit(limit.min(u32::MAX as u64) as u32);
            }
            if input.get("halo_rate_limit").is_some() {
                shared.halo.set_rate_limit(input["halo_rate_limit"].as_u64().map(|r| r.min(u32::MAX as u64) as u32));
            }
            if input.get("itglue_rate_limit").is_some() {
                let limit = input["itglue_rate_limit"].as_u64().map(|r| r.min(u32::MAX as u64) as u32);
                shared.itglue.set_rate_limit(limit);
            }
            if let Some(ids) = input["halo_asset_answer_omits"].as_array() {
                let ids: Vec<i64> = ids.iter().filter_map(Value::as_i64).collect();
                shared.halo.omit_from_asset_answers(&ids);
            }
            if let Some(limits) = input.get("m365_throttle").filter(|l| l.is_object()) {
                shared.m365.set_throttle(m365::ThrottleSettings::from_admin(limits));
            }
            if let Some(ttl) = input["halo_token_ttl_secs"].as_u64() {
                shared.halo.set_token_ttl(Duration::from_secs(ttl));
            }
            json_response(&json!({"ok": true}))
        }
        _ => cw_error(StatusCode::NOT_FOUND, "NotFound", "unknown sandbox admin route"),
    }
}
