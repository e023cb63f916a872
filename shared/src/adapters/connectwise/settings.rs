//! ConnectWise settings: `CONNECTWISE_*` and `OFFRAMP_CW_INACTIVE_STATUS`.

use crate::config::SettingsReader;
use crate::error::OfframpError;
use crate::http::HttpSettings;
use crate::secret::SecretString;

#[derive(Debug, Clone)]
pub struct ConnectWiseSettings {
    /// Base URL up to and including `apis/3.0`.
    pub url: String,
    pub company_id: String,
    pub public_key: SecretString,
    pub private_key: SecretString,
    pub client_id: SecretString,
    /// Description of the configuration status that means "inactive".
    pub inactive_status: String,
    /// The ticket status that closes a ticket (`OFFRAMP_CW_CLOSED_TICKET_STATUS`, default
    /// `>Closed`): a status id, or a name on the ticket's board. Statuses are per board and
    /// per tenant (docs/vendors/ticket-close.md#connectwise).
    pub closed_ticket_status: String,
}

/// The connection's settings, and ConnectWise's pacing on `http`: a per-second rate
/// (`CONNECTWISE_RATE_LIMIT`) and requests in flight (`CONNECTWISE_MAX_CONCURRENCY`).
pub(crate) async fn load(
    reader: &SettingsReader<'_>,
    http: &mut HttpSettings,
) -> Result<ConnectWiseSettings, OfframpError> {
    let rate: f64 = reader.parsed("CONNECTWISE_RATE_LIMIT", 10.0)?;
    http.rate_limit_per_sec = (rate > 0.0).then_some(rate);
    // A burst of a few requests keeps concurrent workers busy without exceeding the rate
    // over any second.
    http.burst = (rate / 10.0).ceil().clamp(1.0, 10.0) as u32;
    http.max_concurrency = reader.parsed("CONNECTWISE_MAX_CONCURRENCY", 8usize)?.max(1);
    Ok(ConnectWiseSettings {
        url: reader.required_text("CONNECTWISE_URL").await?,
        company_id: reader.required_text("CONNECTWISE_COMPANY_ID").await?,
        public_key: reader.required("CONNECTWISE_PUBLIC_KEY").await?,
        private_key: reader.required("CONNECTWISE_PRIVATE_KEY").await?,
        client_id: reader.required("CONNECTWISE_CLIENT_ID").await?,
        inactive_status: reader.source().get("OFFRAMP_CW_INACTIVE_STATUS").unwrap_or("Inactive").to_string(),
        closed_ticket_status: reader
            .source()
            .get("OFFRAMP_CW_CLOSED_TICKET_STATUS")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(">Closed")
            .to_string(),
    })
}
