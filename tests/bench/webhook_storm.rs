//! `offramp-bench webhook-storm` (and part of `make bench`): 1,000 webhook deliveries through
//! the webhook function's handler in-process (30 % duplicates, 5 % bad signatures, 5 %
//! malformed, ConnectWise and Autotask alternating, 50 at once), against the sandbox's
//! ConnectWise key server, a SQLite settings store and an in-memory chain starter. Prints
//! the answer time's p50 and p99 and checks the counts (the same storm the test
//! `webhook_function::the_webhook_storm_starts_exactly_one_chain_per_event` asserts on).

use std::sync::Arc;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::delivery_log::MemoryDeliveryLog;
use offramp::domain::OffboardedCriteria;
use offramp::entry::WebhookServices;
use offramp::secret::SecretString;
use offramp::webhook::{
    AutotaskAuth, ConnectWiseAuth, KeyCacheSettings, KeyUrlAllowList, PsaAuth, SigningKeys, WebhookReceiver,
};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::webhook_storm::{CountingStarter, Kind, run_storm, storm};
use offramp_tests::webhooks::{AT_SECRET_KEY, CW_URL_TOKEN};

const DELIVERIES: usize = 1_000;
const CONCURRENCY: usize = 50;
const SIGNING_KEY: &str = "cw-signing-key-bench";

/// Run the storm and print its line; `true` when every count is as it must be.
pub fn report() -> bool {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() })
            .await
            .expect("sandbox");
        sandbox.callback_keys().set_key("bench", SIGNING_KEY);
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("sqlite"));
        let starter = Arc::new(CountingStarter::default());
        let keys = SigningKeys::new(
            KeyUrlAllowList::origins(&[sandbox.base_url()]).expect("origin"),
            KeyCacheSettings::default(),
        )
        .expect("keys");
        let criteria = OffboardedCriteria { statuses: vec!["Offboarded".into()], inactive: true, ..Default::default() };
        let services = WebhookServices::new(Arc::new(MemoryDeliveryLog::new()), settings, starter.clone(), criteria)
            .with_receiver(WebhookReceiver::new(PsaAuth::ConnectWise(ConnectWiseAuth {
                url_token: SecretString::new(CW_URL_TOKEN),
                keys,
            })))
            .with_receiver(WebhookReceiver::new(PsaAuth::Autotask(AutotaskAuth {
                secret: SecretString::new(AT_SECRET_KEY),
            })));
        let deliveries = storm(DELIVERIES, &sandbox.connectwise_key_url("bench"), SIGNING_KEY);
        let distinct = deliveries.iter().filter(|(kind, _)| *kind == Kind::Distinct).count();
        let report = run_storm(Arc::new(services), deliveries, CONCURRENCY).await;
        let forged = report.of_kind(Kind::BadSignature);
        let malformed = report.of_kind(Kind::Malformed);
        let ok = report.panics == 0
            && starter.started().len() == distinct
            && starter.calls() == distinct
            && report.count(Kind::BadSignature, 401) == forged
            && report.count(Kind::Malformed, 400) == malformed;
        println!(
            "webhook storm: {DELIVERIES} deliveries, {CONCURRENCY} at once, in-process: p50 {:.2} ms, p99 {:.2} ms, \
             wall {:.2} s; {} executions for {distinct} distinct events, {}/{forged} forgeries 401, \
             {}/{malformed} malformed 400, {} panics: {}",
            report.percentile(0.5).as_secs_f64() * 1000.0,
            report.percentile(0.99).as_secs_f64() * 1000.0,
            report.wall.as_secs_f64(),
            starter.started().len(),
            report.count(Kind::BadSignature, 401),
            report.count(Kind::Malformed, 400),
            report.panics,
            if ok { "MET" } else { "MISSED" }
        );
        ok
    })
}
