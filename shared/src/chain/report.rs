//! The chain's one report: the plan, who approved it, every step's run (its operation and
//! result), what was skipped or not run and why.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ChainStep;
use crate::domain;
use crate::error::{ErrorCode, Outcome};

/// How one run of a step ended (one invocation's answer, or the last of a continued run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub step: ChainStep,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaver: Option<String>,
    /// The step result ([`super::step_result`]): operation id, success, status, counts.
    pub result: Value,
    /// The Lambda error type when the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Invocations the run took (more than one when its deadline continued it).
    #[serde(default = "one")]
    pub invocations: u32,
}

fn one() -> u32 {
    1
}

impl StepOutcome {
    pub fn succeeded(&self) -> bool {
        self.error_type.is_none() && self.result.get("success").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn operation_id(&self) -> Option<&str> {
        self.result.get("operation_id").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainError {
    pub code: ErrorCode,
    pub message: String,
    pub timestamp: String,
}

impl ChainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), timestamp: domain::iso8601(domain::now()) }
    }
}

/// The chain's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientOffboardingReport {
    pub success: bool,
    /// `planned` (dry run), `approval_required`, `rejected`, `completed`, `failed`.
    pub status: String,
    /// The parent operation every step's operation is a child of.
    pub operation_id: Option<String>,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub dry_run: bool,
    /// The chain's plan hash (over every run's plan hash): what an approval names.
    pub plan_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// Whether finalize closed the ticket (every step succeeded, not a dry run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ticket_closed: bool,
    /// Every run: the dry run's results for a plan, the real runs' otherwise.
    pub steps: Vec<StepOutcome>,
    /// Steps asked for with nothing to run, and why.
    pub skipped: Vec<SkippedStep>,
    /// Steps not run because an earlier one failed.
    pub not_run: Vec<ChainStep>,
    pub errors: Vec<ChainError>,
    /// Where the evidence report was stored (docs/evidence.md); absent for a plan, or when
    /// it was not stored (then `errors` says why, or no store is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::ports::EvidenceLocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedStep {
    pub step: ChainStep,
    pub why: String,
}

impl ClientOffboardingReport {
    /// The report of a request refused before its plan existed.
    pub fn refused(error: &crate::error::OfframpError, dry_run: bool) -> Self {
        Self {
            success: false,
            status: "failed".into(),
            operation_id: None,
            client_id: None,
            client_name: None,
            dry_run,
            plan_hash: None,
            approved_by: None,
            ticket_id: None,
            ticket_closed: false,
            steps: Vec::new(),
            skipped: Vec::new(),
            not_run: Vec::new(),
            errors: vec![ChainError::new(error.code(), error.to_string())],
            evidence: None,
        }
    }
}

impl Outcome for ClientOffboardingReport {
    fn succeeded(&self) -> bool {
        self.success
    }
    fn primary_code(&self) -> Option<ErrorCode> {
        self.errors.first().map(|e| e.code)
    }
}
