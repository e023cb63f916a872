//! Approval records (docs/architecture.md#approvals): one request for a person to approve the
//! plans of a client offboarding, the tokens that let each approver decide, and the decision.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The client an approval is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalClient {
    pub id: String,
    pub name: String,
}

/// One step's dry-run plan, as the approver sees it and as the decision binds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// `offboard_users`, `deactivate_contacts`, `deactivate_configs`, `delete_itglue_org`.
    pub step: String,
    /// The system the step changes (`connectwise`, `microsoft365`, `itglue`, …).
    pub system: String,
    pub plan_hash: String,
    /// Counts and item lists from the dry-run report: `{"counts": {name: n}, "items": {name: [text]}}`.
    pub summary: serde_json::Value,
}

/// Where a decision goes: the waiting Step Functions task, or the process that asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalCallback {
    /// `SendTaskSuccess` / `SendTaskFailure` with this task token.
    StepFunctions { task_token: String },
    /// The in-process chain (CLI, tests) reads the decision itself.
    InProcess,
}

/// Approve or reject; `Expired` is written when a click comes after the expiry, so the
/// waiting task is told once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalVerdict {
    Approved,
    Rejected,
    Expired,
}

impl ApprovalVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalVerdict::Approved => "approved",
            ApprovalVerdict::Rejected => "rejected",
            ApprovalVerdict::Expired => "expired",
        }
    }
}

/// The one decision of an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub verdict: ApprovalVerdict,
    /// The recipient of the token that decided (the credential), empty for an expiry.
    pub recipient: String,
    /// The name the approver typed on the page.
    pub typed_name: String,
    pub decided_at: DateTime<Utc>,
    /// The plans the decision covers, step → plan hash: the chain applies only these.
    pub plan_hashes: BTreeMap<String, String>,
}

impl ApprovalDecision {
    /// "recipient (typed name)": who approved, as the audit trail and the callback say it.
    pub fn approved_by(&self) -> String {
        if self.typed_name.is_empty() {
            self.recipient.clone()
        } else {
            format!("{} ({})", self.recipient, self.typed_name)
        }
    }
}

/// One approval request as stored. Holds the plans and their hashes, so a decision binds
/// exactly what the approver saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub approval_id: String,
    pub parent_operation_id: String,
    /// PSA kind, for the client's settings.
    pub psa: String,
    pub client: ApprovalClient,
    pub requested_by: String,
    pub reason: Option<String>,
    pub plans: Vec<PlannedStep>,
    pub approvers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub callback: ApprovalCallback,
    pub ticket_id: Option<String>,
    /// Whether the approver must not be the requester (the setting, as resolved when asked).
    pub approver_must_differ: bool,
    /// `None` until decided; written once, by a conditional write.
    #[serde(default)]
    pub decision: Option<ApprovalDecision>,
}

impl ApprovalRecord {
    /// Step → plan hash of every plan of the request.
    pub fn plan_hashes(&self) -> BTreeMap<String, String> {
        self.plans.iter().map(|p| (p.step.clone(), p.plan_hash.clone())).collect()
    }
}

/// One approver's token, stored by its SHA-256 only: the token itself is in the approver's
/// link and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalTokenRecord {
    /// Lowercase hex SHA-256 of the token.
    pub token_hash: String,
    pub approval_id: String,
    pub recipient: String,
    pub expires_at: DateTime<Utc>,
}

/// What the conditional write of a decision found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionWrite {
    /// This decision is the approval's decision.
    Recorded,
    /// Another decision came first; it is returned.
    AlreadyDecided(ApprovalDecision),
    /// The approval expired before the decision (approve / reject only).
    Expired,
    /// No such approval.
    NotFound,
}
