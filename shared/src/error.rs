//! Error codes and typed errors.
//!
//! [`ErrorCode`] serialises to the names the seed documents use in `errors[].code`
//! (`ClientNotFound`, `PSAConnectionError`, …). Each port has its own error type;
//! all of them convert into [`OfframpError`], which knows its [`ErrorCode`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares [`ErrorCode`] and its one status table: every code's seed name, HTTP status
/// (the answer of an API Gateway call and of every Lambda path), CLI exit code and meaning
/// in one row, so no code can exist without a status and no second table can drift.
macro_rules! error_codes {
    ($($variant:ident = $name:literal, http $http:literal, exit $exit:literal, $meaning:literal;)+) => {
        /// The `code` of an entry in a report's `errors[]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $(#[doc = $meaning] #[serde(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The name reports carry (the seed's, where the seed names it).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)+ }
            }

            /// What the code means, for people (`offramp --help`, the README's table).
            pub fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)+ }
            }

            /// HTTP status of an answer whose primary error is this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $http,)+ }
            }

            /// Process exit code of the CLI when this is the primary error.
            pub fn exit_code(self) -> i32 {
                match self { $(ErrorCode::$variant => $exit,)+ }
            }
        }
    };
}

// How the statuses are chosen:
// - 207: the request was processed and some items failed; the report says which. The exit
//   code (1) says the same. Retrying the whole request is not the fix; `--resume` is.
// - 4xx: Offramp refused the request and changed nothing (or stopped before changing more);
//   the caller must change something (the input, the approval, the wait) before asking again.
//   400 the request is malformed; 403 the vendor refused our credentials; 404 what the
//   request names does not exist; 409 it exists but its state forbids the run (not
//   offboarded, plan changed, over the guard, not confirmed, another run in progress,
//   ambiguous name); 429 the vendor's request budget is spent (with `Retry-After`).
// - 502: a vendor (PSA, IT Glue) could not be reached or did not accept a read; 503: the
//   audit trail is unavailable, so Offramp refuses to act unrecorded. Both may be retried.
// - 202: the run stopped at its invocation's deadline, cleanly: what it did is recorded and
//   the rest is to be continued with the report's `continuation` (not a failure).
// - 500: only Offramp's own side. `ConfigurationError` is a fault of the deployment (a
//   missing secret, a bad setting): an operator problem, not something the caller could fix
//   in the request (so not 4xx), and not a passing outage that a retry would cure (so not 503).
error_codes! {
    // Workflow 000 names (docs/workflows.md#000-error-codes).
    ClientNotFound = "ClientNotFound", http 404, exit 4,
        "No PSA company matches the client id or name.";
    ConfigNotFound = "ConfigNotFound", http 404, exit 4,
        "The client has no configurations to deactivate.";
    ConfigUpdateFailed = "ConfigUpdateFailed", http 207, exit 1,
        "A configuration could not be updated (the others went on).";
    PermissionDenied = "PermissionDenied", http 403, exit 6,
        "The vendor refused Offramp's credentials or their permissions.";
    PsaConnectionError = "PSAConnectionError", http 502, exit 7,
        "The PSA could not be reached, or refused or garbled a read.";
    // Offramp's own, for what the seeds do not name.
    InvalidInput = "InvalidInput", http 400, exit 3,
        "The request itself is malformed; nothing was read or written.";
    ClientAmbiguous = "ClientAmbiguous", http 409, exit 4,
        "A client name matched more than one company (the candidates are listed).";
    ClientNotOffboarded = "ClientNotOffboarded", http 409, exit 5,
        "The client does not meet the configured offboarded criteria (or none is configured), or not the request's offboarded_statuses; nothing was changed.";
    PlanChanged = "PlanChanged", http 409, exit 5,
        "The approved plan hash no longer matches the current plan.";
    OperationNotFound = "OperationNotFound", http 404, exit 4,
        "No operation with this id is in the audit trail.";
    OperationNotResumable = "OperationNotResumable", http 409, exit 5,
        "The operation cannot be resumed (finished, rolled back, a dry run, another workflow or PSA).";
    OperationInProgress = "OperationInProgress", http 409, exit 10,
        "Another run holds this target (or this operation) right now; nothing was changed.";
    AuditStoreError = "AuditStoreError", http 503, exit 8,
        "The audit trail could not be written or read; the run stops rather than act unrecorded.";
    ConfigurationError = "ConfigurationError", http 500, exit 3,
        "Offramp's own configuration (environment, secret, settings) is incomplete or wrong.";
    RequestBudgetExhausted = "RequestBudgetExhausted", http 429, exit 9,
        "The PSA's request budget is spent: the run stopped cleanly; resume it once there is room.";
    RollbackRefused = "RollbackRefused", http 409, exit 5,
        "The operation cannot be rolled back (a dry run, never started, a rollback, an IT Glue deletion, already rolled back).";
    ContactUpdateFailed = "ContactUpdateFailed", http 207, exit 1,
        "A contact could not be set inactive (the others went on).";
    RelatedUpdateFailed = "RelatedUpdateFailed", http 207, exit 1,
        "A related record (ticket, configuration contact) could not be updated.";
    TicketUpdateFailed = "TicketUpdateFailed", http 207, exit 1,
        "The summary note or the new ticket could not be written.";
    NotificationFailed = "NotificationFailed", http 207, exit 1,
        "The notification could not be sent.";
    ConfirmationRequired = "ConfirmationRequired", http 409, exit 5,
        "The run was not confirmed: the plan is the answer and nothing changed.";
    BlastRadiusExceeded = "BlastRadiusExceeded", http 409, exit 5,
        "The run would change more than the blast-radius guard allows without an override.";
    // Workflow 002 names (docs/workflows.md#002-error-codes).
    OrganizationNotFound = "OrganizationNotFound", http 404, exit 4,
        "No IT Glue organization matches the identifier.";
    DeletionBlocked = "DeletionBlocked", http 409, exit 5,
        "Deletion blocked by dependents, policy, a missing export, or IT Glue itself.";
    InvalidIdentifier = "InvalidIdentifier", http 400, exit 3,
        "Missing, malformed or ambiguous organization identifier.";
    ItGlueConnectionError = "ITGlueConnectionError", http 502, exit 7,
        "IT Glue could not be reached (or answered 429/5xx, or garbled an answer).";
    ItGlueRequestRejected = "ITGlueRequestRejected", http 502, exit 7,
        "IT Glue answered a read with a 4xx other than 401/403/404/429: it did not accept the request.";
    // User offboarding (docs/workflows.md#003-user-offboarding).
    UserNotFound = "UserNotFound", http 404, exit 4,
        "No user of the tenant matches the UPN or object id.";
    NotYetEffective = "NotYetEffective", http 409, exit 5,
        "effective_at is in the future: the plan may be made and approved now, applied from then on.";
    DirectoryConnectionError = "DirectoryConnectionError", http 502, exit 7,
        "Microsoft 365 (Entra ID, Exchange Online) could not be reached, throttled us out, or refused a read.";
    ActionFailed = "ActionFailed", http 207, exit 1,
        "An offboarding action failed (the others went on); its vendor code and message are in the report.";
    // PSA webhooks (docs/architecture.md#psa-webhooks).
    Unauthenticated = "Unauthenticated", http 401, exit 6,
        "The caller did not prove who it is (a webhook's URL token, signature or credentials; the API's IAM signature or token); nothing was recorded.";
    PayloadTooLarge = "PayloadTooLarge", http 413, exit 3,
        "A webhook body is larger than the limit; it was refused before it was read as JSON.";
    // The client-offboarding chain (docs/architecture.md#psa-webhooks).
    ChainStartFailed = "ChainStartFailed", http 502, exit 7,
        "The client-offboarding chain's execution could not be started (Step Functions unreachable or failing); nothing ran, retry.";
    // The HTTP API (docs/architecture.md#the-http-api).
    WorkflowNotFound = "WorkflowNotFound", http 404, exit 4,
        "No workflow (or chain) of that name can be started through the API; nothing was started.";
    WorkflowStartFailed = "WorkflowStartFailed", http 502, exit 7,
        "The workflow's function or the chain's state machine did not accept the run; nothing was started.";
    // Runs that outlive one invocation (docs/architecture.md#runs-that-outlive-one-invocation).
    DeadlineReached = "DeadlineReached", http 202, exit 11,
        "The invocation's deadline came first: the run stopped cleanly and its report's continuation says how to go on.";
    // Approvals (docs/architecture.md#approvals).
    ApprovalNotFound = "ApprovalNotFound", http 404, exit 4,
        "The approval link is unknown (mistyped, forged, or long expired and removed); nothing was decided.";
    ApprovalExpired = "ApprovalExpired", http 410, exit 5,
        "The approval expired before it was decided; nothing will be applied under it.";
    ApprovalAlreadyDecided = "ApprovalAlreadyDecided", http 409, exit 5,
        "The approval was already approved or rejected; this click changed nothing.";
    ApproverIsRequester = "ApproverIsRequester", http 403, exit 6,
        "The client's settings require an approver other than the requester; nothing was decided.";
    ApprovalRejected = "ApprovalRejected", http 409, exit 5,
        "An approver rejected the planned changes; nothing was applied.";
    ApprovalCallbackFailed = "ApprovalCallbackFailed", http 502, exit 7,
        "The decision was recorded but could not be delivered to the waiting state machine.";
    // The evidence report (docs/evidence.md).
    EvidenceStoreFailed = "EvidenceStoreFailed", http 207, exit 1,
        "The evidence report could not be stored or written; what the run did stands (render it again with offramp audit report).";
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
            HttpError::Build { .. } | HttpError::InsecureUrl { .. } => {
                PsaError::Configuration { message: error.to_string() }
            }
            HttpError::Redirected { .. } | HttpError::BodyTooLarge { .. } => {
                PsaError::InvalidResponse { message: error.to_string() }
            }
            HttpError::BudgetExhausted { resets_in, .. } => {
                PsaError::BudgetExhausted { message: error.to_string(), resets_in }
            }
            HttpError::LimitStore { .. } => PsaError::Connection { message: error.to_string() },
        }
    }
}

impl PsaError {
    /// The code of this error where it ends a run: a read (a company lookup, a listing) or
    /// anything else that is not one item's write. A read the PSA rejects is a failure to
    /// talk to the PSA, not a failed update: nothing was being updated.
    pub fn code(&self) -> ErrorCode {
        match self {
            PsaError::NotFound { .. } => ErrorCode::ClientNotFound,
            PsaError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            PsaError::Connection { .. } | PsaError::InvalidResponse { .. } | PsaError::Rejected { .. } => {
                ErrorCode::PsaConnectionError
            }
            PsaError::Configuration { .. } => ErrorCode::ConfigurationError,
            PsaError::InvalidId { .. } => ErrorCode::InvalidInput,
            PsaError::BudgetExhausted { .. } => ErrorCode::RequestBudgetExhausted,
        }
    }

    /// The code of one item's failed write (`update_failed`: `ConfigUpdateFailed`,
    /// `ContactUpdateFailed`, `RelatedUpdateFailed`…): the PSA rejecting the update, or not
    /// finding the item, is that item's failure; permission and transport problems keep
    /// their own codes, since every other item will meet them too.
    pub fn write_failure_code(&self, update_failed: ErrorCode) -> ErrorCode {
        match self {
            PsaError::PermissionDenied { .. } | PsaError::Connection { .. } | PsaError::InvalidResponse { .. } => {
                self.code()
            }
            PsaError::BudgetExhausted { .. } => ErrorCode::RequestBudgetExhausted,
            PsaError::NotFound { .. }
            | PsaError::Rejected { .. }
            | PsaError::Configuration { .. }
            | PsaError::InvalidId { .. } => update_failed,
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

/// Errors from a shared-limit store: defined beside the store's port in the HTTP layer.
pub use crate::http::shared_limits::SharedLimitError;

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
    /// The connection's five-minute request budget is spent (or IT Glue said its window is
    /// full) and waiting for room would take longer than allowed; the request was not sent.
    #[error("{message}")]
    BudgetExhausted { message: String },
}

/// Errors delivering an approval's decision (`ports::TaskCallback`).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Step Functions refused or could not be reached; the task may still be waiting.
    #[error("the decision could not be delivered to the state machine: {message}")]
    Delivery { message: String },
    /// The task no longer waits (timed out, or its execution ended): nothing to deliver to.
    #[error("the state machine's task no longer waits for this approval: {message}")]
    TaskGone { message: String },
}

/// Errors from a notifier adapter (Graph `sendMail`, incoming webhook).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier configuration problem: {message}")]
    Configuration { message: String },
    #[error("permission denied by the mail service: {message}")]
    PermissionDenied { message: String },
    /// The answer was lost or the service failed: the message may or may not have been sent.
    #[error("unable to reach the notification service: {message}")]
    Connection { message: String },
    /// The service could not be used before the message went out (its token could not be
    /// obtained): nothing was sent.
    #[error("the notification service was unavailable; nothing was sent: {message}")]
    NotSent { message: String },
    #[error("the notification service refused the message (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
}

/// Errors from an export archive (S3, a local directory): the export was not stored, so
/// the deletion does not go ahead (unless forced without export).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("export archive configuration problem: {message}")]
    Configuration { message: String },
    /// The store refused or could not be reached; nothing was stored (or what was is not
    /// known to be complete).
    #[error("the export could not be stored in {store}: {message}")]
    Store { store: String, message: String },
}

/// Errors from an evidence store (S3, a local directory): the report was not stored or
/// read. Nothing the run did is undone by it (docs/evidence.md).
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Not an Offramp operation id (a UUID): nothing was read or written.
    #[error("'{operation_id}' is not an Offramp operation id (a UUID)")]
    InvalidOperationId { operation_id: String },
    #[error("the evidence report could not be stored in or read from {store}: {message}")]
    Store { store: String, message: String },
}

impl EvidenceError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EvidenceError::InvalidOperationId { .. } => ErrorCode::InvalidInput,
            EvidenceError::Store { .. } => ErrorCode::EvidenceStoreFailed,
        }
    }
}

impl From<EvidenceError> for OfframpError {
    fn from(error: EvidenceError) -> Self {
        OfframpError::new(error.code(), error.to_string())
    }
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
    /// A name the secret store would refuse (checked before any request).
    #[error("invalid secret name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
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

/// How a finished request is summed up, whatever its report: the Lambda answer's HTTP
/// status and the CLI's exit code both come from here, through the one [`ErrorCode`] table.
pub trait Outcome {
    fn succeeded(&self) -> bool;
    /// The most significant error code of the report (per-item failures rank last).
    fn primary_code(&self) -> Option<ErrorCode>;

    /// 200 on success, else the primary error's status; a failure without a code is
    /// Offramp's own bug (500).
    fn http_status(&self) -> u16 {
        if self.succeeded() { 200 } else { self.primary_code().map_or(500, ErrorCode::http_status) }
    }

    /// 0 on success, else the primary error's exit code (1 when there is no code).
    fn exit_code(&self) -> i32 {
        if self.succeeded() { 0 } else { self.primary_code().map_or(1, ErrorCode::exit_code) }
    }

    /// How a trigger that is not API Gateway (a direct invoke, a Step Functions task, an
    /// EventBridge schedule, an asynchronous invoke) is answered: `None`, the report is
    /// the invocation's result; `Some(error_type)`, the invocation fails with a Lambda error
    /// of that `errorType` (so Lambda counts it in `Errors`, retries an asynchronous invoke,
    /// hands it to the `OnFailure` destination, and a state machine can `Retry` or `Catch`
    /// it by name). The one rule, for every workflow:
    /// - done, a dry run (`planned`), or a plan that waits for a person (`approval_required`,
    ///   `confirmation_required`): the report. A chain branches on its `status`;
    /// - a run stopped at its deadline (`DeadlineReached`): the report, whose
    ///   `continuation` the chain loops on;
    /// - a chain whose approval was rejected or expired (`ApprovalRejected`, `ApprovalExpired`):
    ///   the report (status `rejected`); a person decided, nothing failed;
    /// - anything else that did not succeed is an error named by the primary code: a
    ///   refusal (`InvalidInput`, `PlanChanged`, `BlastRadiusExceeded`, `DeletionBlocked`,
    ///   `NotYetEffective`, `OperationInProgress`, …), an outage, or a partial run
    ///   (`ConfigUpdateFailed`, `ActionFailed`, …);
    /// - a failure without a code is Offramp's own fault: [`UNCODED_FAILURE`].
    fn lambda_error_type(&self) -> Option<&'static str> {
        if self.succeeded() {
            return None;
        }
        match self.primary_code() {
            Some(code) if code.awaits_a_person() || code.is_continuation() || code.is_a_decision() => None,
            Some(code) => Some(code.as_str()),
            None => Some(UNCODED_FAILURE),
        }
    }
}

/// The `errorType` of a run that failed without a code (never expected: 500 in the table).
pub const UNCODED_FAILURE: &str = "OfframpError";

impl ErrorCode {
    /// A run stopped with this code did what was asked of it before a person decides:
    /// it made the plan, changed nothing, and waits for a confirmation bound to it. Not a
    /// failure for a chain (see [`Outcome::lambda_error_type`]), though an API caller still
    /// gets the table's 409 (the request as sent was not carried out).
    pub fn awaits_a_person(self) -> bool {
        matches!(self, ErrorCode::ConfirmationRequired)
    }

    /// A run stopped with this code ended on a person's decision about its approval (rejected,
    /// or left to expire): nothing was changed and nothing failed, so not a Lambda error (the
    /// state machine ends such an execution as succeeded, `NotApproved`; an API caller and the
    /// CLI still get the table's status and exit code).
    pub fn is_a_decision(self) -> bool {
        matches!(self, ErrorCode::ApprovalRejected | ErrorCode::ApprovalExpired)
    }

    /// A run stopped with this code is to be continued by the next invocation (its report
    /// carries a `continuation`): a normal answer to a chain, never a Lambda error.
    pub fn is_continuation(self) -> bool {
        matches!(self, ErrorCode::DeadlineReached)
    }
}

/// The seconds until a spent request budget has room again, read from the error message
/// the HTTP layer writes (`… room again in N s`): reports keep an error's code and message,
/// not the typed error, so this is how the wait reaches an API answer's `Retry-After`.
pub fn budget_resets_in_seconds(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("room again in ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
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

    /// The table is complete (the macro makes a code without a status impossible) and
    /// consistent: every status is one of the few the API uses, a 4xx is always a refusal
    /// (the CLI exits with a refusal's code, never "partial" nor "vendor down"), a 5xx is
    /// an outage or Offramp's own fault, and each exit code stands for one kind of answer.
    #[test]
    fn every_code_has_one_status_and_one_exit_code_that_agree() {
        let mut names = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(names.insert(code.as_str()), "{code} listed twice");
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(serde_json::json!(code.as_str())).unwrap(), code);
            assert!(!code.meaning().is_empty(), "{code}");
            let (status, exit) = (code.http_status(), code.exit_code());
            match status {
                202 => assert_eq!(code, ErrorCode::DeadlineReached, "202 is only for a run to be continued"),
                207 => assert_eq!(exit, 1, "{code}: a partial failure exits 1"),
                400 | 413 => assert_eq!(exit, 3, "{code}"),
                401 | 403 => assert_eq!(exit, 6, "{code}"),
                404 => assert_eq!(exit, 4, "{code}"),
                409 => assert!([4, 5, 10].contains(&exit), "{code}: a conflict exits as a refusal, not {exit}"),
                // An approval link past its expiry: gone for good, a refusal of its state.
                410 => assert_eq!(exit, 5, "{code}"),
                429 => assert_eq!(exit, 9, "{code}"),
                500 => assert_eq!(code, ErrorCode::ConfigurationError, "500 is only for Offramp's own side"),
                502 => assert_eq!(exit, 7, "{code}: a vendor outage"),
                503 => assert_eq!(exit, 8, "{code}: the audit trail"),
                other => panic!("{code}: status {other} is not one the API answers with"),
            }
            if (400..500).contains(&status) {
                assert!(![0, 1, 2, 7, 8].contains(&exit), "{code}: a 4xx must be a refusal, exit {exit}");
            }
            if exit == 5 {
                assert!(
                    [409, 410].contains(&status),
                    "{code}: every refusal of the run's state is a conflict (or gone)"
                );
            }
        }
        assert_eq!(ErrorCode::OperationInProgress.http_status(), 409);
        assert_eq!(ErrorCode::OperationInProgress.exit_code(), 10);
        assert_eq!(serde_json::to_value(ErrorCode::OperationInProgress).unwrap(), "OperationInProgress");
        // The codes the issue names explicitly.
        for code in [
            ErrorCode::BlastRadiusExceeded,
            ErrorCode::ClientAmbiguous,
            ErrorCode::ClientNotOffboarded,
            ErrorCode::PlanChanged,
            ErrorCode::ConfirmationRequired,
        ] {
            assert_eq!(code.http_status(), 409, "{code}");
        }
        assert_eq!(ErrorCode::ConfigNotFound.http_status(), 404);
        assert_eq!(ErrorCode::RequestBudgetExhausted.http_status(), 429);
    }

    /// A read the PSA rejects is a PSA problem, not a failed update; a write it rejects is
    /// the item's failure; credentials and transport keep their codes either way.
    #[test]
    fn rejected_reads_and_rejected_writes_get_different_codes() {
        let rejected = PsaError::Rejected { status: 422, code: None, message: "no".into() };
        assert_eq!(rejected.code(), ErrorCode::PsaConnectionError);
        assert_eq!(rejected.write_failure_code(ErrorCode::ContactUpdateFailed), ErrorCode::ContactUpdateFailed);
        assert_eq!(rejected.write_failure_code(ErrorCode::ConfigUpdateFailed), ErrorCode::ConfigUpdateFailed);
        let denied = PsaError::PermissionDenied { message: "403".into() };
        assert_eq!(denied.write_failure_code(ErrorCode::ConfigUpdateFailed), ErrorCode::PermissionDenied);
        let down = PsaError::Connection { message: "reset".into() };
        assert_eq!(down.write_failure_code(ErrorCode::RelatedUpdateFailed), ErrorCode::PsaConnectionError);
        assert_eq!(PsaError::NotFound { what: "company".into() }.code(), ErrorCode::ClientNotFound);
    }

    /// The wait the HTTP layer writes into a spent budget's message is read back for
    /// `Retry-After`, whatever wraps the message.
    #[test]
    fn the_budget_reset_is_read_from_the_message() {
        let spent = crate::http::HttpError::BudgetExhausted {
            vendor: "autotask",
            limit: 9000,
            window: std::time::Duration::from_secs(3600),
            resets_in: std::time::Duration::from_secs(1234),
        };
        let error = OfframpError::from(PsaError::from_http(spent));
        assert_eq!(error.code(), ErrorCode::RequestBudgetExhausted);
        let in_report = format!("{error}; the run stopped early and can be resumed with operation_id x");
        assert_eq!(budget_resets_in_seconds(&in_report), Some(1234));
        assert_eq!(budget_resets_in_seconds("no budget words here"), None);
    }

    /// The README's error table is this table: every code, with its meaning, HTTP status
    /// and exit code, so the documentation cannot drift from what the code answers.
    #[test]
    fn the_readme_lists_every_code_with_its_status_and_exit_code() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for &code in ErrorCode::ALL {
            let row =
                format!("| `{}` | {} | {} | {} |", code.as_str(), code.meaning(), code.http_status(), code.exit_code());
            assert!(readme.lines().any(|line| line == row), "README.md lacks the row {row}");
        }
    }

    struct Ended(bool, Option<ErrorCode>);

    impl Outcome for Ended {
        fn succeeded(&self) -> bool {
            self.0
        }
        fn primary_code(&self) -> Option<ErrorCode> {
            self.1
        }
    }

    /// The rule for triggers other than API Gateway: success, a plan waiting for a person
    /// and a run to be continued after its deadline are answers; every other code, refusals
    /// and partial runs included, is a Lambda error named by the code; the API status is
    /// untouched by it.
    #[test]
    fn only_success_a_plan_waiting_for_a_person_and_a_continuation_are_not_lambda_errors() {
        assert_eq!(Ended(true, None).lambda_error_type(), None);
        assert_eq!(Ended(false, None).lambda_error_type(), Some(UNCODED_FAILURE));
        for &code in ErrorCode::ALL {
            let ended = Ended(false, Some(code));
            // A person's decision on an approval (rejected, expired) is an answer too.
            let answer =
                [ErrorCode::ConfirmationRequired, ErrorCode::DeadlineReached].contains(&code) || code.is_a_decision();
            let expected = if answer { None } else { Some(code.as_str()) };
            assert_eq!(ended.lambda_error_type(), expected, "{code}");
            assert_eq!(ended.http_status(), code.http_status(), "{code}");
        }
        for code in [
            ErrorCode::PsaConnectionError,
            ErrorCode::PlanChanged,
            ErrorCode::ActionFailed,
            ErrorCode::ConfigUpdateFailed,
            ErrorCode::BlastRadiusExceeded,
            ErrorCode::DeletionBlocked,
            ErrorCode::InvalidInput,
        ] {
            assert_eq!(Ended(false, Some(code)).lambda_error_type(), Some(code.as_str()), "{code}");
        }
        assert_eq!(Ended(false, Some(ErrorCode::PsaConnectionError)).lambda_error_type(), Some("PSAConnectionError"));
    }
}
