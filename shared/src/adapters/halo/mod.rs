//! HaloPSA API adapter.
//!
//! Facts (docs/vendors/halopsa.md):
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
//! UNCONFIRMED points, and how this client copes (docs/vendors/halopsa.md#unconfirmed-points):
//! - Whether inactive assets, clients and users are listed by default: we always send both
//!   `includeinactive=true` and `includeactive=true`.
//! - The largest page size: we ask for 500 and page by the `page_size` the server says
//!   it used, stopping at `record_count` or at a short page.
//! - Whether an array POST that fails for one element changes the others: a failed batch
//!   is retried element by element, so each asset gets its own result; re-sending
//!   `inactive: true` to an asset that did change is harmless.
//! - What a POST answers: an array of the saved objects, one object, or nothing; we read
//!   whichever comes, and read back every asset the answer leaves out (never trusting the
//!   2xx alone: the workflow then sees the asset as it really is).
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

mod client;
mod errors;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod parse;
mod settings;
mod token;

pub use client::HaloClient;
pub use settings::HaloSettings;
pub(crate) use settings::load as load_settings;

use async_trait::async_trait;
use serde_json::{Value, json};

use self::client::{config_error, numeric_id};
use self::parse::note_html;
use crate::adapters::vendor_http::{Fields, exactly_named};
use crate::domain::{
    Company, ConfigState, ConfigStatus, Configuration, ContractSummary, OffboardedCriteria, PsaKind, parse_vendor_date,
};
use crate::domain::{Contact, NewTicket, PrimaryContactSignal, Ticket, TicketAssignment, TicketNote};
use crate::error::PsaError;
use crate::http::Retry;
use crate::ports::Psa;

/// The primary-contact signal HaloPSA has: the client's main site's main contact.
const MAIN_CONTACT_SIGNAL: &str = "site.maincontact_id";

/// Both flags on every list: whether inactive records are listed by default is UNCONFIRMED.
fn both_states() -> Vec<(&'static str, String)> {
    vec![("includeinactive", "true".to_string()), ("includeactive", "true".to_string())]
}

impl HaloClient {
    /// The ticket, or `NotFound`.
    async fn existing_ticket(&self, id: i64) -> Result<Ticket, PsaError> {
        let what = format!("ticket {id}");
        match self.api.get(&format!("tickets/{id}"), &[], &what).await? {
            Some(value) => parse::ticket(&value),
            None => Err(PsaError::NotFound { what }),
        }
    }

    fn parse_asset(&self, value: &Value) -> Result<Configuration, PsaError> {
        parse::asset(value, &self.settings.archived_status_ids)
    }

    /// The asset after an upsert: the saved row when HaloPSA's answer has it, else the asset
    /// read back. What a POST answers is UNCONFIRMED (docs/vendors/halopsa.md#upserts): an
    /// asset missing from the answer is never counted as changed on trust.
    /// One upsert setting `inactive` on these assets; each asset's state afterwards. A
    /// batch refused for a reason that is not about an asset (permission, budget) is that
    /// refusal for each; any other failure is retried asset by asset, to find which.
    async fn restore_batch(
        &self,
        chunk: &[(usize, Configuration)],
        inactive: bool,
    ) -> Vec<(usize, Result<Configuration, PsaError>)> {
        let refs: Vec<&Configuration> = chunk.iter().map(|(_, config)| config).collect();
        let mut out = Vec::with_capacity(chunk.len());
        match self.post_inactive(&refs, inactive).await {
            Ok(saved) => {
                for (index, config) in chunk {
                    let id = config.id.parse::<i64>().unwrap_or_default();
                    out.push((*index, self.after_update(config, saved.get(&id)).await));
                }
            }
            Err(error @ (PsaError::PermissionDenied { .. } | PsaError::BudgetExhausted { .. })) => {
                out.extend(chunk.iter().map(|(index, _)| (*index, Err(same_refusal(&error)))));
            }
            Err(error) => {
                tracing::info!(assets = chunk.len(), error = %error, "batch restore failed; retrying asset by asset");
                for (index, config) in chunk {
                    out.push((*index, self.set_configuration_status(&config.id, &config.status).await));
                }
            }
        }
        out
    }

    async fn after_update(&self, before: &Configuration, saved: Option<&Value>) -> Result<Configuration, PsaError> {
        if let Some(row) = saved.filter(|row| row.get("inactive").is_some()) {
            return self.parse_asset(row);
        }
        tracing::debug!(asset = %before.id, "asset missing from HaloPSA's answer: reading it back");
        self.configuration(&before.id).await?.ok_or_else(|| PsaError::NotFound { what: format!("asset {}", before.id) })
    }
}

/// What a restore sends for an asset: its id and the status to put back.
fn restore_target(id: &str, status: &ConfigStatus) -> Configuration {
    Configuration {
        id: id.to_string(),
        name: String::new(),
        company_id: String::new(),
        status: status.clone(),
        type_name: None,
        contact_id: None,
    }
}

/// A whole batch's refusal, once per asset of it.
fn same_refusal(error: &PsaError) -> PsaError {
    match error {
        PsaError::BudgetExhausted { message, resets_in } => {
            PsaError::BudgetExhausted { message: message.clone(), resets_in: *resets_in }
        }
        other => PsaError::PermissionDenied { message: other.to_string() },
    }
}

#[async_trait]
impl Psa for HaloClient {
    fn kind(&self) -> PsaKind {
        PsaKind::Halo
    }

    async fn company_by_id(&self, id: &str) -> Result<Option<Company>, PsaError> {
        let id = numeric_id(id, "client")?;
        self.api
            .get(&format!("client/{id}"), &[], &format!("client {id}"))
            .await?
            .map(|value| parse::client(&value))
            .transpose()
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, PsaError> {
        let mut query = both_states();
        query.push(("search", name.trim().to_string()));
        let clients = self.list("client", &query, "clients", "clients", |row| Ok(parse::client(row))).await?;
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
        let clients = self.list("client", &query, "clients", "clients", parse::client).await?;
        Ok(clients.into_iter().filter(|c| criteria.matches(c)).collect())
    }

    // Client contracts (`/api/ClientContract`, rows under `contracts`, fields `end_date` and
    // `active`) are UNCONFIRMED (docs/vendors/halopsa.md#unconfirmed-points). There is no
    // documented date filter, so all contracts are listed and read here. An inactive contract
    // counts as ended; a missing end date as current.
    async fn companies_with_ended_contracts(&self, today: chrono::NaiveDate) -> Result<Vec<String>, PsaError> {
        let ended_by_client = self
            .list("ClientContract", &[], "contracts", "client contracts", |c| {
                let ended =
                    c.get("end_date").and_then(Value::as_str).and_then(parse_vendor_date).is_some_and(|e| e < today);
                let ended = ended || c.get("active").and_then(Value::as_bool) == Some(false);
                Ok(Fields::of(c).int("client_id").filter(|_| ended))
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
            .list("ClientContract", &query, "contracts", &format!("contracts of client {id}"), |c| {
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
            .list("asset", &query, "assets", &format!("assets of client {id}"), |row| self.parse_asset(row))
            .await?;
        let mut configs: Vec<Configuration> =
            configs.into_iter().filter(|c| include_archived || c.status.state != ConfigState::Archived).collect();
        configs.sort_by_key(|c| c.id.parse::<i64>().unwrap_or_default());
        Ok(configs)
    }

    async fn configuration(&self, id: &str) -> Result<Option<Configuration>, PsaError> {
        let id = numeric_id(id, "asset")?;
        self.api
            .get(&format!("asset/{id}"), &[], &format!("asset {id}"))
            .await?
            .map(|value| self.parse_asset(&value))
            .transpose()
    }

    async fn deactivate_configuration(&self, config: &Configuration) -> Result<Configuration, PsaError> {
        let saved = self.post_inactive(&[config], true).await?;
        self.after_update(config, saved.get(&numeric_id(&config.id, "asset")?)).await
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
            Ok(saved) => {
                let mut results = Vec::with_capacity(configs.len());
                for config in configs {
                    let id = config.id.parse::<i64>().unwrap_or_default();
                    results.push(self.after_update(config, saved.get(&id)).await);
                }
                results
            }
            // The batch failed as a whole: find out which asset by sending them one by
            // one. Errors that are not about an asset (auth, budget) would only repeat.
            Err(error @ (PsaError::PermissionDenied { .. } | PsaError::BudgetExhausted { .. })) => {
                configs.iter().map(|_| Err(same_refusal(&error))).collect()
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
        if (current.status.state != ConfigState::Active) == inactive {
            // Already so (a batch whose answer was lost applied it): nothing to send again.
            return Ok(current);
        }
        let saved = self.post_inactive(&[&current], inactive).await?;
        self.after_update(&current, saved.get(&numeric_id(config_id, "asset")?)).await
    }

    /// One upsert per batch of assets going to the same `inactive` flag
    /// (`restore_batch`).
    async fn restore_configurations(&self, statuses: &[(&str, &ConfigStatus)]) -> Vec<Result<Configuration, PsaError>> {
        let mut results: Vec<Option<Result<Configuration, PsaError>>> = statuses.iter().map(|_| None).collect();
        for inactive in [false, true] {
            let batch: Vec<(usize, Configuration)> = statuses
                .iter()
                .enumerate()
                .filter(|(_, (_, status))| (status.state != ConfigState::Active) == inactive)
                .map(|(index, (id, status))| (index, restore_target(id, status)))
                .collect();
            for chunk in batch.chunks(self.update_batch_size()) {
                for (index, result) in self.restore_batch(chunk, inactive).await {
                    results[index] = Some(result);
                }
            }
        }
        let missing = || Err(config_error("asset was in no restore batch"));
        results.into_iter().map(|result| result.unwrap_or_else(missing)).collect()
    }

    async fn check_access(&self) -> Result<(), PsaError> {
        self.credentials.authorization(self.api.http(), false).await.map(|_| ())
    }

    async fn list_contacts(&self, company_id: &str) -> Result<Vec<Contact>, PsaError> {
        let id = numeric_id(company_id, "client")?;
        // Both flags, as for assets: whether inactive users are listed by default is UNCONFIRMED.
        let mut query = both_states();
        query.push(("client_id", id.to_string()));
        let mut contacts = self
            .list("users", &query, "users", &format!("users of client {id}"), |row| parse::user(row, Some(id)))
            .await?;
        contacts.sort_by_key(|c| c.id.parse::<i64>().unwrap_or_default());
        contacts.dedup_by(|a, b| a.id == b.id);
        Ok(contacts)
    }

    async fn contact(&self, id: &str) -> Result<Option<Contact>, PsaError> {
        let id = numeric_id(id, "user")?;
        self.api
            .get(&format!("users/{id}"), &[], &format!("user {id}"))
            .await?
            .map(|value| parse::user(&value, None))
            .transpose()
    }

    // Two reads: the client (for `main_site_id`) and its main site. Treating the main site's
    // `maincontact_id` as the client's primary contact is UNCONFIRMED
    // (docs/vendors/halopsa.md#unconfirmed-points); `isimportantcontact` is a separate flag and
    // deliberately not read as primary.
    async fn primary_contacts(&self, company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError> {
        let id = numeric_id(&company.id, "client")?;
        let client = self
            .api
            .get(&format!("client/{id}"), &[], &format!("client {id}"))
            .await?
            .ok_or_else(|| PsaError::NotFound { what: format!("client {id}") })?;
        let Some(site_id) = Fields::of(&client).int("main_site_id").filter(|s| *s > 0) else {
            tracing::info!(client = id, "HaloPSA client has no main site; no main contact to protect");
            return Ok(Vec::new());
        };
        let what = format!("main site {site_id} of client {id}");
        let Some(site) = self.api.get(&format!("site/{site_id}"), &[], &what).await? else {
            tracing::warn!(client = id, site = site_id, "HaloPSA main site not found; no main contact to protect");
            return Ok(Vec::new());
        };
        Ok(Fields::of(&site)
            .positive("maincontact_id")
            .map(|contact_id| PrimaryContactSignal { contact_id, signal: MAIN_CONTACT_SIGNAL.to_string() })
            .into_iter()
            .collect())
    }

    async fn set_contact_active(&self, contact: &Contact, active: bool) -> Result<Contact, PsaError> {
        let id = numeric_id(&contact.id, "user")?;
        let what = format!("user {id}");
        // A minimal upsert with the id (partial-update semantics UNCONFIRMED:
        // docs/vendors/halopsa.md#upserts), sent once and read back after a lost answer.
        let rows = vec![(id, json!({ "id": id, "inactive": !active }))];
        let mut saved =
            self.upsert_once("users", rows, |r| Fields::of(r).flag("inactive") == Some(!active), &what).await?;
        match saved.remove(&id) {
            Some(row) if row.get("inactive").and_then(Value::as_bool).is_some() => {
                let mut after = parse::user(&row, numeric_id(&contact.company_id, "client").ok())?;
                // Halo's answer may omit fields a listing has; keep what we knew.
                after.primary_signals = contact.primary_signals.clone();
                Ok(after)
            }
            // Not in the answer: read it back rather than assume the flag was set.
            _ => {
                let mut after = self.contact(&id.to_string()).await?.ok_or(PsaError::NotFound { what })?;
                after.primary_signals = contact.primary_signals.clone();
                Ok(after)
            }
        }
    }

    async fn open_tickets(&self, company_id: &str) -> Result<Vec<Ticket>, PsaError> {
        let id = numeric_id(company_id, "client")?;
        let query = [("client_id", id.to_string()), ("open_only", "true".to_string())];
        let tickets =
            self.list("tickets", &query, "tickets", &format!("open tickets of client {id}"), parse::ticket).await?;
        // `open_only=true` is trusted to leave out every closed status (tenants define their
        // own); a ticket in a known closed status is dropped as well, should the filter be ignored.
        let mut tickets: Vec<Ticket> = tickets.into_iter().filter(|t| !t.closed).collect();
        tickets.sort_by_key(|t| t.id.parse::<i64>().unwrap_or_default());
        tickets.dedup_by(|a, b| a.id == b.id);
        Ok(tickets)
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, PsaError> {
        let id = numeric_id(id, "ticket")?;
        self.api
            .get(&format!("tickets/{id}"), &[], &format!("ticket {id}"))
            .await?
            .map(|value| parse::ticket(&value))
            .transpose()
    }

    async fn update_ticket(&self, ticket_id: &str, change: &TicketAssignment) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let body = parse::ticket_update(id, change)?;
        // Read first: writes are upserts, and whether an id that does not exist is refused
        // or creates a ticket is UNCONFIRMED. A missing ticket is NotFound, nothing is sent.
        let current = self.existing_ticket(id).await?;
        if change.is_empty() {
            return Ok(current);
        }
        let what = format!("ticket {id}");
        // Sent once; after a lost answer the ticket is read back and the update sent again
        // only if the ticket does not show it (docs/vendors/README.md#lost-answers).
        let applied = |record: &Value| {
            body.as_object().is_some_and(|fields| fields.iter().all(|(k, v)| k == "id" || record.get(k) == Some(v)))
        };
        let saved = self.upsert_once("tickets", vec![(id, body.clone())], applied, &what).await?;
        match saved.get(&id).filter(|row| row.get("client_id").is_some()) {
            Some(row) => parse::ticket(row),
            // No saved row in the answer: read it back.
            None => self.existing_ticket(id).await,
        }
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, PsaError> {
        let client = numeric_id(&ticket.company_id, "client")?;
        let team = ticket.queue.as_deref().map(str::trim).filter(|t| !t.is_empty());
        // The client's main site: Halo wants a site with the ticket
        // (docs/vendors/halopsa.md#tickets-and-notes).
        let record = self
            .api
            .get(&format!("client/{client}"), &[], &format!("client {client}"))
            .await?
            .ok_or_else(|| PsaError::NotFound { what: format!("client {client}") })?;
        let site = Fields::of(&record)
            .int("main_site_id")
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
            .find(|row| Fields::of(row).int("id").is_some_and(|id| id > 0))
            .ok_or_else(|| PsaError::InvalidResponse { message: format!("{what}: the answer carries no ticket id") })?;
        if row.get("client_id").is_some() && row.get("summary").is_some() {
            return parse::ticket(&row);
        }
        let id = Fields::of(&row).int("id").unwrap_or_default();
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

    // Closed = `status_id` `HALO_CLOSED_TICKET_STATUS_ID` (default 9, "Closed" in a default
    // tenant; tenants define their own statuses, so UNCONFIRMED: docs/vendors/ticket-close.md#halopsa).
    // Checked on the saved row, or on a read-back when the answer has none.
    async fn close_ticket(&self, ticket_id: &str) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let closed_status = self.settings.closed_ticket_status_id;
        // Read first, as for any update: an upsert of an unknown id must not create a ticket.
        let current = self.existing_ticket(id).await?;
        let what = format!("ticket {id}");
        let body = json!({ "id": id, "status_id": closed_status });
        let applied = |record: &Value| record.get("status_id") == Some(&json!(closed_status));
        let saved = self.upsert_once("tickets", vec![(id, body)], applied, &what).await?;
        let row = match saved.get(&id).filter(|row| row.get("status_id").is_some()) {
            Some(row) => row.clone(),
            None => self
                .api
                .get(&format!("tickets/{id}"), &[], &what)
                .await?
                .ok_or(PsaError::NotFound { what: what.clone() })?,
        };
        if !applied(&row) {
            return Err(PsaError::InvalidResponse {
                message: format!("{what} has status {} after it was set to {closed_status}", row["status_id"]),
            });
        }
        Ok(Ticket { closed: true, ..parse::ticket(&row).unwrap_or(current) })
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
    use crate::http::HttpSettings;

    fn settings(url: &str) -> HaloSettings {
        HaloSettings {
            note_outcome_id: 7,
            closed_ticket_status_id: 9,
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
            assert_eq!(client.api.base().as_str(), "https://acme.halopsa.com/api/", "{root}");
            let token_url = client.credentials.token_url.as_str();
            assert_eq!(token_url, "https://acme.halopsa.com/auth/token?tenant=acme", "{root}");
        }
    }
}
