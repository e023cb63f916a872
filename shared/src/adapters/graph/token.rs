//! Entra client-credentials tokens of customer tenants, one per (tenant, resource)
//! (docs/vendors/microsoft-graph.md#customer-tenants): a Graph token is never sent to
//! Exchange Online, nor a token of tenant A for tenant B. The request and the reading of
//! the answer are [`crate::adapters::notify_graph`]'s, written once.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::adapters::notify_graph::{Token, client_credentials_request, token_answer, token_error};
use crate::adapters::rotating_secret::{RotatingSecret, TokenRequestError};
use crate::error::NotifyError;
use crate::http::{HttpClient, HttpRequest, HttpResponse};
use crate::ports::{DirectoryError, SecretStore};
use crate::secret::SecretString;

use super::errors::transport_error;

/// The resource a token is for: its `scope` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Resource {
    Graph,
    Exchange,
}

impl Resource {
    fn scope(self) -> &'static str {
        match self {
            Resource::Graph => "https://graph.microsoft.com/.default",
            Resource::Exchange => "https://outlook.office365.com/.default",
        }
    }
}

/// The multi-tenant app's credentials and the tokens it holds.
pub(crate) struct TenantTokens {
    login_url: url::Url,
    client_id: String,
    /// Read through the secret store before each token request, when it rotates.
    client_secret: RotatingSecret,
    /// The value at start, for the redactors of the clients.
    secret_at_start: SecretString,
    tokens: Mutex<HashMap<(String, Resource), Token>>,
}

impl TenantTokens {
    pub fn new(login_url: url::Url, client_id: String, client_secret: SecretString) -> Self {
        let rotating = RotatingSecret::new("MS_CLIENT_SECRET", client_secret.clone());
        Self {
            login_url,
            client_id,
            client_secret: rotating,
            secret_at_start: client_secret,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn client_secret(&self) -> &SecretString {
        &self.secret_at_start
    }

    /// Read the client secret through `store` before each token request, and once more
    /// after Entra refuses it (docs/architecture.md#credentials).
    pub fn read_secret_from(&self, store: std::sync::Arc<dyn SecretStore>) {
        self.client_secret.read_from(store);
    }

    /// The `Authorization` header for `tenant` and `resource`, fetching a token when there
    /// is none, it is about to expire, or `force_new` (after a 401). The token goes
    /// through `http`, whose redactor learns it.
    pub async fn authorization(
        &self,
        http: &HttpClient,
        tenant: &str,
        resource: Resource,
        force_new: bool,
    ) -> Result<SecretString, DirectoryError> {
        let key = (tenant.to_ascii_lowercase(), resource);
        let mut tokens = self.tokens.lock().await;
        if !force_new
            && let Some(current) = tokens.get(&key)
            && Instant::now() < current.valid_until
        {
            return Ok(current.header.clone());
        }
        let mut url = self.login_url.clone();
        url.path_segments_mut()
            .map_err(|_| DirectoryError::Configuration { message: "MS_LOGIN_URL cannot take a path".into() })?
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        let request_for =
            |secret: &SecretString| client_credentials_request(url.clone(), &self.client_id, secret, resource.scope());
        let response = self.client_secret.send_token_request(http, request_for).await.map_err(|error| match error {
            TokenRequestError::Secret(e) => {
                DirectoryError::Configuration { message: format!("reading MS_CLIENT_SECRET: {e}") }
            }
            TokenRequestError::Http(e) => transport_error(http, e),
        })?;
        let token =
            token_answer(http.redactor(), &response, Instant::now()).map_err(|e| refused_token(http, &response, e))?;
        let header = token.header.clone();
        tokens.insert(key, token);
        Ok(header)
    }
}

impl TenantTokens {
    /// Sends `request` with the token of `tenant` for `resource`; a 401 fetches a new token
    /// and sends once more (a revoked token, clock skew). Graph and Exchange alike.
    pub async fn send(
        &self,
        http: &HttpClient,
        tenant: &str,
        resource: Resource,
        request: HttpRequest,
    ) -> Result<HttpResponse, DirectoryError> {
        let mut force_new = false;
        loop {
            let authorization = self.authorization(http, tenant, resource, force_new).await?;
            let attempt = request.clone().sensitive_header("authorization", authorization.expose());
            let response = http.send(attempt).await.map_err(|e| transport_error(http, e))?;
            if response.status == 401 && !force_new {
                force_new = true;
                continue;
            }
            return Ok(response);
        }
    }
}

/// Entra's refusal (`{"error", "error_description"}`) as a [`DirectoryError`], keeping its code.
fn refused_token(http: &HttpClient, response: &HttpResponse, error: NotifyError) -> DirectoryError {
    let error = if response.is_success() { error } else { token_error(http.redactor(), response) };
    let body = response.json().unwrap_or(Value::Null);
    let code = body.get("error").and_then(Value::as_str).unwrap_or_default().to_string();
    match error {
        NotifyError::PermissionDenied { message } => DirectoryError::PermissionDenied { code, message },
        NotifyError::Configuration { message } => DirectoryError::Configuration { message },
        NotifyError::Rejected { status, message } => DirectoryError::Refused { status, code, message },
        NotifyError::Connection { message } if response.is_success() => DirectoryError::InvalidResponse { message },
        other => DirectoryError::Connection { message: other.to_string() },
    }
}
