//! Lambda `delete-itglue-org` (seed 002). Thin: build the adapters once per cold
//! start, then hand every event to `offramp::entry`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use offramp::config::ConfigSource;
use offramp::logging::{self, LogFormat};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init("info", LogFormat::Json);
    // Clients (HTTP, AWS SDK, secrets) are built here, once, and reused by warm invocations.
    let services = offramp::app::build(&ConfigSource::from_env()).await.map_err(|e| {
        tracing::error!(code = %e.code(), error = %e, "cannot start: configuration");
        e
    })?;
    let services = &services;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        let span = tracing::info_span!("invocation", request_id = %context.request_id);
        let invoked_by = format!("lambda:{}", context.invoked_function_arn);
        Ok::<Value, Error>(
            offramp::entry::delete_itglue_org_event(services, payload, &invoked_by).instrument(span).await,
        )
    }))
    .await
}
