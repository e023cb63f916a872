//! The whole deployment on loopback: the state machine of
//! `infra/statemachine/client-offboarding.asl.json` executed by moto's Step Functions
//! interpreter; every task a real Lambda binary under `cargo lambda watch`; DynamoDB,
//! Secrets Manager and S3 on the same moto; the vendors the sandbox. Shared by the
//! end-to-end test (tests/integration/end_to_end.rs) and the continuation bench
//! (tests/bench/continuation.rs), docs/testing.md#end-to-end.
//!
//! Why a moto of its own: moto's interpreter calls Lambda on `localhost:$MOTO_PORT`, so
//! this moto is started with `MOTO_PORT` set to the emulator's port, where the functions
//! are served by their bare names (the definition's ARNs are substituted by those names,
//! as `DefinitionSubstitutions` substitutes ARNs in AWS). The shared moto of the other
//! tests keeps Step Functions in its default mode.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::ports::SettingsStore;
use offramp_sandbox::{
    CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, ITGLUE_API_KEY,
    Sandbox, SandboxConfig,
};
use serde_json::json;

use crate::lambda_emulator::{Emulator, ProcessGroup, free_port, wait_for_port, workspace};
use crate::webhooks::CW_URL_TOKEN;

/// The export bucket (here without its KMS key: moto's S3 does not need one); it also
/// keeps the evidence reports.
pub const BUCKET: &str = "offramp-e2e-exports";
/// The audit table.
pub const TABLE: &str = "offramp-e2e-audit";

/// The functions the chain runs, by the names the emulator serves them under, and the
/// definition's substitution each one fills.
pub const FUNCTIONS: [(&str, &str); 5] = [
    ("orchestrator", "OrchestratorFunctionArn"),
    ("offboard-user", "OffboardUserFunctionArn"),
    ("deactivate-contacts", "DeactivateContactsFunctionArn"),
    ("deactivate-configs", "DeactivateConfigsFunctionArn"),
    ("delete-itglue-org", "DeleteItGlueOrgFunctionArn"),
];

/// moto on its own port, calling Lambda on the emulator's.
pub struct PrivateMoto {
    pub url: String,
    _process: ProcessGroup,
}

impl PrivateMoto {
    pub async fn start(lambda_port: u16, log: &std::path::Path) -> Self {
        let venv = std::env::var("OFFRAMP_VENV").map(PathBuf::from).unwrap_or_else(|_| workspace().join(".venv"));
        let port = free_port();
        let file = std::fs::File::create(log).unwrap();
        // `make bench` (OFFRAMP_MOTO_BENCH=1) runs the bench's moto: moto's answers, DynamoDB
        // served one request at a time and fast enough for a 300,000-record trail, with
        // `ClientRequestToken` honoured (scripts/moto_bench_server.py, docs/reliability.md).
        let mut command = if std::env::var("OFFRAMP_MOTO_BENCH").as_deref() == Ok("1") {
            let mut command = Command::new(venv.join("bin/python"));
            command.arg(workspace().join("scripts/moto_bench_server.py"));
            command
        } else {
            Command::new(venv.join("bin/moto_server"))
        };
        let process = ProcessGroup::spawn(
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_PORT", lambda_port.to_string())
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file),
            "moto_server (installed by make setup into .venv)",
        );
        wait_for_port(port, "moto", log).await;
        let url = format!("http://127.0.0.1:{port}");
        // The real ASL interpreter, and no Docker for Lambda (the tasks go to the emulator).
        let config = json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}});
        let answer = reqwest::Client::new().post(format!("{url}/moto-api/config")).json(&config).send().await;
        assert!(answer.is_ok_and(|a| a.status().is_success()), "moto's execution mode");
        Self { url, _process: process }
    }

    pub async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_sfn::config::Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await
    }
}

/// Everything deployed: the sandbox, moto, the emulator with every function running.
pub struct Deployment {
    pub sandbox: Sandbox,
    pub moto: PrivateMoto,
    pub emulator: Emulator,
    pub sfn: aws_sdk_sfn::Client,
    pub machine: String,
    pub audit: DynamoDbAuditStore,
    exports: tempfile::TempDir,
    /// Variables each function gets besides the template's (`Deployment::set_env`).
    overrides: Vec<(String, String, String)>,
    /// Where the function binaries are; `None`: this build's debug binaries, built when stale.
    pub binaries: Option<PathBuf>,
}

impl Deployment {
    /// The deployment on `sandbox`'s vendors, logs under `target/<logs>`; no function runs
    /// until [`Deployment::start_functions`].
    pub async fn start(sandbox: SandboxConfig, logs: &str) -> Self {
        let sandbox = Sandbox::start(sandbox).await.unwrap();
        let logs = workspace().join("target").join(logs);
        std::fs::create_dir_all(&logs).unwrap();
        let lambda_port = free_port();
        let moto = PrivateMoto::start(lambda_port, &logs.join("moto.log")).await;
        let config = moto.config().await;
        let emulator = Emulator::start(lambda_port, logs.join("lambda.log")).await;

        let audit = DynamoDbAuditStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE.to_string());
        audit.create_table_if_missing().await.expect("the audit table");
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        let psa_secret = json!({
            "CONNECTWISE_COMPANY_ID": CW_COMPANY_ID, "CONNECTWISE_PUBLIC_KEY": CW_PUBLIC_KEY,
            "CONNECTWISE_PRIVATE_KEY": CW_PRIVATE_KEY, "CONNECTWISE_CLIENT_ID": CW_CLIENT_ID,
            "CONNECTWISE_WEBHOOK_URL_TOKEN": CW_URL_TOKEN,
        });
        let m365_secret = json!({"MS_CLIENT_ID": GRAPH_CLIENT_ID, "MS_CLIENT_SECRET": GRAPH_CLIENT_SECRET});
        let itglue_secret = json!({"ITGLUE_API_KEY": ITGLUE_API_KEY});
        for (name, value) in
            [("offramp/psa", psa_secret), ("offramp/itglue", itglue_secret), ("offramp/m365", m365_secret)]
        {
            secrets.create_secret().name(name).secret_string(value.to_string()).send().await.expect("a secret");
        }

        // The export bucket (versioned, Object Lock), which also keeps the evidence reports.
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        s3.create_bucket().bucket(BUCKET).object_lock_enabled_for_bucket(true).send().await.expect("the bucket");

        let sfn = aws_sdk_sfn::Client::new(&config);
        let machine = create_state_machine(&sfn).await;
        let exports = tempfile::tempdir().unwrap();
        Self { sandbox, moto, emulator, sfn, machine, audit, exports, overrides: Vec::new(), binaries: None }
    }

    /// Records one organization setting in the trail's table (`scope`: a client id or
    /// `GLOBAL_SCOPE`), as `offramp settings set` does.
    pub async fn put_setting(&self, scope: &str, key: &str, value: &str) {
        let record = crate::audit_conformance::setting_record("connectwise", scope, key, Some(value));
        self.audit.put_setting(&record).await.expect("a setting");
    }

    /// `function` gets `key=value` on top of the template's variables (set before
    /// [`Deployment::start_functions`]).
    pub fn set_env(&mut self, function: &str, key: &str, value: &str) {
        self.overrides.push((function.into(), key.into(), value.into()));
    }

    /// What every function is given: the template's Globals and each function's own
    /// variables (infra/template.yaml), with the sandbox's URLs and moto for AWS.
    pub fn environment(&self, function: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("OFFRAMP_PSA", "connectwise".to_string()),
            ("CONNECTWISE_URL", self.sandbox.connectwise_url()),
            ("CONNECTWISE_RATE_LIMIT", crate::connectwise::TEST_RATE_LIMIT.to_string()),
            ("OFFRAMP_SECRET_PSA", "offramp/psa".to_string()),
            ("OFFRAMP_AUDIT_TABLE", TABLE.to_string()),
            ("OFFRAMP_CW_INACTIVE_STATUS", "Inactive".to_string()),
            ("RUST_LOG", "info".to_string()),
            ("AWS_ENDPOINT_URL", self.moto.url.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ];
        let offboarded = [("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".to_string())];
        let notifier = [
            ("OFFRAMP_NOTIFIER", "webhook".to_string()),
            ("OFFRAMP_WEBHOOK_URL", self.sandbox.webhook_url()),
            ("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "msp.example".to_string()),
        ];
        let itglue = [
            ("OFFRAMP_SECRET_ITGLUE", "offramp/itglue".to_string()),
            ("ITGLUE_URL", self.sandbox.itglue_url()),
            ("OFFRAMP_ITGLUE_POLL_SECONDS", "1".to_string()),
        ];
        let m365 = [
            ("OFFRAMP_SECRET_M365", "offramp/m365".to_string()),
            ("MS_LOGIN_URL", self.sandbox.entra_url()),
            ("GRAPH_URL", format!("{}/graph", self.sandbox.base_url())),
            ("EXO_URL", self.sandbox.exchange_url()),
        ];
        match function {
            "orchestrator" => {
                env.extend(offboarded.iter().chain(&notifier).chain(&itglue).chain(&m365).cloned());
                env.push(("OFFRAMP_APPROVAL_BASE_URL", "https://approvals.msp.example".to_string()));
                env.push(("OFFRAMP_EVIDENCE_BUCKET", BUCKET.to_string()));
                env.push(("OFFRAMP_EXPORT_DIR", self.exports.path().display().to_string()));
            }
            "webhook" => {
                env.extend(offboarded.iter().cloned());
                env.push(("OFFRAMP_STATE_MACHINE_ARN", self.machine.clone()));
                // The sandbox serves the signing keys; in AWS the default allow-list is
                // ConnectWise's own https hosts.
                env.push(("OFFRAMP_WEBHOOK_KEY_ORIGINS", self.sandbox.base_url()));
            }
            "approval" => env.push(("OFFRAMP_SECRET_PSA", String::new())),
            "offboard-user" => env.extend(m365.iter().chain(&notifier).cloned()),
            "deactivate-contacts" => env.extend(notifier.iter().cloned()),
            "deactivate-configs" => env.extend(offboarded.iter().cloned()),
            "delete-itglue-org" => {
                env.extend(offboarded.iter().chain(&itglue).cloned());
                // A local archive directory in place of the S3 bucket with Object Lock
                // (the S3 archive has tests of its own on moto).
                env.push(("OFFRAMP_EXPORT_DIR", self.exports.path().display().to_string()));
            }
            _ => {}
        }
        let mut env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        env.extend(self.overrides.iter().filter(|(f, _, _)| f == function).map(|(_, k, v)| (k.clone(), v.clone())));
        // A later value of a variable replaces an earlier one, as in the template.
        env.reverse();
        let mut seen = std::collections::BTreeSet::new();
        env.retain(|(k, _)| seen.insert(k.clone()));
        env
    }

    /// Starts every function: the chain's five, the webhook and the approval page.
    pub fn start_functions(&mut self) {
        for name in FUNCTIONS.iter().map(|(name, _)| *name).chain(["webhook", "approval"]) {
            let env = self.environment(name);
            match &self.binaries {
                Some(dir) => self.emulator.start_binary(&dir.join(name), name, &env),
                None => self.emulator.start_function(name, &env),
            }
        }
    }

    pub async fn execution(&self, arn: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        self.sfn.describe_execution().execution_arn(arn).send().await.expect("describe the execution")
    }

    pub async fn executions(&self) -> Vec<String> {
        let listed = self.sfn.list_executions().state_machine_arn(&self.machine).send().await.unwrap();
        listed.executions().iter().map(|e| e.name().to_string()).collect()
    }
}

/// The definition from `infra/`, its ARNs substituted by the functions' names.
async fn create_state_machine(sfn: &aws_sdk_sfn::Client) -> String {
    let path = workspace().join("infra/statemachine/client-offboarding.asl.json");
    let mut definition = std::fs::read_to_string(path).unwrap();
    for (name, substitution) in FUNCTIONS {
        definition = definition.replace(&format!("${{{substitution}}}"), name);
    }
    assert!(!definition.contains("${"), "every substitution is filled: {definition}");
    let created = sfn
        .create_state_machine()
        .name("client-offboarding")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/offramp-state-machine")
        .send()
        .await
        .expect("create the state machine");
    created.state_machine_arn().to_string()
}
