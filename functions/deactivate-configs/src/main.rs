//! Lambda `deactivate-configs` (seed 000). Thin: build the adapters once per cold
//! start, then hand every event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::DeactivateConfigs).await
}
