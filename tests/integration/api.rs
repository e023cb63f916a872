//! The HTTP API function (`offramp::entry::api`, docs/architecture.md#the-http-api): 202 and
//! one asynchronous invoke per accepted run, 400/401/404 with nothing started, and
//! `GET /operations/{id}` through a real run of the workflow's entry under the assigned id
//! on the sandbox. Every sample under `events/api/` is answered here.

use std::path::PathBuf;
use std::time::Duration;

use offramp::chain::ChainTrigger;
use offramp::domain::Workflow;
use offramp::entry::api::{ApiDeps, api_event};
use offramp::entry::{Function, FunctionServices};
use offramp::ports::{AuditStore, ChainStarter, MemoryChainStarter, MemoryWorkflowInvoker, WorkflowInvoker};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::connectwise::source;
use serde_json::{Value, json};

/// The IAM user the samples are signed by (`requestContext.authorizer.iam.userArn`).
const CALLER: &str = "arn:aws:iam::123456789012:user/msp-automation";
/// The workflow function's own ARN, as the runtime names the invoked function.
const FUNCTION: &str = "lambda:arn:aws:lambda:us-east-1:123456789012:function:offramp-deactivate-configs";

fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/api").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// `POST /workflows/{name}` with `body`, signed by [`CALLER`].
fn post(name: &str, body: &Value) -> Value {
    let mut event = sample("start-deactivate-configs.json");
    event["pathParameters"]["name"] = json!(name);
    event["rawPath"] = json!(format!("/workflows/{name}"));
    event["body"] = json!(body.to_string());
    event
}

/// `GET /operations/{id}`, signed by [`CALLER`].
fn get(id: &str) -> Value {
    let mut event = sample("operation-status.json");
    event["pathParameters"]["id"] = json!(id);
    event["rawPath"] = json!(format!("/operations/{id}"));
    event
}

/// The API on the sandbox's SQLite trail, with the in-memory invoker and chain starter.
struct Api {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    audit: std::sync::Arc<dyn AuditStore>,
    invoker: MemoryWorkflowInvoker,
    chain: MemoryChainStarter,
}

impl Api {
    async fn start() -> Self {
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let audit = offramp::app::audit_store(&source(&sandbox, &dir.path().join("audit.sqlite"))).await.unwrap();
        Api { sandbox, dir, audit, invoker: MemoryWorkflowInvoker::default(), chain: MemoryChainStarter::default() }
    }

    /// The status and JSON body of the API's answer to `event`.
    async fn call(&self, event: Value) -> (u16, Value) {
        let deps = ApiDeps {
            audit: self.audit.as_ref(),
            invoker: &self.invoker as &dyn WorkflowInvoker,
            chain: &self.chain as &dyn ChainStarter,
        };
        let answer = api_event(&deps, event).await;
        let status = answer["statusCode"].as_u64().expect("a proxy response") as u16;
        (status, serde_json::from_str(answer["body"].as_str().unwrap()).expect("a JSON body"))
    }

    /// The workflow functions, built from settings as the Lambda builds them, on the same trail.
    async fn workflow_function(&self) -> FunctionServices {
        let source = source(&self.sandbox, &self.dir.path().join("audit.sqlite"));
        FunctionServices::build(Function::DeactivateConfigs, &source).await.unwrap()
    }
}

/// A body each workflow reads as its request (the API checks the shape; the run the rest).
fn valid_body(workflow: Workflow) -> Value {
    match workflow {
        Workflow::DeactivateConfigs => json!({"client_id": "250", "dry_run": true}),
        Workflow::DeactivateContacts => json!({"company_id": "270", "confirmation": true}),
        Workflow::DeleteItglueOrg => json!({"org_name": "Adatum Travel", "dry_run": true}),
        Workflow::OffboardUser => json!({"client_id": "600", "user": "lee.leaver@contoso-dental.example"}),
        Workflow::Rollback => json!({"operation_id": "0190c3a0-0000-7000-8000-000000000001", "dry_run": true}),
        Workflow::ClientOffboarding => json!({"client_id": "250", "dry_run": true}),
    }
}

#[tokio::test]
async fn every_workflow_is_accepted_with_202_and_invoked_once_with_its_operation_id() {
    let api = Api::start().await;
    // The chain is started through its state machine, not invoked (its own test below).
    let workflows = Workflow::ALL.iter().filter(|w| **w != Workflow::ClientOffboarding);
    for (n, workflow) in workflows.enumerate() {
        let (status, body) = api.call(post(workflow.as_str(), &valid_body(*workflow))).await;
        assert_eq!(status, 202, "{workflow}: {body}");
        let id = body["operation_id"].as_str().expect("an operation id").to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let invoked = api.invoker.invoked();
        assert_eq!(invoked.len(), n + 1, "exactly one invoke per request: {invoked:?}");
        let (to, event) = invoked.last().unwrap();
        assert_eq!(to, workflow);
        assert_eq!(event["assigned_operation_id"], id.as_str(), "the id the caller got");
        assert_eq!(event["api_principal"], format!("iam:{CALLER}"));
        let (status, state) = api.call(get(&id)).await;
        assert_eq!((status, state["status"].as_str()), (200, Some("accepted")), "{state}");
        assert_eq!(state["workflow"], workflow.as_str());
    }
    assert!(api.chain.started().is_empty(), "no chain for a single workflow");
}

#[tokio::test]
async fn the_chain_is_started_once_by_the_principal_on_behalf_of_the_body() {
    let api = Api::start().await;
    let (status, body) = api.call(sample("start-client-offboarding.json")).await;
    assert_eq!(status, 202, "{body}");
    let id = body["operation_id"].as_str().unwrap();
    assert_eq!(body["execution_id"], format!("memory:api-{id}"), "the execution is named after the operation");
    let started = api.chain.started();
    assert_eq!(started.len(), 1, "{started:?}");
    let request = &started[&format!("api-{id}")];
    assert_eq!(request.initiated_by.as_deref(), Some(format!("iam:{CALLER}").as_str()));
    assert_eq!(request.on_behalf_of.as_deref(), Some("tech@msp.example"), "the body's name, labelled");
    assert_eq!(request.trigger, Some(ChainTrigger::Api));
    assert!(api.invoker.invoked().is_empty(), "the chain is not a workflow function");
    let (_, state) = api.call(get(id)).await;
    assert_eq!(state["status"], "accepted", "{state}");
    assert_eq!(state["execution_id"], format!("api-{id}"), "{state}");
}

/// Refusals take their status from the one table and start nothing.
#[tokio::test]
async fn bad_input_an_unknown_workflow_or_no_principal_starts_nothing() {
    let api = Api::start().await;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("start-invalid-body.json", sample("start-invalid-body.json"), 400, "InvalidInput"),
        ("start-unknown-workflow.json", sample("start-unknown-workflow.json"), 404, "WorkflowNotFound"),
        ("start-unsigned.json", sample("start-unsigned.json"), 401, "Unauthenticated"),
        ("a body that is not JSON", { post("deactivate-configs", &json!(null)) }, 400, "InvalidInput"),
        ("a body that is a list", post("deactivate-configs", &json!([{"client_id": "250"}])), 400, "InvalidInput"),
        ("a wrong type", post("rollback", &json!({"operation_id": 7})), 400, "InvalidInput"),
        (
            "the API's own fields from outside",
            post("deactivate-configs", &json!({"client_id": "250", "assigned_operation_id": uuid::Uuid::now_v7()})),
            400,
            "InvalidInput",
        ),
        (
            "a bad chain request",
            post("client-offboarding", &json!({"client_id": "250", "steps": ["x"]})),
            400,
            "InvalidInput",
        ),
        ("an unknown operation", get(&uuid::Uuid::now_v7().to_string()), 404, "OperationNotFound"),
        ("not an operation id", get("../etc/passwd"), 400, "InvalidInput"),
    ];
    for (what, mut event, status, code) in cases {
        if what == "a body that is not JSON" {
            event["body"] = json!("client_id=250");
        }
        let (got, body) = api.call(event).await;
        assert_eq!((got, body["errors"][0]["code"].as_str()), (status, Some(code)), "{what}: {body}");
    }
    let mut unsigned_get = get(&uuid::Uuid::now_v7().to_string());
    unsigned_get["requestContext"].as_object_mut().unwrap().remove("authorizer");
    assert_eq!(api.call(unsigned_get).await.0, 401, "reading a status needs a principal too");
    assert!(api.invoker.invoked().is_empty(), "nothing was invoked");
    assert!(api.chain.started().is_empty(), "nothing was started");
}

/// GET through a real run: accepted before the function starts, running while it works,
/// finished with the seed report, under the id the caller got; the trail names the IAM
/// principal and the body's `initiated_by` only as whom it was on behalf of.
#[tokio::test]
async fn an_accepted_run_is_followed_to_its_report_under_the_assigned_id() {
    let api = Api::start().await;
    let (status, body) = api.call(sample("start-deactivate-configs.json")).await;
    assert_eq!(status, 202, "{body}");
    let id = body["operation_id"].as_str().unwrap().to_string();
    assert_eq!(api.call(get(&id)).await.1["status"], "accepted");

    let (_, event) = api.invoker.invoked().pop().unwrap();
    let functions = api.workflow_function().await;
    api.sandbox.set_latency(Duration::from_millis(150));
    // The function's run and GETs side by side, until the run ends.
    let done = std::sync::atomic::AtomicBool::new(false);
    let run = async {
        let answer = functions.handle(Function::DeactivateConfigs, event.clone(), FUNCTION).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        answer
    };
    let watch = async {
        let mut statuses = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            statuses.push(api.call(get(&id)).await.1["status"].as_str().unwrap_or_default().to_string());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        statuses
    };
    let (answer, statuses) = tokio::join!(run, watch);
    assert!(statuses.iter().any(|s| s == "running"), "GET said running while the function worked: {statuses:?}");
    assert_eq!(answer.error, None, "{answer}");
    assert_eq!(answer["operation_id"], id.as_str(), "the run took the assigned id: {answer}");
    assert_eq!(answer["statistics"]["configs_deactivated"], 9, "{answer}");
    assert_eq!(api.sandbox.stats().patches(), 9);

    let (status, state) = api.call(get(&id)).await;
    assert_eq!((status, state["status"].as_str(), state["finished"].as_bool()), (200, Some("completed"), Some(true)));
    assert_eq!(state["report"], answer.payload, "the seed report, whole");
    let detail = api.audit.operation(&id).await.unwrap().expect("the trail has the assigned id");
    let by = format!("iam:{CALLER} (on behalf of tech@msp.example)");
    assert_eq!(detail.operation.initiated_by, by, "the principal, the body only on behalf of");
    assert_eq!(state["initiated_by"], by.as_str());

    // Lambda may deliver an asynchronous event twice: the second delivery runs nothing and
    // answers the first run's report, with no Lambda error (no retry, no dead letter).
    api.sandbox.set_latency(Duration::ZERO);
    let again = functions.handle(Function::DeactivateConfigs, event, FUNCTION).await;
    assert_eq!(again.error, None, "{again}");
    assert_eq!(again.payload, answer.payload, "the first run's report");
    assert_eq!(api.sandbox.stats().patches(), 9, "nothing sent again");
    assert_eq!(api.call(get(&id)).await.1["report"], answer.payload, "the first report stays");
}

/// A run refused before it records an operation (an unknown client) still finishes for GET,
/// with its report; an id the API never accepted is refused by the workflow's function.
#[tokio::test]
async fn a_refused_run_reports_failed_and_an_unaccepted_id_is_refused() {
    let api = Api::start().await;
    let (_, body) = api.call(post("deactivate-configs", &json!({"client_id": "999999"}))).await;
    let id = body["operation_id"].as_str().unwrap().to_string();
    let (_, event) = api.invoker.invoked().pop().unwrap();
    let functions = api.workflow_function().await;
    let answer = functions.handle(Function::DeactivateConfigs, event, FUNCTION).await;
    assert_eq!(answer.error_type(), Some("ClientNotFound"), "{answer}");
    let (_, state) = api.call(get(&id)).await;
    assert_eq!((state["status"].as_str(), state["finished"].as_bool()), (Some("failed"), Some(true)), "{state}");
    assert_eq!(state["report"]["errors"][0]["code"], "ClientNotFound", "{state}");

    api.sandbox.reset_stats();
    let forged = json!({"client_id": "250", "assigned_operation_id": uuid::Uuid::now_v7().to_string()});
    let refused = functions.handle(Function::DeactivateConfigs, forged, FUNCTION).await;
    assert_eq!(refused.error_type(), Some("InvalidInput"), "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("not accepted"), "{refused}");
    assert_eq!(api.sandbox.stats().total(), 0, "nothing read");
}

/// Every sample under `events/api/` is one the tests above answer.
#[test]
fn every_api_sample_is_exercised() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/api");
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let used = [
        "operation-status.json",
        "start-client-offboarding.json",
        "start-deactivate-configs.json",
        "start-invalid-body.json",
        "start-unknown-workflow.json",
        "start-unsigned.json",
    ];
    assert_eq!(names, used, "a new sample needs a test here");
}

/// The API's records through each audit store's own code: accepted, read back (a read, not a
/// claim: an unknown id stays unknown), claimed once per run, finished with the report once.
async fn records_conform(audit: &dyn AuditStore) {
    use offramp::entry::api::accepted::{self, Acceptance, Kept};
    let id = uuid::Uuid::now_v7().to_string();
    assert_eq!(accepted::read(audit, &id).await.unwrap(), None);
    assert_eq!(accepted::read(audit, &id).await.unwrap(), None, "reading wrote nothing");
    let acceptance = Acceptance {
        workflow: "deactivate-configs".into(),
        initiated_by: format!("iam:{CALLER}"),
        accepted_at: offramp::domain::now(),
        execution_id: None,
    };
    accepted::accept(audit, &id, &acceptance).await.unwrap();
    assert_eq!(accepted::accept(audit, &id, &acceptance).await.unwrap_err().code().as_str(), "OperationInProgress");
    assert_eq!(accepted::read(audit, &id).await.unwrap(), Some(Kept::Accepted(acceptance)));
    assert!(!accepted::run_started(audit, &id).await.unwrap());
    accepted::begin_run(audit, &id).await.unwrap();
    assert!(accepted::run_started(audit, &id).await.unwrap());
    assert_eq!(accepted::begin_run(audit, &id).await.unwrap_err().code().as_str(), "OperationInProgress");
    accepted::finish(audit, &id, &json!({"success": true, "n": 1})).await;
    accepted::finish(audit, &id, &json!({"success": false, "n": 2})).await;
    assert_eq!(accepted::read(audit, &id).await.unwrap(), Some(Kept::Finished(json!({"success": true, "n": 1}))));
    let never = uuid::Uuid::now_v7().to_string();
    assert_eq!(accepted::begin_run(audit, &never).await.unwrap_err().code().as_str(), "InvalidInput");
}

#[tokio::test]
async fn the_api_records_conform_on_sqlite_and_dynamodb() {
    let api = Api::start().await;
    records_conform(api.audit.as_ref()).await;
    let client = offramp_tests::moto::dynamodb_client().await;
    let store =
        offramp::adapters::audit_dynamodb::DynamoDbAuditStore::new(client, offramp_tests::moto::unique_table_name());
    store.create_table_if_missing().await.unwrap();
    records_conform(&store).await;
}
