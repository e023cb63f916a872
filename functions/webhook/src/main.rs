//! Lambda `webhook` (issue 15, docs/architecture.md#psa-webhooks): a PSA's delivery is
//! authenticated, recorded once and routed; an offboarded client's chain is started and the
//! answer goes back at once. Thin: build the adapters once per cold start, then hand every
//! event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::Webhook).await
}
