//! The real `deactivate-configs` Lambda binary, run by `cargo lambda watch` (the Lambda
//! runtime API emulator), invoked with a file from `events/`. Its credentials come from
//! Secrets Manager and its audit trail goes to DynamoDB — both moto on loopback — and it
//! talks to the ConnectWise sandbox over HTTP. Nothing in the binary knows it is a test.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::ports::AuditStore;
use offramp_sandbox::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, Sandbox, SandboxConfig};
use offramp_tests::connectwise::assert_seed_shape;
use offramp_tests::moto;
use serde_json::{Value, json};

/// Kills the whole process group (watch and the function it started) on drop.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: plain syscall on a process group we created.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

#[tokio::test]
async fn deactivate_configs_binary_runs_under_cargo_lambda_watch() {
    let moto_url = moto::moto_url();
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();

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

    let venv_bin = workspace().join(".venv/bin");
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let port = free_port();
    let env_vars = [
        ("OFFRAMP_PSA", "connectwise".to_string()),
        ("CONNECTWISE_URL", sandbox.connectwise_url()),
        ("CONNECTWISE_RATE_LIMIT", "0".to_string()),
        ("OFFRAMP_SECRET_ID", secret_name.clone()),
        ("OFFRAMP_AUDIT_TABLE", table.clone()),
        ("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".to_string()),
        ("AWS_ENDPOINT_URL", moto_url.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    let env_arg = env_vars.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    std::fs::create_dir_all(workspace().join("target")).unwrap();
    let log = std::fs::File::create(workspace().join("target/lambda-watch.log")).unwrap();
    let child = Command::new("cargo")
        .current_dir(workspace())
        .env("PATH", &path)
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--env-vars",
            &env_arg,
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("cargo lambda watch (installed by make setup into .venv)");
    let _watch = Watch(child);

    // The first invoke builds the function (reusing `cargo build`'s artefacts where it can).
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("events/deactivate-configs/direct-invoke.json")).unwrap(),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/deactivate-configs/invocations");
    let http = reqwest::Client::new();
    let start = Instant::now();
    let response = loop {
        match http.post(&url).json(&event).timeout(Duration::from_secs(600)).send().await {
            Ok(response) => break response,
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cargo lambda watch did not answer: {e} (see target/lambda-watch.log)"),
        }
    };
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    let report: Value = response.json().await.unwrap();
    assert_seed_shape(&report);
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(report["statistics"]["configs_deactivated"], 9);
    assert_eq!(sandbox.stats().patches(), 9);

    // The function wrote its audit trail to DynamoDB.
    let operation_id = report["operation_id"].as_str().unwrap();
    let detail = store.operation(operation_id).await.unwrap().expect("operation in DynamoDB");
    assert_eq!(detail.snapshots.len(), 11);
    assert_eq!(detail.operation.initiated_by, "tech@msp.example");
    assert_eq!(detail.changes.len(), 11);

    // Its logs are JSON lines that carry the operation id and the Lambda request id.
    let log = std::fs::read_to_string(workspace().join("target/lambda-watch.log")).unwrap();
    let tagged = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .find(|line| line.to_string().contains(operation_id))
        .expect("a JSON log line naming the operation");
    let spans = tagged["spans"].to_string();
    assert!(spans.contains("request_id") && spans.contains(operation_id), "{tagged}");
}
