//! The HTTP API (docs/architecture.md#the-http-api): API Gateway HTTP API, payload 2.0,
//! IAM authorization on every route. Nothing runs here for long: a run is handed over and
//! answered 202 at once, well inside API Gateway's 29-second integration limit.
//!
//! - `POST /workflows/{name}`: `deactivate-configs`, `deactivate-contacts`,
//!   `delete-itglue-org`, `offboard-user`, `rollback` (the body is the workflow's request, as
//!   for the CLI or a direct invoke), or `client-offboarding` (the chain's request). The body
//!   is read into the request type at once: a bad one is `InvalidInput` (400) and nothing is
//!   started. Then an operation id is assigned, its acceptance recorded (`accepted.rs`), and the
//!   run handed over: a workflow through [`WorkflowInvoker`] (an asynchronous invoke of its
//!   function, which runs under that id), the chain through [`ChainStarter`] (an execution
//!   named `api-<operation id>`). 202 with the `operation_id` (and the execution).
//! - `GET /operations/{id}`: where the run stands, from the audit trail (and the API's record
//!   while the function has not yet written one), and its seed report once it has finished.
//!
//! Who is asking is the IAM principal API Gateway authenticated (`caller.rs`); a request with
//! none is `Unauthenticated` (401). Every refusal takes its status from the one table
//! (`ErrorCode::http_status`).

pub mod accepted;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use accepted::{Acceptance, Kept, run_assigned};

use super::caller::{API_PRINCIPAL_FIELD, ASSIGNED_OPERATION_ID_FIELD, http_api_principal, initiator};
use crate::chain::{ChainTrigger, ClientOffboardingRequest};
use crate::domain::{OperationDetail, OperationEventKind, Workflow, new_operation_id, now};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AuditStore, ChainStarter, WorkflowInvoker};
use crate::workflows::deactivate_configs::DeactivateConfigsRequest;
use crate::workflows::deactivate_contacts::DeactivateContactsRequest;
use crate::workflows::delete_itglue_org::DeleteOrgRequest;
use crate::workflows::offboard_user::OffboardUserRequest;
use crate::workflows::rollback::RollbackRequest;

/// The name `POST /workflows/{name}` starts the client-offboarding chain by.
pub const CHAIN: &str = "client-offboarding";

/// What the name of a chain execution the API started begins with: `api-<operation id>`.
pub const EXECUTION_PREFIX: &str = "api-";

/// The largest body the API reads (API Gateway's own limit is 10 MB; no request is near this).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the API function needs: the audit store, and how to start a workflow or the chain.
pub struct ApiDeps<'a> {
    pub audit: &'a dyn AuditStore,
    pub invoker: &'a dyn WorkflowInvoker,
    pub chain: &'a dyn ChainStarter,
}

/// Handle one HTTP API event. Always a proxy response; never panics.
pub async fn api_event(deps: &ApiDeps<'_>, event: Value) -> Value {
    match route(deps, event).await {
        Ok((status, body)) => proxy(status, &body),
        Err(error) => {
            let body = json!({"success": false, "errors": [{"code": error.code(), "message": error.to_string()}]});
            proxy(error.code().http_status(), &body)
        }
    }
}

fn proxy(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json" },
        "isBase64Encoded": false,
        "body": body.to_string(),
    })
}

async fn route(deps: &ApiDeps<'_>, event: Value) -> Result<(u16, Value), OfframpError> {
    if event.get("version").and_then(Value::as_str) != Some("2.0") {
        return Err(OfframpError::invalid_input("the API takes API Gateway HTTP API events (payload format 2.0)"));
    }
    let request: ApiGatewayV2httpRequest = serde_json::from_value(event)
        .map_err(|e| OfframpError::invalid_input(format!("not an API Gateway HTTP API event: {e}")))?;
    // Before anything else is read: who is asking.
    let principal = http_api_principal(&request)?;
    let parameter = |name: &str| request.path_parameters.get(name).map(String::as_str).unwrap_or_default();
    match request.route_key.as_deref().unwrap_or_default() {
        "POST /workflows/{name}" => {
            let body = body_of(&request)?;
            start(deps, parameter("name"), &principal, body).await
        }
        "GET /operations/{id}" => operation_status(deps.audit, parameter("id")).await,
        other => Err(OfframpError::new(ErrorCode::WorkflowNotFound, format!("no route '{other}' in this API"))),
    }
}

/// The body as a JSON object (base64 when the event says so).
fn body_of(request: &ApiGatewayV2httpRequest) -> Result<Value, OfframpError> {
    let raw = request.body.as_deref().unwrap_or_default();
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| OfframpError::invalid_input("the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(OfframpError::new(ErrorCode::PayloadTooLarge, format!("the body is over {MAX_BODY_BYTES} bytes")));
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(fields)) => Ok(Value::Object(fields)),
        Ok(_) => Err(OfframpError::invalid_input("the body must be a JSON object: the workflow's request")),
        Err(e) => Err(OfframpError::invalid_input(format!("request body: {e}"))),
    }
}

/// `body` read as `R`, the way the workflow's function will read it.
fn check<R: DeserializeOwned>(body: &Value) -> Result<(), OfframpError> {
    serde_json::from_value::<R>(body.clone())
        .map(drop)
        .map_err(|e| OfframpError::invalid_input(format!("request body: {e}; nothing was started")))
}

/// Read the body as `workflow`'s request; the workflow itself checks the rest when it runs.
fn check_request(workflow: Workflow, body: &Value) -> Result<(), OfframpError> {
    match workflow {
        Workflow::DeactivateConfigs => check::<DeactivateConfigsRequest>(body),
        Workflow::DeactivateContacts => check::<DeactivateContactsRequest>(body),
        Workflow::DeleteItglueOrg => check::<DeleteOrgRequest>(body),
        Workflow::Rollback => check::<RollbackRequest>(body),
        Workflow::OffboardUser => check::<OffboardUserRequest>(body),
        Workflow::ClientOffboarding => check::<ClientOffboardingRequest>(body),
    }
}

fn text_field(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

async fn start(deps: &ApiDeps<'_>, name: &str, principal: &str, body: Value) -> Result<(u16, Value), OfframpError> {
    if name == CHAIN {
        return start_chain(deps, principal, body).await;
    }
    let workflow: Workflow = name.parse().map_err(|_| {
        let names: Vec<&str> = Workflow::ALL.iter().map(|w| w.as_str()).chain([CHAIN]).collect();
        let message = format!("no workflow '{name}'; one of {}; nothing was started", names.join(", "));
        OfframpError::new(ErrorCode::WorkflowNotFound, message)
    })?;
    check_request(workflow, &body)?;
    let operation_id = new_operation_id();
    let initiated_by = initiator(principal, text_field(&body, "initiated_by")).unwrap_or_default();
    let acceptance =
        Acceptance { workflow: workflow.as_str().into(), initiated_by, accepted_at: now(), execution_id: None };
    accepted::accept(deps.audit, &operation_id, &acceptance).await?;
    let mut event = body;
    event[ASSIGNED_OPERATION_ID_FIELD] = json!(operation_id);
    event[API_PRINCIPAL_FIELD] = json!(principal);
    if let Err(e) = deps.invoker.invoke_async(workflow, &event).await {
        accepted::withdraw(deps.audit, &operation_id).await;
        return Err(e);
    }
    tracing::info!(operation_id, workflow = %workflow, principal, "accepted; handed to the workflow's function");
    Ok((202, accepted_answer(&operation_id, workflow.as_str(), None)))
}

fn accepted_answer(operation_id: &str, workflow: &str, execution_id: Option<&str>) -> Value {
    let mut answer = json!({
        "operation_id": operation_id,
        "workflow": workflow,
        "status": "accepted",
        "status_url": format!("/operations/{operation_id}"),
    });
    if let Some(execution) = execution_id {
        answer["execution_id"] = json!(execution);
    }
    answer
}

/// The chain: the principal is the initiator; a body's `initiated_by` or `on_behalf_of` is
/// only whom it is for. The execution is named after the operation id, so the two are linked
/// and a retry of the start cannot start a second execution.
async fn start_chain(deps: &ApiDeps<'_>, principal: &str, body: Value) -> Result<(u16, Value), OfframpError> {
    let mut request: ClientOffboardingRequest = serde_json::from_value(body)
        .map_err(|e| OfframpError::invalid_input(format!("request body: {e}; nothing was started")))?;
    let named = request.on_behalf_of.take().or(request.initiated_by.take());
    request.on_behalf_of = named.filter(|n| !n.trim().is_empty() && n != principal);
    request.initiated_by = Some(principal.to_string());
    request.trigger = Some(ChainTrigger::Api);
    let operation_id = new_operation_id();
    let execution_name = format!("{EXECUTION_PREFIX}{operation_id}");
    let initiated_by = initiator(principal, request.on_behalf_of.clone()).unwrap_or_default();
    let acceptance = Acceptance {
        workflow: CHAIN.into(),
        initiated_by,
        accepted_at: now(),
        execution_id: Some(execution_name.clone()),
    };
    accepted::accept(deps.audit, &operation_id, &acceptance).await?;
    let started = match deps.chain.start(&execution_name, &request).await {
        Ok(started) => started,
        Err(e) => {
            accepted::withdraw(deps.audit, &operation_id).await;
            return Err(e);
        }
    };
    Ok((202, accepted_answer(&operation_id, CHAIN, Some(&started.execution_id))))
}

/// Where a run stands, as the audit trail says.
fn trail_status(detail: &OperationDetail) -> &'static str {
    match detail.last_event().map(|e| e.kind) {
        None | Some(OperationEventKind::Started | OperationEventKind::Resumed) => "running",
        Some(OperationEventKind::Planned) => "planned",
        // Stopped before its invocation's deadline; the state machine continues it.
        Some(OperationEventKind::Paused) => "paused",
        Some(
            OperationEventKind::ApprovalRequired
            | OperationEventKind::ApprovalRequested
            | OperationEventKind::ApprovalAttemptRefused,
        ) => "awaiting_approval",
        // Decided: the chain binds the approval and goes on.
        Some(OperationEventKind::ApprovalDecided) => "running",
        Some(OperationEventKind::Completed) => "completed",
        Some(OperationEventKind::Failed) => "failed",
        Some(OperationEventKind::Refused) => "refused",
    }
}

/// A finished run's status from its report, when the trail does not say it ended (a run
/// refused before it recorded anything, such as an unknown client; the chain, whose parent
/// operation has an id of its own): a dry run's plan and a rejected chain say so.
fn report_status(report: &Value) -> &'static str {
    match report.get("status").and_then(Value::as_str) {
        Some("planned") => "planned",
        Some("rejected") => "rejected",
        _ if report.get("success") == Some(&Value::Bool(true)) => "completed",
        _ => "failed",
    }
}

async fn operation_status(audit: &dyn AuditStore, id: &str) -> Result<(u16, Value), OfframpError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(OfframpError::invalid_input(format!("'{id}' is not an operation id (a UUID)")));
    }
    let kept = accepted::read(audit, id).await?;
    let detail = audit.operation(id).await.map_err(OfframpError::from)?;
    let trail = detail.as_ref().map(trail_status);
    let mut answer = json!({ "operation_id": id });
    let status = match &kept {
        None if detail.is_none() => {
            return Err(OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {id}")));
        }
        None => trail.unwrap_or("running"),
        Some(Kept::Accepted(acceptance)) => {
            answer["workflow"] = json!(acceptance.workflow);
            answer["initiated_by"] = json!(acceptance.initiated_by);
            answer["accepted_at"] = json!(crate::domain::iso8601(acceptance.accepted_at));
            if let Some(execution) = &acceptance.execution_id {
                answer["execution_id"] = json!(execution);
            }
            match trail {
                Some(status) => status,
                None if accepted::run_started(audit, id).await? => "running",
                None => "accepted",
            }
        }
        Some(Kept::Finished(report)) => {
            answer["report"] = report.clone();
            match trail {
                Some("running") | None => report_status(report),
                Some(status) => status,
            }
        }
    };
    if let Some(detail) = &detail {
        let op = &detail.operation;
        answer["workflow"] = json!(op.workflow.as_str());
        answer["initiated_by"] = json!(op.initiated_by);
        answer["client_id"] = json!(op.client_id);
        answer["dry_run"] = json!(op.dry_run);
        if let Some(last) = detail.last_event() {
            answer["last_event"] = json!({"kind": last.kind.as_str(), "at": crate::domain::iso8601(last.at)});
        }
    }
    answer["status"] = json!(status);
    answer["finished"] = json!(matches!(kept, Some(Kept::Finished(_))));
    Ok((200, answer))
}
