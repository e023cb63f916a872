//! The chain in-process (`offramp client offboard`, and the bench): the same stages as the
//! state machine in `infra/statemachine/client-offboarding.asl.json`, in the same order,
//! with the same step events ([`STAGES`]; a test keeps the two from drifting apart).

use chrono::Utc;
use futures::StreamExt;

use super::bind::{ChainApproval, ChainInputs, bind};
use super::finalize::{ChainRuns, finalize, planned};
use super::model::{ChainPlan, LEAVERS_AT_ONCE};
use super::plan::resolve;
use super::report::{ChainError, ClientOffboardingReport, StepOutcome};
use super::{ChainDeps, ChainStep, ClientOffboardingRequest, StepCall};
use crate::error::ErrorCode;
use crate::workflows::input;

/// The stages of the chain, in order; the state machine's states map onto them one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Resolve,
    Approval,
    Bind,
    Delay,
    Step(ChainStep),
    Finalize,
}

pub const STAGES: [Stage; 9] = [
    Stage::Resolve,
    Stage::Approval,
    Stage::Bind,
    Stage::Delay,
    Stage::Step(ChainStep::OffboardUsers),
    Stage::Step(ChainStep::DeactivateContacts),
    Stage::Step(ChainStep::DeactivateConfigs),
    Stage::Step(ChainStep::DeleteItglueOrg),
    Stage::Finalize,
];

/// The consent an in-process run carries: an approver's name and the chain plan hash they
/// reviewed (from a dry run's report), or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InProcessConsent {
    pub approved_by: Option<String>,
    pub plan_hash: Option<String>,
}

/// Run the whole chain for `request` in this process.
pub async fn run_chain(
    deps: &ChainDeps<'_>,
    request: ClientOffboardingRequest,
    consent: &InProcessConsent,
) -> ClientOffboardingReport {
    let dry_run = request.dry_run;
    let plan = match resolve(deps, request).await {
        Ok(plan) => plan,
        Err(error) => return ClientOffboardingReport::refused(&error, dry_run),
    };
    if plan.dry_run {
        return planned(deps, &plan, "planned", Vec::new()).await;
    }
    let approval = match approve(&plan, consent) {
        Ok(approval) => approval,
        Err(error) => {
            let status = if error.code == ErrorCode::ConfirmationRequired { "approval_required" } else { "failed" };
            return planned(deps, &plan, status, vec![error]).await;
        }
    };
    let inputs = bind(&plan, &approval);
    if let Some(at) = plan.effective_at {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
    let runs = run_steps(deps, &inputs).await;
    finalize(deps, &plan, &approval, runs).await
}

/// The approval this run applies under: the consent given, bound to this plan; or, when
/// neither the request nor the client's settings ask for one, the initiator's request.
pub fn approve(plan: &ChainPlan, consent: &InProcessConsent) -> Result<ChainApproval, ChainError> {
    if let Some(hash) = consent.plan_hash.as_deref()
        && hash != plan.plan_hash
    {
        return Err(ChainError::new(
            ErrorCode::PlanChanged,
            format!(
                "the plan changed since it was reviewed (approved {hash}, now {}); nothing was changed",
                plan.plan_hash
            ),
        ));
    }
    let approved_by = match (&consent.approved_by, plan.approval_required) {
        // The free-text rule every approver's name follows (it reaches the trail and the ticket).
        (Some(name), _) if consent.plan_hash.is_some() => input::text(input::APPROVED_BY, Some(name))
            .map_err(|e| ChainError::new(e.code(), e.to_string()))?
            .ok_or_else(|| {
                ChainError::new(ErrorCode::InvalidInput, "approval.approved_by is empty; nothing was changed")
            })?,
        (_, false) => plan.initiated_by.clone(),
        _ => {
            return Err(ChainError::new(
                ErrorCode::ConfirmationRequired,
                format!(
                    "this offboarding needs an approval: review the plan and run again with the approver's name and plan \
                     hash {}; nothing was changed",
                    plan.plan_hash
                ),
            ));
        }
    };
    Ok(ChainApproval {
        approved_by,
        approved_at: Utc::now(),
        plan_hash: plan.plan_hash.clone(),
        plan_hashes: Default::default(),
    })
}

/// Every step in order, each run continued until it is finished; the chain stops at the
/// first step that fails, as the state machine's `Catch` does.
pub async fn run_steps(deps: &ChainDeps<'_>, inputs: &ChainInputs) -> ChainRuns {
    let mut runs = ChainRuns::default();
    let steps = STAGES.iter().filter_map(|stage| match stage {
        Stage::Step(step) => Some(*step),
        _ => None,
    });
    for step in steps {
        let calls = inputs.calls(step);
        let outcomes: Vec<StepOutcome> =
            futures::stream::iter(calls.into_iter().map(|call| run_to_end(deps, step, call.clone())))
                .buffered(LEAVERS_AT_ONCE)
                .collect()
                .await;
        let failed = outcomes.iter().find(|o| !o.succeeded()).cloned();
        runs.outcomes.extend(outcomes);
        if let Some(failed) = failed {
            let code =
                failed.error_type.as_deref().and_then(|t| ErrorCode::ALL.iter().copied().find(|c| c.as_str() == t));
            let error =
                ChainError::new(code.unwrap_or(ErrorCode::ActionFailed), format!("{step} failed; the chain stopped"));
            runs.failure = Some((step, error));
            break;
        }
    }
    runs
}

/// One run of a step, invoked again with its continuation until it has none (the
/// state machine's `Choice` loop).
async fn run_to_end(deps: &ChainDeps<'_>, step: ChainStep, mut call: StepCall) -> StepOutcome {
    let leaver = call.request.get("user").and_then(|u| u.as_str()).map(str::to_string);
    let mut invocations = 0;
    loop {
        invocations += 1;
        let answer = deps.steps.run(step, &call).await;
        let next = answer.result.pointer("/continuation/operation_id").and_then(|v| v.as_str()).map(str::to_string);
        match next {
            Some(operation_id) if answer.error_type.is_none() => call.resume = Some(operation_id),
            _ => {
                return StepOutcome { step, leaver, result: answer.result, error_type: answer.error_type, invocations };
            }
        }
    }
}
