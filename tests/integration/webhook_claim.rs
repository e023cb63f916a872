//! The webhook's delivery claim is kept in place (docs/architecture.md#psa-webhooks): after
//! the chain starts, the short handling claim becomes the long delivery record with one
//! write conditional on the claim's owner token (`DeliveryLog::keep`), so a duplicate that
//! arrives between the start and the record finds the key taken, gets 200, and never
//! reaches the starter. On SQLite and on moto's DynamoDB, through the real stores' code.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^webhook_claim::/)'`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::delivery_log::AuditDeliveryLog;
use offramp::domain::OffboardedCriteria;
use offramp::entry::{WebhookServices, webhook_event};
use offramp::error::AuditError;
use offramp::ports::{AuditStore, DeliveryClaim, DeliveryLog};
use offramp::secret::SecretString;
use offramp::webhook::{AutotaskAuth, PsaAuth, WebhookReceiver};
use offramp_tests::webhook_storm::{CountingStarter, autotask_event, status_and_body};
use offramp_tests::webhooks::{AT_SECRET_KEY, autotask_company_body};
use serde_json::Value;

/// A delivery log over a real store that, at the first delivery's calls after the chain
/// started (before and after each), sends the same delivery again through the function:
/// the duplicates of the gap the first delivery's switch from claim to record may leave.
struct GapProbe {
    inner: AuditDeliveryLog,
    starter: Arc<CountingStarter>,
    services: OnceLock<Weak<WebhookServices>>,
    duplicate: Value,
    sent: AtomicUsize,
    answers: Mutex<Vec<(u16, Value)>>,
}

impl GapProbe {
    /// Send the duplicate now, once the chain started, twice at most.
    async fn probe(&self) {
        if self.starter.calls() == 0 || self.sent.fetch_add(1, Ordering::SeqCst) >= 2 {
            return;
        }
        let services = self.services.get().and_then(Weak::upgrade).expect("the function");
        let answer = webhook_event(&services, self.duplicate.clone()).await;
        self.answers.lock().unwrap().push(status_and_body(&answer.payload));
    }
}

#[offramp::ports::async_trait]
impl DeliveryLog for GapProbe {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Option<DeliveryClaim>, AuditError> {
        self.inner.claim(key, ttl).await
    }
    async fn keep(&self, claim: &DeliveryClaim, ttl: Duration) -> Result<(), AuditError> {
        self.probe().await;
        let kept = self.inner.keep(claim, ttl).await;
        self.probe().await;
        kept
    }
    async fn forget(&self, key: &str) -> Result<(), AuditError> {
        self.probe().await;
        let forgotten = self.inner.forget(key).await;
        self.probe().await;
        forgotten
    }
}

async fn a_duplicate_in_the_gap_never_reaches_the_starter(store: Arc<dyn AuditStore>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Arc::new(SqliteAuditStore::open(&dir.path().join("settings.sqlite")).unwrap());
    let starter = Arc::new(CountingStarter::default());
    let delivery = autotask_event(&autotask_company_body("guid-gap", 250, 1, false), AT_SECRET_KEY);
    let probe = Arc::new(GapProbe {
        inner: AuditDeliveryLog::new(store),
        starter: starter.clone(),
        services: OnceLock::new(),
        duplicate: delivery.clone(),
        sent: AtomicUsize::new(0),
        answers: Mutex::new(Vec::new()),
    });
    let criteria = OffboardedCriteria { inactive: true, ..OffboardedCriteria::default() };
    let services = Arc::new(WebhookServices::new(probe.clone(), settings, starter.clone(), criteria).with_receiver(
        WebhookReceiver::new(PsaAuth::Autotask(AutotaskAuth { secret: SecretString::new(AT_SECRET_KEY) })),
    ));
    probe.services.set(Arc::downgrade(&services)).ok();

    let (status, body) = status_and_body(&webhook_event(&services, delivery.clone()).await.payload);
    assert_eq!(status, 202, "{body}");
    let answers = probe.answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 2, "a duplicate before and after the switch: {answers:?}");
    for (status, body) in &answers {
        assert_eq!((*status, body["status"].as_str()), (200, Some("already_received")), "{body}");
    }
    assert_eq!(starter.calls(), 1, "no duplicate reached the starter");
    // And the record outlives the handling lease: a later duplicate is still one.
    let (status, _) = status_and_body(&webhook_event(&services, delivery).await.payload);
    assert_eq!((status, starter.calls(), starter.started().len()), (200, 1, 1));
}

#[tokio::test]
async fn a_duplicate_between_start_and_record_gets_200_without_the_starter_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap();
    a_duplicate_in_the_gap_never_reaches_the_starter(Arc::new(store)).await;
}

#[tokio::test]
async fn a_duplicate_between_start_and_record_gets_200_without_the_starter_on_dynamodb() {
    let store =
        DynamoDbAuditStore::new(offramp_tests::moto::dynamodb_client().await, offramp_tests::moto::unique_table_name());
    store.create_table_if_missing().await.unwrap();
    a_duplicate_in_the_gap_never_reaches_the_starter(Arc::new(store)).await;
}

/// `keep` is conditional on the owner token, in each store: a claim that is not the stored
/// one (another call's, or one forgotten) is refused and the stored record is left alone.
async fn only_the_owner_keeps(log: &AuditDeliveryLog) {
    let day = Duration::from_secs(86_400);
    let claim = log.claim("autotask:id:owner", Duration::from_secs(60)).await.unwrap().expect("first");
    let other = DeliveryClaim { owner: "another-invocation".into(), ..claim.clone() };
    assert!(matches!(log.keep(&other, day).await, Err(AuditError::IdempotencyKeyLost { .. })));
    log.keep(&claim, day).await.expect("the owner keeps it");
    assert_eq!(log.claim("autotask:id:owner", day).await.unwrap(), None, "kept");
    log.forget("autotask:id:owner").await.unwrap();
    assert_eq!(log.claim("autotask:id:owner", day).await.unwrap(), None, "a kept record is not forgotten");
    let gone = log.claim("autotask:id:gone", Duration::from_secs(60)).await.unwrap().expect("first");
    log.forget("autotask:id:gone").await.unwrap();
    assert!(matches!(log.keep(&gone, day).await, Err(AuditError::IdempotencyKeyLost { .. })), "forgotten");
}

#[tokio::test]
async fn only_the_claims_owner_keeps_it_on_sqlite_and_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap();
    only_the_owner_keeps(&AuditDeliveryLog::new(Arc::new(sqlite))).await;
    let dynamo =
        DynamoDbAuditStore::new(offramp_tests::moto::dynamodb_client().await, offramp_tests::moto::unique_table_name());
    dynamo.create_table_if_missing().await.unwrap();
    only_the_owner_keeps(&AuditDeliveryLog::new(Arc::new(dynamo))).await;
}
