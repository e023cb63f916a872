//! connectwise adapter: contacts, tickets and configuration contacts against the sandbox (issue 4).

use std::collections::BTreeSet;

use offramp::adapters::connectwise::ConnectWiseClient;
use offramp::domain::{
    Company, Contact, NewTicket, PrimaryContactSignal, PsaKind, TicketAssignment, TicketNote, TicketOwner,
};
use offramp::error::PsaError;
use offramp::ports::Psa;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::psa::{client, sim};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 20, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn company(id: &str) -> Company {
    Company {
        id: id.into(),
        name: String::new(),
        identifier: None,
        status: None,
        inactive: None,
        contracts: None,
        categories: Vec::new(),
    }
}

fn by_id<'a>(contacts: &'a [Contact], id: &str) -> &'a Contact {
    contacts.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("contact {id} missing"))
}

#[tokio::test]
async fn list_contacts_maps_every_contact_of_the_demo_client_in_one_request() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    sb.reset_stats();
    let contacts = psa.list_contacts("250").await.unwrap();
    let ids: Vec<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["5001", "5002", "5003", "5004", "5005", "5006", "5007"]);
    assert_eq!(sb.stats().count("GET", "/company/contacts"), 1);

    let jane = by_id(&contacts, "5001");
    assert_eq!(
        (jane.name.as_str(), jane.email.as_deref(), jane.title.as_deref(), jane.company_id.as_str()),
        ("Jane Doe", Some("jane.doe@contosodental.example"), Some("CEO"), "250")
    );
    assert!(jane.active);
    assert_eq!(jane.primary_signals, ["contact.defaultFlag"]);
    let olga = by_id(&contacts, "5006");
    assert!(!olga.active, "5006 is inactive and still listed");
    assert_eq!((olga.name.as_str(), olga.status_label()), ("Olga Hygienist", "Inactive"));
    let bob = by_id(&contacts, "5002");
    assert_eq!(
        (bob.title.as_deref(), bob.email.as_deref()),
        (Some("IT Manager"), Some("bob.wilson@contosodental.example"))
    );
    assert!(bob.primary_signals.is_empty());
    assert_eq!(contacts.iter().filter(|c| c.active).count(), 6);

    assert_eq!(psa.contact("5007").await.unwrap().unwrap().name, "Tom Baker");
    assert_eq!(psa.contact("424242").await.unwrap(), None);
    assert!(matches!(psa.contact("5007 or 1=1").await, Err(PsaError::InvalidId { .. })));
}

#[tokio::test]
async fn list_contacts_follows_next_links_through_small_pages() {
    let sb = sandbox().await;
    let psa =
        ConnectWiseClient::new(offramp_tests::connectwise::settings(&sb), offramp_tests::connectwise::http_settings())
            .unwrap()
            .with_page_size(100);
    sb.reset_stats();
    let contacts = psa.list_contacts("300").await.unwrap();
    assert_eq!(contacts.len(), 250);
    let unique: BTreeSet<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(unique.len(), 250, "no duplicates");
    assert_eq!(sb.stats().count("GET", "/company/contacts"), 3, "pages of 100, 100 and 50");
    let expected: BTreeSet<String> =
        sim(&sb, PsaKind::ConnectWise).contact_ids_of(300).iter().map(i64::to_string).collect();
    assert_eq!(unique, expected.iter().map(String::as_str).collect());

    // With the default page size, 250 contacts are one request.
    let psa = client(&sb, PsaKind::ConnectWise);
    sb.reset_stats();
    assert_eq!(psa.list_contacts("300").await.unwrap().len(), 250);
    assert_eq!(sb.stats().count("GET", "/company/contacts"), 1);
}

#[tokio::test]
async fn primary_contacts_reports_both_signals_in_two_requests() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    sb.reset_stats();
    let signals = psa.primary_contacts(&company("250")).await.unwrap();
    let expected = |signal: &str| PrimaryContactSignal { contact_id: "5001".into(), signal: signal.into() };
    assert_eq!(signals, [expected("company.defaultContact"), expected("contact.defaultFlag")]);
    assert_eq!(sb.stats().count("GET", "/company/companies/{id}"), 1);
    assert_eq!(sb.stats().count("GET", "/company/contacts"), 1);
    assert_eq!(sb.stats().total(), 2);

    assert_eq!(psa.primary_contacts(&company("260")).await.unwrap(), [], "no contacts, no primary");
    assert!(matches!(psa.primary_contacts(&company("999")).await, Err(PsaError::NotFound { .. })));
}

#[tokio::test]
async fn set_contact_active_round_trips_and_failures_carry_the_vendor_message() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    let controls = sim(&sb, PsaKind::ConnectWise);
    let bob = psa.contact("5002").await.unwrap().unwrap();

    let off = psa.set_contact_active(&bob, false).await.unwrap();
    assert!(!off.active);
    assert_eq!(controls.contact_is_active(5002), Some(false));
    let on = psa.set_contact_active(&off, true).await.unwrap();
    assert!(on.active);
    assert_eq!(controls.contact_is_active(5002), Some(true));
    assert_eq!(controls.contact_update_count(5002), 2);

    controls.fail_contact_update(5003, "Contact is referenced by an open agreement");
    let billing = psa.contact("5003").await.unwrap().unwrap();
    let err = psa.set_contact_active(&billing, false).await.unwrap_err();
    assert!(
        matches!(&err, PsaError::Rejected { status: 400, message, .. } if message.contains("Contact is referenced by an open agreement")),
        "{err:?}"
    );
    assert_eq!(controls.contact_is_active(5003), Some(true));
    assert_eq!(controls.contact_update_count(5003), 1, "a 400 is not retried");

    let gone = Contact { id: "424242".into(), ..bob };
    assert!(matches!(psa.set_contact_active(&gone, false).await, Err(PsaError::NotFound { .. })));
}

#[tokio::test]
async fn open_tickets_leave_out_closed_ones() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    sb.reset_stats();
    let tickets = psa.open_tickets("250").await.unwrap();
    let ids: Vec<&str> = tickets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["9001", "9002", "9003", "9005", "9010"]);
    assert_eq!(sb.stats().count("GET", "/service/tickets"), 1);
    let first = &tickets[0];
    assert_eq!(
        (first.contact_id.as_deref(), first.owner_id.as_deref(), first.queue.as_deref(), first.company_id.as_str()),
        (Some("5002"), Some("11"), Some("1"), "250")
    );
    assert_eq!(first.summary, "Printer offline at reception");
    assert_eq!(tickets[4].contact_id, None);
    assert!(tickets.iter().all(|t| !t.closed));
    let closed = psa.ticket("9004").await.unwrap().unwrap();
    assert!(closed.closed);
    assert_eq!(psa.ticket("999999").await.unwrap(), None);
}

#[tokio::test]
async fn update_ticket_changes_contact_owner_and_board_and_clears_the_contact() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    let controls = sim(&sb, PsaKind::ConnectWise);
    sb.reset_stats();
    let change = TicketAssignment {
        contact_id: Some(Some("5007".into())),
        owner: Some(Some(TicketOwner { id: "12".into(), role_id: None })),
        queue: Some(Some("4".into())),
    };
    let updated = psa.update_ticket("9001", &change).await.unwrap();
    assert_eq!(
        (updated.contact_id.as_deref(), updated.owner_id.as_deref(), updated.queue.as_deref()),
        (Some("5007"), Some("12"), Some("4"))
    );
    assert_eq!(sb.stats().count("PATCH", "/service/tickets/{id}"), 1, "one PATCH for the three changes");
    let view = controls.ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (Some(5007), Some(12), Some(4)));

    let clear = TicketAssignment { contact_id: Some(None), ..TicketAssignment::default() };
    let cleared = psa.update_ticket("9001", &clear).await.unwrap();
    assert_eq!((cleared.contact_id, cleared.owner_id.as_deref()), (None, Some("12")));
    assert_eq!(controls.ticket(9001).unwrap().contact_id, None);

    // An owner ConnectWise does not know: its message comes back, nothing changes.
    let bad =
        TicketAssignment { owner: Some(Some(TicketOwner { id: "99".into(), role_id: None })), ..Default::default() };
    let err = psa.update_ticket("9002", &bad).await.unwrap_err();
    assert!(matches!(&err, PsaError::Rejected { status: 400, message, .. } if message.contains("owner")), "{err:?}");
    assert_eq!(controls.ticket(9002).unwrap().owner_id, Some(11));

    // No change: the ticket as it is, without a PATCH.
    sb.reset_stats();
    let same = psa.update_ticket("9002", &TicketAssignment::default()).await.unwrap();
    assert_eq!(same.contact_id.as_deref(), Some("5004"));
    assert_eq!(sb.stats().count("PATCH", "/service/tickets/{id}"), 0);
    assert!(matches!(psa.update_ticket("999999", &clear).await, Err(PsaError::NotFound { .. })));
}

#[tokio::test]
async fn create_ticket_and_add_an_internal_note() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    let controls = sim(&sb, PsaKind::ConnectWise);
    let new = NewTicket {
        company_id: "250".into(),
        summary: "Contact offboarding: Contoso Dental".into(),
        queue: Some("4".into()),
        description: "Automated contact offboarding started".into(),
    };
    let ticket = psa.create_ticket(&new).await.unwrap();
    assert_eq!((ticket.company_id.as_str(), ticket.queue.as_deref(), ticket.closed), ("250", Some("4"), false));
    assert_eq!(ticket.summary, new.summary);
    let on_default = psa.create_ticket(&NewTicket { queue: None, ..new.clone() }).await.unwrap();
    assert_eq!(on_default.queue.as_deref(), Some("1"), "the sandbox's default board");
    assert_ne!(on_default.id, ticket.id);

    let note = TicketNote { title: String::new(), text: "Contacts set inactive: 6".into() };
    psa.add_ticket_note(&ticket.id, &note).await.unwrap();
    let titled = TicketNote { title: "Offramp".into(), text: "Rolled back".into() };
    psa.add_ticket_note(&ticket.id, &titled).await.unwrap();
    let id: i64 = ticket.id.parse().unwrap();
    let view = controls.ticket(id).unwrap();
    assert!(view.notes.contains(&"Contacts set inactive: 6".to_string()), "{:?}", view.notes);
    assert_eq!(view.notes.last().map(String::as_str), Some("Offramp\n\nRolled back"));
    assert_eq!(view.notes.first().map(String::as_str), Some("Automated contact offboarding started"));
    let stored = sb.connectwise().ticket_notes(id);
    assert_eq!(stored.last().unwrap()["internalAnalysisFlag"], true);
    assert!(controls.ticket_ids_of(250).contains(&id));

    let missing = psa.add_ticket_note("999999", &note).await.unwrap_err();
    assert!(matches!(missing, PsaError::NotFound { .. }), "{missing:?}");
    let unknown_company = psa.create_ticket(&NewTicket { company_id: "999".into(), ..new }).await.unwrap_err();
    assert!(matches!(&unknown_company, PsaError::Rejected { status: 400, .. }), "{unknown_company:?}");
}

#[tokio::test]
async fn configuration_contacts_are_listed_and_set() {
    let sb = sandbox().await;
    let psa = client(&sb, PsaKind::ConnectWise);
    let controls = sim(&sb, PsaKind::ConnectWise);
    assert!(psa.supports_configuration_contacts());
    let configs = psa.list_configurations("250", true).await.unwrap();
    let contact_of = |id: &str| configs.iter().find(|c| c.id == id).unwrap().contact_id.clone();
    assert_eq!(contact_of("25001").as_deref(), Some("5002"));
    assert_eq!(contact_of("25010").as_deref(), Some("5005"));
    assert_eq!(contact_of("25004"), None);

    let moved = psa.set_configuration_contact("25001", Some("5007")).await.unwrap();
    assert_eq!(moved.contact_id.as_deref(), Some("5007"));
    assert_eq!(controls.configuration_contact(25001), Some(5007));
    assert_eq!(psa.configuration("25001").await.unwrap().unwrap().contact_id.as_deref(), Some("5007"));
    let cleared = psa.set_configuration_contact("25001", None).await.unwrap();
    assert_eq!(cleared.contact_id, None);
    assert_eq!(controls.configuration_contact(25001), None);
    assert_eq!(cleared.status.name, "Active", "the status is left alone");

    let err = psa.set_configuration_contact("25002", Some("424242")).await.unwrap_err();
    assert!(matches!(&err, PsaError::Rejected { status: 400, .. }), "{err:?}");
    assert_eq!(controls.configuration_contact(25002), Some(5004));
}
