//! Microsoft 365 settings of user offboarding: `MS_LOGIN_URL`, `GRAPH_URL`, `EXO_URL`,
//! `MS_CLIENT_ID`, `MS_CLIENT_SECRET`. The app's id and secret are read through
//! [`SettingsReader`] (the environment or config file, then the secret store: the secret
//! named by `OFFRAMP_SECRET_M365`, else `OFFRAMP_SECRET_ID`), so a deployment keeps both in
//! the Microsoft 365 secret only its user-offboarding function may read. The adapters'
//! `with_secret_store` re-reads the secret before each token request. The tenant is not a
//! setting: every call names it.

use crate::config::SettingsReader;
use crate::error::OfframpError;
use crate::ports::DirectoryError;
use crate::secret::SecretString;

pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
pub const DEFAULT_EXO_URL: &str = "https://outlook.office365.com";

/// The MSP's multi-tenant app and where Microsoft 365 answers.
#[derive(Debug, Clone)]
pub struct M365Settings {
    /// Entra ID's authority (`{login}/{tenant}/oauth2/v2.0/token`).
    pub login_url: String,
    /// Graph's root, without the version (`/v1.0` is appended).
    pub graph_url: String,
    /// Exchange Online's root (`/adminapi/beta/{tenant}/InvokeCommand` is appended).
    pub exo_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

impl M365Settings {
    /// Settings for the public cloud.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            login_url: DEFAULT_LOGIN_URL.into(),
            graph_url: DEFAULT_GRAPH_URL.into(),
            exo_url: DEFAULT_EXO_URL.into(),
            client_id: client_id.into(),
            client_secret,
        }
    }

    /// `None` without `MS_CLIENT_ID` (in the settings or the secret): Microsoft 365 is not configured.
    pub async fn load(reader: &SettingsReader<'_>) -> Result<Option<Self>, OfframpError> {
        let Some(client_id) = reader.optional("MS_CLIENT_ID").await? else { return Ok(None) };
        let client_id = client_id.expose().to_string();
        let client_secret = reader.required("MS_CLIENT_SECRET").await?;
        let url = |key: &str, default: &str| reader.source().get(key).unwrap_or(default).to_string();
        Ok(Some(Self {
            login_url: url("MS_LOGIN_URL", DEFAULT_LOGIN_URL),
            graph_url: url("GRAPH_URL", DEFAULT_GRAPH_URL),
            exo_url: url("EXO_URL", DEFAULT_EXO_URL),
            client_id,
            client_secret,
        }))
    }

    /// `raw` (the setting `name`) checked (https, or http to loopback) with `segments` appended.
    pub(crate) fn url(name: &str, raw: &str, segments: &[&str]) -> Result<url::Url, DirectoryError> {
        let configuration = |message: String| DirectoryError::Configuration { message };
        let mut url = crate::http::origin::secure_url(name, raw).map_err(configuration)?;
        url.path_segments_mut()
            .map_err(|_| configuration(format!("{name} cannot take a path")))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    pub(crate) fn check(&self) -> Result<(), DirectoryError> {
        if self.client_id.trim().is_empty() || self.client_secret.expose().trim().is_empty() {
            return Err(DirectoryError::Configuration {
                message: "MS_CLIENT_ID and MS_CLIENT_SECRET must be set".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::adapters::secrets_env::EnvSecretStore;
    use crate::config::ConfigSource;

    #[tokio::test]
    async fn settings_default_to_the_public_cloud_and_read_the_secret_from_the_store() {
        let secrets = EnvSecretStore::with_vars(HashMap::from([("MS_CLIENT_SECRET".into(), "s3cret".into())]));
        let source = ConfigSource::from_pairs([("MS_CLIENT_ID", "app-id")]);
        let loaded = M365Settings::load(&SettingsReader::new(&source, &secrets)).await.unwrap().expect("configured");
        assert_eq!(
            (loaded.login_url.as_str(), loaded.graph_url.as_str(), loaded.exo_url.as_str()),
            (DEFAULT_LOGIN_URL, DEFAULT_GRAPH_URL, DEFAULT_EXO_URL)
        );
        assert_eq!((loaded.client_id.as_str(), loaded.client_secret.expose()), ("app-id", "s3cret"));
        let unset = ConfigSource::from_pairs(Vec::<(&str, &str)>::new());
        assert!(M365Settings::load(&SettingsReader::new(&unset, &secrets)).await.unwrap().is_none());
        let source = ConfigSource::from_pairs([("MS_CLIENT_ID", "app-id"), ("GRAPH_URL", "http://graph.example")]);
        let loaded = M365Settings::load(&SettingsReader::new(&source, &secrets)).await.unwrap().unwrap();
        let error = M365Settings::url("GRAPH_URL", &loaded.graph_url, &["v1.0"]).unwrap_err();
        assert!(matches!(error, DirectoryError::Configuration { .. }), "plain http off loopback: {error}");
    }
}
