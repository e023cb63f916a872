//! Wiring: settings in, adapters out. Used by the Lambda functions and the CLI so
//! that both choose adapters the same way:
//! - audit trail: DynamoDB when `OFFRAMP_AUDIT_TABLE` is set, else a local SQLite file;
//! - credentials: the Secrets Manager secrets `OFFRAMP_SECRET_PSA`, `OFFRAMP_SECRET_ITGLUE`,
//!   `OFFRAMP_SECRET_NOTIFIER` (one per vendor integration) and `OFFRAMP_SECRET_ID` (shared)
//!   when any is set, else the environment;
//! - PSA: `OFFRAMP_PSA` (for an IT Glue deletion only when its PSA policy is not `off`);
//! - IT Glue export archive: S3 when `OFFRAMP_EXPORT_BUCKET` is set, else a local directory;
//! - the chain's evidence report: S3 when `OFFRAMP_EVIDENCE_BUCKET` is set, else a local
//!   directory beside the SQLite trail (docs/evidence.md);
//! - Microsoft 365 (Entra ID over Graph, Exchange Online): only when `MS_CLIENT_ID` is set
//!   (in the settings or the secret named by `OFFRAMP_SECRET_M365`); user offboarding
//!   ([`build_user_offboarding`]) stops with a `ConfigurationError` without it.
//! - on-premises Active Directory (LDAP): only when `AD_LDAP_URL` is set; its bind password
//!   from the settings or the secret store like any credential.
//!
//! The AWS configuration is loaded only when an AWS adapter is used, so a laptop
//! run needs no AWS set-up at all.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::archive_local::LocalDirArchive;
use crate::adapters::archive_s3::S3ExportArchive;
use crate::adapters::audit_dynamodb::DynamoDbAuditStore;
#[cfg(feature = "sqlite")]
use crate::adapters::audit_sqlite::SqliteAuditStore;
use crate::adapters::autotask::AutotaskClient;
use crate::adapters::connectwise::ConnectWiseClient;
use crate::adapters::evidence_local::LocalDirEvidence;
use crate::adapters::evidence_s3::S3Evidence;
use crate::adapters::exchange::ExchangeMailboxes;
use crate::adapters::graph::{GraphDirectory, M365Settings};
use crate::adapters::halo::HaloClient;
use crate::adapters::itglue::ItGlueClient;
use crate::adapters::ldap::{AdSettings, LdapDirectory};
use crate::adapters::notify_graph::GraphMailNotifier;
use crate::adapters::notify_webhook::WebhookNotifier;
use crate::adapters::secret_vault_aws::{DEFAULT_VAULT_PREFIX, SecretsManagerVault};
use crate::adapters::secrets_aws::SecretsManagerStore;
use crate::adapters::secrets_env::EnvSecretStore;
use crate::adapters::secrets_routed::{Integration, RoutedSecretStore};
use crate::config::{
    ArchiveSettings, AuditBackend, ConfigSource, EvidenceSettings, NotifierSettings, PsaNeed, Settings, SettingsReader,
};
use crate::domain::PsaKind;
use crate::error::OfframpError;
use crate::http::HttpSettings;
use crate::ports::{
    AuditStore, CloudDirectory, DocPlatform, EvidenceStore, ExportArchive, Mailboxes, Notifier, OnPremDirectory, Psa,
    SecretStore, SecretVault, SettingsStore, SharedLimitStore,
};
use crate::workflows::delete_itglue_org::{DeleteOrgDeps, DeleteOrgOptions};
use crate::workflows::offboard_user::{OffboardUserDeps, OffboardUserOptions};

pub struct Services {
    pub settings: Settings,
    pub psa: Arc<dyn Psa>,
    pub audit: Arc<dyn AuditStore>,
    /// Organization settings live beside the audit trail (same table or file).
    pub org_settings: Arc<dyn SettingsStore>,
    /// `None` when `OFFRAMP_NOTIFIER` is `none`.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// IT Glue; `None` when no `ITGLUE_API_KEY` is configured.
    pub docs: Option<Arc<dyn DocPlatform>>,
    /// Where IT Glue exports are copied before a deletion; `None` when none is configured.
    pub archive: Option<Arc<dyn ExportArchive>>,
    /// The customer tenants' Microsoft 365; `None` when no `MS_CLIENT_ID` is configured.
    pub microsoft365: Option<Microsoft365>,
    /// The on-premises Active Directory; `None` when no `AD_LDAP_URL` is configured.
    pub onprem: Option<Arc<dyn OnPremDirectory>>,
    /// Where the chain's evidence report is stored; `None` in Lambda without a bucket.
    pub evidence: Option<Arc<dyn EvidenceStore>>,
}

/// Entra ID and Exchange Online of the customer tenants, through the MSP's one multi-tenant
/// app (docs/vendors/microsoft-graph.md#customer-tenants).
pub struct Microsoft365 {
    pub directory: Arc<dyn CloudDirectory>,
    pub mailboxes: Arc<dyn Mailboxes>,
}

/// What an IT Glue deletion needs ([`build_itglue`]): the PSA only when its policy needs one.
pub struct ItGlueServices {
    pub settings: Settings,
    pub psa: Option<Arc<dyn Psa>>,
    pub audit: Arc<dyn AuditStore>,
    pub org_settings: Arc<dyn SettingsStore>,
    pub docs: Option<Arc<dyn DocPlatform>>,
    pub archive: Option<Arc<dyn ExportArchive>>,
}

/// The audit trail, the organization settings and the vendor limits every process shares:
/// one store, three ports.
pub struct Stores {
    pub audit: Arc<dyn AuditStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub limits: Arc<dyn SharedLimitStore>,
}

/// Every setting that names a Secrets Manager secret.
fn secret_settings() -> impl Iterator<Item = &'static str> {
    Integration::ALL.into_iter().map(Integration::setting).chain(["OFFRAMP_SECRET_ID"])
}

fn uses_aws(source: &ConfigSource) -> bool {
    secret_settings().any(|setting| source.get(setting).is_some())
        || source.get("OFFRAMP_EXPORT_BUCKET").is_some()
        || source.get("OFFRAMP_EVIDENCE_BUCKET").is_some()
        || matches!(Settings::audit_backend(source), AuditBackend::DynamoDb { .. })
}

/// The AWS configuration, loaded once and only when an AWS adapter is used, with explicit
/// timeouts ([`crate::aws_sdk`]). It honours AWS_ENDPOINT_URL, AWS_REGION and the usual
/// credential chain.
async fn aws_config(source: &ConfigSource) -> Result<Option<aws_config::SdkConfig>, OfframpError> {
    if !uses_aws(source) {
        return Ok(None);
    }
    Ok(Some(crate::aws_sdk::loader(source)?.load().await))
}

fn aws_or_err(aws: Option<&aws_config::SdkConfig>) -> Result<&aws_config::SdkConfig, OfframpError> {
    aws.ok_or_else(|| OfframpError::configuration("AWS configuration was not loaded"))
}

/// The audit store alone (what `offramp audit` needs: no PSA credentials).
pub async fn audit_store(source: &ConfigSource) -> Result<Arc<dyn AuditStore>, OfframpError> {
    Ok(stores_with(source, aws_config(source).await?.as_ref())?.audit)
}

/// The audit trail and the settings store (what `offramp settings` needs: no PSA credentials).
pub async fn stores(source: &ConfigSource) -> Result<Stores, OfframpError> {
    stores_with(source, aws_config(source).await?.as_ref())
}

/// What the webhook function is built from (`entry::webhook`): the AWS configuration, loaded
/// always (it starts Step Functions executions), the secrets and the stores.
pub async fn aws_secrets_and_stores(
    source: &ConfigSource,
) -> Result<(aws_config::SdkConfig, Arc<dyn SecretStore>, Stores), OfframpError> {
    let aws = crate::aws_sdk::loader(source)?.load().await;
    let secrets = secret_store_with(source, Some(&aws))?;
    let stores = stores_with(source, Some(&aws))?;
    Ok((aws, secrets, stores))
}

fn stores_with(source: &ConfigSource, aws: Option<&aws_config::SdkConfig>) -> Result<Stores, OfframpError> {
    Ok(match Settings::audit_backend(source) {
        AuditBackend::DynamoDb { table } => {
            let store = Arc::new(DynamoDbAuditStore::new(aws_sdk_dynamodb::Client::new(aws_or_err(aws)?), table));
            Stores { audit: store.clone(), settings: store.clone(), limits: store }
        }
        AuditBackend::Sqlite { path } => sqlite_stores(&path)?,
    })
}

#[cfg(feature = "sqlite")]
fn sqlite_stores(path: &std::path::Path) -> Result<Stores, OfframpError> {
    let store = Arc::new(SqliteAuditStore::open(path)?);
    Ok(Stores { audit: store.clone(), settings: store.clone(), limits: store })
}

/// The Lambda functions are built without the SQLite store (feature `sqlite`): their audit
/// trail is the DynamoDB table the template creates.
#[cfg(not(feature = "sqlite"))]
fn sqlite_stores(path: &std::path::Path) -> Result<Stores, OfframpError> {
    Err(OfframpError::configuration(format!(
        "OFFRAMP_AUDIT_TABLE is not set and this build has no SQLite audit store (for {}): \
         set OFFRAMP_AUDIT_TABLE to the DynamoDB audit table",
        path.display()
    )))
}

fn notifier(
    settings: &NotifierSettings,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Option<Arc<dyn Notifier>>, OfframpError> {
    // Token answers and acknowledgements: a few fields each.
    let http = HttpSettings { max_body_bytes: crate::http::SMALL_BODY_BYTES, ..HttpSettings::default() };
    let configuration = |e: crate::error::NotifyError| OfframpError::configuration(e.to_string());
    Ok(match settings {
        NotifierSettings::None => None,
        NotifierSettings::Graph(graph) => {
            let graph = GraphMailNotifier::new(graph.clone(), http).map_err(configuration)?;
            Some(Arc::new(if secrets.rotates() { graph.with_secret_store(secrets.clone()) } else { graph }))
        }
        NotifierSettings::Webhook(hook) => {
            Some(Arc::new(WebhookNotifier::new(hook.clone(), http).map_err(configuration)?))
        }
    })
}

fn m365_not_configured() -> OfframpError {
    OfframpError::configuration(
        "neither Microsoft 365 nor on-premises AD is configured: set MS_CLIENT_ID and MS_CLIENT_SECRET (environment, \
         config file, or the secret named by OFFRAMP_SECRET_M365), or AD_LDAP_URL, AD_BIND_DN, AD_BIND_PASSWORD and \
         AD_BASE_DN",
    )
}

fn secret_store_with(
    source: &ConfigSource,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Arc<dyn SecretStore>, OfframpError> {
    if !secret_settings().any(|setting| source.get(setting).is_some()) {
        return Ok(Arc::new(EnvSecretStore::with_vars(source.vars().clone())));
    }
    let ttl = Duration::from_secs(source.parsed("OFFRAMP_SECRET_TTL_SECONDS", 300u64)?);
    let client = aws_sdk_secretsmanager::Client::new(aws_or_err(aws)?);
    let secret = |id: &str| -> Arc<dyn SecretStore> { Arc::new(SecretsManagerStore::new(client.clone(), id, ttl)) };
    let mut store = RoutedSecretStore::default();
    for integration in Integration::ALL {
        if let Some(id) = source.get(integration.setting()) {
            store = store.route(integration, secret(id));
        }
    }
    if let Some(id) = source.get("OFFRAMP_SECRET_ID") {
        store = store.shared(secret(id));
    }
    Ok(Arc::new(store))
}

/// The PSA client. Its limits are counted in `limits` with every other process of the
/// deployment (docs/reliability.md#vendor-limits-shared-by-every-process); the scope names
/// the vendor account. A secret store that rotates is read on every request (through its
/// cache), so a warm function picks up a rotated key (docs/architecture.md#credentials).
fn psa_adapter(
    settings: &Settings,
    secrets: &Arc<dyn SecretStore>,
    limits: &Arc<dyn SharedLimitStore>,
) -> Result<Arc<dyn Psa>, OfframpError> {
    let missing = |name: &str| OfframpError::configuration(format!("{name} settings missing"));
    let share = |http: &crate::http::HttpClient, scope: String| http.share_limits(limits.clone(), &scope);
    Ok(match settings.psa {
        PsaKind::ConnectWise => {
            let cw = settings.connectwise.clone().ok_or_else(|| missing("ConnectWise"))?;
            let scope = format!("{}|{}", cw.url, cw.company_id);
            let client = ConnectWiseClient::new(cw, settings.psa_http.clone())?;
            share(client.http(), scope);
            Arc::new(if secrets.rotates() { client.with_secret_store(secrets.clone()) } else { client })
        }
        PsaKind::Autotask => {
            let at = settings.autotask.clone().ok_or_else(|| missing("Autotask"))?;
            let scope = format!("{}|{}", at.url.as_deref().unwrap_or(&at.zone_lookup_url), at.username);
            let client = AutotaskClient::new(at, settings.psa_http.clone())?;
            share(client.http(), scope);
            Arc::new(if secrets.rotates() { client.with_secret_store(secrets.clone()) } else { client })
        }
        PsaKind::Halo => {
            let halo = settings.halo.clone().ok_or_else(|| missing("HaloPSA"))?;
            let scope = format!("{}|{}", halo.url, halo.tenant.as_deref().unwrap_or_default());
            let client = HaloClient::new(halo, settings.psa_http.clone())?;
            share(client.http(), scope);
            Arc::new(if secrets.rotates() { client.with_secret_store(secrets.clone()) } else { client })
        }
    })
}

fn docs_adapter(
    settings: &Settings,
    secrets: &Arc<dyn SecretStore>,
    limits: &Arc<dyn SharedLimitStore>,
) -> Result<Option<Arc<dyn DocPlatform>>, OfframpError> {
    let Some(itglue) = &settings.itglue.client else { return Ok(None) };
    let client = ItGlueClient::new(itglue.clone(), settings.itglue.http.clone())
        .map_err(|e| OfframpError::configuration(e.to_string()))?;
    client.http().share_limits(limits.clone(), &itglue.url);
    Ok(Some(Arc::new(if secrets.rotates() { client.with_secret_store(secrets.clone()) } else { client })))
}

fn archive_adapter(
    settings: &Settings,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<dyn ExportArchive>>, OfframpError> {
    Ok(match &settings.itglue.archive {
        ArchiveSettings::S3(s3) => Some(Arc::new(S3ExportArchive::new(s3_client(aws_or_err(aws)?), s3.clone()))),
        ArchiveSettings::Local(dir) => Some(Arc::new(LocalDirArchive::new(dir.clone()))),
        ArchiveSettings::None => None,
    })
}

fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    // A local stand-in for AWS (AWS_ENDPOINT_URL: moto, LocalStack) serves buckets by path;
    // AWS itself by host name.
    let path_style = aws.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(aws).force_path_style(path_style).build())
}

/// The evidence store the settings name (docs/evidence.md#where-it-is-stored).
fn evidence_adapter(
    source: &ConfigSource,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<dyn EvidenceStore>>, OfframpError> {
    Ok(match EvidenceSettings::load(source)? {
        EvidenceSettings::S3(s3) => Some(Arc::new(S3Evidence::new(s3_client(aws_or_err(aws)?), s3))),
        EvidenceSettings::Local(dir) => Some(Arc::new(LocalDirEvidence::new(dir))),
        EvidenceSettings::None => None,
    })
}

/// Build every adapter an entry point needs. Call once per process (per Lambda cold start).
pub async fn build(source: &ConfigSource) -> Result<Services, OfframpError> {
    let aws = aws_config(source).await?;
    let secrets = secret_store_with(source, aws.as_ref())?;
    build_with(source, aws, &secrets).await
}

async fn build_with(
    source: &ConfigSource,
    aws: Option<aws_config::SdkConfig>,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Services, OfframpError> {
    let settings = Settings::load(source, secrets.as_ref()).await?;
    let stores = stores_with(source, aws.as_ref())?;
    let psa = psa_adapter(&settings, secrets, &stores.limits)?;
    let notifier = notifier(&settings.notifier, secrets)?;
    let docs = docs_adapter(&settings, secrets, &stores.limits)?;
    let archive = archive_adapter(&settings, aws.as_ref())?;
    let microsoft365 = microsoft365_adapters(source, secrets, &settings.psa_http).await?;
    let onprem = onprem_adapter(source, secrets).await?;
    let evidence = evidence_adapter(source, aws.as_ref())?;
    let (audit, org_settings) = (stores.audit, stores.settings);
    Ok(Services { settings, psa, audit, org_settings, notifier, docs, archive, microsoft365, onprem, evidence })
}

/// The Graph directory and Exchange mailboxes when `MS_CLIENT_ID` is set; `None` otherwise,
/// so nothing that does not need Microsoft 365 asks for its settings. Configured but
/// unusable (no secret, an http URL off loopback) is a `ConfigurationError`, as for IT Glue.
async fn microsoft365_adapters(
    source: &ConfigSource,
    secrets: &Arc<dyn SecretStore>,
    psa_http: &HttpSettings,
) -> Result<Option<Microsoft365>, OfframpError> {
    let Some(m365) = M365Settings::load(&SettingsReader::new(source, secrets.as_ref())).await? else {
        return Ok(None);
    };
    // The PSA's timeouts and retries (OFFRAMP_HTTP_*), without its pacing or budget.
    let http = HttpSettings {
        request_timeout: psa_http.request_timeout,
        max_retries: psa_http.max_retries,
        max_body_bytes: psa_http.max_body_bytes,
        ..HttpSettings::default()
    };
    let configuration = |e: crate::ports::DirectoryError| OfframpError::configuration(e.to_string());
    let graph = GraphDirectory::new(&m365, http.clone()).map_err(configuration)?;
    let exchange = ExchangeMailboxes::new(&m365, http).map_err(configuration)?;
    let (graph, exchange) = if secrets.rotates() {
        (graph.with_secret_store(secrets.clone()), exchange.with_secret_store(secrets.clone()))
    } else {
        (graph, exchange)
    };
    Ok(Some(Microsoft365 { directory: Arc::new(graph), mailboxes: Arc::new(exchange) }))
}

/// The LDAP directory when `AD_LDAP_URL` is set; `None` otherwise. Nothing connects here:
/// the first call binds. Configured but unusable (no bind password, a URL that is not
/// ldap:// or ldaps://) is a `ConfigurationError`.
async fn onprem_adapter(
    source: &ConfigSource,
    secrets: &Arc<dyn SecretStore>,
) -> Result<Option<Arc<dyn OnPremDirectory>>, OfframpError> {
    let Some(ad) = AdSettings::load(&SettingsReader::new(source, secrets.as_ref())).await? else {
        return Ok(None);
    };
    let directory = LdapDirectory::new(ad).map_err(|e| OfframpError::configuration(e.to_string()))?;
    Ok(Some(Arc::new(directory)))
}

/// The adapters an IT Glue deletion needs: the PSA's settings are read only when the global
/// PSA policy (`OFFRAMP_ITGLUE_PSA_POLICY`) is not `off`, so with `off` IT Glue's settings
/// are enough. An organization whose own setting asks for the PSA then stops with a
/// `ConfigurationError` that says so.
pub async fn build_itglue(source: &ConfigSource) -> Result<ItGlueServices, OfframpError> {
    let aws = aws_config(source).await?;
    let secrets = secret_store_with(source, aws.as_ref())?;
    let settings = Settings::load_with(source, secrets.as_ref(), PsaNeed::ForItGluePolicy).await?;
    let psa_configured = settings.connectwise.is_some() || settings.autotask.is_some() || settings.halo.is_some();
    let stores = stores_with(source, aws.as_ref())?;
    let psa = psa_configured.then(|| psa_adapter(&settings, &secrets, &stores.limits)).transpose()?;
    let docs = docs_adapter(&settings, &secrets, &stores.limits)?;
    let archive = archive_adapter(&settings, aws.as_ref())?;
    Ok(ItGlueServices { settings, psa, audit: stores.audit, org_settings: stores.settings, docs, archive })
}

/// What user offboarding (workflow 003) needs: every workflow's adapters (PSA, audit trail,
/// settings, notifier) and Microsoft 365 or on-premises AD (`services.onprem`), or both.
pub struct UserOffboardingServices {
    pub services: Services,
    /// `services.microsoft365`, known to be there.
    pub m365: Microsoft365,
    /// Where `store_password` keeps a leaver's new password; `None` until a vault is wired
    /// ([`secret_vault`]), and the workflow then refuses `store_password` before changing anything.
    pub vault: Option<Arc<dyn SecretVault>>,
}

/// The secret vault of user offboarding: Secrets Manager under `offramp/offboarded-users`
/// (`OFFRAMP_PASSWORD_VAULT_PREFIX` to change it; infra/template.yaml grants only that
/// prefix) wherever AWS is in use, i.e. deployed. A laptop run has none, and a request to
/// store a password is refused before anything changes.
fn secret_vault(
    source: &ConfigSource,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<dyn SecretVault>>, OfframpError> {
    let Some(aws) = aws else { return Ok(None) };
    let prefix = source.get("OFFRAMP_PASSWORD_VAULT_PREFIX").unwrap_or(DEFAULT_VAULT_PREFIX);
    let vault = SecretsManagerVault::new(aws_sdk_secretsmanager::Client::new(aws), prefix)?;
    Ok(Some(Arc::new(vault)))
}

/// Whether Microsoft 365 (`MS_CLIENT_ID`) or on-premises AD (`AD_LDAP_URL`) is configured:
/// what user offboarding needs (the orchestrator builds its adapters only then).
pub fn user_offboarding_configured(source: &ConfigSource) -> bool {
    ["MS_CLIENT_ID", "AD_LDAP_URL"].iter().any(|key| source.get(key).is_some_and(|v| !v.trim().is_empty()))
}

/// The adapters of user offboarding, built once (one AWS configuration, one secret store).
/// `ConfigurationError` when neither Microsoft 365 nor on-premises AD is configured.
pub async fn build_user_offboarding(source: &ConfigSource) -> Result<UserOffboardingServices, OfframpError> {
    let aws = aws_config(source).await?;
    let secrets = secret_store_with(source, aws.as_ref())?;
    let vault = secret_vault(source, aws.as_ref())?;
    let services = build_with(source, aws, &secrets).await?;
    let m365 = match (&services.microsoft365, &services.onprem) {
        (Some(m365), _) => Microsoft365 { directory: m365.directory.clone(), mailboxes: m365.mailboxes.clone() },
        // On-premises AD only: Entra ID and Exchange Online answer ConfigurationError.
        (None, Some(_)) => {
            let absent = Arc::new(crate::adapters::m365_absent::Microsoft365NotConfigured);
            Microsoft365 { directory: absent.clone(), mailboxes: absent }
        }
        (None, None) => return Err(m365_not_configured()),
    };
    Ok(UserOffboardingServices { services, m365, vault })
}

impl UserOffboardingServices {
    /// What the workflow needs from these adapters (one wiring for the Lambda entry and the CLI).
    pub fn offboard_user_deps(&self) -> OffboardUserDeps<'_> {
        let services = &self.services;
        OffboardUserDeps {
            directory: self.m365.directory.as_ref(),
            mailboxes: self.m365.mailboxes.as_ref(),
            onprem: services.onprem.as_deref(),
            psa: services.psa.as_ref(),
            audit: services.audit.as_ref(),
            settings: services.org_settings.as_ref(),
            notifier: services.notifier.as_deref(),
            vault: self.vault.as_deref(),
            options: OffboardUserOptions {
                concurrency: services.settings.workflow_concurrency,
                ..OffboardUserOptions::default()
            },
        }
    }
}

fn itglue_not_configured() -> OfframpError {
    OfframpError::configuration("IT Glue is not configured: set ITGLUE_API_KEY (and ITGLUE_REGION or ITGLUE_URL)")
}

impl ItGlueServices {
    /// What the organization deletion needs from these adapters and settings.
    pub fn delete_org_deps(&self) -> Result<DeleteOrgDeps<'_>, OfframpError> {
        Ok(DeleteOrgDeps {
            docs: self.docs.as_deref().ok_or_else(itglue_not_configured)?,
            audit: self.audit.as_ref(),
            psa: self.psa.as_deref(),
            settings: Some(self.org_settings.as_ref()),
            archive: self.archive.as_deref(),
            options: DeleteOrgOptions::from_settings(&self.settings),
        })
    }
}

impl Services {
    /// What a rollback needs (one wiring for the Lambda entry and the CLI): Microsoft 365
    /// only when it is configured; a PSA rollback never needs it.
    pub fn rollback_deps(&self) -> crate::workflows::rollback::RollbackDeps<'_> {
        crate::workflows::rollback::RollbackDeps {
            psa: self.psa.as_ref(),
            audit: self.audit.as_ref(),
            registry: crate::workflows::restorers(),
            directory: self.microsoft365.as_ref().map(|m| m.directory.as_ref()),
            mailboxes: self.microsoft365.as_ref().map(|m| m.mailboxes.as_ref()),
            onprem: self.onprem.as_deref(),
        }
    }

    /// What the organization deletion needs (the Lambda entry; the CLI uses [`build_itglue`]).
    pub fn delete_org_deps(&self) -> Result<DeleteOrgDeps<'_>, OfframpError> {
        Ok(DeleteOrgDeps {
            docs: self.docs.as_deref().ok_or_else(itglue_not_configured)?,
            audit: self.audit.as_ref(),
            psa: Some(self.psa.as_ref()),
            settings: Some(self.org_settings.as_ref()),
            archive: self.archive.as_deref(),
            options: DeleteOrgOptions::from_settings(&self.settings),
        })
    }

    /// What contact deactivation needs from these adapters and settings (one wiring for
    /// the Lambda entry and the CLI).
    pub fn contact_deps(&self) -> crate::workflows::deactivate_contacts::ContactDeps<'_> {
        crate::workflows::deactivate_contacts::ContactDeps {
            psa: self.psa.as_ref(),
            audit: self.audit.as_ref(),
            settings: self.org_settings.as_ref(),
            notifier: self.notifier.as_deref(),
            progress: &crate::ports::NoProgress,
            concurrency: self.settings.workflow_concurrency,
            requester_domains: self.settings.requester_domains.clone(),
            deadline: crate::operation::Deadline::none(),
        }
    }
}

// ----- Approvals (docs/architecture.md#approvals) -----

/// What the approval page (the `approval` Lambda, a test's loopback server) decides with:
/// the approvals beside the audit trail, and Step Functions for the waiting task. It needs
/// no PSA and sends no e-mail: the request side ([`crate::approval::request_approval`]) does.
pub struct ApprovalServices {
    pub approvals: Arc<dyn crate::ports::ApprovalStore>,
    pub audit: Arc<dyn AuditStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub callback: Arc<dyn crate::ports::TaskCallback>,
    pub config: crate::approval::ApprovalConfig,
}

impl ApprovalServices {
    pub fn deps(&self) -> crate::approval::ApprovalDeps<'_> {
        crate::approval::ApprovalDeps {
            store: self.approvals.as_ref(),
            audit: self.audit.as_ref(),
            settings: self.settings.as_ref(),
            notifier: None,
            psa: None,
            callback: self.callback.as_ref(),
            config: &self.config,
        }
    }
}

/// The approval page's services: DynamoDB (`OFFRAMP_AUDIT_TABLE`) or SQLite, and
/// Step Functions' task callbacks (AWS configuration loaded for them in any case).
pub async fn build_approvals(source: &ConfigSource) -> Result<ApprovalServices, OfframpError> {
    let aws = crate::aws_sdk::loader(source)?.load().await;
    let callback =
        Arc::new(crate::adapters::task_callback_sfn::StepFunctionsCallback::new(aws_sdk_sfn::Client::new(&aws)));
    let config = crate::approval::ApprovalConfig::from_source(source)?;
    let (approvals, audit, settings): (
        Arc<dyn crate::ports::ApprovalStore>,
        Arc<dyn AuditStore>,
        Arc<dyn SettingsStore>,
    ) = match Settings::audit_backend(source) {
        AuditBackend::DynamoDb { table } => {
            let store = Arc::new(DynamoDbAuditStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
            (store.clone(), store.clone(), store)
        }
        AuditBackend::Sqlite { path } => sqlite_approvals(&path)?,
    };
    Ok(ApprovalServices { approvals, audit, settings, callback, config })
}

type ApprovalStores = (Arc<dyn crate::ports::ApprovalStore>, Arc<dyn AuditStore>, Arc<dyn SettingsStore>);

#[cfg(feature = "sqlite")]
fn sqlite_approvals(path: &std::path::Path) -> Result<ApprovalStores, OfframpError> {
    let store = Arc::new(SqliteAuditStore::open(path)?);
    Ok((store.clone(), store.clone(), store))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_approvals(path: &std::path::Path) -> Result<ApprovalStores, OfframpError> {
    // The same refusal as every other store of a Lambda build without SQLite.
    Err(sqlite_stores(path).err().unwrap_or_else(|| OfframpError::configuration("no SQLite store in this build")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    async fn microsoft365(pairs: &[(&str, &str)]) -> Result<Option<Microsoft365>, OfframpError> {
        let source = ConfigSource::from_pairs(pairs.iter().copied());
        let secrets: Arc<dyn SecretStore> = Arc::new(EnvSecretStore::with_vars(HashMap::new()));
        microsoft365_adapters(&source, &secrets, &HttpSettings::default()).await
    }

    /// Without `MS_CLIENT_ID` nothing is built and nothing is asked for (a PSA rollback runs
    /// as before); with it and its secret both adapters are built; with it and no secret
    /// the deployment is wrong and says so.
    #[tokio::test]
    async fn microsoft365_is_built_only_when_its_client_id_is_set() {
        assert!(microsoft365(&[]).await.unwrap().is_none());
        let configured = [("MS_CLIENT_ID", "app-id"), ("MS_CLIENT_SECRET", "s3cret")];
        assert!(microsoft365(&configured).await.unwrap().is_some());
        let error = microsoft365(&[("MS_CLIENT_ID", "app-id")]).await.err().expect("no secret");
        assert_eq!(error.code(), crate::error::ErrorCode::ConfigurationError);
        assert!(error.to_string().contains("MS_CLIENT_SECRET"), "{error}");
    }

    async fn onprem(pairs: &[(&str, &str)]) -> Result<Option<Arc<dyn OnPremDirectory>>, OfframpError> {
        let source = ConfigSource::from_pairs(pairs.iter().copied());
        let secrets: Arc<dyn SecretStore> = Arc::new(EnvSecretStore::with_vars(source.vars().clone()));
        onprem_adapter(&source, &secrets).await
    }

    /// Without `AD_LDAP_URL` there is no AD (and nothing is asked for); with it the adapter
    /// is built without connecting; without its password the deployment says so.
    #[tokio::test]
    async fn the_ldap_directory_is_built_only_when_its_url_is_set() {
        assert!(onprem(&[]).await.unwrap().is_none());
        let configured = [
            ("AD_LDAP_URL", "ldaps://dc1.corp.example"),
            ("AD_BIND_DN", "CN=svc,DC=corp,DC=example"),
            ("AD_BIND_PASSWORD", "s3cret"),
            ("AD_BASE_DN", "DC=corp,DC=example"),
        ];
        let built = onprem(&configured).await.unwrap().expect("configured");
        assert_eq!(built.domain(), "corp.example");
        let error = onprem(&configured[..2]).await.err().expect("no password");
        assert_eq!(error.code(), crate::error::ErrorCode::ConfigurationError);
        assert!(error.to_string().contains("AD_BIND_PASSWORD"), "{error}");
    }
}
