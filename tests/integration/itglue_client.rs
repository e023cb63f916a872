//! The production IT Glue client against the sandbox's IT Glue simulator: lookups that do
//! not trust the server's name filter, paging, dependency counts (archived records, flexible
//! assets per type, the undocumented documents route), exports, the asynchronous bulk
//! deletion, typed errors, and the request budget.

use std::time::Duration;

use offramp::adapters::itglue::{ItGlueClient, ItGlueSettings, default_http_settings, http_settings};
use offramp::error::DocError;
use offramp::http::HttpSettings;
use offramp::ports::DocPlatform;
use offramp_sandbox::{ITGLUE_API_KEY, Sandbox, SandboxConfig};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
}

fn fast_http() -> HttpSettings {
    let mut http = default_http_settings();
    http.max_retries = 4;
    http.base_backoff = Duration::from_millis(20);
    http.max_backoff = Duration::from_millis(200);
    http
}

fn client_with(sandbox: &Sandbox, key: &str, http: HttpSettings) -> ItGlueClient {
    ItGlueClient::new(ItGlueSettings { url: sandbox.itglue_url(), api_key: key.into() }, http).unwrap()
}

fn client(sandbox: &Sandbox) -> ItGlueClient {
    client_with(sandbox, ITGLUE_API_KEY, fast_http())
}

fn ids(orgs: &[offramp::domain::Organization]) -> Vec<&str> {
    orgs.iter().map(|o| o.id.as_str()).collect()
}

#[tokio::test]
async fn names_are_matched_exactly_ignoring_case_never_by_the_server_filter() {
    let sandbox = sandbox().await;
    let itglue = client(&sandbox);

    // The simulated filter[name] is a case-sensitive substring match: trusting it would
    // find nothing for "contoso DENTAL" and two organizations for "Contoso Dental".
    let contoso = itglue.organizations_by_name("  contoso DENTAL ").await.unwrap();
    assert_eq!(ids(&contoso), ["9001"]);
    assert_eq!(contoso[0].psa_id.as_deref(), Some("250"));
    assert_eq!(contoso[0].psa_integration.as_deref(), Some("manage"));
    assert_eq!(contoso[0].status.as_deref(), Some("Active"));
    let litware = itglue.organizations_by_name("Litware Inc").await.unwrap();
    assert_eq!(ids(&litware), ["9003", "9004"], "both spellings are candidates");
    assert!(itglue.organizations_by_name("Contoso").await.unwrap().is_empty(), "no substring matches");

    let by_id = itglue.organization_by_id("9007").await.unwrap().unwrap();
    assert_eq!((by_id.name.as_str(), by_id.psa_id.as_deref()), ("Contoso Dental Lab", None));
    assert_eq!(itglue.organization_by_id("424242").await.unwrap(), None);

    // Ids that cannot be IT Glue ids never reach the wire.
    let before = sandbox.stats().total();
    for bad in ["0", "-3", "9001 or 1=1", "../exports", "abc"] {
        assert!(matches!(itglue.organization_by_id(bad).await, Err(DocError::InvalidId { .. })), "{bad}");
        assert!(matches!(itglue.dependencies(bad).await, Err(DocError::InvalidId { .. })), "{bad}");
        assert!(matches!(itglue.delete_organization(bad).await, Err(DocError::InvalidId { .. })), "{bad}");
    }
    assert_eq!(sandbox.stats().total(), before);
}

#[tokio::test]
async fn every_organization_is_listed_across_pages() {
    let sandbox = sandbox().await;
    let added = sandbox.itglue().add_organizations(1200, "Filler Org");
    assert_eq!(added.len(), 1200);
    let itglue = client(&sandbox);
    sandbox.reset_stats();
    let all = itglue.organizations().await.unwrap();
    assert_eq!(all.len(), 1207);
    let mut unique: Vec<&str> = ids(&all);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1207, "no organization twice");
    assert_eq!(sandbox.stats().count("GET", "/itglue/organizations"), 2, "1000 per page");

    let small = client(&sandbox).with_page_size(500);
    sandbox.reset_stats();
    assert_eq!(small.organizations().await.unwrap().len(), 1207);
    assert_eq!(sandbox.stats().count("GET", "/itglue/organizations"), 3);
}

#[tokio::test]
async fn dependencies_count_archived_records_flexible_assets_per_type_and_documents() {
    let sandbox = sandbox().await;
    let itglue = client(&sandbox);

    let contoso = itglue.dependencies("9001").await.unwrap();
    assert_eq!(contoso.configurations, 4, "3 active + 1 archived (archived is not listed unless asked)");
    assert_eq!(contoso.passwords, 3, "2 + 1 archived");
    assert_eq!((contoso.contacts, contoso.locations, contoso.documents), (3, 1, 2));
    assert_eq!(contoso.flexible_assets.get("Applications"), Some(&2));
    assert_eq!(contoso.flexible_assets.get("Email"), Some(&1));
    assert_eq!(contoso.flexible_assets.get("Backup"), None, "types without assets are left out");
    assert_eq!(contoso.flexible_assets_total(), 3);
    assert!(contoso.unknown.is_empty(), "{:?}", contoso.unknown);
    assert!(contoso.any());

    let adatum = itglue.dependencies("9002").await.unwrap();
    assert!(!adatum.any(), "{adatum:?}");
    let lab = itglue.dependencies("9007").await.unwrap();
    assert_eq!((lab.locations, lab.configurations), (1, 0));

    // The documents route is undocumented: when it is not there, documents are "not
    // counted", which counts as a possible dependent, never as zero.
    sandbox.itglue().set_documents_route_available(false);
    let adatum = itglue.dependencies("9002").await.unwrap();
    assert!(adatum.unknown.contains_key("documents"), "{adatum:?}");
    assert!(adatum.any(), "an uncountable kind blocks like a dependent");
}

#[tokio::test]
async fn exports_are_requested_for_the_organization_and_followed_to_done() {
    let sandbox = sandbox().await;
    sandbox.itglue().set_export_delay(Duration::from_millis(150));
    let itglue = client(&sandbox);

    let export = itglue.request_export("9002").await.unwrap();
    assert_eq!(export.organization_id, "9002");
    assert!(!export.is_done() && !export.has_failed(), "{export:?}");
    let records = sandbox.itglue().exports();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["attributes"]["organization-id"], 9002, "never an account-wide export: {}", records[0]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = itglue.export(&export.id).await.unwrap();
    assert!(done.is_done(), "{done:?}");
    assert!(done.download_url.as_deref().is_some_and(|u| u.contains(&export.id)), "{done:?}");

    sandbox.itglue().fail_exports(true);
    let failing = itglue.request_export("9002").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failed = itglue.export(&failing.id).await.unwrap();
    assert!(failed.has_failed() && failed.download_url.is_none(), "{failed:?}");
    sandbox.itglue().fail_exports(false);

    sandbox.itglue().refuse_exports(true);
    let refused = itglue.request_export("9002").await;
    assert!(matches!(refused, Err(DocError::PermissionDenied { .. })), "{refused:?}");
    sandbox.itglue().refuse_exports(false);
    assert!(matches!(itglue.request_export("424242").await, Err(DocError::Rejected { status: 422, .. })));
    assert_eq!(sandbox.itglue().export_requests(), 2);
}

#[tokio::test]
async fn deletion_is_a_bulk_delete_that_completes_later() {
    let sandbox = sandbox().await;
    sandbox.set_itglue_deletion_delay(Duration::from_millis(300));
    let itglue = client(&sandbox);

    itglue.delete_organization("9002").await.unwrap();
    assert!(sandbox.itglue().marked_for_deletion(9002));
    assert!(itglue.organization_by_id("9002").await.unwrap().is_some(), "still readable: deletion is asynchronous");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(itglue.organization_by_id("9002").await.unwrap(), None);
    assert!(!sandbox.itglue().organization_exists(9002));
    assert_eq!(sandbox.itglue().deletions_requested(), 1);

    // Gone, unknown, refused: each typed, nothing else marked.
    assert!(matches!(itglue.delete_organization("9002").await, Err(DocError::NotFound { .. })));
    assert!(matches!(itglue.delete_organization("424242").await, Err(DocError::NotFound { .. })));
    sandbox.itglue().fail_deletion(9004, "Organization is locked by a PSA sync");
    match itglue.delete_organization("9004").await {
        Err(DocError::Rejected { status: 422, message }) => assert!(message.contains("locked"), "{message}"),
        other => panic!("expected 422, got {other:?}"),
    }
    assert!(!sandbox.itglue().marked_for_deletion(9004));
    assert_eq!(sandbox.itglue().deletions_requested(), 1);
}

#[tokio::test]
async fn bad_keys_faults_and_limits_are_typed_and_never_leak_the_key() {
    let sandbox = sandbox().await;
    let wrong = "ITG.wrong-key-that-must-not-leak-0001";
    let bad = client_with(&sandbox, wrong, fast_http());
    let denied = bad.organization_by_id("9001").await;
    match &denied {
        Err(DocError::PermissionDenied { message }) => assert!(message.contains("403"), "{message}"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(!format!("{denied:?}").contains(wrong));

    // Transient 503s and a dropped connection are retried.
    let itglue = client(&sandbox);
    sandbox.fail_next(2, 503);
    sandbox.drop_next(1);
    assert!(itglue.organization_by_id("9001").await.unwrap().is_some());
    // A 503 that does not stop is a connection error after the retries.
    sandbox.fail_next(50, 503);
    assert!(matches!(itglue.organization_by_id("9001").await, Err(DocError::Connection { .. })));
    sandbox.fail_next(0, 503);
    let nowhere = ItGlueClient::new(
        ItGlueSettings { url: "http://127.0.0.1:9".into(), api_key: ITGLUE_API_KEY.into() },
        fast_http(),
    )
    .unwrap();
    assert!(matches!(nowhere.organizations().await, Err(DocError::Connection { .. })));

    // A 429 (the simulator's own per-second limit here) is waited out and retried.
    sandbox.reset_stats();
    sandbox.set_rate_limit(Some(3));
    for _ in 0..8 {
        itglue.organization_by_id("9001").await.unwrap();
    }
    assert!(sandbox.stats().throttled() > 0, "the limit was hit and survived");
    sandbox.set_rate_limit(None);

    // The client's own budget keeps it under IT Glue's window: with room for 5 requests and
    // no patience, the 6th is refused before it is sent.
    let budgeted = client_with(
        &sandbox,
        ITGLUE_API_KEY,
        http_settings(HttpSettings { max_retries: 0, ..HttpSettings::default() }, 5, Duration::ZERO),
    );
    sandbox.reset_stats();
    for _ in 0..5 {
        budgeted.organization_by_id("9001").await.unwrap();
    }
    let spent = budgeted.organization_by_id("9001").await;
    assert!(matches!(&spent, Err(DocError::BudgetExhausted { message }) if message.contains("budget")), "{spent:?}");
    assert_eq!(sandbox.stats().total(), 5, "the refused request never left");
}
