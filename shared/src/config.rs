//! Settings from environment variables, an optional TOML file, and the secret store.
//!
//! Every setting has one name, the environment variable's. The CLI's TOML file
//! (`--config FILE`) uses the same names as keys; the environment wins over the file.
//! Credentials are looked up in the same place first, then in the secret store
//! (a Secrets Manager secret holding a JSON object with the same keys).
//!
//! | Name | Meaning | Default |
//! |---|---|---|
//! | `OFFRAMP_PSA` | `connectwise` (Autotask and HaloPSA follow) | `connectwise` |
//! | `CONNECTWISE_URL` | base URL up to and including `apis/3.0` | required |
//! | `CONNECTWISE_COMPANY_ID`, `CONNECTWISE_PUBLIC_KEY`, `CONNECTWISE_PRIVATE_KEY`, `CONNECTWISE_CLIENT_ID` | API member credentials and the registered clientId | required |
//! | `OFFRAMP_CW_INACTIVE_STATUS` | configuration status that means inactive | `Inactive` |
//! | `CONNECTWISE_RATE_LIMIT` | requests per second Offramp sends to ConnectWise | `10` |
//! | `CONNECTWISE_MAX_CONCURRENCY` | ConnectWise requests in flight at once | `8` |
//! | `OFFRAMP_CONCURRENCY` | items a workflow changes at once | `8` |
//! | `OFFRAMP_HTTP_TIMEOUT_SECONDS`, `OFFRAMP_HTTP_MAX_RETRIES` | per request | `60`, `8` |
//! | `OFFRAMP_SECRET_ID` | Secrets Manager secret with the credentials | unset: environment |
//! | `OFFRAMP_SECRET_TTL_SECONDS` | how long a fetched secret is cached | `300` |
//! | `OFFRAMP_AUDIT_TABLE` | DynamoDB audit table | unset: SQLite |
//! | `OFFRAMP_AUDIT_DB` | SQLite audit file | `.offramp/audit.sqlite` |
//! | `OFFRAMP_OFFBOARDED_STATUSES` | comma-separated company statuses the scheduled sweep treats as offboarded | none (the sweep refuses) |

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::adapters::connectwise::ConnectWiseSettings;
use crate::domain::PsaKind;
use crate::error::OfframpError;
use crate::http::HttpSettings;
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// Where settings are read from: a flat map of names to values.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    vars: HashMap<String, String>,
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

    fn parsed<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, OfframpError> {
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
    pub psa_http: HttpSettings,
    pub audit: AuditBackend,
    pub workflow_concurrency: usize,
    pub offboarded_statuses: Vec<String>,
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

    /// Read every setting; credentials from `source`, else from `secrets`.
    pub async fn load(source: &ConfigSource, secrets: &dyn SecretStore) -> Result<Self, OfframpError> {
        let psa: PsaKind =
            source.get("OFFRAMP_PSA").unwrap_or("connectwise").parse().map_err(OfframpError::configuration)?;
        let lookup = |key: &'static str| async move {
            match source.get(key) {
                Some(value) => Ok::<Option<SecretString>, OfframpError>(Some(SecretString::new(value))),
                None => Ok(secrets.get(key).await?),
            }
        };
        let required = |key: &'static str, value: Option<SecretString>| {
            value.ok_or_else(|| {
                OfframpError::configuration(format!(
                    "{key} is not set (environment, config file or OFFRAMP_SECRET_ID secret)"
                ))
            })
        };

        let timeout = source.parsed("OFFRAMP_HTTP_TIMEOUT_SECONDS", 60u64)?;
        let mut psa_http = HttpSettings {
            request_timeout: Duration::from_secs(timeout.max(1)),
            max_retries: source.parsed("OFFRAMP_HTTP_MAX_RETRIES", 8u32)?,
            ..HttpSettings::default()
        };

        let connectwise = match psa {
            PsaKind::ConnectWise => {
                let rate: f64 = source.parsed("CONNECTWISE_RATE_LIMIT", 10.0)?;
                psa_http.rate_limit_per_sec = (rate > 0.0).then_some(rate);
                // A burst of a few requests keeps concurrent workers busy without
                // exceeding the rate over any second.
                psa_http.burst = (rate / 10.0).ceil().clamp(1.0, 10.0) as u32;
                psa_http.max_concurrency = source.parsed("CONNECTWISE_MAX_CONCURRENCY", 8usize)?.max(1);
                Some(ConnectWiseSettings {
                    url: required("CONNECTWISE_URL", lookup("CONNECTWISE_URL").await?)?.expose().to_string(),
                    company_id: required("CONNECTWISE_COMPANY_ID", lookup("CONNECTWISE_COMPANY_ID").await?)?
                        .expose()
                        .to_string(),
                    public_key: required("CONNECTWISE_PUBLIC_KEY", lookup("CONNECTWISE_PUBLIC_KEY").await?)?,
                    private_key: required("CONNECTWISE_PRIVATE_KEY", lookup("CONNECTWISE_PRIVATE_KEY").await?)?,
                    client_id: required("CONNECTWISE_CLIENT_ID", lookup("CONNECTWISE_CLIENT_ID").await?)?,
                    inactive_status: source.get("OFFRAMP_CW_INACTIVE_STATUS").unwrap_or("Inactive").to_string(),
                })
            }
            other => {
                return Err(OfframpError::configuration(format!(
                    "OFFRAMP_PSA={other} is not supported yet; this build supports connectwise"
                )));
            }
        };

        Ok(Self {
            psa,
            connectwise,
            psa_http,
            audit: Self::audit_backend(source),
            workflow_concurrency: source.parsed("OFFRAMP_CONCURRENCY", 8usize)?.clamp(1, 64),
            offboarded_statuses: source
                .get("OFFRAMP_OFFBOARDED_STATUSES")
                .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
        })
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
