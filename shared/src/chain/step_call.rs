//! The event a step of the chain sends its workflow's function: the workflow's own request,
//! wrapped with the chain it belongs to and, when the step continues a run its deadline
//! cut short, the operation to resume. The state machine sends exactly this (its Task
//! states pass `$.inputs.<step>` as the payload) and so does the in-process chain; the
//! function answers with a [`step_result`], small enough for a state's 256 KiB limit
//! (docs/architecture.md#the-client-offboarding-chain).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ChainStep;

/// Which chain a step's run belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepContext {
    pub parent_operation_id: String,
    pub step: ChainStep,
}

/// The event of one step's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCall {
    pub chain_step: StepContext,
    /// The workflow's request, as its function takes it directly.
    pub request: Value,
    /// The operation to continue (a previous invocation's `continuation.operation_id`);
    /// always present, `null` on the first invocation, so the state machine's paths resolve.
    #[serde(default)]
    pub resume: Option<String>,
    /// The state machine's execution (`$$.Execution.Id`), which every Task adds: the step's
    /// run is recorded as initiated by `states:<arn>` (entry/caller.rs,
    /// docs/architecture.md#who-is-asking). The entry takes it off the event as the caller's
    /// field before the call is read; it is a field here so that every reader of the event
    /// (the reply's shape, the fuzzing harness) knows it, and so the in-process chain can
    /// send it too. Absent from the state's inputs: `bind` never sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
}

/// The key an event is recognised as a step call by.
pub const STEP_CALL_KEY: &str = "chain_step";

impl StepCall {
    pub fn new(parent_operation_id: &str, step: ChainStep, request: Value) -> Self {
        let chain_step = StepContext { parent_operation_id: parent_operation_id.to_string(), step };
        Self { chain_step, request, resume: None, execution_arn: None }
    }

    /// The workflow's request with the chain's parent and, when continuing, the operation to
    /// resume. A request that names its own parent or operation is refused: the chain's
    /// values are the only ones a step runs under.
    pub fn into_request(self) -> Result<Value, String> {
        let Value::Object(mut fields) = self.request else {
            return Err("a chain step's request must be a JSON object".into());
        };
        for own in ["parent_operation_id", "operation_id"] {
            if fields.contains_key(own) {
                return Err(format!("a chain step's request may not carry `{own}`: the chain sets it"));
            }
        }
        fields.insert("parent_operation_id".into(), json!(self.chain_step.parent_operation_id));
        if let Some(resume) = self.resume {
            fields.insert("operation_id".into(), json!(resume));
        }
        Ok(Value::Object(fields))
    }
}

/// Report fields a step's result keeps whatever their type (the rest: numbers, strings and
/// booleans only, which are the seed reports' counts and statuses).
const KEPT: [&str; 3] = ["operation_id", "continuation", "plan_hash"];
/// The errors a step's result keeps (the report, in the trail and the log, has them all).
const ERRORS_KEPT: usize = 5;

/// What a step answers the chain: the report's scalar fields (success, status, counts, the
/// operation), its first errors, the plan hash, and `continuation` (`null` when the run is
/// finished). Lists of items stay in the audit trail: a 5,000-configuration report is far
/// larger than a state machine state may be.
pub fn step_result(report: &Value) -> Value {
    let mut result = Map::new();
    if let Value::Object(fields) = report {
        for (key, value) in fields {
            let scalar = matches!(value, Value::Number(_) | Value::String(_) | Value::Bool(_));
            if scalar || KEPT.contains(&key.as_str()) {
                result.insert(key.clone(), value.clone());
            }
        }
        if let Some(errors) = fields.get("errors").and_then(Value::as_array) {
            result.insert("errors".into(), json!(errors.iter().take(ERRORS_KEPT).collect::<Vec<_>>()));
            result.insert("errors_total".into(), json!(errors.len()));
        }
        if let Some(id) = report.pointer("/audit_trail/operation_id") {
            result.entry("operation_id").or_insert_with(|| id.clone());
        }
    }
    result.entry("continuation").or_insert(Value::Null);
    result.entry("operation_id").or_insert(Value::Null);
    Value::Object(result)
}
