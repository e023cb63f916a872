//! The whole deployment on loopback (issue 15's end-to-end test): the state machine of
//! `infra/statemachine/client-offboarding.asl.json` executed by moto's Step Functions
//! interpreter; every task a real Lambda binary of this build under `cargo lambda watch`;
//! DynamoDB and Secrets Manager on the same moto; the vendors the sandbox. A signed
//! ConnectWise webhook starts the chain, an approver approves through the approval
//! function, and the simulators hold the result (docs/testing.md#end-to-end).
//!
//! Why a moto of its own: moto's interpreter calls Lambda on `localhost:$MOTO_PORT`, so
//! this moto is started with `MOTO_PORT` set to the emulator's port, where the functions
//! are served by their bare names (the definition's ARNs are substituted by those names,
//! as `DefinitionSubstitutions` substitutes ARNs in AWS). The shared moto of the other
//! tests keeps Step Functions in its default mode.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::domain::{GLOBAL_SCOPE, SettingRecord, Workflow};
use offramp::ports::{AuditStore, SettingsStore};
use offramp::workflows::org_settings::{APPROVERS, CHAIN_RECIPIENTS, WEBHOOK_ITGLUE_DELETION, WEBHOOK_WORKFLOWS};
use offramp_sandbox::{
    CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, ITGLUE_API_KEY,
    Sandbox, SandboxConfig,
};
use offramp_tests::lambda_emulator::{Emulator, ProcessGroup, free_port, wait_for_port, workspace};
use offramp_tests::webhook_storm::connectwise_event;
use offramp_tests::webhooks::{CW_URL_TOKEN, connectwise_company_body};
use serde_json::{Value, json};

/// The ConnectWise signing key the sandbox serves at its `key_url`.
const KEY_ID: &str = "e2e-key";
const SIGNING_KEY: &str = "e2e-signing-key-3a9f";
/// Contoso Dental: offboarded in the ConnectWise sandbox, with IT Glue organization 9001.
const CLIENT: i64 = 250;
/// Contoso Dental's IT Glue organization.
const ITGLUE_ORG: i64 = 9001;
/// The template's export bucket (here without its KMS key: moto's S3 does not need one).
const BUCKET: &str = "offramp-e2e-exports";
const APPROVER: &str = "approver@msp.example";

/// The functions the chain runs, by the names the emulator serves them under, and the
/// definition's substitution each one fills.
const FUNCTIONS: [(&str, &str); 5] = [
    ("orchestrator", "OrchestratorFunctionArn"),
    ("offboard-user", "OffboardUserFunctionArn"),
    ("deactivate-contacts", "DeactivateContactsFunctionArn"),
    ("deactivate-configs", "DeactivateConfigsFunctionArn"),
    ("delete-itglue-org", "DeleteItGlueOrgFunctionArn"),
];

/// moto on its own port, calling Lambda on the emulator's.
struct PrivateMoto {
    url: String,
    _process: ProcessGroup,
}

impl PrivateMoto {
    async fn start(lambda_port: u16, log: &std::path::Path) -> Self {
        let venv = std::env::var("OFFRAMP_VENV").map(PathBuf::from).unwrap_or_else(|_| workspace().join(".venv"));
        let port = free_port();
        let file = std::fs::File::create(log).unwrap();
        let process = ProcessGroup::spawn(
            Command::new(venv.join("bin/moto_server"))
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

    async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_sfn::config::Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await
    }
}

/// Everything deployed: the sandbox, moto, the emulator with every function running.
struct Deployment {
    sandbox: Sandbox,
    moto: PrivateMoto,
    emulator: Emulator,
    sfn: aws_sdk_sfn::Client,
    machine: String,
    audit: DynamoDbAuditStore,
    exports: tempfile::TempDir,
}

impl Deployment {
    async fn start() -> Self {
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
        sandbox.callback_keys().set_key(KEY_ID, SIGNING_KEY);
        let logs = workspace().join("target/end-to-end");
        std::fs::create_dir_all(&logs).unwrap();
        let lambda_port = free_port();
        let moto = PrivateMoto::start(lambda_port, &logs.join("moto.log")).await;
        let config = moto.config().await;
        let emulator = Emulator::start(lambda_port, logs.join("lambda.log")).await;

        let table = "offramp-e2e-audit".to_string();
        let audit = DynamoDbAuditStore::new(aws_sdk_dynamodb::Client::new(&config), table.clone());
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
        let mut deployment = Self { sandbox, moto, emulator, sfn, machine, audit, exports };
        deployment.settings().await;
        deployment.start_functions();
        deployment
    }

    /// The client's settings: a webhook saying it is offboarded starts the contacts, the
    /// configurations and the IT Glue deletion; approvals go to one approver.
    async fn settings(&self) {
        for (scope, key, value) in [
            (CLIENT.to_string(), WEBHOOK_WORKFLOWS, "deactivate-contacts,deactivate-configs"),
            (CLIENT.to_string(), WEBHOOK_ITGLUE_DELETION, "true"),
            (GLOBAL_SCOPE.to_string(), APPROVERS, APPROVER),
            (GLOBAL_SCOPE.to_string(), CHAIN_RECIPIENTS, "ops@msp.example"),
        ] {
            let record = SettingRecord {
                psa: "connectwise".into(),
                scope,
                key: key.into(),
                value: Some(value.into()),
                set_by: "e2e".into(),
                set_at: chrono::Utc::now(),
            };
            self.audit.put_setting(&record).await.expect("a setting");
        }
    }

    /// What every function is given: the template's Globals and each function's own
    /// variables (infra/template.yaml), with the sandbox's URLs and moto for AWS.
    fn environment(&self, function: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("OFFRAMP_PSA", "connectwise".to_string()),
            ("CONNECTWISE_URL", self.sandbox.connectwise_url()),
            ("CONNECTWISE_RATE_LIMIT", offramp_tests::connectwise::TEST_RATE_LIMIT.to_string()),
            ("OFFRAMP_SECRET_PSA", "offramp/psa".to_string()),
            ("OFFRAMP_AUDIT_TABLE", "offramp-e2e-audit".to_string()),
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
        // A later value of a variable replaces an earlier one, as in the template.
        env.reverse();
        let mut seen = std::collections::BTreeSet::new();
        env.retain(|(k, _)| seen.insert(k.clone()));
        env
    }

    fn start_functions(&mut self) {
        for name in FUNCTIONS.iter().map(|(name, _)| *name).chain(["webhook", "approval"]) {
            let env = self.environment(name);
            self.emulator.start_function(name, &env);
        }
    }

    async fn execution(&self, arn: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        self.sfn.describe_execution().execution_arn(arn).send().await.expect("describe the execution")
    }

    async fn executions(&self) -> Vec<String> {
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

/// An API Gateway HTTP API event for the approval page.
fn approval_event(method: &str, path: &str, form: Option<&str>) -> Value {
    let mut event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "approvals", "requestId": "r-approval", "stage": "$default",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "timeEpoch": 1796551200000i64
        },
        "isBase64Encoded": false
    });
    if let Some(form) = form {
        event["body"] = json!(form);
    }
    event
}

/// The path of the approval link the approver was sent (`/approvals/{token}`).
fn approval_path(posts: &[Value]) -> Option<String> {
    posts.iter().find_map(|post| {
        let text = post.to_string();
        let start = text.find("/approvals/")?;
        let token: String = text[start + "/approvals/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!token.is_empty()).then(|| format!("/approvals/{token}"))
    })
}

/// Polls until `ready` gives a value, or panics after `limit` with `what`.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut ready: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_signed_webhook_runs_the_whole_chain_through_the_state_machine() {
    let d = Deployment::start().await;
    let psa = d.sandbox.psa("connectwise");
    let configs = psa.configuration_ids_of(CLIENT);
    let contacts = psa.contact_ids_of(CLIENT);
    assert!(configs.iter().any(|id| psa.configuration_is_active(*id) == Some(true)), "work to do");
    // Its IT Glue organization was emptied beforehand: one with records is blocked (seed
    // 002's dependency check), which the workflow's own tests show.
    assert!(d.sandbox.itglue().remove_dependents(ITGLUE_ORG) > 0);

    // The PSA says the company is offboarded: the webhook function starts one execution.
    let body = connectwise_company_body("e2e-msg-1", &d.sandbox.connectwise_key_url(KEY_ID), CLIENT, "Offboarded");
    let delivery = connectwise_event(&body, SIGNING_KEY, CW_URL_TOKEN);
    let (status, answer) = d.emulator.invoke("webhook", &delivery).await;
    assert_eq!((status, &answer["statusCode"]), (200, &json!(202)), "{answer} (log: {})", d.emulator.log().display());
    let started: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let execution = started["execution_id"].as_str().expect("the execution's ARN").to_string();

    // The chain resolves, asks for approval and waits; the approver is sent the page's link.
    let path =
        until(Duration::from_secs(90), "the approval request", || async { approval_path(&d.sandbox.webhook_posts()) })
            .await;
    assert_eq!(d.execution(&execution).await.status(), &ExecutionStatus::Running);
    assert!(configs.iter().all(|id| psa.update_count(*id) == 0), "nothing changes before the approval");

    // The approver reads the page and approves through the approval function.
    let (_, page) = d.emulator.invoke("approval", &approval_event("GET", &path, None)).await;
    assert_eq!(page["statusCode"], 200, "{page}");
    assert!(page["body"].as_str().unwrap().contains("Contoso"), "the page names the client: {page}");
    let form = "name=Dana+Approver&decision=approve";
    let (_, decided) = d.emulator.invoke("approval", &approval_event("POST", &path, Some(form))).await;
    assert_eq!(decided["statusCode"], 200, "{decided}");

    // The execution runs every step and succeeds.
    let done = until(Duration::from_secs(180), "the execution's end", || async {
        let described = d.execution(&execution).await;
        (described.status() != &ExecutionStatus::Running).then_some(described)
    })
    .await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{done:?} (log: {})", d.emulator.log().display());
    let report: Value = serde_json::from_str(done.output().expect("the chain's report")).unwrap();
    assert_eq!(report["status"], "completed", "{report}");

    // The simulators hold the result.
    assert!(configs.iter().all(|id| psa.configuration_is_active(*id) != Some(true)), "every configuration inactive");
    assert!(contacts.iter().all(|id| psa.contact_is_active(*id) != Some(true)), "every contact inactive");
    assert!(contacts.iter().all(|id| psa.contact_update_count(*id) <= 1), "no contact updated twice");
    let itglue = d.sandbox.itglue();
    assert_eq!(itglue.deletions_requested(), 1, "one IT Glue deletion");
    assert!(
        !itglue.organization_exists(ITGLUE_ORG) || itglue.marked_for_deletion(ITGLUE_ORG),
        "the organization is gone"
    );
    let ticket: i64 = report["ticket_id"].as_str().expect("a ticket").parse().unwrap();
    let notes = psa.ticket(ticket).expect("the ticket").notes;
    assert!(notes.iter().any(|n| n.contains("Client offboarding of")), "the summary note: {notes:?}");

    // The trail links every child operation to the chain's, and names who asked.
    let parent = report["operation_id"].as_str().expect("the parent operation");
    let children = d.audit.child_operations(parent).await.unwrap();
    let applied: std::collections::BTreeSet<Workflow> =
        children.iter().filter(|c| !c.dry_run).map(|c| c.workflow).collect();
    let expected = [Workflow::DeactivateContacts, Workflow::DeactivateConfigs, Workflow::DeleteItglueOrg];
    let listed: Vec<(Workflow, bool)> = children.iter().map(|c| (c.workflow, c.dry_run)).collect();
    assert_eq!(applied, expected.into_iter().collect(), "{listed:?}; report: {report}");
    let detail = d.audit.operation(parent).await.unwrap().expect("the parent in DynamoDB");
    assert!(
        detail.operation.initiated_by.contains("connectwise"),
        "the webhook asked: {}",
        detail.operation.initiated_by
    );

    // Every step was run by the state machine's execution, on behalf of the webhook.
    for child in children.iter().filter(|c| !c.dry_run) {
        assert!(child.initiated_by.starts_with(&format!("states:{execution}")), "{}", child.initiated_by);
    }

    // The evidence report is in the bucket, names every change the steps made, and the
    // ticket's summary note points to it.
    let location = report["evidence"]["location"].as_str().unwrap_or_default();
    assert_eq!(location, format!("s3://{BUCKET}/evidence/{parent}.html"), "{report}");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&d.moto.config().await).force_path_style(true).build(),
    );
    let key = format!("evidence/{parent}.html");
    let object = s3.get_object().bucket(BUCKET).key(&key).send().await.expect("the evidence report in S3");
    let html = String::from_utf8(object.body.collect().await.unwrap().to_vec()).unwrap();
    for child in children.iter().filter(|c| !c.dry_run) {
        assert!(html.contains(&child.operation_id), "{} in the evidence report", child.operation_id);
    }
    assert!(html.contains("Dana Approver"), "the approver is named");
    assert!(configs.iter().filter(|id| psa.update_count(**id) > 0).all(|id| html.contains(&id.to_string())));
    assert!(notes.iter().any(|n| n.contains("evidence/")), "the note points to the report: {notes:?}");

    // The PSA delivers the same event again: nothing new starts.
    let (_, again) = d.emulator.invoke("webhook", &delivery).await;
    assert_eq!(again["statusCode"], 200, "a duplicate: {again}");
    assert_eq!(d.executions().await.len(), 1, "one execution for one event");
}
