//! The real `deactivate-configs` Lambda binary against `cargo lambda watch` (the Lambda
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

/// Kills the whole process group (the emulator, or the function) on drop.
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

/// The `deactivate-configs` binary of this build. `cargo nextest run --workspace` (what
/// `make test` runs) builds it beside this test; run alone, the test builds it first when
/// it is missing or older than the code it is made from, so it never tests a stale binary.
fn function_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let binary = target.join("debug/deactivate-configs");
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let newest_source = ["shared/src", "functions/deactivate-configs/src"]
        .iter()
        .flat_map(|dir| walk(&workspace().join(dir)))
        .filter_map(|file| std::fs::metadata(file).and_then(|m| m.modified()).ok())
        .max();
    if built.is_none() || newest_source > built {
        let status = Command::new("cargo")
            .current_dir(workspace())
            .args(["build", "-p", "deactivate-configs"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build -p deactivate-configs");
    }
    binary
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
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
    std::fs::create_dir_all(workspace().join("target")).unwrap();
    let log_path = workspace().join("target/lambda-watch.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // The emulator alone (`--only-lambda-apis`): the function is the binary the workspace
    // build already made, started here with the variables the emulator names, so the test
    // does not wait for cargo-lambda to compile it again with other features.
    let emulator = Command::new("cargo")
        .current_dir(workspace())
        .env("PATH", &path)
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap())
        .process_group(0)
        .spawn()
        .expect("cargo lambda watch (installed by make setup into .venv)");
    let _emulator = Watch(emulator);
    // The function asks the runtime API for its first event as it starts: the emulator must listen.
    let listening = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(listening.elapsed() < Duration::from_secs(60), "the emulator never listened (target/lambda-watch.log)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let function = Command::new(function_binary())
        .env_clear()
        .envs(env_vars.iter().map(|(k, v)| (*k, v.as_str())))
        // What `cargo lambda watch --only-lambda-apis` says the function must be given; it
        // serves a function started this way under the name `_`.
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start the deactivate-configs binary");
    let _function = Watch(function);

    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("events/deactivate-configs/direct-invoke.json")).unwrap(),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/_/invocations");
    let http = reqwest::Client::new();
    let start = Instant::now();
    let response = loop {
        match http.post(&url).json(&event).timeout(Duration::from_secs(120)).send().await {
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
    // One record per configuration, and before each of the 9 updates its intent (write-ahead).
    let intents = detail.changes.iter().filter(|c| c.outcome == offramp::domain::ItemOutcome::Intended).count();
    assert_eq!((detail.changes.len() - intents, intents), (11, 9));

    // Its logs are JSON lines that carry the operation id and the Lambda request id.
    let log = std::fs::read_to_string(&log_path).unwrap();
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
        assert!(!log.contains(secret.as_str()), "{secret:?} in the Lambda log (target/lambda-watch.log)");
    }
}
