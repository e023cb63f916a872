//! Faults that strike a write AFTER the PSA applied it (issue 12, point 4): the connection
//! breaks or a gateway answers 504 once the change is made, per route and per id
//! (`Sandbox::fault_after_write`). On every PSA, for configuration and contact deactivation:
//! each item is written the number of times the design allows (counted in the simulator,
//! per id), the report and the audit trail say what happened, and a resume after the fault
//! opens no second ticket, writes no second note and sends no second e-mail. Also: a PSA
//! that refuses writes (403) but allows reads.

use std::collections::{BTreeMap, HashSet};

use offramp::adapters::notify_graph::{GraphMailNotifier, GraphMailSettings};
use offramp::domain::{GLOBAL_SCOPE, ItemKind, ItemOutcome, OperationDetail, PsaKind, SettingRecord};
use offramp::error::ErrorCode;
use offramp::http::HttpSettings;
use offramp::ports::{AuditStore, NoProgress, Notifier, SettingsStore};
use offramp::workflows::deactivate_configs::{DeactivateConfigsRequest, deactivate_configs};
use offramp::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};
use offramp::workflows::org_settings;
use offramp_sandbox::{
    AfterWrite, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_SENDER, GRAPH_TENANT_ID, Sandbox, SandboxConfig,
};
use offramp_tests::psa::{ALL, PsaHarness, client_with, http_settings, sim};

/// The parity client: configurations 27001–27003 active; contacts 7001–7003 active.
const CLIENT: &str = "270";
const CONFIGS: [i64; 3] = [27001, 27002, 27003];
const REQUESTER: &str = "admin@msp.example";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

/// The write route of one configuration or contact update: `(method, path fragment)`.
fn config_route(kind: PsaKind) -> (&'static str, &'static str) {
    match kind {
        PsaKind::ConnectWise => ("PATCH", "/company/configurations/"),
        PsaKind::Autotask => ("PATCH", "/ConfigurationItems"),
        PsaKind::Halo => ("POST", "/api/asset"),
    }
}

fn contact_route(kind: PsaKind) -> (&'static str, &'static str) {
    match kind {
        PsaKind::ConnectWise => ("PATCH", "/company/contacts/"),
        PsaKind::Autotask => ("PATCH", "/contacts"),
        PsaKind::Halo => ("POST", "/api/users"),
    }
}

fn ticket_create_route(kind: PsaKind) -> (&'static str, &'static str) {
    match kind {
        PsaKind::ConnectWise => ("POST", "/service/tickets"),
        // Not `/Tickets/query` (a read, also a POST without an id).
        PsaKind::Autotask => ("POST", "/tickets$"),
        PsaKind::Halo => ("POST", "/api/tickets"),
    }
}

fn note_route(kind: PsaKind) -> (&'static str, &'static str) {
    match kind {
        PsaKind::ConnectWise => ("POST", "/notes"),
        PsaKind::Autotask => ("POST", "/notes"),
        PsaKind::Halo => ("POST", "/api/actions"),
    }
}

fn ms(millis: u64) -> std::time::Duration {
    std::time::Duration::from_millis(millis)
}

fn config_request() -> DeactivateConfigsRequest {
    DeactivateConfigsRequest {
        client_id: Some(CLIENT.into()),
        initiated_by: Some(REQUESTER.into()),
        ..DeactivateConfigsRequest::default()
    }
}

fn resume_configs(operation_id: &str) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest { operation_id: Some(operation_id.into()), ..DeactivateConfigsRequest::default() }
}

/// Outcomes the trail recorded per item of `kind`, oldest first.
fn recorded(detail: &OperationDetail, kind: ItemKind) -> BTreeMap<String, Vec<ItemOutcome>> {
    let mut out: BTreeMap<String, Vec<ItemOutcome>> = BTreeMap::new();
    for change in detail.changes.iter().filter(|c| c.item_type == kind) {
        out.entry(change.item_id.clone()).or_default().push(change.outcome);
    }
    out
}

async fn trail(h: &PsaHarness, operation_id: &str) -> OperationDetail {
    h.audit.operation(operation_id).await.expect("trail readable").expect("operation recorded")
}

/// 27001's update is applied and its connection breaks; 27003's is applied and answered
/// 504. Every PSA reads the records back after a lost answer and does not send an applied
/// write again (HaloPSA, which sends the three in one batch, reads back each asset of the
/// lost batch: docs/vendors/README.md#lost-answers), so every item is written exactly once.
/// The report and the trail say "deactivated" once per item, and a resume writes nothing.
#[tokio::test]
async fn configuration_updates_applied_then_lost_are_written_once_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = PsaHarness::new(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let (method, route) = config_route(kind);
        sandbox.fault_after_write(method, route, Some(27001), AfterWrite::Drop, 1);
        sandbox.fault_after_write(method, route, Some(27003), AfterWrite::Status(504), 1);

        let report = deactivate_configs(&h.deps(), config_request()).await;
        assert!(report.success, "{kind}: {:?}", report.errors);
        // HaloPSA sends the three in one batch: 27001's fault strikes it, and 27003's would
        // strike only a second send of an applied asset, which must not happen.
        let struck = if kind == PsaKind::Halo { 1 } else { 2 };
        assert_eq!(sandbox.after_write_faults_struck(), struck, "{kind}: faults struck after the write");
        assert_eq!(report.statistics.configs_deactivated, 3, "{kind}");
        let expected = vec![1, 1, 1];
        let counts: Vec<usize> = CONFIGS.iter().map(|id| sim.update_count(*id)).collect();
        assert_eq!(counts, expected, "{kind}: writes per configuration");
        assert!(CONFIGS.iter().all(|id| sim.configuration_is_active(*id) == Some(false)), "{kind}");

        let op = report.operation_id.clone().expect("operation id");
        let changes = recorded(&trail(&h, &op).await, ItemKind::Configuration);
        for id in CONFIGS {
            // Its intent (write-ahead), then one change record, whatever the retries.
            let once = vec![ItemOutcome::Intended, ItemOutcome::Changed];
            assert_eq!(changes.get(&id.to_string()), Some(&once), "{kind}: trail of {id}");
        }

        let resumed = deactivate_configs(&h.deps(), resume_configs(&op)).await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        let after: Vec<usize> = CONFIGS.iter().map(|id| sim.update_count(*id)).collect();
        assert_eq!(after, expected, "{kind}: the resume wrote nothing");
        assert_eq!(recorded(&trail(&h, &op).await, ItemKind::Configuration), changes, "{kind}: nothing new claimed");
    }
}

/// Writes refused with 403 while reads work: each item is reported failed with the PSA's
/// refusal, nothing is written, the trail records each failure, and nothing is claimed.
#[tokio::test]
async fn a_psa_that_refuses_writes_only_fails_each_item_truthfully_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = PsaHarness::new(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let (method, route) = config_route(kind);
        sandbox.fail_route(method, route, 403);

        let report = deactivate_configs(&h.deps(), config_request()).await;
        assert!(!report.success, "{kind}");
        assert_eq!(report.statistics.configs_found, 4, "{kind}: the reads worked");
        assert_eq!(report.statistics.configs_deactivated, 0, "{kind}");
        assert!(CONFIGS.iter().all(|id| sim.update_count(*id) == 0), "{kind}: nothing reached a configuration");
        assert!(CONFIGS.iter().all(|id| sim.configuration_is_active(*id) == Some(true)), "{kind}");
        let codes: HashSet<ErrorCode> = report.errors.iter().map(|e| e.code).collect();
        assert_eq!(codes, HashSet::from([ErrorCode::PermissionDenied]), "{kind}: {:?}", report.errors);
        assert_eq!(report.errors.len(), 3, "{kind}: one error per configuration: {:?}", report.errors);
        assert!(report.configs.iter().all(|c| c.status != "inactive" || c.previous_status == "inactive"), "{kind}");

        let op = report.operation_id.clone().expect("operation id");
        let changes = recorded(&trail(&h, &op).await, ItemKind::Configuration);
        for id in CONFIGS {
            let outcomes = changes.get(&id.to_string()).cloned().unwrap_or_default();
            assert!(!outcomes.contains(&ItemOutcome::Changed), "{kind}: {id} claimed as changed: {outcomes:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Contacts: the contact updates, the summary ticket, its note and the e-mail.
// ---------------------------------------------------------------------------

fn graph(sandbox: &Sandbox) -> GraphMailNotifier {
    let settings = GraphMailSettings {
        authority_url: sandbox.entra_url(),
        graph_url: sandbox.graph_url(),
        ..GraphMailSettings::new(GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET.into(), GRAPH_SENDER)
    };
    let http = HttpSettings {
        base_backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_millis(200),
        ..HttpSettings::default()
    };
    GraphMailNotifier::new(settings, http).expect("Graph notifier")
}

fn contact_deps<'a>(h: &'a PsaHarness, notifier: &'a dyn Notifier) -> ContactDeps<'a> {
    ContactDeps {
        psa: h.psa.as_ref(),
        audit: h.audit.as_ref(),
        settings: h.audit.as_ref(),
        notifier: Some(notifier),
        progress: &NoProgress,
        concurrency: 8,
        requester_domains: vec!["msp.example".into()],
        deadline: offramp::operation::Deadline::none(),
    }
}

fn contact_request() -> DeactivateContactsRequest {
    DeactivateContactsRequest {
        company_id: Some(CLIENT.into()),
        confirmation: true,
        initiated_by: Some(REQUESTER.into()),
        ..DeactivateContactsRequest::default()
    }
}

fn resume_contacts(report: &ContactDeactivationReport) -> DeactivateContactsRequest {
    DeactivateContactsRequest {
        operation_id: report.audit_trail.operation_id.clone(),
        ..DeactivateContactsRequest::default()
    }
}

async fn set_board(h: &PsaHarness, kind: PsaKind) {
    let board = if kind == PsaKind::Halo { "Offboarding" } else { "4" };
    let value = org_settings::validate(org_settings::TICKET_BOARD, board).expect("valid setting");
    h.audit
        .put_setting(&SettingRecord {
            psa: kind.as_str().into(),
            scope: GLOBAL_SCOPE.into(),
            key: org_settings::TICKET_BOARD.into(),
            value: Some(value),
            set_by: "test".into(),
            set_at: offramp::domain::now(),
        })
        .await
        .expect("setting");
}

/// Tickets of the client the run opened (not in `before`), with their summary notes.
fn new_tickets(sandbox: &Sandbox, kind: PsaKind, before: &HashSet<i64>) -> Vec<(i64, Vec<String>)> {
    let sim = sim(sandbox, kind);
    sim.ticket_ids_of(270)
        .into_iter()
        .filter(|id| !before.contains(id))
        .map(|id| {
            let notes = sim.ticket(id).expect("ticket").notes;
            (id, notes.into_iter().filter(|n| n.contains("Bulk contact deactivation for")).collect())
        })
        .collect()
}

/// The contact 7001's update and the creation of the summary ticket are applied and their
/// answers lost. The contact is written once (read back, not sent again); the ticket is
/// not created again: the run finds the ticket it opened (its summary names the operation)
/// and writes the note there. One ticket, one note, one e-mail; a resume adds nothing.
#[tokio::test]
async fn a_lost_ticket_creation_is_not_repeated_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = PsaHarness::new(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        set_board(&h, kind).await;
        let mail = graph(&sandbox);
        let before: HashSet<i64> = sim.ticket_ids_of(270).into_iter().collect();
        let (method, route) = contact_route(kind);
        sandbox.fault_after_write(method, route, Some(7001), AfterWrite::Drop, 1);
        let (method, route) = ticket_create_route(kind);
        sandbox.fault_after_create(method, route, AfterWrite::Drop, 1);

        let report = deactivate_contacts(&contact_deps(&h, &mail), contact_request()).await;
        assert_eq!(sandbox.after_write_faults_struck(), 2, "{kind}: both faults struck after the write");
        assert!(report.success, "{kind}: {:?}", report.errors);
        assert_eq!(report.deactivation_summary.contacts_deactivated, 3, "{kind}");
        for id in [7001, 7002, 7003] {
            assert_eq!(sim.contact_is_active(id), Some(false), "{kind}: {id}");
        }
        // Every PSA reads the contact back instead of writing it again
        // (docs/vendors/README.md#lost-answers).
        let lost_write_count = 1;
        assert_eq!(sim.contact_update_count(7001), lost_write_count, "{kind}: applied, answer lost");
        assert_eq!(sim.contact_update_count(7002), 1, "{kind}");
        let tickets = new_tickets(&sandbox, kind, &before);
        assert_eq!(tickets.len(), 1, "{kind}: one ticket: {tickets:?}");
        assert_eq!(report.ticket_id.as_deref(), Some(tickets[0].0.to_string().as_str()), "{kind}");
        assert_eq!(tickets[0].1.len(), 1, "{kind}: one summary note: {:?}", tickets[0].1);
        assert!(report.warnings.iter().any(|w| w.contains("was found and used")), "{kind}: {:?}", report.warnings);
        assert_eq!(sandbox.sent_mail().len(), 1, "{kind}: one e-mail");
        let op = report.audit_trail.operation_id.clone().expect("operation id");
        let detail = trail(&h, &op).await;
        let opened = recorded(&detail, ItemKind::SummaryTicket);
        assert_eq!(opened.get(&tickets[0].0.to_string()), Some(&vec![ItemOutcome::Changed]), "{kind}: {opened:?}");
        let contacts = recorded(&detail, ItemKind::Contact);
        for id in ["7001", "7002", "7003"] {
            let once = vec![ItemOutcome::Intended, ItemOutcome::Changed];
            assert_eq!(contacts.get(id), Some(&once), "{kind}: trail of contact {id}");
        }

        let resumed = deactivate_contacts(&contact_deps(&h, &mail), resume_contacts(&report)).await;
        assert_eq!(resumed.errors.first().map(|e| e.code), Some(ErrorCode::OperationNotResumable), "{kind}");
        assert_eq!(new_tickets(&sandbox, kind, &before), tickets, "{kind}: the resume added nothing");
        assert_eq!(sandbox.sent_mail().len(), 1, "{kind}: one e-mail in all");
        assert_eq!(sim.contact_update_count(7001), lost_write_count, "{kind}: the resume wrote 7001 again");
    }
}

/// The summary ticket is created, its answer is lost and the PSA is down for a while, so
/// the run cannot look for it: the run reports that it could not open the ticket. The
/// resume (with no record of a ticket) looks for the one it may have opened, finds it by
/// its operation-named title and writes the note there: one ticket, one note.
#[tokio::test]
async fn a_resume_finds_the_ticket_a_lost_creation_opened_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let mut http = http_settings(kind);
        (http.max_retries, http.base_backoff, http.max_backoff) = (3, ms(5), ms(20));
        let h = PsaHarness::with_client(kind, client_with(&sandbox, kind, http));
        let sim = sim(&sandbox, kind);
        set_board(&h, kind).await;
        let mail = graph(&sandbox);
        let before: HashSet<i64> = sim.ticket_ids_of(270).into_iter().collect();
        let (method, route) = ticket_create_route(kind);
        // More 503s than the HTTP layer's attempts (1 + 3) at the search for the ticket.
        sandbox.fault_after_create(method, route, AfterWrite::DropThenOutage(5), 1);

        let report = deactivate_contacts(&contact_deps(&h, &mail), contact_request()).await;
        assert_eq!(sandbox.after_write_faults_struck(), 1, "{kind}");
        assert!(!report.success, "{kind}");
        assert!(
            report.errors.iter().any(|e| e.message.contains("Unable to open a PSA ticket")),
            "{kind}: {:?}",
            report.errors
        );
        let tickets = new_tickets(&sandbox, kind, &before);
        assert_eq!(tickets.len(), 1, "{kind}: the ticket exists, the run could not know it");
        assert!(tickets[0].1.is_empty(), "{kind}: no note yet");

        let resumed = deactivate_contacts(&contact_deps(&h, &mail), resume_contacts(&report)).await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        let after = new_tickets(&sandbox, kind, &before);
        assert_eq!(after.len(), 1, "{kind}: the resume opened a second ticket: {after:?}");
        assert_eq!(after[0].1.len(), 1, "{kind}: one summary note: {:?}", after[0].1);
        assert_eq!(resumed.ticket_id.as_deref(), Some(after[0].0.to_string().as_str()), "{kind}");
        for id in [7001, 7002, 7003] {
            assert_eq!(sim.contact_update_count(id), 1, "{kind}: contact {id}");
        }
    }
}

/// The summary note and the e-mail are accepted and their answers lost (a broken
/// connection, a 504). Neither is sent twice, by the run or by a resume, and the report
/// says their outcome is unknown instead of claiming they failed or succeeded.
#[tokio::test]
async fn a_lost_note_or_e_mail_is_never_sent_twice_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = PsaHarness::new(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        set_board(&h, kind).await;
        let mail = graph(&sandbox);
        let before: HashSet<i64> = sim.ticket_ids_of(270).into_iter().collect();
        let (method, route) = note_route(kind);
        sandbox.fault_after_write(method, route, None, AfterWrite::Drop, 1);
        sandbox.fault_after_write("POST", "/sendmail", None, AfterWrite::Status(504), 1);

        let report = deactivate_contacts(&contact_deps(&h, &mail), contact_request()).await;
        assert_eq!(sandbox.after_write_faults_struck(), 2, "{kind}: both faults struck after the write");
        assert_eq!(report.deactivation_summary.contacts_deactivated, 3, "{kind}: {:?}", report.errors);
        let tickets = new_tickets(&sandbox, kind, &before);
        assert_eq!(tickets.len(), 1, "{kind}");
        assert_eq!(tickets[0].1.len(), 1, "{kind}: the note was written once: {:?}", tickets[0].1);
        assert_eq!(sandbox.sent_mail().len(), 1, "{kind}: the e-mail was sent once");

        let _resumed = deactivate_contacts(&contact_deps(&h, &mail), resume_contacts(&report)).await;
        let tickets = new_tickets(&sandbox, kind, &before);
        assert_eq!(tickets.len(), 1, "{kind}: no second ticket");
        assert_eq!(tickets[0].1.len(), 1, "{kind}: no second note: {:?}", tickets[0].1);
        assert_eq!(sandbox.sent_mail().len(), 1, "{kind}: no second e-mail");
        for id in [7001, 7002, 7003] {
            assert_eq!(sim.contact_update_count(id), 1, "{kind}: contact {id}");
        }
        let warnings = report.warnings.iter().filter(|w| w.contains("outcome of the")).count();
        assert_eq!(warnings, 2, "{kind}: the report says both outcomes are unknown: {:?}", report.warnings);
        assert!(report.errors.is_empty(), "{kind}: nothing claimed failed: {:?}", report.errors);
    }
}
