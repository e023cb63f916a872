//! Lambda `deactivate-configs` (workflow 000, docs/workflows.md#000-configuration-deactivation).
//! Thin: build the adapters once per cold start, then hand every event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::DeactivateConfigs).await
}
