//! Why a delivery was refused, mapped onto the one status table (`crate::error`).
//!
//! The messages are for the operator's log and the PSA's delivery log: they say which check
//! failed, never a token, a signature, a signing key or a credential.

use crate::error::{AuditError, ErrorCode, OfframpError};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The delivery did not prove it came from the PSA: 401, and nothing was recorded.
    #[error("webhook not authenticated: {reason}")]
    Unauthenticated { reason: String },
    /// Authenticated, but not a delivery Offramp can read: 400.
    #[error("webhook body is malformed: {reason}")]
    Malformed { reason: String },
    /// Larger than the limit: 413, refused before the body was read as JSON.
    #[error("webhook body of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// ConnectWise's signing key could not be fetched (ConnectWise unreachable or failing):
    /// 502, so ConnectWise delivers again later; nothing was recorded.
    #[error("the ConnectWise signing key could not be fetched: {message}")]
    KeyUnavailable { message: String },
    /// The receiver is not configured for this PSA (no secret): 500.
    #[error("webhook receiver configuration problem: {message}")]
    Configuration { message: String },
    /// The delivery log could not be read or written: 503, so the PSA delivers again.
    #[error(transparent)]
    Store(#[from] AuditError),
}

impl WebhookError {
    pub(crate) fn unauthenticated(reason: impl Into<String>) -> Self {
        WebhookError::Unauthenticated { reason: reason.into() }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        WebhookError::Malformed { reason: reason.into() }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            WebhookError::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            WebhookError::Malformed { .. } => ErrorCode::InvalidInput,
            WebhookError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            WebhookError::KeyUnavailable { .. } => ErrorCode::PsaConnectionError,
            WebhookError::Configuration { .. } => ErrorCode::ConfigurationError,
            WebhookError::Store(_) => ErrorCode::AuditStoreError,
        }
    }

    /// The HTTP status the webhook answers with, from the one status table.
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }
}

impl From<WebhookError> for OfframpError {
    fn from(error: WebhookError) -> Self {
        OfframpError::new(error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        assert_eq!(WebhookError::unauthenticated("x").http_status(), 401);
        assert_eq!(WebhookError::malformed("x").http_status(), 400);
        assert_eq!(WebhookError::TooLarge { size: 2, limit: 1 }.http_status(), 413);
        assert_eq!(WebhookError::KeyUnavailable { message: "x".into() }.http_status(), 502);
        assert_eq!(WebhookError::Store(AuditError::Unavailable { message: "x".into() }).http_status(), 503);
    }
}
