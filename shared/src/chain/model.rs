//! The chain's plan, as resolve makes it, the approval binds to and every later stage reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::request::ChainStep;

/// One run a step will make: the workflow's request (without consent) and its dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub step: ChainStep,
    /// The leaver, for `offboard_users` (one run per leaver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaver: Option<String>,
    /// The request the step runs with, once consent is bound to it ([`super::bind`]).
    pub request: Value,
    /// The dry run's plan hash: what an approval approves.
    #[serde(default)]
    pub plan_hash: Option<String>,
    /// The dry run's step result (counts, status).
    pub planned: Value,
}

/// The chain's plan: what the approval page shows and the approval binds to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainPlan {
    pub parent_operation_id: String,
    pub psa: String,
    pub client_id: String,
    pub client_name: String,
    pub dry_run: bool,
    pub approval_required: bool,
    /// How long the state machine waits for the approval before it ends the run as rejected.
    pub approval_timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<DateTime<Utc>>,
    pub initiated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ticket the chain documents itself on (opened or reused; none for a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// The steps the request runs, in the chain's order (planned or skipped).
    #[serde(default)]
    pub steps: Vec<ChainStep>,
    pub runs: Vec<PlannedRun>,
    /// Steps asked for that have nothing to run, with why (no leavers named).
    #[serde(default)]
    pub skipped: Vec<(ChainStep, String)>,
    /// SHA-256 over every run's step, leaver and plan hash: one value to approve.
    pub plan_hash: String,
}

/// Leavers offboarded at once, and dry-run at once by resolve: the state machine's
/// `OffboardUsers` Map has the same `MaxConcurrency` (each leaver's run is already
/// concurrent inside, and the vendors' limits are shared by all of them).
pub const LEAVERS_AT_ONCE: usize = 10;

/// How long an approval may take: three days, a weekend and a working day (a Friday
/// evening request is still open on Monday).
pub const APPROVAL_TIMEOUT_SECONDS: u64 = 3 * 24 * 3600;

/// The plan hash of the whole chain: its runs' hashes in order.
pub fn chain_hash(runs: &[PlannedRun]) -> String {
    let mut hasher = Sha256::new();
    for run in runs {
        let line = format!(
            "{}\t{}\t{}\n",
            run.step,
            run.leaver.as_deref().unwrap_or(""),
            run.plan_hash.as_deref().unwrap_or("")
        );
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}
