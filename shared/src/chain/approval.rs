//! The chain's approval request: every run's dry-run plan, as the approval page shows it
//! and as the decision binds it (docs/architecture.md#approvals). The state machine waits
//! on its task token; the page's decision comes back as the task's output, which `bind`
//! checks against these same hashes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::model::{ChainPlan, PlannedRun};
use super::{ChainDeps, ChainStep};
use crate::approval::{ApprovalDeps, ApprovalRequest, IssuedApproval, request_approval};
use crate::domain::{ApprovalCallback, ApprovalClient, PlannedStep};
use crate::error::{ErrorCode, OfframpError};

/// The key a run's plan hash is approved under: its step, and for a leaver the leaver.
pub fn run_key(run: &PlannedRun) -> String {
    match &run.leaver {
        Some(leaver) => format!("{}:{leaver}", run.step),
        None => run.step.to_string(),
    }
}

/// Every run's plan hash by its key: what a decision must name, exactly.
pub fn plan_hashes(plan: &ChainPlan) -> BTreeMap<String, String> {
    plan.runs.iter().map(|run| (run_key(run), run.plan_hash.clone().unwrap_or_default())).collect()
}

/// The system a step changes, as the page groups the plan.
fn system(plan: &ChainPlan, step: ChainStep) -> String {
    match step {
        ChainStep::OffboardUsers => "microsoft365".into(),
        ChainStep::DeleteItglueOrg => "itglue".into(),
        ChainStep::DeactivateContacts | ChainStep::DeactivateConfigs => plan.psa.clone(),
    }
}

/// The page's summary of a run: the dry run's counts (its numeric fields).
fn summary(run: &PlannedRun) -> Value {
    let counts: Map<String, Value> = run
        .planned
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.is_number())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({ "counts": counts, "items": {} })
}

/// Ask the approvers (the client's `approvers`, else the MSP's) to approve `plan`; their
/// decision goes to the state machine task waiting on `task_token`.
pub async fn request_chain_approval(
    deps: &ChainDeps<'_>,
    plan: &ChainPlan,
    task_token: String,
) -> Result<IssuedApproval, OfframpError> {
    let approvals = deps.approvals.ok_or_else(|| {
        OfframpError::configuration("approvals are not configured here (OFFRAMP_APPROVAL_BASE_URL and their store)")
    })?;
    let plans = plan
        .runs
        .iter()
        .map(|run| PlannedStep {
            step: run_key(run),
            system: system(plan, run.step),
            plan_hash: run.plan_hash.clone().unwrap_or_default(),
            summary: summary(run),
        })
        .collect();
    let request = ApprovalRequest {
        parent_operation_id: plan.parent_operation_id.clone(),
        psa: plan.psa.clone(),
        client: ApprovalClient { id: plan.client_id.clone(), name: plan.client_name.clone() },
        requested_by: plan.initiated_by.clone(),
        reason: plan.reason.clone(),
        plans,
        approvers: Vec::new(),
        expires_in: std::time::Duration::from_secs(plan.approval_timeout_seconds),
        callback: ApprovalCallback::StepFunctions { task_token },
        ticket_id: plan.ticket_id.clone(),
    };
    let approval_deps = ApprovalDeps {
        store: approvals.store,
        audit: deps.audit,
        settings: deps.settings,
        notifier: deps.notifier,
        psa: Some(deps.psa),
        callback: approvals.callback,
        config: approvals.config,
    };
    request_approval(approval_deps, request).await.map_err(|e| OfframpError::new(e.code(), e.to_string()))
}

/// A decision's plan hashes checked against the plan's: the same runs, the same hashes.
pub fn check_decided_hashes(plan: &ChainPlan, decided: &BTreeMap<String, String>) -> Result<(), OfframpError> {
    let expected = plan_hashes(plan);
    if &expected == decided {
        return Ok(());
    }
    Err(OfframpError::new(
        ErrorCode::PlanChanged,
        format!(
            "the approval names other plans than this chain's ({decided:?}, now {expected:?}); nothing was changed"
        ),
    ))
}
