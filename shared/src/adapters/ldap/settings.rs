//! On-premises AD settings: `AD_LDAP_URL`, `AD_BIND_DN`, `AD_BIND_PASSWORD`, `AD_BASE_DN`,
//! `AD_CA_FILE`, `AD_DISABLED_OU`, `AD_TIMEOUT_SECONDS`, `AD_MAX_CONCURRENCY` (the table in
//! crate::config). The bind DN and password are read through [`SettingsReader`] (the
//! environment or config file, then the secret store), like every other credential.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::SettingsReader;
use crate::error::OfframpError;
use crate::ports::DirectoryError;
use crate::secret::SecretString;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdTransport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://`: the StartTLS extended operation before the bind.
    StartTls,
    /// `ldap://` with no TLS at all. No setting produces it: it exists so that the tests can
    /// show that a password is never sent over such a connection
    /// (docs/vendors/active-directory.md#password). The bind password would travel in clear.
    PlainTextInsecure,
}

impl AdTransport {
    pub fn encrypted(self) -> bool {
        !matches!(self, Self::PlainTextInsecure)
    }
}

/// One Active Directory domain, reached over LDAP with TLS.
#[derive(Debug, Clone)]
pub struct AdSettings {
    /// `ldaps://dc1.corp.example:636`, or `ldap://dc1.corp.example` (StartTLS).
    pub url: String,
    pub transport: AdTransport,
    /// The service account's DN (or `user@domain`): a simple bind.
    pub bind_dn: String,
    pub bind_password: SecretString,
    /// The domain's naming context (`DC=corp,DC=example`): where users are looked for, and
    /// what names the domain.
    pub base_dn: String,
    /// A PEM bundle trusted besides the system's roots (an enterprise CA).
    pub ca_file: Option<PathBuf>,
    /// Where offboarded accounts are moved (`OU=Disabled Users,DC=corp,DC=example`).
    pub disabled_ou: Option<String>,
    /// Every operation, and the connection (TCP, TLS) itself.
    pub timeout: Duration,
    /// Operations in flight at once on the one connection.
    pub max_concurrency: usize,
}

impl AdSettings {
    /// Settings for `url`; the transport follows its scheme.
    pub fn new(
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        bind_password: SecretString,
        base_dn: impl Into<String>,
    ) -> Result<Self, DirectoryError> {
        let url = url.into();
        Ok(Self {
            transport: transport_of(&url)?,
            url,
            bind_dn: bind_dn.into(),
            bind_password,
            base_dn: base_dn.into(),
            ca_file: None,
            disabled_ou: None,
            timeout: DEFAULT_TIMEOUT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        })
    }

    /// `None` without `AD_LDAP_URL`: no on-premises AD is configured.
    pub async fn load(reader: &SettingsReader<'_>) -> Result<Option<Self>, OfframpError> {
        let Some(url) = reader.source().get("AD_LDAP_URL") else { return Ok(None) };
        let configuration = |e: DirectoryError| OfframpError::configuration(e.to_string());
        let bind_dn = reader.required_text("AD_BIND_DN").await?;
        let bind_password = reader.required("AD_BIND_PASSWORD").await?;
        let base_dn = reader
            .source()
            .get("AD_BASE_DN")
            .ok_or_else(|| OfframpError::configuration("AD_BASE_DN is not set (AD_LDAP_URL is)"))?;
        let mut settings = Self::new(url, bind_dn, bind_password, base_dn).map_err(configuration)?;
        settings.ca_file = reader.source().get("AD_CA_FILE").map(PathBuf::from);
        settings.disabled_ou = reader.source().get("AD_DISABLED_OU").map(str::to_string);
        settings.timeout = Duration::from_secs(reader.parsed("AD_TIMEOUT_SECONDS", DEFAULT_TIMEOUT.as_secs())?);
        settings.max_concurrency = reader.parsed("AD_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY)?.max(1);
        settings.check().map_err(configuration)?;
        Ok(Some(settings))
    }

    pub(crate) fn check(&self) -> Result<(), DirectoryError> {
        let missing = |what: &str| DirectoryError::Configuration { message: format!("{what} must be set") };
        if self.bind_dn.trim().is_empty() {
            return Err(missing("AD_BIND_DN"));
        }
        if self.bind_password.expose().is_empty() {
            return Err(missing("AD_BIND_PASSWORD"));
        }
        if domain_of(&self.base_dn).is_empty() {
            return Err(DirectoryError::Configuration {
                message: format!("AD_BASE_DN '{}' names no domain (DC=corp,DC=example)", self.base_dn),
            });
        }
        if self.timeout.is_zero() {
            return Err(missing("a non-zero AD_TIMEOUT_SECONDS"));
        }
        Ok(())
    }
}

fn transport_of(url: &str) -> Result<AdTransport, DirectoryError> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("ldaps") => Ok(AdTransport::Ldaps),
        Some("ldap") => Ok(AdTransport::StartTls),
        _ => Err(DirectoryError::Configuration {
            message: format!("AD_LDAP_URL '{url}' is neither ldaps://host[:636] nor ldap://host (StartTLS)"),
        }),
    }
}

/// `DC=corp,DC=example` → `corp.example` (the `DC` components, in order).
pub fn domain_of(base_dn: &str) -> String {
    base_dn
        .split(',')
        .filter_map(|rdn| rdn.trim().split_once('='))
        .filter(|(attr, _)| attr.trim().eq_ignore_ascii_case("DC"))
        .map(|(_, value)| value.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::adapters::secrets_env::EnvSecretStore;
    use crate::config::ConfigSource;

    #[tokio::test]
    async fn settings_read_the_password_from_the_store_and_the_transport_from_the_url() {
        let secrets = EnvSecretStore::with_vars(HashMap::from([("AD_BIND_PASSWORD".into(), "s3cret".into())]));
        let source = ConfigSource::from_pairs([
            ("AD_LDAP_URL", "ldap://dc1.corp.example"),
            ("AD_BIND_DN", "CN=svc,OU=Service,DC=corp,DC=example"),
            ("AD_BASE_DN", "DC=Corp,DC=Example"),
            ("AD_DISABLED_OU", "OU=Disabled Users,DC=corp,DC=example"),
        ]);
        let loaded = AdSettings::load(&SettingsReader::new(&source, &secrets)).await.unwrap().expect("configured");
        assert_eq!(loaded.transport, AdTransport::StartTls);
        assert_eq!(loaded.bind_password.expose(), "s3cret");
        assert_eq!(domain_of(&loaded.base_dn), "corp.example");
        assert_eq!((loaded.timeout, loaded.max_concurrency), (DEFAULT_TIMEOUT, DEFAULT_MAX_CONCURRENCY));
        assert_eq!(loaded.disabled_ou.as_deref(), Some("OU=Disabled Users,DC=corp,DC=example"));

        let unset = ConfigSource::from_pairs(Vec::<(&str, &str)>::new());
        assert!(AdSettings::load(&SettingsReader::new(&unset, &secrets)).await.unwrap().is_none());

        let no_secrets = EnvSecretStore::with_vars(HashMap::new());
        let error = AdSettings::load(&SettingsReader::new(&source, &no_secrets)).await.unwrap_err();
        assert!(error.to_string().contains("AD_BIND_PASSWORD"), "{error}");

        let mut https = source.clone();
        https.set("AD_LDAP_URL", "https://dc1.corp.example");
        let error = AdSettings::load(&SettingsReader::new(&https, &secrets)).await.unwrap_err();
        assert!(error.to_string().contains("AD_LDAP_URL"), "{error}");
    }
}
