//! Lambda `deactivate-contacts` (workflow 001, docs/workflows.md#001-contact-deactivation).
//! Thin: build the adapters once per cold start, then hand every event to `offramp::entry`.

use offramp::entry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve(Function::DeactivateContacts).await
}
