//! IT Glue connection settings: `ITGLUE_API_KEY`, `ITGLUE_URL` or `ITGLUE_REGION`,
//! `ITGLUE_RATE_LIMIT`, `ITGLUE_MAX_WAIT_SECONDS`.

use std::time::Duration;

use crate::config::SettingsReader;
use crate::error::OfframpError;
use crate::http::{BudgetSettings, HttpSettings};
use crate::secret::SecretString;

/// IT Glue's documented limit: 3,000 requests in any five minutes.
pub const DEFAULT_RATE_LIMIT: u32 = 3000;
pub const RATE_WINDOW: Duration = Duration::from_secs(300);

/// The IT Glue data centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItGlueRegion {
    Us,
    Eu,
    Au,
}

impl ItGlueRegion {
    pub fn base_url(self) -> &'static str {
        match self {
            ItGlueRegion::Us => "https://api.itglue.com",
            ItGlueRegion::Eu => "https://api.eu.itglue.com",
            ItGlueRegion::Au => "https://api.au.itglue.com",
        }
    }

    /// `us`, `eu` or `au` (any case); an empty value is the US.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "us" | "" => Some(ItGlueRegion::Us),
            "eu" => Some(ItGlueRegion::Eu),
            "au" => Some(ItGlueRegion::Au),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ItGlueSettings {
    /// The API base, e.g. `https://api.eu.itglue.com` (paths are appended to it).
    pub url: String,
    pub api_key: SecretString,
}

/// The HTTP tuning IT Glue needs: a rolling five-minute budget under the documented 3,000
/// requests, waiting for room rather than failing (a deletion run is short; a cleanup of
/// many organizations may wait), and a handful of requests in flight.
pub fn default_http_settings() -> HttpSettings {
    http_settings(HttpSettings::default(), DEFAULT_RATE_LIMIT, Duration::from_secs(300))
}

/// [`default_http_settings`] on top of `base` (timeouts, retries), with `rate_limit`
/// requests per five minutes (0 = no client-side budget) and at most `max_wait` of waiting
/// for room.
pub fn http_settings(base: HttpSettings, rate_limit: u32, max_wait: Duration) -> HttpSettings {
    HttpSettings {
        max_concurrency: 4,
        budget: (rate_limit > 0).then_some(BudgetSettings { limit: rate_limit, window: RATE_WINDOW, max_wait }),
        ..base
    }
}

/// The connection (`None` without `ITGLUE_API_KEY`: IT Glue is simply not configured) and
/// its HTTP tuning on top of `base`.
pub(crate) async fn load(
    reader: &SettingsReader<'_>,
    base: HttpSettings,
) -> Result<(Option<ItGlueSettings>, HttpSettings), OfframpError> {
    let url = match reader.source().get("ITGLUE_URL") {
        Some(url) => url.to_string(),
        None => {
            let region = reader.source().get("ITGLUE_REGION").unwrap_or("us");
            ItGlueRegion::parse(region)
                .ok_or_else(|| {
                    OfframpError::configuration(format!("ITGLUE_REGION '{region}' is not one of us, eu, au"))
                })?
                .base_url()
                .to_string()
        }
    };
    let client = reader.optional("ITGLUE_API_KEY").await?.map(|api_key| ItGlueSettings { url, api_key });
    let http = http_settings(
        base,
        reader.parsed("ITGLUE_RATE_LIMIT", DEFAULT_RATE_LIMIT)?,
        Duration::from_secs(reader.parsed("ITGLUE_MAX_WAIT_SECONDS", 300u64)?),
    );
    Ok((client, http))
}
