//! How the chain runs one step: the port the in-process chain goes through
//! (`crate::entry::InProcessSteps` calls the workflow functions' own handlers in this
//! process); in AWS the state machine is the runner and invokes each step's Lambda.

use async_trait::async_trait;
use serde_json::Value;

use super::{ChainStep, StepCall};

/// What one invocation of a step answered.
#[derive(Debug, Clone, PartialEq)]
pub struct StepAnswer {
    /// The step result ([`super::step_result`]).
    pub result: Value,
    /// The Lambda error type when the run failed (what a state machine's `Catch` sees).
    pub error_type: Option<String>,
}

/// Not `Send`: the workflows' futures are `Send`, but the compiler cannot prove it through
/// this trait for all of them at once (a known limit with higher-ranked lifetimes), and
/// nothing spawns a step: the chain awaits them in its own task.
#[async_trait(?Send)]
pub trait StepRunner: Send + Sync {
    /// Run `call` on `step`'s workflow once (one invocation: it may stop with a continuation).
    async fn run(&self, step: ChainStep, call: &StepCall) -> StepAnswer;
}
