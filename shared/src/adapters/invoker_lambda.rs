//! [`WorkflowInvoker`] over AWS Lambda: one `Invoke` with `InvocationType=Event` per run
//! (docs/architecture.md#the-http-api). Lambda queues the event and answers 202 at once;
//! the workflow's function runs it within its own 15 minutes, and a failure goes to the
//! function's `OnFailure` destination (the dead-letter queue), as for any asynchronous invoke.
//!
//! The function of each workflow is named by a setting (the template passes each function's
//! ARN): `OFFRAMP_FUNCTION_DEACTIVATE_CONFIGS`, `…_DEACTIVATE_CONTACTS`, `…_DELETE_ITGLUE_ORG`,
//! `…_OFFBOARD_USER`, `…_ROLLBACK`. A workflow whose setting is missing cannot be started,
//! and says which setting to add.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

use crate::config::ConfigSource;
use crate::domain::Workflow;
use crate::error::{ErrorCode, OfframpError};
use crate::ports::WorkflowInvoker;

/// The setting that names `workflow`'s function.
pub fn function_setting(workflow: Workflow) -> String {
    format!("OFFRAMP_FUNCTION_{}", workflow.as_str().replace('-', "_").to_uppercase())
}

pub struct LambdaWorkflowInvoker {
    client: Client,
    functions: BTreeMap<Workflow, String>,
}

impl LambdaWorkflowInvoker {
    /// The client from the one SDK configuration (`aws_sdk::loader`) and the functions the
    /// settings name.
    pub async fn from_settings(source: &ConfigSource) -> Result<Self, OfframpError> {
        let config = crate::aws_sdk::loader(source)?.load().await;
        let functions = Workflow::ALL
            .iter()
            .filter_map(|w| source.get(&function_setting(*w)).map(|name| (*w, name.to_string())))
            .collect();
        Ok(Self { client: Client::new(&config), functions })
    }
}

#[async_trait]
impl WorkflowInvoker for LambdaWorkflowInvoker {
    async fn invoke_async(&self, workflow: Workflow, event: &Value) -> Result<(), OfframpError> {
        let function = self.functions.get(&workflow).ok_or_else(|| {
            let setting = function_setting(workflow);
            OfframpError::configuration(format!("{setting} is not set: the API cannot start {workflow}"))
        })?;
        let payload = serde_json::to_vec(event).unwrap_or_default();
        let sent = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                let message = format!("Lambda Invoke of {workflow} failed: {}", DisplayErrorContext(&e));
                OfframpError::new(ErrorCode::WorkflowStartFailed, message)
            })?;
        // An asynchronous invoke is queued with 202; anything else did not queue it.
        match sent.status_code() {
            202 => Ok(()),
            other => Err(OfframpError::new(
                ErrorCode::WorkflowStartFailed,
                format!("Lambda answered {other} to the asynchronous Invoke of {workflow}, not 202"),
            )),
        }
    }
}
