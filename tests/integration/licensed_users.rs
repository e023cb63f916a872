//! "Every licensed user" (docs/vendors/microsoft-graph.md#licensed-users): the Graph adapter
//! lists the tenant's licensed, enabled users through the simulator's advanced query (header,
//! `$count`, pages), and the in-process chain plans one `offboard_user` run per such user
//! and none for the unlicensed. Who is licensed is read from the simulator, not the report.

use std::collections::BTreeSet;

use offramp::adapters::graph::GraphDirectory;
use offramp::chain::{ChainStep, ClientOffboardingRequest, InProcessConsent, run_chain};
use offramp::domain::GLOBAL_SCOPE;
use offramp::entry::{FunctionServices, InProcessSteps, chain_deps};
use offramp::ports::CloudDirectory;
use offramp_sandbox::m365::*;
use offramp_sandbox::{GRAPH_CLIENT_SECRET, Sandbox, SandboxConfig};
use offramp_tests::chain::{put_setting, services_with_m365};
use offramp_tests::connectwise::http_settings;
use offramp_tests::offboarding::{CONTOSO_COMPANY, m365_settings};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

/// UPNs of the tenant's users holding a licence (direct or by group), from the simulator.
fn licensed_in_simulator(sb: &Sandbox) -> BTreeSet<String> {
    let m365 = sb.m365();
    m365.user_ids(M365_TENANT_ID)
        .into_iter()
        .filter(|id| !m365.licences(M365_TENANT_ID, id).is_empty())
        .filter_map(|id| m365.user(M365_TENANT_ID, &id))
        .filter(|u| u.account_enabled && !u.deleted)
        .map(|u| u.user_principal_name)
        .collect()
}

/// More users than one page (999): every licensed one comes back once, over two pages, each
/// page asked with the header the advanced query needs (the simulator refuses it otherwise).
#[tokio::test]
async fn the_directory_lists_every_licensed_enabled_user_across_pages() {
    let sb = sandbox().await;
    sb.m365().add_bench_leavers(M365_TENANT_ID, 1_050, 0);
    let directory = GraphDirectory::new(&m365_settings(&sb, GRAPH_CLIENT_SECRET), http_settings()).unwrap();
    let before = sb.stats().count("GET", "/graph/v1.0/users");
    let listed = directory.licensed_users(M365_TENANT_ID).await.expect("listed");
    let upns: BTreeSet<String> = listed.iter().map(|u| u.user_principal_name.clone()).collect();
    assert_eq!(upns.len(), listed.len(), "no user listed twice");
    let expected = licensed_in_simulator(&sb);
    assert_eq!(upns, expected, "exactly the simulator's licensed users");
    assert!(!upns.contains(M365_MANAGER_UPN) && !upns.contains(M365_COLLEAGUE_UPN), "unlicensed ones are left out");
    assert_eq!(sb.stats().count("GET", "/graph/v1.0/users") - before, 2, "two pages of 999");
}

/// The chain with `all_licensed_users`: one offboard_user run per licensed user of client
/// 600's tenant, none for the unlicensed; a dry run, so nothing is written in the tenant.
#[tokio::test]
async fn the_chain_plans_one_run_per_licensed_user_and_none_for_the_others() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let services = services_with_m365(&sb, &dir.path().join("audit.sqlite"), &[]).await;
    assert!(matches!(services, FunctionServices::UserOffboarding(_)), "Microsoft 365 is configured");
    put_setting(&services, GLOBAL_SCOPE, "m365_tenant_id", M365_TENANT_ID).await;
    let steps = InProcessSteps { services: &services, invoked_by: "test".into() };
    let deps = chain_deps(&services, &steps, None).expect("deps");
    let request = |leavers: Vec<String>| ClientOffboardingRequest {
        client_id: Some(CONTOSO_COMPANY.into()),
        steps: Some(vec![ChainStep::OffboardUsers]),
        leavers,
        all_licensed_users: true,
        dry_run: true,
        initiated_by: Some("tech@msp.example".into()),
        ..Default::default()
    };
    let writes_before = sb.m365().all_writes();
    let plan = run_chain(&deps, request(Vec::new()), &InProcessConsent::default()).await;
    assert_eq!(plan.status, "planned", "{plan:?}");
    let planned: Vec<String> = plan.steps.iter().filter_map(|s| s.leaver.clone()).collect();
    let planned_set: BTreeSet<String> = planned.iter().cloned().collect();
    assert_eq!(planned.len(), planned_set.len(), "one run per user: {planned:?}");
    assert_eq!(planned_set, licensed_in_simulator(&sb), "every licensed user, and only them");
    assert!(!planned_set.contains(M365_MANAGER_UPN) && !planned_set.contains(M365_COLLEAGUE_UPN));
    assert_eq!(sb.m365().all_writes(), writes_before, "a dry run writes nothing in the tenant");

    // Both a list and all_licensed_users: refused, nothing planned.
    let both = run_chain(&deps, request(vec![M365_LEAVER_UPN.into()]), &InProcessConsent::default()).await;
    assert_eq!(both.errors.first().map(|e| e.code.as_str()), Some("InvalidInput"), "{both:?}");
    assert!(both.steps.is_empty(), "{both:?}");
}
