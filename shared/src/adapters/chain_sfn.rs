//! The [`ChainStarter`] of a deployment: AWS Step Functions `StartExecution` on the
//! client-offboarding state machine (`OFFRAMP_STATE_MACHINE_ARN`, the template's
//! `ClientOffboardingStateMachine`; docs/architecture.md#psa-webhooks).
//!
//! Idempotency is Step Functions' own: an execution name is unique per state machine for 90
//! days, so a second `StartExecution` with the name of an earlier execution answers
//! `ExecutionAlreadyExists` and starts nothing. That answer is not a failure here: it is
//! `already_started`, with the ARN the first start got (an execution's ARN is the state
//! machine's with `:stateMachine:` replaced by `:execution:` and `:<name>` appended).
//! Step Functions also answers a repeat of a *running* execution's name and input with
//! success and the same ARN; that case reports `already_started: false`, which is harmless:
//! nothing new ran either way.

use async_trait::async_trait;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;

use crate::chain::ClientOffboardingRequest;
use crate::config::ConfigSource;
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{ChainStarter, StartedChain};

/// The setting naming the state machine.
pub const STATE_MACHINE_ARN: &str = "OFFRAMP_STATE_MACHINE_ARN";

/// Starts executions of one state machine.
#[derive(Clone, Debug)]
pub struct StepFunctionsChainStarter {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctionsChainStarter {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Result<Self, OfframpError> {
        let state_machine_arn = state_machine_arn.into();
        if execution_arn(&state_machine_arn, "x").is_none() {
            return Err(OfframpError::configuration(format!(
                "{STATE_MACHINE_ARN} is not a state machine ARN (arn:…:states:…:stateMachine:NAME)"
            )));
        }
        Ok(Self { client, state_machine_arn })
    }

    /// The starter the settings name: a `ConfigurationError` without `OFFRAMP_STATE_MACHINE_ARN`.
    pub fn from_settings(source: &ConfigSource, aws: &aws_config::SdkConfig) -> Result<Self, OfframpError> {
        let arn = source
            .get(STATE_MACHINE_ARN)
            .filter(|arn| !arn.trim().is_empty())
            .ok_or_else(|| OfframpError::configuration(format!("{STATE_MACHINE_ARN} is not set")))?;
        Self::new(aws_sdk_sfn::Client::new(aws), arn.trim())
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }
}

/// The ARN of execution `name` of `state_machine_arn`; `None` when that is not a state
/// machine ARN.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let (head, machine) = state_machine_arn.split_once(":stateMachine:")?;
    let valid = head.starts_with("arn:") && !machine.is_empty() && !machine.contains(':');
    valid.then(|| format!("{head}:execution:{machine}:{name}"))
}

#[async_trait]
impl ChainStarter for StepFunctionsChainStarter {
    async fn start(&self, name: &str, request: &ClientOffboardingRequest) -> Result<StartedChain, OfframpError> {
        let input = serde_json::to_string(request)
            .map_err(|e| OfframpError::new(ErrorCode::InvalidInput, format!("the chain's request: {e}")))?;
        let sent = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match sent {
            Ok(output) => Ok(StartedChain { execution_id: output.execution_arn().to_string(), already_started: false }),
            Err(SdkError::ServiceError(e)) if e.err().is_execution_already_exists() => {
                let execution_id = execution_arn(&self.state_machine_arn, name).unwrap_or_else(|| name.to_string());
                tracing::info!(execution = %execution_id, "the chain's execution of this name was started before");
                Ok(StartedChain { execution_id, already_started: true })
            }
            Err(e) => Err(start_failed(e)),
        }
    }
}

/// A refused or failed start: the deployment's fault when Step Functions says the machine,
/// the name or the input is wrong (500), else an outage worth retrying (502).
fn start_failed(error: SdkError<StartExecutionError>) -> OfframpError {
    let message = aws_sdk_sfn::error::DisplayErrorContext(&error).to_string();
    let configuration = error.as_service_error().is_some_and(|e| {
        e.is_state_machine_does_not_exist()
            || e.is_state_machine_deleting()
            || e.is_invalid_arn()
            || e.is_invalid_name()
            || e.is_invalid_execution_input()
            || e.is_validation_exception()
            || e.is_kms_access_denied_exception()
    });
    if configuration {
        OfframpError::configuration(format!("Step Functions refused to start the chain: {message}"))
    } else {
        OfframpError::new(ErrorCode::ChainStartFailed, format!("Step Functions did not start the chain: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_execution_arn_follows_the_state_machine_arn() {
        let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:client-offboarding";
        assert_eq!(
            execution_arn(machine, "connectwise-ab12").as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:execution:client-offboarding:connectwise-ab12")
        );
        for bad in ["", "client-offboarding", "arn:aws:states:us-east-1:1:execution:x:y", "arn:x:stateMachine:"] {
            assert_eq!(execution_arn(bad, "n"), None, "{bad}");
        }
    }
}
