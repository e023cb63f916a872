//! Audit trail records.
//!
//! One operation is one run of a workflow. Its records are append-only:
//! - [`OperationRecord`]: written once when the operation starts (who, what, why, the input);
//! - [`OperationEvent`]: lifecycle events (planned, started, completed, …), appended;
//! - [`ItemSnapshot`]: the state of every item the operation may touch, written before
//!   the first change (this is what a resume and a rollback rely on);
//! - [`ItemChange`]: one record per attempt to change an item, with before and after.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub operation_id: String,
    /// The workflow (serialised as its name, e.g. `deactivate-configs`).
    pub workflow: super::Workflow,
    /// PSA kind (`connectwise`, …).
    pub psa: String,
    pub client_id: String,
    pub client_name: String,
    pub initiated_by: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub dry_run: bool,
    #[serde(default)]
    pub plan_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The request as received (never holds credentials).
    pub input: serde_json::Value,
    /// The operation this one acts on (a rollback's original), if any.
    #[serde(default)]
    pub parent_operation_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationEventKind {
    /// A dry run's plan was recorded; nothing was changed.
    Planned,
    /// The plan waits for approval; nothing was changed.
    ApprovalRequired,
    /// Changes are about to be made (the snapshot is written).
    Started,
    /// An interrupted operation was continued.
    Resumed,
    /// The run finished (possibly with per-item failures, see the detail).
    Completed,
    /// The run stopped on an error before finishing.
    Failed,
    /// The run stopped at its invocation's deadline, cleanly; the next invocation resumes it
    /// (docs/architecture.md#runs-that-outlive-one-invocation). Not a failure.
    Paused,
    /// A real run was refused by a gate (blast radius, missing confirmation, blocked
    /// deletion): nothing was changed. Unlike a dry run's plan it is kept, not expired.
    Refused,
    /// An approval was asked of the approvers (docs/architecture.md#approvals).
    ApprovalRequested,
    /// An approver approved or rejected, or the approval expired: the one decision.
    ApprovalDecided,
    /// A click on an approval link was refused (expired, already decided, unknown token,
    /// approver is the requester): nothing was decided.
    ApprovalAttemptRefused,
}

impl OperationEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationEventKind::Planned => "planned",
            OperationEventKind::ApprovalRequired => "approval_required",
            OperationEventKind::Started => "started",
            OperationEventKind::Resumed => "resumed",
            OperationEventKind::Completed => "completed",
            OperationEventKind::Failed => "failed",
            OperationEventKind::Paused => "paused",
            OperationEventKind::Refused => "refused",
            OperationEventKind::ApprovalRequested => "approval_requested",
            OperationEventKind::ApprovalDecided => "approval_decided",
            OperationEventKind::ApprovalAttemptRefused => "approval_attempt_refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationEvent {
    pub operation_id: String,
    /// UUIDv7: unique and time-sortable, so events order by it.
    pub event_id: String,
    pub kind: OperationEventKind,
    pub at: DateTime<Utc>,
    /// Free-form detail: statistics on completion, the error on failure, the approver…
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl OperationEvent {
    pub fn new(operation_id: &str, kind: OperationEventKind, detail: serde_json::Value) -> Self {
        Self {
            operation_id: operation_id.to_string(),
            event_id: uuid::Uuid::now_v7().to_string(),
            kind,
            at: super::now(),
            detail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSnapshot {
    pub operation_id: String,
    /// `configuration`, `contact`, `ticket`, …
    pub item_type: super::ItemKind,
    pub item_id: String,
    pub item_name: String,
    /// The item's full state before the operation (e.g. a serialized [`super::Configuration`]).
    pub state: serde_json::Value,
    /// What the plan does with it: `deactivate`, `skip`, …
    pub planned_action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    /// Changed by this operation.
    Changed,
    /// Left alone (already in the target state, archived, excluded).
    Skipped,
    /// The change was attempted and failed.
    Failed,
    /// Written before the change is sent (write-ahead): the item is about to be changed.
    /// An item whose latest record is this was in flight when the run stopped.
    Intended,
    /// In flight when the run stopped, and found in the target state by the resume: this
    /// operation probably changed it, but no record proves it. Rollback leaves it alone
    /// unless the operator includes uncertain items.
    Uncertain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    pub operation_id: String,
    /// UUIDv7: each attempt is its own record, so a retried item appends, never overwrites.
    pub change_id: String,
    pub item_type: super::ItemKind,
    pub item_id: String,
    pub item_name: String,
    pub outcome: ItemOutcome,
    pub before: serde_json::Value,
    #[serde(default)]
    pub after: Option<serde_json::Value>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    pub at: DateTime<Utc>,
}

impl ItemChange {
    /// The write-ahead record of an item about to be changed ([`ItemOutcome::Intended`]).
    pub fn intent(operation_id: &str, item_type: super::ItemKind, item_id: &str, item_name: &str) -> Self {
        ItemChange {
            operation_id: operation_id.to_string(),
            change_id: uuid::Uuid::now_v7().to_string(),
            item_type,
            item_id: item_id.to_string(),
            item_name: item_name.to_string(),
            outcome: ItemOutcome::Intended,
            before: serde_json::Value::Null,
            after: None,
            error_code: None,
            error_message: None,
            at: super::now(),
        }
    }
}

/// An operation as read back from the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationDetail {
    pub operation: OperationRecord,
    /// Oldest first.
    pub events: Vec<OperationEvent>,
    pub snapshots: Vec<ItemSnapshot>,
    /// Oldest first.
    pub changes: Vec<ItemChange>,
}

impl OperationDetail {
    /// The latest lifecycle event, which says where the operation stands.
    pub fn last_event(&self) -> Option<&OperationEvent> {
        self.events.iter().max_by(|a, b| a.event_id.cmp(&b.event_id))
    }
}

/// One line of `audit list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationSummary {
    pub operation: OperationRecord,
    /// The latest event's kind, if any event was written.
    #[serde(default)]
    pub last_event: Option<OperationEventKind>,
    #[serde(default)]
    pub last_event_at: Option<DateTime<Utc>>,
}

/// Which operations `list_operations` returns: newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationFilter {
    /// Only operations on this PSA company id.
    pub client_id: Option<String>,
    /// Only operations on this PSA kind (with `client_id`, ids are per PSA).
    pub psa: Option<String>,
    pub limit: usize,
}
