//! Seed 001 on all three PSAs through the real clients and the sandbox: exclusions, primary
//! preservation, confirmation, already-inactive contacts, a failing contact, related
//! records, the ticket note, the notification, the blast-radius guard, rollback (restore,
//! conflict, idempotence) and a crash mid-run followed by a resume.

use std::collections::HashSet;
use std::time::Duration;

use offramp::adapters::notify_graph::{GraphMailNotifier, GraphMailSettings};
use offramp::adapters::notify_webhook::{WebhookNotifier, WebhookSettings};
use offramp::domain::{GLOBAL_SCOPE, PsaKind, SettingRecord};
use offramp::error::ErrorCode;
use offramp::http::HttpSettings;
use offramp::ports::{AuditStore, NoProgress, Notifier, SettingsStore};
use offramp::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};
use offramp::workflows::org_settings;
use offramp::workflows::rollback::{RollbackAction, RollbackDeps, RollbackRequest, rollback};
use offramp_sandbox::{GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_SENDER, GRAPH_TENANT_ID, Sandbox, SandboxConfig};
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
    let extras =
        ["status", "dry_run", "primary_contacts", "blast_radius", "notification", "plan_hash", "warnings", "errors"];
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
        let op = h.audit.operation(unconfirmed.audit_trail.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        assert!(op.operation.dry_run && op.changes.is_empty());

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
        let rdeps = RollbackDeps { psa: h.psa.as_ref(), audit: h.audit.as_ref() };
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
        for id in [5002, 5004, 5005, 5007] {
            assert_eq!(sim.contact_is_active(id), Some(true), "{kind}: {id} restored");
        }
        assert_eq!(sim.contact_is_active(5006), Some(false), "{kind}: the already-inactive one stays inactive");
        let t = sim.ticket(9001).unwrap();
        assert_eq!((t.contact_id, t.owner_id), (Some(5002), Some(11)), "{kind}");
        if kind != PsaKind::Halo {
            assert_eq!(sim.configuration_contact(25002), Some(5004), "{kind}");
        }
        let again =
            rollback(&rdeps, RollbackRequest { operation_id: operation_id.clone(), ..Default::default() }).await;
        assert!(again.success);
        assert_eq!((again.statistics.restored, again.statistics.already_restored), (0, expected_items), "{kind}");
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
        let rdeps = RollbackDeps { psa: h.psa.as_ref(), audit: h.audit.as_ref() };
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
/// is deactivated exactly once.
#[tokio::test]
async fn the_guard_stops_large_runs_and_an_interrupted_run_resumes_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = harness(&sandbox, kind);
        let sim = sim(&sandbox, kind);
        let deps = deps(&h, None);
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
            DeactivateContactsRequest { operation_id: Some(operation_id), ..DeactivateContactsRequest::default() },
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
        let rdeps = RollbackDeps { psa: h.psa.as_ref(), audit: h.audit.as_ref() };
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
        // Someone deactivates 27001 again; a second rollback finds the rest done and leaves it alone.
        sim.set_configuration_active(27001, false);
        let again = rollback(&rdeps, RollbackRequest { operation_id, ..Default::default() }).await;
        assert_eq!(again.statistics.restored, 1, "{kind}: the operation left 27001 inactive, so it is restorable");
        assert_eq!(again.statistics.already_restored, if cw { 1 } else { 2 });
    }
}
