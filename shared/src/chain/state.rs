//! The state the state machine carries between its states, which the orchestrator's actions
//! read and return whole (`resolve`, `bind`, `finalize`; `request_approval` answers later,
//! through the approval page). Step results are written into `results` by the state
//! machine's Task states themselves (`ResultPath`), in the shape [`ChainState::runs`] reads.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bind::{ChainApproval, ChainInputs};
use super::finalize::ChainRuns;
use super::model::ChainPlan;
use super::report::{ChainError, StepOutcome};
use super::{ChainStep, ClientOffboardingRequest};
use crate::error::ErrorCode;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainState {
    pub request: ClientOffboardingRequest,
    #[serde(default)]
    pub plan: Option<ChainPlan>,
    /// The approval task's answer (or the initiator's consent, set by `bind`).
    #[serde(default)]
    pub approval: Option<ChainApproval>,
    #[serde(default)]
    pub inputs: Option<ChainInputs>,
    #[serde(default)]
    pub results: StepResults,
    /// What a `Catch` caught: `{"Error", "Cause"}`.
    #[serde(default)]
    pub failure: Option<Value>,
}

/// Where the Task states put each step's answers: `{"result": <step result>}` per run
/// (`offboard_users`: the Map's items, each its step call with an `outcome`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResults {
    #[serde(default)]
    pub offboard_users: Option<Vec<Value>>,
    #[serde(default)]
    pub deactivate_contacts: Option<Value>,
    #[serde(default)]
    pub deactivate_configs: Option<Value>,
    #[serde(default)]
    pub delete_itglue_org: Option<Value>,
}

impl ChainState {
    /// The runs as the finalizer reads them: every result found, and the failure caught.
    pub fn runs(&self) -> ChainRuns {
        let mut runs = ChainRuns::default();
        let result_of = |value: &Value| value.get("result").cloned().unwrap_or(Value::Null);
        for item in self.results.offboard_users.iter().flatten() {
            let leaver = item.pointer("/request/user").and_then(Value::as_str).map(str::to_string);
            let result = item.get("outcome").map(result_of).unwrap_or(Value::Null);
            runs.outcomes.push(outcome(ChainStep::OffboardUsers, leaver, result));
        }
        let singles = [
            (ChainStep::DeactivateContacts, &self.results.deactivate_contacts),
            (ChainStep::DeactivateConfigs, &self.results.deactivate_configs),
            (ChainStep::DeleteItglueOrg, &self.results.delete_itglue_org),
        ];
        for (step, value) in singles {
            if let Some(value) = value {
                runs.outcomes.push(outcome(step, None, result_of(value)));
            }
        }
        if let Some(failure) = &self.failure {
            runs.failure = Some(caught(failure, self.failed_step()));
        }
        runs
    }

    /// The first requested step with no result: where a caught failure happened.
    fn failed_step(&self) -> ChainStep {
        let has = |step: ChainStep| match step {
            ChainStep::OffboardUsers => self.results.offboard_users.is_some(),
            ChainStep::DeactivateContacts => self.results.deactivate_contacts.is_some(),
            ChainStep::DeactivateConfigs => self.results.deactivate_configs.is_some(),
            ChainStep::DeleteItglueOrg => self.results.delete_itglue_org.is_some(),
        };
        let requested =
            self.plan.as_ref().map(|p| p.runs.iter().map(|r| r.step).collect::<Vec<_>>()).unwrap_or_default();
        requested.into_iter().find(|s| !has(*s)).unwrap_or(ChainStep::OffboardUsers)
    }
}

fn outcome(step: ChainStep, leaver: Option<String>, result: Value) -> StepOutcome {
    let succeeded = result.get("success").and_then(Value::as_bool).unwrap_or(false);
    let error_type = (!succeeded).then(|| {
        result.pointer("/errors/0/code").and_then(Value::as_str).unwrap_or(ErrorCode::ActionFailed.as_str()).to_string()
    });
    StepOutcome { step, leaver, result, error_type, invocations: 1 }
}

/// A caught Lambda error: `Error` is the error type, `Cause` the Lambda's error JSON.
fn caught(failure: &Value, step: ChainStep) -> (ChainStep, ChainError) {
    let name = failure.get("Error").and_then(Value::as_str).unwrap_or("States.TaskFailed");
    let code = ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name).unwrap_or(ErrorCode::ActionFailed);
    let cause = failure.get("Cause").and_then(Value::as_str).unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| c.get("errorMessage").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| cause.to_string());
    (step, ChainError::new(code, format!("{step} failed ({name}): {message}")))
}
