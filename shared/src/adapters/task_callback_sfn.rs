//! The decision to a waiting Step Functions task (`SendTaskSuccess`, `SendTaskFailure` with
//! the task token the chain stored with the approval; docs/architecture.md#approvals).

use async_trait::async_trait;
use aws_sdk_sfn::error::ProvideErrorMetadata;

use crate::domain::{ApprovalCallback, ApprovalRecord};
use crate::error::CallbackError;
use crate::ports::TaskCallback;

/// Step Functions' task-token callbacks. An approval asked with
/// [`ApprovalCallback::InProcess`] has no task: nothing is sent for it.
#[derive(Clone)]
pub struct StepFunctionsCallback {
    client: aws_sdk_sfn::Client,
}

impl StepFunctionsCallback {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

/// `TaskTimedOut` and `TaskDoesNotExist`: the execution no longer waits (timed out, ended,
/// or was stopped). Anything else may pass; the decision stays recorded either way.
fn callback_error<E: ProvideErrorMetadata + std::fmt::Display>(e: &E) -> CallbackError {
    let code = e.code().unwrap_or_default();
    let message = format!("{code}: {}", e.message().unwrap_or("no message"));
    if matches!(code, "TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken") {
        CallbackError::TaskGone { message }
    } else {
        CallbackError::Delivery { message }
    }
}

fn task_token(record: &ApprovalRecord) -> Option<&str> {
    match &record.callback {
        ApprovalCallback::StepFunctions { task_token } => Some(task_token),
        ApprovalCallback::InProcess => None,
    }
}

#[async_trait]
impl TaskCallback for StepFunctionsCallback {
    async fn succeed(&self, record: &ApprovalRecord, output: &serde_json::Value) -> Result<(), CallbackError> {
        let Some(token) = task_token(record) else { return Ok(()) };
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| callback_error(&e.into_service_error()))?;
        Ok(())
    }

    async fn fail(&self, record: &ApprovalRecord, error: &str, cause: &str) -> Result<(), CallbackError> {
        let Some(token) = task_token(record) else { return Ok(()) };
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| callback_error(&e.into_service_error()))?;
        Ok(())
    }
}
