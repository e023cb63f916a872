//! The Lambda runtime loop every function binary runs (feature `lambda`): build the
//! adapters once per cold start, then hand every event to [`crate::entry::handle`].

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use tracing::Instrument;

use crate::config::ConfigSource;
use crate::entry::{Answer, Function, FunctionServices};
use crate::logging::{self, LogFormat};

/// What the runtime is told: the payload, or the Lambda error (`errorType`, `errorMessage`)
/// of a run that failed or was refused on a trigger that is not API Gateway. The report of
/// such a run is not returned to the caller, so it is logged first, whole, with its
/// operation id: the log is where it is found (and in the audit trail, by that id).
fn into_result(answer: Answer) -> Result<Value, Diagnostic> {
    let Some(error) = answer.error.clone() else {
        return Ok(answer.payload);
    };
    tracing::error!(
        error_type = %error.error_type,
        operation_id = answer.operation_id().unwrap_or_default(),
        error_message = %error.error_message,
        report = %answer.payload,
        "the run failed: answered with a Lambda error, its report logged here"
    );
    Err(Diagnostic { error_type: error.error_type, error_message: error.error_message })
}

/// Serve the HTTP API function (`functions/api`, `entry::api`) until the runtime stops it:
/// the audit store and the asynchronous invoker, built once per cold start. Every answer is
/// a proxy response (API Gateway), never a Lambda error.
pub async fn serve_api() -> Result<(), Error> {
    logging::init("info", LogFormat::Json);
    let source = ConfigSource::from_env();
    let started = async {
        let audit = crate::app::audit_store(&source).await?;
        let invoker = crate::adapters::invoker_lambda::LambdaWorkflowInvoker::from_settings(&source).await?;
        let aws = crate::aws_sdk::loader(&source)?.load().await;
        let chain = crate::adapters::chain_sfn::StepFunctionsChainStarter::from_settings(&source, &aws)?;
        Ok::<_, crate::error::OfframpError>((audit, invoker, chain))
    };
    let (audit, invoker, chain) = started.await.map_err(|e| {
        tracing::error!(code = %e.code(), error = %e, "cannot start: configuration");
        e
    })?;
    let deps = crate::entry::api::ApiDeps { audit: audit.as_ref(), invoker: &invoker, chain: &chain };
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        let span = tracing::info_span!("api", request_id = %context.request_id);
        Ok::<Value, Diagnostic>(crate::entry::api::api_event(deps, payload).instrument(span).await)
    }))
    .await
}

/// Serve `function` until the runtime stops it. A configuration problem ends the cold
/// start with a logged, typed error rather than a failing first invocation.
pub async fn serve(function: Function) -> Result<(), Error> {
    logging::init("info", LogFormat::Json);
    // Clients (HTTP, AWS SDK, secrets) are built here, once, and reused by warm invocations.
    let services = FunctionServices::build(function, &ConfigSource::from_env()).await.map_err(|e| {
        tracing::error!(code = %e.code(), error = %e, "cannot start: configuration");
        e
    })?;
    let services = &services;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        let span = tracing::info_span!("invocation", request_id = %context.request_id);
        let invoked_by = format!("lambda:{}", context.invoked_function_arn);
        // Stop sending changes with time to spare; the report then carries a continuation.
        let deadline = services.invocation_limits().deadline(context.deadline);
        let answer = services.handle_until(function, payload, &invoked_by, deadline).instrument(span.clone()).await;
        span.in_scope(|| into_result(answer))
    }))
    .await
}

/// The `approval` function: the approval page behind API Gateway's HTTP API. Every request
/// gets a page (statuses from the one table), never a Lambda error: the caller is a browser.
pub async fn serve_approval_page() -> Result<(), Error> {
    logging::init("info", LogFormat::Json);
    let services = crate::app::build_approvals(&ConfigSource::from_env()).await.map_err(|e| {
        tracing::error!(code = %e.code(), error = %e, "cannot start: configuration");
        e
    })?;
    let services = &services;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        // The request id only: the path holds the token, and is never logged.
        let span = tracing::info_span!("approval", request_id = %context.request_id);
        let answer = crate::approval::page::handle_http_api(services.deps(), payload).instrument(span).await;
        Ok::<Value, Diagnostic>(answer)
    }))
    .await
}
