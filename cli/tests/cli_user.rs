//! `offramp user offboard` as an MSP engineer runs it: the real binary against the
//! ConnectWise simulator and the Microsoft 365 simulator (client 600's tenant). A dry run
//! changes nothing; a run without a terminal or `--yes` is refused; a real run with three
//! actions makes exactly those changes, once each, counted by the simulators.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use offramp_sandbox::m365::{M365_LEAVER_ID, M365_LEAVER_UPN, M365_TENANT_DOMAIN, M365_TENANT_ID};
use offramp_sandbox::{GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, Sandbox, SandboxConfig};

/// Lee Leaver's contact at PSA company 600.
const LEAVER_CONTACT: i64 = 60002;

/// The binary with the ConnectWise sandbox's settings and the Microsoft 365 app's.
fn offramp(sandbox: &Sandbox, db: &Path, args: &[&str]) -> Command {
    let mut command = common::offramp_for(sandbox, "connectwise", db);
    command
        .env("MS_LOGIN_URL", sandbox.entra_url())
        .env("GRAPH_URL", format!("{}/graph", sandbox.base_url()))
        .env("EXO_URL", sandbox.exchange_url())
        .env("MS_CLIENT_ID", GRAPH_CLIENT_ID)
        .env("MS_CLIENT_SECRET", GRAPH_CLIENT_SECRET)
        .args(["user", "offboard", "--client", "600", "--tenant", M365_TENANT_DOMAIN, "--user", M365_LEAVER_UPN])
        .args(args);
    command
}

fn said(out: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn user_offboard_plans_refuses_unconfirmed_and_applies_three_actions_once() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let actions = ["--disable-account", "--hide-from-gal", "--disable-psa-contact"];

    let dry = common::run(offramp(&sandbox, &db, &[&actions[..], &["--dry-run", "--json"]].concat())).await;
    assert_eq!(dry.status.code(), Some(0), "{}", said(&dry));
    let plan = common::json(&dry);
    assert_eq!((plan["status"].as_str(), plan["summary"]["planned"].as_u64()), (Some("planned"), Some(3)), "{plan}");
    assert!(sandbox.m365().all_writes().is_empty(), "a dry run changes nothing");

    let unconfirmed = common::run(offramp(&sandbox, &db, &actions)).await;
    assert_eq!(unconfirmed.status.code(), Some(5), "no terminal, no --yes: {}", said(&unconfirmed));
    assert!(sandbox.m365().all_writes().is_empty());

    let done = common::run(offramp(&sandbox, &db, &[&actions[..], &["--yes", "--reason", "Leaver"]].concat())).await;
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    let table = String::from_utf8_lossy(&done.stdout);
    assert!(table.starts_with("DONE: lee.leaver@contoso.example"), "{table}");
    for action in ["disable_account", "hide_from_gal", "disable_psa_contact"] {
        let line = table.lines().find(|l| l.starts_with(action)).unwrap_or_else(|| panic!("{action}: {table}"));
        assert!(line.contains("done"), "{line}");
    }

    let lee = sandbox.m365().user(M365_TENANT_ID, M365_LEAVER_ID).unwrap();
    assert!(!lee.account_enabled, "sign-in blocked");
    assert!(sandbox.m365().mailbox(M365_TENANT_ID, M365_LEAVER_ID).unwrap().hidden_from_address_lists);
    assert_eq!(sandbox.psa("connectwise").contact_is_active(LEAVER_CONTACT), Some(false));
    let writes = sandbox.m365().all_writes();
    assert_eq!(writes.len(), 2, "the account and the GAL, nothing else: {writes:?}");
    assert!(writes.values().all(|count| *count == 1), "each once: {writes:?}");
}

/// The binary for an MSP without Microsoft 365 in this deployment: ConnectWise and the
/// Samba AD DC of the run (scripts/with-samba.sh), nothing else.
fn offramp_onprem(sandbox: &Sandbox, db: &Path, ad: &offramp_tests::samba::AdFixture, args: &[&str]) -> Command {
    use offramp_tests::samba::{BASE_DN_VAR, BIND_DN_VAR, BIND_PASSWORD_VAR, CA_VAR, URL_VAR, var};
    let mut command = common::offramp_for(sandbox, "connectwise", db);
    command
        .env("AD_LDAP_URL", var(URL_VAR))
        .env("AD_BIND_DN", var(BIND_DN_VAR))
        .env("AD_BIND_PASSWORD", var(BIND_PASSWORD_VAR))
        .env("AD_BASE_DN", var(BASE_DN_VAR))
        .env("AD_CA_FILE", var(CA_VAR))
        .env("AD_DISABLED_OU", &ad.disabled)
        .args(args);
    command
}

#[tokio::test]
async fn user_offboard_onprem_disables_and_moves_the_ad_account_and_rolls_it_back() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let ad = offramp_tests::samba::AdFixture::new("cli").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let offboard = [
        "user",
        "offboard",
        "--client",
        "600",
        "--directory",
        "onprem",
        "--user",
        &ad.leaver.sam,
        "--disable-account",
        "--clear-employee-id",
        "--move-to-disabled-ou",
        "--yes",
        "--json",
    ];
    let done = common::run(offramp_onprem(&sandbox, &db, &ad, &offboard)).await;
    assert_eq!(done.status.code(), Some(0), "{}", said(&done));
    let report = common::json(&done);
    assert_eq!(report["identity_mode"], "onprem", "{report}");
    let moved = format!("CN={},{}", ad.leaver.dn.split_once(",OU=").unwrap().0.trim_start_matches("CN="), ad.disabled);
    assert_eq!(ad.value(&moved, "userAccountControl").await.as_deref(), Some("514"), "disabled and moved: {report}");
    assert_eq!(ad.value(&moved, "employeeID").await, None);
    assert!(sandbox.m365().all_writes().is_empty(), "Microsoft 365 is not even configured");

    let operation_id = report["operation_id"].as_str().unwrap().to_string();
    let undo = common::run(offramp_onprem(&sandbox, &db, &ad, &["rollback", &operation_id, "--yes", "--json"])).await;
    assert_eq!(undo.status.code(), Some(0), "{}", said(&undo));
    assert_eq!(ad.value(&ad.leaver.dn, "userAccountControl").await.as_deref(), Some("512"), "{}", said(&undo));
    assert_eq!(ad.value(&ad.leaver.dn, "employeeID").await.as_deref(), Some(ad.leaver.employee_id.as_str()));
}
