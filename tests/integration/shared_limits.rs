//! Vendor limits shared by every process (issue 13, point 8): three clients, each with its
//! own handle on one store (three SQLite connections to one file, three DynamoDB clients on
//! one moto table), send at once to one sandbox vendor. Together they stay within the one
//! limit: the sandbox serves no 429 (counted by the sandbox, not by the clients). Each
//! client alone is configured at the vendor's full limit, so per-process limits would send
//! three times too much (docs/reliability.md#vendor-limits-shared-by-every-process).

use std::sync::Arc;
use std::time::{Duration, Instant};

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::connectwise::ConnectWiseClient;
use offramp::adapters::halo::HaloClient;
use offramp::http::BudgetSettings;
use offramp::http::shared_limits::InProcessLimitStore;
use offramp::ports::{Psa, SharedLimitStore};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::moto;
use offramp_tests::psa::{halo_settings, http_settings};

/// The sandbox ConnectWise's rate (a token bucket holding one second's worth), and each
/// client's configured pace: the same, as an operator who knows the limit sets it.
const CW_RATE: u32 = 40;
const CW_REQUESTS_EACH: usize = 30;
/// The sandbox HaloPSA's window, shortened on both sides (one second for five minutes).
const HALO_LIMIT: u32 = 30;
const HALO_WINDOW: Duration = Duration::from_secs(1);
const HALO_REQUESTS_EACH: usize = 20;
const SCOPE: &str = "one vendor account";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

/// Three handles on one SQLite file, as three CLI processes would open it.
fn sqlite_stores(dir: &tempfile::TempDir) -> Vec<Arc<dyn SharedLimitStore>> {
    let path = dir.path().join("audit.sqlite");
    (0..3).map(|_| Arc::new(SqliteAuditStore::open(&path).expect("open")) as Arc<dyn SharedLimitStore>).collect()
}

/// Three DynamoDB clients on one moto table, as three Lambdas would hold them.
async fn dynamodb_stores() -> Vec<Arc<dyn SharedLimitStore>> {
    let table = moto::unique_table_name();
    let first = DynamoDbAuditStore::new(moto::dynamodb_client().await, table.clone());
    first.create_table_if_missing().await.expect("create the table");
    let mut stores: Vec<Arc<dyn SharedLimitStore>> = vec![Arc::new(first)];
    for _ in 0..2 {
        stores.push(Arc::new(DynamoDbAuditStore::new(moto::dynamodb_client().await, table.clone())));
    }
    stores
}

fn connectwise_clients(sandbox: &Sandbox, stores: &[Arc<dyn SharedLimitStore>]) -> Vec<ConnectWiseClient> {
    stores
        .iter()
        .map(|store| {
            let mut http = offramp_tests::connectwise::http_settings();
            http.rate_limit_per_sec = Some(f64::from(CW_RATE));
            http.burst = 1;
            let client = ConnectWiseClient::new(offramp_tests::connectwise::settings(sandbox), http).expect("client");
            assert!(client.http().share_limits(store.clone(), SCOPE));
            client
        })
        .collect()
}

/// Every client reads `each` companies, eight at a time, all clients at once; the elapsed time.
async fn read_at_once(clients: Vec<Arc<dyn Psa>>, each: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for psa in clients {
        for worker in 0..8 {
            let psa = psa.clone();
            tasks.spawn(async move {
                for i in (worker..each).step_by(8) {
                    psa.company_by_id(if i % 2 == 0 { "250" } else { "260" }).await.expect("answered");
                }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("reader");
    }
    start.elapsed()
}

async fn connectwise_rate_holds_across(stores: Vec<Arc<dyn SharedLimitStore>>) {
    let sandbox = sandbox().await;
    sandbox.set_rate_limit(Some(CW_RATE));
    let clients = connectwise_clients(&sandbox, &stores);
    let psas = clients.into_iter().map(|c| Arc::new(c) as Arc<dyn Psa>).collect();
    let elapsed = read_at_once(psas, CW_REQUESTS_EACH).await;
    let stats = sandbox.stats();
    assert_eq!(stats.throttled(), 0, "the vendor refused {} of {} requests", stats.throttled(), stats.total_requests);
    let sent = stats.total_requests;
    assert!(sent >= (3 * CW_REQUESTS_EACH) as u64, "{sent}");
    // One schedule at 40 per second: 90 requests take at least 89/40 s, all clients together.
    let least = Duration::from_secs_f64((sent - 1) as f64 / f64::from(CW_RATE));
    assert!(elapsed + Duration::from_millis(50) >= least, "{elapsed:?} < {least:?}: faster than one shared pace");
}

#[tokio::test]
async fn connectwise_rate_is_shared_through_one_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    connectwise_rate_holds_across(sqlite_stores(&dir)).await;
}

#[tokio::test]
async fn connectwise_rate_is_shared_through_one_dynamodb_table() {
    connectwise_rate_holds_across(dynamodb_stores().await).await;
}

#[tokio::test]
async fn connectwise_rate_is_shared_in_process() {
    let store: Arc<dyn SharedLimitStore> = InProcessLimitStore::new();
    connectwise_rate_holds_across(vec![store.clone(), store.clone(), store]).await;
}

fn halo_clients(sandbox: &Sandbox, stores: &[Arc<dyn SharedLimitStore>]) -> Vec<HaloClient> {
    stores
        .iter()
        .map(|store| {
            let mut http = http_settings(offramp::domain::PsaKind::Halo);
            http.budget =
                Some(BudgetSettings { limit: HALO_LIMIT, window: HALO_WINDOW, max_wait: Duration::from_secs(5) });
            let client = HaloClient::new(halo_settings(sandbox), http).expect("client");
            assert!(client.http().share_limits(store.clone(), SCOPE));
            client
        })
        .collect()
}

async fn halo_window_holds_across(stores: Vec<Arc<dyn SharedLimitStore>>) {
    let sandbox = sandbox().await;
    sandbox.set_halo_rate_limit(Some(HALO_LIMIT));
    sandbox.halo().set_rate_window(HALO_WINDOW);
    let clients = halo_clients(&sandbox, &stores);
    let psas = clients.into_iter().map(|c| Arc::new(c) as Arc<dyn Psa>).collect();
    read_at_once(psas, HALO_REQUESTS_EACH).await;
    let stats = sandbox.stats();
    assert_eq!(stats.throttled(), 0, "the vendor refused {} of {} requests", stats.throttled(), stats.total_requests);
    assert!(stats.total_requests >= (3 * HALO_REQUESTS_EACH) as u64, "{}", stats.total_requests);
}

#[tokio::test]
async fn halo_window_is_shared_through_one_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    halo_window_holds_across(sqlite_stores(&dir)).await;
}

#[tokio::test]
async fn halo_window_is_shared_through_one_dynamodb_table() {
    halo_window_holds_across(dynamodb_stores().await).await;
}

/// The fail-safe: a store that cannot be reached sends nothing (no slot, no request), and
/// says so as a connection error after the store's patience.
#[tokio::test(start_paused = true)]
async fn an_unreachable_store_sends_nothing() {
    struct Unreachable;
    #[offramp::ports::async_trait]
    impl SharedLimitStore for Unreachable {
        async fn read_limit(
            &self,
            _: &str,
        ) -> Result<Option<offramp::ports::SharedLimitState>, offramp::error::SharedLimitError> {
            Err(offramp::error::SharedLimitError::Unavailable { message: "no route".into() })
        }
        async fn swap_limit(&self, _: &str, _: Option<u64>, _: &str) -> Result<bool, offramp::error::SharedLimitError> {
            Err(offramp::error::SharedLimitError::Unavailable { message: "no route".into() })
        }
    }
    let sandbox = sandbox().await;
    let clients = connectwise_clients(&sandbox, &[Arc::new(Unreachable) as Arc<dyn SharedLimitStore>]);
    let error = clients[0].company_by_id("250").await.expect_err("no slot, no request");
    assert!(error.to_string().contains("shared vendor-limit store unavailable"), "{error}");
    assert_eq!(sandbox.stats().total_requests, 0);
}
