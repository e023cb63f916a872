//! [`SecretVault`] on AWS Secrets Manager: where user offboarding keeps a password it set
//! (the leaver's new password, for whoever takes over the mailbox or the account), when
//! the engineer asks for it to be kept (issue 14).
//!
//! Each value is one secret named `{prefix}/{name}`, e.g.
//! `offramp/offboarded-users/{tenant}/{user}`: `CreateSecret` the first time, `PutSecretValue`
//! (a new version, the old one kept as `AWSPREVIOUS`) when the name exists. The secret's
//! value is the text itself, not a JSON object: it is read by a person, through the
//! console or `aws secretsmanager get-secret-value`.
//!
//! There is no vault on a laptop: a password is never written to a local file.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::error::SecretError;
use crate::ports::{SecretVault, StoredSecret, async_trait};
use crate::secret::SecretString;

/// The prefix of offboarded users' secrets unless configured otherwise.
pub const DEFAULT_VAULT_PREFIX: &str = "offramp/offboarded-users";

/// Secrets Manager's longest secret name.
const MAX_NAME_LENGTH: usize = 512;

/// Secrets Manager secrets under one name prefix.
#[derive(Debug, Clone)]
pub struct SecretsManagerVault {
    client: Client,
    prefix: String,
}

impl SecretsManagerVault {
    /// Secrets named `{prefix}/{name}`; `prefix` without its trailing `/` (see
    /// [`DEFAULT_VAULT_PREFIX`]). A prefix Secrets Manager would refuse is refused here,
    /// when the vault is built, rather than when the first password is stored.
    pub fn new(client: Client, prefix: impl Into<String>) -> Result<Self, SecretError> {
        let prefix = prefix.into().trim_end_matches('/').to_string();
        check_name(&prefix)?;
        Ok(Self { client, prefix })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full secret name of `name`, checked against Secrets Manager's rules.
    pub fn secret_name(&self, name: &str) -> Result<String, SecretError> {
        let full = format!("{}/{}", self.prefix, name.trim_start_matches('/'));
        check_name(&full)?;
        Ok(full)
    }

    /// A new version of an existing secret.
    async fn put_value(&self, name: &str, value: &SecretString) -> Result<StoredSecret, SecretError> {
        let out = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose())
            .send()
            .await
            .map_err(|e| unavailable("PutSecretValue", name, &DisplayErrorContext(&e).to_string(), value))?;
        Ok(StoredSecret {
            reference: out.arn().unwrap_or(name).to_string(),
            version_id: out.version_id().map(str::to_string),
        })
    }
}

/// Secrets Manager's rule for a secret name: 1 to 512 characters among ASCII letters,
/// digits and `/_+=.@-`, not ending in `-` and six characters (Secrets Manager adds such
/// a suffix to every ARN, so a lookup by partial ARN could find another secret).
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let refuse = |reason: &str| Err(SecretError::InvalidName { name: name.to_string(), reason: reason.to_string() });
    if name.is_empty() || name.len() > MAX_NAME_LENGTH {
        return refuse("a secret name has 1 to 512 characters");
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c))) {
        return refuse(&format!("'{bad}' is not allowed (ASCII letters, digits and /_+=.@- only)"));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 7 && bytes[bytes.len() - 7] == b'-' {
        return refuse("a secret name must not end with '-' and six characters (an ARN suffix)");
    }
    Ok(())
}

/// The SDK's error, with the value taken out should any part of it quote the request.
fn unavailable(call: &str, name: &str, detail: &str, value: &SecretString) -> SecretError {
    let detail = if value.is_empty() { detail.to_string() } else { detail.replace(value.expose(), "[REDACTED]") };
    SecretError::Unavailable { message: format!("{call} {name} failed: {detail}") }
}

#[async_trait]
impl SecretVault for SecretsManagerVault {
    async fn store(&self, name: &str, value: &SecretString, description: &str) -> Result<StoredSecret, SecretError> {
        let name = self.secret_name(name)?;
        let created =
            self.client.create_secret().name(&name).description(description).secret_string(value.expose()).send().await;
        match created {
            Ok(out) => Ok(StoredSecret {
                reference: out.arn().unwrap_or(&name).to_string(),
                version_id: out.version_id().map(str::to_string),
            }),
            // Stored before (the same leaver offboarded again): a new version, the
            // description left as it was.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
                self.put_value(&name, value).await
            }
            Err(e) => Err(unavailable("CreateSecret", &name, &DisplayErrorContext(&e).to_string(), value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_secrets_managers_rules() {
        for good in ["offramp/offboarded-users", "a", "t-1/lee.leaver@contoso.example", "x+y=z_w"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(513);
        for bad in ["", long.as_str(), "with space", "tenant#1", "ünïcode", "a/b\n", "user-abcdef", "user-a1b2c3"] {
            assert!(matches!(check_name(bad), Err(SecretError::InvalidName { .. })), "{bad:?}");
        }
        assert!(check_name("user-abcdefg").is_ok(), "seven characters after the hyphen");
    }
}
