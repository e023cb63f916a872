//! The webhook function (issue 15, docs/architecture.md#psa-webhooks) through its entry
//! handler with API Gateway HTTP API events: a signed delivery starts one chain, a
//! duplicate starts nothing, a refused delivery touches neither the delivery log nor the
//! starter, a failed start is retried by the PSA and still starts once, the storm, the
//! samples in `events/webhook/`, and the Step Functions starter on moto.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^webhook_function::/)'`

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::chain_sfn::StepFunctionsChainStarter;
use offramp::chain::{ChainStep, ChainTrigger, ClientOffboardingRequest};
use offramp::config::ConfigSource;
use offramp::domain::OffboardedCriteria;
use offramp::entry::webhook::WebhookSettings;
use offramp::entry::{Function, FunctionServices, WebhookServices, webhook_event};
use offramp::ports::{ChainStarter, DeliveryLog, SettingsStore};
use offramp::secret::SecretString;
use offramp::webhook::{
    AutotaskAuth, ConnectWiseAuth, HaloAuth, KeyCacheSettings, KeyUrlAllowList, PsaAuth, SigningKeys, WebhookReceiver,
};
use offramp::workflows::org_settings::{WEBHOOK_ITGLUE_DELETION, WEBHOOK_WORKFLOWS};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::audit_conformance::setting_record;
use offramp_tests::moto;
use offramp_tests::webhook_storm::*;
use offramp_tests::webhooks::*;
use serde_json::{Value, json};

const KEY_ID: &str = "key-1";
const SIGNING_KEY: &str = "cw-signing-key-3b8e61f0";

/// The sandbox (it serves ConnectWise's signing key), the settings store and the counters.
struct Harness {
    sandbox: Sandbox,
    settings: Arc<SqliteAuditStore>,
    log: Arc<CountingLog>,
    starter: Arc<CountingStarter>,
    services: Arc<WebhookServices>,
    _dir: tempfile::TempDir,
}

fn criteria() -> OffboardedCriteria {
    OffboardedCriteria { statuses: vec!["Offboarded".into()], inactive: true, ..OffboardedCriteria::default() }
}

async fn harness_with(starter: CountingStarter, timing: WebhookSettings) -> Harness {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.callback_keys().set_key(KEY_ID, SIGNING_KEY);
    let dir = tempfile::tempdir().unwrap();
    let settings = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap());
    let (log, starter) = (Arc::new(CountingLog::default()), Arc::new(starter));
    let keys = SigningKeys::new(KeyUrlAllowList::origins(&[sandbox.base_url()]).unwrap(), KeyCacheSettings::default())
        .unwrap();
    let services = WebhookServices::new(log.clone(), settings.clone(), starter.clone(), criteria())
        .with_timing(timing)
        .with_receiver(WebhookReceiver::new(PsaAuth::ConnectWise(ConnectWiseAuth {
            url_token: SecretString::new(CW_URL_TOKEN),
            keys,
        })))
        .with_receiver(WebhookReceiver::new(PsaAuth::Autotask(AutotaskAuth {
            secret: SecretString::new(AT_SECRET_KEY),
        })))
        .with_receiver(WebhookReceiver::new(PsaAuth::Halo(HaloAuth::Basic {
            user: HALO_USER.into(),
            password: SecretString::new(HALO_PASSWORD),
        })));
    Harness { sandbox, settings, log, starter, services: Arc::new(services), _dir: dir }
}

async fn harness() -> Harness {
    harness_with(CountingStarter::default(), WebhookSettings::default()).await
}

impl Harness {
    fn cw_body(&self, message_id: &str, company: i64, status: &str) -> Vec<u8> {
        connectwise_company_body(message_id, &self.sandbox.connectwise_key_url(KEY_ID), company, status)
    }

    async fn send(&self, event: Value) -> (u16, Value) {
        let answer = webhook_event(&self.services, event).await;
        assert_eq!(answer.error, None, "a webhook never answers with a Lambda error: {answer}");
        status_and_body(&answer)
    }

    fn log_calls(&self) -> usize {
        self.log.calls.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_signed_connectwise_delivery_starts_one_chain_and_its_duplicate_nothing() {
    let h = harness().await;
    let event = connectwise_event(&h.cw_body("msg-1", 250, "Offboarded"), SIGNING_KEY, CW_URL_TOKEN);
    let (status, body) = h.send(event.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "started");
    let started = h.starter.started();
    assert_eq!(started.len(), 1, "one execution");
    let (name, request) = started.iter().next().unwrap();
    assert_eq!(body["execution_id"], format!("memory:{name}"));
    assert!(name.starts_with("connectwise-"), "{name}");
    assert_eq!(request.client_id.as_deref(), Some("250"));
    assert_eq!(request.steps(), vec![ChainStep::DeactivateConfigs], "the default webhook policy");
    assert_eq!(request.initiated_by.as_deref(), Some("webhook:connectwise:connectwise:id:msg-1"));
    let trigger = ChainTrigger::Webhook { psa: "connectwise".into(), delivery_key: "connectwise:id:msg-1".into() };
    assert_eq!(request.trigger.as_ref(), Some(&trigger));

    let (status, body) = h.send(event).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("already_received")), "{body}");
    assert_eq!(h.starter.calls(), 1, "the duplicate never reached the starter");
    assert_eq!(h.sandbox.callback_keys().fetches(KEY_ID), 1, "the signing key is cached");
}

/// The client's settings choose the steps; the IT Glue deletion's confirmation is the
/// setting, named in the request's reason.
#[tokio::test]
async fn the_clients_settings_choose_the_chains_steps() {
    let h = harness().await;
    for (key, value) in
        [(WEBHOOK_WORKFLOWS, "deactivate-contacts, deactivate-configs"), (WEBHOOK_ITGLUE_DELETION, "true")]
    {
        h.settings.put_setting(&setting_record("autotask", "250", key, Some(value))).await.unwrap();
    }
    let (status, body) = h.send(autotask_event(&autotask_company_body("g-1", 250, 1, false), AT_SECRET_KEY)).await;
    assert_eq!(status, 202, "{body}");
    let request: ClientOffboardingRequest = h.starter.started().into_values().next().unwrap();
    let steps = [ChainStep::DeactivateContacts, ChainStep::DeactivateConfigs, ChainStep::DeleteItglueOrg];
    assert_eq!(request.steps(), steps.to_vec());
    let reason = request.reason.unwrap_or_default();
    assert!(reason.contains("webhook_itglue_deletion=true (client)"), "{reason}");
}

#[tokio::test]
async fn an_unauthenticated_delivery_is_401_and_touches_nothing() {
    let h = harness().await;
    let body = h.cw_body("msg-2", 250, "Offboarded");
    let forged = [
        connectwise_event(&body, "not-the-signing-key", CW_URL_TOKEN),
        connectwise_event(&body, SIGNING_KEY, "not-the-token"),
        connectwise_event(&flip_bit(body.clone(), 40), SIGNING_KEY, CW_URL_TOKEN),
        autotask_event(&autotask_company_body("g-2", 250, 1, false), "not-the-secret"),
        http_api_event(
            "/webhooks/halo",
            &[("authorization", "Basic bm9ib2R5Om5vdGhpbmc=")],
            &halo_client_body("e", 1, true),
        ),
        http_api_event("/webhooks/autotask", &[], &autotask_company_body("g-3", 250, 1, false)),
    ];
    for event in forged {
        let (status, body) = h.send(event).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "Unauthenticated", "{body}");
    }
    assert_eq!(h.log_calls(), 0, "nothing recorded");
    assert_eq!(h.starter.calls(), 0, "nothing started");
}

#[tokio::test]
async fn a_malformed_delivery_or_route_is_400_and_touches_nothing() {
    let h = harness().await;
    let unreadable = json!({"Action": "Update", "Guid": "g-4", "EntityType": "Company"}).to_string();
    let (status, body) = h.send(autotask_event(unreadable.as_bytes(), AT_SECRET_KEY)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("InvalidInput")), "{body}");
    let (status, _) = h.send(autotask_event(b"{not json", AT_SECRET_KEY)).await;
    assert_eq!(status, 400);
    let (status, body) = h.send(http_api_event("/webhooks/salesforce", &[], b"{}")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = h.send(json!({"not": "an API Gateway event"})).await;
    assert_eq!(status, 400);
    let huge = vec![b' '; 300 * 1024];
    let (status, _) = h.send(autotask_event(&huge, AT_SECRET_KEY)).await;
    assert_eq!(status, 413, "larger than the limit");
    assert_eq!((h.log_calls(), h.starter.calls()), (0, 0));
}

/// Autotask's call to the deactivation URL: whatever it carries, signed or not, it is
/// answered 200 and only logged (the template's metric filter alarms on the line); nothing
/// is recorded or started. An oversized one is refused; a delivery to the webhook's own
/// path is still authenticated as before.
#[tokio::test]
async fn autotasks_deactivation_notice_is_noted_and_changes_nothing() {
    let h = harness().await;
    for body in [&b"{}"[..], b"not even json", b""] {
        let (status, answer) = h.send(http_api_event("/webhooks/autotask/deactivated", &[], body)).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("noted")), "{answer}");
    }
    let (status, _) = h.send(http_api_event("/webhooks/autotask/deactivated", &[], &vec![b'x'; 200 * 1024])).await;
    assert_eq!(status, 413);
    let (status, _) = h.send(http_api_event("/webhooks/autotask", &[], b"{}")).await;
    assert_eq!(status, 401, "the delivery path still needs the signature");
    assert_eq!((h.log_calls(), h.starter.calls()), (0, 0), "nothing recorded, nothing started");
}

#[tokio::test]
async fn an_ignored_event_is_200_and_starts_nothing() {
    let h = harness().await;
    let active = connectwise_event(&h.cw_body("msg-3", 251, "Active"), SIGNING_KEY, CW_URL_TOKEN);
    let (status, body) = h.send(active.clone()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")), "{body}");
    assert!(body["why"].as_str().is_some_and(|why| why.contains("251")), "{body}");
    let (status, body) = h.send(active).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("already_received")), "{body}");
    assert_eq!(h.starter.calls(), 0);
}

/// Step Functions fails once: the answer is 5xx and the delivery is forgotten, so the
/// PSA's retry starts the chain; a third delivery is a duplicate. One execution in all.
#[tokio::test]
async fn a_failed_start_is_retried_by_the_psa_and_starts_exactly_once() {
    let h = harness_with(CountingStarter::failing_first(1), WebhookSettings::default()).await;
    let event = connectwise_event(&h.cw_body("msg-4", 250, "Offboarded"), SIGNING_KEY, CW_URL_TOKEN);
    let (status, body) = h.send(event.clone()).await;
    assert_eq!((status, body["code"].as_str()), (502, Some("ChainStartFailed")), "{body}");
    assert!(h.starter.started().is_empty());
    let (status, body) = h.send(event.clone()).await;
    assert_eq!(status, 202, "the retry is a first delivery again: {body}");
    let (status, _) = h.send(event).await;
    assert_eq!(status, 200);
    assert_eq!((h.starter.calls(), h.starter.started().len()), (2, 1));
}

/// An invocation that died after claiming a delivery (nothing could forget it): its claim
/// lasts only the handling lease, then the PSA's retry starts the chain.
#[tokio::test]
async fn a_claim_left_by_a_dead_invocation_expires_with_its_lease() {
    let timing = WebhookSettings { handling_lease: Duration::from_millis(300), ..WebhookSettings::default() };
    let h = harness_with(CountingStarter::default(), timing).await;
    assert!(h.log.first_delivery("connectwise:id:msg-5", timing.handling_lease).await.unwrap(), "the dead claim");
    let event = connectwise_event(&h.cw_body("msg-5", 250, "Offboarded"), SIGNING_KEY, CW_URL_TOKEN);
    let (status, _) = h.send(event.clone()).await;
    assert_eq!(status, 200, "still claimed");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = h.send(event.clone()).await;
    assert_eq!(status, 202, "{body}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = h.send(event).await;
    assert_eq!(status, 200, "remembered for days once started, not for the lease");
    assert_eq!(h.starter.started().len(), 1);
}

/// 1,000 deliveries, 30 % duplicates, 5 % bad signatures, 5 % malformed, 50 at once:
/// exactly one start per distinct event, every forgery 401, every malformed body 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_storm_starts_exactly_one_chain_per_event() {
    let h = harness().await;
    let deliveries = storm(1_000, &h.sandbox.connectwise_key_url(KEY_ID), SIGNING_KEY);
    let report = run_storm(h.services.clone(), deliveries, 50).await;
    eprintln!("{:?} p50 {:?} p99 {:?}", report.answers, report.percentile(0.5), report.percentile(0.99));
    assert_eq!(report.panics, 0);
    let (distinct, duplicates) = (report.of_kind(Kind::Distinct), report.of_kind(Kind::Duplicate));
    assert_eq!((distinct, duplicates), (600, 300));
    assert_eq!(report.count(Kind::BadSignature, 401), 50, "{:?}", report.answers);
    assert_eq!(report.count(Kind::Malformed, 400), 50, "{:?}", report.answers);
    let accepted = report.count(Kind::Distinct, 202) + report.count(Kind::Duplicate, 202);
    let acknowledged = report.count(Kind::Distinct, 200) + report.count(Kind::Duplicate, 200);
    assert_eq!((accepted, acknowledged), (600, 300), "{:?}", report.answers);
    assert_eq!(h.starter.started().len(), 600, "one execution per distinct event");
    // A duplicate may still reach the starter when it races the first delivery's switch
    // from its handling lease to the long record; the execution name makes that start a
    // no-op, answered as a duplicate (200) above.
    assert!(h.starter.calls() >= 600, "every distinct event reached the starter");
}

/// Every file in `events/webhook/` through the handler. The ConnectWise samples name a
/// ConnectWise cloud key URL; here it is replaced by the sandbox's and the body signed again
/// (with the same test signing key), since a signature covers the exact bytes.
#[tokio::test]
async fn every_webhook_sample_event_is_handled() {
    let expected: &[(&str, u16, &str)] = &[
        ("autotask-bad-signature.json", 401, "refused"),
        ("autotask-company-active.json", 200, "ignored"),
        ("autotask-company-inactive.json", 202, "started"),
        ("autotask-webhook-deactivated.json", 200, "noted"),
        ("connectwise-company-offboarded.json", 202, "started"),
        ("connectwise-wrong-token.json", 401, "refused"),
        ("halo-client-inactive.json", 202, "started"),
        ("halo-malformed.json", 400, "refused"),
    ];
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/webhook");
    let mut on_disk: Vec<String> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|f| f.file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    assert_eq!(on_disk, expected.iter().map(|(f, _, _)| f.to_string()).collect::<Vec<_>>());
    let h = harness().await;
    for (file, status, outcome) in expected {
        let mut event: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        if *file == "connectwise-company-offboarded.json" {
            event = resigned_for(&h, &event);
        }
        let (got, body) = h.send(event).await;
        assert_eq!((got, body["status"].as_str()), (*status, Some(*outcome)), "events/webhook/{file}: {body}");
    }
    assert_eq!(h.starter.started().len(), 3);
}

/// A ConnectWise sample with its key URL pointed at the sandbox and its signature redone.
fn resigned_for(h: &Harness, event: &Value) -> Value {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = engine.decode(event["body"].as_str().unwrap()).unwrap();
    let mut body: Value = serde_json::from_slice(&raw).unwrap();
    let original = connectwise_signature(SIGNING_KEY, &raw);
    assert_eq!(event["headers"]["x-content-signature"], original, "the sample is signed with the test key");
    body["Metadata"]["key_url"] = json!(h.sandbox.connectwise_key_url(KEY_ID));
    let token = event["rawPath"].as_str().unwrap().rsplit('/').next().unwrap();
    connectwise_event(body.to_string().as_bytes(), SIGNING_KEY, token)
}

/// A state machine on moto (any valid definition: moto does not run it here).
async fn moto_state_machine() -> (aws_sdk_sfn::Client, String) {
    let client = aws_sdk_sfn::Client::new(&moto::aws_config().await);
    let definition = json!({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}});
    let created = client
        .create_state_machine()
        .name(moto::unique_name("client-offboarding"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/offramp-chain")
        .send()
        .await
        .expect("moto creates the state machine");
    (client, created.state_machine_arn().to_string())
}

async fn executions(client: &aws_sdk_sfn::Client, machine: &str) -> Vec<String> {
    let listed = client.list_executions().state_machine_arn(machine).send().await.unwrap();
    listed.executions().iter().map(|e| e.name().to_string()).collect()
}

/// Two starts of one name are one execution; a repeat with another input is
/// `ExecutionAlreadyExists`, read as already started, with the first execution's ARN.
#[tokio::test]
async fn step_functions_starts_one_execution_per_name() {
    let (client, machine) = moto_state_machine().await;
    let starter = StepFunctionsChainStarter::new(client.clone(), &machine).unwrap();
    let request = ClientOffboardingRequest { client_id: Some("250".into()), ..Default::default() };
    let first = starter.start("connectwise-abc", &request).await.unwrap();
    assert!(!first.already_started);
    assert!(first.execution_id.ends_with(":execution:") || first.execution_id.contains(":execution:"));
    let again = starter.start("connectwise-abc", &request).await.unwrap();
    assert_eq!(again.execution_id, first.execution_id);
    let other = ClientOffboardingRequest { client_id: Some("251".into()), ..Default::default() };
    let refused = starter.start("connectwise-abc", &other).await.unwrap();
    assert!(refused.already_started, "ExecutionAlreadyExists is not a failure");
    assert_eq!(refused.execution_id, first.execution_id, "the ARN is derived from the machine's");
    assert_eq!(executions(&client, &machine).await, vec!["connectwise-abc".to_string()]);
    let missing = machine.replace(":stateMachine:", ":stateMachine:gone-");
    let error = StepFunctionsChainStarter::new(client, missing).unwrap().start("x", &request).await.unwrap_err();
    assert_eq!(error.code(), offramp::error::ErrorCode::ConfigurationError, "{error}");
}

/// The function as the Lambda builds it from its settings (`FunctionServices::build`): the
/// PSA's webhook secrets from the environment, SQLite for the delivery log, Step Functions
/// on moto. A signed Autotask sample starts one execution there; its duplicate none.
#[tokio::test]
async fn the_function_built_from_settings_starts_the_execution_on_step_functions() {
    let (client, machine) = moto_state_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let source = ConfigSource::from_pairs([
        ("OFFRAMP_PSA", "autotask"),
        ("OFFRAMP_AUDIT_DB", dir.path().join("audit.sqlite").to_str().unwrap()),
        ("OFFRAMP_STATE_MACHINE_ARN", machine.as_str()),
        ("AUTOTASK_WEBHOOK_SECRET", AT_SECRET_KEY),
        ("AWS_ENDPOINT_URL", moto::moto_url().as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]);
    let services = FunctionServices::build(Function::Webhook, &source).await.expect("built from settings");
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/webhook/autotask-company-inactive.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (status, body) =
        status_and_body(&services.handle(Function::Webhook, event.clone(), "lambda:test").await.payload);
    assert_eq!(status, 202, "{body}");
    assert!(body["execution_id"].as_str().is_some_and(|arn| arn.contains(":execution:")), "{body}");
    let (status, _) = status_and_body(&services.handle(Function::Webhook, event, "lambda:test").await.payload);
    assert_eq!(status, 200);
    assert_eq!(executions(&client, &machine).await.len(), 1);
    let (status, body) = status_and_body(
        &services.handle(Function::Webhook, http_api_event("/webhooks/connectwise/t", &[], b"{}"), "l").await.payload,
    );
    assert_eq!(status, 401, "no ConnectWise credentials in this deployment: {body}");
}
