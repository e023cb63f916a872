//! Every workflow at 20 % random vendor faults (issue 13, point 10): the sandbox's seeded
//! fault mode (`Sandbox::set_chaos`) strikes a fifth of ALL vendor requests — the PSA, the
//! Autotask zone lookup, HaloPSA's token, IT Glue, Entra and Graph — with a 429 (with and
//! without `Retry-After`), a 5xx, a connection dropped before the handler, a connection
//! dropped AFTER a write was applied, or a slow answer. On ConnectWise, Autotask and
//! HaloPSA (configuration deactivation, contact deactivation with its ticket and e-mail,
//! rollback) and on IT Glue (organization deletion): every item ends done or reported
//! failed, re-running the same operation completes everything, nothing is lost and
//! nothing is written twice, one summary ticket with one note, one e-mail. Every count
//! comes from the sandbox (its per-item count of applied writes and the simulators' state),
//! none from a report.
//!
//! Seeds are fixed (reproducible); `OFFRAMP_CHAOS_SEED` runs the same tests with another.
//!
//! Run: `cargo nextest run --workspace -E 'test(/^chaos::/)'`

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use offramp::adapters::halo::{HaloClient, HaloSettings};
use offramp::adapters::itglue::{ItGlueClient, ItGlueSettings, default_http_settings};
use offramp::adapters::notify_graph::{GraphMailNotifier, GraphMailSettings};
use offramp::domain::{GLOBAL_SCOPE, ItemKind, ItemOutcome, OperationDetail, PsaKind, SettingRecord};
use offramp::http::{BudgetSettings, HttpSettings};
use offramp::ports::{AuditStore, NoProgress, Notifier, SettingsStore};
use offramp::workflows::deactivate_configs::{DeactivateConfigsRequest, deactivate_configs};
use offramp::workflows::deactivate_contacts::{ContactDeps, DeactivateContactsRequest, deactivate_contacts};
use offramp::workflows::delete_itglue_org::{DeleteOrgDeps, DeleteOrgOptions, DeleteOrgRequest, delete_itglue_org};
use offramp::workflows::org_settings;
use offramp::workflows::rollback::{RollbackDeps, RollbackRequest, rollback};
use offramp_sandbox::{
    ChaosReport, ChaosSettings, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_SENDER, GRAPH_TENANT_ID, ITGLUE_API_KEY,
    Sandbox, SandboxConfig,
};
use offramp_tests::psa::{ALL, PsaHarness, client_with, halo_settings, http_settings, large_client_request, sim};

/// The share of vendor requests struck.
const RATE: f64 = 0.2;
/// Configurations of the large client (company 300) each run deactivates.
const CONFIGS: usize = 40;
/// Runs of one operation (the first and its re-runs) before the test gives up.
const MAX_RUNS: usize = 6;

fn seed(offset: u64) -> u64 {
    let base: u64 = std::env::var("OFFRAMP_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(13);
    base.wrapping_mul(1_000).wrapping_add(offset)
}

fn chaos(seed: u64) -> Option<ChaosSettings> {
    // `Retry-After: 1` as vendors send it; the clients below honour at most 50 ms of it.
    Some(ChaosSettings { seed, rate: RATE, retry_after_secs: 1, slow_ms: 150 })
}

async fn sandbox(large: usize) -> Sandbox {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: large, ..SandboxConfig::default() }).await.unwrap();
    // The random 429s are the limits here; HaloPSA's own window would only add waiting.
    sandbox.set_halo_rate_limit(None);
    sandbox
}

/// The PSA's own test settings, with short waits: a fifth of requests fail, so backoffs,
/// `Retry-After` and the windows a 429 without `Retry-After` fills (Autotask, HaloPSA)
/// are shortened, not skipped.
fn fast(mut http: HttpSettings) -> HttpSettings {
    http.max_retries = 6;
    http.base_backoff = Duration::from_millis(5);
    http.max_backoff = Duration::from_millis(40);
    http.max_retry_after = Duration::from_millis(50);
    http.request_timeout = Duration::from_secs(5);
    if http.budget.is_some() {
        let window = Duration::from_millis(200);
        http.budget = Some(BudgetSettings { limit: 10_000, window, max_wait: Duration::from_secs(2) });
    }
    http.rate_limit_per_sec = None;
    http
}

fn harness(sandbox: &Sandbox, kind: PsaKind) -> PsaHarness {
    let http = fast(http_settings(kind));
    if kind == PsaKind::Halo {
        // Batches of 4 instead of 50: a few dozen assets are then several upserts, each
        // a chance for a fault (one upsert of 40 would meet none most of the time).
        let settings = HaloSettings { update_batch: 4, ..halo_settings(sandbox) };
        return PsaHarness::with_client(kind, Box::new(HaloClient::new(settings, http).expect("client")));
    }
    PsaHarness::with_client(kind, client_with(sandbox, kind, http))
}

/// The latest trail record of every item of `kind`.
fn latest(detail: &OperationDetail, kind: ItemKind) -> BTreeMap<String, ItemOutcome> {
    detail.changes.iter().filter(|c| c.item_type == kind).map(|c| (c.item_id.clone(), c.outcome)).collect()
}

async fn trail(h: &PsaHarness, operation_id: &str) -> OperationDetail {
    h.audit.operation(operation_id).await.expect("trail readable").expect("operation recorded")
}

/// No item (creations aside) was changed twice, by the vendor's count.
fn assert_nothing_twice(report: &ChaosReport, what: &str) {
    assert!(report.written_more_than_once().is_empty(), "{what}: written twice: {:?}", report.written_more_than_once());
}

/// The figures a test prints (`--no-capture` shows them).
fn print_figures(what: &str, runs: usize, report: &ChaosReport) {
    println!(
        "chaos {what}: {} vendor requests, {} faults {:?}, runs {runs}, items written twice {}",
        report.requests,
        report.injected_total(),
        report.injected,
        report.written_more_than_once().len()
    );
}

/// Configuration deactivation, then its rollback, at 20 % faults on every PSA. After the
/// first run every configuration is deactivated or reported failed; re-runs of the same
/// operation finish the rest; each configuration was written exactly once (0 lost, 0
/// twice) and the trail says "changed" for each. The rollback, under the same faults,
/// restores each exactly once.
#[tokio::test]
async fn configurations_and_their_rollback_complete_at_20_percent_faults_on_every_psa() {
    let mut struck = 0;
    for (n, kind) in ALL.into_iter().enumerate() {
        let sandbox = sandbox(CONFIGS).await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let ids = sim.configuration_ids_of(300);
        assert_eq!(ids.len(), CONFIGS, "{kind}");
        sandbox.set_chaos(chaos(seed(n as u64)));

        let mut report = deactivate_configs(&h.deps(), large_client_request()).await;
        let mut runs = 1;
        // A fault before the operation was recorded (the zone lookup, the client's read)
        // fails the run with nothing changed: it is run again.
        while report.operation_id.is_none() {
            assert!(runs < MAX_RUNS && !report.errors.is_empty(), "{kind}: no operation: {:?}", report.errors);
            report = deactivate_configs(&h.deps(), large_client_request()).await;
            runs += 1;
        }
        let operation_id = report.operation_id.clone().unwrap_or_default();
        let failed: HashSet<String> = report.errors.iter().filter_map(|e| e.config_id.clone()).collect();
        for id in &ids {
            let done = sim.configuration_is_active(*id) == Some(false);
            assert!(done || failed.contains(&id.to_string()), "{kind}: {id} neither done nor reported failed");
        }
        while !report.success {
            assert!(runs < MAX_RUNS, "{kind}: still failing after {runs} runs: {:?}", report.errors);
            let resume = DeactivateConfigsRequest {
                operation_id: Some(operation_id.clone()),
                ..DeactivateConfigsRequest::default()
            };
            report = deactivate_configs(&h.deps(), resume).await;
            runs += 1;
        }
        let faults = sandbox.chaos_report();
        print_figures(&format!("{kind} configurations"), runs, &faults);
        struck += faults.injected_total();
        for id in &ids {
            assert_eq!(sim.configuration_is_active(*id), Some(false), "{kind}: {id} lost");
            assert_eq!(faults.writes_matching(&format!(" #{id}")), 1, "{kind}: writes applied to {id}");
        }
        assert_nothing_twice(&faults, &format!("{kind} configurations"));
        let recorded = latest(&trail(&h, &operation_id).await, ItemKind::Configuration);
        for id in &ids {
            assert_eq!(recorded.get(&id.to_string()), Some(&ItemOutcome::Changed), "{kind}: trail of {id}");
        }

        sandbox.reset_chaos_report();
        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let undo = || RollbackRequest { operation_id: operation_id.clone(), ..Default::default() };
        let mut undone = rollback(&rdeps, undo()).await;
        let mut runs = 1;
        while !undone.success {
            assert!(runs < MAX_RUNS, "{kind}: rollback still failing after {runs} runs: {:?}", undone.errors);
            undone = rollback(&rdeps, undo()).await;
            runs += 1;
        }
        let faults = sandbox.chaos_report();
        print_figures(&format!("{kind} rollback"), runs, &faults);
        for id in &ids {
            assert_eq!(sim.configuration_is_active(*id), Some(true), "{kind}: {id} not restored");
            assert_eq!(faults.writes_matching(&format!(" #{id}")), 1, "{kind}: restores applied to {id}");
        }
        assert_nothing_twice(&faults, &format!("{kind} rollback"));
        struck += faults.injected_total();
    }
    assert!(struck > 0, "no fault struck");
}

fn graph(sandbox: &Sandbox) -> GraphMailNotifier {
    let settings = GraphMailSettings {
        authority_url: sandbox.entra_url(),
        graph_url: sandbox.graph_url(),
        ..GraphMailSettings::new(GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET.into(), GRAPH_SENDER)
    };
    GraphMailNotifier::new(settings, fast(HttpSettings::default())).expect("Graph notifier")
}

async fn set_board(h: &PsaHarness, kind: PsaKind) {
    let board = if kind == PsaKind::Halo { "Offboarding" } else { "4" };
    let value = org_settings::validate(org_settings::TICKET_BOARD, board).expect("valid setting");
    let record = SettingRecord {
        psa: kind.as_str().into(),
        scope: GLOBAL_SCOPE.into(),
        key: org_settings::TICKET_BOARD.into(),
        value: Some(value),
        set_by: "test".into(),
        set_at: offramp::domain::now(),
    };
    h.audit.put_setting(&record).await.expect("setting");
}

fn contact_deps<'a>(h: &'a PsaHarness, notifier: &'a dyn Notifier) -> ContactDeps<'a> {
    ContactDeps {
        psa: h.psa.as_ref(),
        audit: h.audit.as_ref(),
        settings: h.audit.as_ref(),
        notifier: Some(notifier),
        progress: &NoProgress,
        concurrency: 8,
        requester_domains: vec!["msp.example".into()],
        deadline: offramp::operation::Deadline::none(),
    }
}

/// The parity client's contacts (7001–7003) at 20 % faults on every PSA, with the
/// summary ticket, its note and the e-mail through Graph (Entra token and sendMail under
/// the same faults). Re-runs of the operation finish what the first left; in the end each
/// contact was written once, one ticket was opened with one summary note, one e-mail sent
/// (a note or an e-mail whose answer was lost: none, and the run says its outcome is unknown).
#[tokio::test]
async fn contacts_with_ticket_and_e_mail_complete_at_20_percent_faults_on_every_psa() {
    for (n, kind) in ALL.into_iter().enumerate() {
        let sandbox = sandbox(0).await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        set_board(&h, kind).await;
        let mail = graph(&sandbox);
        let contacts = [7001, 7002, 7003];
        let before: HashSet<i64> = sim.ticket_ids_of(270).into_iter().collect();
        sandbox.set_chaos(chaos(seed(10 + n as u64)));

        let request = DeactivateContactsRequest {
            company_id: Some("270".into()),
            confirmation: true,
            initiated_by: Some("admin@msp.example".into()),
            ..DeactivateContactsRequest::default()
        };
        let mut report = deactivate_contacts(&contact_deps(&h, &mail), request.clone()).await;
        // Every run's warnings: an outcome reported unknown may be an earlier run's.
        let mut warnings = report.warnings.clone();
        let mut runs = 1;
        while report.audit_trail.operation_id.is_none() {
            assert!(runs < MAX_RUNS && !report.errors.is_empty(), "{kind}: no operation: {:?}", report.errors);
            report = deactivate_contacts(&contact_deps(&h, &mail), request.clone()).await;
            warnings.extend(report.warnings.clone());
            runs += 1;
        }
        let operation_id = report.audit_trail.operation_id.clone().unwrap_or_default();
        while !report.success {
            assert!(runs < MAX_RUNS, "{kind}: still failing after {runs} runs: {:?}", report.errors);
            let resume = DeactivateContactsRequest {
                operation_id: Some(operation_id.clone()),
                ..DeactivateContactsRequest::default()
            };
            report = deactivate_contacts(&contact_deps(&h, &mail), resume).await;
            warnings.extend(report.warnings.clone());
            runs += 1;
        }
        let faults = sandbox.chaos_report();
        print_figures(&format!("{kind} contacts"), runs, &faults);
        for id in contacts {
            assert_eq!(sim.contact_is_active(id), Some(false), "{kind}: contact {id} lost");
            assert_eq!(sim.contact_update_count(id), 1, "{kind}: updates of contact {id}");
        }
        assert_nothing_twice(&faults, &format!("{kind} contacts"));
        let tickets: Vec<i64> = sim.ticket_ids_of(270).into_iter().filter(|id| !before.contains(id)).collect();
        assert_eq!(tickets.len(), 1, "{kind}: one summary ticket: {tickets:?}");
        let notes = sim.ticket(tickets[0]).expect("ticket").notes;
        let summaries = notes.iter().filter(|n| n.contains("Bulk contact deactivation for")).count();
        // Like the e-mail below: a note whose answer was lost is never sent again, and
        // the run says its outcome is unknown (KNOWN GAP: a lost note is not looked up).
        let note_unknown = warnings.iter().any(|w| w.contains("outcome of the summary note"));
        assert!(
            summaries == 1 || (summaries == 0 && note_unknown),
            "{kind}: one summary note, got {summaries}: {notes:?} {warnings:?}"
        );
        // Graph's sendMail is not idempotent and cannot be looked up: a connection dropped
        // before its answer leaves the outcome unknown, and the run says so instead of
        // risking a second e-mail (the one case where "exactly one" is "at most one").
        let unknown = warnings.iter().any(|w| w.contains("outcome of the notification is unknown"));
        let mails = sandbox.sent_mail().len();
        assert!(mails == 1 || (mails == 0 && unknown), "{kind}: one e-mail, got {mails}: {warnings:?}");
        let recorded = latest(&trail(&h, &operation_id).await, ItemKind::Contact);
        for id in contacts {
            assert_eq!(recorded.get(&id.to_string()), Some(&ItemOutcome::Changed), "{kind}: trail of contact {id}");
        }
    }
}

/// IT Glue organization deletion (export, dependency check, asynchronous deletion) of
/// four organizations at 20 % faults: every organization is deleted or reported failed;
/// re-running the same request finishes the rest; each is deleted, with one DELETE applied.
#[tokio::test]
async fn it_glue_deletions_complete_at_20_percent_faults() {
    let sandbox = sandbox(0).await;
    sandbox.set_itglue_deletion_delay(Duration::from_millis(100));
    sandbox.itglue().set_export_delay(Duration::from_millis(50));
    let mut orgs = vec![9002];
    orgs.extend(sandbox.itglue().add_organizations(3, "Chaos Org"));
    let client = ItGlueClient::new(
        ItGlueSettings { url: sandbox.itglue_url(), api_key: ITGLUE_API_KEY.into() },
        fast(default_http_settings()),
    )
    .unwrap();
    let h = harness(&sandbox, PsaKind::ConnectWise);
    let options = DeleteOrgOptions {
        export_wait: Duration::from_secs(10),
        deletion_wait: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        // The sandbox's organizations are linked to active clients: the PSA is not asked.
        psa_policy: offramp::domain::ItGluePsaPolicy::Off,
        ..DeleteOrgOptions::default()
    };
    // The export is downloaded and archived before each deletion, under the same faults.
    let exports = tempfile::tempdir().unwrap();
    let archive = offramp::adapters::archive_local::LocalDirArchive::new(exports.path());
    let deps = DeleteOrgDeps {
        docs: &client,
        audit: h.audit.as_ref(),
        psa: Some(h.psa.as_ref()),
        settings: None,
        archive: Some(&archive),
        options,
    };
    sandbox.set_chaos(chaos(seed(20)));

    let mut most_runs = 0;
    let mut runs_of = BTreeMap::new();
    for org in &orgs {
        let request = DeleteOrgRequest {
            org_id: Some(org.to_string()),
            confirm_delete: true,
            reason: Some("client offboarded".into()),
            initiated_by: Some("admin@msp.example".into()),
            ..DeleteOrgRequest::default()
        };
        let mut report = delete_itglue_org(&deps, request.clone()).await;
        let mut runs = 1;
        while !(report.success && report.deleted) {
            assert!(
                report.deleted || !report.errors.is_empty() || !report.warnings.is_empty(),
                "{org}: neither deleted nor reported"
            );
            assert!(runs < MAX_RUNS, "{org}: still failing after {runs} runs: {:?}", report.errors);
            report = delete_itglue_org(&deps, request.clone()).await;
            runs += 1;
        }
        most_runs = most_runs.max(runs);
        runs_of.insert(*org, runs);
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let faults = sandbox.chaos_report();
    print_figures("IT Glue deletions", most_runs, &faults);
    assert!(faults.injected_total() > 0, "no fault struck");
    for org in &orgs {
        assert!(!sandbox.itglue().organization_exists(*org), "{org} not deleted");
        // KNOWN GAP: IT Glue deletes asynchronously and still serves an organization it
        // accepted for deletion, so a re-run after a lost DELETE answer cannot tell and
        // sends the DELETE again (IT Glue accepts it; nothing more is deleted). One DELETE
        // per organization within a run; at most one per run.
        let deletes = faults.writes_matching(&format!("DELETE /itglue/organizations #{org}"));
        assert!(deletes >= 1 && deletes <= runs_of[org] as u64, "{org}: {deletes} DELETEs in {} runs", runs_of[org]);
    }
    let others: Vec<_> =
        faults.written_more_than_once().into_iter().filter(|(key, _)| !key.starts_with("DELETE /itglue/")).collect();
    assert!(others.is_empty(), "IT Glue deletions: written twice: {others:?}");
}

/// The small version of `make chaos` (tests/support/crashes.rs): the `offramp` binary
/// killed with SIGKILL at 5 seeded points of a 200-configuration run against the
/// `offramp-sandbox` binary, resumed after each kill. Every resume completes (or is killed
/// at its point), nothing is lost or written twice (counted by the sandbox), and the
/// SQLite trail matches the sandbox's state item by item.
#[test]
fn the_cli_killed_at_5_random_points_of_a_200_item_run_resumes_to_the_same_state() {
    // target/debug/deps/integration-… → target/debug, where `cargo nextest run --workspace`
    // builds the `offramp` and `offramp-sandbox` binaries (their packages have tests).
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let seed = seed(30);
    let run = offramp_tests::crashes::crash_run(bin, 200, 5, seed);
    offramp_tests::crashes::report(&run, seed);
    // A point near the end may come after the run finished (the count is polled): that
    // run completed instead of being killed.
    assert!(run.kills >= 3, "kills: {}", run.kills);
    assert_eq!(run.resumes_completed, run.resumes, "every resume completed");
    assert_eq!((run.lost, run.written_twice, run.trail_mismatches), (0, 0, 0), "lost, written twice, trail mismatches");
}
