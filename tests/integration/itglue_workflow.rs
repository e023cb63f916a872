//! Workflow 002 (docs/workflows.md#002-it-glue-organization-deletion) through the real IT Glue
//! client and the sandbox: lookup, dependency check, confirmation, dry run, blocked and forced
//! deletion, the export, asynchronous deletion, the PSA policy, the scheduled cleanup, connection
//! and permission failures; and every sample in `events/delete-itglue-org/` through the Lambda
//! handler.

use std::path::PathBuf;
use std::time::Duration;

use offramp::adapters::archive_local::LocalDirArchive;
use offramp::adapters::itglue::{ItGlueClient, ItGlueSettings, default_http_settings};
use offramp::domain::{ItGluePsaPolicy, OffboardedCriteria, OperationEventKind};
use offramp::error::ErrorCode;
use offramp::ports::{AuditStore, DocPlatform};
use offramp::workflows::delete_itglue_org::{
    DeleteOrgDeps, DeleteOrgOptions, DeleteOrgReport, DeleteOrgRequest, cleanup_offboarded_organizations,
    delete_itglue_org,
};
use offramp_sandbox::{ITGLUE_API_KEY, Sandbox, SandboxConfig};
use offramp_tests::psa::PsaHarness;
use serde_json::Value;

const CONTOSO: &str = "9001";
const ADATUM: &str = "9002";
const FABRIKAM: &str = "9005";

async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_itglue_deletion_delay(Duration::from_millis(300));
    sandbox
}

fn itglue(sandbox: &Sandbox, key: &str) -> ItGlueClient {
    let mut http = default_http_settings();
    http.max_retries = 3;
    http.base_backoff = Duration::from_millis(20);
    http.max_backoff = Duration::from_millis(200);
    ItGlueClient::new(ItGlueSettings { url: sandbox.itglue_url(), api_key: key.into() }, http).unwrap()
}

/// The PSA policy is off here (as the default was before it had three values); the policy's
/// own tests say otherwise.
fn options() -> DeleteOrgOptions {
    DeleteOrgOptions {
        psa_policy: ItGluePsaPolicy::Off,
        export_wait: Duration::from_secs(10),
        deletion_wait: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        ..DeleteOrgOptions::default()
    }
}

/// A local export archive in a directory of its own that outlives the test's borrows.
fn archive() -> &'static LocalDirArchive {
    Box::leak(Box::new(LocalDirArchive::new(tempfile::tempdir().unwrap().keep())))
}

fn deps<'a>(docs: &'a dyn DocPlatform, h: &'a PsaHarness, options: DeleteOrgOptions) -> DeleteOrgDeps<'a> {
    DeleteOrgDeps {
        docs,
        audit: h.audit.as_ref(),
        psa: Some(h.psa.as_ref()),
        settings: None,
        archive: Some(archive()),
        options,
    }
}

fn by_id(id: &str) -> DeleteOrgRequest {
    DeleteOrgRequest {
        org_id: Some(id.into()),
        confirm_delete: true,
        reason: Some("client offboarded".into()),
        initiated_by: Some("admin@msp.example".into()),
        ..DeleteOrgRequest::default()
    }
}

/// The seed's fields, exactly, plus Offramp's documented additions.
fn assert_seed_shape(report: &DeleteOrgReport) {
    let value = serde_json::to_value(report).unwrap();
    let seed = ["success", "org_id", "org_name", "deleted", "timestamp", "dependency_check", "warnings", "errors"];
    let extras = ["operation_id", "dry_run", "plan_hash", "status", "export", "archive"];
    for key in value.as_object().unwrap().keys() {
        assert!(seed.contains(&key.as_str()) || extras.contains(&key.as_str()), "unexpected field {key}");
    }
    for key in ["success", "org_id", "org_name", "deleted", "timestamp", "warnings", "errors"] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    if let Some(check) = value.get("dependency_check") {
        for key in ["assets_found", "configs_found", "documents_found", "blocked"] {
            assert!(check.get(key).is_some(), "dependency_check lacks {key}");
        }
    }
    for error in report.errors.iter() {
        assert!(chrono::DateTime::parse_from_rfc3339(&error.timestamp).is_ok());
    }
}

#[tokio::test]
async fn lookup_dry_run_confirmation_blocked_and_forced_deletion() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let deps = deps(&client, &h, options());

    // By name, ignoring case; a dry run counts and deletes nothing.
    let dry = delete_itglue_org(
        &deps,
        DeleteOrgRequest { org_name: Some("contoso DENTAL".into()), dry_run: true, ..DeleteOrgRequest::default() },
    )
    .await;
    assert_seed_shape(&dry);
    assert!(dry.success && !dry.deleted, "{:?}", dry.errors);
    assert_eq!(dry.org_id.as_deref(), Some(CONTOSO));
    let check = dry.dependency_check.clone().unwrap();
    assert!(check.configs_found > 0 && check.documents_found > 0 && check.assets_found > 0, "{check:?}");
    assert!(check.blocked);
    assert_eq!(sandbox.itglue().deletions_requested(), 0);

    // Ambiguous and unknown names, malformed ids.
    let ambiguous =
        delete_itglue_org(&deps, DeleteOrgRequest { org_name: Some("Litware Inc".into()), ..by_id("1") }).await;
    assert_eq!(ambiguous.errors[0].code, ErrorCode::InvalidIdentifier, "{:?}", ambiguous.errors);
    let both =
        delete_itglue_org(&deps, DeleteOrgRequest { org_name: Some("Litware Inc".into()), ..by_id("9003") }).await;
    assert_eq!(both.errors[0].code, ErrorCode::InvalidIdentifier, "org_id and org_name together");
    let ambiguous = delete_itglue_org(
        &deps,
        DeleteOrgRequest { org_name: Some("Litware Inc".into()), ..DeleteOrgRequest::default() },
    )
    .await;
    assert!(ambiguous.errors[0].message.contains("9003") && ambiguous.errors[0].message.contains("9004"));
    let unknown = delete_itglue_org(&deps, by_id("424242")).await;
    assert_eq!(unknown.errors[0].code, ErrorCode::OrganizationNotFound);
    let malformed = delete_itglue_org(&deps, by_id("12 or 1=1")).await;
    assert_eq!(malformed.errors[0].code, ErrorCode::InvalidIdentifier);

    // Dependents block; confirmation is required.
    let blocked = delete_itglue_org(&deps, by_id(CONTOSO)).await;
    assert_seed_shape(&blocked);
    assert_eq!(blocked.errors[0].code, ErrorCode::DeletionBlocked);
    assert!(blocked.dependency_check.as_ref().unwrap().blocked && !blocked.deleted);
    let unconfirmed = delete_itglue_org(&deps, DeleteOrgRequest { confirm_delete: false, ..by_id(ADATUM) }).await;
    assert_eq!(unconfirmed.errors[0].code, ErrorCode::ConfirmationRequired);
    assert_eq!(sandbox.itglue().deletions_requested(), 0, "nothing deleted so far");
    assert_eq!(sandbox.itglue().export_requests(), 0, "no export for a refused run");
    // Refused real attempts are kept as refused real runs, never as (expiring) dry runs.
    for (refused, status) in [(&blocked, "blocked"), (&unconfirmed, "confirmation_required")] {
        assert_eq!(refused.status.as_deref(), Some(status));
        let op = h.audit.operation(refused.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert!(!op.operation.dry_run, "a refused {status} attempt is not a dry run");
        let refusal = op.events.iter().find(|e| e.kind == OperationEventKind::Refused).expect("a refused event");
        assert_eq!(refusal.detail["status"], status, "{:?}", refusal.detail);
        assert!(op.snapshots.is_empty() && op.changes.is_empty(), "nothing was about to change");
    }
    let planned = h.audit.operation(dry.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert!(planned.operation.dry_run && planned.events.iter().all(|e| e.kind == OperationEventKind::Planned));
    assert_eq!(dry.status.as_deref(), Some("planned"));

    // An organization without dependents: export first, then the deletion, awaited.
    let deleted = delete_itglue_org(&deps, by_id(ADATUM)).await;
    assert_seed_shape(&deleted);
    assert!(deleted.success && deleted.deleted, "{:?} {:?}", deleted.errors, deleted.warnings);
    assert_eq!(deleted.status.as_deref(), Some("deleted"));
    let export = deleted.export.clone().expect("export recorded");
    assert!(export.is_done() && export.download_url.is_none(), "the report holds no link: {export:?}");
    let archived = deleted.archive.clone().expect("the export was archived");
    assert_eq!(archived.size, sandbox.itglue().export_content(export.id.parse().unwrap()).len() as u64);
    assert!(!sandbox.itglue().organization_exists(9002));
    let op = h.audit.operation(deleted.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert!(op.changes.iter().any(|c| c.item_type == "itglue_export" && c.item_id == export.id), "export in the trail");
    assert!(op.changes.iter().any(|c| c.item_type == "itglue_organization"));

    // force_delete deletes an organization with dependents.
    let forced = delete_itglue_org(&deps, DeleteOrgRequest { force_delete: true, ..by_id(CONTOSO) }).await;
    assert!(forced.success && forced.deleted, "{:?}", forced.errors);
    assert!(!forced.dependency_check.as_ref().unwrap().blocked);
    assert!(forced.warnings.iter().any(|w| w.contains("force_delete")));
    assert_eq!(sandbox.itglue().deletions_requested(), 2);
}

#[tokio::test]
async fn export_failure_pending_deletion_and_policy() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);

    // No export, no deletion (unless explicitly forced).
    sandbox.itglue().fail_exports(true);
    let d = deps(&client, &h, options());
    let stopped = delete_itglue_org(&d, by_id(ADATUM)).await;
    assert_eq!(stopped.errors[0].code, ErrorCode::DeletionBlocked, "{:?}", stopped.errors);
    assert!(stopped.errors[0].message.contains("export"));
    assert!(sandbox.itglue().organization_exists(9002) && sandbox.itglue().deletions_requested() == 0);
    let forced = delete_itglue_org(&d, DeleteOrgRequest { force_without_export: true, ..by_id(ADATUM) }).await;
    assert!(forced.success, "{:?}", forced.errors);
    assert!(forced.warnings.iter().any(|w| w.contains("cannot be undone")));
    sandbox.itglue().fail_exports(false);

    // Deletion slower than the wait: reported as pending, not as a failure.
    sandbox.set_itglue_deletion_delay(Duration::from_secs(30));
    let short = DeleteOrgOptions { deletion_wait: Duration::from_millis(300), ..options() };
    let d = deps(&client, &h, short);
    let pending = delete_itglue_org(&d, DeleteOrgRequest { force_delete: true, ..by_id(FABRIKAM) }).await;
    assert!(pending.success && !pending.deleted, "{:?}", pending.errors);
    assert_eq!(pending.status.as_deref(), Some("pending_deletion"));
    assert!(pending.warnings.iter().any(|w| w.contains("asynchronous")));

    // Policy: the PSA company must be offboarded (Contoso Dental, 250, is; Fabrikam, 100, is not).
    sandbox.set_itglue_deletion_delay(Duration::from_millis(100));
    let policy = DeleteOrgOptions {
        psa_policy: ItGluePsaPolicy::RequireOffboardedPsaCompany,
        offboarded: OffboardedCriteria { statuses: vec!["Offboarded".into()], ..Default::default() },
        ..options()
    };
    let d = deps(&client, &h, policy);
    let refused = delete_itglue_org(&d, DeleteOrgRequest { dry_run: true, ..by_id("9005") }).await;
    assert_eq!(refused.errors.first().map(|e| e.code), Some(ErrorCode::DeletionBlocked), "{refused:?}");
    assert!(refused.errors[0].message.contains("not offboarded"));
    let allowed = delete_itglue_org(&d, DeleteOrgRequest { dry_run: true, force_delete: true, ..by_id(CONTOSO) }).await;
    assert!(allowed.success, "{:?}", allowed.errors);
}

#[tokio::test]
async fn connection_and_permission_failures_are_typed() {
    let sandbox = sandbox().await;
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let wrong_key = "ITG.not-the-sandbox-key-000000000000";
    let bad = itglue(&sandbox, wrong_key);
    let report = delete_itglue_org(&deps(&bad, &h, options()), by_id(ADATUM)).await;
    assert_eq!(report.errors[0].code, ErrorCode::PermissionDenied);
    assert!(!serde_json::to_string(&report).unwrap().contains(wrong_key), "the key never appears");

    let client = itglue(&sandbox, ITGLUE_API_KEY);
    // IT Glue refusing the lookup itself (a 4xx) is no connection problem: a retry would
    // not help. 401/403 is a permission problem, 400/422 a request IT Glue refused.
    for (status, code) in [
        (400, ErrorCode::ItGlueRequestRejected),
        (422, ErrorCode::ItGlueRequestRejected),
        (403, ErrorCode::PermissionDenied),
        (401, ErrorCode::PermissionDenied),
    ] {
        sandbox.fail_next(1, status);
        let report = delete_itglue_org(&deps(&client, &h, options()), by_id(ADATUM)).await;
        assert_eq!(report.errors[0].code, code, "HTTP {status}: {:?}", report.errors);
        assert!(report.operation_id.is_none(), "nothing recorded before the organization is known");
    }
    sandbox.fail_next(20, 503);
    let report = delete_itglue_org(&deps(&client, &h, options()), by_id(ADATUM)).await;
    assert_eq!(report.errors[0].code, ErrorCode::ItGlueConnectionError, "{:?}", report.errors);
    sandbox.fail_next(0, 503);
    assert!(sandbox.itglue().organization_exists(9002), "nothing deleted");
    let mut fast = default_http_settings();
    fast.max_retries = 2;
    fast.base_backoff = Duration::from_millis(20);
    let nowhere =
        ItGlueClient::new(ItGlueSettings { url: "http://127.0.0.1:9".into(), api_key: ITGLUE_API_KEY.into() }, fast)
            .unwrap();
    let report = delete_itglue_org(&deps(&nowhere, &h, options()), by_id(ADATUM)).await;
    assert_eq!(report.errors[0].code, ErrorCode::ItGlueConnectionError);
}

/// IT Glue answering a read with a 4xx is reachable and said no: the run reports
/// `ITGlueRequestRejected`, never a connection error, and deletes nothing.
#[tokio::test]
async fn a_read_rejected_by_itglue_is_not_a_connection_error() {
    let sandbox = sandbox().await;
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let by_name = DeleteOrgRequest { org_id: None, org_name: Some("Adatum Travel".into()), ..by_id(ADATUM) };
    for (request, route) in [(by_id(ADATUM), "/organizations/9002"), (by_name, "/organizations")] {
        sandbox.fail_route("GET", route, 422);
        let report = delete_itglue_org(&deps(&client, &h, options()), request).await;
        sandbox.clear_route_faults();
        assert_eq!(report.errors[0].code, ErrorCode::ItGlueRequestRejected, "{route}: {:?}", report.errors);
        assert_eq!(report.errors[0].code.http_status(), 502);
    }
    assert!(sandbox.itglue().organization_exists(9002), "nothing deleted");
    assert_eq!(sandbox.itglue().deletions_requested(), 0);
}

/// The monthly cleanup: offboarded PSA companies (by contract end here: no Offramp run
/// yet) whose IT Glue organization is linked to them; never forced.
#[tokio::test]
async fn the_scheduled_cleanup_deletes_linked_organizations_of_long_offboarded_clients() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let criteria = OffboardedCriteria { statuses: vec!["Offboarded".into()], ..Default::default() };
    let d = deps(&client, &h, DeleteOrgOptions { offboarded: criteria, ..options() });

    let too_recent = cleanup_offboarded_organizations(&d, 60, false, "schedule:test").await;
    assert!(too_recent.organizations.is_empty(), "{too_recent:?}");
    assert!(
        too_recent.skipped.iter().any(|s| s.company_id == "260" && s.reason.contains("30 day")),
        "{:?}",
        too_recent.skipped
    );

    let report = cleanup_offboarded_organizations(&d, 7, false, "schedule:test").await;
    let by_org = |id: &str| report.organizations.iter().find(|o| o.org_id.as_deref() == Some(id)).cloned();
    let adatum = by_org(ADATUM).expect("Adatum Travel processed");
    assert!(adatum.deleted, "{adatum:?}");
    let contoso = by_org(CONTOSO).expect("Contoso Dental processed");
    assert_eq!(contoso.errors[0].code, ErrorCode::DeletionBlocked, "never forced");
    assert!(sandbox.itglue().organization_exists(9001));
    assert!(by_org(FABRIKAM).is_none(), "Fabrikam Legal is not offboarded");
    assert!(report.success, "{:?}", report.errors);
    assert!(
        report.skipped.iter().any(|s| s.company_id == "411" && s.reason.contains("unknown")),
        "411 has a current contract and no Offramp run: its offboarding date is unknown: {:?}",
        report.skipped
    );
    assert!(sandbox.itglue().organization_exists(9004));

    // A completed Offramp deactivation dates the offboarding: today, for LITWARE INC (411).
    use offramp::workflows::deactivate_configs::{DeactivateConfigsRequest, deactivate_configs};
    let run = deactivate_configs(
        &h.deps(),
        DeactivateConfigsRequest {
            client_id: Some("411".into()),
            initiated_by: Some("admin@msp.example".into()),
            ..DeactivateConfigsRequest::default()
        },
    )
    .await;
    assert!(run.success, "{run:?}");
    let not_yet = cleanup_offboarded_organizations(&d, 1, false, "schedule:test").await;
    assert!(
        not_yet.skipped.iter().any(|s| s.company_id == "411" && s.reason.contains("0 day")),
        "{:?}",
        not_yet.skipped
    );
    let today = cleanup_offboarded_organizations(&d, 0, false, "schedule:test").await;
    let litware = today.organizations.iter().find(|o| o.org_id.as_deref() == Some("9004")).expect("9004 processed");
    assert!(litware.deleted, "{litware:?}");
    assert!(!sandbox.itglue().organization_exists(9004));
    assert!(sandbox.itglue().organization_exists(9003), "Litware Inc (410) keeps its configuration: blocked");
}

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/delete-itglue-org").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn every_sample_event_goes_through_the_handler() {
    use offramp::entry::delete_itglue_org_event;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/delete-itglue-org");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "api-gateway.json",
            "blocked.json",
            "direct-invoke.json",
            "dry-run.json",
            "invalid-identifier.json",
            "missing-confirmation.json",
            "scheduled-cleanup-spoofed.json",
            "scheduled-cleanup.json"
        ]
    );
    let sandbox = sandbox().await;
    let db = tempfile::tempdir().unwrap();
    let mut source = offramp_tests::connectwise::source(&sandbox, &db.path().join("audit.sqlite"));
    source.set("ITGLUE_URL", sandbox.itglue_url());
    source.set("ITGLUE_API_KEY", ITGLUE_API_KEY);
    source.set("OFFRAMP_ITGLUE_POLL_SECONDS", "1");
    source.set("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded");
    // The monthly cleanup's parameters are settings, never the event's.
    source.set("OFFRAMP_ITGLUE_CLEANUP_DRY_RUN", "true");
    source.set("OFFRAMP_ITGLUE_OFFBOARDED_DAYS", "0");
    let services = offramp::app::build(&source).await.expect("services");
    let run = |name: &str| delete_itglue_org_event(&services, event(name), "lambda:test");

    let invalid = run("invalid-identifier.json").await;
    assert_eq!(invalid["errors"][0]["code"], "InvalidIdentifier", "{invalid}");
    // A typo cannot turn a preview into a deletion: unknown fields are refused.
    let typo = delete_itglue_org_event(
        &services,
        serde_json::json!({"org_id": "9002", "confirm_delete": true, "dryrun": true}),
        "t",
    )
    .await;
    assert_eq!(typo["errors"][0]["code"], "InvalidInput", "{typo}");
    let unconfirmed = run("missing-confirmation.json").await;
    assert_eq!(unconfirmed["errors"][0]["code"], "ConfirmationRequired", "{unconfirmed}");
    let blocked = run("blocked.json").await;
    assert_eq!(blocked["errors"][0]["code"], "DeletionBlocked", "{blocked}");
    let dry = run("dry-run.json").await;
    assert_eq!((dry["success"].as_bool(), dry["deleted"].as_bool()), (Some(true), Some(false)), "{dry}");
    let api = run("api-gateway.json").await;
    assert_eq!(api["statusCode"], 200, "{api}");
    let spoofed = run("scheduled-cleanup-spoofed.json").await;
    assert_eq!(spoofed["errors"][0]["code"], "InvalidInput", "a schedule cannot set its own days: {spoofed}");
    let scheduled = run("scheduled-cleanup.json").await;
    assert!(scheduled["organizations"].as_array().is_some_and(|o| !o.is_empty()), "{scheduled}");
    assert_eq!(scheduled["dry_run"], true);
    assert_eq!(sandbox.itglue().deletions_requested(), 0, "plans and refusals delete nothing");
    let done = run("direct-invoke.json").await;
    assert_eq!(done["deleted"], true, "{done}");
    assert_eq!(done["org_id"], ADATUM);
}

/// IT Glue refusing the deletion itself is a block (nothing deleted, the export kept in the
/// report and the trail); a link to another PSA never satisfies the offboarded policy.
#[tokio::test]
async fn a_refused_deletion_and_a_link_to_another_psa_are_blocked() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    sandbox.itglue().fail_deletion(9002, "Organization is locked by a running PSA sync");
    let refused = delete_itglue_org(&deps(&client, &h, options()), by_id(ADATUM)).await;
    assert_eq!(refused.errors[0].code, ErrorCode::DeletionBlocked, "{:?}", refused.errors);
    assert!(refused.errors[0].message.contains("locked"), "{:?}", refused.errors);
    assert!(!refused.success && !refused.deleted);
    assert!(refused.export.as_ref().is_some_and(|e| e.is_done()), "the export made first is reported");
    assert!(sandbox.itglue().organization_exists(9002) && sandbox.itglue().deletions_requested() == 0);
    let op = h.audit.operation(refused.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert!(op.changes.iter().any(|c| c.item_type == "itglue_export"), "the export is in the trail");
    assert!(!op.changes.iter().any(|c| c.item_type == "itglue_organization"), "no deletion recorded");
    assert_eq!(op.events.last().map(|e| e.kind), Some(offramp::domain::OperationEventKind::Failed));

    // IT Glue says Contoso Dental is synced with ConnectWise Manage ("manage"): against an
    // Autotask PSA, its psa-id 250 names some other company, and the policy refuses.
    let autotask = PsaHarness::new(&sandbox, offramp::domain::PsaKind::Autotask);
    let policy = DeleteOrgOptions {
        psa_policy: ItGluePsaPolicy::RequireOffboardedPsaCompany,
        offboarded: OffboardedCriteria { inactive: true, ..Default::default() },
        ..options()
    };
    let report =
        delete_itglue_org(&deps(&client, &autotask, policy), DeleteOrgRequest { dry_run: true, ..by_id(CONTOSO) })
            .await;
    assert_eq!(report.errors.first().map(|e| e.code), Some(ErrorCode::DeletionBlocked), "{report:?}");
    assert!(report.errors[0].message.contains("manage"), "{:?}", report.errors);
}

/// The audit trail as the workflow sees it, with the organization's deletion record and
/// the completion refused: the write that comes right after the irreversible step.
struct TrailFailingAfterDeletion(std::sync::Arc<offramp::adapters::audit_sqlite::SqliteAuditStore>);

#[offramp::ports::async_trait]
impl AuditStore for TrailFailingAfterDeletion {
    async fn create_operation(&self, op: &offramp::domain::OperationRecord) -> Result<(), offramp::error::AuditError> {
        self.0.create_operation(op).await
    }
    async fn append_event(&self, event: &offramp::domain::OperationEvent) -> Result<(), offramp::error::AuditError> {
        if event.kind == offramp::domain::OperationEventKind::Completed {
            return Err(offramp::error::AuditError::Unavailable { message: "audit table throttled (test)".into() });
        }
        self.0.append_event(event).await
    }
    async fn put_snapshots(&self, s: &[offramp::domain::ItemSnapshot]) -> Result<(), offramp::error::AuditError> {
        self.0.put_snapshots(s).await
    }
    async fn put_changes(&self, changes: &[offramp::domain::ItemChange]) -> Result<(), offramp::error::AuditError> {
        if changes.iter().any(|c| c.item_type == "itglue_organization") {
            return Err(offramp::error::AuditError::Unavailable { message: "audit table throttled (test)".into() });
        }
        self.0.put_changes(changes).await
    }
    async fn operation(
        &self,
        id: &str,
    ) -> Result<Option<offramp::domain::OperationDetail>, offramp::error::AuditError> {
        self.0.operation(id).await
    }
    async fn list_operations(
        &self,
        filter: &offramp::domain::OperationFilter,
    ) -> Result<Vec<offramp::domain::OperationSummary>, offramp::error::AuditError> {
        self.0.list_operations(filter).await
    }
    async fn child_operations(
        &self,
        parent: &str,
    ) -> Result<Vec<offramp::domain::OperationRecord>, offramp::error::AuditError> {
        self.0.child_operations(parent).await
    }
    async fn acquire_lease(
        &self,
        request: &offramp::domain::LeaseRequest,
    ) -> Result<offramp::domain::Lease, offramp::error::AuditError> {
        self.0.acquire_lease(request).await
    }
    async fn renew_lease(
        &self,
        lease: &offramp::domain::Lease,
        ttl: chrono::Duration,
    ) -> Result<offramp::domain::Lease, offramp::error::AuditError> {
        self.0.renew_lease(lease, ttl).await
    }
    async fn release_lease(&self, lease: &offramp::domain::Lease) -> Result<(), offramp::error::AuditError> {
        self.0.release_lease(lease).await
    }
    async fn current_lease(&self, target: &str) -> Result<Option<offramp::domain::Lease>, offramp::error::AuditError> {
        self.0.current_lease(target).await
    }
    async fn claim_idempotency_key(
        &self,
        record: &offramp::domain::IdempotencyRecord,
    ) -> Result<offramp::domain::IdempotencyClaim, offramp::error::AuditError> {
        self.0.claim_idempotency_key(record).await
    }
    async fn complete_idempotency_key(
        &self,
        record: &offramp::domain::IdempotencyRecord,
    ) -> Result<(), offramp::error::AuditError> {
        self.0.complete_idempotency_key(record).await
    }
    async fn release_idempotency_key(&self, key: &str) -> Result<(), offramp::error::AuditError> {
        self.0.release_idempotency_key(key).await
    }
}

/// The deletion cannot be taken back, so a trail that fails right after it must not turn
/// the report into a lie: it says the organization was deleted, and that the record of it
/// is missing; what the trail did take (snapshot, export) is there.
#[tokio::test]
async fn a_trail_failing_after_the_deletion_does_not_hide_it() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let trail = TrailFailingAfterDeletion(h.audit.clone());
    let d = DeleteOrgDeps { audit: &trail, ..deps(&client, &h, options()) };
    let report = delete_itglue_org(&d, by_id(ADATUM)).await;
    assert!(report.deleted && !sandbox.itglue().organization_exists(9002), "{report:?}");
    assert_eq!(report.status.as_deref(), Some("deleted"));
    assert!(!report.success, "an unrecorded deletion is not a clean success");
    let codes: Vec<ErrorCode> = report.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, [ErrorCode::AuditStoreError, ErrorCode::AuditStoreError], "{:?}", report.errors);
    assert!(report.errors[0].message.contains("marked for deletion"), "{:?}", report.errors);
    let op = h.audit.operation(report.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(op.snapshots.len(), 1, "the organization as it was is in the trail");
    assert!(op.changes.iter().any(|c| c.item_type == "itglue_export"), "and so is the export");
}

/// Two deletions of the same organization at once: the second finds the organization's
/// lease taken, gets `OperationInProgress` naming the running operation, and sends
/// nothing (one export, one deletion in the simulator).
#[tokio::test]
async fn a_second_deletion_of_the_same_organization_waits_for_the_first() {
    let sandbox = sandbox().await;
    sandbox.set_itglue_deletion_delay(Duration::from_millis(1500));
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let d = deps(&client, &h, options());
    let lease_target = offramp::operation::lease::target("itglue", "9002");
    let second = async {
        // Starts once the first holds the lease (the real store's lease item).
        for _ in 0..500 {
            if h.audit.current_lease(&lease_target).await.unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        delete_itglue_org(&d, by_id(ADATUM)).await
    };
    let (first, second) = tokio::join!(delete_itglue_org(&d, by_id(ADATUM)), second);
    assert!(first.success && first.deleted, "{first:?}");
    assert_eq!(second.errors[0].code, ErrorCode::OperationInProgress, "{:?}", second.errors);
    let running = first.operation_id.clone().unwrap();
    assert!(second.errors[0].message.contains(&running), "names the running operation: {:?}", second.errors);
    assert!(!second.deleted && second.operation_id.is_none(), "{second:?}");
    assert_eq!(sandbox.itglue().deletions_requested(), 1);
    assert_eq!(sandbox.itglue().export_requests(), 1);
    assert!(h.audit.current_lease(&lease_target).await.unwrap().is_none(), "the lease is released at the end");
}

/// The same `idempotency_key` with the same request answers with the first run's report
/// (nothing is sent again); with another request it is `InvalidInput`.
#[tokio::test]
async fn an_idempotent_retry_returns_the_first_deletion() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox, ITGLUE_API_KEY);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let d = deps(&client, &h, options());
    let request = DeleteOrgRequest { idempotency_key: Some("delete-adatum-1".into()), ..by_id(ADATUM) };
    let first = delete_itglue_org(&d, request.clone()).await;
    assert!(first.success && first.deleted, "{first:?}");
    let again = delete_itglue_org(&d, request.clone()).await;
    assert_eq!(again, first, "the first run's report, as it was");
    assert_eq!(sandbox.itglue().deletions_requested(), 1);
    assert_eq!(sandbox.itglue().export_requests(), 1);
    let other = delete_itglue_org(&d, DeleteOrgRequest { force_delete: true, ..request }).await;
    assert_eq!(other.errors[0].code, ErrorCode::InvalidInput, "{:?}", other.errors);
}
