//! The orchestrator's actions: what the state machine's own Task states ask of the
//! `orchestrator` function. Each takes the chain's state and returns it (or, `finalize`,
//! the report), so the state machine holds no logic but the order of the stages.

use serde::{Deserialize, Serialize};

use super::bind::{ChainApproval, bind};
use super::finalize::{finalize, planned};
use super::plan::resolve;
use super::report::{ChainError, ClientOffboardingReport};
use super::run::{InProcessConsent, approve};
use super::state::ChainState;
use super::{ChainDeps, ClientOffboardingRequest};
use crate::error::{ErrorCode, OfframpError};

/// One request to the orchestrator, as the state machine sends it (`action` names it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrchestratorAction {
    /// The execution's input: the chain's request, and the execution (`$$.Execution.Id`),
    /// which is who the runs are recorded as initiated by when the request does not say.
    Resolve {
        request: Box<ClientOffboardingRequest>,
        #[serde(default)]
        execution_arn: Option<String>,
    },
    /// Ask for the approval; the state machine waits on `task_token` until the page's
    /// decision (or the timeout) ends the task.
    RequestApproval {
        task_token: String,
        state: Box<ChainState>,
    },
    Bind {
        state: Box<ChainState>,
    },
    /// The last stage, whatever came before (every `Catch` leads here). `execution_arn` is
    /// the execution (`$$.Execution.Id`): the entry finishes the HTTP API's record of an
    /// execution the API started (`api-<operation id>`, entry/api/accepted.rs).
    Finalize {
        state: Box<ChainState>,
        #[serde(default)]
        execution_arn: Option<String>,
    },
}

/// What an action answers: the state to go on with, or the chain's report.
#[derive(Debug, Clone, PartialEq)]
pub enum Orchestrated {
    State(Box<ChainState>),
    Report(Box<ClientOffboardingReport>),
}

pub async fn orchestrate(deps: &ChainDeps<'_>, action: OrchestratorAction) -> Result<Orchestrated, OfframpError> {
    match action {
        OrchestratorAction::Resolve { mut request, execution_arn } => {
            if request.initiated_by.is_none() {
                // The execution is the principal, as its steps record it (entry/caller.rs).
                request.initiated_by = execution_arn.map(|arn| format!("states:{arn}"));
            }
            let plan = resolve(deps, (*request).clone()).await?;
            Ok(Orchestrated::State(Box::new(ChainState { request: *request, plan: Some(plan), ..Default::default() })))
        }
        OrchestratorAction::RequestApproval { task_token, state } => {
            let plan = state.plan.as_ref().ok_or_else(|| OfframpError::invalid_input("approval before resolve"))?;
            let issued = super::approval::request_chain_approval(deps, plan, task_token).await?;
            tracing::info!(approval_id = %issued.approval_id, approvers = issued.links.len(), "approval requested");
            Ok(Orchestrated::State(state))
        }
        OrchestratorAction::Bind { mut state } => {
            let plan = state.plan.as_ref().ok_or_else(|| OfframpError::invalid_input("bind before resolve"))?;
            let approval = bound_approval(plan, state.approval.take())?;
            state.inputs = Some(bind(plan, &approval));
            state.approval = Some(approval);
            Ok(Orchestrated::State(state))
        }
        OrchestratorAction::Finalize { state, .. } => {
            Ok(Orchestrated::Report(Box::new(finalize_state(deps, *state).await)))
        }
    }
}

/// The approval the steps run under: the approval task's answer, checked to name this plan;
/// without one (none required), the initiator's consent.
fn bound_approval(plan: &super::model::ChainPlan, given: Option<ChainApproval>) -> Result<ChainApproval, OfframpError> {
    match given {
        Some(mut approval) if approval.plan_hash.is_empty() => {
            super::approval::check_decided_hashes(plan, &approval.plan_hashes)?;
            approval.plan_hash = plan.plan_hash.clone();
            Ok(approval)
        }
        Some(approval) if approval.plan_hash == plan.plan_hash => Ok(approval),
        Some(approval) => Err(OfframpError::new(
            ErrorCode::PlanChanged,
            format!("the approval names plan {}, not {}; nothing was changed", approval.plan_hash, plan.plan_hash),
        )),
        None => approve(plan, &InProcessConsent::default()).map_err(|e| OfframpError::new(e.code, e.message)),
    }
}

async fn finalize_state(deps: &ChainDeps<'_>, state: ChainState) -> ClientOffboardingReport {
    let decided = not_approved(&state);
    let runs = state.runs();
    let Some(plan) = state.plan.as_ref() else {
        let error = runs.failure.map(|(_, e)| e).unwrap_or_else(|| ChainError::new(ErrorCode::InvalidInput, "no plan"));
        return ClientOffboardingReport::refused(&OfframpError::new(error.code, error.message), state.request.dry_run);
    };
    if plan.dry_run {
        return planned(deps, plan, "planned", Vec::new()).await;
    }
    match (&state.approval, state.inputs.is_some(), decided) {
        (Some(approval), true, _) => finalize(deps, plan, approval, runs).await,
        // A person said no (or let the approval expire): nothing was changed, and that is
        // the chain's answer, recorded on the parent operation, not a failure.
        (_, false, Some(decision)) => planned(deps, plan, "rejected", vec![decision]).await,
        // Stopped before the steps were bound by a failure (the approval request, a stale
        // approval at bind): nothing was changed, and the chain failed.
        _ => {
            let error = runs.failure.map(|(_, e)| e).unwrap_or_else(|| {
                ChainError::new(
                    ErrorCode::InvalidInput,
                    "the chain ended before its steps were bound; nothing was changed",
                )
            });
            planned(deps, plan, "failed", vec![error]).await
        }
    }
}

/// The approval's decision when the approval task ended it: the page's rejection
/// (`ApprovalRejected`), its expiry (`ApprovalExpired`), or the task's own timeout
/// (`States.Timeout`, the only Task with a timeout is the approval's). `None` for any
/// other failure, and once the steps are bound.
fn not_approved(state: &ChainState) -> Option<ChainError> {
    let failure = state.failure.as_ref().filter(|_| state.inputs.is_none())?;
    let cause = failure.get("Cause").and_then(serde_json::Value::as_str).unwrap_or_default();
    let (code, message) = match failure.get("Error").and_then(serde_json::Value::as_str)? {
        crate::approval::TASK_ERROR_REJECTED => (ErrorCode::ApprovalRejected, format!("the offboarding was {cause}")),
        crate::approval::TASK_ERROR_EXPIRED => (ErrorCode::ApprovalExpired, cause.to_string()),
        "States.Timeout" => (ErrorCode::ApprovalExpired, "nobody decided the approval before its timeout".into()),
        _ => return None,
    };
    Some(ChainError::new(code, format!("{message}; nothing was changed")))
}
