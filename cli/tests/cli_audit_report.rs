//! `offramp audit report OPERATION_ID --out FILE` (docs/evidence.md): the client offboarding
//! run by the CLI is rendered again from the trail into one file naming every child run; a
//! single workflow run renders alone; an id that is not one is refused, nothing written.

use crate::common;
use std::path::Path;
use std::process::Command;

use common::{json, run};
use offramp_sandbox::{Sandbox, SandboxConfig};

fn offramp(sandbox: &Sandbox, audit_db: &Path, args: &[&str]) -> Command {
    let mut command = common::with_env(Command::new(env!("CARGO_BIN_EXE_offramp")), sandbox, "connectwise", audit_db);
    command.args(args);
    command
}

#[tokio::test]
async fn the_report_of_a_chain_and_of_a_single_run_is_rendered_from_the_trail() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let chain = ["client", "offboard", "--client-id", "250", "--reason", "Contract ended", "--json"];
    let plan = json(&run(offramp(&sandbox, &db, &[&chain[..], &["--dry-run"]].concat())).await);
    let hash = plan["plan_hash"].as_str().unwrap().to_string();
    let approve = ["--approve-plan", hash.as_str(), "--approved-by", "Dana Approver"];
    let out = run(offramp(&sandbox, &db, &[&chain[..], &approve[..]].concat())).await;
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let parent = report["operation_id"].as_str().unwrap().to_string();
    let stored = report["evidence"]["location"].as_str().expect("the chain stored its evidence");
    assert!(Path::new(stored).starts_with(dir.path()), "beside the trail: {stored}");

    let file = dir.path().join("report.html");
    let out = run(offramp(&sandbox, &db, &["audit", "report", &parent, "--out", file.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("Dana Approver"));
    let children: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["result"]["operation_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(children.len(), 2);
    for child in &children {
        assert!(html.contains(child), "child {child} in the document");
    }

    // One workflow run, alone: its own changes, no chain.
    let single = dir.path().join("single.html");
    let out = run(offramp(&sandbox, &db, &["audit", "report", &children[1], "--out", single.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&single).unwrap();
    assert!(html.contains("Workflow run: deactivate-configs") && !html.contains(&children[0]), "the run alone");
    assert!(html.contains("<tr><td class=\"mono\">25001</td>"), "its configurations");

    // Not an operation id: refused (exit 3), nothing written.
    let refused = dir.path().join("refused.html");
    let out = run(offramp(&sandbox, &db, &["audit", "report", "../etc", "--out", refused.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(!refused.exists());
    // Unknown operation: exit 4.
    let unknown = "0190c3a0-0000-7000-8000-000000000009";
    assert_eq!(run(offramp(&sandbox, &db, &["audit", "report", unknown])).await.status.code(), Some(4));
}
