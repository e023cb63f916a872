//! Notification by e-mail through Microsoft Graph `sendMail`, from a service mailbox in
//! the MSP's own tenant.
//!
//! Facts (docs/vendors/microsoft-graph.md):
//! - docs/vendors/microsoft-graph.md#token: app-only token by client credentials,
//!   `POST {authority}/{tenant}/oauth2/v2.0/token` with a form body `client_id`,
//!   `client_secret`, `scope=https://graph.microsoft.com/.default`,
//!   `grant_type=client_credentials`; answered `{token_type, expires_in, access_token}`, no
//!   refresh token. The token is cached until 60 s before `expires_in`.
//! - docs/vendors/microsoft-graph.md#sendmail: `POST {graph}/users/{sender}/sendMail` with
//!   `{"message":{"subject","body":
//!   {"contentType":"Text","content"},"toRecipients":[{"emailAddress":{"address"}}]},
//!   "saveToSentItems":true}` → **202 Accepted** (queued, not delivered). Permission
//!   `Mail.Send` (application), ideally scoped to the sender by Exchange RBAC for Applications.
//! - docs/vendors/microsoft-graph.md#errors: errors are `{"error":{"code","message"}}`;
//!   docs/vendors/microsoft-graph.md#throttling: 429 with `Retry-After` (seconds), honoured by
//!   the HTTP layer.
//!
//! Mapping: 401/403 (`InvalidAuthenticationToken`, `ErrorAccessDenied`,
//! `Authorization_RequestDenied`) → [`NotifyError::PermissionDenied`]; other 4xx →
//! [`NotifyError::Rejected`]; 429 after the retries, 5xx and transport failures →
//! [`NotifyError::Connection`], except that a token request failing that way is
//! [`NotifyError::NotSent`] (no token, no message: a resume may send it). A 401 with a
//! cached token fetches a new token and sends once more (a revoked token or clock skew):
//! 401 means nothing was sent.
//!
//! `sendMail` is not idempotent (sending twice sends two mails), so it is retried only on 429.
//!
//! UNCONFIRMED, and how this client copes (docs/vendors/microsoft-graph.md#unconfirmed-points):
//! - The token endpoint's error shape: read as OAuth `{"error","error_description"}` (the
//!   description carries the `AADSTS…` code); `invalid_client`/`unauthorized_client` and any
//!   401/403 are a permission problem, `invalid_request`/`invalid_scope` (unknown tenant, bad
//!   scope) a configuration problem.
//! - Whether 202 always comes with an empty body: any 2xx counts as sent, the body is ignored.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::adapters::rotating_secret::{RotatingSecret, TokenRequestError};
use crate::domain::Notification;
use crate::error::NotifyError;
use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::{Notifier, SecretStore};
use crate::secret::SecretString;

/// Microsoft Entra ID's public cloud authority.
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0 in the public cloud.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
/// The one scope an app-only Graph token asks for (docs/vendors/microsoft-graph.md#token).
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Refresh a token this long before Entra says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct GraphMailSettings {
    /// Default [`DEFAULT_AUTHORITY_URL`] (national clouds have their own).
    pub authority_url: String,
    /// Default [`DEFAULT_GRAPH_URL`].
    pub graph_url: String,
    /// The MSP's own tenant (GUID or domain), where the service mailbox lives.
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// UPN or object id of the service mailbox that sends (in the MSP's own tenant).
    pub sender: String,
}

impl GraphMailSettings {
    /// Settings for the public cloud.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        sender: impl Into<String>,
    ) -> Self {
        Self {
            authority_url: DEFAULT_AUTHORITY_URL.to_string(),
            graph_url: DEFAULT_GRAPH_URL.to_string(),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            sender: sender.into(),
        }
    }
}

/// An Entra token and when to renew it (also cached per tenant and resource by
/// [`crate::adapters::graph`]).
pub(crate) struct Token {
    pub(crate) header: SecretString,
    pub(crate) valid_until: Instant,
}

/// Sends notifications as e-mail from the configured service mailbox.
pub struct GraphMailNotifier {
    http: HttpClient,
    client_id: String,
    /// Read through the secret store before each token request, when it rotates.
    client_secret: RotatingSecret,
    sender: String,
    token_url: url::Url,
    send_url: url::Url,
    token: Mutex<Option<Token>>,
}

fn config_error(message: impl Into<String>) -> NotifyError {
    NotifyError::Configuration { message: message.into() }
}

/// `base` (a URL setting) with `segments` appended, each percent-encoded as one segment.
fn url_with_segments(base: &str, name: &str, segments: &[&str]) -> Result<url::Url, NotifyError> {
    let mut url = crate::http::origin::secure_url(name, base).map_err(config_error)?;
    url.path_segments_mut()
        .map_err(|_| config_error(format!("{name} cannot have a path appended")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

impl GraphMailNotifier {
    pub fn new(settings: GraphMailSettings, http: HttpSettings) -> Result<Self, NotifyError> {
        for (name, value) in [
            ("tenant id", settings.tenant_id.as_str()),
            ("client id", settings.client_id.as_str()),
            ("client secret", settings.client_secret.expose()),
            ("sender mailbox", settings.sender.as_str()),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(format!("Graph mail: the {name} is not set")));
            }
        }
        let tenant = settings.tenant_id.trim();
        let sender = settings.sender.trim().to_string();
        let token_url =
            url_with_segments(&settings.authority_url, "the authority URL", &[tenant, "oauth2", "v2.0", "token"])?;
        let send_url = url_with_segments(&settings.graph_url, "the Graph URL", &["users", &sender, "sendMail"])?;
        let redactor = Redactor::new([settings.client_secret.expose().to_string()]);
        let http = HttpClient::new("graph-mail", http, redactor).map_err(|e| config_error(e.to_string()))?;
        Ok(Self {
            http,
            client_id: settings.client_id.trim().to_string(),
            client_secret: RotatingSecret::new("GRAPH_CLIENT_SECRET", settings.client_secret),
            sender,
            token_url,
            send_url,
            token: Mutex::new(None),
        })
    }

    /// Read the client secret through `store` before each token request, and once more
    /// after Entra refuses it: a rotated secret is picked up without a restart
    /// (docs/architecture.md#credentials).
    pub fn with_secret_store(self, store: std::sync::Arc<dyn SecretStore>) -> Self {
        self.client_secret.read_from(store);
        self
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn transport_error(&self, error: HttpError) -> NotifyError {
        let message = self.http.redactor().scrub(&error.to_string());
        match error {
            HttpError::Build { .. } | HttpError::InsecureUrl { .. } => NotifyError::Configuration { message },
            HttpError::Connection { .. }
            | HttpError::BudgetExhausted { .. }
            | HttpError::Redirected { .. }
            | HttpError::BodyTooLarge { .. }
            | HttpError::LimitStore { .. } => NotifyError::Connection { message },
        }
    }

    /// The `Authorization` header value, fetching a token when there is none or it is about to expire.
    async fn authorization(&self, force_new: bool) -> Result<SecretString, NotifyError> {
        let mut token = self.token.lock().await;
        if !force_new
            && let Some(current) = token.as_ref()
            && Instant::now() < current.valid_until
        {
            return Ok(current.header.clone());
        }
        let response =
            self.client_secret.send_token_request(&self.http, |secret| self.token_request(secret)).await.map_err(
                |error| match error {
                    TokenRequestError::Secret(e) => {
                        NotifyError::Configuration { message: format!("reading GRAPH_CLIENT_SECRET: {e}") }
                    }
                    TokenRequestError::Http(e) => self.transport_error(e),
                },
            )?;
        let fetched = token_answer(self.http.redactor(), &response, Instant::now())?;
        let header = fetched.header.clone();
        *token = Some(fetched);
        Ok(header)
    }

    fn token_request(&self, secret: &SecretString) -> HttpRequest {
        client_credentials_request(self.token_url.clone(), &self.client_id, secret, GRAPH_SCOPE)
    }
}

/// The client-credentials token request to Entra (docs/vendors/microsoft-graph.md#token),
/// for `scope` (one resource: Graph or Exchange Online).
pub(crate) fn client_credentials_request(
    token_url: url::Url,
    client_id: &str,
    secret: &SecretString,
    scope: &str,
) -> HttpRequest {
    HttpRequest::new(Method::POST, token_url)
        .form_body(&[
            ("client_id", client_id),
            ("client_secret", secret.expose()),
            ("scope", scope),
            ("grant_type", "client_credentials"),
        ])
        .header("accept", "application/json")
        // A token request creates nothing that matters: repeating it is harmless.
        .retry(Retry::Idempotent)
}

/// The token Entra answered (learned by the redactor: a refusal may echo it), valid until
/// `now` plus its lifetime less a margin; or why there is none.
pub(crate) fn token_answer(redactor: &Redactor, response: &HttpResponse, now: Instant) -> Result<Token, NotifyError> {
    if !response.is_success() {
        return Err(token_error(redactor, response));
    }
    let body = response
        .json()
        .map_err(|e| NotifyError::Connection { message: format!("Entra token response is not JSON: {e}") })?;
    let access =
        body.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| {
            NotifyError::Connection { message: "Entra token response has no access_token".to_string() }
        })?;
    // The token is a credential from now on: a refusal may echo it.
    redactor.learn(access);
    let kind = body.get("token_type").and_then(Value::as_str).unwrap_or("Bearer");
    // `expires_in` is a number in Entra v2.0; accept a string too (v1.0 sent strings).
    let lifetime = body
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
        .unwrap_or(3599);
    let lifetime = Duration::from_secs(lifetime);
    let header = SecretString::new(format!("{kind} {access}"));
    tracing::debug!(expires_in_s = lifetime.as_secs(), "Graph token fetched");
    Ok(Token { header, valid_until: crate::http::limits::token_renewal(now, lifetime, TOKEN_MARGIN) })
}

/// Why Entra refused a token request.
pub(crate) fn token_error(redactor: &Redactor, response: &HttpResponse) -> NotifyError {
    let body = response.json().unwrap_or(Value::Null);
    let code = body.get("error").and_then(Value::as_str).unwrap_or_default().to_string();
    let description = body
        .get("error_description")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| response.body_excerpt());
    let status = response.status;
    let message = redactor.scrub(&format!(
        "Entra refused the token request (HTTP {status}{}): {description}",
        if code.is_empty() { String::new() } else { format!(", {code}") }
    ));
    match (status, code.as_str()) {
        (401 | 403, _) | (_, "invalid_client" | "unauthorized_client") => NotifyError::PermissionDenied { message },
        (_, "invalid_request" | "invalid_scope" | "invalid_grant") => NotifyError::Configuration { message },
        (429 | 500..=599, _) => NotifyError::Connection { message },
        _ => NotifyError::Rejected { status, message },
    }
}

/// Why Graph refused to send as `sender`.
pub(crate) fn send_error(redactor: &Redactor, sender: &str, response: &HttpResponse) -> NotifyError {
    let body = response.json().unwrap_or(Value::Null);
    let error = &body["error"];
    let code = error.get("code").and_then(Value::as_str).unwrap_or_default();
    let text = error
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| response.body_excerpt());
    let status = response.status;
    let message = redactor.scrub(&format!(
        "Graph answered HTTP {status}{} to sendMail as {}: {text}",
        if code.is_empty() { String::new() } else { format!(" ({code})") },
        sender
    ));
    match status {
        401 | 403 => NotifyError::PermissionDenied { message },
        429 | 500..=599 => NotifyError::Connection { message },
        _ => NotifyError::Rejected { status, message },
    }
}

/// The recipients, trimmed, without blanks and duplicates (ignoring case; the first
/// spelling is kept).
pub(crate) fn distinct_recipients(to: &[String]) -> Vec<String> {
    let mut recipients: Vec<String> = Vec::with_capacity(to.len());
    for address in to.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        let folded = address.to_lowercase();
        if !recipients.iter().any(|seen| seen.to_lowercase() == folded) {
            recipients.push(address.to_string());
        }
    }
    recipients
}

/// [`distinct_recipients`], refusing (as a configuration error, before anything is sent) a
/// blank entry, one that does not look like an address, and an empty list.
pub(crate) fn checked_recipients(to: &[String]) -> Result<Vec<String>, NotifyError> {
    if let Some(bad) = to.iter().map(|a| a.trim()).find(|a| !looks_like_address(a)) {
        return Err(config_error(format!("'{bad}' is not an e-mail address")));
    }
    let recipients = distinct_recipients(to);
    if recipients.is_empty() {
        return Err(config_error("the notification has no recipient"));
    }
    Ok(recipients)
}

/// `local@domain.tld`: one `@`, something on each side, a dot inside the domain, and
/// nothing a mail header would read as a separator or a display name.
fn looks_like_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else { return false };
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '<' | '>' | ',' | ';' | '"');
    !local.is_empty()
        && !domain.is_empty()
        && !local.chars().any(forbidden)
        && !domain.chars().any(forbidden)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[async_trait]
impl Notifier for GraphMailNotifier {
    fn channel(&self) -> &'static str {
        "graph-mail"
    }

    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let recipients = checked_recipients(&notification.to)?;
        let body = json!({
            "message": {
                "subject": notification.subject,
                "body": { "contentType": "Text", "content": notification.text },
                "toRecipients": recipients
                    .iter()
                    .map(|address| json!({ "emailAddress": { "address": address } }))
                    .collect::<Vec<_>>(),
            },
            "saveToSentItems": true,
        });
        let mut force_new = false;
        loop {
            // No token, no message: a token request that failed leaves nothing sent, so a
            // resume may send it (unlike a sendMail whose answer was lost).
            let authorization = self.authorization(force_new).await.map_err(|error| match error {
                NotifyError::Connection { message } => NotifyError::NotSent { message },
                other => other,
            })?;
            let request = HttpRequest::new(Method::POST, self.send_url.clone())
                .sensitive_header("authorization", authorization.expose())
                .header("accept", "application/json")
                .json_body(&body)
                // Two sends are two mails: retried only when throttled (429 = not processed).
                .retry(Retry::OnlyWhenThrottled);
            let response = self.http.send(request).await.map_err(|e| self.transport_error(e))?;
            if response.status == 401 && !force_new {
                tracing::info!("Graph answered 401 to sendMail; fetching a new token once");
                force_new = true;
                continue;
            }
            if !response.is_success() {
                return Err(send_error(self.http.redactor(), &self.sender, &response));
            }
            tracing::info!(channel = "graph-mail", recipients = recipients.len(), "notification sent");
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recipients_are_trimmed_and_deduplicated_ignoring_case() {
        let checked = checked_recipients(&to(&[" Ann@Client.example ", "bob@client.example", "ann@client.EXAMPLE"]));
        assert_eq!(checked.expect("valid"), to(&["Ann@Client.example", "bob@client.example"]));
        let checked = checked_recipients(&to(&["Ärger@client.example", "ärger@client.example"]));
        assert_eq!(checked.expect("valid").len(), 1, "case-insensitive beyond ASCII");
    }

    #[test]
    fn malformed_or_missing_recipients_are_refused() {
        for bad in [
            "",
            "  ",
            "ann",
            "ann@",
            "@client.example",
            "ann@client",
            "Ann <ann@client.example>",
            "a@b@c.d",
            "ann@client..example",
            "ann@.client.example",
            "a b@client.example",
            "a@client.example;b@client.example",
        ] {
            let err = checked_recipients(&to(&["ok@client.example", bad])).expect_err(bad);
            assert!(matches!(err, NotifyError::Configuration { .. }), "{bad}: {err}");
        }
        assert!(matches!(checked_recipients(&[]), Err(NotifyError::Configuration { .. })));
    }

    #[test]
    fn urls_follow_the_fact_sheet() {
        let settings = GraphMailSettings::new("tenant-1", "client", "secret-value".into(), "offboarding@msp.example");
        let notifier = GraphMailNotifier::new(settings, HttpSettings::default()).expect("valid settings");
        assert_eq!(notifier.token_url.as_str(), "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token");
        assert_eq!(
            notifier.send_url.as_str(),
            "https://graph.microsoft.com/v1.0/users/offboarding@msp.example/sendMail"
        );
    }

    #[test]
    fn a_sender_cannot_change_the_path() {
        let settings = GraphMailSettings::new("t", "client", "secret-value".into(), "../me/x?y#z");
        let notifier = GraphMailNotifier::new(settings, HttpSettings::default()).expect("valid settings");
        assert_eq!(notifier.send_url.path(), "/v1.0/users/..%2Fme%2Fx%3Fy%23z/sendMail");
    }

    /// Found writing the `make fuzz` targets (reproduced by vendor_graph): `"expires_in":
    /// 18446744073709551615` panicked adding the lifetime to the clock, and a release build
    /// aborts on a panic.
    #[test]
    fn any_expires_in_is_read_without_panicking_and_capped() {
        for expires_in in ["18446744073709551615", "\"18446744073709551615\"", "0", "3599"] {
            let body = format!(r#"{{"access_token": "tok-123", "expires_in": {expires_in}}}"#);
            let response = HttpResponse { status: 200, headers: Default::default(), body: body.into_bytes() };
            let now = Instant::now();
            let token = token_answer(&Redactor::default(), &response, now).unwrap();
            assert!(token.valid_until <= now + crate::http::limits::MAX_TOKEN_LIFETIME, "{expires_in}");
        }
    }

    #[test]
    fn missing_settings_are_configuration_errors() {
        let settings = GraphMailSettings::new("t", "client", "".into(), "offboarding@msp.example");
        let err = GraphMailNotifier::new(settings, HttpSettings::default()).err().expect("no secret");
        assert!(matches!(err, NotifyError::Configuration { .. }), "{err}");
        let mut settings = GraphMailSettings::new("t", "client", "s3cret".into(), "offboarding@msp.example");
        settings.graph_url = "not a url".into();
        let err = GraphMailNotifier::new(settings, HttpSettings::default()).err().expect("bad URL");
        assert!(matches!(err, NotifyError::Configuration { .. }), "{err}");
    }
}
