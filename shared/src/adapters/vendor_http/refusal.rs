//! What a vendor's refusal means: one table for every vendor.

use crate::error::{DocError, PsaError};
use crate::http::HttpError;

/// Whether a request reads or changes something; it decides what a 500 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// What a vendor's error body says, read by that vendor's own function (error shapes differ).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub message: String,
    /// The vendor's own error code, when its shape has one (ConnectWise `code`).
    pub code: Option<String>,
    /// The body says the credentials were refused, whatever the status: Autotask answers a
    /// bad user name or integration code with a 500.
    pub authentication: bool,
}

impl ErrorBody {
    pub fn message(message: impl Into<String>) -> Self {
        Self { message: message.into(), ..Self::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    PermissionDenied,
    /// The record asked for does not exist.
    NotFound,
    /// The vendor could not serve the request now (throttled or failing): worth trying later.
    Unavailable,
    /// The vendor processed the request and said no.
    Rejected,
}

/// A non-success answer, classified, with the vendor's message (already redacted).
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub kind: RefusalKind,
    pub status: u16,
    pub code: Option<String>,
    /// `{Vendor} answered HTTP {status} to {what}: {vendor message}`.
    pub message: String,
    /// What was asked for, e.g. `configuration 25001`.
    pub what: String,
}

/// The common rules, written once for every vendor.
///
/// - 401/403, or a body that says the credentials were refused: permission denied.
/// - 404: the record does not exist (list requests turn this into a rejection, see
///   [`super::VendorHttp::list`]: a missing list is not a missing target).
/// - 429 and 5xx on a read: the vendor cannot serve us now. The HTTP layer has already
///   retried 429 (and 502–504 for requests that are safe to repeat) before this is reached.
/// - **A 500 on a write is a rejection**, for every vendor: the server received the change
///   and refused to make it. Autotask reports validation failures (a wrong picklist value, a
///   locked record) as 500, and ConnectWise and HaloPSA answer 500 when a business rule
///   throws; repeating the same change would be refused the same way, so the item fails
///   with the vendor's message instead of the run being reported as a connection problem.
///   502–504 on a write are still "unavailable": a gateway answered, not the application.
/// - Any other status: the vendor rejected the request.
pub(crate) fn refusal_kind(status: u16, access: Access, authentication: bool) -> RefusalKind {
    match status {
        _ if authentication => RefusalKind::PermissionDenied,
        401 | 403 => RefusalKind::PermissionDenied,
        404 => RefusalKind::NotFound,
        429 => RefusalKind::Unavailable,
        500 if access == Access::Write => RefusalKind::Rejected,
        500..=599 => RefusalKind::Unavailable,
        _ => RefusalKind::Rejected,
    }
}

/// The error type of a vendor port (`PsaError`, `DocError`), as the toolkit builds it.
pub(crate) trait VendorError: Sized + Send + 'static {
    fn refused(refusal: Refusal) -> Self;
    /// A transport failure of the HTTP layer (after its retries), or a spent budget.
    fn transport(error: HttpError) -> Self;
    fn configuration(message: String) -> Self;
    fn invalid_response(message: String) -> Self;
    /// An id the vendor cannot have: nothing was sent.
    fn invalid_id(message: String) -> Self;
}

impl VendorError for PsaError {
    fn refused(refusal: Refusal) -> Self {
        let Refusal { kind, status, code, message, what } = refusal;
        match kind {
            RefusalKind::PermissionDenied => PsaError::PermissionDenied { message },
            RefusalKind::NotFound => PsaError::NotFound { what },
            RefusalKind::Unavailable => PsaError::Connection { message },
            RefusalKind::Rejected => PsaError::Rejected { status, code, message },
        }
    }

    fn transport(error: HttpError) -> Self {
        PsaError::from_http(error)
    }

    fn configuration(message: String) -> Self {
        PsaError::Configuration { message }
    }

    fn invalid_response(message: String) -> Self {
        PsaError::InvalidResponse { message }
    }

    fn invalid_id(message: String) -> Self {
        PsaError::InvalidId { message }
    }
}

impl VendorError for DocError {
    fn refused(refusal: Refusal) -> Self {
        let Refusal { kind, status, message, what, .. } = refusal;
        match kind {
            RefusalKind::PermissionDenied => DocError::PermissionDenied { message },
            RefusalKind::NotFound => DocError::NotFound { what },
            RefusalKind::Unavailable => DocError::Connection { message },
            RefusalKind::Rejected => DocError::Rejected { status, message },
        }
    }

    // A spent budget is its own error: the run stops cleanly (`RequestBudgetExhausted`),
    // it did not fail to reach IT Glue.
    fn transport(error: HttpError) -> Self {
        match error {
            HttpError::Build { .. } | HttpError::InsecureUrl { .. } => {
                DocError::Configuration { message: error.to_string() }
            }
            HttpError::Redirected { .. } | HttpError::BodyTooLarge { .. } => {
                DocError::InvalidResponse { message: error.to_string() }
            }
            HttpError::Connection { .. } | HttpError::LimitStore { .. } => {
                DocError::Connection { message: error.to_string() }
            }
            HttpError::BudgetExhausted { .. } => DocError::BudgetExhausted { message: error.to_string() },
        }
    }

    fn configuration(message: String) -> Self {
        DocError::Configuration { message }
    }

    fn invalid_response(message: String) -> Self {
        DocError::InvalidResponse { message }
    }

    fn invalid_id(message: String) -> Self {
        DocError::InvalidId { message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_for_every_vendor() {
        use Access::{Read, Write};
        use RefusalKind::*;
        assert_eq!(refusal_kind(401, Read, false), PermissionDenied);
        assert_eq!(refusal_kind(403, Write, false), PermissionDenied);
        assert_eq!(refusal_kind(500, Read, true), PermissionDenied, "a 500 that says the credentials were refused");
        assert_eq!(refusal_kind(404, Read, false), NotFound);
        assert_eq!(refusal_kind(429, Write, false), Unavailable);
        assert_eq!(refusal_kind(500, Read, false), Unavailable);
        assert_eq!(refusal_kind(500, Write, false), Rejected, "a 500 on a write is a rejection");
        assert_eq!(refusal_kind(503, Write, false), Unavailable);
        assert_eq!(refusal_kind(400, Read, false), Rejected);
        assert_eq!(refusal_kind(422, Write, false), Rejected);
    }
}
