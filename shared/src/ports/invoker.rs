//! Starting one workflow's function without waiting for it (docs/architecture.md#the-http-api):
//! the HTTP API answers 202 at once and the run goes on in the workflow's own Lambda, never
//! behind API Gateway's 29-second limit. The Lambda adapter is `adapters::invoker_lambda`
//! (`Invoke` with `InvocationType=Event`); tests use the in-memory one.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::Workflow;
use crate::error::OfframpError;

#[async_trait]
pub trait WorkflowInvoker: Send + Sync {
    /// Hand `event` to `workflow`'s function asynchronously: `Ok` once the platform has
    /// queued it, before the run starts. The event is a direct invoke's: the workflow's
    /// request with the API's fields (`assigned_operation_id`, `api_principal`).
    async fn invoke_async(&self, workflow: Workflow, event: &Value) -> Result<(), OfframpError>;
}

/// The invoker of tests: remembers every event, in order, and starts nothing.
#[derive(Debug, Default)]
pub struct MemoryWorkflowInvoker {
    invoked: Mutex<Vec<(Workflow, Value)>>,
}

impl MemoryWorkflowInvoker {
    /// Every event handed over so far, oldest first.
    pub fn invoked(&self) -> Vec<(Workflow, Value)> {
        self.invoked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl WorkflowInvoker for MemoryWorkflowInvoker {
    async fn invoke_async(&self, workflow: Workflow, event: &Value) -> Result<(), OfframpError> {
        self.invoked.lock().unwrap_or_else(|e| e.into_inner()).push((workflow, event.clone()));
        Ok(())
    }
}
