//! The webhook function's adapters, from its settings. The webhook credentials are PSA
//! settings (`CONNECTWISE_*`, `AUTOTASK_*`, `HALO_*`), so deployed they come from the PSA's
//! secret (`OFFRAMP_SECRET_PSA`), on a laptop from the environment:
//!
//! | Name | Meaning |
//! |---|---|
//! | `CONNECTWISE_WEBHOOK_URL_TOKEN` | the token in the registered callback URL (`/webhooks/connectwise/{token}`) |
//! | `OFFRAMP_WEBHOOK_KEY_ORIGINS` | origins signing keys may be fetched from (default: the ConnectWise cloud hosts) |
//! | `AUTOTASK_WEBHOOK_SECRET` | the Autotask webhook's secret key |
//! | `HALO_WEBHOOK_USER`, `HALO_WEBHOOK_PASSWORD` | HaloPSA's Basic credentials, or |
//! | `HALO_WEBHOOK_HEADER`, `HALO_WEBHOOK_HEADER_VALUE` | a header HaloPSA sends with a fixed value |
//! | `OFFRAMP_WEBHOOK_MAX_BODY_BYTES` | the largest body read (default 256 KiB) |
//! | `OFFRAMP_STATE_MACHINE_ARN` | the client-offboarding state machine |
//!
//! A PSA without credentials gets no receiver: its route answers 401.

use std::sync::Arc;

use super::WebhookServices;
use crate::adapters::chain_sfn::StepFunctionsChainStarter;
use crate::adapters::delivery_log::AuditDeliveryLog;
use crate::config::{ConfigSource, SettingsReader, offboarded_criteria};
use crate::domain::PsaKind;
use crate::error::OfframpError;
use crate::webhook::{
    AutotaskAuth, ConnectWiseAuth, DEFAULT_MAX_BODY_BYTES, HaloAuth, KeyCacheSettings, KeyUrlAllowList, PsaAuth,
    SigningKeys, WebhookReceiver,
};

/// Build the webhook function's services (once per cold start).
pub async fn build_webhook_services(source: &ConfigSource) -> Result<WebhookServices, OfframpError> {
    let (aws, secrets, stores) = crate::app::aws_secrets_and_stores(source).await?;
    let starter = StepFunctionsChainStarter::from_settings(source, &aws)?;
    let psa: PsaKind =
        source.get("OFFRAMP_PSA").unwrap_or("connectwise").parse().map_err(OfframpError::configuration)?;
    let criteria = offboarded_criteria(source, psa)?;
    let deliveries = Arc::new(AuditDeliveryLog::new(stores.audit.clone()));
    let mut services = WebhookServices::new(deliveries, stores.settings, Arc::new(starter), criteria);
    let reader = SettingsReader::new(source, secrets.as_ref());
    let max_body = source.parsed("OFFRAMP_WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
    for auth in receivers(&reader).await? {
        services = services.with_receiver(WebhookReceiver::new(auth).with_max_body_bytes(max_body));
    }
    Ok(services)
}

/// The authentication of every PSA whose webhook credentials are configured.
async fn receivers(reader: &SettingsReader<'_>) -> Result<Vec<PsaAuth>, OfframpError> {
    let mut auths = Vec::new();
    if let Some(url_token) = reader.optional("CONNECTWISE_WEBHOOK_URL_TOKEN").await? {
        let allow = match reader.source().get("OFFRAMP_WEBHOOK_KEY_ORIGINS") {
            None => KeyUrlAllowList::connectwise_cloud(),
            Some(list) => {
                let origins: Vec<&str> = list.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
                KeyUrlAllowList::origins(&origins)
                    .map_err(|e| OfframpError::configuration(format!("OFFRAMP_WEBHOOK_KEY_ORIGINS: {e}")))?
            }
        };
        let keys = SigningKeys::new(allow, KeyCacheSettings::default())?;
        auths.push(PsaAuth::ConnectWise(ConnectWiseAuth { url_token, keys }));
    }
    if let Some(secret) = reader.optional("AUTOTASK_WEBHOOK_SECRET").await? {
        auths.push(PsaAuth::Autotask(AutotaskAuth { secret }));
    }
    if let Some(auth) = halo(reader).await? {
        auths.push(PsaAuth::Halo(auth));
    }
    Ok(auths)
}

async fn halo(reader: &SettingsReader<'_>) -> Result<Option<HaloAuth>, OfframpError> {
    if let Some(name) = reader.source().get("HALO_WEBHOOK_HEADER") {
        let value = reader.required("HALO_WEBHOOK_HEADER_VALUE").await?;
        return Ok(Some(HaloAuth::Header { name: name.trim().to_ascii_lowercase(), value }));
    }
    match reader.optional("HALO_WEBHOOK_PASSWORD").await? {
        None => Ok(None),
        Some(password) => {
            let user = reader.required_text("HALO_WEBHOOK_USER").await?;
            Ok(Some(HaloAuth::Basic { user, password }))
        }
    }
}
