//! `offramp webhooks register --psa connectwise|autotask|halo --url URL`: tell the PSA where
//! to deliver its company events (issue 15, docs/architecture.md#psa-webhooks).
//!
//! - ConnectWise: a callback through the API (docs/vendors/connectwise.md#webhooks), `type`
//!   company, `level` owner, posting to `URL/{CONNECTWISE_WEBHOOK_URL_TOKEN}`: the token the
//!   webhook function checks first. Run twice, it reports the callback it finds.
//! - Autotask and HaloPSA: the steps to take in the PSA, printed (docs/vendors/autotask.md#webhooks,
//!   halopsa.md#webhooks); registering them through their APIs is not built yet.

use offramp::adapters::connectwise::ConnectWiseClient;
use offramp::config::{ConfigSource, Settings, SettingsReader};
use offramp::domain::PsaKind;
use offramp::error::OfframpError;

#[derive(Debug, clap::Subcommand)]
pub enum WebhooksCommand {
    /// Register Offramp's webhook URL with the PSA (idempotent: an existing one is reported).
    Register(RegisterArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// connectwise, autotask or halo.
    #[arg(long)]
    pub psa: PsaKind,
    /// The webhook API's URL for this PSA, e.g. the stack's WebhookBaseUrl + /webhooks/connectwise.
    #[arg(long)]
    pub url: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(source: &ConfigSource, command: WebhooksCommand) -> Result<i32, OfframpError> {
    let WebhooksCommand::Register(args) = command;
    let url = args.url.trim().trim_end_matches('/').to_string();
    if !url.starts_with("https://") && !url.starts_with("http://127.0.0.1") {
        return Err(OfframpError::invalid_input("--url must be an https URL (the webhook API's)"));
    }
    match args.psa {
        PsaKind::ConnectWise => register_connectwise(source, &url, args.json).await,
        PsaKind::Autotask => Ok(print_steps(AUTOTASK_STEPS, &url, "AUTOTASK_WEBHOOK_SECRET")),
        PsaKind::Halo => Ok(print_steps(HALO_STEPS, &url, "HALO_WEBHOOK_USER / HALO_WEBHOOK_PASSWORD")),
    }
}

async fn register_connectwise(source: &ConfigSource, url: &str, json: bool) -> Result<i32, OfframpError> {
    let (_, secrets, _) = offramp::app::aws_secrets_and_stores(source).await?;
    let token = SettingsReader::new(source, secrets.as_ref()).optional("CONNECTWISE_WEBHOOK_URL_TOKEN").await?;
    let token = token.filter(|t| !t.expose().trim().is_empty()).ok_or_else(|| {
        OfframpError::configuration(
            "CONNECTWISE_WEBHOOK_URL_TOKEN is not set: put a long random token in the PSA's secret \
             (or the environment) first; the webhook function checks it",
        )
    })?;
    let mut settings = Settings::load(source, secrets.as_ref()).await?;
    let connectwise = settings
        .connectwise
        .take()
        .ok_or_else(|| OfframpError::configuration("OFFRAMP_PSA is not connectwise: set it to register a callback"))?;
    let client = ConnectWiseClient::new(connectwise, settings.psa_http.clone()).map_err(OfframpError::from)?;
    let callback_url = format!("{url}/{}", token.expose().trim());
    let registration = client.register_company_callback(&callback_url).await.map_err(OfframpError::from)?;
    if json {
        super::print_json(&registration);
    } else if registration.created {
        println!("ConnectWise callback {} registered: company events go to {url}/<token>", show(registration.id));
    } else {
        println!("ConnectWise callback {} already posts to {url}/<token>: nothing changed", show(registration.id));
    }
    Ok(0)
}

fn show(id: Option<i64>) -> String {
    id.map_or_else(|| "(no id)".to_string(), |id| id.to_string())
}

const AUTOTASK_STEPS: &str = "In Autotask (Admin > Extensions & Integrations > Webhooks, or POST /CompanyWebhooks):
  1. create a Company webhook: active, Webhook URL = {url}, a deactivation URL, the secret key = {secret}
     (64 characters at most), subscribed to update events;
  2. add the field isActive as a subscribed field (POST /CompanyWebhooks/{id}/Fields), and the API user
     Offramp acts as as an excluded resource, so Offramp's own changes do not come back;
  3. check that the webhook is ready (isReady).";

const HALO_STEPS: &str = "In HaloPSA (Configuration > Integrations > Webhooks):
  1. add a webhook: URL = {url}, method POST, content type application/json,
     authentication Basic with {secret};
  2. the custom JSON payload of docs/vendors/halopsa.md#webhooks (event_id, entity, action, id,
     client_id, inactive, status), on the client updated event.";

fn print_steps(steps: &str, url: &str, secret: &str) -> i32 {
    println!("{}", steps.replace("{url}", url).replace("{secret}", secret));
    0
}
