//! The whole deployment on loopback (issue 15's end-to-end test): the state machine of
//! `infra/statemachine/client-offboarding.asl.json` executed by moto's Step Functions
//! interpreter; every task a real Lambda binary of this build under `cargo lambda watch`;
//! DynamoDB and Secrets Manager on the same moto; the vendors the sandbox. A signed
//! ConnectWise webhook starts the chain, an approver approves through the approval
//! function, and the simulators hold the result (docs/testing.md#end-to-end).
//!
//! The deployment itself (private moto, emulator, functions) is tests/support/deployment.rs.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use offramp::domain::{GLOBAL_SCOPE, Workflow};
use offramp::ports::AuditStore;
use offramp::workflows::org_settings::{APPROVERS, CHAIN_RECIPIENTS, WEBHOOK_ITGLUE_DELETION, WEBHOOK_WORKFLOWS};
use offramp_sandbox::SandboxConfig;
use offramp_tests::deployment::{BUCKET, Deployment};
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
const APPROVER: &str = "approver@msp.example";

/// Everything deployed for the webhook's client: a webhook saying it is offboarded starts
/// the contacts, the configurations and the IT Glue deletion; approvals go to one approver.
async fn deployment() -> Deployment {
    let config = SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() };
    let mut d = Deployment::start(config, "end-to-end").await;
    d.sandbox.callback_keys().set_key(KEY_ID, SIGNING_KEY);
    for (scope, key, value) in [
        (CLIENT.to_string(), WEBHOOK_WORKFLOWS, "deactivate-contacts,deactivate-configs"),
        (CLIENT.to_string(), WEBHOOK_ITGLUE_DELETION, "true"),
        (GLOBAL_SCOPE.to_string(), APPROVERS, APPROVER),
        (GLOBAL_SCOPE.to_string(), CHAIN_RECIPIENTS, "ops@msp.example"),
    ] {
        d.put_setting(&scope, key, value).await;
    }
    d.start_functions();
    d
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
    let d = deployment().await;
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
