//! `offramp settings`, `offramp contacts deactivate` and `offramp rollback` as an MSP
//! engineer runs them, the real binary against each PSA simulator: every flag of the
//! contact run, the guard stopping it until the override, a failed contact finished with
//! `--resume`, and the whole operation rolled back.
//!
//! One scenario per PSA, each its own test so that they run side by side. Company 250
//! (Contoso Dental): 5001 Jane Doe is the primary contact, 5002–5005 and 5007 are active,
//! 5006 is already inactive; ticket 9001 is open on 5002, 9010 is the offboarding ticket.

use crate::common;

use std::path::Path;
use std::process::Output;

use offramp_sandbox::{PsaSim, Sandbox, SandboxConfig};
use serde_json::Value;

const REASON: &str = "Contract terminated - effective 2026-03-01";
const PRIMARY: i64 = 5001;
/// Who the run deactivates: every active contact but the primary and the two excluded ones.
const LEAVING: [i64; 3] = [5002, 5005, 5007];
const EXCLUDED: [i64; 2] = [5003, 5004];
/// What the report lists as left alone: the excluded contacts and the kept primary, each with its reason.
const LEFT_ALONE: [i64; 3] = [PRIMARY, 5003, 5004];
const ALREADY_INACTIVE: i64 = 5006;
/// Its update fails in the first run, and `--resume` finishes it.
const FAILING: i64 = 5005;
/// Open ticket of a leaving contact (5002): reassigned to the kept primary contact.
const OPEN_TICKET: i64 = 9001;
/// Configuration of a leaving contact (5002); HaloPSA assets have no contact.
const CONTACT_CONFIGURATION: i64 = 25001;
const NOTE_TICKET: &str = "9010";

/// One run of the binary: its exit code, stdout and stderr.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Assert the exit code, showing what the program said otherwise.
    fn expect(self, psa: &str, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "{psa}: exit code\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

struct Cli<'a> {
    sandbox: &'a Sandbox,
    psa: &'a str,
    db: &'a Path,
}

impl Cli<'_> {
    async fn run(&self, args: &[&str]) -> Run {
        let mut command = common::offramp_for(self.sandbox, self.psa, self.db);
        command.args(args);
        let out: Output = tokio::task::spawn_blocking(move || command.output().expect("run offramp")).await.unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Everything a contact run could change, as the PSA has it: contacts, the open ticket's
/// contact, the configuration's contact, the notes on the offboarding ticket.
#[derive(Debug, PartialEq)]
struct PsaState {
    active: Vec<(i64, Option<bool>)>,
    ticket_contact: Option<i64>,
    configuration_contact: Option<i64>,
    notes: usize,
}

fn state(sim: &dyn PsaSim) -> PsaState {
    PsaState {
        active: (5001..=5007).map(|id| (id, sim.contact_is_active(id))).collect(),
        ticket_contact: sim.ticket(OPEN_TICKET).and_then(|t| t.contact_id),
        configuration_contact: sim.configuration_contact(CONTACT_CONFIGURATION),
        notes: sim.ticket(NOTE_TICKET.parse().unwrap()).map_or(0, |t| t.notes.len()),
    }
}

fn ids(list: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> =
        list.as_array().expect("a list").iter().map(|c| c["contact_id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// The seed's field names, on the report of a run that changed data.
fn assert_seed_fields(psa: &str, report: &Value) {
    for field in [
        "deactivation_summary",
        "contacts_deactivated",
        "contacts_excluded",
        "related_updates",
        "audit_trail",
        "ticket_id",
    ] {
        assert!(report.get(field).is_some(), "{psa}: no {field} in {report}");
    }
    let summary = &report["deactivation_summary"];
    for field in [
        "company_id",
        "company_name",
        "total_contacts_found",
        "contacts_deactivated",
        "contacts_excluded",
        "contacts_already_inactive",
        "deactivation_timestamp",
        "reason",
    ] {
        assert!(summary.get(field).is_some(), "{psa}: no deactivation_summary.{field} in {summary}");
    }
    assert_eq!(
        keys(&report["related_updates"]),
        ["configurations_updated", "open_tickets_reassigned", "scheduled_tasks_disabled"],
        "{psa}"
    );
    let audit = &report["audit_trail"];
    for field in ["operation_id", "initiated_by", "timestamp", "rollback_available"] {
        assert!(audit.get(field).is_some(), "{psa}: no audit_trail.{field} in {audit}");
    }
    for contact in report["contacts_deactivated"].as_array().unwrap() {
        assert_eq!(keys(contact), ["contact_id", "email", "name", "new_status", "previous_status", "title"], "{psa}");
    }
    for contact in report["contacts_excluded"].as_array().unwrap() {
        assert_eq!(keys(contact), ["contact_id", "name", "reason"], "{psa}");
    }
}

async fn scenario(psa: &str) {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let sim = sandbox.psa(psa);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let cli = Cli { sandbox: &sandbox, psa, db: &db };

    // --- settings: set, get, unset, list (text and JSON) --------------------------------
    let text = cli.run(&["settings", "list", "250"]).await.expect(psa, 0).stdout;
    assert!(text.lines().any(|l| l == "offramp_guard_max_contacts = 200 (default)"), "{psa}: {text}");
    assert!(text.lines().any(|l| l == "psa_contact_deactivation_ticket_board = (unset) (default)"), "{psa}: {text}");
    let set = cli.run(&["settings", "set", "global", "offramp_guard_max_contacts", "2"]).await.expect(psa, 0);
    assert_eq!(set.stdout.trim(), "* offramp_guard_max_contacts = 2", "{psa}");
    cli.run(&["settings", "set", "250", "offramp_guard_max_contacts", "50"]).await.expect(psa, 0);
    let got = cli.run(&["settings", "get", "250", "offramp_guard_max_contacts"]).await.expect(psa, 0);
    assert_eq!(got.stdout.trim(), "50 (client)", "{psa}: the client's value beats the global one");
    let unset = cli.run(&["settings", "unset", "250", "offramp_guard_max_contacts"]).await.expect(psa, 0);
    assert_eq!(unset.stdout.trim(), "250 offramp_guard_max_contacts unset", "{psa}");
    let listed = cli.run(&["settings", "list", "250", "--json"]).await.expect(psa, 0).json();
    assert_eq!(listed["offramp_guard_max_contacts"], serde_json::json!({"value": "2", "source": "global"}), "{psa}");
    assert_eq!(listed["psa_contact_preserve_primary"]["source"], "default", "{psa}");
    let known = offramp::workflows::org_settings::KEYS.len();
    assert_eq!(listed.as_object().unwrap().len(), known, "{psa}: every known key is listed: {listed}");
    assert!(
        listed["user_offboarding_default_actions"]["value"].as_str().is_some_and(|v| v.contains("disable_account"))
    );

    // --- contacts deactivate: every flag of the run ---------------------------------------
    let flags = [
        "contacts",
        "deactivate",
        "--company-id",
        "250",
        "--exclude-contact",
        "5003",
        "--exclude-contact",
        "5004",
        "--preserve-primary",
        "--reason",
        REASON,
        "--ticket-id",
        NOTE_TICKET,
        "--json",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> { flags.iter().chain(extra).copied().collect() };
    let before = state(sim);
    assert_eq!(before.ticket_contact, Some(5002), "{psa}: fixture");

    // Without --confirmation (and no terminal): the plan, exit 5, nothing changed. This
    // plan is also over the guard, and the engine refuses for the guard first: a
    // confirmation would not let it through.
    let plan = cli.run(&with(&[])).await.expect(psa, 5).json();
    assert_eq!(plan["status"], "blast_radius_exceeded", "{psa}");
    assert_eq!(plan["errors"][0]["code"], "BlastRadiusExceeded", "{psa}");
    assert_eq!(ids(&plan["contacts_deactivated"]), LEAVING, "{psa}");
    assert_eq!(ids(&plan["contacts_excluded"]), LEFT_ALONE, "{psa}");
    assert_eq!(state(sim), before, "{psa}: a run without confirmation changed something");

    // --dry-run, even with --confirmation: the plan, exit 0 (success: a plan was asked for),
    // nothing changed, and the guard's figures say this run would be stopped.
    let dry = cli.run(&with(&["--confirmation", "--dry-run"])).await.expect(psa, 0).json();
    assert_eq!((dry["status"].as_str(), dry["dry_run"].as_bool()), (Some("planned"), Some(true)), "{psa}");
    assert_eq!(dry["deactivation_summary"]["contacts_deactivated"], 3, "{psa}");
    assert_eq!(dry["blast_radius"]["exceeded"], true, "{psa}: {dry}");
    assert_eq!(state(sim), before, "{psa}: a dry run changed something");

    // Confirmed, but over the global guard setting (2): stopped with the plan, exit 5.
    let stopped = cli.run(&with(&["--confirmation"])).await.expect(psa, 5).json();
    assert_eq!(stopped["status"], "blast_radius_exceeded", "{psa}");
    assert_eq!(stopped["errors"][0]["code"], "BlastRadiusExceeded", "{psa}");
    let guard = &stopped["blast_radius"];
    assert_eq!((guard["contacts_to_deactivate"].as_u64(), guard["max_contacts"].as_u64()), (Some(3), Some(2)), "{psa}");
    assert_eq!(state(sim), before, "{psa}: the guard let something through");
    for id in LEAVING {
        assert_eq!(sim.contact_update_count(id), 0, "{psa}: contact {id} was sent an update");
    }

    // With the override it runs; one contact's update fails: exit 1, the rest is done.
    sim.fail_contact_update(FAILING, "Contact is locked by a portal session");
    let run = cli.run(&with(&["--confirmation", "--override-blast-radius"])).await.expect(psa, 1);
    let report = run.json();
    assert_seed_fields(psa, &report);
    let summary = &report["deactivation_summary"];
    assert_eq!(summary["company_id"], 250, "{psa}");
    assert_eq!(summary["company_name"], "Contoso Dental", "{psa}");
    assert_eq!(summary["reason"], REASON, "{psa}");
    assert_eq!(summary["contacts_excluded"], 3, "{psa}: two excluded, and the kept primary");
    assert_eq!(summary["contacts_already_inactive"], 1, "{psa}");
    assert_eq!(ids(&report["contacts_deactivated"]), [5002, 5007], "{psa}: {report}");
    assert_eq!(ids(&report["contacts_excluded"]), LEFT_ALONE, "{psa}");
    for excluded in report["contacts_excluded"].as_array().unwrap() {
        let reason = excluded["reason"].as_str().unwrap_or_default();
        let expected =
            if excluded["contact_id"] == PRIMARY { "Primary contact preserved" } else { "Explicitly excluded" };
        assert!(reason.starts_with(expected), "{psa}: {excluded}");
    }
    assert!(
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "ContactUpdateFailed" && e["item_id"].as_str() == Some(FAILING.to_string().as_str())),
        "{psa}: {report}"
    );
    assert_eq!(report["ticket_id"], NOTE_TICKET, "{psa}");
    assert_eq!(report["related_updates"]["open_tickets_reassigned"], 1, "{psa}: ticket 9001");
    assert_eq!(report["related_updates"]["scheduled_tasks_disabled"], 0, "{psa}");
    let audit = &report["audit_trail"];
    assert_eq!(audit["initiated_by"], common::RECORDED_INITIATOR, "{psa}");
    assert_eq!(audit["rollback_available"], true, "{psa}");
    assert!(audit["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{psa}: {audit}");
    let operation_id = audit["operation_id"].as_str().expect("operation id").to_string();
    assert!(
        report["primary_contacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["contact_id"] == PRIMARY && p["preserved"] == true),
        "{psa}: {report}"
    );

    assert_eq!(sim.contact_is_active(PRIMARY), Some(true), "{psa}: --preserve-primary keeps the primary contact");
    for id in EXCLUDED {
        assert_eq!(sim.contact_is_active(id), Some(true), "{psa}: excluded contact {id}");
    }
    assert_eq!(sim.contact_is_active(5002), Some(false), "{psa}");
    assert_eq!(sim.contact_is_active(5007), Some(false), "{psa}");
    assert_eq!(sim.contact_is_active(FAILING), Some(true), "{psa}: its update failed");
    assert_eq!(sim.contact_is_active(ALREADY_INACTIVE), Some(false), "{psa}");
    assert_eq!(sim.ticket(OPEN_TICKET).unwrap().contact_id, Some(PRIMARY), "{psa}: reassigned to the primary");
    let note_ticket = sim.ticket(NOTE_TICKET.parse().unwrap()).unwrap();
    assert_eq!(note_ticket.notes.len(), before.notes + 1, "{psa}: one note on --ticket-id");
    let note = note_ticket.notes.last().unwrap();
    assert!(
        note.contains(REASON) && note.contains(&format!("offramp rollback {operation_id}")),
        "{psa}: the note says why and how to undo this operation: {note}"
    );

    // --resume finishes the failed contact once the PSA accepts it, and nothing else twice.
    sim.clear_contact_failures();
    let resumed = cli.run(&["contacts", "deactivate", "--resume", &operation_id, "--json"]).await.expect(psa, 0).json();
    assert_seed_fields(psa, &resumed);
    assert_eq!(resumed["audit_trail"]["operation_id"], operation_id.as_str(), "{psa}");
    assert_eq!(ids(&resumed["contacts_deactivated"]), LEAVING, "{psa}: {resumed}");
    assert_eq!(sim.contact_is_active(FAILING), Some(false), "{psa}");
    for id in [5002, 5007] {
        assert_eq!(sim.contact_update_count(id), 1, "{psa}: contact {id} updated again on resume");
    }
    let after_run = state(sim);
    assert_eq!(after_run.notes, before.notes + 1, "{psa}: the resume did not note the ticket again");
    if psa != "halo" {
        assert_eq!(after_run.configuration_contact, Some(PRIMARY), "{psa}: the configuration follows the primary");
    }

    // --- rollback: --dry-run shows and changes nothing; --yes restores everything ---------
    let preview = cli.run(&["rollback", &operation_id, "--dry-run", "--json"]).await.expect(psa, 0).json();
    assert_eq!(preview["dry_run"], true, "{psa}");
    let to_restore = preview["statistics"]["restored"].as_u64().unwrap();
    let related = &resumed["related_updates"];
    let changed =
        3 + related["open_tickets_reassigned"].as_u64().unwrap() + related["configurations_updated"].as_u64().unwrap();
    assert_eq!(to_restore, changed, "{psa}: every contact, ticket and configuration the run changed: {preview}");
    assert_eq!(state(sim), after_run, "{psa}: a rollback dry run changed something");

    let undo = cli.run(&["rollback", &operation_id, "--yes", "--json"]).await.expect(psa, 0).json();
    assert_eq!(undo["statistics"]["restored"], to_restore, "{psa}: {undo}");
    assert_eq!(undo["statistics"]["conflicts"], 0, "{psa}");
    let restored = state(sim);
    assert_eq!(restored.active, before.active, "{psa}: every contact as it was");
    assert_eq!(restored.ticket_contact, before.ticket_contact, "{psa}: ticket contact restored");
    assert_eq!(restored.configuration_contact, before.configuration_contact, "{psa}: configuration contact restored");

    // --- the configuration guard reads the client's own setting too ------------------------
    // (The contact run updated configuration contacts: count from here.)
    let patches = sandbox.stats().patches();
    cli.run(&["settings", "set", "250", "offramp_guard_max_configurations", "3"]).await.expect(psa, 0);
    let plan = cli.run(&["configs", "deactivate", "--client-id", "250", "--dry-run"]).await.expect(psa, 0);
    assert!(
        plan.stdout.contains("blast radius: 9 configuration(s) to deactivate, limit 3 (client) — EXCEEDED"),
        "{psa}: the plan shows the guard's figures: {}",
        plan.stdout
    );
    let stopped =
        cli.run(&["configs", "deactivate", "--client-id", "250", "--yes", "--json"]).await.expect(psa, 5).json();
    assert_eq!(stopped["status"], "blast_radius_exceeded", "{psa}");
    assert_eq!(stopped["blast_radius"]["limit_source"], "client", "{psa}");
    assert_eq!(sandbox.stats().patches(), patches, "{psa}: no configuration changed");
}

#[tokio::test]
async fn contacts_settings_and_rollback_on_connectwise() {
    scenario("connectwise").await;
}

#[tokio::test]
async fn contacts_settings_and_rollback_on_autotask() {
    scenario("autotask").await;
}

#[tokio::test]
async fn contacts_settings_and_rollback_on_halo() {
    scenario("halo").await;
}
