//! Notification to a chat channel through an incoming webhook (Microsoft Teams, Slack, or
//! anything that accepts their JSON).
//!
//! `POST {url}` with `{"text": "<subject>\n\n<text>", "subject", "recipients": [...]}`:
//! Teams and Slack incoming webhooks show `text` and ignore the other fields, which are
//! there for custom receivers. Any 2xx is "sent" (Slack and Teams answer 200, `ok` / `1`);
//! 401/403 → [`NotifyError::PermissionDenied`]; 429 after the retries, 5xx and transport
//! failures → [`NotifyError::Connection`]; any other status (404 for an unknown or deleted
//! hook, 400 for a payload the service refuses) → [`NotifyError::Rejected`].
//!
//! The URL is a credential (whoever has it can post to the channel): it is a
//! [`SecretString`], and its path, query and long segments are redacted from every error
//! message. Only its host is ever named. A post is not idempotent (two posts are two
//! messages), so it is retried only on 429.
//!
//! UNCONFIRMED (docs/vendors/microsoft-graph.md#incoming-webhooks-teams-slack): Teams
//! "Workflows" webhooks (Power Automate, replacing Office 365 connectors) expect an Adaptive
//! Card rather than `text`; pointing this notifier at one may be accepted with 202 and render
//! nothing useful. Use a classic incoming webhook or a flow that reads `text`.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;

use super::notify_graph::distinct_recipients;
use crate::domain::Notification;
use crate::error::NotifyError;
use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::Notifier;
use crate::secret::SecretString;

/// Path segments and query values at least this long are redacted from messages (the
/// tokens of Slack, Teams and Power Automate URLs are all longer).
const MIN_REDACTED_PART: usize = 8;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The incoming-webhook URL (a credential).
    pub url: SecretString,
}

/// Posts notifications to an incoming webhook.
pub struct WebhookNotifier {
    http: HttpClient,
    url: url::Url,
    /// The host, the only part of the URL that may be named in a message.
    host: String,
}

fn config_error(message: impl Into<String>) -> NotifyError {
    NotifyError::Configuration { message: message.into() }
}

/// Every part of the URL that may carry its secret.
fn secret_parts(url: &url::Url) -> Vec<String> {
    let mut parts = vec![url.as_str().to_string(), url.path().to_string()];
    if let Some(query) = url.query() {
        parts.push(query.to_string());
    }
    parts.extend(url.path_segments().into_iter().flatten().map(str::to_string));
    // Segments as the vendor may echo them, decoded.
    parts.extend(url.path_segments().into_iter().flatten().map(percent_decode).collect::<Vec<_>>());
    parts.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
    if !url.password().unwrap_or_default().is_empty() {
        parts.push(url.password().unwrap_or_default().to_string());
    }
    parts.retain(|part| part.chars().count() >= MIN_REDACTED_PART && part != "/");
    parts
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| segment.to_string())
}

impl WebhookNotifier {
    pub fn new(settings: WebhookSettings, http: HttpSettings) -> Result<Self, NotifyError> {
        let raw = settings.url.expose().trim();
        if raw.is_empty() {
            return Err(config_error("the webhook URL is not set"));
        }
        // The parse error names no part of the URL, so it can be shown.
        let url = url::Url::parse(raw).map_err(|e| config_error(format!("the webhook URL is not a valid URL: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_string();
        // The URL is the credential: it must not cross a network in clear text.
        if !crate::http::origin::transport_allowed(&url) {
            return Err(config_error(format!("the webhook URL (host {host}) must be an https URL")));
        }
        let redactor = Redactor::new(secret_parts(&url));
        let http = HttpClient::new("webhook", http, redactor).map_err(|e| config_error(e.to_string()))?;
        Ok(Self { http, url, host })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn transport_error(&self, error: HttpError) -> NotifyError {
        // The HTTP layer names the request path: scrub it.
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

    fn error_for(&self, response: &HttpResponse) -> NotifyError {
        let status = response.status;
        let message = self.http.redactor().scrub(&format!(
            "the webhook at {} answered HTTP {status}: {}",
            self.host,
            response.body_excerpt()
        ));
        match status {
            401 | 403 => NotifyError::PermissionDenied { message },
            429 | 500..=599 => NotifyError::Connection { message },
            _ => NotifyError::Rejected { status, message },
        }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn channel(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        // The channel has its own audience: the recipients are passed along for custom
        // receivers, never checked (a malformed one must not cost the channel its message).
        let recipients = distinct_recipients(&notification.to);
        let text = if notification.subject.trim().is_empty() {
            notification.text.clone()
        } else {
            format!("{}\n\n{}", notification.subject, notification.text)
        };
        let body = json!({ "text": text, "subject": notification.subject, "recipients": recipients });
        let request = HttpRequest::new(Method::POST, self.url.clone())
            .json_body(&body)
            // Two posts are two messages: retried only when throttled (429 = not processed).
            .retry(Retry::OnlyWhenThrottled);
        let response = self.http.send(request).await.map_err(|e| self.transport_error(e))?;
        if !response.is_success() {
            return Err(self.error_for(&response));
        }
        tracing::info!(channel = "webhook", host = %self.host, "notification sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(url: &str) -> Result<WebhookNotifier, NotifyError> {
        WebhookNotifier::new(WebhookSettings { url: url.into() }, HttpSettings::default())
    }

    #[test]
    fn every_part_that_may_carry_the_token_is_redacted() {
        let url = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/XXXXxxxxXXXXxxxxXXXX1234";
        let n = notifier(url).expect("valid");
        let text = format!(
            "POST {url} and /services/T0AAAAAAA/B0BBBBBBB/XXXXxxxxXXXXxxxxXXXX1234 and XXXXxxxxXXXXxxxxXXXX1234"
        );
        let scrubbed = n.http.redactor().scrub(&text);
        assert!(!scrubbed.contains("XXXXxxxxXXXXxxxxXXXX1234"), "{scrubbed}");
        assert!(!scrubbed.contains("B0BBBBBBB"), "{scrubbed}");

        let url = "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGNATURE-VALUE-42";
        let n = notifier(url).expect("valid");
        let scrubbed = n.http.redactor().scrub("sig=SIGNATURE-VALUE-42 failed");
        assert!(!scrubbed.contains("SIGNATURE-VALUE-42"), "{scrubbed}");
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let err = notifier("http://hooks.example/hooks/SECRET-TOKEN-123").err().expect("http");
        assert!(matches!(err, NotifyError::Configuration { .. }), "{err}");
        assert!(!err.to_string().contains("SECRET-TOKEN-123"), "{err}");
        assert!(notifier("http://127.0.0.1:9/hooks/x").is_ok());
        assert!(notifier("http://localhost:9/hooks/x").is_ok());
        let err = notifier("not a url SECRET-TOKEN-123").err().expect("invalid");
        assert!(!err.to_string().contains("SECRET-TOKEN-123"), "{err}");
        assert!(matches!(notifier(" "), Err(NotifyError::Configuration { .. })));
    }
}
