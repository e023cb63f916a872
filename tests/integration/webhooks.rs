//! PSA webhooks (issue 15, docs/architecture.md#psa-webhooks): authentication per PSA over
//! real HTTP to the sandbox's ConnectWise key endpoint, the one event shape, delivery
//! idempotency on SQLite and DynamoDB (moto), execution names, and routing by settings.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^webhooks::/)'`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::delivery_log::{AuditDeliveryLog, MemoryDeliveryLog};
use offramp::domain::{GLOBAL_SCOPE, OffboardedCriteria, PsaKind, Workflow};
use offramp::error::ErrorCode;
use offramp::ports::{AuditStore, DeliveryLog, SettingsStore};
use offramp::secret::SecretString;
use offramp::webhook::{
    Action, AutotaskAuth, DEFAULT_DELIVERY_TTL, Delivery, EntityKind, HaloAuth, KeyCacheSettings, KeyUrlAllowList,
    PsaAuth, RouteDecision, SigningKeys, WebhookError, WebhookReceiver, WebhookRequest, execution_name,
    record_delivery, route, trigger_policy,
};
use offramp::workflows::org_settings::{WEBHOOK_ITGLUE_DELETION, WEBHOOK_WORKFLOWS};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::audit_conformance::setting_record;
use offramp_tests::moto;
use offramp_tests::webhooks::*;

const KEY_ID: &str = "key-1";
const SIGNING_KEY: &str = "cw-signing-key-3b8e61f0";

async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.callback_keys().set_key(KEY_ID, SIGNING_KEY);
    sandbox
}

fn connectwise_receiver(allow: KeyUrlAllowList, ttl: Duration) -> WebhookReceiver {
    let keys = SigningKeys::new(allow, KeyCacheSettings { ttl, ..KeyCacheSettings::default() }).unwrap();
    WebhookReceiver::new(PsaAuth::ConnectWise(offramp::webhook::ConnectWiseAuth {
        url_token: SecretString::new(CW_URL_TOKEN),
        keys,
    }))
}

/// A ConnectWise receiver that may fetch keys from the sandbox (and nowhere else).
fn sandbox_connectwise(sandbox: &Sandbox) -> WebhookReceiver {
    connectwise_receiver(KeyUrlAllowList::origins(&[sandbox.base_url()]).unwrap(), Duration::from_secs(3600))
}

fn autotask_receiver() -> WebhookReceiver {
    WebhookReceiver::new(PsaAuth::Autotask(AutotaskAuth { secret: SecretString::new(AT_SECRET_KEY) }))
}

fn halo_receiver() -> WebhookReceiver {
    WebhookReceiver::new(PsaAuth::Halo(HaloAuth::Basic {
        user: HALO_USER.into(),
        password: SecretString::new(HALO_PASSWORD),
    }))
}

/// What the webhook function does before routing: authenticate and read, then record.
async fn deliver(
    receiver: &WebhookReceiver,
    log: &dyn DeliveryLog,
    request: &WebhookRequest,
) -> Result<Delivery, WebhookError> {
    let event = receiver.receive(request).await?;
    record_delivery(log, event, DEFAULT_DELIVERY_TTL).await
}

fn cw_body(sandbox: &Sandbox, message_id: &str, status: &str) -> Vec<u8> {
    connectwise_company_body(message_id, &sandbox.connectwise_key_url(KEY_ID), 250, status)
}

#[tokio::test]
async fn a_good_signature_is_accepted_for_each_psa() {
    let sandbox = sandbox().await;
    let log = CountingLog::default();

    let request = connectwise_request(cw_body(&sandbox, "msg-1", "Offboarded"), SIGNING_KEY, CW_URL_TOKEN);
    let delivery = deliver(&sandbox_connectwise(&sandbox), &log, &request).await.expect("ConnectWise accepted");
    let event = delivery.event();
    assert!(delivery.is_first());
    assert_eq!(
        (event.psa, &event.entity, &event.action),
        (PsaKind::ConnectWise, &EntityKind::Company, &Action::Updated)
    );
    assert_eq!((event.record_id.as_str(), event.company_id.as_deref()), ("250", Some("250")));
    assert_eq!(event.status.as_deref(), Some("Offboarded"));
    assert_eq!(event.delivery_key.as_str(), "connectwise:id:msg-1");

    let request = autotask_request(autotask_company_body("guid-1", 250, 7, false), AT_SECRET_KEY);
    let event = deliver(&autotask_receiver(), &log, &request).await.expect("Autotask accepted").event().clone();
    assert_eq!((event.psa, event.inactive, event.company_id.as_deref()), (PsaKind::Autotask, Some(true), Some("250")));
    assert_eq!(event.delivery_key.as_str(), "autotask:id:guid-1:250:7");

    let request = halo_request(halo_client_body("evt-1", 12, true), HALO_USER, HALO_PASSWORD);
    let event = deliver(&halo_receiver(), &log, &request).await.expect("HaloPSA accepted").event().clone();
    assert_eq!((event.psa, event.inactive, event.company_id.as_deref()), (PsaKind::Halo, Some(true), Some("12")));

    // HaloPSA with an API-key header instead of Basic credentials.
    let by_header = WebhookReceiver::new(PsaAuth::Halo(HaloAuth::Header {
        name: "x-api-key".into(),
        value: SecretString::new("halo-api-key-9d2f"),
    }));
    let request =
        WebhookRequest::new(halo_client_body("evt-2", 12, true)).with_header("X-API-Key", "halo-api-key-9d2f");
    assert!(deliver(&by_header, &log, &request).await.is_ok());
    assert_eq!(log.calls.load(Ordering::SeqCst), 4, "each accepted delivery recorded once");
}

#[tokio::test]
async fn a_flipped_bit_in_body_or_signature_is_401_and_nothing_is_recorded() {
    let sandbox = sandbox().await;
    let log = CountingLog::default();
    let connectwise = sandbox_connectwise(&sandbox);
    let cw = cw_body(&sandbox, "msg-2", "Offboarded");
    let at = autotask_company_body("guid-2", 250, 1, false);
    let halo = halo_client_body("evt-3", 12, true);
    let signature = connectwise_signature(SIGNING_KEY, &cw);
    let mut refused: Vec<(&WebhookReceiver, WebhookRequest)> = Vec::new();
    // The body changed after signing: every byte position tried matters, the key URL's included.
    let at_receiver = autotask_receiver();
    let halo_receiver = halo_receiver();
    for index in [0, 17, cw.len() / 2, cw.len() - 2] {
        let flipped = flip_bit(cw.clone(), index);
        let request =
            WebhookRequest::new(flipped).with_header("x-content-signature", &signature).with_url_token(CW_URL_TOKEN);
        refused.push((&connectwise, request));
        let flipped = flip_bit(at.clone(), index);
        let request =
            WebhookRequest::new(flipped).with_header("X-Hook-Signature", &autotask_signature(AT_SECRET_KEY, &at));
        refused.push((&at_receiver, request));
    }
    let request = WebhookRequest::new(cw.clone())
        .with_header("x-content-signature", &flip_signature_bit(&signature))
        .with_url_token(CW_URL_TOKEN);
    refused.push((&connectwise, request));
    let request = WebhookRequest::new(at.clone())
        .with_header("X-Hook-Signature", &flip_signature_bit(&autotask_signature(AT_SECRET_KEY, &at)));
    refused.push((&at_receiver, request));
    refused.push((&at_receiver, autotask_request(at.clone(), "another-secret")));
    refused.push((&at_receiver, WebhookRequest::new(at.clone())));
    refused.push((&halo_receiver, halo_request(halo.clone(), HALO_USER, "wrong-password")));
    refused.push((&halo_receiver, halo_request(halo.clone(), "someone", HALO_PASSWORD)));
    refused.push((&halo_receiver, WebhookRequest::new(halo.clone())));
    for (receiver, request) in &refused {
        let error = deliver(receiver, &log, request).await.expect_err("refused");
        assert!(matches!(error, WebhookError::Unauthenticated { .. }), "{:?}: {error}", receiver.psa());
        assert_eq!(error.http_status(), 401);
        assert_eq!(error.code(), ErrorCode::Unauthenticated);
        let message = error.to_string();
        for secret in [SIGNING_KEY, AT_SECRET_KEY, HALO_PASSWORD, CW_URL_TOKEN, signature.as_str()] {
            assert!(!message.contains(secret), "the refusal names a secret: {message}");
        }
    }
    assert_eq!(log.calls.load(Ordering::SeqCst), 0, "no refused delivery reached the delivery log");
}

#[tokio::test]
async fn a_key_url_off_the_allow_list_is_401_without_any_key_request() {
    let sandbox = sandbox().await;
    let log = CountingLog::default();
    let port = sandbox.base_url().rsplit(':').next().unwrap().to_string();
    let receivers = [
        // The production default: ConnectWise cloud hosts over https only.
        connectwise_receiver(KeyUrlAllowList::connectwise_cloud(), Duration::from_secs(3600)),
        // The sandbox's origin under another name (localhost is not 127.0.0.1: another origin).
        connectwise_receiver(KeyUrlAllowList::origins(&[format!("http://localhost:{port}")]).unwrap(), Duration::ZERO),
    ];
    for receiver in &receivers {
        let request = connectwise_request(cw_body(&sandbox, "msg-3", "Offboarded"), SIGNING_KEY, CW_URL_TOKEN);
        let error = deliver(receiver, &log, &request).await.expect_err("refused");
        assert!(matches!(error, WebhookError::Unauthenticated { .. }), "{error}");
        assert!(error.to_string().contains("not an allowed ConnectWise origin"), "{error}");
    }
    // An attacker's own key server, signed with the attacker's key: the same.
    let forged = connectwise_company_body("msg-4", "https://keys.attacker.example/k", 250, "Offboarded");
    let request = connectwise_request(forged, "attacker-key", CW_URL_TOKEN);
    assert!(matches!(deliver(&receivers[0], &log, &request).await, Err(WebhookError::Unauthenticated { .. })));
    assert_eq!(sandbox.callback_keys().total_fetches(), 0, "the sandbox saw no key request");
    assert_eq!(log.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_signing_key_is_fetched_once_for_many_deliveries() {
    let sandbox = sandbox().await;
    let receiver = sandbox_connectwise(&sandbox);
    let log = MemoryDeliveryLog::new();
    // Twenty deliveries, ten of them at once: one fetch.
    let requests: Vec<WebhookRequest> = (0..20)
        .map(|i| connectwise_request(cw_body(&sandbox, &format!("many-{i}"), "Active"), SIGNING_KEY, CW_URL_TOKEN))
        .collect();
    let concurrent = futures::future::join_all(requests[..10].iter().map(|r| deliver(&receiver, &log, r))).await;
    assert!(concurrent.iter().all(Result::is_ok), "{concurrent:?}");
    for request in &requests[10..] {
        deliver(&receiver, &log, request).await.expect("accepted");
    }
    assert_eq!(sandbox.callback_keys().fetches(KEY_ID), 1, "one key fetch for 20 deliveries");

    // With no cache time every delivery fetches again: the count above is the cache's doing.
    let uncached = connectwise_receiver(KeyUrlAllowList::origins(&[sandbox.base_url()]).unwrap(), Duration::ZERO);
    for request in &requests[..3] {
        uncached.receive(request).await.expect("accepted");
    }
    assert_eq!(sandbox.callback_keys().fetches(KEY_ID), 4);

    // A key id the sandbox does not serve (404) cannot authenticate anything.
    let unknown = connectwise_company_body("msg-5", &sandbox.connectwise_key_url("nope"), 250, "Active");
    let error = receiver.receive(&connectwise_request(unknown, SIGNING_KEY, CW_URL_TOKEN)).await.unwrap_err();
    assert!(matches!(error, WebhookError::Unauthenticated { .. }), "{error}");
}

#[tokio::test]
async fn a_wrong_or_missing_url_token_is_401_before_any_key_request() {
    let sandbox = sandbox().await;
    let receiver = sandbox_connectwise(&sandbox);
    let body = cw_body(&sandbox, "msg-6", "Offboarded");
    let signature = connectwise_signature(SIGNING_KEY, &body);
    for token in [Some("cw-url-token-5f1d8a2c9b7e4d11"), Some(""), Some("cw-url-token"), None] {
        let mut request = WebhookRequest::new(body.clone()).with_header("x-content-signature", &signature);
        request.url_token = token.map(str::to_string);
        let error = receiver.receive(&request).await.expect_err("refused");
        assert!(matches!(error, WebhookError::Unauthenticated { .. }), "{token:?}: {error}");
    }
    assert_eq!(sandbox.callback_keys().total_fetches(), 0, "the token is checked before the key is fetched");
}

#[tokio::test]
async fn authenticated_bodies_that_cannot_be_read_are_400() {
    let sandbox = sandbox().await;
    let key_url = sandbox.connectwise_key_url(KEY_ID);
    let cw_missing_type =
        serde_json::json!({"MessageId": "m", "Action": "updated", "ID": 1, "Metadata": {"key_url": key_url}});
    let cw_bad_entity = serde_json::json!({"Type": "company", "Action": "updated", "ID": 1, "Entity": "{oops",
        "Metadata": {"key_url": key_url}});
    for body in [cw_missing_type, cw_bad_entity] {
        let request = connectwise_request(body.to_string().into_bytes(), SIGNING_KEY, CW_URL_TOKEN);
        let error = sandbox_connectwise(&sandbox).receive(&request).await.expect_err("malformed");
        assert_eq!(error.http_status(), 400, "{error}");
    }
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes();
    for body in [b"not json".to_vec(), b"[1,2]".to_vec(), deep.clone(), br#"{"EntityType":"Company"}"#.to_vec()] {
        let error = autotask_receiver().receive(&autotask_request(body.clone(), AT_SECRET_KEY)).await.expect_err("400");
        assert_eq!(error.http_status(), 400, "{error}");
        let request = halo_request(body, HALO_USER, HALO_PASSWORD);
        assert_eq!(halo_receiver().receive(&request).await.expect_err("400").http_status(), 400);
    }
}

#[tokio::test]
async fn oversize_bodies_are_413_before_anything_else() {
    let sandbox = sandbox().await;
    let big = vec![b' '; 256 * 1024 + 1];
    let unauthenticated = WebhookRequest::new(big.clone());
    for receiver in [sandbox_connectwise(&sandbox), autotask_receiver(), halo_receiver()] {
        let error = receiver.receive(&unauthenticated).await.expect_err("too large");
        assert_eq!((error.http_status(), error.code()), (413, ErrorCode::PayloadTooLarge), "{error}");
    }
    // Even signed correctly, and with a limit of one's own.
    let body = autotask_company_body("guid-3", 250, 1, false);
    let small = autotask_receiver().with_max_body_bytes(body.len() - 1);
    assert_eq!(small.receive(&autotask_request(body.clone(), AT_SECRET_KEY)).await.unwrap_err().http_status(), 413);
    assert!(
        autotask_receiver()
            .with_max_body_bytes(body.len())
            .receive(&autotask_request(body, AT_SECRET_KEY))
            .await
            .is_ok()
    );
    assert_eq!(sandbox.callback_keys().total_fetches(), 0);
}

/// The same delivery twice: the second is "already seen"; of eight racing deliveries of one
/// event exactly one is first; a forgotten delivery (its execution did not start) is first again.
async fn duplicates_are_seen_once(log: &dyn DeliveryLog) {
    let receiver = autotask_receiver();
    let request = autotask_request(autotask_company_body("guid-dup", 250, 3, false), AT_SECRET_KEY);
    let first = deliver(&receiver, log, &request).await.expect("accepted");
    let second = deliver(&receiver, log, &request).await.expect("accepted");
    assert!(first.is_first());
    assert!(matches!(second, Delivery::AlreadySeen(_)), "{second:?}");
    assert_eq!(execution_name(&first.event().delivery_key), execution_name(&second.event().delivery_key));

    let race = autotask_request(autotask_company_body("guid-race", 250, 1, false), AT_SECRET_KEY);
    let racing = futures::future::join_all((0..8).map(|_| deliver(&receiver, log, &race))).await;
    let firsts = racing.iter().filter(|d| d.as_ref().expect("accepted").is_first()).count();
    assert_eq!(firsts, 1, "exactly one of eight racing deliveries is first");

    log.forget(first.event().delivery_key.as_str()).await.expect("forget");
    assert!(deliver(&receiver, log, &request).await.expect("accepted").is_first(), "forgotten: first again");
    // An expired record is a first delivery again.
    assert!(log.first_delivery("short-lived", Duration::ZERO).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(log.first_delivery("short-lived", Duration::ZERO).await.unwrap(), "expired");
}

#[tokio::test]
async fn a_duplicate_delivery_is_already_seen_in_memory() {
    duplicates_are_seen_once(&MemoryDeliveryLog::new()).await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_already_seen_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn AuditStore> = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap());
    duplicates_are_seen_once(&AuditDeliveryLog::new(store)).await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_already_seen_on_dynamodb() {
    let client = moto::dynamodb_client().await;
    let table = moto::unique_table_name();
    let store = DynamoDbAuditStore::new(client.clone(), &table);
    store.create_table_if_missing().await.unwrap();
    duplicates_are_seen_once(&AuditDeliveryLog::new(Arc::new(store))).await;
    // Stored in the existing table design: an idempotency item with its TTL attribute.
    let item = client
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("IDEMPOTENCY#webhook%23autotask:id:guid-dup:250:3".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("IDEMPOTENCY".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the delivery's item");
    assert!(item.contains_key("expires_at"), "{item:?}");
}

#[tokio::test]
async fn the_execution_name_is_stable_and_valid() {
    let sandbox = sandbox().await;
    let log = MemoryDeliveryLog::new();
    let cw = connectwise_request(cw_body(&sandbox, "msg-7", "Offboarded"), SIGNING_KEY, CW_URL_TOKEN);
    let names: Vec<String> = [
        deliver(&sandbox_connectwise(&sandbox), &log, &cw).await.unwrap(),
        deliver(&sandbox_connectwise(&sandbox), &log, &cw).await.unwrap(),
        deliver(
            &autotask_receiver(),
            &log,
            &autotask_request(b"{\"EntityType\":\"Company\",\"Action\":\"Update\",\"Id\":1}".to_vec(), AT_SECRET_KEY),
        )
        .await
        .unwrap(),
        deliver(
            &halo_receiver(),
            &log,
            &halo_request(halo_client_body(&"x".repeat(300), 12, true), HALO_USER, HALO_PASSWORD),
        )
        .await
        .unwrap(),
    ]
    .iter()
    .map(|delivery| execution_name(&delivery.event().delivery_key))
    .collect();
    assert_eq!(names[0], names[1], "a redelivery names the same execution");
    assert_ne!(names[0], names[2]);
    for name in &names {
        assert!((1..=80).contains(&name.len()), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{name}");
    }
    // A pinned value: the name must not change between releases, or a redelivery after an
    // upgrade would start a second execution.
    use sha2::Digest;
    let pinned = format!("connectwise-{}", hex::encode(sha2::Sha256::digest(b"connectwise:id:msg-7")));
    assert_eq!(names[0], pinned);
}

fn criteria() -> OffboardedCriteria {
    OffboardedCriteria { statuses: vec!["Offboarded".into()], inactive: true, ..OffboardedCriteria::default() }
}

#[tokio::test]
async fn routing_follows_the_clients_settings() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap();
    let log = MemoryDeliveryLog::new();
    let offboarded = deliver(
        &sandbox_connectwise(&sandbox),
        &log,
        &connectwise_request(cw_body(&sandbox, "route-1", "Offboarded"), SIGNING_KEY, CW_URL_TOKEN),
    )
    .await
    .unwrap()
    .event()
    .clone();
    let decide = |policy| route(&offboarded, &policy);

    // Defaults: seed 000's trigger, configurations only.
    let policy = trigger_policy(&store, PsaKind::ConnectWise, "250", criteria()).await.unwrap();
    assert_eq!(
        decide(policy),
        RouteDecision::StartChain {
            client_id: "250".into(),
            workflows: vec![Workflow::DeactivateConfigs],
            itglue_deletion_confirmed_by: None
        }
    );
    // The client adds contacts and confirms the IT Glue deletion (seed 002's trigger).
    for (key, value) in
        [(WEBHOOK_WORKFLOWS, "deactivate-configs, deactivate-contacts"), (WEBHOOK_ITGLUE_DELETION, "true")]
    {
        store.put_setting(&setting_record("connectwise", "250", key, Some(value))).await.unwrap();
    }
    let policy = trigger_policy(&store, PsaKind::ConnectWise, "250", criteria()).await.unwrap();
    let RouteDecision::StartChain { workflows, itglue_deletion_confirmed_by, .. } = decide(policy) else { panic!() };
    assert_eq!(workflows, vec![Workflow::DeactivateContacts, Workflow::DeactivateConfigs, Workflow::DeleteItglueOrg]);
    assert_eq!(itglue_deletion_confirmed_by.as_deref(), Some("webhook_itglue_deletion=true (client)"));
    // Another client under a global "none": ignored, with the reason.
    store.put_setting(&setting_record("connectwise", GLOBAL_SCOPE, WEBHOOK_WORKFLOWS, Some("none"))).await.unwrap();
    let mut other = offboarded.clone();
    other.company_id = Some("251".into());
    let policy = trigger_policy(&store, PsaKind::ConnectWise, "251", criteria()).await.unwrap();
    assert!(matches!(route(&other, &policy), RouteDecision::Ignore { .. }));

    // An active company, and a contact event: acknowledged and ignored.
    let active = autotask_receiver()
        .receive(&autotask_request(autotask_company_body("g", 251, 1, true), AT_SECRET_KEY))
        .await
        .unwrap();
    let policy = trigger_policy(&store, PsaKind::Autotask, "251", criteria()).await.unwrap();
    let RouteDecision::Ignore { why } = route(&active, &policy) else { panic!("an active company") };
    assert!(why.contains("not offboarded"), "{why}");
    // A bad stored value is an error, not a silent default.
    store.put_setting(&setting_record("connectwise", "252", WEBHOOK_ITGLUE_DELETION, Some("perhaps"))).await.unwrap();
    assert!(trigger_policy(&store, PsaKind::ConnectWise, "252", criteria()).await.is_err());
}

mod never_panics {
    //! Arbitrary bodies and headers, correctly signed or not, through every receiver: each
    //! gives an event or a typed refusal, never a panic.

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    fn runner(cases: u32) -> TestRunner {
        let config = Config { cases, failure_persistence: None, ..Config::default() };
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    }

    /// JSON objects with the vendors' field names and values of every kind, or any bytes.
    fn bodies() -> impl Strategy<Value = Vec<u8>> {
        let names = prop::sample::select(vec![
            "Type",
            "Action",
            "ID",
            "Entity",
            "MessageId",
            "Metadata",
            "EntityType",
            "Id",
            "Guid",
            "Fields",
            "SequenceNumber",
            "entity",
            "id",
            "client_id",
            "inactive",
            "status",
            "event_id",
            "isActive",
            "company",
        ]);
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "[ -~]{0,20}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("{\"company\":{\"id\":1},\"status\":{\"name\":7}}")),
        ];
        let value = leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-zA-Z_]{1,12}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        // Half the objects start from fields every PSA's reader needs, so that arbitrary values
        // in the others reach the readers instead of stopping at the first missing field.
        let base = serde_json::json!({"Type": "company", "Action": "updated", "ID": 250, "EntityType": "Company",
            "Id": 250, "entity": "client", "id": 12});
        let objects =
            (any::<bool>(), prop::collection::btree_map(names, value, 0..6)).prop_map(move |(based, fields)| {
                let mut object = if based { base.as_object().cloned().unwrap_or_default() } else { Default::default() };
                object.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
                serde_json::Value::Object(object).to_string().into_bytes()
            });
        prop_oneof![3 => objects, 1 => prop::collection::vec(any::<u8>(), 0..300)]
    }

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        let name =
            prop::sample::select(vec!["x-content-signature", "X-Hook-Signature", "authorization", "x-api-key", "x"]);
        prop::collection::vec((name.prop_map(str::to_string), "[ -~]{0,80}"), 0..4)
    }

    #[test]
    fn arbitrary_deliveries_never_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let sandbox = runtime.block_on(super::sandbox());
        let connectwise = sandbox_connectwise(&sandbox);
        let (autotask, halo) = (autotask_receiver(), halo_receiver());
        let key_url = sandbox.connectwise_key_url(KEY_ID);
        // Signed deliveries read into an event, and refused as malformed: both must occur,
        // or the generator never reached the readers.
        let (read, malformed) = (AtomicUsize::new(0), AtomicUsize::new(0));
        runner(512)
            .run(&(bodies(), headers(), any::<bool>()), |(body, headers, signed)| {
                let mut requests = Vec::new();
                let mut unsigned = WebhookRequest::new(body.clone()).with_url_token(CW_URL_TOKEN);
                for (name, value) in &headers {
                    unsigned = unsigned.with_header(name, value);
                }
                requests.push((&autotask, unsigned.clone()));
                requests.push((&halo, unsigned.clone()));
                requests.push((&connectwise, unsigned));
                if signed {
                    requests.push((&autotask, autotask_request(body.clone(), AT_SECRET_KEY)));
                    requests.push((&halo, halo_request(body.clone(), HALO_USER, HALO_PASSWORD)));
                    // The same arbitrary fields with a key URL the sandbox serves, signed.
                    let mut value = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
                    if let Some(object) = value.as_object_mut() {
                        object.insert("Metadata".into(), serde_json::json!({"key_url": key_url}));
                        let signed = value.to_string().into_bytes();
                        requests.push((&connectwise, connectwise_request(signed, SIGNING_KEY, CW_URL_TOKEN)));
                    }
                }
                for (receiver, request) in requests {
                    match runtime.block_on(receiver.receive(&request)) {
                        Ok(_) => _ = read.fetch_add(1, Ordering::Relaxed),
                        Err(error) if error.http_status() == 400 => _ = malformed.fetch_add(1, Ordering::Relaxed),
                        Err(error) => prop_assert_eq!(error.http_status(), 401, "{}", error),
                    }
                }
                Ok(())
            })
            .unwrap();
        let (read, malformed) = (read.into_inner(), malformed.into_inner());
        assert!(read > 20 && malformed > 20, "read {read}, malformed {malformed}");
    }
}
