//! The Lambda runtime loop every function binary runs (feature `lambda`): build the
//! adapters once per cold start, then hand every event to [`crate::entry::handle`].

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use tracing::Instrument;

use crate::config::ConfigSource;
use crate::entry::{Function, FunctionServices};
use crate::logging::{self, LogFormat};

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
        Ok::<Value, Error>(services.handle(function, payload, &invoked_by).instrument(span).await)
    }))
    .await
}
