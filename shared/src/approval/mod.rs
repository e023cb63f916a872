//! Approvals (docs/architecture.md#approvals): a person approves the dry-run plans of a
//! client offboarding before anything is changed.
//!
//! - [`request_approval`] (`request.rs`) stores the request with its plans and one random
//!   token per approver (only the token's SHA-256 is stored), e-mails each approver their own
//!   link, notes on the PSA ticket that approval was asked (never a token), and records it
//!   against the parent operation.
//! - [`decide`] (`decide.rs`) takes a click: the token is the credential. One conditional
//!   write makes the approval's one decision, bound to the stored plan hashes; the decision
//!   goes to the waiting task ([`crate::ports::TaskCallback`]). Every refused click is
//!   audited and changes nothing.
//! - [`page`] serves both as HTML (`GET`/`POST /approvals/{token}`), for the `approval`
//!   Lambda and for tests on loopback.

mod decide;
pub mod page;
mod request;
pub mod tokens;

use std::time::Duration;

pub use decide::{Decision, DecisionRequest, decide, view};
pub use request::request_approval;

use crate::domain::{ApprovalCallback, ApprovalClient, ApprovalDecision, PlannedStep};
use crate::error::{AuditError, CallbackError, ErrorCode, OfframpError};
use crate::ports::{ApprovalStore, AuditStore, Notifier, Psa, SettingsStore, TaskCallback};

/// What the lead's chain asks for (the contract with `shared/src/chain/`).
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    pub parent_operation_id: String,
    /// PSA kind of the client (`connectwise`, …): whose settings name the approvers.
    pub psa: String,
    pub client: ApprovalClient,
    pub requested_by: String,
    pub reason: Option<String>,
    pub plans: Vec<PlannedStep>,
    /// Who may approve; empty: the client's `approvers` setting, else the MSP default.
    pub approvers: Vec<String>,
    pub expires_in: Duration,
    pub callback: ApprovalCallback,
    /// The client's offboarding ticket, for the "approval requested" note.
    pub ticket_id: Option<String>,
}

/// What [`request_approval`] answers. The links carry the tokens: they are for the
/// approvers (sent by e-mail), never for a log or a report.
#[derive(Clone)]
pub struct IssuedApproval {
    pub approval_id: String,
    /// (recipient, link) per approver.
    pub links: Vec<(String, String)>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Recipients whose e-mail could not be sent, with why.
    pub undelivered: Vec<(String, String)>,
}

impl std::fmt::Debug for IssuedApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let recipients: Vec<&str> = self.links.iter().map(|(r, _)| r.as_str()).collect();
        f.debug_struct("IssuedApproval")
            .field("approval_id", &self.approval_id)
            .field("recipients", &recipients)
            .field("expires_at", &self.expires_at)
            .field("undelivered", &self.undelivered)
            .finish_non_exhaustive()
    }
}

/// Deployment-wide approval settings (environment, docs/architecture.md#approvals).
#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    /// `OFFRAMP_APPROVAL_BASE_URL`: links are `{base}/approvals/{token}`.
    pub base_url: String,
    /// `OFFRAMP_APPROVERS`: the MSP's approvers when a client names none.
    pub default_approvers: Vec<String>,
    /// `OFFRAMP_APPROVER_MUST_DIFFER`: the default of the client setting
    /// `approval_approver_must_differ`.
    pub approver_must_differ: bool,
}

impl ApprovalConfig {
    /// From `OFFRAMP_APPROVAL_BASE_URL`, `OFFRAMP_APPROVERS`, `OFFRAMP_APPROVER_MUST_DIFFER`.
    pub fn from_source(source: &crate::config::ConfigSource) -> Result<Self, OfframpError> {
        let base_url = source.get("OFFRAMP_APPROVAL_BASE_URL").unwrap_or_default().trim_end_matches('/').to_string();
        let default_approvers = source
            .get("OFFRAMP_APPROVERS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        let approver_must_differ = source.parsed("OFFRAMP_APPROVER_MUST_DIFFER", false)?;
        Ok(Self { base_url, default_approvers, approver_must_differ })
    }
}

/// Everything the approval flow uses.
#[derive(Clone, Copy)]
pub struct ApprovalDeps<'a> {
    pub store: &'a dyn ApprovalStore,
    pub audit: &'a dyn AuditStore,
    pub settings: &'a dyn SettingsStore,
    /// `None`: no e-mail goes out (the links are in [`IssuedApproval`] only).
    pub notifier: Option<&'a dyn Notifier>,
    /// `None`: no ticket note.
    pub psa: Option<&'a dyn Psa>,
    pub callback: &'a dyn TaskCallback,
    pub config: &'a ApprovalConfig,
}

/// Why an approval step did nothing. Each maps onto the one status table.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("{message}")]
    InvalidInput { message: String },
    #[error("this approval link is not known: it may be mistyped or forged")]
    NotFound,
    #[error("this approval expired at {expires_at}; nothing was decided")]
    Expired { expires_at: chrono::DateTime<chrono::Utc> },
    #[error("this approval was already {} by {} at {}", decision.verdict.as_str(), decision.approved_by(), crate::domain::iso8601(decision.decided_at))]
    AlreadyDecided { decision: ApprovalDecision },
    #[error("the approver must be someone other than the requester ({requested_by}); nothing was decided")]
    ApproverIsRequester { requested_by: String },
    #[error(transparent)]
    Store(#[from] AuditError),
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error(transparent)]
    Other(#[from] OfframpError),
}

impl ApprovalError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApprovalError::InvalidInput { .. } => ErrorCode::InvalidInput,
            ApprovalError::NotFound => ErrorCode::ApprovalNotFound,
            ApprovalError::Expired { .. } => ErrorCode::ApprovalExpired,
            ApprovalError::AlreadyDecided { .. } => ErrorCode::ApprovalAlreadyDecided,
            ApprovalError::ApproverIsRequester { .. } => ErrorCode::ApproverIsRequester,
            ApprovalError::Store(_) => ErrorCode::AuditStoreError,
            ApprovalError::Callback(_) => ErrorCode::ApprovalCallbackFailed,
            ApprovalError::Other(e) => e.code(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApprovalError::InvalidInput { message: message.into() }
    }
}

/// The Step Functions task error names a rejection and an expiry end the wait with.
pub const TASK_ERROR_REJECTED: &str = "ApprovalRejected";
pub const TASK_ERROR_EXPIRED: &str = "ApprovalExpired";
