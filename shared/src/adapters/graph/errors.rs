//! Graph's and Exchange Online's refusals as [`DirectoryError`]s, keeping the vendor's code
//! and message (docs/vendors/microsoft-graph.md#user-offboarding,
//! docs/vendors/exchange-online.md#errors).
//!
//! | Answer | Error |
//! |---|---|
//! | 404 (`Request_ResourceNotFound`, `ManagementObjectNotFoundException`, …) | `NotFound` |
//! | 400 "on-premises mastered Directory Sync objects" (Graph) or "out of the current user's write scope" / "synchronized from your on-premises organization" (Exchange) | `OnPremisesMastered` |
//! | 401, 403 (`Authorization_IdentityNotFound`, `Authorization_RequestDenied`, `InvalidAuthenticationToken`, …) | `PermissionDenied` |
//! | 429 after the HTTP layer's retries; our budget spent | `Throttled` |
//! | 5xx after the retries; transport failures | `Connection` |
//! | any other status (dynamic group, inherited licence, `MemberNotFoundException`, …) | `Refused` |
//!
//! UNCONFIRMED (both docs): the exact statuses and codes of most refusals; the synced-object
//! test reads the message as well as the code, so a changed code still maps.

use serde_json::Value;

use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::ports::DirectoryError;

/// Words of the refusals of an object mastered on-premises (Graph, then Exchange).
const ON_PREMISES_MARKERS: [&str; 3] =
    ["on-premises mastered", "out of the current user's write scope", "synchronized from your on-premises"];

/// A transport failure (after the retries) of `http`.
pub(crate) fn transport_error(http: &HttpClient, error: HttpError) -> DirectoryError {
    let message = http.redactor().scrub(&error.to_string());
    match error {
        HttpError::Build { .. } | HttpError::InsecureUrl { .. } => DirectoryError::Configuration { message },
        HttpError::BudgetExhausted { .. } => DirectoryError::Throttled { message },
        HttpError::Connection { .. }
        | HttpError::Redirected { .. }
        | HttpError::BodyTooLarge { .. }
        | HttpError::LimitStore { .. } => DirectoryError::Connection { message },
    }
}

/// `(code, message)` of an error body: `{"error": {"code", "message", "details":
/// [{"message"}]}}`; Exchange's detail (`Type|Category|Message`) is added when it says more.
pub(crate) fn code_and_message(body: &Value) -> (String, String) {
    let error = &body["error"];
    let code = error.get("code").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut message = error.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(detail) = error["details"].get(0).and_then(|d| d.get("message")).and_then(Value::as_str)
        && !message.contains(detail)
    {
        message = if message.is_empty() { detail.to_string() } else { format!("{message} ({detail})") };
    }
    (code, message)
}

/// The refusal `response` (not a 2xx) as an error; `what` names the call in the message.
pub(crate) fn refusal(http: &HttpClient, what: &str, response: &HttpResponse) -> DirectoryError {
    let body = response.json().unwrap_or(Value::Null);
    let (code, text) = code_and_message(&body);
    let text = if text.is_empty() { response.body_excerpt() } else { text };
    let message = http.redactor().scrub(&format!("{what}: {text}"));
    let code = http.redactor().scrub(&code);
    classify(response.status, code, message)
}

pub(crate) fn classify(status: u16, code: String, message: String) -> DirectoryError {
    let lower = message.to_lowercase();
    match status {
        404 => DirectoryError::NotFound { code, message },
        400 if ON_PREMISES_MARKERS.iter().any(|m| lower.contains(m)) => {
            DirectoryError::OnPremisesMastered { code, message }
        }
        401 | 403 => DirectoryError::PermissionDenied { code, message },
        429 => DirectoryError::Throttled { message: format!("{code}: {message}") },
        500..=599 => DirectoryError::Connection { message: format!("HTTP {status} {code}: {message}") },
        _ => DirectoryError::Refused { status, code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_refusals_map_to_their_kinds() {
        let synced = "Unable to update the specified properties for on-premises mastered Directory Sync objects";
        assert!(matches!(
            classify(400, "Request_BadRequest".into(), synced.into()),
            DirectoryError::OnPremisesMastered { .. }
        ));
        let scope = "failed because it's out of the current user's write scope";
        assert!(matches!(classify(400, "x".into(), scope.into()), DirectoryError::OnPremisesMastered { .. }));
        assert!(matches!(
            classify(404, "Request_ResourceNotFound".into(), "m".into()),
            DirectoryError::NotFound { .. }
        ));
        assert!(matches!(
            classify(401, "Authorization_IdentityNotFound".into(), "m".into()),
            DirectoryError::PermissionDenied { .. }
        ));
        assert!(matches!(
            classify(400, "Request_BadRequest".into(), "dynamic".into()),
            DirectoryError::Refused { status: 400, .. }
        ));
        assert!(matches!(classify(503, "x".into(), "m".into()), DirectoryError::Connection { .. }));
    }
}
