//! Workflow 001 (docs/workflows.md#001-contact-deactivation) on all three PSAs through the real
//! clients and the sandbox: exclusions, primary preservation, confirmation, already-inactive
//! contacts, a failing contact, related records, the ticket note, the notification, the
//! blast-radius guard, rollback (restore, conflict, idempotence) and a crash mid-run followed by a
//! resume.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use offramp::adapters::notify_graph::{GraphMailNotifier, GraphMailSettings};
use offramp::adapters::notify_webhook::{WebhookNotifier, WebhookSettings};
use offramp::domain::{GLOBAL_SCOPE, ItemChange, ItemKind, ItemOutcome, OperationEventKind, PsaKind, SettingRecord};
use offramp::error::ErrorCode;
use offramp::http::HttpSettings;
use offramp::ports::{AuditStore, NoProgress, Notifier, SettingsStore};
use offramp::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};
use offramp::workflows::org_settings;
use offramp::workflows::rollback::{RollbackAction, RollbackDeps, RollbackRequest, rollback};
use offramp_sandbox::{
    GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_SENDER, GRAPH_TENANT_ID, PsaSim, Sandbox, SandboxConfig,
};
use offramp_tests::faulty_audit::FaultyAudit;
use offramp_tests::psa::{ALL, PsaHarness, client_with, http_settings, sim};
use serde_json::Value;

const DEMO: &str = "250";
const REQUESTER: &str = "admin@msp.example";
const MANAGER: &str = "service.manager@msp.example";

async fn sandbox() -> Sandbox {
    // No HaloPSA window here: these tests count requests of their own, not the vendor's limit.
    Sandbox::start(SandboxConfig { large_client_configs: 0, halo_rate_limit: None, ..SandboxConfig::default() })
        .await
        .expect("sandbox")
}

fn harness(sandbox: &Sandbox, kind: PsaKind) -> PsaHarness {
    let mut http = http_settings(kind);
    if kind == PsaKind::Halo {
        http.budget = None;
    }
    PsaHarness::with_client(kind, client_with(sandbox, kind, http))
}

fn webhook(sandbox: &Sandbox) -> WebhookNotifier {
    WebhookNotifier::new(WebhookSettings { url: sandbox.webhook_url().into() }, HttpSettings::default()).unwrap()
}

fn deps<'a>(h: &'a PsaHarness, notifier: Option<&'a dyn Notifier>) -> ContactDeps<'a> {
    ContactDeps {
        psa: h.psa.as_ref(),
        audit: h.audit.as_ref(),
        settings: h.audit.as_ref(),
        notifier,
        progress: &NoProgress,
        concurrency: 8,
        requester_domains: vec!["msp.example".into()],
        deadline: offramp::operation::Deadline::none(),
    }
}

fn request(company: &str) -> DeactivateContactsRequest {
    DeactivateContactsRequest {
        company_id: Some(company.into()),
        exclude_contacts: vec!["5003".into()],
        preserve_primary: Some(true),
        reason: Some("Client contract terminated".into()),
        confirmation: true,
        ticket_id: Some("9010".into()),
        initiated_by: Some(REQUESTER.into()),
        ..DeactivateContactsRequest::default()
    }
}

async fn set(store: &dyn SettingsStore, kind: PsaKind, scope: &str, key: &str, value: &str) {
    let value = org_settings::validate(key, value).expect("valid setting");
    store
        .put_setting(&SettingRecord {
            psa: kind.as_str().into(),
            scope: scope.into(),
            key: key.into(),
            value: Some(value),
            set_by: "test".into(),
            set_at: offramp::domain::now(),
        })
        .await
        .expect("setting");
}

/// The seed's top-level fields, exactly, plus Offramp's documented additions.
fn assert_seed_shape(report: &ContactDeactivationReport) {
    let value = serde_json::to_value(report).unwrap();
    let seed = [
        "success",
        "deactivation_summary",
        "contacts_deactivated",
        "contacts_excluded",
        "related_updates",
        "audit_trail",
        "ticket_id",
    ];
    let extras = [
        "status",
        "dry_run",
        "primary_contacts",
        "reassignment",
        "blast_radius",
        "notification",
        "plan_hash",
        "warnings",
        "errors",
    ];
    for key in value.as_object().unwrap().keys() {
        assert!(seed.contains(&key.as_str()) || extras.contains(&key.as_str()), "unexpected field {key}");
    }
    for key in seed {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    let summary: HashSet<&str> =
        value["deactivation_summary"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        summary,
        HashSet::from([
            "company_id",
            "company_name",
            "total_contacts_found",
            "contacts_deactivated",
            "contacts_excluded",
            "contacts_already_inactive",
            "deactivation_timestamp",
            "reason"
        ])
    );
    let related: HashSet<&str> = value["related_updates"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        related,
        HashSet::from(["open_tickets_reassigned", "configurations_updated", "scheduled_tasks_disabled"])
    );
    let audit: HashSet<&str> = value["audit_trail"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(audit, HashSet::from(["operation_id", "initiated_by", "timestamp", "rollback_available"]));
    for contact in value["contacts_deactivated"].as_array().unwrap() {
        let keys: HashSet<&str> = contact.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["contact_id", "name", "email", "title", "previous_status", "new_status"]));
        assert!(contact["contact_id"].is_number(), "numeric ids stay numbers as in the seed");
    }
}

fn ids(report: &ContactDeactivationReport) -> Vec<i64> {
    report.contacts_deactivated.iter().map(|c| c.contact_id.as_i64().unwrap()).collect()
}

/// The full scenario on each PSA: plan, confirmation missing, the run, the note, the
/// notification, related records; then rollback (restore, idempotent second run).
#[tokio::test]
async fn contacts_are_deactivated_with_related_records_note_and_notification_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let hook = webhook(&sandbox);
        let deps = deps(&h, Some(&hook));
        set(h.audit.as_ref(), kind, GLOBAL_SCOPE, org_settings::NOTIFICATION_RECIPIENTS, MANAGER).await;
        // Per-client setting: the reassigned tickets go to the service desk (Autotask needs the role).
        set(h.audit.as_ref(), kind, DEMO, org_settings::TICKET_OWNER, "12:8").await;

        // Without confirmation: the plan, nothing changed, recorded as a dry run.
        let unconfirmed =
            deactivate_contacts(&deps, DeactivateContactsRequest { confirmation: false, ..request(DEMO) }).await;
        assert_seed_shape(&unconfirmed);
        assert!(!unconfirmed.success, "{kind}");
        assert_eq!(unconfirmed.status.as_deref(), Some("confirmation_required"), "{kind}: {:?}", unconfirmed.errors);
        assert_eq!(unconfirmed.errors[0].code, ErrorCode::ConfirmationRequired);
        assert_eq!(ids(&unconfirmed), [5002, 5004, 5005, 5007], "{kind}: the plan");
        assert!(sim.contact_is_active(5002).unwrap(), "{kind}: nothing changed");
        // A real attempt the gate refused: kept like every real run, with a `refused` event.
        let op = h.audit.operation(unconfirmed.audit_trail.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert!(!op.operation.dry_run && op.changes.is_empty() && op.snapshots.is_empty(), "{kind}");
        let refused: Vec<_> = op.events.iter().filter(|e| e.kind == OperationEventKind::Refused).collect();
        assert_eq!(refused.len(), 1, "{kind}: {:?}", op.events);
        assert_eq!(refused[0].detail["status"], "confirmation_required", "{kind}");
        assert_eq!(refused[0].detail["plan_hash"].as_str(), unconfirmed.plan_hash.as_deref(), "{kind}");
        assert!(op.events.iter().all(|e| e.kind != OperationEventKind::Started), "{kind}: never started");

        let report = deactivate_contacts(&deps, request(DEMO)).await;
        assert_seed_shape(&report);
        assert!(report.success, "{kind}: {:?}", report.errors);
        let s = &report.deactivation_summary;
        assert_eq!(
            (s.total_contacts_found, s.contacts_deactivated, s.contacts_excluded, s.contacts_already_inactive),
            (7, 4, 2, 1),
            "{kind}"
        );
        assert_eq!(ids(&report), [5002, 5004, 5005, 5007]);
        let bob = &report.contacts_deactivated[0];
        assert_eq!((bob.name.as_str(), bob.title.as_deref()), ("Bob Wilson", Some("IT Manager")), "{kind}");
        assert_eq!(bob.email.as_deref(), Some("bob.wilson@contosodental.example"));
        assert_eq!((bob.previous_status.as_str(), bob.new_status.as_str()), ("Active", "Inactive"));
        let excluded: Vec<(i64, &str)> =
            report.contacts_excluded.iter().map(|e| (e.contact_id.as_i64().unwrap(), e.reason.as_str())).collect();
        assert_eq!(excluded[1], (5003, "Explicitly excluded"), "{kind}");
        assert_eq!(excluded[0].0, 5001);
        assert!(excluded[0].1.starts_with("Primary contact preserved ("), "{kind}: {}", excluded[0].1);
        // The report says which signal decided.
        let primary = &report.primary_contacts[0];
        assert_eq!(primary.contact_id, 5001);
        assert!(primary.preserved && !primary.signals.is_empty(), "{kind}: {primary:?}");
        // And which contact the related records went to, and why.
        let reassignment = report.reassignment.clone().expect("reassignment");
        let to = reassignment.ticket_contact.expect("tickets get the primary");
        assert_eq!((to.contact_id, to.name.as_deref()), (serde_json::json!(5001), Some("Jane Doe")), "{kind}");
        assert!(to.chosen_by.starts_with("primary contact ("), "{kind}: {}", to.chosen_by);
        assert_eq!(
            reassignment.configuration_contact.map(|c| c.contact_id),
            (kind != PsaKind::Halo).then(|| serde_json::json!(5001)),
            "{kind}"
        );
        for id in [5002, 5004, 5005, 5007] {
            assert_eq!(sim.contact_is_active(id), Some(false), "{kind}: {id}");
        }
        for id in [5001, 5003] {
            assert_eq!(sim.contact_is_active(id), Some(true), "{kind}: {id} stays");
        }

        // Related records: the open tickets of leaving contacts, and (where the PSA has a
        // contact on configurations) their configurations.
        assert_eq!(report.related_updates.open_tickets_reassigned, 2, "{kind}");
        for id in [9001, 9002] {
            let ticket = sim.ticket(id).unwrap();
            assert_eq!((ticket.contact_id, ticket.owner_id), (Some(5001), Some(12)), "{kind}: ticket {id}");
        }
        assert_eq!(sim.ticket(9004).unwrap().contact_id, Some(5002), "{kind}: closed tickets are left alone");
        assert_eq!(sim.ticket(9005).unwrap().contact_id, Some(5003), "{kind}: the excluded contact keeps its ticket");
        if kind == PsaKind::Halo {
            assert_eq!(report.related_updates.configurations_updated, 0);
            assert!(
                report.warnings.iter().any(|w| w.contains("configurations have no contact field")),
                "{:?}",
                report.warnings
            );
        } else {
            assert_eq!(report.related_updates.configurations_updated, 3, "{kind}");
            for id in [25001, 25002, 25010] {
                assert_eq!(sim.configuration_contact(id), Some(5001), "{kind}: configuration {id}");
            }
            assert_eq!(sim.configuration_contact(25003), Some(5001), "{kind}: the primary's own stays");
        }
        assert_eq!(report.related_updates.scheduled_tasks_disabled, 0);

        // The note on the given ticket, readable by a person.
        assert_eq!(report.ticket_id.as_deref(), Some("9010"));
        let notes = sim.ticket(9010).unwrap().notes;
        assert_eq!(notes.len(), 1, "{kind}");
        let operation_id = report.audit_trail.operation_id.clone().unwrap();
        for expected in [
            "Contoso Dental",
            REQUESTER,
            "Contacts deactivated: 4",
            "Bob Wilson",
            "Client contract terminated",
            &format!("offramp rollback {operation_id}"),
        ] {
            assert!(notes[0].contains(expected), "{kind}: note lacks {expected:?}:\n{}", notes[0]);
        }
        // The notification, to the requester and the configured recipient.
        let posts = sandbox.webhook_posts();
        assert_eq!(posts.len(), 1, "{kind}");
        let recipients: Vec<&str> =
            posts[0]["recipients"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(recipients, [REQUESTER, MANAGER]);
        assert!(posts[0]["text"].as_str().unwrap().contains("Contacts deactivated: 4"));
        assert!(report.notification.as_ref().is_some_and(|n| n.sent && n.channel == "webhook"));
        assert!(report.audit_trail.rollback_available);

        // The settings used are recorded with the operation.
        let detail = h.audit.operation(&operation_id).await.unwrap().unwrap();
        assert_eq!(detail.operation.input["settings"]["sources"][org_settings::TICKET_OWNER], "client");
        assert_eq!(detail.operation.input["settings"]["sources"][org_settings::NOTIFICATION_RECIPIENTS], "global");

        // Rollback: everything back, newest change first; a second rollback changes nothing.
        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let preview = rollback(
            &rdeps,
            RollbackRequest { operation_id: operation_id.clone(), dry_run: true, ..Default::default() },
        )
        .await;
        let expected_items = if kind == PsaKind::Halo { 6 } else { 9 };
        assert_eq!(
            (preview.statistics.items, preview.statistics.restored),
            (expected_items, expected_items),
            "{kind}: {:?}",
            preview.items
        );
        assert!(!sim.contact_is_active(5002).unwrap(), "{kind}: a dry run restores nothing");
        let undo = rollback(&rdeps, RollbackRequest { operation_id: operation_id.clone(), ..Default::default() }).await;
        assert!(undo.success, "{kind}: {:?}", undo.errors);
        assert_eq!(undo.statistics.restored, expected_items);
        assert_eq!(undo.items.last().unwrap().item_type, "contact", "{kind}: contacts go back last");
        let undo_id = undo.operation_id.clone().unwrap();
        let undo_op = h.audit.operation(&undo_id).await.unwrap().unwrap().operation;
        assert_eq!(
            (undo_op.workflow.as_str(), undo_op.parent_operation_id.as_deref()),
            ("rollback", Some(operation_id.as_str())),
            "{kind}: the rollback is linked to its original"
        );
        for id in [5002, 5004, 5005, 5007] {
            assert_eq!(sim.contact_is_active(id), Some(true), "{kind}: {id} restored");
        }
        assert_eq!(sim.contact_is_active(5006), Some(false), "{kind}: the already-inactive one stays inactive");
        let t = sim.ticket(9001).unwrap();
        assert_eq!((t.contact_id, t.owner_id), (Some(5002), Some(11)), "{kind}");
        if kind != PsaKind::Halo {
            assert_eq!(sim.configuration_contact(25002), Some(5004), "{kind}");
        }
        // The operation is rolled back: a second rollback (or its preview) is refused, naming
        // the first, and changes nothing.
        for dry_run in [false, true] {
            let again =
                rollback(&rdeps, RollbackRequest { operation_id: operation_id.clone(), dry_run, ..Default::default() })
                    .await;
            assert!(!again.success, "{kind}");
            assert_eq!(again.errors[0].code, ErrorCode::RollbackRefused, "{kind}: {:?}", again.errors);
            assert!(again.errors[0].message.contains(&undo_id), "{kind}: {}", again.errors[0].message);
            assert_eq!((again.operation_id.as_deref(), again.statistics.items), (None, 0), "{kind}");
        }
        assert_eq!(sim.contact_update_count(5002), 2, "{kind}: once off, once back on, never again");
        // A rollback cannot itself be rolled back, nor can a plan.
        let refused = rollback(
            &rdeps,
            RollbackRequest { operation_id: undo.operation_id.clone().unwrap(), ..Default::default() },
        )
        .await;
        assert_eq!(refused.errors[0].code, ErrorCode::RollbackRefused);
        let refused = rollback(
            &rdeps,
            RollbackRequest {
                operation_id: unconfirmed.audit_trail.operation_id.clone().unwrap(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(refused.errors[0].code, ErrorCode::RollbackRefused, "{kind}: a plan changed nothing");
    }
}

/// A contact whose update fails is reported; the rest go on; its tickets and
/// configurations are left to it (it is still active). A rollback leaves an item changed
/// in between alone and reports the conflict.
#[tokio::test]
async fn a_failing_contact_and_a_rollback_conflict_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        sim.fail_contact_update(5004, "Contact is locked by a workflow rule");
        let deps = deps(&h, None);
        let report = deactivate_contacts(&deps, request(DEMO)).await;
        assert!(!report.success, "{kind}");
        assert_eq!(ids(&report), [5002, 5005, 5007], "{kind}");
        let failure = report.errors.iter().find(|e| e.code == ErrorCode::ContactUpdateFailed).expect("contact failure");
        assert_eq!(failure.item_id.as_deref(), Some("5004"));
        assert!(failure.message.contains("locked by a workflow rule"), "{kind}: {}", failure.message);
        assert_eq!(report.related_updates.open_tickets_reassigned, 1, "{kind}: only 9001");
        assert_eq!(sim.ticket(9002).unwrap().contact_id, Some(5004), "{kind}: the failed contact keeps its ticket");
        assert!(report.warnings.iter().any(|w| w.contains("nobody was notified")), "{:?}", report.warnings);
        let note = &sim.ticket(9010).unwrap().notes[0];
        assert!(
            note.contains("NOT deactivated") && note.contains("5004"),
            "{kind}: the note says what failed:\n{note}"
        );

        // Someone changes ticket 9001 in between: the rollback leaves it alone.
        sim.set_ticket_contact(9001, Some(5007));
        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let operation_id = report.audit_trail.operation_id.clone().unwrap();
        let undo = rollback(&rdeps, RollbackRequest { operation_id, ..Default::default() }).await;
        let conflict = undo.items.iter().find(|i| i.item_type == "ticket").unwrap();
        assert_eq!(conflict.action, RollbackAction::Conflict, "{kind}: {conflict:?}");
        assert_eq!(undo.statistics.conflicts, 1);
        assert_eq!(sim.ticket(9001).unwrap().contact_id, Some(5007), "{kind}: never overwritten");
        assert_eq!(sim.contact_is_active(5002), Some(true), "{kind}: the rest is restored");
    }
}

/// Without a ticket id a new ticket is opened on the configured board; the notification
/// goes out as mail through Graph.
#[tokio::test]
async fn a_new_ticket_is_opened_and_mail_is_sent_through_graph() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let board = if kind == PsaKind::Halo { "Offboarding" } else { "4" };
        set(h.audit.as_ref(), kind, GLOBAL_SCOPE, org_settings::TICKET_BOARD, board).await;
        let graph = GraphMailNotifier::new(
            GraphMailSettings {
                authority_url: sandbox.entra_url(),
                graph_url: sandbox.graph_url(),
                ..GraphMailSettings::new(GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET.into(), GRAPH_SENDER)
            },
            HttpSettings::default(),
        )
        .unwrap();
        let deps = deps(&h, Some(&graph));
        let before: HashSet<i64> = sim.ticket_ids_of(270).into_iter().collect();
        let report = deactivate_contacts(
            &deps,
            DeactivateContactsRequest {
                company_id: Some("270".into()),
                confirmation: true,
                initiated_by: Some(REQUESTER.into()),
                ..DeactivateContactsRequest::default()
            },
        )
        .await;
        assert!(report.success, "{kind}: {:?}", report.errors);
        assert_eq!(ids(&report), [7001, 7002, 7003], "{kind}: primary not preserved by default");
        let new_ticket: i64 = report.ticket_id.as_deref().unwrap().parse().unwrap();
        assert!(!before.contains(&new_ticket));
        let created = sim.ticket(new_ticket).unwrap();
        assert_eq!((created.company_id, created.board_id), (270, Some(4)), "{kind}");
        assert!(created.notes.iter().any(|n| n.contains("Contacts deactivated: 3")), "{kind}: {:?}", created.notes);
        // With the primary gone too, tickets lose their contact rather than point at an inactive one.
        assert_eq!(sim.ticket(9701).unwrap().contact_id, None, "{kind}");
        let mail = sandbox.sent_mail();
        assert_eq!(mail.len(), 1, "{kind}");
        assert_eq!(mail[0]["message"]["toRecipients"][0]["emailAddress"]["address"], REQUESTER);
        assert!(mail[0]["message"]["subject"].as_str().unwrap().contains("Parity Clinic"));
    }
}

/// A run over the blast-radius guard stops with its plan; with the override it runs; it
/// is interrupted half-way (the process dies) and resumed by operation id: every contact
/// is deactivated exactly once, and the note and notification of the resumed run count
/// the whole operation, the part done before the interruption included.
#[tokio::test]
async fn the_guard_stops_large_runs_and_an_interrupted_run_resumes_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let hook = webhook(&sandbox);
        let deps = deps(&h, Some(&hook));
        let large = DeactivateContactsRequest {
            company_id: Some("300".into()),
            confirmation: true,
            initiated_by: Some(REQUESTER.into()),
            ..DeactivateContactsRequest::default()
        };
        let stopped = deactivate_contacts(&deps, large.clone()).await;
        assert_eq!(stopped.status.as_deref(), Some("blast_radius_exceeded"), "{kind}");
        assert_eq!(stopped.errors[0].code, ErrorCode::BlastRadiusExceeded);
        let guard = stopped.blast_radius.clone().unwrap();
        assert_eq!((guard.contacts_to_deactivate, guard.company_contacts, guard.max_contacts), (250, 250, 200));
        let contact_ids = sim.contact_ids_of(300);
        assert_eq!(contact_ids.len(), 250);
        assert!(contact_ids.iter().all(|id| sim.contact_update_count(*id) == 0), "{kind}: nothing changed");

        sandbox.set_latency(Duration::from_millis(5));
        let overridden = DeactivateContactsRequest { override_blast_radius: true, ..large };
        let run = deactivate_contacts(&deps, overridden);
        let under_way = async {
            while contact_ids.iter().map(|id| sim.contact_update_count(*id)).sum::<usize>() < 40 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            report = run => panic!("{kind}: finished before the interruption: {:?}", report.deactivation_summary),
            _ = under_way => {}
            _ = tokio::time::sleep(Duration::from_secs(120)) => panic!("{kind}: no progress"),
        }
        sandbox.set_latency(Duration::ZERO);
        let done: usize = contact_ids.iter().map(|id| sim.contact_update_count(*id)).sum();
        assert!(done > 0 && done < 250, "{kind}: interrupted half-way ({done})");
        let operations = h.audit.list_operations(&Default::default()).await.unwrap();
        let operation_id = operations[0].operation.operation_id.clone();
        let resumed = deactivate_contacts(
            &deps,
            // The dropped run never released the company's lease: break it knowingly.
            DeactivateContactsRequest {
                operation_id: Some(operation_id),
                break_lease: true,
                ..DeactivateContactsRequest::default()
            },
        )
        .await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        assert_eq!(resumed.deactivation_summary.contacts_deactivated, 250, "{kind}: the earlier part counts too");
        let twice: Vec<i64> = contact_ids.iter().copied().filter(|id| sim.contact_update_count(*id) != 1).collect();
        assert!(
            twice.is_empty(),
            "{kind}: {} contacts not updated exactly once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        );
        assert!(contact_ids.iter().all(|id| sim.contact_is_active(*id) == Some(false)), "{kind}");

        // The note (on the ticket the resumed run opened) and the notification: all 250.
        let ticket: i64 = resumed.ticket_id.as_deref().expect("a summary ticket").parse().unwrap();
        let notes = sim.ticket(ticket).unwrap().notes;
        let note = notes.iter().find(|n| n.contains("Bulk contact deactivation for")).expect("the summary note");
        assert!(note.contains("Contacts deactivated: 250"), "{kind}: the note undercounts:\n{note}");
        assert_eq!(note.matches(" (id 3").count(), 250, "{kind}: every contact is listed");
        let posts = sandbox.webhook_posts();
        assert_eq!(posts.len(), 1, "{kind}: notified once, after the resume");
        let text = posts[0]["text"].as_str().unwrap();
        assert!(text.contains("Contacts deactivated: 250"), "{kind}: the notification undercounts:\n{text}");
        assert!(posts[0].to_string().contains("(250 of 250)"), "{kind}: subject: {}", posts[0]);
    }
}

/// Bad input: a typed error, no request to the PSA, nothing recorded.
#[tokio::test]
async fn bad_input_changes_nothing() {
    let sandbox = sandbox().await;
    let h = harness(&sandbox, PsaKind::ConnectWise);
    let deps = deps(&h, None);
    for bad in [
        serde_json::json!({"company_id": "250 or 1=1", "confirmation": true}),
        serde_json::json!({"confirmation": true}),
        serde_json::json!({"company_id": 250, "confirmation": true, "requester_email": "not an address"}),
    ] {
        let request: DeactivateContactsRequest = serde_json::from_value(bad.clone()).unwrap();
        let report = deactivate_contacts(&deps, request).await;
        assert_eq!(report.errors[0].code, ErrorCode::InvalidInput, "{bad}");
    }
    assert!(
        serde_json::from_value::<DeactivateContactsRequest>(serde_json::json!({"company_id": 250, "confirm": true}))
            .is_err(),
        "unknown fields are refused"
    );
    let unknown = deactivate_contacts(
        &deps,
        DeactivateContactsRequest { company_id: Some("999".into()), confirmation: true, ..Default::default() },
    )
    .await;
    assert_eq!(unknown.errors[0].code, ErrorCode::ClientNotFound);
    let warned = deactivate_contacts(
        &deps,
        DeactivateContactsRequest { exclude_contacts: vec!["424242".into()], dry_run: true, ..request(DEMO) },
    )
    .await;
    assert!(warned.success);
    assert!(warned.warnings.iter().any(|w| w.contains("424242")), "{:?}", warned.warnings);
    assert_eq!(sandbox.stats().count("PATCH", "/company/contacts/{id}"), 0);
    assert!(h.audit.list_operations(&Default::default()).await.unwrap().iter().all(|o| o.operation.dry_run));
}

/// `rollback` puts back a configuration deactivation too, on every PSA: each configuration
/// returns to its status; one changed in between is a conflict and left alone.
#[tokio::test]
async fn configuration_deactivation_rolls_back_on_every_psa() {
    use offramp::workflows::deactivate_configs::{DeactivateConfigsRequest, deactivate_configs};
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let report = deactivate_configs(
            &h.deps(),
            DeactivateConfigsRequest { client_id: Some("270".into()), ..DeactivateConfigsRequest::default() },
        )
        .await;
        assert!(report.success, "{kind}: {:?}", report.errors);
        assert_eq!(report.statistics.configs_deactivated, 3);
        sim.set_configuration_active(27003, true);
        // On ConnectWise someone disposes of 27002 meanwhile: neither the state before nor
        // the one the operation left, so a conflict.
        let cw = kind == PsaKind::ConnectWise;
        if cw {
            sandbox.connectwise().set_configuration_status(27002, 4);
        }
        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let operation_id = report.operation_id.clone().unwrap();
        let undo = rollback(&rdeps, RollbackRequest { operation_id: operation_id.clone(), ..Default::default() }).await;
        assert!(undo.success, "{kind}: {:?}", undo.errors);
        // 27003 was put back to active by someone: already what the rollback wants.
        let expected = if cw { (1, 1, 1) } else { (2, 1, 0) };
        let s = &undo.statistics;
        assert_eq!((s.restored, s.already_restored, s.conflicts), expected, "{kind}: {:?}", undo.items);
        for id in [27001, 27002, 27003] {
            assert_eq!(sim.configuration_is_active(id), Some(!(cw && id == 27002)), "{kind}: {id}");
        }
        assert_eq!(sim.configuration_is_active(27004), Some(false), "{kind}: never touched, never restored");
        // Someone deactivates 27001 again. The operation is rolled back already: a second
        // rollback is refused (naming the first) and never overwrites that later change.
        sim.set_configuration_active(27001, false);
        let updates = sim.update_count(27001);
        let again = rollback(&rdeps, RollbackRequest { operation_id, ..Default::default() }).await;
        assert_eq!(again.errors[0].code, ErrorCode::RollbackRefused, "{kind}: {:?}", again.errors);
        let first = undo.operation_id.clone().unwrap();
        assert!(again.errors[0].message.contains(&first), "{kind}: {}", again.errors[0].message);
        assert_eq!(again.statistics.restored, 0);
        assert_eq!(sim.configuration_is_active(27001), Some(false), "{kind}: 27001 stays as the person left it");
        assert_eq!(sim.update_count(27001), updates, "{kind}: not even attempted");
    }
}

// ---------------------------------------------------------------------------
// Faults in the audit trail, resumes of finished operations, the summary ticket, the guard
// settings, rollbacks cut short and items changed in between
// ---------------------------------------------------------------------------

/// Another run holding the company's lease stops a run before it records or changes
/// anything; `break_lease` takes the lease over.
#[tokio::test]
async fn a_held_lease_stops_the_run_until_it_is_broken() {
    let sandbox = sandbox().await;
    let kind = PsaKind::ConnectWise;
    let h = harness(&sandbox, kind);
    let sim = sim(&sandbox, kind);
    let audit = FaultyAudit::new(h.audit.clone());
    audit.lease_held.store(true, Ordering::SeqCst);
    let deps = ContactDeps { audit: &audit, ..deps(&h, None) };

    let busy = deactivate_contacts(&deps, request(DEMO)).await;
    assert_eq!(busy.errors[0].code, ErrorCode::OperationInProgress, "{:?}", busy.errors);
    assert_eq!(sim.contact_update_count(5002), 0, "nothing changed");
    assert!(h.audit.list_operations(&Default::default()).await.unwrap().is_empty(), "nothing recorded");

    let broken = deactivate_contacts(&deps, DeactivateContactsRequest { break_lease: true, ..request(DEMO) }).await;
    assert!(broken.success, "{:?}", broken.errors);
    let detail = h.audit.operation(broken.audit_trail.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    let started = detail.events.iter().find(|e| e.kind == OperationEventKind::Started).expect("started");
    assert_eq!(started.detail["lease_broken"], serde_json::json!(true), "breaking the lease is recorded");
    assert!(!sim.contact_is_active(5002).unwrap());
}

fn resume_request(operation_id: &str) -> DeactivateContactsRequest {
    DeactivateContactsRequest { operation_id: Some(operation_id.into()), ..DeactivateContactsRequest::default() }
}

/// The change records of `operation_id` a rollback restores (contact, ticket, configuration contact).
async fn restorable_changes(audit: &dyn AuditStore, operation_id: &str) -> Vec<ItemChange> {
    let detail = audit.operation(operation_id).await.unwrap().unwrap();
    detail
        .changes
        .into_iter()
        .filter(|c| c.outcome == ItemOutcome::Changed)
        .filter(|c| ["contact", "ticket", "configuration_contact"].contains(&c.item_type.as_str()))
        .collect()
}

/// Whether the PSA has the item as it was before the change (`before`).
fn is_restored(sim: &dyn PsaSim, change: &ItemChange) -> bool {
    let id: i64 = change.item_id.parse().unwrap();
    let contact = |value: &Value| value["contact_id"].as_str().map(|c| c.parse::<i64>().unwrap());
    match change.item_type.as_str() {
        "contact" => sim.contact_is_active(id) == change.before["active"].as_bool(),
        "ticket" => sim.ticket(id).unwrap().contact_id == contact(&change.before),
        "configuration_contact" => sim.configuration_contact(id) == contact(&change.before),
        other => panic!("not restorable: {other}"),
    }
}

fn key(change: &ItemChange) -> (String, String) {
    (change.item_type.to_string(), change.item_id.clone())
}

/// A rollback cut short leaves change records for exactly what it restored. It restores
/// kind by kind (tickets and configurations before the contacts they pointed at), each kind
/// its intents first and its change records after; the process dies right after writing
/// the contacts' intents, so every other kind is restored and recorded and no contact was
/// sent. Meanwhile people change items the first rollback had put back (back to what the
/// operation left): the second rollback finishes the contacts and leaves those alone as
/// conflicts. After that the operation is rolled back, and a third rollback is refused.
#[tokio::test]
async fn an_interrupted_rollback_records_what_it_restored_and_a_second_one_finishes_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let report = deactivate_contacts(&deps(&h, None), request(DEMO)).await;
        assert!(report.success, "{kind}: {:?}", report.errors);
        let operation_id = report.audit_trail.operation_id.clone().unwrap();
        let changes = restorable_changes(h.audit.as_ref(), &operation_id).await;
        let total = if kind == PsaKind::Halo { 6 } else { 9 };
        assert_eq!(changes.len(), total, "{kind}");
        let kinds: BTreeSet<&str> = changes.iter().map(|c| c.item_type.as_str()).collect();
        let contacts = changes.iter().filter(|c| c.item_type == ItemKind::Contact).count();

        let audit = FaultyAudit::new(h.audit.clone());
        let rdeps = RollbackDeps::without_microsoft365(h.psa.as_ref(), &audit, offramp::workflows::restorers());
        // Two writes per kind (intents, then change records); the contacts' intents are the last but one.
        let request = || RollbackRequest { operation_id: operation_id.clone(), ..Default::default() };
        audit.crash_after(2 * kinds.len() - 1, rollback(&rdeps, request())).await;

        let children = h.audit.child_operations(&operation_id).await.unwrap();
        assert_eq!(children.len(), 1, "{kind}");
        let first_id = children[0].operation_id.clone();
        let first = h.audit.operation(&first_id).await.unwrap().unwrap();
        assert!(first.events.iter().all(|e| e.kind != OperationEventKind::Completed), "{kind}: it never finished");
        let recorded: BTreeSet<(String, String)> =
            first.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed).map(key).collect();
        let restored: BTreeSet<(String, String)> = changes.iter().filter(|c| is_restored(sim, c)).map(key).collect();
        assert_eq!(recorded.len(), total - contacts, "{kind}: {recorded:?}");
        assert_eq!(restored, recorded, "{kind}: the trail holds exactly what the cut-short rollback restored");
        let intended = first.changes.iter().filter(|c| c.outcome == ItemOutcome::Intended);
        assert_eq!(intended.filter(|c| c.item_type == ItemKind::Contact).count(), contacts, "{kind}: write-ahead");

        // Meanwhile people set items the first rollback had put back to what the operation
        // left: a ticket, and (where configurations have a contact) a configuration.
        let left_by_operation = |item_type: &str| {
            let change = changes.iter().find(|c| c.item_type.as_str() == item_type).unwrap();
            (change.item_id.parse::<i64>().unwrap(), contact_of(change.after.as_ref().unwrap()))
        };
        let (ticket, ticket_contact) = left_by_operation("ticket");
        sim.set_ticket_contact(ticket, ticket_contact);
        let pointed_back = (kind != PsaKind::Halo).then(|| {
            let (config, to) = left_by_operation("configuration_contact");
            sim.set_configuration_contact(config, to);
            (config, to)
        });

        // The cut-short rollback still holds the client's lease (its process "died"): the
        // next one is refused until the lease expires, or breaks it knowingly.
        let refused = rollback(&rdeps, request()).await;
        assert_eq!(refused.errors[0].code, ErrorCode::OperationInProgress, "{kind}: {:?}", refused.errors);
        assert!(refused.errors[0].message.contains(&first_id), "{kind}: names the holder");
        let second = rollback(&rdeps, RollbackRequest { break_lease: true, ..request() }).await;
        assert!(second.success, "{kind}: {:?}", second.errors);
        let conflicts = if kind == PsaKind::Halo { 1 } else { 2 };
        let st = &second.statistics;
        assert_eq!(
            (st.restored, st.already_restored, st.conflicts, st.not_attempted),
            (contacts as u64, (total - contacts - conflicts) as u64, conflicts as u64, 0),
            "{kind}: {:?}",
            second.items
        );
        for item in second.items.iter().filter(|i| i.action == RollbackAction::Conflict) {
            let message = item.message.as_deref().unwrap_or_default();
            assert!(message.contains(&first_id) && message.contains("changed again since"), "{kind}: {message}");
        }
        for item in second.items.iter().filter(|i| i.action == RollbackAction::AlreadyRestored) {
            assert!(item.message.as_deref().is_some_and(|m| m.contains(&first_id)), "{kind}: {item:?}");
        }
        assert_eq!(sim.ticket(ticket).unwrap().contact_id, ticket_contact, "{kind}: left as the person set it");
        if let Some((config, to)) = pointed_back {
            assert_eq!(sim.configuration_contact(config), to, "{kind}: left as the person set it");
        }
        let changed_since: Vec<String> =
            [Some(ticket), pointed_back.map(|(c, _)| c)].into_iter().flatten().map(|id| id.to_string()).collect();
        for change in changes.iter().filter(|c| !changed_since.contains(&c.item_id)) {
            assert!(is_restored(sim, change), "{kind}: {} {} restored", change.item_type, change.item_id);
        }
        let second_record = h.audit.operation(second.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert_eq!(second_record.operation.parent_operation_id.as_deref(), Some(operation_id.as_str()));
        let second_restores = second_record.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed).count();
        assert_eq!(second_restores, contacts, "{kind}: the second rollback recorded its restores");

        let third = rollback(&rdeps, request()).await;
        assert_eq!(third.errors[0].code, ErrorCode::RollbackRefused, "{kind}: {:?}", third.errors);
        assert!(third.errors[0].message.contains(second.operation_id.as_deref().unwrap()), "{kind}");
    }
}

/// The contact id a recorded state points at.
fn contact_of(state: &Value) -> Option<i64> {
    state["contact_id"].as_str().map(|c| c.parse().unwrap())
}

/// When the very last audit write (the `Completed` event) fails, the report still says
/// what was done, with an AuditStoreError beside it, and a resume records the end without
/// changing anything again. The same for a rollback: its report counts what it restored
/// and names it; being unfinished, it may be run again, and that one finds it all done.
#[tokio::test]
async fn a_failed_final_audit_write_still_reports_what_was_done_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let audit = FaultyAudit::new(h.audit.clone());
        let deps = ContactDeps { audit: &audit, ..deps(&h, None) };

        audit.refuse_completed(true);
        let report = deactivate_contacts(&deps, request(DEMO)).await;
        assert!(!report.success, "{kind}");
        assert_eq!(report.errors[0].code, ErrorCode::AuditStoreError, "{kind}: {:?}", report.errors);
        assert_eq!(report.primary_error(), Some(ErrorCode::AuditStoreError));
        assert_eq!(ids(&report), [5002, 5004, 5005, 5007], "{kind}: what was done, not an empty report");
        assert_eq!(report.deactivation_summary.contacts_deactivated, 4);
        assert_eq!(report.related_updates.open_tickets_reassigned, 2);
        assert!(report.audit_trail.rollback_available, "{kind}");
        assert_eq!(report.ticket_id.as_deref(), Some("9010"));
        let operation_id = report.audit_trail.operation_id.clone().expect("the operation is named");

        audit.refuse_completed(false);
        let resumed = deactivate_contacts(&deps, resume_request(&operation_id)).await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        assert_eq!(ids(&resumed), [5002, 5004, 5005, 5007], "{kind}");
        assert_eq!(sim.contact_update_count(5002), 1, "{kind}: nothing changed twice");
        assert_eq!(sim.ticket(9010).unwrap().notes.len(), 1, "{kind}: one note");
        let detail = h.audit.operation(&operation_id).await.unwrap().unwrap();
        assert!(detail.events.iter().any(|e| e.kind == OperationEventKind::Completed), "{kind}: the end is recorded");

        audit.refuse_completed(true);
        let rdeps = RollbackDeps::without_microsoft365(h.psa.as_ref(), &audit, offramp::workflows::restorers());
        let request = || RollbackRequest { operation_id: operation_id.clone(), ..Default::default() };
        let undo = rollback(&rdeps, request()).await;
        let total = if kind == PsaKind::Halo { 6 } else { 9 };
        assert!(!undo.success, "{kind}");
        assert!(undo.errors.iter().any(|e| e.code == ErrorCode::AuditStoreError), "{kind}: {:?}", undo.errors);
        let undo_id = undo.operation_id.clone().expect("the rollback is named, not 'refused'");
        assert_eq!(undo.statistics.restored, total, "{kind}");
        assert_eq!(sim.contact_is_active(5002), Some(true), "{kind}");
        assert_eq!(
            restorable_changes(h.audit.as_ref(), &undo_id).await.len() as u64,
            total,
            "{kind}: every restore recorded"
        );

        audit.refuse_completed(false);
        let again = rollback(&rdeps, request()).await;
        assert!(again.success, "{kind}: the first rollback did not finish, so another may run: {:?}", again.errors);
        assert_eq!((again.statistics.restored, again.statistics.already_restored), (0, total), "{kind}");
        assert_eq!(sim.contact_update_count(5002), 2, "{kind}: once off, once back on");
        let third = rollback(&rdeps, request()).await;
        assert_eq!(third.errors[0].code, ErrorCode::RollbackRefused, "{kind}");
    }
}

/// A finished operation is not resumed: not one that completed with nothing left (that
/// would only repeat its note and notification), and not one that was rolled back (that
/// would deactivate contacts again after the undo, here the contact whose update had failed).
#[tokio::test]
async fn finished_and_rolled_back_operations_are_not_resumed_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let hook = webhook(&sandbox);
        let deps = deps(&h, Some(&hook));

        let done = deactivate_contacts(&deps, request(DEMO)).await;
        assert!(done.success, "{kind}: {:?}", done.errors);
        let done_id = done.audit_trail.operation_id.clone().unwrap();
        let again = deactivate_contacts(&deps, resume_request(&done_id)).await;
        assert_eq!(again.errors[0].code, ErrorCode::OperationNotResumable, "{kind}: {:?}", again.errors);
        assert!(again.errors[0].message.contains("nothing left"), "{kind}: {}", again.errors[0].message);
        assert_eq!(sim.ticket(9010).unwrap().notes.len(), 1, "{kind}: no second note");
        assert_eq!(sandbox.webhook_posts().len(), 1, "{kind}: no second notification");

        // Parity Clinic: 7002's update fails, the run completes with it still active, and
        // the operation is rolled back. A resume would retry 7002, after the undo.
        sim.fail_contact_update(7002, "Contact is locked by a workflow rule");
        let partial = deactivate_contacts(
            &deps,
            DeactivateContactsRequest {
                company_id: Some("270".into()),
                confirmation: true,
                initiated_by: Some(REQUESTER.into()),
                ..DeactivateContactsRequest::default()
            },
        )
        .await;
        assert_eq!(ids(&partial), [7001, 7003], "{kind}: {:?}", partial.errors);
        let partial_id = partial.audit_trail.operation_id.clone().unwrap();
        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let undo = rollback(&rdeps, RollbackRequest { operation_id: partial_id.clone(), ..Default::default() }).await;
        assert!(undo.success, "{kind}: {:?}", undo.errors);
        sim.clear_contact_failures();
        let attempts = sim.contact_update_count(7002);
        let refused = deactivate_contacts(&deps, resume_request(&partial_id)).await;
        assert_eq!(refused.errors[0].code, ErrorCode::OperationNotResumable, "{kind}: {:?}", refused.errors);
        assert!(refused.errors[0].message.contains(undo.operation_id.as_deref().unwrap()), "{kind}");
        assert_eq!(sim.contact_is_active(7002), Some(true), "{kind}: not deactivated after the undo");
        assert_eq!(sim.contact_update_count(7002), attempts, "{kind}: not even attempted");
        assert_eq!(sim.contact_is_active(7001), Some(true), "{kind}: the rollback stands");
    }
}

/// The sandbox switch that makes every new ticket note fail on `kind`.
fn fail_notes(sandbox: &Sandbox, kind: PsaKind, message: Option<&str>) {
    match kind {
        PsaKind::ConnectWise => sandbox.connectwise().fail_ticket_notes(message),
        PsaKind::Autotask => sandbox.autotask().fail_ticket_notes(message),
        PsaKind::Halo => sandbox.halo().fail_ticket_notes(message),
    }
}

/// The ticket a run opens for its summary is recorded the moment it exists: when the note
/// then fails, the report names the ticket, and the resume (allowed: the note is left to
/// do) writes the note on it instead of opening a second one.
#[tokio::test]
async fn a_failed_note_keeps_its_new_ticket_and_the_resume_reuses_it_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let board = if kind == PsaKind::Halo { "Offboarding" } else { "4" };
        set(h.audit.as_ref(), kind, GLOBAL_SCOPE, org_settings::TICKET_BOARD, board).await;
        let deps = deps(&h, None);
        let before: HashSet<i64> = sim.ticket_ids_of(270).into_iter().collect();
        let opened = || sim.ticket_ids_of(270).into_iter().filter(|id| !before.contains(id)).collect::<Vec<_>>();

        fail_notes(&sandbox, kind, Some("Notes are locked on this board"));
        let report = deactivate_contacts(
            &deps,
            DeactivateContactsRequest {
                company_id: Some("270".into()),
                confirmation: true,
                initiated_by: Some(REQUESTER.into()),
                ..DeactivateContactsRequest::default()
            },
        )
        .await;
        assert!(!report.success, "{kind}");
        assert_eq!(ids(&report), [7001, 7002, 7003], "{kind}");
        let ticket = report.ticket_id.clone().expect("the new ticket is reported");
        assert_eq!(opened(), [ticket.parse::<i64>().unwrap()], "{kind}");
        let error = report.errors.iter().find(|e| e.code == ErrorCode::TicketUpdateFailed).expect("note failure");
        assert!(error.message.contains(&ticket) && error.message.contains("Notes are locked"), "{kind}: {error:?}");
        let operation_id = report.audit_trail.operation_id.clone().unwrap();
        let detail = h.audit.operation(&operation_id).await.unwrap().unwrap();
        assert!(
            detail
                .changes
                .iter()
                .any(|c| c.item_type == "summary_ticket" && c.item_id == ticket && c.outcome == ItemOutcome::Changed),
            "{kind}: the new ticket is in the trail"
        );

        fail_notes(&sandbox, kind, None);
        let resumed = deactivate_contacts(&deps, resume_request(&operation_id)).await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        assert_eq!(resumed.ticket_id.as_deref(), Some(ticket.as_str()), "{kind}: the same ticket");
        assert_eq!(opened(), [ticket.parse::<i64>().unwrap()], "{kind}: no second ticket");
        let notes = sim.ticket(ticket.parse().unwrap()).unwrap().notes;
        let summaries: Vec<&String> = notes.iter().filter(|n| n.contains("Contacts deactivated: 3")).collect();
        assert_eq!(summaries.len(), 1, "{kind}: {notes:?}");
        for id in [7001, 7002, 7003] {
            assert_eq!(sim.contact_update_count(id), 1, "{kind}: {id} deactivated once");
        }
        let done = deactivate_contacts(&deps, resume_request(&operation_id)).await;
        assert_eq!(done.errors[0].code, ErrorCode::OperationNotResumable, "{kind}: now it is finished");
    }
}

/// The blast-radius guard takes its limits from the settings store: a share of the
/// company's contacts (`offramp_guard_max_contact_share`, here per client) and a count
/// (`offramp_guard_max_contacts`, here global). Over either, the run stops with its plan
/// and changes nothing; at the limit it runs.
#[tokio::test]
async fn the_guard_limits_come_from_the_settings_store_on_every_psa() {
    use offramp::workflows::org_settings::{GUARD_MAX_CONTACT_SHARE, GUARD_MAX_CONTACTS};
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let deps = deps(&h, None);
        let untouched = || sim.contact_ids_of(250).iter().all(|id| sim.contact_update_count(*id) == 0);

        // 4 of Contoso Dental's 7 contacts are 57.1%.
        set(h.audit.as_ref(), kind, DEMO, GUARD_MAX_CONTACT_SHARE, "50").await;
        let stopped = deactivate_contacts(&deps, request(DEMO)).await;
        assert_eq!(stopped.status.as_deref(), Some("blast_radius_exceeded"), "{kind}: {:?}", stopped.errors);
        assert_eq!(stopped.errors[0].code, ErrorCode::BlastRadiusExceeded);
        assert!(stopped.errors[0].message.contains("57.1%"), "{kind}: {}", stopped.errors[0].message);
        let guard = stopped.blast_radius.clone().unwrap();
        assert_eq!((guard.contacts_to_deactivate, guard.company_contacts, guard.share_percent), (4, 7, 57.1), "{kind}");
        assert_eq!((guard.max_share_percent, guard.max_contacts, guard.exceeded), (50, 200, true), "{kind}");
        assert!(untouched(), "{kind}: nothing changed");
        let op = h.audit.operation(stopped.audit_trail.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert!(!op.operation.dry_run && op.changes.is_empty(), "{kind}: a refused real attempt, not a plan");
        let refused = op.events.iter().find(|e| e.kind == OperationEventKind::Refused).expect("a refused event");
        assert_eq!(refused.detail["status"], "blast_radius_exceeded", "{kind}");
        assert_eq!(op.operation.input["settings"]["sources"][GUARD_MAX_CONTACT_SHARE], "client");

        // 60% lets it through; a global count of 3 stops it again.
        set(h.audit.as_ref(), kind, DEMO, GUARD_MAX_CONTACT_SHARE, "60").await;
        set(h.audit.as_ref(), kind, GLOBAL_SCOPE, GUARD_MAX_CONTACTS, "3").await;
        let stopped = deactivate_contacts(&deps, request(DEMO)).await;
        assert_eq!(stopped.status.as_deref(), Some("blast_radius_exceeded"), "{kind}");
        let guard = stopped.blast_radius.clone().unwrap();
        assert_eq!((guard.max_contacts, guard.max_share_percent, guard.exceeded), (3, 60, true), "{kind}");
        assert!(stopped.errors[0].message.contains("4 of 7 contacts"), "{kind}: {}", stopped.errors[0].message);
        assert!(untouched(), "{kind}: nothing changed");

        // Exactly at the limit: it runs.
        set(h.audit.as_ref(), kind, GLOBAL_SCOPE, GUARD_MAX_CONTACTS, "4").await;
        let run = deactivate_contacts(&deps, request(DEMO)).await;
        assert!(run.success, "{kind}: {:?}", run.errors);
        assert_eq!(run.deactivation_summary.contacts_deactivated, 4);
        assert!(!run.blast_radius.unwrap().exceeded);
        let op = h.audit.operation(run.audit_trail.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert_eq!(op.operation.input["settings"]["sources"][GUARD_MAX_CONTACTS], "global", "{kind}");
    }
}

/// Items changed between the operation and its rollback, on every PSA. A contact someone
/// re-activated is already what the rollback wants: counted so, and no update is sent (a
/// contact's one flag can only have gone back; a contact conflict, deactivated again after
/// a rollback restored it, is in the interrupted-rollback test). A configuration whose
/// contact someone changed to another contact, or cleared, is a conflict and left as the
/// person set it (HaloPSA assets have no contact).
#[tokio::test]
async fn a_rollback_leaves_contacts_and_configuration_contacts_changed_in_between_alone_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let report = deactivate_contacts(&deps(&h, None), request(DEMO)).await;
        assert!(report.success, "{kind}: {:?}", report.errors);
        let operation_id = report.audit_trail.operation_id.clone().unwrap();
        let changes = restorable_changes(h.audit.as_ref(), &operation_id).await;

        sim.set_contact_active(5002, true);
        let halo = kind == PsaKind::Halo;
        let changed: &[(i64, Option<i64>)] = if halo { &[] } else { &[(25002, Some(5003)), (25010, None)] };
        for (config, contact) in changed {
            sim.set_configuration_contact(*config, *contact);
        }
        let bob_updates = sim.contact_update_count(5002);
        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let undo = rollback(&rdeps, RollbackRequest { operation_id, ..Default::default() }).await;
        assert!(undo.success, "{kind}: {:?}", undo.errors);
        let item = |item_type: &str, id: &str| {
            undo.items.iter().find(|i| i.item_type == item_type && i.item_id == id).cloned().unwrap()
        };
        assert_eq!(item("contact", "5002").action, RollbackAction::AlreadyRestored, "{kind}");
        assert_eq!(sim.contact_update_count(5002), bob_updates, "{kind}: nothing sent for 5002");
        for (config, contact) in changed {
            let conflict = item("configuration_contact", &config.to_string());
            assert_eq!(conflict.action, RollbackAction::Conflict, "{kind}: {conflict:?}");
            assert!(conflict.message.as_deref().unwrap_or_default().contains("changed since"), "{kind}: {conflict:?}");
            assert_eq!(sim.configuration_contact(*config), *contact, "{kind}: {config} left as the person set it");
        }
        let s = &undo.statistics;
        let conflicts = changed.len() as u64;
        assert_eq!(
            (s.restored, s.already_restored, s.conflicts),
            (changes.len() as u64 - 1 - conflicts, 1, conflicts),
            "{kind}"
        );
        for change in &changes {
            let left_alone = changed.iter().any(|(id, _)| id.to_string() == change.item_id);
            assert_eq!(is_restored(sim, change), !left_alone, "{kind}: {} {}", change.item_type, change.item_id);
        }
        if !halo {
            assert!(undo.warnings.iter().any(|w| w.contains("changed since the operation")), "{kind}");
        }
    }
}
