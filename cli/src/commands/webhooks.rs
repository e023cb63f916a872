//! `offramp webhooks register --psa connectwise|autotask|halo --url URL`: tell the PSA where
//! to deliver its company events (issue 15, docs/architecture.md#psa-webhooks).
//!
//! - ConnectWise: a callback through the API (docs/vendors/connectwise.md#webhooks), `type`
//!   company, `level` owner, posting to `URL/{CONNECTWISE_WEBHOOK_URL_TOKEN}`: the token the
//!   webhook function checks first. Run twice, it reports the callback it finds.
//! - Autotask: a company webhook through the API (docs/vendors/autotask.md#webhooks) posting
//!   to `URL`, signed with `AUTOTASK_WEBHOOK_SECRET`, subscribed to updates of the company's
//!   `isActive` field (`--active-field-id`), optionally excluding Offramp's own API user
//!   (`--exclude-resource-id`). Run twice, it reports the webhook it finds (and completes it).
//! - HaloPSA: no registration through an API is documented well enough to rely on
//!   (docs/vendors/halopsa.md#webhooks): the exact fields to set by hand are printed, and the
//!   exit code says nothing was done ([`NOTHING_DONE`]), never a success.

use offramp::adapters::autotask::{AutotaskClient, CompanyWebhookSpec};
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
    /// Autotask: the `fieldID` of the company's isActive field, whose change fires the webhook
    /// (Autotask does not document where the API gives it; see its webhook fields in Admin).
    #[arg(long)]
    pub active_field_id: Option<i64>,
    /// Autotask: the resource id of Offramp's API user, so its own changes are not delivered back.
    #[arg(long)]
    pub exclude_resource_id: Option<i64>,
    /// Autotask: where Autotask writes when deliveries keep failing.
    #[arg(long)]
    pub notification_email: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The exit code of "nothing was done, a person has to act": class 5 of `offramp --help`
/// (refused, nothing changed; cli/src/exit_codes.rs).
pub const NOTHING_DONE: i32 = 5;

pub async fn run(source: &ConfigSource, command: WebhooksCommand) -> Result<i32, OfframpError> {
    let WebhooksCommand::Register(args) = command;
    let url = args.url.trim().trim_end_matches('/').to_string();
    if !url.starts_with("https://") && !url.starts_with("http://127.0.0.1") {
        return Err(OfframpError::invalid_input("--url must be an https URL (the webhook API's)"));
    }
    match args.psa {
        PsaKind::ConnectWise => register_connectwise(source, &url, args.json).await,
        PsaKind::Autotask => register_autotask(source, &url, &args).await,
        PsaKind::Halo => Ok(print_halo_fields(&url, args.json)),
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

async fn register_autotask(source: &ConfigSource, url: &str, args: &RegisterArgs) -> Result<i32, OfframpError> {
    let field_id = args.active_field_id.ok_or_else(|| {
        OfframpError::invalid_input(
            "--active-field-id is required for Autotask: the fieldID of the company's isActive field (Autotask's \
             API does not document where it gives field ids; the webhook's field list in Autotask shows it); \
             nothing was registered",
        )
    })?;
    let (_, secrets, _) = offramp::app::aws_secrets_and_stores(source).await?;
    let secret = SettingsReader::new(source, secrets.as_ref()).optional("AUTOTASK_WEBHOOK_SECRET").await?;
    let secret = secret.filter(|s| !s.expose().trim().is_empty()).ok_or_else(|| {
        OfframpError::configuration(
            "AUTOTASK_WEBHOOK_SECRET is not set: put a random key of at most 64 characters in the PSA's secret \
             (or the environment) first; the webhook function verifies every delivery with it",
        )
    })?;
    let mut settings = Settings::load(source, secrets.as_ref()).await?;
    let autotask = settings
        .autotask
        .take()
        .ok_or_else(|| OfframpError::configuration("OFFRAMP_PSA is not autotask: set it to register a webhook"))?;
    let client = AutotaskClient::new(autotask, settings.psa_http.clone()).map_err(OfframpError::from)?;
    // Both URLs are required. Autotask calls the deactivation URL when it disables the
    // webhook (after 25 failed deliveries in a row). The template routes it to the webhook
    // function, which reads nothing of it (its content is not documented) and logs one line
    // the template's WebhookDeactivatedAlarm counts.
    let deactivation_url = format!("{url}/deactivated");
    let spec = CompanyWebhookSpec {
        webhook_url: url,
        deactivation_url: &deactivation_url,
        secret_key: secret.expose(),
        active_field_id: field_id,
        excluded_resource_id: args.exclude_resource_id,
        notification_email: args.notification_email.as_deref(),
    };
    let registration = client.register_company_webhook(&spec).await.map_err(OfframpError::from)?;
    if args.json {
        super::print_json(&registration);
        return Ok(0);
    }
    let id = registration.id;
    if registration.created {
        println!("Autotask company webhook {id} registered: company updates go to {url}");
    } else {
        println!("Autotask company webhook {id} already posts to {url}: not duplicated");
        println!(
            "  (its secret key cannot be read back: if deliveries are refused, set it to AUTOTASK_WEBHOOK_SECRET)"
        );
    }
    if registration.field_added || registration.excluded_resource_added {
        println!("  added: {}", added(&registration));
    }
    if registration.ready != Some(true) {
        println!("  Autotask does not say the webhook is ready (isReady): check it under Admin > Webhooks");
    }
    Ok(0)
}

fn added(registration: &offramp::adapters::autotask::WebhookRegistration) -> String {
    let mut added = Vec::new();
    if registration.field_added {
        added.push("the isActive field subscription");
    }
    if registration.excluded_resource_added {
        added.push("the excluded resource");
    }
    added.join(", ")
}

/// The HaloPSA webhook's fields (docs/vendors/halopsa.md#webhooks), to be set by hand.
fn halo_fields(url: &str) -> serde_json::Value {
    serde_json::json!({
        "url": url,
        "method": "0 (POST)",
        "content_type": "application/json",
        "authentication_type": "1 (Basic) with HALO_WEBHOOK_USER / HALO_WEBHOOK_PASSWORD, \
            or 3 (API key) with the header HALO_WEBHOOK_HEADER: HALO_WEBHOOK_HEADER_VALUE",
        "payload_type": "1 (custom JSON)",
        "payload": {"event_id": "<the event's id>", "entity": "client", "action": "updated",
            "id": "<client id>", "client_id": "<client id>", "inactive": "<true|false>", "status": "<status>"},
        "events": ["client updated"],
    })
}

/// HaloPSA: print what to configure, and say that nothing was registered.
fn print_halo_fields(url: &str, json: bool) -> i32 {
    let fields = halo_fields(url);
    if json {
        super::print_json(&serde_json::json!({"registered": false, "psa": "halo", "configure_by_hand": fields}));
    } else {
        println!("HaloPSA: nothing was registered. Its webhook API is not documented well enough to rely on");
        println!("(docs/vendors/halopsa.md#webhooks); add the webhook by hand under Configuration > Integrations >");
        println!("Webhooks with these fields:");
        for (name, value) in fields.as_object().into_iter().flatten() {
            println!("  {name}: {}", value.as_str().map_or_else(|| value.to_string(), str::to_string));
        }
    }
    eprintln!("offramp: nothing was registered with HaloPSA (exit {NOTHING_DONE}): configure the webhook by hand");
    NOTHING_DONE
}
