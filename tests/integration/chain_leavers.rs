//! Leavers in the client-offboarding chain (docs/architecture.md#the-client-offboarding-chain):
//! a leaver's own PSA contact is left to the contacts step, so the users step cannot change
//! the contacts step's approved plan before it runs; and each leaver documents itself on the
//! chain's ticket with one summary note. Effects are counted in the simulators.

use offramp::chain::{ChainStep, InProcessConsent, run_chain};
use offramp::domain::GLOBAL_SCOPE;
use offramp::entry::{InProcessSteps, chain_deps};
use offramp::workflows::org_settings::{CHAIN_RECIPIENTS, M365_TENANT, USER_OFFBOARDING_ACTIONS};
use offramp_sandbox::m365::{M365_LEAVER_ID, M365_LEAVER_UPN, M365_TENANT_ID};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::chain::{put_setting, request, services_with_m365};
use offramp_tests::offboarding::{CONTOSO_COMPANY, LEAVER_CONTACT};

/// Client 600's leaver has a PSA contact and the client's defaults disable it; the chain
/// also deactivates every contact. The approved chain completes; the leaver's contact is
/// updated once; the leaver's run writes one note on the chain's ticket, its summary.
#[tokio::test]
async fn a_leavers_contact_is_left_to_the_contacts_step_and_one_note_documents_the_leaver() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services_with_m365(&sb, &dir.path().join("audit.sqlite"), &[]).await;
    put_setting(&services, GLOBAL_SCOPE, CHAIN_RECIPIENTS, "ops@msp.example").await;
    put_setting(&services, GLOBAL_SCOPE, M365_TENANT, M365_TENANT_ID).await;
    put_setting(&services, CONTOSO_COMPANY, USER_OFFBOARDING_ACTIONS, "disable_account,disable_psa_contact").await;
    let steps = InProcessSteps { services: &services, invoked_by: "test".into() };
    let deps = chain_deps(&services, &steps, None).expect("deps");
    let chain_request = |dry_run: bool| {
        let mut r = request(CONTOSO_COMPANY, &[ChainStep::OffboardUsers, ChainStep::DeactivateContacts], dry_run);
        r.leavers = vec![M365_LEAVER_UPN.into()];
        r
    };

    let plan = run_chain(&deps, chain_request(true), &InProcessConsent::default()).await;
    assert_eq!(plan.status, "planned", "{plan:?}");
    let consent = InProcessConsent { approved_by: Some("Dana Approver".into()), plan_hash: plan.plan_hash.clone() };
    let done = run_chain(&deps, chain_request(false), &consent).await;
    assert!(done.success, "the approved chain completes: {done:?}");

    let psa = sb.psa("connectwise");
    assert_eq!(psa.contact_is_active(LEAVER_CONTACT), Some(false), "the leaver's contact is inactive");
    assert_eq!(psa.contact_update_count(LEAVER_CONTACT), 1, "and was updated once, by one step");
    let leaver = sb.m365().user(M365_TENANT_ID, M365_LEAVER_ID).expect("the leaver");
    assert!(!leaver.account_enabled, "the leaver's account is disabled in the tenant");

    let ticket: i64 = done.ticket_id.as_deref().expect("the chain's ticket").parse().unwrap();
    let notes = sb.psa("connectwise").ticket(ticket).expect("the ticket").notes;
    let leaver_notes: Vec<&String> = notes.iter().filter(|n| n.contains("User offboarding")).collect();
    assert_eq!(leaver_notes.len(), 1, "one note for the leaver, its summary: {notes:#?}");
    assert!(leaver_notes[0].contains("summary"), "{notes:#?}");
}
