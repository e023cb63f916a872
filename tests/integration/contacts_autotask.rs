//! autotask adapter: contacts, tickets and configuration contacts against the sandbox (issue 4).

use std::sync::Arc;
use std::time::Duration;

use offramp::adapters::autotask::{AutotaskClient, AutotaskTicketSettings};
use offramp::domain::{Contact, NewTicket, PsaKind, TicketAssignment, TicketNote, TicketOwner};
use offramp::error::PsaError;
use offramp::http::BudgetSettings;
use offramp::ports::Psa;
use offramp_sandbox::{PsaSim, Sandbox, SandboxConfig};
use offramp_tests::psa::{autotask_settings, client, client_with, http_settings};

const KIND: PsaKind = PsaKind::Autotask;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn sim(sandbox: &Sandbox) -> &dyn PsaSim {
    sandbox.psa("autotask")
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

fn owner(id: &str, role: Option<&str>) -> TicketOwner {
    TicketOwner { id: id.into(), role_id: role.map(str::to_string) }
}

#[tokio::test]
async fn list_contacts_maps_every_contact_of_the_company_active_and_inactive() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let contacts = psa.list_contacts("250").await.unwrap();
    assert_eq!(ids(&contacts, |c| &c.id), ["5001", "5002", "5003", "5004", "5005", "5006", "5007"]);
    let inactive: Vec<&str> = contacts.iter().filter(|c| !c.active).map(|c| c.id.as_str()).collect();
    assert_eq!(inactive, ["5006"], "isActive 0 is inactive, 1 active");
    let jane = &contacts[0];
    assert_eq!(
        jane,
        &Contact {
            id: "5001".into(),
            company_id: "250".into(),
            name: "Jane Doe".into(),
            email: Some("jane.doe@contosodental.example".into()),
            title: Some("CEO".into()),
            active: true,
            primary_signals: vec!["contact.primaryContact".into()],
        }
    );
    let olga = &contacts[5];
    assert_eq!((olga.name.as_str(), olga.title.as_deref()), ("Olga Hygienist", Some("Dental Hygienist")));
    assert_eq!(olga.status_label(), "Inactive");
    assert!(contacts[1..].iter().all(|c| c.primary_signals.is_empty()), "only Jane is primary");
    // Two queries (isActive 1 and 0): whether one unfiltered query includes inactive
    // contacts is UNCONFIRMED.
    assert_eq!(sandbox.stats().count("POST", "/autotask/Contacts/query"), 2);

    let one = psa.contact("5006").await.unwrap().expect("contact 5006");
    assert_eq!(&one, olga);
    assert_eq!(psa.contact("424242").await.unwrap(), None);
    assert!(matches!(psa.contact("5006; drop").await, Err(PsaError::InvalidId { .. })));
}

#[tokio::test]
async fn list_contacts_reads_the_large_client_without_duplicates() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let contacts = psa.list_contacts("300").await.unwrap();
    assert_eq!(contacts.len(), 250);
    // Sorted first: `dedup` only drops neighbours, so a repeat pages apart would pass unsorted.
    let mut unique = ids(&contacts, |c| &c.id);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 250, "no duplicates");
    assert_eq!(unique.first().map(String::as_str), Some("300001"));
    assert_eq!(unique.last().map(String::as_str), Some("300250"));
    assert!(contacts.iter().all(|c| c.active && c.company_id == "300"));
    // The adapter asks for 500 a page (Autotask's maximum), so 250 fit in the first page
    // of each of its two queries; paging itself is covered by the configuration tests.
    let stats = sandbox.stats();
    assert_eq!(stats.count("POST", "/autotask/Contacts/query"), 2);
    assert_eq!(stats.count("POST", "/autotask/Contacts/query/next"), 0);
}

#[tokio::test]
async fn primary_contacts_names_the_contact_level_signal() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let company = psa.company_by_id("250").await.unwrap().expect("company 250");
    let signals = psa.primary_contacts(&company).await.unwrap();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!((signals[0].contact_id.as_str(), signals[0].signal.as_str()), ("5001", "contact.primaryContact"));
    assert_eq!(sandbox.stats().count("POST", "/autotask/Contacts/query"), 1, "one query");

    let parity = psa.company_by_id("270").await.unwrap().expect("company 270");
    let signals = psa.primary_contacts(&parity).await.unwrap();
    assert_eq!(ids(&signals, |s| &s.contact_id), ["7001"]);
}

#[tokio::test]
async fn set_contact_active_writes_an_integer_through_the_company() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let bob = psa.contact("5002").await.unwrap().expect("contact 5002");

    let after = psa.set_contact_active(&bob, false).await.unwrap();
    assert!(!after.active);
    assert_eq!(Contact { active: true, ..after.clone() }, bob, "nothing else changed");
    assert_eq!(sim(&sandbox).contact_is_active(5002), Some(false));
    assert!(!psa.contact("5002").await.unwrap().unwrap().active, "read back from Autotask");

    let again = psa.set_contact_active(&after, true).await.unwrap();
    assert!(again.active);
    assert_eq!(sim(&sandbox).contact_is_active(5002), Some(true));

    let stats = sandbox.stats();
    assert_eq!(stats.count("PATCH", "/autotask/Companies/{id}/Contacts"), 2, "one PATCH each, no read-back");
    assert_eq!(stats.count("PATCH", "/autotask/Contacts"), 0, "never the top-level path");
    assert_eq!(sim(&sandbox).contact_update_count(5002), 2);

    // An id that is not an Autotask id never reaches the PSA.
    let bad = Contact { company_id: "Contoso".into(), ..bob.clone() };
    assert!(matches!(psa.set_contact_active(&bad, false).await, Err(PsaError::InvalidId { .. })));
    assert_eq!(sim(&sandbox).contact_update_count(5002), 2);
}

#[tokio::test]
async fn a_refused_contact_update_carries_the_vendor_message() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let carla = psa.contact("5004").await.unwrap().expect("contact 5004");
    sim(&sandbox).fail_contact_update(5004, "Contact 5004 is referenced by an open opportunity");
    let err = psa.set_contact_active(&carla, false).await.unwrap_err();
    assert!(matches!(err, PsaError::Rejected { status: 500, .. }), "{err:?}");
    assert!(err.to_string().contains("Contact 5004 is referenced by an open opportunity"), "{err}");
    assert_eq!(sim(&sandbox).contact_is_active(5004), Some(true));
    assert_eq!(sim(&sandbox).contact_update_count(5004), 1, "a refusal is not retried");

    // A contact filed under another company: Autotask does not find it under that path.
    let moved = Contact { company_id: "100".into(), ..carla };
    sim(&sandbox).clear_contact_failures();
    let err = psa.set_contact_active(&moved, false).await.unwrap_err();
    assert!(matches!(err, PsaError::NotFound { .. }), "{err:?}");
    assert_eq!(sim(&sandbox).contact_is_active(5004), Some(true));
}

#[tokio::test]
async fn open_tickets_leaves_out_complete_ones_and_maps_owner_role_and_queue() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let tickets = psa.open_tickets("250").await.unwrap();
    assert_eq!(ids(&tickets, |t| &t.id), ["9001", "9002", "9003", "9005", "9010"], "not the complete 9004");
    let first = &tickets[0];
    assert_eq!(first.summary, "Printer offline at reception");
    assert_eq!(first.company_id, "250");
    assert_eq!(first.contact_id.as_deref(), Some("5002"));
    assert_eq!((first.owner_id.as_deref(), first.owner_role_id.as_deref()), (Some("11"), Some("8")));
    assert_eq!(first.queue.as_deref(), Some("1"));
    assert!(tickets.iter().all(|t| !t.closed));
    assert_eq!(tickets[4].contact_id, None, "9010 has no contact");
    assert_eq!(sandbox.stats().count("POST", "/autotask/Tickets/query"), 1);

    let closed = psa.ticket("9004").await.unwrap().expect("ticket 9004");
    assert!(closed.closed);
    assert_eq!(psa.ticket("424242").await.unwrap(), None);
}

#[tokio::test]
async fn the_complete_status_is_a_setting() {
    let sandbox = sandbox().await;
    let mut settings = autotask_settings(&sandbox);
    // A tenant whose "Complete" is 1: the sandbox's "New" tickets count as closed there.
    settings.tickets = AutotaskTicketSettings { complete_status: 1, ..AutotaskTicketSettings::default() };
    let psa = AutotaskClient::new(settings, http_settings(KIND)).unwrap();
    let tickets = psa.open_tickets("250").await.unwrap();
    assert_eq!(ids(&tickets, |t| &t.id), ["9004"]);
    assert!(psa.ticket("9001").await.unwrap().unwrap().closed);
}

#[tokio::test]
async fn update_ticket_changes_contact_owner_and_queue_and_clears() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let change = TicketAssignment {
        contact_id: Some(Some("5007".into())),
        owner: Some(Some(owner("12", Some("8")))),
        queue: Some(Some("4".into())),
    };
    let after = psa.update_ticket("9001", &change).await.unwrap();
    assert_eq!(after.contact_id.as_deref(), Some("5007"));
    assert_eq!((after.owner_id.as_deref(), after.owner_role_id.as_deref()), (Some("12"), Some("8")));
    assert_eq!(after.queue.as_deref(), Some("4"));
    let view = sim(&sandbox).ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (Some(5007), Some(12), Some(4)));
    assert_eq!(sandbox.stats().count("PATCH", "/autotask/Tickets"), 1);
    assert_eq!(sandbox.stats().count("GET", "/autotask/Tickets/{id}"), 1, "PATCH + read-back");

    // Clearing the contact leaves the rest.
    let cleared =
        psa.update_ticket("9001", &TicketAssignment { contact_id: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!(cleared.contact_id, None);
    assert_eq!(cleared.owner_id.as_deref(), Some("12"));
    assert_eq!(sim(&sandbox).ticket(9001).unwrap().contact_id, None);

    // An owner without a role keeps the ticket's current role (one more read first).
    sandbox.reset_stats();
    let change = TicketAssignment { owner: Some(Some(owner("12", None))), ..Default::default() };
    let reassigned = psa.update_ticket("9002", &change).await.unwrap();
    assert_eq!((reassigned.owner_id.as_deref(), reassigned.owner_role_id.as_deref()), (Some("12"), Some("8")));
    assert_eq!(sandbox.stats().count("GET", "/autotask/Tickets/{id}"), 2);

    // Clearing the owner clears resource and role together; then a role-less owner has
    // no role to keep: refused before anything is sent.
    let unowned = psa.update_ticket("9002", &TicketAssignment { owner: Some(None), ..Default::default() }).await;
    let unowned = unowned.unwrap();
    assert_eq!((unowned.owner_id, unowned.owner_role_id), (None, None));
    sandbox.reset_stats();
    let change = TicketAssignment { owner: Some(Some(owner("11", None))), ..Default::default() };
    let err = psa.update_ticket("9002", &change).await.unwrap_err();
    assert!(matches!(err, PsaError::Configuration { .. }), "{err:?}");
    assert!(err.to_string().contains("role"), "{err}");
    assert_eq!(sandbox.stats().count("PATCH", "/autotask/Tickets"), 0);
    assert_eq!(sim(&sandbox).ticket(9002).unwrap().owner_id, None);

    // Autotask's own refusals reach the caller with its message.
    let change = TicketAssignment { contact_id: Some(Some("7002".into())), ..Default::default() };
    let err = psa.update_ticket("9003", &change).await.unwrap_err();
    assert!(matches!(err, PsaError::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("does not belong to Company 250"), "{err}");
    let err = psa.update_ticket("424242", &TicketAssignment { queue: Some(None), ..Default::default() }).await;
    assert!(matches!(err, Err(PsaError::NotFound { .. })), "{err:?}");

    // Nothing to change: a read, no write.
    sandbox.reset_stats();
    let same = psa.update_ticket("9003", &TicketAssignment::default()).await.unwrap();
    assert_eq!(same.contact_id.as_deref(), Some("5001"));
    assert_eq!(sandbox.stats().count("PATCH", "/autotask/Tickets"), 0);
}

#[tokio::test]
async fn create_ticket_then_add_a_note_through_the_ticket() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let new = NewTicket {
        company_id: "250".into(),
        summary: "Contact offboarding: Contoso Dental".into(),
        queue: Some("4".into()),
        description: "Contacts to inactivate: 6".into(),
    };
    let ticket = psa.create_ticket(&new).await.unwrap();
    assert_eq!(ticket.summary, "Contact offboarding: Contoso Dental");
    assert_eq!((ticket.company_id.as_str(), ticket.queue.as_deref(), ticket.closed), ("250", Some("4"), false));
    let id: i64 = ticket.id.parse().unwrap();
    let record = sandbox.autotask().ticket_record(id).unwrap();
    assert_eq!((record["status"].as_i64(), record["priority"].as_i64()), (Some(1), Some(2)), "settings' defaults");
    assert_eq!(record["description"], "Contacts to inactivate: 6");

    let note = TicketNote { title: "Offboarding".into(), text: "Contacts inactivated: 6".into() };
    psa.add_ticket_note(&ticket.id, &note).await.unwrap();
    let view = sim(&sandbox).ticket(id).unwrap();
    assert_eq!(view.notes, ["Contacts inactivated: 6"]);
    let notes = sandbox.autotask().ticket_notes(id);
    assert_eq!((notes[0]["noteType"].as_i64(), notes[0]["publish"].as_i64()), (Some(1), Some(2)), "internal note");
    assert_eq!(notes[0]["title"], "Offboarding");

    // Without a queue, queueID is left to Autotask.
    let default_queue = NewTicket { queue: None, ..new.clone() };
    let second = psa.create_ticket(&default_queue).await.unwrap();
    assert_eq!(second.queue, None);
    assert_ne!(second.id, ticket.id);

    let stats = sandbox.stats();
    assert_eq!(stats.count("POST", "/autotask/Tickets"), 2);
    assert_eq!(stats.count("POST", "/autotask/Tickets/{id}/Notes"), 1);
    assert_eq!(stats.count("POST", "/autotask/TicketNotes"), 0, "never the top-level path");

    let err = psa.add_ticket_note("424242", &note).await.unwrap_err();
    assert!(matches!(err, PsaError::NotFound { .. }), "{err:?}");
    let err = psa.create_ticket(&NewTicket { company_id: "999".into(), ..new }).await.unwrap_err();
    assert!(err.to_string().contains("Company 999"), "{err}");
}

#[tokio::test]
async fn configuration_contacts_are_listed_and_changed() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    assert!(psa.supports_configuration_contacts());
    let configs = psa.list_configurations("250", true).await.unwrap();
    let contact_of = |id: &str| configs.iter().find(|c| c.id == id).and_then(|c| c.contact_id.clone());
    assert_eq!(contact_of("25001").as_deref(), Some("5002"));
    assert_eq!(contact_of("25010").as_deref(), Some("5005"));
    assert_eq!(contact_of("25004"), None);

    let changed = psa.set_configuration_contact("25001", Some("5007")).await.unwrap();
    assert_eq!(changed.contact_id.as_deref(), Some("5007"));
    assert_eq!(changed.name, "Firewall - HQ");
    assert_eq!(sim(&sandbox).configuration_contact(25001), Some(5007));
    assert_eq!(sim(&sandbox).configuration_is_active(25001), Some(true), "only the contact changed");

    let cleared = psa.set_configuration_contact("25001", None).await.unwrap();
    assert_eq!(cleared.contact_id, None);
    assert_eq!(sim(&sandbox).configuration_contact(25001), None);

    let err = psa.set_configuration_contact("25002", Some("7002")).await.unwrap_err();
    assert!(err.to_string().contains("contactID"), "{err}");
    assert_eq!(sim(&sandbox).configuration_contact(25002), Some(5004));
}

#[tokio::test]
async fn contact_writes_keep_to_three_threads_per_endpoint() {
    let sandbox = sandbox().await;
    let psa: Arc<dyn Psa> = Arc::from(client(&sandbox, KIND));
    let contacts = psa.list_contacts("250").await.unwrap();
    sandbox.set_latency(Duration::from_millis(150));
    let mut writes = tokio::task::JoinSet::new();
    for contact in contacts.clone() {
        let psa = psa.clone();
        writes.spawn(async move { psa.set_contact_active(&contact, false).await });
    }
    while let Some(result) = writes.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(sandbox.stats().thread_limit_rejections(), 0, "no more than 3 in flight on Companies/…/Contacts");
    assert_eq!(sandbox.stats().count("PATCH", "/autotask/Companies/{id}/Contacts"), 7);
    assert!(contacts.iter().all(|c| sim(&sandbox).contact_is_active(c.id.parse().unwrap()) == Some(false)));
}

#[tokio::test]
async fn contact_calls_count_against_the_hourly_budget() {
    let sandbox = sandbox().await;
    let mut http = http_settings(KIND);
    // Zone lookup, ThresholdInformation (which reports itself as used) and one query.
    http.budget = Some(BudgetSettings { limit: 4, window: Duration::from_secs(3600), max_wait: Duration::ZERO });
    let psa = client_with(&sandbox, KIND, http);
    let err = psa.list_contacts("250").await.unwrap_err();
    assert!(matches!(err, PsaError::BudgetExhausted { .. }), "{err:?}");
    assert_eq!(sandbox.stats().count("POST", "/autotask/Contacts/query"), 1, "the second query was not sent");
    let err = psa.add_ticket_note("9001", &TicketNote { title: "t".into(), text: "x".into() }).await.unwrap_err();
    assert!(matches!(err, PsaError::BudgetExhausted { .. }), "{err:?}");
    assert!(sim(&sandbox).ticket(9001).unwrap().notes.is_empty());
    assert_eq!(sandbox.stats().throttled(), 0, "stopped by our budget, not by Autotask");
}
