//! Ports of the approval flow (docs/architecture.md#approvals): where approval requests and
//! their tokens are kept, and where a decision is delivered.

use async_trait::async_trait;

use crate::domain::{ApprovalDecision, ApprovalRecord, ApprovalTokenRecord, DecisionWrite};
use crate::error::{AuditError, CallbackError};

/// Approval requests and the hashes of their tokens. Implemented beside the audit trail
/// (SQLite, DynamoDB: the same file or table) and in memory.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Store a new request with its tokens, all or nothing. `AuditError::AlreadyExists` if
    /// the id or a token hash is taken.
    async fn create_approval(&self, record: &ApprovalRecord, tokens: &[ApprovalTokenRecord]) -> Result<(), AuditError>;

    /// The token stored under this SHA-256, if any.
    async fn approval_token(&self, token_hash: &str) -> Result<Option<ApprovalTokenRecord>, AuditError>;

    /// The request (with its decision, once decided).
    async fn approval(&self, approval_id: &str) -> Result<Option<ApprovalRecord>, AuditError>;

    /// Write the approval's one decision with one conditional write: only when it has none
    /// yet and, unless `decision.verdict` is `Expired`, only while `expires_at` is after
    /// `decision.decided_at`. Of two concurrent calls, exactly one gets `Recorded`.
    async fn record_decision(
        &self,
        approval_id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DecisionWrite, AuditError>;
}

/// Where a decision goes: the state machine's waiting task (`SendTaskSuccess` /
/// `SendTaskFailure`) or the in-process chain.
#[async_trait]
pub trait TaskCallback: Send + Sync {
    /// The task may go on: `output` is its result (`{"approved": true, "approved_by", …}`).
    async fn succeed(&self, record: &ApprovalRecord, output: &serde_json::Value) -> Result<(), CallbackError>;

    /// The task fails with `error` (`ApprovalRejected`, `ApprovalExpired`) and `cause`.
    async fn fail(&self, record: &ApprovalRecord, error: &str, cause: &str) -> Result<(), CallbackError>;
}
