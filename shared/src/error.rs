//! Error codes and typed errors.
//!
//! [`ErrorCode`] serialises to the names the seed documents use in `errors[].code`
//! (`ClientNotFound`, `PSAConnectionError`, …). Each port has its own error type;
//! all of them convert into [`OfframpError`], which knows its [`ErrorCode`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `code` of an entry in a report's `errors[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    // Seed 000 names.
    ClientNotFound,
    ConfigNotFound,
    ConfigUpdateFailed,
    PermissionDenied,
    #[serde(rename = "PSAConnectionError")]
    PsaConnectionError,
    // Offramp's own, for what the seed does not name.
    /// The request itself is malformed; nothing was read or written.
    InvalidInput,
    /// A client name matched more than one company.
    ClientAmbiguous,
    /// `offboarded_statuses` was given and the client's status is not in it.
    ClientNotOffboarded,
    /// An approval carried a plan hash that no longer matches the current plan.
    PlanChanged,
    /// The operation to resume does not exist or cannot be resumed.
    OperationNotResumable,
    /// The audit trail could not be written or read; the run stops rather than act unrecorded.
    AuditStoreError,
    /// Offramp's own configuration (environment, secrets) is incomplete or wrong.
    ConfigurationError,
    /// The PSA's request budget (Autotask: per hour per database) would be exceeded:
    /// the run stopped cleanly and can be resumed once the budget has room again.
    RequestBudgetExhausted,
    /// The operation cannot be rolled back (unknown, a dry run, never started, itself a rollback).
    RollbackRefused,
    /// A contact could not be set inactive (the others went on).
    ContactUpdateFailed,
    /// A related record (ticket, configuration contact) could not be updated.
    RelatedUpdateFailed,
    /// The summary note or the new ticket could not be written.
    TicketUpdateFailed,
    /// The notification could not be sent.
    NotificationFailed,
    /// `confirmation: true` was not given: the plan was returned and nothing changed.
    ConfirmationRequired,
    /// The run would change more than the blast-radius guard allows without an override.
    BlastRadiusExceeded,
    // Seed 002 names.
    /// No IT Glue organization matches the identifier.
    OrganizationNotFound,
    /// Deletion blocked by dependents, policy, or a missing export.
    DeletionBlocked,
    /// Missing, malformed or ambiguous organization identifier.
    InvalidIdentifier,
    #[serde(rename = "ITGlueConnectionError")]
    ItGlueConnectionError,
    /// Another run holds the target (its lease); nothing was changed.
    OperationInProgress,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ClientNotFound => "ClientNotFound",
            ErrorCode::ConfigNotFound => "ConfigNotFound",
            ErrorCode::ConfigUpdateFailed => "ConfigUpdateFailed",
            ErrorCode::PermissionDenied => "PermissionDenied",
            ErrorCode::PsaConnectionError => "PSAConnectionError",
            ErrorCode::InvalidInput => "InvalidInput",
            ErrorCode::ClientAmbiguous => "ClientAmbiguous",
            ErrorCode::ClientNotOffboarded => "ClientNotOffboarded",
            ErrorCode::PlanChanged => "PlanChanged",
            ErrorCode::OperationNotResumable => "OperationNotResumable",
            ErrorCode::AuditStoreError => "AuditStoreError",
            ErrorCode::ConfigurationError => "ConfigurationError",
            ErrorCode::RequestBudgetExhausted => "RequestBudgetExhausted",
            ErrorCode::RollbackRefused => "RollbackRefused",
            ErrorCode::ContactUpdateFailed => "ContactUpdateFailed",
            ErrorCode::RelatedUpdateFailed => "RelatedUpdateFailed",
            ErrorCode::TicketUpdateFailed => "TicketUpdateFailed",
            ErrorCode::NotificationFailed => "NotificationFailed",
            ErrorCode::ConfirmationRequired => "ConfirmationRequired",
            ErrorCode::BlastRadiusExceeded => "BlastRadiusExceeded",
            ErrorCode::OrganizationNotFound => "OrganizationNotFound",
            ErrorCode::DeletionBlocked => "DeletionBlocked",
            ErrorCode::InvalidIdentifier => "InvalidIdentifier",
            ErrorCode::ItGlueConnectionError => "ITGlueConnectionError",
            ErrorCode::OperationInProgress => "OperationInProgress",
        }
    }

    /// Process exit code for the CLI: 0 is success, 1 a partial failure,
    /// 2 is reserved for usage errors (clap), and each class of refusal its own number.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::ConfigUpdateFailed
            | ErrorCode::ContactUpdateFailed
            | ErrorCode::RelatedUpdateFailed
            | ErrorCode::TicketUpdateFailed
            | ErrorCode::NotificationFailed => 1,
            ErrorCode::InvalidInput | ErrorCode::ConfigurationError | ErrorCode::InvalidIdentifier => 3,
            ErrorCode::ClientNotFound
            | ErrorCode::ConfigNotFound
            | ErrorCode::ClientAmbiguous
            | ErrorCode::OrganizationNotFound => 4,
            ErrorCode::ClientNotOffboarded
            | ErrorCode::PlanChanged
            | ErrorCode::OperationNotResumable
            | ErrorCode::RollbackRefused
            | ErrorCode::ConfirmationRequired
            | ErrorCode::BlastRadiusExceeded
            | ErrorCode::DeletionBlocked => 5,
            ErrorCode::PermissionDenied => 6,
            ErrorCode::PsaConnectionError | ErrorCode::ItGlueConnectionError => 7,
            ErrorCode::AuditStoreError => 8,
            ErrorCode::RequestBudgetExhausted => 9,
            ErrorCode::OperationInProgress => 10,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from a PSA adapter.
#[derive(Debug, thiserror::Error)]
pub enum PsaError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("permission denied by the PSA: {message}")]
    PermissionDenied { message: String },
    #[error("unable to reach the PSA: {message}")]
    Connection { message: String },
    #[error("the PSA rejected the request (HTTP {status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Rejected { status: u16, code: Option<String>, message: String },
    #[error("unexpected response from the PSA: {message}")]
    InvalidResponse { message: String },
    #[error("PSA configuration problem: {message}")]
    Configuration { message: String },
    /// An id that this PSA cannot have (ConnectWise ids are integers): nothing was sent.
    #[error("{message}")]
    InvalidId { message: String },
    /// The connection's request budget is spent; the request was not sent.
    #[error("{message}")]
    BudgetExhausted { message: String, resets_in: std::time::Duration },
}

impl PsaError {
    /// The usual mapping of a transport-level failure of the HTTP layer.
    pub fn from_http(error: crate::http::HttpError) -> Self {
        use crate::http::HttpError;
        match error {
            HttpError::Connection { .. } => PsaError::Connection { message: error.to_string() },
            HttpError::Build { .. } => PsaError::Configuration { message: error.to_string() },
            HttpError::BudgetExhausted { resets_in, .. } => {
                PsaError::BudgetExhausted { message: error.to_string(), resets_in }
            }
        }
    }
}

impl PsaError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PsaError::NotFound { .. } => ErrorCode::ClientNotFound,
            PsaError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            PsaError::Connection { .. } | PsaError::InvalidResponse { .. } => ErrorCode::PsaConnectionError,
            PsaError::Rejected { .. } => ErrorCode::ConfigUpdateFailed,
            PsaError::Configuration { .. } => ErrorCode::ConfigurationError,
            PsaError::InvalidId { .. } => ErrorCode::InvalidInput,
            PsaError::BudgetExhausted { .. } => ErrorCode::RequestBudgetExhausted,
        }
    }
}

/// Errors from an audit store adapter.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A conditional write found the record already there (append-only guard).
    #[error("audit record already exists: {key}")]
    AlreadyExists { key: String },
    #[error("audit store unavailable: {message}")]
    Unavailable { message: String },
    #[error("audit record is malformed: {message}")]
    Corrupt { message: String },
    /// Another run holds the target's lease: nothing was changed.
    #[error(
        "{target} is being changed by operation {operation_id} (its lease expires at {}); \
         wait for it to finish, or break the lease if that run is known to be dead",
        expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    LeaseHeld { target: String, operation_id: String, expires_at: chrono::DateTime<chrono::Utc> },
    /// The lease was taken over by another run (it had expired, or was broken): this run
    /// must stop changing the target.
    #[error("the lease on {target} was taken over by another run")]
    LeaseLost { target: String },
    /// Completing an idempotency key found it no longer claimed by this request (released,
    /// taken over after its in-progress time, or claimed with another payload).
    #[error("idempotency key {key} is no longer claimed by this request")]
    IdempotencyKeyLost { key: String },
}

/// Errors from a documentation platform adapter (IT Glue).
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("permission denied by IT Glue: {message}")]
    PermissionDenied { message: String },
    #[error("unable to reach IT Glue: {message}")]
    Connection { message: String },
    #[error("IT Glue refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("unexpected response from IT Glue: {message}")]
    InvalidResponse { message: String },
    #[error("IT Glue configuration problem: {message}")]
    Configuration { message: String },
    /// An id IT Glue cannot have (ids are positive integers): nothing was sent.
    #[error("{message}")]
    InvalidId { message: String },
}

/// Errors from a notifier adapter (Graph `sendMail`, incoming webhook).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier configuration problem: {message}")]
    Configuration { message: String },
    #[error("permission denied by the mail service: {message}")]
    PermissionDenied { message: String },
    #[error("unable to reach the notification service: {message}")]
    Connection { message: String },
    #[error("the notification service refused the message (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
}

/// Errors from a secret store adapter.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id} not found")]
    NotFound { id: String },
    #[error("secret {id} is not a JSON object of strings")]
    Malformed { id: String },
    #[error("secret store unavailable: {message}")]
    Unavailable { message: String },
}

/// The error a workflow or entry point ends with.
#[derive(Debug, thiserror::Error)]
pub enum OfframpError {
    #[error("{message}")]
    Coded { code: ErrorCode, message: String },
    #[error(transparent)]
    Psa(#[from] PsaError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl OfframpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        OfframpError::Coded { code, message: message.into() }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ConfigurationError, message)
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            OfframpError::Coded { code, .. } => *code,
            OfframpError::Psa(e) => e.code(),
            OfframpError::Audit(AuditError::LeaseHeld { .. } | AuditError::LeaseLost { .. }) => {
                ErrorCode::OperationInProgress
            }
            OfframpError::Audit(_) => ErrorCode::AuditStoreError,
            OfframpError::Secret(_) => ErrorCode::ConfigurationError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_to_seed_names() {
        assert_eq!(serde_json::to_string(&ErrorCode::PsaConnectionError).unwrap(), "\"PSAConnectionError\"");
        assert_eq!(serde_json::to_string(&ErrorCode::ClientNotFound).unwrap(), "\"ClientNotFound\"");
        for code in [ErrorCode::PsaConnectionError, ErrorCode::PlanChanged, ErrorCode::InvalidInput] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
        }
    }
}
