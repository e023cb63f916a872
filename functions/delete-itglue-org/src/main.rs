//! Lambda `delete-itglue-org` (seed 002). Thin: build the adapters once per cold
//! start, then hand every event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::DeleteItGlueOrg).await
}
