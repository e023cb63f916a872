//! Settings from environment variables, an optional TOML file, and the secret store.
//!
//! Every setting has one name, the environment variable's. The CLI's TOML file
//! (`--config FILE`) uses the same names as keys; the environment wins over the file.
//! Credentials are looked up in the same place first, then in the secret store
//! (a Secrets Manager secret holding a JSON object with the same keys).
//!
//! | Name | Meaning | Default |
//! |---|---|---|
//! | `OFFRAMP_PSA` | `connectwise`, `autotask` or `halo` | `connectwise` |
//! | `CONNECTWISE_URL` | base URL up to and including `apis/3.0` | required (ConnectWise) |
//! | `CONNECTWISE_COMPANY_ID`, `CONNECTWISE_PUBLIC_KEY`, `CONNECTWISE_PRIVATE_KEY`, `CONNECTWISE_CLIENT_ID` | API member credentials and the registered clientId | required (ConnectWise) |
//! | `OFFRAMP_CW_INACTIVE_STATUS` | configuration status that means inactive | `Inactive` |
//! | `CONNECTWISE_RATE_LIMIT` | requests per second Offramp sends to ConnectWise | `10` |
//! | `CONNECTWISE_MAX_CONCURRENCY` | ConnectWise requests in flight at once | `8` |
//! | `AUTOTASK_URL` | zone base URL up to and including `v1.0` | looked up by user name |
//! | `AUTOTASK_ZONE_LOOKUP_URL` | where the zone lookup is asked | `https://webservices.autotask.net/atservicesrest/v1.0` |
//! | `AUTOTASK_USERNAME`, `AUTOTASK_SECRET`, `AUTOTASK_INTEGRATION_CODE` | API user and tracking identifier | required (Autotask) |
//! | `AUTOTASK_HOURLY_BUDGET` | requests per rolling hour Offramp may use (the database allows 10,000 for all integrations) | `10000` |
//! | `AUTOTASK_BUDGET_RESERVE` | of those, requests left for other integrations | `1000` |
//! | `AUTOTASK_MAX_CONCURRENCY` | requests in flight per endpoint (Autotask allows 3) | `3` |
//! | `OFFRAMP_AUTOTASK_ARCHIVED_CI_TYPES` | `configurationItemType` values that mean archived | none |
//! | `HALO_URL` | instance root, e.g. `https://acme.halopsa.com` | required (HaloPSA) |
//! | `HALO_AUTH_URL` | authorisation server | `{HALO_URL}/auth` |
//! | `HALO_TENANT`, `HALO_CLIENT_ID`, `HALO_CLIENT_SECRET` | OAuth2 client credentials (tenant for hosted instances) | id and secret required (HaloPSA) |
//! | `HALO_SCOPE` | OAuth scopes | `all` |
//! | `HALO_RATE_LIMIT` | requests per rolling five minutes | `300` |
//! | `HALO_MAX_WAIT_SECONDS` | longest wait for room in that window before the run stops (resumable) | `300` |
//! | `HALO_UPDATE_BATCH` | assets per update request | `50` |
//! | `OFFRAMP_HALO_ARCHIVED_STATUS_IDS` | asset `status_id` values that mean archived | none |
//! | `OFFRAMP_CONCURRENCY` | items a workflow changes at once | `8` |
//! | `OFFRAMP_HTTP_TIMEOUT_SECONDS`, `OFFRAMP_HTTP_MAX_RETRIES` | per request | `60`, `8` |
//! | `OFFRAMP_HTTP_MAX_BODY_BYTES` | largest vendor answer read (PSA and IT Glue; tokens and notifiers keep 256 KiB) | `8388608` (8 MiB) |
//! | `OFFRAMP_AWS_CONNECT_TIMEOUT_SECONDS`, `OFFRAMP_AWS_ATTEMPT_TIMEOUT_SECONDS`, `OFFRAMP_AWS_OPERATION_TIMEOUT_SECONDS` | AWS SDK calls (`crate::aws_sdk`) | `3`, `10`, `30` |
//! | `OFFRAMP_SECRET_PSA`, `OFFRAMP_SECRET_ITGLUE`, `OFFRAMP_SECRET_NOTIFIER` | one Secrets Manager secret per vendor integration (`adapters::secrets_routed`) | unset |
//! | `OFFRAMP_SECRET_ID` | Secrets Manager secret with any credential the secrets above do not hold | unset: environment |
//! | `OFFRAMP_SECRET_TTL_SECONDS` | how long a fetched secret is cached | `300` |
//! | `OFFRAMP_AUDIT_TABLE` | DynamoDB audit table | unset: SQLite |
//! | `OFFRAMP_AUDIT_DB` | SQLite audit file (feature `sqlite`: the CLI, not the Lambda builds) | `.offramp/audit.sqlite` |
//! | `OFFRAMP_OFFBOARDED_STATUSES` | comma-separated company statuses the sweep treats as offboarded (Autotask and HaloPSA: `Inactive`/`Active`) | none |
//! | `OFFRAMP_OFFBOARDED_INACTIVE` | a company inactive in the PSA is offboarded | `false` on ConnectWise, `true` on Autotask and HaloPSA |
//! | `OFFRAMP_OFFBOARDED_CATEGORIES` | Autotask company types or classifications that mean offboarded | none |
//! | `OFFRAMP_OFFBOARDED_CONTRACT_ENDED` | a company whose every contract has ended (or was cancelled) is offboarded | `false` |
//! | `OFFRAMP_SWEEP_DRY_RUN` | the scheduled sweeps (configurations, contacts) only plan (record dry runs) | `false` |
//! | `OFFRAMP_ITGLUE_CLEANUP_DRY_RUN` | the scheduled IT Glue cleanup only plans | `false` |
//! | `OFFRAMP_ITGLUE_PSA_POLICY` | `require_offboarded_psa_company`, `allow_unlinked` or `off` (per organization: the setting `itglue_psa_policy`) | `allow_unlinked` |
//! | `OFFRAMP_ITGLUE_EXPORT_MAX_BYTES` | largest IT Glue export copied to the archive | `268435456` (256 MiB) |
//! | `OFFRAMP_EXPORT_BUCKET`, `OFFRAMP_EXPORT_KMS_KEY_ID`, `OFFRAMP_EXPORT_RETENTION_DAYS` | the S3 export archive, its KMS key, governance retention | unset, unset, `365` |
//! | `OFFRAMP_EXPORT_DIR` | the local export archive (no bucket; not in Lambda) | `.offramp/exports` |
//! | `OFFRAMP_EVIDENCE_BUCKET`, `OFFRAMP_EVIDENCE_KMS_KEY_ID`, `OFFRAMP_EVIDENCE_RETENTION_DAYS` | where the chain's evidence report goes in S3 (under `evidence/`), its KMS key, governance retention | unset, unset, `365` |
//! | `OFFRAMP_EVIDENCE_DIR` | the local evidence directory (no bucket; not in Lambda) | `evidence` beside the SQLite trail |
//! | `AD_LDAP_URL` | on-premises Active Directory: `ldaps://dc:636`, or `ldap://dc` (then StartTLS; never plain text) | unset: no AD |
//! | `AD_BIND_DN`, `AD_BIND_PASSWORD` | the service account's simple bind (DN or `user@domain`); credentials, also read from the secret store | required (AD) |
//! | `AD_BASE_DN` | the domain's naming context, where users are looked for (`DC=corp,DC=example`) | required (AD) |
//! | `AD_CA_FILE` | PEM bundle trusted besides the system's roots (the DC's certificate is always verified) | none |
//! | `AD_DISABLED_OU` | the OU offboarded accounts are moved to | none |
//! | `AD_TIMEOUT_SECONDS`, `AD_MAX_CONCURRENCY` | per LDAP operation (and connection); operations in flight | `30`, `8` |
//! | `OFFRAMP_DEADLINE_MARGIN_SECONDS` | a Lambda run stops sending changes this long before its invocation's deadline, and answers with a continuation | `60` |
//! | `OFFRAMP_INVOCATION_MAX_SECONDS` | a Lambda run stops after this many seconds of work even when Lambda allows more (tests, the bench) | unset |
//! | `OFFRAMP_REQUESTER_EMAIL_DOMAINS` | comma-separated e-mail domains a requester address from a request (`requester_email`, or `initiated_by`) may have to be notified | none: only configured recipients |
//!
//! A company is offboarded when it matches any of these; with none configured the
//! sweep refuses to run, and so does a direct configuration deactivation unless its
//! request says `allow_active_client`. A schedule's parameters (criteria, days, dry run)
//! come only from here, never from the event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::adapters::archive_s3::S3ArchiveSettings;
use crate::adapters::autotask::{self, AutotaskSettings};
use crate::adapters::connectwise::{self, ConnectWiseSettings};
use crate::adapters::halo::{self, HaloSettings};
use crate::adapters::itglue;
use crate::domain::{ItGluePsaPolicy, OffboardedCriteria, PsaKind};
use crate::error::OfframpError;
use crate::http::{DEFAULT_MAX_BODY_BYTES, HttpSettings};
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// Where settings are read from: a flat map of names to values.
#[derive(Clone, Default)]
pub struct ConfigSource {
    vars: HashMap<String, String>,
}

/// Names only: the values are the raw environment, credentials included.
impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("ConfigSource").field("names", &names).finish_non_exhaustive()
    }
}

impl ConfigSource {
    /// The process environment.
    pub fn from_env() -> Self {
        Self { vars: std::env::vars().collect() }
    }

    /// A TOML file (keys are the environment variable names, case-insensitive),
    /// overridden by the process environment.
    pub fn from_env_and_file(file: Option<&Path>) -> Result<Self, OfframpError> {
        let mut source = match file {
            Some(path) => Self::from_toml_file(path)?,
            None => Self::default(),
        };
        source.vars.extend(std::env::vars());
        Ok(source)
    }

    pub fn from_toml_file(path: &Path) -> Result<Self, OfframpError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OfframpError::configuration(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| OfframpError::configuration(format!("{}: {e}", path.display())))
    }

    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut vars = HashMap::new();
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => return Err(format!("{key}: unsupported value {other}")),
            };
            vars.insert(key.to_ascii_uppercase(), value);
        }
        Ok(Self { vars })
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// A non-empty value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    pub fn parsed<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, OfframpError> {
        match self.get(key) {
            None => Ok(default),
            Some(text) => {
                text.parse().map_err(|_| OfframpError::configuration(format!("{key}='{text}' is not a valid value")))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditBackend {
    DynamoDb { table: String },
    Sqlite { path: PathBuf },
}

/// Everything an entry point needs to build its adapters.
#[derive(Debug, Clone)]
pub struct Settings {
    pub psa: PsaKind,
    pub connectwise: Option<ConnectWiseSettings>,
    pub autotask: Option<AutotaskSettings>,
    pub halo: Option<HaloSettings>,
    pub psa_http: HttpSettings,
    pub audit: AuditBackend,
    pub workflow_concurrency: usize,
    pub offboarded: OffboardedCriteria,
    /// `OFFRAMP_SWEEP_DRY_RUN`: the scheduled sweep only plans.
    pub sweep_dry_run: bool,
    /// `OFFRAMP_REQUESTER_EMAIL_DOMAINS`: domains a requester address from a request may have.
    pub requester_domains: Vec<String>,
    /// How much of a Lambda invocation a run may use (`crate::operation::Deadline`).
    pub invocation: InvocationLimits,
    /// How notifications go out (`OFFRAMP_NOTIFIER`).
    pub notifier: NotifierSettings,
    /// IT Glue (workflow 002, docs/workflows.md#002-it-glue-organization-deletion); `client` is
    /// `None` when no `ITGLUE_API_KEY` is configured.
    pub itglue: ItGlueRunSettings,
}

/// IT Glue: the connection and how the organization deletion runs.
#[derive(Debug, Clone)]
pub struct ItGlueRunSettings {
    pub client: Option<crate::adapters::itglue::ItGlueSettings>,
    /// Timeouts and retries as for the PSA; a rolling budget of `ITGLUE_RATE_LIMIT`
    /// requests per 5 minutes (default 3,000), waiting up to `ITGLUE_MAX_WAIT_SECONDS`.
    pub http: HttpSettings,
    /// `OFFRAMP_ITGLUE_PSA_POLICY` (or the older `OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED`):
    /// the policy where no organization setting says otherwise.
    pub psa_policy: ItGluePsaPolicy,
    /// `OFFRAMP_ITGLUE_EXPORT_MAX_BYTES`: the largest export copied (it is held in memory).
    pub export_max_bytes: usize,
    /// Where exports are copied before a deletion.
    pub archive: ArchiveSettings,
    /// `OFFRAMP_ITGLUE_OFFBOARDED_DAYS`: the scheduled cleanup takes companies offboarded at least this long.
    pub offboarded_days: u64,
    /// `OFFRAMP_ITGLUE_CLEANUP_DRY_RUN`: the scheduled cleanup only plans.
    pub cleanup_dry_run: bool,
    /// `OFFRAMP_ITGLUE_EXPORT_WAIT_SECONDS`, `OFFRAMP_ITGLUE_DELETION_WAIT_SECONDS`, `OFFRAMP_ITGLUE_POLL_SECONDS`.
    pub export_wait: Duration,
    pub deletion_wait: Duration,
    pub poll_interval: Duration,
}

/// Where IT Glue exports are copied before a deletion (docs/architecture.md#export-archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveSettings {
    /// `OFFRAMP_EXPORT_BUCKET` (the template's bucket).
    S3(S3ArchiveSettings),
    /// `OFFRAMP_EXPORT_DIR`, or `.offramp/exports` outside Lambda.
    Local(PathBuf),
    /// In Lambda without a bucket: a deletion stops before deleting (unless forced without export).
    None,
}

impl ArchiveSettings {
    fn load(source: &ConfigSource) -> Result<Self, OfframpError> {
        if let Some(bucket) = source.get("OFFRAMP_EXPORT_BUCKET") {
            return Ok(Self::S3(S3ArchiveSettings {
                bucket: bucket.to_string(),
                kms_key_id: source.get("OFFRAMP_EXPORT_KMS_KEY_ID").map(str::to_string),
                retention_days: source.parsed("OFFRAMP_EXPORT_RETENTION_DAYS", 365u32)?,
            }));
        }
        if let Some(dir) = source.get("OFFRAMP_EXPORT_DIR") {
            return Ok(Self::Local(PathBuf::from(dir)));
        }
        // A Lambda's disk is read-only or gone after the invocation: no archive at all
        // is better than one that vanishes.
        Ok(if source.get("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Self::None
        } else {
            Self::Local(PathBuf::from(".offramp/exports"))
        })
    }
}

/// Where the evidence report of a client offboarding is stored (docs/evidence.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceSettings {
    /// `OFFRAMP_EVIDENCE_BUCKET` (the template's export bucket, under `evidence/`).
    S3(crate::adapters::evidence_s3::S3EvidenceSettings),
    /// `OFFRAMP_EVIDENCE_DIR`, or `.offramp/evidence` outside Lambda.
    Local(PathBuf),
    /// In Lambda without a bucket: the report is not stored (the trail can render it again).
    None,
}

impl EvidenceSettings {
    pub fn load(source: &ConfigSource) -> Result<Self, OfframpError> {
        if let Some(bucket) = source.get("OFFRAMP_EVIDENCE_BUCKET") {
            return Ok(Self::S3(crate::adapters::evidence_s3::S3EvidenceSettings {
                bucket: bucket.to_string(),
                kms_key_id: source.get("OFFRAMP_EVIDENCE_KMS_KEY_ID").map(str::to_string),
                retention_days: source.parsed("OFFRAMP_EVIDENCE_RETENTION_DAYS", 365u32)?,
            }));
        }
        if let Some(dir) = source.get("OFFRAMP_EVIDENCE_DIR") {
            return Ok(Self::Local(PathBuf::from(dir)));
        }
        // As for the export archive: a Lambda's disk does not outlive the invocation.
        Ok(if source.get("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Self::None
        } else {
            let audit = Settings::audit_backend(source);
            let beside = match &audit {
                AuditBackend::Sqlite { path } => path.parent().map(|p| p.join("evidence")),
                AuditBackend::DynamoDb { .. } => None,
            };
            Self::Local(beside.unwrap_or_else(|| PathBuf::from(".offramp/evidence")))
        })
    }
}

/// `OFFRAMP_ITGLUE_PSA_POLICY`; where it is unset, `OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED`
/// as it was read before the policy had three values (`true`: require, `false`: off).
fn psa_policy(source: &ConfigSource) -> Result<ItGluePsaPolicy, OfframpError> {
    match (source.get("OFFRAMP_ITGLUE_PSA_POLICY"), source.get("OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED")) {
        (Some(_), Some(_)) => Err(OfframpError::configuration(
            "set OFFRAMP_ITGLUE_PSA_POLICY only (OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED is its older form)",
        )),
        (Some(policy), None) => {
            policy.parse().map_err(|e: String| OfframpError::configuration(format!("OFFRAMP_ITGLUE_PSA_POLICY: {e}")))
        }
        (None, Some(_)) => Ok(if source.parsed("OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED", false)? {
            ItGluePsaPolicy::RequireOffboardedPsaCompany
        } else {
            ItGluePsaPolicy::Off
        }),
        (None, None) => Ok(ItGluePsaPolicy::default()),
    }
}

/// Whether [`Settings::load_with`] must load the PSA's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsaNeed {
    Required,
    /// IT Glue deletion: only when the global PSA policy is not `off`.
    ForItGluePolicy,
}

/// `OFFRAMP_NOTIFIER`: `graph` (e-mail through Microsoft Graph `sendMail` from a service
/// mailbox in the MSP's own tenant), `webhook` (an incoming webhook, Teams/Slack style), or
/// `none` (the default: runs report that nobody was notified).
#[derive(Debug, Clone)]
pub enum NotifierSettings {
    None,
    Graph(crate::adapters::notify_graph::GraphMailSettings),
    Webhook(crate::adapters::notify_webhook::WebhookSettings),
}

fn list(source: &ConfigSource, key: &str) -> Vec<String> {
    source
        .get(key)
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

impl Settings {
    /// The audit backend and other settings that need no credentials.
    pub fn audit_backend(source: &ConfigSource) -> AuditBackend {
        match source.get("OFFRAMP_AUDIT_TABLE") {
            Some(table) => AuditBackend::DynamoDb { table: table.to_string() },
            None => AuditBackend::Sqlite {
                path: PathBuf::from(source.get("OFFRAMP_AUDIT_DB").unwrap_or(".offramp/audit.sqlite")),
            },
        }
    }

    /// Read every setting; credentials from `source`, else from `secrets`. Each vendor's
    /// settings are read by its adapter's own loader (`adapters::<vendor>::load_settings`).
    pub async fn load(source: &ConfigSource, secrets: &dyn SecretStore) -> Result<Self, OfframpError> {
        Self::load_with(source, secrets, PsaNeed::Required).await
    }

    /// [`Self::load`], loading the PSA's settings only when `need` says so: with the IT Glue
    /// PSA policy `off`, an IT Glue deletion needs no PSA setting at all.
    pub async fn load_with(
        source: &ConfigSource,
        secrets: &dyn SecretStore,
        need: PsaNeed,
    ) -> Result<Self, OfframpError> {
        let reader = SettingsReader { source, secrets };
        let psa_needed = need == PsaNeed::Required || psa_policy(source)? != ItGluePsaPolicy::Off;
        let psa: PsaKind =
            source.get("OFFRAMP_PSA").unwrap_or("connectwise").parse().map_err(OfframpError::configuration)?;
        let base_http = base_http(source)?;
        let mut psa_http = base_http.clone();
        let (mut connectwise, mut autotask, mut halo) = (None, None, None);
        match psa {
            _ if !psa_needed => {}
            PsaKind::ConnectWise => connectwise = Some(connectwise::load_settings(&reader, &mut psa_http).await?),
            PsaKind::Autotask => autotask = Some(autotask::load_settings(&reader, &mut psa_http).await?),
            PsaKind::Halo => halo = Some(halo::load_settings(&reader, &mut psa_http).await?),
        }
        let offboarded = offboarded_criteria(source, psa)?;
        Ok(Self {
            itglue: ItGlueRunSettings::load(&reader, base_http).await?,
            notifier: NotifierSettings::load(&reader).await?,
            psa,
            connectwise,
            autotask,
            halo,
            psa_http,
            audit: Self::audit_backend(source),
            workflow_concurrency: source.parsed("OFFRAMP_CONCURRENCY", 8usize)?.clamp(1, 64),
            offboarded,
            sweep_dry_run: source.parsed("OFFRAMP_SWEEP_DRY_RUN", false)?,
            requester_domains: list(source, "OFFRAMP_REQUESTER_EMAIL_DOMAINS"),
            invocation: InvocationLimits::load(source)?,
        })
    }
}

/// The deployment's offboarded criteria (`OFFRAMP_OFFBOARDED_*`); "inactive" counts by
/// default except on ConnectWise, whose companies are offboarded by status.
pub fn offboarded_criteria(source: &ConfigSource, psa: PsaKind) -> Result<OffboardedCriteria, OfframpError> {
    Ok(OffboardedCriteria {
        statuses: list(source, "OFFRAMP_OFFBOARDED_STATUSES"),
        inactive: source.parsed("OFFRAMP_OFFBOARDED_INACTIVE", psa != PsaKind::ConnectWise)?,
        categories: list(source, "OFFRAMP_OFFBOARDED_CATEGORIES"),
        contract_ended: source.parsed("OFFRAMP_OFFBOARDED_CONTRACT_ENDED", false)?,
    })
}

/// How much of a Lambda invocation a run may use: it stops sending changes `margin` before
/// the invocation's deadline (time to finish the window in flight, record it and answer),
/// and after `max_work` when set (docs/architecture.md#runs-that-outlive-one-invocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationLimits {
    /// `OFFRAMP_DEADLINE_MARGIN_SECONDS`.
    pub margin: Duration,
    /// `OFFRAMP_INVOCATION_MAX_SECONDS`.
    pub max_work: Option<Duration>,
}

impl Default for InvocationLimits {
    fn default() -> Self {
        Self { margin: Duration::from_secs(60), max_work: None }
    }
}

impl InvocationLimits {
    pub fn load(source: &ConfigSource) -> Result<Self, OfframpError> {
        let margin = Duration::from_secs(source.parsed("OFFRAMP_DEADLINE_MARGIN_SECONDS", 60u64)?);
        let max_work = match source.get("OFFRAMP_INVOCATION_MAX_SECONDS") {
            None => None,
            Some(_) => Some(Duration::from_secs(source.parsed("OFFRAMP_INVOCATION_MAX_SECONDS", 0u64)?.max(1))),
        };
        Ok(Self { margin, max_work })
    }

    /// The deadline of an invocation Lambda ends at `deadline_ms` (milliseconds since the epoch).
    pub fn deadline(&self, deadline_ms: u64) -> crate::operation::Deadline {
        crate::operation::Deadline::for_invocation(deadline_ms, self.margin, self.max_work)
    }
}

impl ItGlueRunSettings {
    async fn load(reader: &SettingsReader<'_>, base_http: HttpSettings) -> Result<Self, OfframpError> {
        let source = reader.source();
        let (client, http) = itglue::load_settings(reader, base_http).await?;
        Ok(Self {
            client,
            http,
            psa_policy: psa_policy(source)?,
            export_max_bytes: source.parsed("OFFRAMP_ITGLUE_EXPORT_MAX_BYTES", 256usize << 20)?.max(1024),
            archive: ArchiveSettings::load(source)?,
            offboarded_days: source.parsed("OFFRAMP_ITGLUE_OFFBOARDED_DAYS", 30u64)?,
            cleanup_dry_run: source.parsed("OFFRAMP_ITGLUE_CLEANUP_DRY_RUN", false)?,
            export_wait: Duration::from_secs(source.parsed("OFFRAMP_ITGLUE_EXPORT_WAIT_SECONDS", 300u64)?),
            deletion_wait: Duration::from_secs(source.parsed("OFFRAMP_ITGLUE_DELETION_WAIT_SECONDS", 120u64)?),
            poll_interval: Duration::from_secs(source.parsed("OFFRAMP_ITGLUE_POLL_SECONDS", 2u64)?.max(1)),
        })
    }
}

/// Timeouts, retries and the body cap every vendor connection starts from
/// (`OFFRAMP_HTTP_TIMEOUT_SECONDS`, `OFFRAMP_HTTP_MAX_RETRIES`, `OFFRAMP_HTTP_MAX_BODY_BYTES`).
pub fn base_http(source: &ConfigSource) -> Result<HttpSettings, OfframpError> {
    Ok(HttpSettings {
        request_timeout: Duration::from_secs(source.parsed("OFFRAMP_HTTP_TIMEOUT_SECONDS", 60u64)?.max(1)),
        max_retries: source.parsed("OFFRAMP_HTTP_MAX_RETRIES", 8u32)?,
        max_body_bytes: source.parsed("OFFRAMP_HTTP_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?.max(1024),
        ..HttpSettings::default()
    })
}

impl NotifierSettings {
    async fn load(reader: &SettingsReader<'_>) -> Result<Self, OfframpError> {
        let source = reader.source();
        Ok(match source.get("OFFRAMP_NOTIFIER").unwrap_or("none").trim().to_ascii_lowercase().as_str() {
            "none" | "" => NotifierSettings::None,
            "graph" => {
                use crate::adapters::notify_graph::{DEFAULT_AUTHORITY_URL, DEFAULT_GRAPH_URL, GraphMailSettings};
                NotifierSettings::Graph(GraphMailSettings {
                    authority_url: source.get("GRAPH_AUTHORITY_URL").unwrap_or(DEFAULT_AUTHORITY_URL).to_string(),
                    graph_url: source.get("GRAPH_URL").unwrap_or(DEFAULT_GRAPH_URL).to_string(),
                    tenant_id: reader.required_text("GRAPH_TENANT_ID").await?,
                    client_id: reader.required_text("GRAPH_CLIENT_ID").await?,
                    client_secret: reader.required("GRAPH_CLIENT_SECRET").await?,
                    sender: reader.required_text("GRAPH_SENDER").await?,
                })
            }
            "webhook" => NotifierSettings::Webhook(crate::adapters::notify_webhook::WebhookSettings {
                url: reader.required("OFFRAMP_WEBHOOK_URL").await?,
            }),
            other => {
                return Err(OfframpError::configuration(format!(
                    "OFFRAMP_NOTIFIER '{other}' is not one of graph, webhook, none"
                )));
            }
        })
    }
}

/// How an adapter's settings loader reads: plain settings from the [`ConfigSource`],
/// credentials from it first and then from the secret store.
pub struct SettingsReader<'a> {
    source: &'a ConfigSource,
    secrets: &'a dyn SecretStore,
}

impl<'a> SettingsReader<'a> {
    pub fn new(source: &'a ConfigSource, secrets: &'a dyn SecretStore) -> Self {
        Self { source, secrets }
    }

    pub fn source(&self) -> &ConfigSource {
        self.source
    }

    /// A credential or other value that may live in the secret store; `None` if neither has it.
    pub async fn optional(&self, key: &str) -> Result<Option<SecretString>, OfframpError> {
        match self.source.get(key) {
            Some(value) => Ok(Some(SecretString::new(value))),
            None => Ok(self.secrets.get(key).await?),
        }
    }

    /// As [`Self::optional`], and an error naming `key` when it is not set anywhere.
    pub async fn required(&self, key: &str) -> Result<SecretString, OfframpError> {
        let secret = crate::adapters::secrets_routed::Integration::of_key(key)
            .map_or("OFFRAMP_SECRET_ID", |integration| integration.setting());
        self.optional(key).await?.ok_or_else(|| {
            OfframpError::configuration(format!(
                "{key} is not set (environment, config file, or the secret named by {secret} or OFFRAMP_SECRET_ID)"
            ))
        })
    }

    /// A required value that is not secret (a URL, a user name).
    pub async fn required_text(&self, key: &str) -> Result<String, OfframpError> {
        Ok(self.required(key).await?.expose().to_string())
    }

    pub fn parsed<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, OfframpError> {
        self.source.parsed(key, default)
    }

    /// A comma-separated list of integers.
    pub fn int_list(&self, key: &str) -> Result<Vec<i64>, OfframpError> {
        list(self.source, key)
            .iter()
            .map(|v| {
                v.parse::<i64>().map_err(|_| OfframpError::configuration(format!("{key}: '{v}' is not an integer")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SecretError;
    use async_trait::async_trait;

    struct MapSecrets(HashMap<&'static str, &'static str>);

    #[async_trait]
    impl SecretStore for MapSecrets {
        async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
            Ok(self.0.get(key).map(|v| SecretString::new(*v)))
        }
    }

    fn base() -> ConfigSource {
        ConfigSource::from_pairs([
            ("CONNECTWISE_URL", "http://127.0.0.1:9/v4_6_release/apis/3.0"),
            ("CONNECTWISE_COMPANY_ID", "acme"),
            ("CONNECTWISE_PUBLIC_KEY", "pub"),
            ("CONNECTWISE_CLIENT_ID", "cid"),
        ])
    }

    #[test]
    fn debug_shows_names_never_values() {
        let source = ConfigSource::from_pairs([("CONNECTWISE_PRIVATE_KEY", "raw-private-value")]);
        let printed = format!("{source:?}");
        assert!(printed.contains("CONNECTWISE_PRIVATE_KEY"), "{printed}");
        assert!(!printed.contains("raw-private-value"), "{printed}");
    }

    #[tokio::test]
    async fn credentials_fall_back_to_the_secret_store() {
        let secrets = MapSecrets(HashMap::from([("CONNECTWISE_PRIVATE_KEY", "from-secret")]));
        let settings = Settings::load(&base(), &secrets).await.unwrap();
        let cw = settings.connectwise.unwrap();
        assert_eq!(cw.private_key.expose(), "from-secret");
        assert_eq!(cw.inactive_status, "Inactive");
        assert_eq!(settings.audit, AuditBackend::Sqlite { path: ".offramp/audit.sqlite".into() });
        assert_eq!(settings.psa_http.rate_limit_per_sec, Some(10.0));
    }

    #[tokio::test]
    async fn a_missing_credential_is_named() {
        let err = Settings::load(&base(), &MapSecrets(HashMap::new())).await.unwrap_err();
        assert!(err.to_string().contains("CONNECTWISE_PRIVATE_KEY"), "{err}");
    }

    #[tokio::test]
    async fn bad_numbers_and_unknown_psa_are_configuration_errors() {
        let secrets = MapSecrets(HashMap::from([("CONNECTWISE_PRIVATE_KEY", "k")]));
        let mut source = base();
        source.set("CONNECTWISE_RATE_LIMIT", "fast");
        assert!(Settings::load(&source, &secrets).await.unwrap_err().to_string().contains("CONNECTWISE_RATE_LIMIT"));
        let mut source = base();
        source.set("OFFRAMP_PSA", "salesforce");
        assert!(Settings::load(&source, &secrets).await.is_err());
    }

    #[tokio::test]
    async fn autotask_and_halo_credentials_come_from_the_secret_and_their_limits_have_defaults() {
        let source = ConfigSource::from_pairs([("OFFRAMP_PSA", "autotask"), ("AUTOTASK_USERNAME", "api@example.com")]);
        let secrets = MapSecrets(HashMap::from([
            ("AUTOTASK_SECRET", "at-secret"),
            ("AUTOTASK_INTEGRATION_CODE", "AT-CODE"),
            ("HALO_CLIENT_SECRET", "halo-secret"),
        ]));
        let settings = Settings::load(&source, &secrets).await.unwrap();
        let at = settings.autotask.unwrap();
        assert_eq!((at.secret.expose(), at.integration_code.expose()), ("at-secret", "AT-CODE"));
        assert_eq!(at.url, None, "no URL: the zone is looked up");
        assert_eq!(settings.psa_http.max_concurrency_per_endpoint, Some(3));
        let budget = settings.psa_http.budget.unwrap();
        assert_eq!((budget.limit, budget.window.as_secs(), budget.max_wait), (9_000, 3600, Duration::ZERO));
        assert!(settings.offboarded.inactive, "Autotask: an inactive company is offboarded by default");

        let source = ConfigSource::from_pairs([
            ("OFFRAMP_PSA", "halo"),
            ("HALO_URL", "https://acme.halopsa.com"),
            ("HALO_CLIENT_ID", "id"),
            ("HALO_RATE_LIMIT", "450"),
            ("OFFRAMP_HALO_ARCHIVED_STATUS_IDS", "4, 7"),
        ]);
        let settings = Settings::load(&source, &secrets).await.unwrap();
        let halo = settings.halo.unwrap();
        assert_eq!(halo.client_secret.expose(), "halo-secret");
        assert_eq!(halo.archived_status_ids, vec![4, 7]);
        assert_eq!(settings.psa_http.budget.unwrap().limit, 450);

        let missing = ConfigSource::from_pairs([("OFFRAMP_PSA", "halo"), ("HALO_URL", "https://acme.halopsa.com")]);
        let err = Settings::load(&missing, &MapSecrets(HashMap::new())).await.unwrap_err();
        assert!(err.to_string().contains("HALO_CLIENT_ID"), "{err}");
        let bad = ConfigSource::from_pairs([
            ("OFFRAMP_PSA", "autotask"),
            ("AUTOTASK_USERNAME", "u"),
            ("AUTOTASK_BUDGET_RESERVE", "20000"),
        ]);
        assert!(Settings::load(&bad, &secrets).await.unwrap_err().to_string().contains("AUTOTASK_BUDGET_RESERVE"));
    }

    #[tokio::test]
    async fn itglue_key_comes_from_the_secret_and_the_region_picks_the_url() {
        let secrets =
            MapSecrets(HashMap::from([("ITGLUE_API_KEY", "ITG.from-the-secret"), ("CONNECTWISE_PRIVATE_KEY", "priv")]));
        let mut source = base();
        source.set("ITGLUE_REGION", "EU");
        let settings = Settings::load(&source, &secrets).await.unwrap();
        let client = settings.itglue.client.expect("configured by the secret");
        assert_eq!(
            (client.url.as_str(), client.api_key.expose()),
            ("https://api.eu.itglue.com", "ITG.from-the-secret")
        );
        let budget = settings.itglue.http.budget.expect("a rolling budget by default");
        assert_eq!((budget.limit, budget.window.as_secs()), (3000, 300), "IT Glue's documented 3,000 per 5 minutes");
        assert_eq!(settings.itglue.psa_policy, ItGluePsaPolicy::AllowUnlinked, "the default");
        assert_eq!(settings.itglue.archive, ArchiveSettings::Local(".offramp/exports".into()));

        source.set("ITGLUE_URL", "http://127.0.0.1:9/itglue");
        source.set("ITGLUE_RATE_LIMIT", "0");
        let settings = Settings::load(&source, &secrets).await.unwrap();
        assert_eq!(settings.itglue.client.unwrap().url, "http://127.0.0.1:9/itglue", "an explicit URL wins");
        assert!(settings.itglue.http.budget.is_none());

        let psa_only = MapSecrets(HashMap::from([("CONNECTWISE_PRIVATE_KEY", "priv")]));
        let none = Settings::load(&base(), &psa_only).await.unwrap();
        assert!(none.itglue.client.is_none(), "no key: IT Glue is simply not configured");
        let mut bad = base();
        bad.set("ITGLUE_REGION", "uk");
        let err = Settings::load(&bad, &secrets).await.unwrap_err();
        assert!(err.to_string().contains("ITGLUE_REGION"), "{err}");
    }

    #[tokio::test]
    async fn the_itglue_psa_policy_decides_whether_the_psa_is_read() {
        let secrets = MapSecrets(HashMap::from([("ITGLUE_API_KEY", "ITG.k")]));
        let mut itglue_only = ConfigSource::from_pairs([("ITGLUE_URL", "http://127.0.0.1:9/itglue")]);
        let needs_psa = Settings::load_with(&itglue_only, &secrets, PsaNeed::ForItGluePolicy).await.unwrap_err();
        assert!(needs_psa.to_string().contains("CONNECTWISE_URL"), "default allow_unlinked reads the PSA: {needs_psa}");
        itglue_only.set("OFFRAMP_ITGLUE_PSA_POLICY", "OFF");
        let settings = Settings::load_with(&itglue_only, &secrets, PsaNeed::ForItGluePolicy).await.unwrap();
        assert_eq!(settings.itglue.psa_policy, ItGluePsaPolicy::Off);
        assert!(settings.connectwise.is_none() && settings.itglue.client.is_some());
        assert!(Settings::load(&itglue_only, &secrets).await.is_err(), "every other entry point needs its PSA");

        let policy = |pairs: &[(&str, &str)]| psa_policy(&ConfigSource::from_pairs(pairs.iter().copied()));
        assert_eq!(policy(&[]).unwrap(), ItGluePsaPolicy::AllowUnlinked);
        let legacy = policy(&[("OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED", "true")]).unwrap();
        assert_eq!(legacy, ItGluePsaPolicy::RequireOffboardedPsaCompany);
        assert_eq!(policy(&[("OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED", "false")]).unwrap(), ItGluePsaPolicy::Off);
        let both = [("OFFRAMP_ITGLUE_PSA_POLICY", "off"), ("OFFRAMP_ITGLUE_REQUIRE_PSA_OFFBOARDED", "true")];
        assert!(policy(&both).is_err());
        let bad = policy(&[("OFFRAMP_ITGLUE_PSA_POLICY", "sometimes")]).unwrap_err();
        assert!(bad.to_string().contains("allow_unlinked"), "{bad}");
    }

    #[test]
    fn toml_keys_are_the_environment_names() {
        let source = ConfigSource::from_toml_str(
            "offramp_audit_table = \"audit\"\nOFFRAMP_OFFBOARDED_STATUSES = [\"Offboarded\", \"Cancelled\"]\n",
        )
        .unwrap();
        assert_eq!(Settings::audit_backend(&source), AuditBackend::DynamoDb { table: "audit".into() });
        assert_eq!(source.get("OFFRAMP_OFFBOARDED_STATUSES"), Some("Offboarded,Cancelled"));
    }
}
