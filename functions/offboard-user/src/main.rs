//! Lambda `offboard-user`: offboards one user of a client's Microsoft 365 tenant (workflow
//! 003). Thin: build the adapters once per cold start, then hand every event to
//! `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::OffboardUser).await
}
