//! Secrets from environment variables: the embedded default (laptop, CI).
//!
//! `get("CONNECTWISE_PRIVATE_KEY")` reads the variable of that name. An empty
//! value counts as absent, so `CONNECTWISE_PRIVATE_KEY=` in a `.env` file does
//! not pass an empty credential on to a PSA.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::error::SecretError;
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// Secrets from the process environment, or from a fixed map (tests).
#[derive(Default)]
pub struct EnvSecretStore {
    /// `None`: the process environment.
    vars: Option<HashMap<String, SecretString>>,
}

impl std::fmt::Debug for EnvSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the values are the secrets.
        let mut names: Vec<&String> = self.vars.iter().flat_map(|v| v.keys()).collect();
        names.sort();
        f.debug_struct("EnvSecretStore").field("process_env", &self.vars.is_none()).field("keys", &names).finish()
    }
}

impl EnvSecretStore {
    /// Read the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read these variables instead of the process environment (tests: changing
    /// the process environment is `unsafe` and races with other threads).
    pub fn with_vars(vars: HashMap<String, String>) -> Self {
        Self { vars: Some(vars.into_iter().map(|(k, v)| (k, SecretString::new(v))).collect()) }
    }
}

#[async_trait]
impl SecretStore for EnvSecretStore {
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let value = match &self.vars {
            Some(vars) => vars.get(key).cloned(),
            None => match std::env::var(key) {
                Ok(value) => Some(SecretString::new(value)),
                Err(std::env::VarError::NotPresent) => None,
                // The value is not printed: it may be most of a credential.
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError::Unavailable {
                        message: format!("environment variable {key} is not valid UTF-8"),
                    });
                }
            },
        };
        Ok(value.filter(|v| !v.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_map_and_treats_empty_as_absent() {
        let store = EnvSecretStore::with_vars(HashMap::from([
            ("CONNECTWISE_PRIVATE_KEY".to_string(), "s3cret-value".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]));
        let value = store.get("CONNECTWISE_PRIVATE_KEY").await.expect("get").expect("present");
        assert_eq!(value.expose(), "s3cret-value");
        assert_eq!(store.get("EMPTY").await.expect("get"), None);
        assert_eq!(store.get("MISSING").await.expect("get"), None);
        assert!(!format!("{store:?}").contains("s3cret-value"));
    }

    #[tokio::test]
    async fn reads_the_process_environment() {
        let store = EnvSecretStore::new();
        // Any process that can run tests has a PATH.
        let value = store.get("PATH").await.expect("get").expect("present");
        assert_eq!(Some(value.expose().to_string()), std::env::var("PATH").ok());
        assert_eq!(store.get("OFFRAMP_TEST_SURELY_UNSET_VARIABLE").await.expect("get"), None);
    }
}
