//! `offramp client offboard` (the chain in-process, docs/architecture.md#the-client-offboarding-chain)
//! as an MSP engineer runs it: a dry run prints the plan hash, a run without the approval
//! changes nothing and exits 5, the approved run offboards the client; counted in the sandbox.

use crate::common;
use std::path::Path;
use std::process::Command;

use common::{json, run};

use offramp_sandbox::{Sandbox, SandboxConfig};

fn offramp(sandbox: &Sandbox, audit_db: &Path, args: &[&str]) -> Command {
    let mut command = common::with_env(Command::new(env!("CARGO_BIN_EXE_offramp")), sandbox, "connectwise", audit_db);
    command.args(["client", "offboard", "--client-id", "250", "--reason", "Contract ended", "--json"]).args(args);
    command
}

#[tokio::test]
async fn dry_run_then_the_approved_plan_offboards_the_client() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let psa = sandbox.psa("connectwise");
    let active = |ids: Vec<i64>, is_active: &dyn Fn(i64) -> Option<bool>| {
        ids.into_iter().filter(|id| is_active(*id) == Some(true)).count()
    };
    let contacts = || active(psa.contact_ids_of(250), &|id| psa.contact_is_active(id));
    let configs = || active(psa.configuration_ids_of(250), &|id| psa.configuration_is_active(id));
    let before = (contacts(), configs());
    assert!(before.0 > 0 && before.1 > 0);

    let out = run(offramp(&sandbox, &db, &["--dry-run"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = json(&out);
    assert_eq!(plan["status"], "planned", "{plan}");
    let hash = plan["plan_hash"].as_str().expect("the chain's plan hash").to_string();

    let out = run(offramp(&sandbox, &db, &[])).await;
    assert_eq!(out.status.code(), Some(5), "not approved: refused, nothing changed");
    assert_eq!(json(&out)["status"], "approval_required");
    assert_eq!((contacts(), configs()), before, "nothing changed without the approval");

    let out = run(offramp(&sandbox, &db, &["--approve-plan", &hash, "--approved-by", "Dana Approver"])).await;
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!((report["status"].as_str(), report["approved_by"].as_str()), (Some("completed"), Some("Dana Approver")));
    assert_eq!((contacts(), configs()), (0, 0), "every contact and configuration inactive in the PSA");
}
