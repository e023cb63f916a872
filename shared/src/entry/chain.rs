//! The chain's entry points: the in-process step runner (each step's workflow through its
//! own function's handler, with the very event the state machine sends), and the
//! `orchestrator` function's actions (docs/architecture.md#the-client-offboarding-chain).

use serde_json::Value;

use super::{Answer, Function, FunctionServices, Reply, answer};
use crate::app::ApprovalServices;
use crate::chain::{
    ChainApprovals, ChainDeps, ChainStep, ClientOffboardingReport, Orchestrated, OrchestratorAction, StepAnswer,
    StepCall, StepRunner, orchestrate,
};
use crate::error::OfframpError;
use crate::ports::async_trait;

/// The function that runs `step`.
pub fn function_of(step: ChainStep) -> Function {
    match step {
        ChainStep::OffboardUsers => Function::OffboardUser,
        ChainStep::DeactivateContacts => Function::DeactivateContacts,
        ChainStep::DeactivateConfigs => Function::DeactivateConfigs,
        ChainStep::DeleteItglueOrg => Function::DeleteItGlueOrg,
    }
}

/// Runs each step's workflow in this process, through the handler its Lambda runs.
pub struct InProcessSteps<'a> {
    pub services: &'a FunctionServices,
    /// Who the invocations are made by (the chain's initiator is in each request).
    pub invoked_by: String,
}

#[async_trait(?Send)]
impl StepRunner for InProcessSteps<'_> {
    async fn run(&self, step: ChainStep, call: &StepCall) -> StepAnswer {
        let event = serde_json::to_value(call).unwrap_or_default();
        let answer = self
            .services
            .handle_workflow(function_of(step), event, &self.invoked_by, crate::operation::Deadline::none())
            .await;
        StepAnswer { result: answer.payload, error_type: answer.error.map(|e| e.error_type) }
    }
}

/// The adapters a chain needs: the PSA, the trail, the settings and the notifier of
/// whichever services these are, and the approval adapters when the chain asks for approvals.
pub fn chain_deps<'a>(
    services: &'a FunctionServices,
    steps: &'a dyn StepRunner,
    approvals: Option<&'a ApprovalServices>,
) -> Result<ChainDeps<'a>, OfframpError> {
    let directory = match services {
        FunctionServices::UserOffboarding(services) => Some(services.m365.directory.as_ref()),
        _ => None,
    };
    let services = match services {
        FunctionServices::Workflows(services) => services.as_ref(),
        FunctionServices::UserOffboarding(services) => &services.services,
        FunctionServices::ItGlue(_) | FunctionServices::Webhook(_) => {
            return Err(OfframpError::configuration("the chain needs every workflow's adapters"));
        }
    };
    Ok(ChainDeps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        settings: services.org_settings.as_ref(),
        notifier: services.notifier.as_deref(),
        directory,
        steps,
        approvals: approvals.map(|a| ChainApprovals {
            store: a.approvals.as_ref(),
            callback: a.callback.as_ref(),
            config: &a.config,
        }),
        evidence: services.evidence.as_deref(),
    })
}

/// Handle one `orchestrator` invocation (a state machine Task). A failed action, and a
/// chain whose report is a failure, answer with a Lambda error the state machine sees.
pub async fn orchestrator_event(services: &FunctionServices, event: Value, invoked_by: &str) -> Answer {
    let action: OrchestratorAction = match serde_json::from_value(event) {
        Ok(action) => action,
        Err(e) => return refused(&OfframpError::invalid_input(format!("orchestrator action: {e}"))),
    };
    let execution = match execution_of(&action) {
        Ok(execution) => execution,
        Err(e) => return refused(&e),
    };
    // The dry runs `resolve` makes are the execution's, as its steps are (caller.rs).
    let invoked_by = match (&action, &execution) {
        (OrchestratorAction::Resolve { .. }, Some(arn)) => format!("states:{arn}"),
        _ => invoked_by.to_string(),
    };
    let steps = InProcessSteps { services, invoked_by };
    let deps = match chain_deps(services, &steps, approval_services().await) {
        Ok(deps) => deps,
        Err(e) => return refused(&e),
    };
    match Box::pin(orchestrate(&deps, action)).await {
        Ok(Orchestrated::State(state)) => {
            Answer { payload: serde_json::to_value(state).unwrap_or_default(), error: None }
        }
        Ok(Orchestrated::Report(report)) => {
            if let Some(arn) = &execution {
                finish_api_run(deps.audit, arn, &report).await;
            }
            answer(Reply::Report, report.as_ref())
        }
        Err(e) => refused(&e),
    }
}

/// The execution an action names (`resolve`, `finalize`), checked to be one.
fn execution_of(action: &OrchestratorAction) -> Result<Option<String>, OfframpError> {
    let arn = match action {
        OrchestratorAction::Resolve { execution_arn, .. } | OrchestratorAction::Finalize { execution_arn, .. } => {
            execution_arn.as_deref()
        }
        _ => None,
    };
    match arn {
        Some(arn) if !super::caller::is_execution_arn(arn) => {
            Err(OfframpError::invalid_input(format!("execution_arn '{arn}' is not a Step Functions execution ARN")))
        }
        arn => Ok(arn.map(str::to_string)),
    }
}

/// Keep the chain's report with the HTTP API's record of the run, when the API started this
/// execution: its name is `api-<operation id>` and the API's acceptance of that id names
/// this very execution. So `GET /operations/{id}` answers the final status and the report
/// (docs/architecture.md#the-http-api). Any other execution has no API record; a retried
/// `finalize` finds the record finished, and the first report stays.
async fn finish_api_run(audit: &dyn crate::ports::AuditStore, execution_arn: &str, report: &ClientOffboardingReport) {
    use super::api::{self, Kept, accepted};
    let name = execution_arn.rsplit(':').next().unwrap_or_default();
    let Some(operation_id) = name.strip_prefix(api::EXECUTION_PREFIX) else { return };
    if uuid::Uuid::parse_str(operation_id).is_err() {
        return;
    }
    match accepted::read(audit, operation_id).await {
        Ok(Some(Kept::Accepted(acceptance)))
            if acceptance.workflow == api::CHAIN && acceptance.execution_id.as_deref() == Some(name) =>
        {
            accepted::finish(audit, operation_id, &serde_json::to_value(report).unwrap_or_default()).await;
        }
        Ok(Some(Kept::Finished(_))) => {}
        Ok(_) => tracing::warn!(operation_id, execution = execution_arn, "no API acceptance names this execution"),
        Err(e) => tracing::error!(operation_id, error = %e, "the API's record of the chain could not be read"),
    }
}

/// The orchestrator's approval adapters, built once per cold start from the environment
/// when `OFFRAMP_APPROVAL_BASE_URL` is set (the template sets it); without it a
/// `request_approval` action answers `ConfigurationError`.
async fn approval_services() -> Option<&'static ApprovalServices> {
    static APPROVALS: tokio::sync::OnceCell<Option<ApprovalServices>> = tokio::sync::OnceCell::const_new();
    APPROVALS
        .get_or_init(|| async {
            let source = crate::config::ConfigSource::from_env();
            source.get("OFFRAMP_APPROVAL_BASE_URL")?;
            crate::app::build_approvals(&source)
                .await
                .map_err(|e| tracing::error!(code = %e.code(), error = %e, "approvals: configuration"))
                .ok()
        })
        .await
        .as_ref()
}

fn refused(error: &OfframpError) -> Answer {
    answer(Reply::Report, &ClientOffboardingReport::refused(error, false))
}
