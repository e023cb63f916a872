//! Workflow 000 (docs/workflows.md#000-configuration-deactivation) end to end: the workflow, the
//! real ConnectWise client over HTTP, the sandbox, and a SQLite audit trail.

use std::time::Duration;

use offramp::domain::{GLOBAL_SCOPE, ItemOutcome, OffboardedCriteria, OperationEventKind, PsaKind, SettingRecord};
use offramp::error::ErrorCode;
use offramp::ports::{AuditStore, Psa, SettingsStore};
use offramp::workflows::deactivate_configs::{Approval, DeactivateConfigsRequest, deactivate_configs};
use offramp::workflows::org_settings;
use offramp::workflows::sweep::sweep_offboarded_clients;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::connectwise::{
    ACTIVE_CLIENT, DEMO_CLIENT, EMPTY_CLIENT, Harness, LARGE_CLIENT, assert_seed_shape, client, settings,
};
use offramp_tests::psa::sim;
use serde_json::json;

async fn small_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn request(client_id: &str) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest {
        client_id: Some(client_id.into()),
        initiated_by: Some("test@msp.example".into()),
        reason: Some("contract ended".into()),
        ..DeactivateConfigsRequest::default()
    }
}

/// The large client, Northwind Logistics (300), is not offboarded (its ConnectWise status is
/// Inactive, not Offboarded): the runs on it deactivate it on purpose, as
/// `allow_active_client` says and records.
fn large(client_id: &str) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest { allow_active_client: true, ..request(client_id) }
}

fn patches(sandbox: &Sandbox) -> u64 {
    sandbox.stats().patches()
}

fn active_config_ids(sandbox: &Sandbox, company: i64) -> Vec<i64> {
    sandbox
        .connectwise()
        .configurations_of(company)
        .iter()
        .filter(|c| c["status"]["name"] == json!("Active") || c["status"]["name"] == json!("On Order"))
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn dry_run_plans_everything_and_writes_nothing_to_the_psa() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let before = sandbox.connectwise().configurations_of(250);
    let report =
        deactivate_configs(&h.deps(), DeactivateConfigsRequest { dry_run: true, ..request(DEMO_CLIENT) }).await;

    assert!(report.success, "{report:?}");
    assert!(report.dry_run);
    assert_eq!(patches(&sandbox), 0, "a dry run must not PATCH");
    assert_eq!(sandbox.connectwise().configurations_of(250), before);
    // 12 configurations, the Disposed one hidden without include_archived: 11 listed.
    assert_eq!(report.statistics.configs_found, 11);
    assert_eq!(report.statistics.configs_deactivated, 9, "8 Active + 1 On Order would be deactivated");
    assert_eq!(report.statistics.configs_skipped, 2, "2 already Inactive");
    assert!(report.plan_hash.as_ref().is_some_and(|h| h.len() == 64));
    assert_seed_shape(&serde_json::to_value(&report).unwrap());

    let detail = h.audit.operation(report.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert!(detail.operation.dry_run);
    assert_eq!(detail.events.last().unwrap().kind, OperationEventKind::Planned);
    assert!(detail.changes.is_empty());
}

#[tokio::test]
async fn include_archived_lists_closed_configurations_but_never_changes_them() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let report =
        deactivate_configs(&h.deps(), DeactivateConfigsRequest { include_archived: true, ..request(DEMO_CLIENT) })
            .await;
    assert!(report.success, "{report:?}");
    assert_eq!(report.statistics.configs_found, 12);
    assert_eq!(report.statistics.configs_deactivated, 9);
    assert_eq!(report.statistics.configs_skipped, 3);
    // Reports speak one vocabulary on every PSA: ConnectWise "Disposed" (closed, not the
    // inactive status) is "archived", "On Order" (open) is "active".
    let disposed = report.configs.iter().find(|c| c.config_id == "25012").expect("disposed listed");
    assert_eq!((disposed.previous_status.as_str(), disposed.status.as_str()), ("archived", "archived"));
    let on_order = report.configs.iter().find(|c| c.config_id == "25009").expect("on order listed");
    assert_eq!((on_order.previous_status.as_str(), on_order.status.as_str()), ("active", "inactive"));
    assert_eq!(patches(&sandbox), 9);
}

#[tokio::test]
async fn a_real_run_deactivates_records_and_a_rerun_skips_everything() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let active = active_config_ids(&sandbox, 250);
    let report = deactivate_configs(&h.deps(), request(DEMO_CLIENT)).await;

    assert!(report.success, "{report:?}");
    assert_eq!(report.statistics.configs_deactivated, active.len() as u64);
    for id in &active {
        assert_eq!(sandbox.connectwise().patch_count(*id), 1);
        assert_eq!(sandbox.connectwise().configuration(*id).unwrap()["status"]["name"], json!("Inactive"));
    }
    let firewall = report.configs.iter().find(|c| c.config_name == "Firewall - HQ").expect("seeded config");
    assert_eq!((firewall.status.as_str(), firewall.previous_status.as_str()), ("inactive", "active"));
    assert_seed_shape(&serde_json::to_value(&report).unwrap());

    // The audit trail: header, snapshot of every listed config, one change per config, started + completed.
    let detail = h.audit.operation(report.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(detail.operation.initiated_by, "test@msp.example");
    assert_eq!(detail.operation.reason.as_deref(), Some("contract ended"));
    assert_eq!(detail.snapshots.len(), 11);
    assert_eq!(detail.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed).count(), active.len());
    let kinds: Vec<_> = detail.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![OperationEventKind::Started, OperationEventKind::Completed]);

    let again = deactivate_configs(&h.deps(), request(DEMO_CLIENT)).await;
    assert!(again.success);
    assert_eq!(again.statistics.configs_deactivated, 0);
    assert_eq!(again.statistics.configs_skipped, 11);
    for id in &active {
        assert_eq!(sandbox.connectwise().patch_count(*id), 1, "touched twice: {id}");
    }
}

#[tokio::test]
async fn approval_binds_to_the_plan_and_a_stale_hash_is_refused() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let pending =
        deactivate_configs(&h.deps(), DeactivateConfigsRequest { require_approval: true, ..request(DEMO_CLIENT) })
            .await;
    assert!(pending.success);
    assert_eq!(pending.status.as_deref(), Some("approval_required"));
    assert_eq!(patches(&sandbox), 0);
    let hash = pending.plan_hash.clone().unwrap();

    // Someone changes a configuration in the PSA: the approved plan is no longer the plan.
    let changed = active_config_ids(&sandbox, 250)[0];
    sandbox.connectwise().set_configuration_status(changed, 4);
    let approval = Some(Approval { plan_hash: hash.clone(), approved_by: "lead@msp.example".into() });
    let stale =
        deactivate_configs(&h.deps(), DeactivateConfigsRequest { approval: approval.clone(), ..request(DEMO_CLIENT) })
            .await;
    assert!(!stale.success);
    assert_eq!(stale.errors[0].code, ErrorCode::PlanChanged);
    assert_eq!(patches(&sandbox), 0, "a refused approval changes nothing");
    assert_seed_shape(&serde_json::to_value(&stale).unwrap());

    // Approving the fresh plan applies it.
    let fresh =
        deactivate_configs(&h.deps(), DeactivateConfigsRequest { require_approval: true, ..request(DEMO_CLIENT) })
            .await;
    assert_ne!(fresh.plan_hash.as_deref(), Some(hash.as_str()));
    let approval =
        Some(Approval { plan_hash: fresh.plan_hash.clone().unwrap(), approved_by: "lead@msp.example".into() });
    let applied = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest { require_approval: true, approval, ..request(DEMO_CLIENT) },
    )
    .await;
    assert!(applied.success, "{applied:?}");
    assert_eq!(applied.statistics.configs_deactivated, 8);
    let detail = h.audit.operation(applied.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(detail.events[0].detail["approved_by"], json!("lead@msp.example"));
}

#[tokio::test]
async fn one_failing_configuration_is_reported_and_the_others_complete() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let active = active_config_ids(&sandbox, 250);
    let broken = active[2];
    sandbox.connectwise().fail_configuration_update(broken, 400, "Configuration is locked by an agreement");
    let report = deactivate_configs(&h.deps(), request(DEMO_CLIENT)).await;

    assert!(!report.success);
    assert_eq!(report.statistics.errors, 1);
    assert_eq!(report.statistics.configs_deactivated, active.len() as u64 - 1);
    let error = &report.errors[0];
    assert_eq!(error.code, ErrorCode::ConfigUpdateFailed);
    assert_eq!(error.config_id.as_deref(), Some(broken.to_string().as_str()));
    assert!(error.message.contains("locked by an agreement"), "{}", error.message);
    for id in active.iter().filter(|id| **id != broken) {
        assert_eq!(sandbox.connectwise().configuration(*id).unwrap()["status"]["name"], json!("Inactive"));
    }
    assert_seed_shape(&serde_json::to_value(&report).unwrap());

    // Once the PSA accepts it, a resume finishes just that one.
    sandbox.connectwise().clear_configuration_failures();
    let resumed = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest { operation_id: report.operation_id.clone(), ..DeactivateConfigsRequest::default() },
    )
    .await;
    assert!(resumed.success, "{resumed:?}");
    assert_eq!(resumed.statistics.configs_deactivated, active.len() as u64);
    for id in &active {
        let expected = if *id == broken { 2 } else { 1 };
        assert_eq!(sandbox.connectwise().patch_count(*id), expected, "config {id}");
    }
}

/// A read the PSA rejects (a 4xx other than 401/403/404) is a PSA problem, not a failed
/// update: the company lookup or the configuration listing being refused reports
/// `PSAConnectionError`, and nothing is changed.
#[tokio::test]
async fn a_rejected_listing_or_lookup_is_a_psa_error_not_a_failed_update() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    for (route, status) in
        [("/company/configurations", 400), ("/company/configurations", 422), ("/company/companies", 400)]
    {
        sandbox.fail_route("GET", route, status);
        let report = deactivate_configs(&h.deps(), request(DEMO_CLIENT)).await;
        sandbox.clear_route_faults();
        assert!(!report.success, "{route} {status}: {report:?}");
        let codes: Vec<ErrorCode> = report.errors.iter().map(|e| e.code).collect();
        assert_eq!(codes, [ErrorCode::PsaConnectionError], "{route} {status}: {:?}", report.errors);
        assert_eq!(report.primary_error().map(ErrorCode::http_status), Some(502), "{route} {status}");
        assert_eq!(patches(&sandbox), 0, "{route} {status}: nothing may change when a read is refused");
    }
}

#[tokio::test]
async fn a_429_storm_still_completes() {
    let sandbox = small_sandbox().await;
    sandbox.set_rate_limit(Some(5));
    let h = Harness::new(&sandbox);
    let report = deactivate_configs(&h.deps(), request(DEMO_CLIENT)).await;
    assert!(report.success, "{report:?}");
    assert_eq!(report.statistics.configs_deactivated, 9);
    assert!(sandbox.stats().throttled() > 0, "the sandbox should have answered 429s");
}

#[tokio::test]
async fn transient_5xx_and_dropped_connections_are_retried() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    sandbox.fail_next(3, 503);
    sandbox.drop_next(2);
    let report = deactivate_configs(&h.deps(), request(DEMO_CLIENT)).await;
    assert!(report.success, "{report:?}");
    assert_eq!(report.statistics.configs_deactivated, 9);
}

#[tokio::test]
async fn bad_credentials_give_permission_denied_without_leaking_the_key() {
    let sandbox = small_sandbox().await;
    let mut bad = settings(&sandbox);
    bad.private_key = "wrong-private-key-XYZZY".into();
    let psa = offramp::adapters::connectwise::ConnectWiseClient::new(bad, offramp_tests::connectwise::http_settings())
        .unwrap();
    let h = Harness::new(&sandbox);
    let deps = offramp::workflows::deactivate_configs::Deps { psa: &psa, ..h.deps() };
    let report = deactivate_configs(&deps, request(DEMO_CLIENT)).await;
    assert!(!report.success);
    assert_eq!(report.errors[0].code, ErrorCode::PermissionDenied);
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains("wrong-private-key-XYZZY"), "key leaked: {text}");
    assert_seed_shape(&serde_json::to_value(&report).unwrap());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_read() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    for bad in [
        DeactivateConfigsRequest::default(),
        DeactivateConfigsRequest { client_name: Some("Contoso Dental".into()), ..request(DEMO_CLIENT) },
        request("250 or 1=1"),
        DeactivateConfigsRequest { operation_id: Some("not-an-id".into()), ..DeactivateConfigsRequest::default() },
    ] {
        let report = deactivate_configs(&h.deps(), bad).await;
        assert_eq!(report.errors[0].code, ErrorCode::InvalidInput, "{report:?}");
        assert_seed_shape(&serde_json::to_value(&report).unwrap());
    }
    assert_eq!(sandbox.stats().total(), 0, "nothing may be read for invalid input");
    assert!(h.audit.list_operations(&Default::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn client_lookup_errors_are_typed() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let by_name = |name: &str| DeactivateConfigsRequest {
        client_name: Some(name.into()),
        initiated_by: Some("t".into()),
        ..DeactivateConfigsRequest::default()
    };
    let ambiguous = deactivate_configs(&h.deps(), by_name("litware inc")).await;
    assert_eq!(ambiguous.errors[0].code, ErrorCode::ClientAmbiguous);
    assert!(ambiguous.errors[0].message.contains("410") && ambiguous.errors[0].message.contains("411"));

    let found =
        deactivate_configs(&h.deps(), DeactivateConfigsRequest { dry_run: true, ..by_name("CONTOSO DENTAL") }).await;
    assert_eq!(found.client_id.as_deref(), Some(DEMO_CLIENT));

    let missing = deactivate_configs(&h.deps(), request("999999")).await;
    assert_eq!(missing.errors[0].code, ErrorCode::ClientNotFound);
    let empty = deactivate_configs(&h.deps(), request(EMPTY_CLIENT)).await;
    assert_eq!(empty.errors[0].code, ErrorCode::ConfigNotFound);

    let not_offboarded = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest { offboarded_statuses: Some(vec!["Offboarded".into()]), ..request(ACTIVE_CLIENT) },
    )
    .await;
    assert_eq!(not_offboarded.errors[0].code, ErrorCode::ClientNotOffboarded);
    assert_eq!(patches(&sandbox), 0);
}

#[tokio::test]
async fn the_sweep_processes_only_offboarded_clients_with_active_configurations() {
    let sandbox = small_sandbox().await;
    let h = Harness::new(&sandbox);
    let criteria = OffboardedCriteria { statuses: vec!["Offboarded".into()], ..OffboardedCriteria::default() };
    let report = sweep_offboarded_clients(&h.deps(), &criteria, false, "schedule:test").await;
    assert!(report.success, "{report:?}");
    let processed: Vec<&str> = report.operations.iter().filter_map(|o| o.client_id.as_deref()).collect();
    assert!(
        processed.contains(&DEMO_CLIENT) && processed.contains(&"410") && processed.contains(&"411"),
        "{processed:?}"
    );
    assert!(!processed.contains(&ACTIVE_CLIENT), "an Active company must not be swept");
    assert!(!processed.contains(&EMPTY_CLIENT));
    for id in active_config_ids(&sandbox, 100) {
        assert_eq!(sandbox.connectwise().patch_count(id), 0);
    }
    // A second sweep finds nothing left to do.
    let second = sweep_offboarded_clients(&h.deps(), &criteria, false, "schedule:test").await;
    assert_eq!(second.clients_processed, 0);
}

/// The blast-radius guard stops a run over its limit with the plan (figures shown, nothing
/// changed), and an explicit override lets the same run through.
#[tokio::test]
async fn the_blast_radius_guard_stops_large_runs_unless_overridden() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 30, ..SandboxConfig::default() }).await.unwrap();
    let h = Harness::new(&sandbox);
    let mut deps = h.deps();
    deps.options.max_configurations = 25;
    let stopped = deactivate_configs(&deps, large(LARGE_CLIENT)).await;
    assert_seed_shape(&serde_json::to_value(&stopped).unwrap());
    assert!(!stopped.success);
    assert_eq!(stopped.status.as_deref(), Some("blast_radius_exceeded"));
    assert_eq!(stopped.errors[0].code, ErrorCode::BlastRadiusExceeded);
    let guard = stopped.blast_radius.clone().expect("guard figures");
    assert_eq!((guard.configs_to_deactivate, guard.max_configurations, guard.exceeded), (30, 25, true));
    assert_eq!(patches(&sandbox), 0, "nothing changed");
    let recorded = h.audit.operation(stopped.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    // A refused real attempt is kept like every real run (not expired with dry runs), and
    // says it was refused; it never started, so nothing can resume or roll it back.
    assert!(!recorded.operation.dry_run, "recorded as a refused real attempt, not a dry run");
    assert_eq!(recorded.last_event().map(|e| e.kind), Some(offramp::domain::OperationEventKind::Refused));
    assert!(!recorded.events.iter().any(|e| e.kind == offramp::domain::OperationEventKind::Started));

    // Under the limit the figures are shown too.
    let small = deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(DEMO_CLIENT) }).await;
    assert!(small.blast_radius.as_ref().is_some_and(|g| !g.exceeded && g.configs_to_deactivate == 9));

    let overridden =
        deactivate_configs(&deps, DeactivateConfigsRequest { override_blast_radius: true, ..large(LARGE_CLIENT) })
            .await;
    assert!(overridden.success, "{:?}", overridden.errors);
    assert_eq!(overridden.statistics.configs_deactivated, 30);
    assert!(overridden.blast_radius.as_ref().is_some_and(|g| g.exceeded && g.overridden));
    assert_eq!(patches(&sandbox), 30);
}

/// A run is interrupted (the process dies) half-way through 10,000 configurations;
/// resuming it by operation id finishes the rest and touches nothing twice.
#[tokio::test]
async fn an_interrupted_run_resumes_without_double_changes() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 10_000, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(2));
    let h = Harness::new(&sandbox);
    let deps = h.deps();
    // 10,000 is above the blast-radius guard's default (5,000): this run is reviewed and overridden.
    let run =
        deactivate_configs(&deps, DeactivateConfigsRequest { override_blast_radius: true, ..large(LARGE_CLIENT) });
    // Drop the run once it is well under way: in-flight requests are abandoned like in a crash.
    let under_way = async {
        while sandbox.stats().patches() < 500 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        report = run => panic!("the run finished before it could be interrupted: {:?}", report.statistics),
        _ = under_way => {}
        _ = tokio::time::sleep(Duration::from_secs(120)) => panic!("the run made no progress"),
    }
    let operations = h.audit.list_operations(&Default::default()).await.unwrap();
    let operation_id = operations[0].operation.operation_id.clone();
    let done_before = sandbox.stats().patches();
    assert!(done_before > 0 && done_before < 10_000, "interrupted half-way: {done_before}");

    sandbox.set_latency(Duration::ZERO);
    // The dropped run never released its lease: a resume waits for it to expire, or
    // breaks it when the caller knows the run is dead.
    let resumed = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest {
            operation_id: Some(operation_id.clone()),
            break_lease: true,
            ..DeactivateConfigsRequest::default()
        },
    )
    .await;
    assert!(resumed.success, "{:?}", resumed.errors);
    assert_eq!(resumed.statistics.configs_deactivated, 10_000);
    let cw = sandbox.connectwise();
    let twice: Vec<i64> = cw
        .configurations_of(300)
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .filter(|id| cw.patch_count(*id) != 1)
        .collect();
    assert!(
        twice.is_empty(),
        "{} configurations were not patched exactly once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert_eq!(sandbox.stats().patches(), 10_000);

    // Resuming a completed operation changes nothing and says so.
    let again = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest { operation_id: Some(operation_id), ..DeactivateConfigsRequest::default() },
    )
    .await;
    assert!(again.success);
    assert_eq!(sandbox.stats().patches(), 10_000);
    assert!(again.warnings.iter().any(|w| w.contains("already completed")), "{:?}", again.warnings);
}

#[tokio::test]
async fn the_client_pages_through_large_lists() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 2_500, ..SandboxConfig::default() }).await.unwrap();
    let psa = client(&sandbox);
    let configs = psa.list_configurations(LARGE_CLIENT, false).await.unwrap();
    assert_eq!(configs.len(), 2_500);
    // Sorted first: `dedup` only drops neighbours, so a repeat pages apart would pass unsorted.
    let mut ids: Vec<&str> = configs.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2_500, "no duplicates across pages");
    // pageSize 1000: 3 pages of configurations, plus the status list.
    assert_eq!(sandbox.stats().count("GET", "/company/configurations"), 3);
}

/// Store `key = value` for `scope` (a client id or the global scope) as `offramp settings set` does.
async fn put_setting(store: &dyn SettingsStore, kind: PsaKind, scope: &str, key: &str, value: Option<&str>) {
    let record = SettingRecord {
        psa: kind.as_str().into(),
        scope: scope.into(),
        key: key.into(),
        value: value.map(str::to_string),
        set_by: "test@msp.example".into(),
        set_at: offramp::domain::now(),
    };
    store.put_setting(&record).await.unwrap();
}

/// The guard limit and source the operation recorded in its input.
async fn recorded_guard(audit: &dyn AuditStore, operation_id: Option<&str>) -> (serde_json::Value, bool) {
    let detail = audit.operation(operation_id.expect("operation id")).await.unwrap().expect("recorded");
    (detail.operation.input["blast_radius_guard"].clone(), detail.operation.dry_run)
}

/// The configuration guard reads `offramp_guard_max_configurations` per client, with the
/// global value as the default for every other client, on every PSA: over the limit the
/// run stops with its plan and changes nothing; a client's own value beats the global one
/// both ways (wider and stricter); the override lets the run through; every operation
/// records the limit it used and where that came from, and the plan shows the figures.
#[tokio::test]
async fn the_configuration_guard_is_per_client_with_a_global_default_on_every_psa() {
    use offramp_tests::psa::{ALL, PARITY_CLIENT, PsaHarness};
    const KEY: &str = org_settings::GUARD_MAX_CONFIGURATIONS;
    for kind in ALL {
        let sandbox = small_sandbox().await;
        let h = PsaHarness::new(&sandbox, kind);
        let mut deps = h.deps();
        deps.options.guard_settings = Some(h.audit.clone());
        let store: &dyn SettingsStore = h.audit.as_ref();
        let guard = |report: &offramp::workflows::deactivate_configs::ConfigDeactivationReport| {
            let g = report.blast_radius.clone().unwrap_or_else(|| panic!("{kind}: no guard figures: {report:?}"));
            (g.configs_to_deactivate, g.max_configurations, g.limit_source, g.exceeded, g.overridden)
        };

        // Nothing set: the default, shown in the plan and recorded.
        let plan = deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(DEMO_CLIENT) }).await;
        assert!(plan.success, "{kind}: {plan:?}");
        assert_eq!(guard(&plan), (9, 5000, "default".into(), false, false), "{kind}");
        let (recorded, _) = recorded_guard(h.audit.as_ref(), plan.operation_id.as_deref()).await;
        assert_eq!(recorded, json!({"max_configurations": 5000, "source": "default"}), "{kind}");

        // A global limit below the client's 9 active configurations stops a real run with the plan.
        put_setting(store, kind, GLOBAL_SCOPE, KEY, Some("5")).await;
        let stopped = deactivate_configs(&deps, request(DEMO_CLIENT)).await;
        assert_seed_shape(&serde_json::to_value(&stopped).unwrap());
        assert!(!stopped.success, "{kind}");
        assert_eq!(stopped.status.as_deref(), Some("blast_radius_exceeded"), "{kind}");
        assert_eq!(stopped.errors[0].code, ErrorCode::BlastRadiusExceeded, "{kind}");
        assert!(stopped.errors[0].message.contains("the global offramp_guard_max_configurations"), "{kind}");
        assert_eq!(guard(&stopped), (9, 5, "global".into(), true, false), "{kind}");
        assert_eq!(stopped.statistics.configs_deactivated, 9, "{kind}: the plan is in the report");
        assert_eq!(patches(&sandbox), 0, "{kind}: nothing patched");
        let (recorded, dry_run) = recorded_guard(h.audit.as_ref(), stopped.operation_id.as_deref()).await;
        assert_eq!(recorded, json!({"max_configurations": 5, "source": "global"}), "{kind}");
        assert!(!dry_run, "{kind}: a stopped run is recorded as a refused attempt, kept like a real run");
        let detail = h.audit.operation(stopped.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert_eq!(detail.events.last().unwrap().detail["blast_radius"]["exceeded"], json!(true), "{kind}");

        // A dry run over the limit is still a plan: the figures say it would be stopped.
        let plan = deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(DEMO_CLIENT) }).await;
        assert!(plan.success, "{kind}");
        assert_eq!(guard(&plan), (9, 5, "global".into(), true, false), "{kind}");
        let detail = h.audit.operation(plan.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert_eq!(detail.events.last().unwrap().detail["blast_radius"]["max_configurations"], json!(5), "{kind}");

        // A wider value of this client beats the global one; another client keeps the global.
        put_setting(store, kind, DEMO_CLIENT, KEY, Some("50")).await;
        let plan = deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(DEMO_CLIENT) }).await;
        assert_eq!(guard(&plan), (9, 50, "client".into(), false, false), "{kind}");
        let other =
            deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(PARITY_CLIENT) }).await;
        assert_eq!(guard(&other), (3, 5, "global".into(), false, false), "{kind}");

        // A stricter value of this client beats the global one too.
        put_setting(store, kind, DEMO_CLIENT, KEY, Some("8")).await;
        let stopped = deactivate_configs(&deps, request(DEMO_CLIENT)).await;
        assert_eq!(stopped.status.as_deref(), Some("blast_radius_exceeded"), "{kind}");
        assert_eq!(guard(&stopped), (9, 8, "client".into(), true, false), "{kind}");
        assert!(stopped.errors[0].message.contains("this client's offramp_guard_max_configurations"), "{kind}");
        assert_eq!(patches(&sandbox), 0, "{kind}");

        // The override lets exactly that run through, and the operation records the limit it passed.
        let applied =
            deactivate_configs(&deps, DeactivateConfigsRequest { override_blast_radius: true, ..request(DEMO_CLIENT) })
                .await;
        assert!(applied.success, "{kind}: {:?}", applied.errors);
        assert_eq!(applied.statistics.configs_deactivated, 9, "{kind}");
        assert_eq!(guard(&applied), (9, 8, "client".into(), true, true), "{kind}");
        assert_eq!(patches(&sandbox), 9, "{kind}");
        assert!(
            sim(&sandbox, kind).configuration_ids_of(250).iter().all(|id| sim(&sandbox, kind).update_count(*id) <= 1)
        );
        let (recorded, dry_run) = recorded_guard(h.audit.as_ref(), applied.operation_id.as_deref()).await;
        assert_eq!(recorded, json!({"max_configurations": 8, "source": "client"}), "{kind}");
        assert!(!dry_run, "{kind}");
        let detail = h.audit.operation(applied.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert_eq!(detail.operation.input["override_blast_radius"], json!(true), "{kind}");
        let started = detail.events.iter().find(|e| e.kind == OperationEventKind::Started).expect("started");
        assert_eq!(started.detail["blast_radius"]["overridden"], json!(true), "{kind}");

        // Unsetting the client's value puts the global one back for it.
        put_setting(store, kind, DEMO_CLIENT, KEY, None).await;
        let plan =
            deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(PARITY_CLIENT) }).await;
        assert_eq!(guard(&plan).2, "global", "{kind}");
        let plan = deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(DEMO_CLIENT) }).await;
        assert_eq!(guard(&plan), (0, 5, "global".into(), false, false), "{kind}: nothing left to deactivate");

        // A contact setting that no longer validates does not concern this workflow...
        put_setting(store, kind, GLOBAL_SCOPE, org_settings::NOTIFICATION_RECIPIENTS, Some("not an address")).await;
        let plan =
            deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..request(PARITY_CLIENT) }).await;
        assert!(plan.success, "{kind}: {:?}", plan.errors);
        // ...but a guard value that no longer validates stops the run: no guessed limit.
        put_setting(store, kind, PARITY_CLIENT, KEY, Some("lots")).await;
        let refused = deactivate_configs(&deps, request(PARITY_CLIENT)).await;
        assert_eq!(refused.errors[0].code, ErrorCode::InvalidInput, "{kind}: {:?}", refused.errors);
        assert!(refused.errors[0].message.contains(KEY), "{kind}: {}", refused.errors[0].message);
        assert_eq!(patches(&sandbox), 9, "{kind}: nothing more patched");
    }
}

/// The Lambda entry point (direct invoke and the scheduled sweep) reads the client's guard
/// setting, not only the global one, on every PSA.
#[tokio::test]
async fn the_lambda_uses_the_clients_guard_setting_on_every_psa() {
    use offramp::entry::deactivate_configs_event;
    use offramp_tests::psa::{ALL, source};
    const KEY: &str = org_settings::GUARD_MAX_CONFIGURATIONS;
    for kind in ALL {
        let sandbox = small_sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        let services = offramp::app::build(&source(&sandbox, kind, &dir.path().join("audit.sqlite"))).await.unwrap();
        let store = services.org_settings.as_ref();
        put_setting(store, kind, GLOBAL_SCOPE, KEY, Some("100")).await;
        put_setting(store, kind, DEMO_CLIENT, KEY, Some("4")).await;

        let out = deactivate_configs_event(&services, json!({"client_id": 250}), "lambda:test").await;
        assert_eq!(out["status"], "blast_radius_exceeded", "{kind}: {out}");
        assert_eq!(out["blast_radius"]["max_configurations"], 4, "{kind}");
        assert_eq!(out["blast_radius"]["limit_source"], "client", "{kind}");
        assert_eq!(sandbox.stats().patches(), 0, "{kind}");
        let operation_id = out["operation_id"].as_str().unwrap();
        let (recorded, _) = recorded_guard(services.audit.as_ref(), Some(operation_id)).await;
        assert_eq!(recorded, json!({"max_configurations": 4, "source": "client"}), "{kind}");

        // The sweep runs each client with its own limit: this one is stopped, changing nothing.
        // (The configured criteria: ConnectWise's Offboarded status, the others' inactive flag.)
        let sweep: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../events/deactivate-configs/scheduled-sweep.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let out = deactivate_configs_event(&services, sweep, "lambda:test").await;
        let ours = out["operations"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: {out}"))
            .iter()
            .find(|o| o["client_id"] == DEMO_CLIENT)
            .unwrap_or_else(|| panic!("{kind}: client 250 not swept: {out}"))
            .clone();
        assert_eq!(ours["status"], "blast_radius_exceeded", "{kind}: {ours}");
        assert!(
            sim(&sandbox, kind).configuration_ids_of(250).iter().all(|id| sim(&sandbox, kind).update_count(*id) == 0)
        );
    }
}

// ---------------------------------------------------------------------------
// One run at a time per client (the lease) and idempotent requests.
// ---------------------------------------------------------------------------

fn large_request() -> DeactivateConfigsRequest {
    DeactivateConfigsRequest { override_blast_radius: true, ..large(LARGE_CLIENT) }
}

/// Every configuration of the large client was patched exactly once.
fn each_patched_once(sandbox: &Sandbox) -> bool {
    let cw = sandbox.connectwise();
    cw.configurations_of(300).iter().all(|c| cw.patch_count(c["id"].as_i64().unwrap()) == 1)
}

#[tokio::test]
async fn two_runs_on_one_client_race_and_exactly_one_changes_anything() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 200, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(10));
    let h = Harness::new(&sandbox);
    let (deps_a, deps_b) = (h.deps(), h.deps());
    let (a, b) =
        tokio::join!(deactivate_configs(&deps_a, large_request()), deactivate_configs(&deps_b, large_request()));
    let (winner, loser) = if a.success { (a, b) } else { (b, a) };
    assert!(winner.success, "{:?}", winner.errors);
    assert_eq!(winner.statistics.configs_deactivated, 200);
    assert_eq!(loser.errors[0].code, ErrorCode::OperationInProgress, "{:?}", loser.errors);
    let running = winner.operation_id.as_deref().unwrap();
    assert!(loser.errors[0].message.contains(running), "names the running operation: {}", loser.errors[0].message);
    assert_eq!(patches(&sandbox), 200, "the loser changed nothing");
    assert!(each_patched_once(&sandbox));
}

#[tokio::test]
async fn a_resume_or_a_rollback_of_a_running_operation_is_refused() {
    use offramp::workflows::rollback::{RollbackDeps, RollbackRequest, rollback};
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 300, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(20));
    let h = Harness::new(&sandbox);
    let deps = h.deps();
    let run = deactivate_configs(&deps, large_request());
    let meanwhile = async {
        while patches(&sandbox) < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let operation_id =
            h.audit.list_operations(&Default::default()).await.unwrap()[0].operation.operation_id.clone();
        let resume = DeactivateConfigsRequest { operation_id: Some(operation_id.clone()), ..Default::default() };
        let resumed = deactivate_configs(&h.deps(), resume).await;
        let rdeps = RollbackDeps::without_microsoft365(&h.psa, h.audit.as_ref(), offramp::workflows::restorers());
        let undo = rollback(&rdeps, RollbackRequest { operation_id, ..Default::default() }).await;
        (resumed, undo)
    };
    let (report, (resumed, undo)) = tokio::join!(run, meanwhile);
    assert!(report.success, "{:?}", report.errors);
    assert_eq!(resumed.errors[0].code, ErrorCode::OperationInProgress, "{:?}", resumed.errors);
    assert_eq!(undo.errors[0].code, ErrorCode::OperationInProgress, "{:?}", undo.errors);
    assert_eq!(undo.operation_id, None, "the refused rollback created no operation");
    assert_eq!(patches(&sandbox), 300, "nothing was changed twice or undone");
    assert!(each_patched_once(&sandbox));
}

#[tokio::test]
async fn a_killed_run_holds_its_lease_until_it_expires_or_is_broken() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 400, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(5));
    let h = Harness::new(&sandbox);
    let deps = h.deps();
    let run = deactivate_configs(&deps, large_request());
    tokio::select! {
        report = run => panic!("finished before it could be killed: {:?}", report.statistics),
        _ = async { while patches(&sandbox) < 50 { tokio::time::sleep(Duration::from_millis(5)).await } } => {}
    }
    let operation_id = h.audit.list_operations(&Default::default()).await.unwrap()[0].operation.operation_id.clone();
    let resume = DeactivateConfigsRequest { operation_id: Some(operation_id.clone()), ..Default::default() };
    let refused = deactivate_configs(&h.deps(), resume.clone()).await;
    assert_eq!(refused.errors[0].code, ErrorCode::OperationInProgress, "the dead run's lease has not expired");
    let before = patches(&sandbox);
    assert!(before < 400);

    let broken = deactivate_configs(&h.deps(), DeactivateConfigsRequest { break_lease: true, ..resume }).await;
    assert!(broken.success, "{:?}", broken.errors);
    assert!(each_patched_once(&sandbox), "the resume finished the rest, nothing twice");
    let detail = h.audit.operation(&operation_id).await.unwrap().unwrap();
    let resumed = detail.events.iter().find(|e| e.kind == OperationEventKind::Resumed).expect("resumed event");
    assert_eq!(resumed.detail["lease_broken"], json!(true), "breaking the lease is recorded");
}

#[tokio::test]
async fn an_expired_lease_lets_the_next_run_in_without_breaking_it() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 100, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(5));
    let h = Harness::new(&sandbox);
    let mut deps = h.deps();
    deps.options.lease =
        offramp::operation::LeaseOptions { ttl: Duration::from_millis(300), renew_every: Duration::from_millis(100) };
    tokio::select! {
        report = deactivate_configs(&deps, large_request()) => panic!("not killed: {:?}", report.statistics),
        _ = async { while patches(&sandbox) < 10 { tokio::time::sleep(Duration::from_millis(2)).await } } => {}
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let operation_id = h.audit.list_operations(&Default::default()).await.unwrap()[0].operation.operation_id.clone();
    let resumed =
        deactivate_configs(&deps, DeactivateConfigsRequest { operation_id: Some(operation_id), ..Default::default() })
            .await;
    assert!(resumed.success, "{:?}", resumed.errors);
    assert!(each_patched_once(&sandbox));
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_report_and_runs_nothing_again() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 100, ..SandboxConfig::default() }).await.unwrap();
    let h = Harness::new(&sandbox);
    let keyed = DeactivateConfigsRequest { idempotency_key: Some("ticket-4711".into()), ..large_request() };
    let first = deactivate_configs(&h.deps(), keyed.clone()).await;
    assert!(first.success, "{:?}", first.errors);
    assert_eq!(patches(&sandbox), 100);

    let again = deactivate_configs(&h.deps(), keyed.clone()).await;
    assert_eq!(again, first, "the first run's report, as it was");
    assert_eq!(patches(&sandbox), 100, "nothing ran again");
    assert_eq!(h.audit.list_operations(&Default::default()).await.unwrap().len(), 1, "no second operation");

    let other = deactivate_configs(&h.deps(), DeactivateConfigsRequest { dry_run: true, ..keyed }).await;
    assert_eq!(other.errors[0].code, ErrorCode::InvalidInput, "same key, other payload: {:?}", other.errors);
    assert!(other.errors[0].message.contains("ticket-4711"));
}

#[tokio::test]
async fn a_repeated_request_while_the_first_still_runs_is_in_progress() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 200, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(10));
    let h = Harness::new(&sandbox);
    let keyed = DeactivateConfigsRequest { idempotency_key: Some("webhook-1".into()), ..large_request() };
    let (deps_a, deps_b) = (h.deps(), h.deps());
    let second = async {
        while patches(&sandbox) < 5 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        deactivate_configs(&deps_b, keyed.clone()).await
    };
    let (first, second) = tokio::join!(deactivate_configs(&deps_a, keyed.clone()), second);
    assert!(first.success, "{:?}", first.errors);
    assert_eq!(second.errors[0].code, ErrorCode::OperationInProgress, "{:?}", second.errors);
    assert_eq!(patches(&sandbox), 200);
    // Once finished, the retry gets the first answer.
    assert_eq!(deactivate_configs(&h.deps(), keyed).await, first);
}
