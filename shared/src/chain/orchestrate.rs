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
    Finalize {
        state: Box<ChainState>,
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
                request.initiated_by = execution_arn;
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
        OrchestratorAction::Finalize { state } => {
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
    let runs = state.runs();
    let Some(plan) = state.plan.as_ref() else {
        let error = runs.failure.map(|(_, e)| e).unwrap_or_else(|| ChainError::new(ErrorCode::InvalidInput, "no plan"));
        return ClientOffboardingReport::refused(&OfframpError::new(error.code, error.message), state.request.dry_run);
    };
    if plan.dry_run {
        return planned(deps, plan, "planned", Vec::new()).await;
    }
    match (&state.approval, state.inputs.is_some()) {
        (Some(approval), true) => finalize(deps, plan, approval, runs).await,
        // Rejected, expired, or stopped before the steps were bound: nothing was changed.
        _ => {
            let error = runs.failure.map(|(_, e)| e).unwrap_or_else(|| {
                ChainError::new(
                    ErrorCode::ConfirmationRequired,
                    "the offboarding was not approved; nothing was changed",
                )
            });
            let mut report = planned(deps, plan, "rejected", vec![error]).await;
            report.success = false;
            report
        }
    }
}
