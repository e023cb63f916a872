//! Lambda `approval`: the approval page behind API Gateway's HTTP API (`GET` and `POST
//! /approvals/{token}`). Thin: build the adapters once per cold start, then hand every
//! request to `offramp::approval::page` (docs/architecture.md#approvals).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve_approval_page().await
}
