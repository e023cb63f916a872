//! The real `deactivate-configs` Lambda binary against `cargo lambda watch` (the Lambda
//! runtime API emulator), invoked with a file from `events/`. Its credentials come from
//! Secrets Manager and its audit trail goes to DynamoDB — both moto on loopback — and it
//! talks to the ConnectWise sandbox over HTTP. Nothing in the binary knows it is a test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::ports::AuditStore;
use offramp_sandbox::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, Sandbox, SandboxConfig};
use offramp_tests::connectwise::assert_seed_shape;
use offramp_tests::lambda_emulator::{Emulator, free_port, workspace};
use offramp_tests::moto;
use serde_json::{Value, json};

/// The name the emulator serves the function under (its package's).
const FUNCTION: &str = "deactivate-configs";

/// The `deactivate-configs` binary running under the emulator, with its sandbox, its audit
/// table and its log (`target/lambda-watch-{name}.log`, one per test: nextest runs them at once).
struct Deployed {
    sandbox: Sandbox,
    store: DynamoDbAuditStore,
    log_path: PathBuf,
    emulator: Emulator,
}

impl Deployed {
    async fn start(name: &str) -> Self {
        let moto_url = moto::moto_url();
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();

        // Credentials in Secrets Manager, an audit table in DynamoDB.
        let secret_name = format!("offramp-watch-{}", uuid::Uuid::now_v7());
        let secret = json!({
            "CONNECTWISE_COMPANY_ID": CW_COMPANY_ID,
            "CONNECTWISE_PUBLIC_KEY": CW_PUBLIC_KEY,
            "CONNECTWISE_PRIVATE_KEY": CW_PRIVATE_KEY,
            "CONNECTWISE_CLIENT_ID": CW_CLIENT_ID,
        });
        moto::secrets_client()
            .await
            .create_secret()
            .name(&secret_name)
            .secret_string(secret.to_string())
            .send()
            .await
            .expect("create secret");
        let table = format!("offramp-watch-{}", uuid::Uuid::now_v7());
        let store = DynamoDbAuditStore::new(moto::dynamodb_client().await, table.clone());
        store.create_table_if_missing().await.expect("create table");

        let env_vars = [
            ("OFFRAMP_PSA", "connectwise".to_string()),
            ("CONNECTWISE_URL", sandbox.connectwise_url()),
            ("CONNECTWISE_RATE_LIMIT", offramp_tests::connectwise::TEST_RATE_LIMIT.to_string()),
            ("OFFRAMP_SECRET_ID", secret_name.clone()),
            ("OFFRAMP_AUDIT_TABLE", table.clone()),
            ("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".to_string()),
            ("AWS_ENDPOINT_URL", moto_url.clone()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            // Everything it can log: the log is grepped for the credentials below.
            ("RUST_LOG", "trace".to_string()),
        ];
        let env: Vec<(String, String)> = env_vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let log_path = workspace().join(format!("target/lambda-watch-{name}.log"));
        // The emulator alone, and the binary the workspace build already made, so the test
        // does not wait for cargo-lambda to compile it again with other features.
        let mut emulator = Emulator::start(free_port(), log_path.clone()).await;
        emulator.start_function(FUNCTION, &env);
        Self { sandbox, store, log_path, emulator }
    }

    /// Invoke the function with a file of `events/` through the emulator's Invoke API,
    /// as `aws lambda invoke` (RequestResponse) would.
    async fn invoke(&self, sample: &str) -> reqwest::Response {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(workspace().join("events").join(sample)).unwrap()).unwrap();
        let url = format!("http://127.0.0.1:{}/2015-03-31/functions/{FUNCTION}/invocations", self.emulator.port);
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            match http.post(&url).json(&event).timeout(Duration::from_secs(120)).send().await {
                Ok(response) => break response,
                Err(e) if start.elapsed() < Duration::from_secs(60) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("cargo lambda watch did not answer: {e} (see {})", self.log_path.display()),
            }
        }
    }

    /// The function's log lines that are JSON.
    fn log_lines(&self) -> Vec<Value> {
        let log = std::fs::read_to_string(&self.log_path).unwrap();
        log.lines().filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok()).collect()
    }
}

#[tokio::test]
async fn deactivate_configs_binary_runs_under_cargo_lambda_watch() {
    let deployed = Deployed::start("report").await;
    let (sandbox, store, log_path) = (&deployed.sandbox, &deployed.store, &deployed.log_path);
    let response = deployed.invoke("deactivate-configs/direct-invoke.json").await;

    assert!(!is_function_error(&response), "{}", response.text().await.unwrap_or_default());
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_seed_shape(&report);
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(report["statistics"]["configs_deactivated"], 9);
    assert_eq!(sandbox.stats().patches(), 9);

    // The function wrote its audit trail to DynamoDB.
    let operation_id = report["operation_id"].as_str().unwrap();
    let detail = store.operation(operation_id).await.unwrap().expect("operation in DynamoDB");
    assert_eq!(detail.snapshots.len(), 11);
    let by = &detail.operation.initiated_by;
    assert!(by.starts_with("lambda:"), "the invoked function asks: {by}");
    assert_eq!(offramp::domain::on_behalf_of(by), Some("tech@msp.example"), "the body only on behalf of: {by}");
    // One record per configuration, and before each of the 9 updates its intent (write-ahead).
    let intents = detail.changes.iter().filter(|c| c.outcome == offramp::domain::ItemOutcome::Intended).count();
    assert_eq!((detail.changes.len() - intents, intents), (11, 9));

    // Its logs are JSON lines that carry the operation id and the Lambda request id.
    let log = std::fs::read_to_string(log_path).unwrap();
    let tagged = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .find(|line| line.to_string().contains(operation_id))
        .expect("a JSON log line naming the operation");
    let spans = tagged["spans"].to_string();
    assert!(spans.contains("request_id") && spans.contains(operation_id), "{tagged}");

    // At trace level, with the credentials read from Secrets Manager, none of them appears in
    // the log in any form (raw, base64, percent-encoded, JSON-escaped, the Basic token).
    let mut secrets = crate::secret_leaks::forms(CW_PRIVATE_KEY);
    secrets.extend(crate::secret_leaks::forms(CW_PUBLIC_KEY));
    secrets.extend(crate::secret_leaks::basic_token(CW_COMPANY_ID, CW_PUBLIC_KEY, CW_PRIVATE_KEY));
    assert!(log.contains("TRACE"), "the function logged at trace level");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "{secret:?} in the Lambda log ({})", log_path.display());
    }
}

/// Whether the Invoke API says the function failed. AWS answers 200 with
/// `X-Amz-Function-Error: Unhandled`; `cargo lambda watch` (1.9.2) answers 500 without the
/// header, the same error payload in both. A success is 200 without the header in both.
fn is_function_error(response: &reqwest::Response) -> bool {
    response.headers().contains_key("x-amz-function-error")
        || response.status() == reqwest::StatusCode::INTERNAL_SERVER_ERROR
}

/// A direct invoke (what Step Functions and an asynchronous invoke send) whose run fails is
/// a Lambda error through the real runtime: the Invoke API says the function failed and
/// its payload is `{"errorType": <the code>, "errorMessage": <JSON with the operation id>}`.
/// The report is not lost: the function logs it whole, with the operation id, and the trail
/// in DynamoDB holds the operation. An API Gateway event failing the same way is answered
/// as before, with the status table's 207 and no Lambda error.
#[tokio::test]
async fn a_failing_direct_invoke_is_a_lambda_error_named_by_its_code() {
    let deployed = Deployed::start("error").await;
    deployed.sandbox.connectwise().fail_configuration_update(25002, 400, "Configuration is locked by an agreement");

    let response = deployed.invoke("deactivate-configs/partial-failure.json").await;
    let (failed, status, headers) = (is_function_error(&response), response.status(), response.headers().clone());
    let payload: Value = response.json().await.expect("the error payload is JSON");
    assert!(failed, "status {status}, {headers:?}: {payload}");
    assert_eq!(payload["errorType"], "ConfigUpdateFailed", "{payload}");
    let message: Value = serde_json::from_str(payload["errorMessage"].as_str().expect("errorMessage")).unwrap();
    assert!(message["message"].as_str().unwrap().contains("locked by an agreement"), "{message}");
    let operation_id = message["operation_id"].as_str().expect("the operation id, for a Catch to hand on");

    // The operation is in the trail, with the refused configuration's failure.
    let detail = deployed.store.operation(operation_id).await.unwrap().expect("operation in DynamoDB");
    let failed: Vec<_> = detail.changes.iter().filter(|c| c.outcome == offramp::domain::ItemOutcome::Failed).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].error_code.as_deref(), Some("ConfigUpdateFailed"));

    // The report was logged whole, at ERROR, with the error type and the operation id.
    let lines = deployed.log_lines();
    let logged = lines
        .iter()
        .find(|line| line["error_type"] == "ConfigUpdateFailed")
        .unwrap_or_else(|| panic!("no log line of the Lambda error ({})", deployed.log_path.display()));
    assert_eq!(logged["level"], "ERROR", "{logged}");
    assert_eq!(logged["operation_id"], operation_id, "{logged}");
    let report: Value = serde_json::from_str(logged["report"].as_str().unwrap()).unwrap();
    assert_eq!(report["operation_id"], operation_id);
    assert_eq!(report["statistics"]["configs_deactivated"], 8, "{report}");
    assert!(logged["spans"].to_string().contains("request_id"), "{logged}");

    // A request refused before it runs is a Lambda error too, named InvalidInput.
    let refused = deployed.invoke("deactivate-configs/invalid-input.json").await;
    assert!(is_function_error(&refused), "{refused:?}");
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["errorType"], "InvalidInput", "{refused}");

    // Behind API Gateway the same failure (the same client, the locked configuration still
    // active) is the table's 207, a proxy response, no Lambda error.
    let api = deployed.invoke("deactivate-configs/api-gateway-retry.json").await;
    assert!(!is_function_error(&api), "{api:?}");
    assert_eq!(api.status(), 200);
    let api: Value = api.json().await.unwrap();
    assert_eq!(api["statusCode"], 207, "{api}");
}
