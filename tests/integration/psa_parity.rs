//! Workflow 000 (docs/workflows.md#000-configuration-deactivation) on all three PSAs: the same
//! scenario through the real ConnectWise, Autotask and HaloPSA clients over HTTP gives the same
//! report, field by field; and each PSA's own limits (Autotask threads and hourly budget, HaloPSA
//! tokens, batches and window) are kept.

use std::time::Duration;

use offramp::domain::{OffboardedCriteria, PsaKind};
use offramp::error::ErrorCode;
use offramp::http::BudgetSettings;
use offramp::workflows::deactivate_configs::{ConfigDeactivationReport, DeactivateConfigsRequest, deactivate_configs};
use offramp::workflows::sweep::sweep_offboarded_clients;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::connectwise::assert_seed_shape;
use offramp_tests::psa::{ALL, PARITY_CLIENT, PsaHarness, client_with, http_settings, sim};
use serde_json::{Value, json};

async fn sandbox(large: usize) -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: large, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn request(client_id: &str) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest {
        client_id: Some(client_id.into()),
        initiated_by: Some("parity@msp.example".into()),
        reason: Some("contract ended".into()),
        ..DeactivateConfigsRequest::default()
    }
}

/// The report without what differs by nature between two runs (time, ids, the plan hash,
/// which covers vendor status ids) and with each error reduced to its code and item. The
/// vendor's own error text is checked separately.
fn comparable(report: &ConfigDeactivationReport) -> Value {
    let mut value = serde_json::to_value(report).unwrap();
    assert_seed_shape(&value);
    let operation_id = report.operation_id.clone().unwrap_or_default();
    let object = value.as_object_mut().unwrap();
    for volatile in ["timestamp", "operation_id", "plan_hash"] {
        object.remove(volatile);
    }
    let errors: Vec<Value> =
        report.errors.iter().map(|e| json!({ "code": e.code, "config_id": e.config_id })).collect();
    object.insert("errors".into(), Value::Array(errors));
    let warnings: Vec<Value> =
        report.warnings.iter().map(|w| Value::String(w.replace(&operation_id, "<operation>"))).collect();
    object.insert("warnings".into(), Value::Array(warnings));
    value
}

fn assert_all_equal(reports: &[(PsaKind, Value)]) {
    let (first_kind, first) = &reports[0];
    for (kind, report) in &reports[1..] {
        assert_eq!(
            report,
            first,
            "{kind} and {first_kind} disagree:\n{kind}: {}\n{first_kind}: {}",
            serde_json::to_string_pretty(report).unwrap(),
            serde_json::to_string_pretty(first).unwrap()
        );
    }
}

#[tokio::test]
async fn the_same_scenario_gives_the_same_report_on_every_psa() {
    let mut dry_runs = Vec::new();
    let mut runs = Vec::new();
    let mut resumes = Vec::new();
    for kind in ALL {
        let sandbox = sandbox(0).await;
        let h = PsaHarness::new(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        sim.fail_configuration_update(27002, "Configuration is locked by a contract");

        let dry =
            deactivate_configs(&h.deps(), DeactivateConfigsRequest { dry_run: true, ..request(PARITY_CLIENT) }).await;
        assert_eq!(sandbox.stats().patches(), 0, "{kind}: a dry run changed something");
        dry_runs.push((kind, comparable(&dry)));

        let run = deactivate_configs(
            &h.deps(),
            DeactivateConfigsRequest { include_archived: true, ..request(PARITY_CLIENT) },
        )
        .await;
        assert_eq!(run.errors.len(), 1, "{kind}: {:?}", run.errors);
        assert!(run.errors[0].message.contains("locked by a contract"), "{kind}: {}", run.errors[0].message);
        for (id, active) in [(27001, false), (27002, true), (27003, false), (27004, false), (27005, false)] {
            assert_eq!(sim.configuration_is_active(id), Some(active), "{kind}: configuration {id}");
        }
        assert_eq!(sim.update_count(27004) + sim.update_count(27005), 0, "{kind}: inactive/archived were touched");
        runs.push((kind, comparable(&run)));

        // HaloPSA sends a batch first and, when it is refused, asset by asset: attempts
        // per asset differ by PSA; what matters is that the resume adds none for them.
        let attempts_before: Vec<usize> = [27001, 27003].iter().map(|id| sim.update_count(*id)).collect();
        sim.clear_configuration_failures();
        let resumed = deactivate_configs(
            &h.deps(),
            DeactivateConfigsRequest { operation_id: run.operation_id.clone(), ..DeactivateConfigsRequest::default() },
        )
        .await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        for (id, before) in [27001, 27003].iter().zip(attempts_before) {
            assert_eq!(sim.update_count(*id), before, "{kind}: configuration {id} updated again by the resume");
        }
        assert_eq!(sim.configuration_is_active(27002), Some(false), "{kind}");
        resumes.push((kind, comparable(&resumed)));
    }
    // The figures themselves, once (the comparison then holds them for every PSA).
    let run = &runs[0].1;
    assert_eq!(
        run["statistics"],
        json!({"configs_found": 5, "configs_deactivated": 2, "configs_skipped": 2, "errors": 1})
    );
    assert_eq!(run["errors"], json!([{"code": "ConfigUpdateFailed", "config_id": "27002"}]));
    let statuses: Vec<(String, String, String)> = run["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["config_id"].as_str().unwrap().to_string(),
                c["previous_status"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("27001", "active", "inactive"),
        ("27002", "active", "active"),
        ("27003", "active", "inactive"),
        ("27004", "inactive", "inactive"),
        ("27005", "archived", "archived"),
    ];
    assert_eq!(
        statuses,
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect::<Vec<_>>()
    );
    assert_eq!(dry_runs[0].1["statistics"]["configs_found"], json!(4), "archived left out without include_archived");
    assert_all_equal(&dry_runs);
    assert_all_equal(&runs);
    assert_all_equal(&resumes);
}

#[tokio::test]
async fn a_rerun_touches_nothing_on_any_psa() {
    for kind in ALL {
        let sandbox = sandbox(0).await;
        let h = PsaHarness::new(&sandbox, kind);
        let first = deactivate_configs(&h.deps(), request("250")).await;
        assert!(first.success, "{kind}: {:?}", first.errors);
        assert_eq!(first.statistics.configs_deactivated, 9, "{kind}");
        let second = deactivate_configs(&h.deps(), request("250")).await;
        assert_eq!(second.statistics.configs_deactivated, 0, "{kind}");
        assert_eq!(second.statistics.configs_skipped, 11, "{kind}");
        let sim = sim(&sandbox, kind);
        for id in sim.configuration_ids_of(250) {
            assert!(sim.update_count(id) <= 1, "{kind}: {id} updated twice");
            assert_eq!(sim.configuration_is_active(id), Some(false), "{kind}: {id}");
        }
    }
}

#[tokio::test]
async fn the_sweep_works_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox(50).await;
        let h = PsaHarness::new(&sandbox, kind);
        let criteria = match kind {
            PsaKind::ConnectWise => OffboardedCriteria { statuses: vec!["Offboarded".into()], ..Default::default() },
            _ => OffboardedCriteria { inactive: true, ..Default::default() },
        };
        let report = sweep_offboarded_clients(&h.deps(), &criteria, false, "schedule:test").await;
        assert!(report.success, "{kind}: {report:?}");
        let mut processed: Vec<&str> = report.operations.iter().filter_map(|o| o.client_id.as_deref()).collect();
        processed.sort_unstable();
        assert_eq!(processed, ["250", "270", "410", "411"], "{kind}");
        let sim = sim(&sandbox, kind);
        for id in sim.configuration_ids_of(100).into_iter().chain(sim.configuration_ids_of(300)) {
            assert_eq!(sim.update_count(id), 0, "{kind}: an active company's configuration {id} was touched");
        }
        let again = sweep_offboarded_clients(&h.deps(), &criteria, false, "schedule:test").await;
        assert_eq!(again.clients_processed, 0, "{kind}");
    }
}

#[tokio::test]
async fn every_psa_pages_through_large_lists() {
    let sandbox = sandbox(1_200).await;
    for kind in ALL {
        let psa = client_with(&sandbox, kind, http_settings(kind));
        let configs = psa.list_configurations("300", false).await.unwrap();
        assert_eq!(configs.len(), 1_200, "{kind}");
        let mut ids: Vec<&str> = configs.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1_200, "{kind}: duplicates across pages");
    }
    let stats = sandbox.stats();
    // Autotask: 500 per page, two queries (active, inactive): 3 + 1 requests.
    let autotask_pages = stats.count("POST", "/autotask/ConfigurationItems/query")
        + stats.count("POST", "/autotask/ConfigurationItems/query/next");
    assert_eq!(autotask_pages, 4, "{:?}", stats.by_route);
    // HaloPSA: 500 per page, one list: 3 requests.
    assert_eq!(stats.count("GET", "/halo/api/asset"), 3, "{:?}", stats.by_route);
}

// ---------------------------------------------------------------------------
// Autotask
// ---------------------------------------------------------------------------

#[tokio::test]
async fn autotask_finds_its_zone_and_keeps_to_three_threads_per_endpoint() {
    let sandbox = sandbox(0).await;
    sandbox.set_latency(Duration::from_millis(40));
    let h = PsaHarness::new(&sandbox, PsaKind::Autotask);
    let mut deps = h.deps();
    deps.options.concurrency = 16;
    let report = deactivate_configs(&deps, request("250")).await;
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(report.statistics.configs_deactivated, 9);
    let stats = sandbox.stats();
    assert_eq!(stats.thread_limit_rejections(), 0, "the client exceeded 3 threads: {:?}", stats.by_route);
    assert_eq!(stats.throttled(), 0);
    assert_eq!(stats.count("GET", "/autotask/zoneInformation"), 1, "{:?}", stats.by_route);
}

#[tokio::test]
async fn autotask_authentication_quirks_are_permission_denied() {
    use offramp::adapters::autotask::AutotaskClient;
    let sandbox = sandbox(0).await;
    let base = offramp_tests::psa::autotask_settings(&sandbox);
    let cases = [
        // A bad user name answers 500 (the zone is configured, so no lookup happens first).
        offramp::adapters::autotask::AutotaskSettings {
            url: Some(sandbox.autotask_url()),
            username: "nobody@sandbox.example".into(),
            ..base.clone()
        },
        // A bad integration code answers 500 as well.
        offramp::adapters::autotask::AutotaskSettings { integration_code: "WRONGCODE-1234".into(), ..base.clone() },
        // A wrong secret answers 401.
        offramp::adapters::autotask::AutotaskSettings { secret: "wrong-secret-value".into(), ..base.clone() },
    ];
    for settings in cases {
        let label = format!("user {} code {}", settings.username, settings.integration_code.expose());
        let psa = AutotaskClient::new(settings, http_settings(PsaKind::Autotask)).unwrap();
        let h = PsaHarness::with_client(PsaKind::Autotask, Box::new(psa));
        let report = deactivate_configs(&h.deps(), request("250")).await;
        assert!(!report.success, "{label}");
        assert_eq!(report.errors[0].code, ErrorCode::PermissionDenied, "{label}: {:?}", report.errors);
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("wrong-secret-value") && !text.contains("WRONGCODE-1234"), "credential leaked: {text}");
    }
    assert_eq!(sandbox.stats().patches(), 0);
}

#[tokio::test]
async fn autotask_stops_cleanly_when_the_hourly_budget_is_spent_and_resumes_later() {
    let sandbox = sandbox(0).await;
    let mut http = http_settings(PsaKind::Autotask);
    // A tiny budget over a short window stands in for 10,000 per hour.
    http.budget = Some(BudgetSettings { limit: 12, window: Duration::from_secs(3), max_wait: Duration::ZERO });
    let h = PsaHarness::with_client(PsaKind::Autotask, client_with(&sandbox, PsaKind::Autotask, http));
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert!(!report.success);
    let stop = report.errors.iter().find(|e| e.code == ErrorCode::RequestBudgetExhausted).expect("budget stop");
    assert!(stop.message.contains("resumed"), "{}", stop.message);
    assert_eq!(report.statistics.configs_found, 11, "the report still counts every configuration");
    let sent = sandbox.stats().patches();
    assert!(sent < 9, "stopped before the end: {sent} sent");
    assert_eq!(report.statistics.configs_deactivated, sent);
    assert_eq!(sandbox.stats().throttled(), 0, "stopped by our budget, not throttled by Autotask");

    // The window plus the budget's 1% safety margin.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let resumed = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest { operation_id: report.operation_id.clone(), ..DeactivateConfigsRequest::default() },
    )
    .await;
    assert!(resumed.success, "{:?}", resumed.errors);
    assert_eq!(resumed.statistics.configs_deactivated, 9);
    let sim = sandbox.autotask();
    for id in offramp_sandbox::PsaSim::configuration_ids_of(sim, 250) {
        assert!(offramp_sandbox::PsaSim::update_count(sim, id) <= 1, "{id} updated twice");
    }
    assert_eq!(sandbox.stats().patches(), 9);
}

#[tokio::test]
async fn autotask_counts_what_the_database_already_used_this_hour() {
    let sandbox = sandbox(0).await;
    // Another integration (here: another client) has used the database this hour.
    let other = client_with(&sandbox, PsaKind::Autotask, http_settings(PsaKind::Autotask));
    for _ in 0..3 {
        other.list_configurations("100", false).await.unwrap();
    }
    let used = sandbox.stats().total();
    let mut http = http_settings(PsaKind::Autotask);
    http.budget =
        Some(BudgetSettings { limit: used as u32 + 6, window: Duration::from_secs(3600), max_wait: Duration::ZERO });
    let h = PsaHarness::with_client(PsaKind::Autotask, client_with(&sandbox, PsaKind::Autotask, http));
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert!(report.errors.iter().any(|e| e.code == ErrorCode::RequestBudgetExhausted), "{:?}", report.errors);
    assert_eq!(sandbox.stats().patches(), 0, "the budget left by others was spent on reading");
}

#[tokio::test]
async fn autotask_runs_on_a_database_whose_usage_probe_answers_404() {
    let sandbox = sandbox(0).await;
    sandbox.autotask().fail_threshold_information(Some(404));
    let psa = client_with(&sandbox, PsaKind::Autotask, http_settings(PsaKind::Autotask));
    let h = PsaHarness::with_client(PsaKind::Autotask, psa);
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert!(report.success, "the auxiliary probe does not decide the run: {:?}", report.errors);
    assert_eq!(report.statistics.configs_deactivated, 9);
    assert_eq!(sandbox.stats().patches(), 9);
    assert_eq!(sandbox.stats().count("GET", "/autotask/ThresholdInformation"), 1, "probed once");
}

#[tokio::test]
async fn autotask_counts_its_reserve_as_spent_when_the_usage_is_unknown() {
    use offramp::adapters::autotask::{AutotaskClient, AutotaskSettings};
    let sandbox = sandbox(0).await;
    sandbox.autotask().fail_threshold_information(Some(404));
    let mut http = http_settings(PsaKind::Autotask);
    http.budget = Some(BudgetSettings { limit: 100, window: Duration::from_secs(3600), max_wait: Duration::ZERO });
    let settings = AutotaskSettings { budget_reserve: 30, ..offramp_tests::psa::autotask_settings(&sandbox) };
    let psa = AutotaskClient::new(settings, http).unwrap();
    offramp::ports::Psa::company_by_id(&psa, "250").await.unwrap().expect("company 250");
    let sent = sandbox.stats().total() as u32;
    let remaining = psa.http().budget().unwrap().remaining().await;
    assert_eq!(remaining, 100 - 30 - sent, "{sent} sent, and the reserve of 30 counted as used");
}

// ---------------------------------------------------------------------------
// HaloPSA
// ---------------------------------------------------------------------------

#[tokio::test]
async fn halo_reuses_its_token_and_fetches_a_new_one_once_when_revoked() {
    let sandbox = sandbox(0).await;
    let h = PsaHarness::new(&sandbox, PsaKind::Halo);
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(sandbox.halo_tokens_issued(), 1);
    sandbox.revoke_halo_tokens();
    let configs = h.psa.list_configurations("250", false).await.unwrap();
    assert_eq!(configs.len(), 11);
    assert_eq!(sandbox.halo_tokens_issued(), 2);
}

#[tokio::test]
async fn halo_expired_tokens_are_replaced_before_use() {
    let sandbox = sandbox(0).await;
    // Shorter than the client's safety margin: every call needs a fresh token.
    sandbox.set_halo_token_ttl(Duration::from_secs(30));
    let h = PsaHarness::new(&sandbox, PsaKind::Halo);
    h.psa.list_configurations("250", false).await.unwrap();
    h.psa.list_configurations("250", false).await.unwrap();
    assert_eq!(sandbox.halo_tokens_issued(), 2);
    assert_eq!(sandbox.stats().count("GET", "/halo/api/asset"), 2, "no request was refused with 401");
}

#[tokio::test]
async fn halo_updates_assets_in_batches_and_isolates_a_failing_one() {
    let sandbox = sandbox(0).await;
    let h = PsaHarness::new(&sandbox, PsaKind::Halo);
    let report = deactivate_configs(&h.deps(), request("410")).await;
    assert!(report.success);
    assert_eq!(sandbox.stats().count("POST", "/halo/api/asset"), 1, "two assets, one request");

    let sim = sim(&sandbox, PsaKind::Halo);
    sim.fail_configuration_update(25002, "Asset is linked to an active contract");
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert_eq!(report.statistics.configs_deactivated, 8);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].config_id.as_deref(), Some("25002"));
    assert!(report.errors[0].message.contains("active contract"), "{}", report.errors[0].message);
    // One batch refused as a whole, then asset by asset.
    assert_eq!(sandbox.stats().count("POST", "/halo/api/asset"), 1 + 1 + 9);
    assert_eq!(sim.configuration_is_active(25002), Some(true));
}

#[tokio::test]
async fn halo_bad_client_secret_is_permission_denied_without_leaking_it() {
    use offramp::adapters::halo::{HaloClient, HaloSettings};
    let sandbox = sandbox(0).await;
    let settings =
        HaloSettings { client_secret: "not-the-halo-secret".into(), ..offramp_tests::psa::halo_settings(&sandbox) };
    let psa = HaloClient::new(settings, http_settings(PsaKind::Halo)).unwrap();
    let h = PsaHarness::with_client(PsaKind::Halo, Box::new(psa));
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert_eq!(report.errors[0].code, ErrorCode::PermissionDenied, "{:?}", report.errors);
    assert!(!serde_json::to_string(&report).unwrap().contains("not-the-halo-secret"));
}

#[tokio::test]
async fn halo_keeps_to_its_window_and_stops_when_it_will_not_wait() {
    let sandbox = sandbox(0).await;
    let mut http = http_settings(PsaKind::Halo);
    http.budget = Some(BudgetSettings { limit: 3, window: Duration::from_secs(300), max_wait: Duration::ZERO });
    let h = PsaHarness::with_client(PsaKind::Halo, client_with(&sandbox, PsaKind::Halo, http));
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert!(report.errors.iter().any(|e| e.code == ErrorCode::RequestBudgetExhausted), "{:?}", report.errors);
    assert_eq!(sandbox.stats().throttled(), 0, "HaloPSA never had to refuse us");
}

/// The seed's third criterion: a client whose every contract has ended (ConnectWise
/// agreements, Autotask contracts, HaloPSA client contracts). 411 still has a running
/// contract and 100 has a current one beside a cancelled one: neither is swept.
#[tokio::test]
async fn the_contract_criterion_sweeps_clients_whose_every_contract_ended_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox(0).await;
        let h = PsaHarness::new(&sandbox, kind);
        let criteria = OffboardedCriteria { contract_ended: true, ..Default::default() };
        let companies = offramp::workflows::offboarded::offboarded_companies(h.psa.as_ref(), &criteria).await.unwrap();
        let ids: Vec<&str> = companies.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["250", "260", "270", "410"], "{kind}");
        let contoso = &companies[0];
        let summary = contoso.contracts.as_ref().expect("contracts read");
        assert_eq!((summary.total, summary.current), (2, 0), "{kind}");

        let report = sweep_offboarded_clients(&h.deps(), &criteria, true, "schedule:test").await;
        assert!(report.success, "{kind}: {report:?}");
        assert_eq!(report.clients_checked, 4, "{kind}");
        let processed: Vec<&str> = report.operations.iter().filter_map(|o| o.client_id.as_deref()).collect();
        assert_eq!(processed, ["250", "270", "410"], "{kind}: 260 has no configurations left to change");
        assert_eq!(sandbox.stats().patches(), 0, "{kind}: a dry-run sweep changed something");

        // A new contract for 410 makes it a current client again.
        sandbox.add_contract(410, 4199, Some("2099-01-01"), false);
        let companies = offramp::workflows::offboarded::offboarded_companies(h.psa.as_ref(), &criteria).await.unwrap();
        assert!(!companies.iter().any(|c| c.id == "410"), "{kind}");
    }
}

/// The one HTTP layer retries what is safe to retry, on every PSA: injected 503s and a
/// connection dropped mid-response end in a complete run, each configuration changed once.
#[tokio::test]
async fn transient_faults_are_retried_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox(0).await;
        let h = PsaHarness::new(&sandbox, kind);
        sandbox.fail_next(2, 503);
        sandbox.drop_next(1);
        let report = deactivate_configs(&h.deps(), request("270")).await;
        assert!(report.success, "{kind}: {:?}", report.errors);
        assert_eq!(report.statistics.configs_deactivated, 3, "{kind}");
        let sim = sim(&sandbox, kind);
        for id in [27001, 27002, 27003] {
            assert_eq!(sim.configuration_is_active(id), Some(false), "{kind}: {id}");
        }
    }
}

/// HaloPSA's answer to an asset batch is UNCONFIRMED (docs/vendors/halopsa.md#upserts). An
/// asset it leaves out is read back, never counted as changed on trust: one the batch did
/// change is reported changed (and updated once), one it silently skipped is a failure.
#[tokio::test]
async fn halo_reads_back_assets_missing_from_a_batch_answer() {
    let sandbox = sandbox(0).await;
    let h = PsaHarness::new(&sandbox, PsaKind::Halo);
    let sim = sim(&sandbox, PsaKind::Halo);
    sandbox.halo().omit_from_asset_answers(&[25002, 25003]);
    sandbox.halo().ignore_asset_updates(&[25004]);
    let report = deactivate_configs(&h.deps(), request("250")).await;
    assert_eq!(report.statistics.configs_deactivated, 8, "{:?}", report.errors);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors[0].code, ErrorCode::ConfigUpdateFailed);
    assert_eq!(report.errors[0].config_id.as_deref(), Some("25004"));
    assert_eq!(sim.configuration_is_active(25004), Some(true));
    for id in [25002, 25003] {
        assert_eq!(sim.configuration_is_active(id), Some(false), "{id}");
        assert_eq!(sim.update_count(id), 1, "{id}: changed once");
    }
    assert_eq!(sandbox.stats().count("GET", "/halo/api/asset/{id}"), 3, "each missing asset read back once");
}

/// The HaloPSA client asks for the scope it is configured with (`HALO_SCOPE`, default `all`);
/// a token without `edit:assets` changes nothing and every item is `PermissionDenied`.
#[tokio::test]
async fn halo_asks_for_its_scope_and_a_narrow_token_changes_nothing() {
    use offramp::adapters::halo::{HaloClient, HaloSettings};
    let sandbox = sandbox(0).await;
    let h = PsaHarness::new(&sandbox, PsaKind::Halo);
    let report = deactivate_configs(&h.deps(), request("270")).await;
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(sandbox.halo().scopes_requested(), ["all"]);

    let settings =
        HaloSettings { scope: "read:customers read:assets".into(), ..offramp_tests::psa::halo_settings(&sandbox) };
    let narrow = PsaHarness::with_client(
        PsaKind::Halo,
        Box::new(HaloClient::new(settings, http_settings(PsaKind::Halo)).unwrap()),
    );
    let report = deactivate_configs(&narrow.deps(), request("250")).await;
    assert_eq!(report.statistics.configs_deactivated, 0);
    assert!(
        !report.errors.is_empty() && report.errors.iter().all(|e| e.code == ErrorCode::PermissionDenied),
        "{:?}",
        report.errors
    );
    assert!(report.errors[0].message.contains("edit:assets"), "{}", report.errors[0].message);
    assert_eq!(sandbox.halo().scopes_requested(), ["all", "read:customers read:assets"]);
    assert_eq!(sim(&sandbox, PsaKind::Halo).configuration_is_active(25001), Some(true));
}

/// A rollback of many configurations of one company reads them with the company's
/// listing instead of one read each, and restores them in the PSA's batches where it takes
/// them (HaloPSA, 50 per request): like the forward run. The one someone re-activated
/// since is judged on the listing too: already restored, left alone. Requests are counted
/// by the sandbox.
#[tokio::test]
async fn a_rollback_of_many_lists_them_once_and_restores_in_the_psas_batches_on_every_psa() {
    use offramp::workflows::rollback::{RollbackDeps, RollbackRequest, rollback};
    const CONFIGS: i64 = 60;
    for kind in ALL {
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: CONFIGS as usize, ..SandboxConfig::default() })
                .await
                .expect("sandbox");
        let h = PsaHarness::new(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let request = offramp_tests::psa::large_client_request();
        let report = deactivate_configs(&h.deps(), request).await;
        assert_eq!(report.statistics.configs_deactivated, CONFIGS as u64, "{kind}: {:?}", report.errors);
        sim.set_configuration_active(300_001, true);
        sandbox.reset_stats();

        let deps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let request = RollbackRequest {
            operation_id: report.operation_id.clone().expect("operation id"),
            ..RollbackRequest::default()
        };
        let rolled = rollback(&deps, request).await;
        assert_eq!(rolled.statistics.restored, CONFIGS as u64 - 1, "{kind}: {:?}", rolled.errors);
        assert_eq!(rolled.statistics.already_restored, 1, "{kind}");
        let stats = sandbox.stats();
        // One listing, then 59 restores: ConnectWise one PATCH each; Autotask one PATCH and
        // its read-back each (its answer carries only the id), its listing a query plus the
        // count; HaloPSA two batch upserts (50 + 9).
        let least = match kind {
            PsaKind::ConnectWise => 1 + 59,
            PsaKind::Autotask => 2 + 2 * 59,
            PsaKind::Halo => 1 + 2,
        };
        assert_eq!(stats.total(), least, "{kind}: {:?}", stats.by_route);
        for id in 300_002..300_001 + CONFIGS {
            assert_eq!(sim.configuration_is_active(id), Some(true), "{kind}: {id} restored");
            assert_eq!(sim.update_count(id), 2, "{kind}: {id} deactivated once, restored once");
        }
        assert_eq!(sim.update_count(300_001), 1, "{kind}: the re-activated one is left alone");
    }
}

/// Closing a ticket (the chain's finalize, docs/vendors/ticket-close.md) works alike on every
/// PSA: the simulator holds the ticket closed, the company's other tickets and the notes are
/// untouched, a second close is harmless, and an unknown or malformed ticket is an error that
/// changes nothing.
#[tokio::test]
async fn closing_a_ticket_works_alike_on_every_psa() {
    use offramp::domain::NewTicket;
    use offramp::error::PsaError;
    for kind in ALL {
        let sandbox = sandbox(0).await;
        let psa = offramp_tests::psa::client(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let company: i64 = PARITY_CLIENT.parse().unwrap();
        let new = NewTicket {
            company_id: PARITY_CLIENT.into(),
            summary: "Offboarding: parity".into(),
            queue: None,
            description: "Automated offboarding".into(),
        };
        let ticket = psa.create_ticket(&new).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        let id: i64 = ticket.id.parse().unwrap();
        let others = |sim: &dyn offramp_sandbox::PsaSim| -> Vec<(i64, bool)> {
            sim.ticket_ids_of(company)
                .into_iter()
                .filter(|t| *t != id)
                .map(|t| (t, sim.ticket(t).unwrap().closed))
                .collect()
        };
        let (others_before, notes_before) = (others(sim), sim.ticket(id).unwrap().notes);
        assert!(!sim.ticket(id).unwrap().closed, "{kind}: a new ticket is open");

        let closed = psa.close_ticket(&ticket.id).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(closed.closed, "{kind}: {closed:?}");
        assert!(sim.ticket(id).unwrap().closed, "{kind}: the simulator holds the ticket closed");
        assert!(psa.open_tickets(PARITY_CLIENT).await.unwrap().iter().all(|t| t.id != ticket.id), "{kind}");
        assert_eq!(others(sim), others_before, "{kind}: the company's other tickets are untouched");
        assert_eq!(sim.ticket(id).unwrap().notes, notes_before, "{kind}: closing writes no note");
        // Closing again (a retried finalize) leaves it closed.
        assert!(psa.close_ticket(&ticket.id).await.unwrap_or_else(|e| panic!("{kind} again: {e}")).closed);

        let all_before: Vec<(i64, bool)> =
            sim.ticket_ids_of(company).into_iter().map(|t| (t, sim.ticket(t).unwrap().closed)).collect();
        match psa.close_ticket("999999").await {
            Err(PsaError::NotFound { .. } | PsaError::Rejected { .. }) => {}
            other => panic!("{kind}: an unknown ticket: {other:?}"),
        }
        assert!(matches!(psa.close_ticket("12; drop").await, Err(PsaError::InvalidId { .. })), "{kind}");
        let all_after: Vec<(i64, bool)> =
            sim.ticket_ids_of(company).into_iter().map(|t| (t, sim.ticket(t).unwrap().closed)).collect();
        assert_eq!(all_after, all_before, "{kind}: nothing changed for a bad ticket");
        assert!(sim.ticket(999999).is_none(), "{kind}: closing an unknown ticket created none");
    }
}
