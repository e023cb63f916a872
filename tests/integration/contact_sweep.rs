//! The nightly contact sweep (`deactivate-contacts`' EventBridge schedule,
//! docs/workflows.md#scheduled-sweeps): every company that meets the offboarded criteria
//! and still has active contacts gets its own audited contact deactivation. What should
//! be swept is worked out here from the ConnectWise simulator's own records (status
//! `Offboarded`, the criteria `tests/support/connectwise.rs` configures), and every effect
//! is counted in the simulator, never taken from the sweep's report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use offramp::domain::{OperationFilter, OperationSummary, Workflow};
use offramp::entry::deactivate_contacts_event;
use offramp_sandbox::{PsaSim, Sandbox, SandboxConfig};
use offramp_tests::connectwise::source;
use serde_json::Value;

const RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/offramp-nightly-contact-sweep";

fn schedule_event() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/deactivate-contacts/scheduled-sweep.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Each company's active contacts, as the simulator holds them.
fn active_contacts(sandbox: &Sandbox) -> BTreeMap<i64, Vec<i64>> {
    let cw = sandbox.connectwise();
    cw.company_ids()
        .into_iter()
        .map(|company| {
            let active = cw.contact_ids_of(company).into_iter().filter(|c| cw.contact_is_active(*c) == Some(true));
            (company, active.collect())
        })
        .collect()
}

/// The companies the sweep must process: status `Offboarded` and at least one active contact.
fn to_sweep(sandbox: &Sandbox, active: &BTreeMap<i64, Vec<i64>>) -> Vec<i64> {
    let offboarded = |id: &i64| sandbox.connectwise().company(*id).unwrap()["status"]["name"] == "Offboarded";
    active.iter().filter(|(id, contacts)| offboarded(id) && !contacts.is_empty()).map(|(id, _)| *id).collect()
}

async fn contact_operations(dir: &tempfile::TempDir) -> Vec<OperationSummary> {
    let store = offramp::adapters::audit_sqlite::SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap();
    let filter = OperationFilter { limit: 1000, ..Default::default() };
    let all = offramp::ports::AuditStore::list_operations(&store, &filter).await.unwrap();
    all.into_iter().filter(|s| s.operation.workflow == Workflow::DeactivateContacts).collect()
}

fn swept_companies(report: &Value) -> Vec<i64> {
    let operations = report["operations"].as_array().unwrap_or_else(|| panic!("{report}"));
    let mut ids: Vec<i64> =
        operations.iter().map(|o| o["deactivation_summary"]["company_id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// The sweep deactivates every active contact of every offboarded company, each exactly
/// once, with one operation per company in the trail recorded as the schedule's; other
/// companies are untouched; a second night finds nothing left and changes nothing.
#[tokio::test]
async fn the_schedule_sweeps_every_offboarded_company_with_active_contacts_once() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = offramp::app::build(&source(&sandbox, &dir.path().join("audit.sqlite"))).await.unwrap();
    let before = active_contacts(&sandbox);
    let expected = to_sweep(&sandbox, &before);
    assert!(expected.len() >= 2, "the fixture has several offboarded companies with active contacts: {before:?}");

    let report = deactivate_contacts_event(&services, schedule_event(), "lambda:test").await;
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(report.error, None);
    assert_eq!(swept_companies(&report), expected, "{report}");
    let cw = sandbox.connectwise();
    for (company, contacts) in &before {
        let swept = expected.contains(company);
        for contact in contacts {
            assert_eq!(cw.contact_is_active(*contact), Some(!swept), "company {company}, contact {contact}");
            assert_eq!(cw.contact_update_count(*contact), usize::from(swept), "company {company}, contact {contact}");
        }
    }
    let trail = contact_operations(&dir).await;
    let mut in_trail: Vec<i64> = trail.iter().map(|s| s.operation.client_id.parse().unwrap()).collect();
    in_trail.sort_unstable();
    assert_eq!(in_trail, expected, "one operation per swept company");
    for summary in &trail {
        assert!(summary.operation.initiated_by.contains(RULE), "{:?}", summary.operation.initiated_by);
        assert!(summary.operation.reason.as_deref().unwrap_or_default().starts_with("Scheduled sweep"));
    }

    let patches = sandbox.stats().count("PATCH", "/company/contacts/{id}");
    let again = deactivate_contacts_event(&services, schedule_event(), "lambda:test").await;
    assert_eq!(again["clients_processed"], 0, "{again}");
    assert_eq!(sandbox.stats().count("PATCH", "/company/contacts/{id}"), patches, "nothing deactivated twice");
    assert_eq!(contact_operations(&dir).await.len(), expected.len(), "no new operation");
}

/// `OFFRAMP_SWEEP_DRY_RUN=true`: the same schedule plans each company (recorded as a plan)
/// and changes nothing in the PSA.
#[tokio::test]
async fn a_dry_run_sweep_changes_nothing() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut source = source(&sandbox, &dir.path().join("audit.sqlite"));
    source.set("OFFRAMP_SWEEP_DRY_RUN", "true");
    let services = offramp::app::build(&source).await.unwrap();
    let before = active_contacts(&sandbox);
    let expected = to_sweep(&sandbox, &before);

    let report = deactivate_contacts_event(&services, schedule_event(), "lambda:test").await;
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(swept_companies(&report), expected, "every company is planned: {report}");
    let operations = report["operations"].as_array().unwrap();
    assert!(operations.iter().all(|o| o["dry_run"] == true), "{report}");
    assert_eq!(sandbox.stats().patches(), 0, "a planned sweep changes nothing");
    assert_eq!(active_contacts(&sandbox), before);
}

/// A schedule event that carries parameters is refused before anything is read.
#[tokio::test]
async fn a_schedule_with_parameters_is_refused() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = offramp::app::build(&source(&sandbox, &dir.path().join("audit.sqlite"))).await.unwrap();
    let mut event = schedule_event();
    event["detail"] = serde_json::json!({"dry_run": false});
    let answer = deactivate_contacts_event(&services, event, "lambda:test").await;
    assert_eq!(answer.error_type(), Some("InvalidInput"), "{answer}");
    assert_eq!(sandbox.stats().total(), 0, "nothing read, nothing changed");
}
