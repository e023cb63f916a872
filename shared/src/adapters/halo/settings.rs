//! HaloPSA settings: `HALO_*` and `OFFRAMP_HALO_ARCHIVED_STATUS_IDS`.

use std::time::Duration;

use crate::config::SettingsReader;
use crate::error::OfframpError;
use crate::http::{BudgetSettings, HttpSettings};
use crate::secret::SecretString;

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
    /// specific, UNCONFIRMED).
    pub note_outcome_id: i64,
    /// `status_id` a closed ticket gets (`HALO_CLOSED_TICKET_STATUS_ID`, default 9 "Closed":
    /// tenant specific, UNCONFIRMED; docs/vendors/ticket-close.md#halopsa).
    pub closed_ticket_status_id: i64,
    /// `tickettype_id` of tickets Offramp opens (`HALO_NEW_TICKET_TYPE_ID`, default 1).
    pub new_ticket_type_id: i64,
}

/// The connection's settings, and HaloPSA's limits on `http`: a rolling five-minute budget
/// (`HALO_RATE_LIMIT`, waiting up to `HALO_MAX_WAIT_SECONDS` for room) and requests in
/// flight (`HALO_MAX_CONCURRENCY`).
pub(crate) async fn load(reader: &SettingsReader<'_>, http: &mut HttpSettings) -> Result<HaloSettings, OfframpError> {
    let limit: u32 = reader.parsed("HALO_RATE_LIMIT", 300u32)?;
    let max_wait: u64 = reader.parsed("HALO_MAX_WAIT_SECONDS", 300u64)?;
    http.rate_limit_per_sec = None;
    http.max_concurrency = reader.parsed("HALO_MAX_CONCURRENCY", 4usize)?.max(1);
    http.budget = (limit > 0).then(|| BudgetSettings {
        limit,
        window: Duration::from_secs(300),
        max_wait: Duration::from_secs(max_wait),
    });
    Ok(HaloSettings {
        url: reader.required_text("HALO_URL").await?,
        auth_url: reader.optional("HALO_AUTH_URL").await?.map(|u| u.expose().to_string()),
        tenant: reader.optional("HALO_TENANT").await?.map(|t| t.expose().to_string()),
        client_id: reader.required_text("HALO_CLIENT_ID").await?,
        client_secret: reader.required("HALO_CLIENT_SECRET").await?,
        scope: reader.source().get("HALO_SCOPE").unwrap_or("all").to_string(),
        archived_status_ids: reader.int_list("OFFRAMP_HALO_ARCHIVED_STATUS_IDS")?,
        update_batch: reader.parsed("HALO_UPDATE_BATCH", 50usize)?.clamp(1, 100),
        note_outcome_id: reader.parsed("HALO_NOTE_OUTCOME_ID", 7i64)?,
        new_ticket_type_id: reader.parsed("HALO_NEW_TICKET_TYPE_ID", 1i64)?,
        closed_ticket_status_id: reader.parsed("HALO_CLOSED_TICKET_STATUS_ID", 9i64)?,
    })
}
