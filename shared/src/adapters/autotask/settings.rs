//! Autotask settings: `AUTOTASK_*` and `OFFRAMP_AUTOTASK_ARCHIVED_CI_TYPES`.

use std::time::Duration;

use crate::config::SettingsReader;
use crate::error::OfframpError;
use crate::http::{BudgetSettings, HttpSettings};
use crate::secret::SecretString;

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
    /// Ticket picklist values (tenant data; UNCONFIRMED defaults).
    pub tickets: AutotaskTicketSettings,
    /// Requests of the hourly threshold left to other integrations (`AUTOTASK_BUDGET_RESERVE`).
    /// Also what a run assumes the database has already used this hour when its usage
    /// cannot be read (see `AutotaskClient::sync_budget`).
    pub budget_reserve: u32,
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

/// The connection's settings, and Autotask's limits on `http`. They are per endpoint (3
/// threads) and per hour (10,000 per database, shared by every integration): no per-second
/// pacing, and a hard hourly budget that stops the run rather than waiting an hour.
pub(crate) async fn load(
    reader: &SettingsReader<'_>,
    http: &mut HttpSettings,
) -> Result<AutotaskSettings, OfframpError> {
    let per_endpoint = reader.parsed("AUTOTASK_MAX_CONCURRENCY", 3usize)?.clamp(1, 3);
    http.rate_limit_per_sec = None;
    http.max_concurrency_per_endpoint = Some(per_endpoint);
    http.max_concurrency = per_endpoint * 4;
    let hourly: u32 = reader.parsed("AUTOTASK_HOURLY_BUDGET", 10_000u32)?;
    let reserve: u32 = reader.parsed("AUTOTASK_BUDGET_RESERVE", 1_000u32)?;
    if reserve >= hourly {
        return Err(OfframpError::configuration(format!(
            "AUTOTASK_BUDGET_RESERVE ({reserve}) must be below AUTOTASK_HOURLY_BUDGET ({hourly})"
        )));
    }
    http.budget =
        Some(BudgetSettings { limit: hourly - reserve, window: Duration::from_secs(3600), max_wait: Duration::ZERO });
    let defaults = AutotaskTicketSettings::default();
    Ok(AutotaskSettings {
        url: reader.optional("AUTOTASK_URL").await?.map(|u| u.expose().to_string()),
        zone_lookup_url: reader.source().get("AUTOTASK_ZONE_LOOKUP_URL").unwrap_or(DEFAULT_ZONE_LOOKUP_URL).to_string(),
        username: reader.required_text("AUTOTASK_USERNAME").await?,
        secret: reader.required("AUTOTASK_SECRET").await?,
        integration_code: reader.required("AUTOTASK_INTEGRATION_CODE").await?,
        archived_ci_types: reader.int_list("OFFRAMP_AUTOTASK_ARCHIVED_CI_TYPES")?,
        tickets: AutotaskTicketSettings {
            complete_status: reader.parsed("AUTOTASK_TICKET_COMPLETE_STATUS", defaults.complete_status)?,
            new_status: reader.parsed("AUTOTASK_NEW_TICKET_STATUS", defaults.new_status)?,
            new_priority: reader.parsed("AUTOTASK_NEW_TICKET_PRIORITY", defaults.new_priority)?,
            note_type: reader.parsed("AUTOTASK_NOTE_TYPE", defaults.note_type)?,
            note_publish: reader.parsed("AUTOTASK_NOTE_PUBLISH", defaults.note_publish)?,
        },
        budget_reserve: reserve,
    })
}
