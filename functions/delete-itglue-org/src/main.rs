//! Lambda `delete-itglue-org` (workflow 002, docs/workflows.md#002-it-glue-organization-deletion).
//! Thin: build the adapters once per cold start, then hand every event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::DeleteItGlueOrg).await
}
