//! Lambda `orchestrator`: the client-offboarding chain's own actions (resolve, bind,
//! finalize) for the state machine in infra/statemachine/ (docs/architecture.md#the-client-offboarding-chain).
//! Thin: build the adapters once per cold start, then hand every event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::Orchestrator).await
}
