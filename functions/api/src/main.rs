//! Lambda `api`: the HTTP API behind API Gateway (payload 2.0, IAM authorization):
//! `POST /workflows/{name}` answers 202 and starts the run asynchronously,
//! `GET /operations/{id}` reads its status. Thin: everything is in `offramp::entry::api`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    offramp::lambda::serve_api().await
}
