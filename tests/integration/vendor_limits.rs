//! The vendors' OWN limits reached in tests (issue 12, point 1), on every PSA and IT Glue:
//! the simulator's limit is below the client's budget, or another integration fills the
//! vendor's window first. A run either waits for room within its configured maximum and
//! finishes, or stops cleanly (`RequestBudgetExhausted`, resumable, no item reported
//! failed); a 429 without `Retry-After` is read as the vendor's documented window being
//! full (docs/vendors/halopsa.md, autotask.md, itglue.md#rate-limits), never as a
//! connection error. Windows are shortened on both sides (sandbox and client) to keep this
//! fast: one second stands in for five minutes or an hour.

use std::time::{Duration, Instant};

use offramp::adapters::itglue::{ItGlueClient, ItGlueSettings, default_http_settings};
use offramp::domain::PsaKind;
use offramp::error::{DocError, ErrorCode};
use offramp::http::BudgetSettings;
use offramp::ports::DocPlatform;
use offramp::workflows::deactivate_configs::{ConfigDeactivationReport, DeactivateConfigsRequest, deactivate_configs};
use offramp::workflows::delete_itglue_org::{DeleteOrgDeps, DeleteOrgOptions, DeleteOrgRequest, delete_itglue_org};
use offramp_sandbox::{ITGLUE_API_KEY, Sandbox, SandboxConfig};
use offramp_tests::psa::{PsaHarness, client_with, http_settings, sim};

/// Client 250: eleven configurations, nine of them to deactivate.
const CLIENT: &str = "250";
const TO_DEACTIVATE: u64 = 9;
/// The stand-in for the vendors' windows (five minutes, an hour), on both sides.
const WINDOW: Duration = Duration::from_secs(1);

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn request() -> DeactivateConfigsRequest {
    DeactivateConfigsRequest { client_id: Some(CLIENT.into()), ..DeactivateConfigsRequest::default() }
}

fn resume(report: &ConfigDeactivationReport) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest { operation_id: report.operation_id.clone(), ..DeactivateConfigsRequest::default() }
}

/// Retries and backoffs that together last well under one [`WINDOW`], as production's (at
/// most 8 × 20 s) last under a five-minute window: a client that only backed off after a
/// window refusal would run out of retries and fail with a connection error.
fn short_backoff(http: &mut offramp::http::HttpSettings) {
    http.base_backoff = Duration::from_millis(10);
    http.max_backoff = Duration::from_millis(40);
    http.max_retries = 8;
}

/// A client whose own budget (`limit` per [`WINDOW`]) is far above the vendor's, waiting at
/// most `max_wait` for room.
fn harness(sandbox: &Sandbox, kind: PsaKind, limit: u32, max_wait: Duration) -> PsaHarness {
    let mut http = http_settings(kind);
    short_backoff(&mut http);
    http.budget = Some(BudgetSettings { limit, window: WINDOW, max_wait });
    PsaHarness::with_client(kind, client_with(sandbox, kind, http))
}

/// A run the vendor stopped: only `RequestBudgetExhausted`, naming the resume; no item
/// reported failed; what it reports deactivated is what reached the simulator.
fn assert_stopped_cleanly(sandbox: &Sandbox, kind: PsaKind, report: &ConfigDeactivationReport) {
    assert!(!report.success, "{kind}");
    let codes: Vec<ErrorCode> = report.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, [ErrorCode::RequestBudgetExhausted], "{kind}: {:?}", report.errors);
    assert!(report.errors[0].message.contains("resumed"), "{kind}: {}", report.errors[0].message);
    assert!(report.errors.iter().all(|e| e.config_id.is_none()), "{kind}: no item failed");
    assert_eq!(report.statistics.errors, 0, "{kind}: statistics count failed items; none failed");
    let sim = sim(sandbox, kind);
    let changed: u64 = sim.configuration_ids_of(250).iter().filter(|id| sim.update_count(**id) > 0).count() as u64;
    assert_eq!(report.statistics.configs_deactivated, changed, "{kind}: the report says what reached the PSA");
    assert!(sandbox.stats().throttled() >= 1, "{kind}: the vendor itself refused");
}

/// Every configuration to deactivate was written exactly once, over the run and its resume.
fn assert_each_written_once(sandbox: &Sandbox, kind: PsaKind) {
    let sim = sim(sandbox, kind);
    let ids = sim.configuration_ids_of(250);
    let written: Vec<i64> = ids.iter().copied().filter(|id| sim.update_count(*id) == 1).collect();
    assert_eq!(written.len() as u64, TO_DEACTIVATE, "{kind}: {ids:?}");
    assert!(ids.iter().all(|id| sim.update_count(*id) <= 1), "{kind}: written twice");
}

/// HaloPSA: another integration has all but two requests of the (shortened) rolling window.
/// Halo's 429 has no `Retry-After`; the client counts the window full and waits for it,
/// within `HALO_MAX_WAIT_SECONDS` (here 3 s), and finishes.
#[tokio::test]
async fn halo_waits_for_a_window_another_integration_filled() {
    let sandbox = sandbox().await;
    sandbox.set_halo_rate_limit(Some(20));
    sandbox.halo().set_rate_window(WINDOW);
    let h = harness(&sandbox, PsaKind::Halo, 300, Duration::from_secs(3));
    sandbox.halo().record_foreign_requests(18);
    let started = Instant::now();
    let report = deactivate_configs(&h.deps(), request()).await;
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(report.statistics.configs_deactivated, TO_DEACTIVATE);
    // One refusal per request in flight: then the client counts the window full and waits.
    let throttled = sandbox.stats().throttled();
    assert!((1..=2).contains(&throttled), "HaloPSA refused {throttled} times");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited one window, not a backoff series: {:?}",
        started.elapsed()
    );
    assert_each_written_once(&sandbox, PsaKind::Halo);
}

/// HaloPSA with no patience (`max_wait` 0): the refusal stops the run cleanly; once the
/// window has room the resume finishes, writing nothing twice.
#[tokio::test]
async fn halo_stops_cleanly_when_it_will_not_wait_for_a_full_window_and_resumes() {
    let sandbox = sandbox().await;
    sandbox.set_halo_rate_limit(Some(20));
    sandbox.halo().set_rate_window(WINDOW);
    let h = harness(&sandbox, PsaKind::Halo, 300, Duration::ZERO);
    // Room for the run's reads (the client, its contracts for the plan's contract check, its
    // assets) and none for its update: the refusal comes after the run has started.
    sandbox.halo().record_foreign_requests(16);
    let report = deactivate_configs(&h.deps(), request()).await;
    assert_stopped_cleanly(&sandbox, PsaKind::Halo, &report);

    tokio::time::sleep(WINDOW + WINDOW / 10).await;
    let resumed = deactivate_configs(&h.deps(), resume(&report)).await;
    assert!(resumed.success, "{:?}", resumed.errors);
    assert_eq!(resumed.statistics.configs_deactivated, TO_DEACTIVATE);
    assert_each_written_once(&sandbox, PsaKind::Halo);
}

/// Autotask: the database's hourly threshold (here 14 per shortened hour) is far below the
/// client's budget. Its 429 stops the run cleanly (the client never waits an hour), and
/// the resume after the "hour" finishes it.
#[tokio::test]
async fn autotask_stops_cleanly_when_the_database_refuses_for_the_hour_and_resumes() {
    let sandbox = sandbox().await;
    sandbox.set_autotask_hourly_limit(14);
    sandbox.autotask().set_hourly_window(WINDOW);
    let h = harness(&sandbox, PsaKind::Autotask, 9_000, Duration::ZERO);
    let report = deactivate_configs(&h.deps(), request()).await;
    assert_stopped_cleanly(&sandbox, PsaKind::Autotask, &report);
    assert!(report.statistics.configs_deactivated < TO_DEACTIVATE, "stopped part-way");

    sandbox.set_autotask_hourly_limit(100);
    tokio::time::sleep(WINDOW + WINDOW / 10).await;
    let resumed = deactivate_configs(&h.deps(), resume(&report)).await;
    assert!(resumed.success, "{:?}", resumed.errors);
    assert_eq!(resumed.statistics.configs_deactivated, TO_DEACTIVATE);
    assert_each_written_once(&sandbox, PsaKind::Autotask);
}

/// ConnectWise publishes no quota; it answers 429 with `Retry-After` (here the sandbox
/// allows 5 requests per second, far below the client's pacing). The client honours it and
/// the run finishes, each configuration written once.
#[tokio::test]
async fn connectwise_honours_retry_after_when_the_vendor_throttles_below_its_pacing() {
    let sandbox = sandbox().await;
    sandbox.set_rate_limit(Some(5));
    let h = PsaHarness::new(&sandbox, PsaKind::ConnectWise);
    let started = Instant::now();
    let report = deactivate_configs(&h.deps(), request()).await;
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(report.statistics.configs_deactivated, TO_DEACTIVATE);
    assert!(sandbox.stats().throttled() >= 1, "ConnectWise refused at least once");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_each_written_once(&sandbox, PsaKind::ConnectWise);
}

/// ConnectWise publishes no quota, so the configured pace is a ceiling the vendor may be
/// below. Here the sandbox admits 40 requests per second (a bucket of 40, 429 with
/// `Retry-After: 1`) and the client is configured for 100. It is refused once the bucket
/// runs dry, holds every request for the `Retry-After`, and slows down: to 70 %, then to
/// the rate the vendor admitted between its first two 429s; the run of 303 requests meets
/// two 429s. A client that only waited out each `Retry-After` at its old pace is refused
/// every 1.7 s (4 times here: measured); one that did not hold the queue, a dozen or more.
#[tokio::test]
async fn connectwise_slows_to_the_vendors_pace_after_a_429() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 300, ..SandboxConfig::default() }).await.expect("sandbox");
    sandbox.set_rate_limit(Some(40));
    let mut http = http_settings(PsaKind::ConnectWise);
    http.rate_limit_per_sec = Some(100.0);
    http.burst = 1;
    let h = PsaHarness::with_client(PsaKind::ConnectWise, client_with(&sandbox, PsaKind::ConnectWise, http));
    let request = offramp_tests::psa::large_client_request();
    let report = deactivate_configs(&h.deps(), request).await;
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(report.statistics.configs_deactivated, 300);
    let throttled = sandbox.stats().throttled();
    assert!((1..=2).contains(&throttled), "429s served by the vendor: {throttled}");
    let sim = sim(&sandbox, PsaKind::ConnectWise);
    assert!(sim.configuration_ids_of(300).iter().all(|id| sim.update_count(*id) == 1), "each written once");
}

fn itglue(sandbox: &Sandbox, max_wait: Duration) -> ItGlueClient {
    let mut http = default_http_settings();
    short_backoff(&mut http);
    http.budget = Some(BudgetSettings { limit: 3_000, window: WINDOW, max_wait });
    ItGlueClient::new(ItGlueSettings { url: sandbox.itglue_url(), api_key: ITGLUE_API_KEY.into() }, http)
        .expect("IT Glue client")
}

/// IT Glue: another client used all but one request of the account's (shortened) window.
/// The 429 comes without `Retry-After`: the client waits for the window, within its
/// maximum, and the dependency check completes; with no patience it stops on the spent
/// budget, naming when there is room, instead of backing off into a connection failure.
#[tokio::test]
async fn itglue_waits_for_a_window_another_client_filled_or_stops_on_the_budget() {
    let sandbox = sandbox().await;
    sandbox.itglue().set_rate_limit(Some(10));
    sandbox.itglue().set_rate_window(WINDOW);
    sandbox.itglue().record_foreign_requests(9);
    let patient = itglue(&sandbox, Duration::from_secs(3));
    let started = Instant::now();
    let counts = patient.dependencies("9001").await.expect("dependency check after the window");
    assert!(counts.configurations > 0, "{counts:?}");
    // At most one refusal per request in flight (4): then the client waits for the window.
    let throttled = sandbox.stats().throttled();
    assert!((1..=4).contains(&throttled), "IT Glue refused {throttled} times");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    tokio::time::sleep(WINDOW + WINDOW / 10).await;
    sandbox.itglue().record_foreign_requests(10);
    let impatient = itglue(&sandbox, Duration::ZERO);
    let error = impatient.dependencies("9001").await.expect_err("the window is full");
    assert!(matches!(error, DocError::BudgetExhausted { .. }), "{error:?}");
}

/// An IT Glue deletion run whose window another client filled, and that may not wait:
/// it stops with `RequestBudgetExhausted` (retryable), deleting nothing, instead of
/// failing with a connection error.
#[tokio::test]
async fn an_itglue_deletion_stops_cleanly_on_a_full_window() {
    let sandbox = sandbox().await;
    sandbox.itglue().set_rate_limit(Some(10));
    sandbox.itglue().set_rate_window(WINDOW);
    let docs = itglue(&sandbox, Duration::ZERO);
    let h = PsaHarness::new(&sandbox, PsaKind::ConnectWise);
    let options = DeleteOrgOptions { psa_policy: offramp::domain::ItGluePsaPolicy::Off, ..DeleteOrgOptions::default() };
    let deps =
        DeleteOrgDeps { docs: &docs, audit: h.audit.as_ref(), psa: None, settings: None, archive: None, options };
    sandbox.itglue().record_foreign_requests(9);
    let request = DeleteOrgRequest {
        org_id: Some("9005".into()),
        confirm_delete: true,
        initiated_by: Some("admin@msp.example".into()),
        ..DeleteOrgRequest::default()
    };
    let report = delete_itglue_org(&deps, request).await;
    assert!(!report.success && !report.deleted, "{:?}", report.errors);
    let codes: Vec<ErrorCode> = report.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, [ErrorCode::RequestBudgetExhausted], "{:?}", report.errors);
    assert!(sandbox.stats().throttled() >= 1, "IT Glue itself refused");
    assert!(sandbox.itglue().organization_exists(9005), "nothing deleted");
    assert_eq!(sandbox.stats().count("DELETE", "/itglue/organizations"), 0);
}

/// Autotask's other 429, the thread limit ("Thread Threshold Exceeded", 3 per endpoint per
/// integration): a second process of the same integration takes threads too. That refusal
/// is about concurrency, not the hour: it is retried with backoff, and a client that may
/// not wait for the hour (`max_wait` 0) still finishes instead of stopping on a budget it
/// has not spent.
#[tokio::test]
async fn autotask_retries_the_thread_limit_without_counting_the_hour_spent() {
    let sandbox = sandbox().await;
    sandbox.set_latency(Duration::from_millis(30));
    let first = harness(&sandbox, PsaKind::Autotask, 9_000, Duration::ZERO);
    let second = harness(&sandbox, PsaKind::Autotask, 9_000, Duration::ZERO);
    let (a, b) = tokio::join!(six_reads(&first), six_reads(&second));
    let failed: Vec<String> =
        a.iter().chain(b.iter()).filter_map(|r| r.as_ref().err().map(|e| e.to_string())).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(sandbox.stats().thread_limit_rejections() >= 1, "the two processes did collide on the thread limit");
}

/// Six configuration reads at once (one endpoint): the client itself sends three at a time.
async fn six_reads(h: &PsaHarness) -> Vec<Result<(), offramp::error::PsaError>> {
    let psa = h.psa.as_ref();
    let read = |id: &'static str| async move { psa.configuration(id).await.map(|_| ()) };
    let all = tokio::join!(read("25001"), read("25002"), read("25003"), read("25004"), read("25005"), read("25006"));
    vec![all.0, all.1, all.2, all.3, all.4, all.5]
}
