//! halo adapter: contacts, tickets and configuration contacts against the sandbox (issue 4).

use std::time::Duration;

use offramp::adapters::halo::{HaloClient, HaloSettings};
use offramp::domain::{Contact, NewTicket, PsaKind, TicketAssignment, TicketNote, TicketOwner};
use offramp::error::PsaError;
use offramp::http::BudgetSettings;
use offramp::ports::Psa;
use offramp_sandbox::{PsaSim, Sandbox, SandboxConfig};
use offramp_tests::psa::{client, halo_settings, http_settings};

const KIND: PsaKind = PsaKind::Halo;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn sim(sandbox: &Sandbox) -> &dyn PsaSim {
    sandbox.psa("halo")
}

fn halo(settings: HaloSettings) -> HaloClient {
    HaloClient::new(settings, http_settings(KIND)).expect("client")
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

fn owner(id: &str) -> TicketOwner {
    TicketOwner { id: id.into(), role_id: None }
}

#[tokio::test]
async fn list_contacts_maps_every_user_of_the_client_active_and_inactive() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let contacts = psa.list_contacts("250").await.unwrap();
    assert_eq!(ids(&contacts, |c| &c.id), ["5001", "5002", "5003", "5004", "5005", "5006", "5007"]);
    let inactive: Vec<&str> = contacts.iter().filter(|c| !c.active).map(|c| c.id.as_str()).collect();
    assert_eq!(inactive, ["5006"], "inactive users are asked for");
    assert_eq!(
        contacts[0],
        Contact {
            id: "5001".into(),
            company_id: "250".into(),
            name: "Jane Doe".into(),
            email: Some("jane.doe@contosodental.example".into()),
            title: Some("CEO".into()),
            active: true,
            // Halo's primary signal is on the site, not the user: see primary_contacts.
            primary_signals: vec![],
        }
    );
    let olga = &contacts[5];
    assert_eq!((olga.name.as_str(), olga.title.as_deref()), ("Olga Hygienist", Some("Dental Hygienist")));
    assert_eq!(olga.status_label(), "Inactive");
    let bob = &contacts[1];
    assert_eq!(sandbox.halo().user(5002).unwrap()["isimportantcontact"], true);
    assert!(bob.primary_signals.is_empty(), "isimportantcontact is not a primary signal");
    assert_eq!(sandbox.stats().count("GET", "/halo/api/users"), 1, "one page of 500");

    let one = psa.contact("5006").await.unwrap().expect("user 5006");
    assert_eq!(&one, olga);
    assert_eq!(psa.contact("424242").await.unwrap(), None);
    assert!(matches!(psa.contact("5006; drop").await, Err(PsaError::InvalidId { .. })));
    assert_eq!(sandbox.stats().count("GET", "/halo/api/users/{id}"), 2, "the invalid id was never sent");
}

#[tokio::test]
async fn list_contacts_pages_through_the_large_client_without_duplicates() {
    let sandbox = sandbox().await;
    let psa = halo(halo_settings(&sandbox)).with_page_size(40);
    let contacts = psa.list_contacts("300").await.unwrap();
    assert_eq!(contacts.len(), 250);
    // Sorted first: `dedup` only drops neighbours, so a repeat pages apart would pass unsorted.
    let mut unique = ids(&contacts, |c| &c.id);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 250, "no duplicates");
    assert_eq!((unique[0].as_str(), unique[249].as_str()), ("300001", "300250"));
    assert!(contacts.iter().all(|c| c.active && c.company_id == "300"));
    assert_eq!(sandbox.stats().count("GET", "/halo/api/users"), 7, "ceil(250 / 40) pages");

    // The default page size takes them in one request.
    sandbox.reset_stats();
    assert_eq!(client(&sandbox, KIND).list_contacts("300").await.unwrap().len(), 250);
    assert_eq!(sandbox.stats().count("GET", "/halo/api/users"), 1);
}

#[tokio::test]
async fn primary_contacts_is_the_main_sites_main_contact() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let company = psa.company_by_id("250").await.unwrap().expect("client 250");
    sandbox.reset_stats();
    let signals = psa.primary_contacts(&company).await.unwrap();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!((signals[0].contact_id.as_str(), signals[0].signal.as_str()), ("5001", "site.maincontact_id"));
    let stats = sandbox.stats();
    assert_eq!(stats.count("GET", "/halo/api/client/{id}"), 1, "the client for its main_site_id");
    assert_eq!(stats.count("GET", "/halo/api/site/{id}"), 1);

    let parity = psa.company_by_id("270").await.unwrap().expect("client 270");
    assert_eq!(ids(&psa.primary_contacts(&parity).await.unwrap(), |s| &s.contact_id), ["7001"]);
    // A client whose main site has no main contact (0): no signal, no error.
    let adatum = psa.company_by_id("260").await.unwrap().expect("client 260");
    assert!(psa.primary_contacts(&adatum).await.unwrap().is_empty());
}

#[tokio::test]
async fn set_contact_active_posts_the_inactive_flag() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let bob = psa.contact("5002").await.unwrap().expect("user 5002");

    let after = psa.set_contact_active(&bob, false).await.unwrap();
    assert!(!after.active);
    assert_eq!(Contact { active: true, ..after.clone() }, bob, "nothing else changed");
    assert_eq!(sim(&sandbox).contact_is_active(5002), Some(false));
    assert!(!psa.contact("5002").await.unwrap().unwrap().active, "read back from HaloPSA");
    assert_eq!(sandbox.halo().user(5002).unwrap()["inactive"], true);

    let again = psa.set_contact_active(&after, true).await.unwrap();
    assert!(again.active);
    assert_eq!(sim(&sandbox).contact_is_active(5002), Some(true));
    assert_eq!(sandbox.stats().count("POST", "/halo/api/users"), 2, "one POST each, no read-back");
    assert_eq!(sim(&sandbox).contact_update_count(5002), 2);

    // An id that is not a HaloPSA id never reaches the PSA.
    let bad = Contact { id: "5002.0".into(), ..bob.clone() };
    assert!(matches!(psa.set_contact_active(&bad, false).await, Err(PsaError::InvalidId { .. })));
    assert_eq!(sim(&sandbox).contact_update_count(5002), 2);

    // Setting a flag is idempotent: a transient failure is retried.
    sandbox.fail_next(1, 503);
    psa.set_contact_active(&bob, false).await.unwrap();
    assert_eq!(sim(&sandbox).contact_is_active(5002), Some(false));
}

#[tokio::test]
async fn a_refused_contact_update_carries_the_vendor_message() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let carla = psa.contact("5004").await.unwrap().expect("user 5004");
    sim(&sandbox).fail_contact_update(5004, "User 5004 is the approver of an open quote");
    let err = psa.set_contact_active(&carla, false).await.unwrap_err();
    assert!(matches!(err, PsaError::Rejected { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("User 5004 is the approver of an open quote"), "{err}");
    assert_eq!(sim(&sandbox).contact_is_active(5004), Some(true));
    assert_eq!(sim(&sandbox).contact_update_count(5004), 1, "a refusal is not retried");

    sim(&sandbox).clear_contact_failures();
    let gone = Contact { id: "424242".into(), ..carla };
    let err = psa.set_contact_active(&gone, false).await.unwrap_err();
    assert!(err.to_string().contains("User 424242 does not exist"), "{err}");
}

#[tokio::test]
async fn open_tickets_leaves_out_closed_ones_and_maps_user_agent_and_team() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let tickets = psa.open_tickets("250").await.unwrap();
    assert_eq!(ids(&tickets, |t| &t.id), ["9001", "9002", "9003", "9005", "9010"], "not the closed 9004");
    let first = &tickets[0];
    assert_eq!(first.summary, "Printer offline at reception");
    assert_eq!(first.company_id, "250");
    assert_eq!(first.contact_id.as_deref(), Some("5002"));
    assert_eq!((first.owner_id.as_deref(), first.owner_role_id.as_deref()), (Some("11"), None));
    assert_eq!(first.queue.as_deref(), Some("Service Desk"), "the team, by name");
    assert!(tickets.iter().all(|t| !t.closed));
    assert_eq!(tickets[4].contact_id, None, "9010 has no user (user_id 0)");
    assert_eq!(sandbox.stats().count("GET", "/halo/api/tickets"), 1);

    let closed = psa.ticket("9004").await.unwrap().expect("ticket 9004");
    assert!(closed.closed, "status 9");
    assert!(!psa.ticket("9001").await.unwrap().unwrap().closed);
    assert_eq!(psa.ticket("424242").await.unwrap(), None);

    // Paging: 5 open tickets at 2 a page.
    sandbox.reset_stats();
    let paged = halo(halo_settings(&sandbox)).with_page_size(2).open_tickets("250").await.unwrap();
    assert_eq!(paged, tickets);
    assert_eq!(sandbox.stats().count("GET", "/halo/api/tickets"), 3);
}

#[tokio::test]
async fn update_ticket_changes_user_agent_and_team_and_clears() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let change = TicketAssignment {
        contact_id: Some(Some("5007".into())),
        owner: Some(Some(owner("12"))),
        queue: Some(Some("Offboarding".into())),
    };
    let after = psa.update_ticket("9001", &change).await.unwrap();
    assert_eq!(after.contact_id.as_deref(), Some("5007"));
    assert_eq!(after.owner_id.as_deref(), Some("12"));
    assert_eq!(after.queue.as_deref(), Some("Offboarding"));
    assert_eq!(after.summary, "Printer offline at reception", "the saved ticket, whole");
    let view = sim(&sandbox).ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (Some(5007), Some(12), Some(4)));
    let stats = sandbox.stats();
    assert_eq!(stats.count("POST", "/halo/api/tickets"), 1);
    assert_eq!(stats.count("GET", "/halo/api/tickets/{id}"), 1, "read first; the POST answers the saved ticket");

    // Clearing the contact leaves the rest.
    let cleared =
        psa.update_ticket("9001", &TicketAssignment { contact_id: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!(cleared.contact_id, None);
    assert_eq!((cleared.owner_id.as_deref(), cleared.queue.as_deref()), (Some("12"), Some("Offboarding")));
    assert_eq!(sim(&sandbox).ticket(9001).unwrap().contact_id, None);
    assert_eq!(sandbox.halo().ticket_record(9001).unwrap()["user_id"], 0);

    // Owner and team cleared too.
    let bare = TicketAssignment { owner: Some(None), queue: Some(None), ..Default::default() };
    let bare = psa.update_ticket("9001", &bare).await.unwrap();
    assert_eq!((bare.owner_id, bare.queue), (None, None));
    let view = sim(&sandbox).ticket(9001).unwrap();
    assert_eq!((view.owner_id, view.board_id), (None, None));

    // HaloPSA's own refusals reach the caller with its message; nothing changes.
    let change = TicketAssignment { contact_id: Some(Some("7002".into())), ..Default::default() };
    let err = psa.update_ticket("9003", &change).await.unwrap_err();
    assert!(matches!(err, PsaError::Rejected { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("User 7002 does not belong to client 250"), "{err}");
    let change = TicketAssignment { queue: Some(Some("Nope".into())), ..Default::default() };
    let err = psa.update_ticket("9003", &change).await.unwrap_err();
    assert!(err.to_string().contains("Team 'Nope' does not exist"), "{err}");
    assert_eq!(sim(&sandbox).ticket(9003).unwrap().contact_id, Some(5001));

    // A ticket that does not exist is NotFound, and no upsert is sent for it.
    sandbox.reset_stats();
    let err = psa.update_ticket("424242", &TicketAssignment { queue: Some(None), ..Default::default() }).await;
    assert!(matches!(err, Err(PsaError::NotFound { .. })), "{err:?}");
    assert_eq!(sandbox.stats().count("POST", "/halo/api/tickets"), 0);
    let bad = TicketAssignment { owner: Some(Some(owner("jsmith"))), ..Default::default() };
    assert!(matches!(psa.update_ticket("9003", &bad).await, Err(PsaError::InvalidId { .. })));
    assert_eq!(sandbox.stats().total(), 1, "an invalid agent id sends nothing");

    // Nothing to change: a read, no write.
    let same = psa.update_ticket("9003", &TicketAssignment::default()).await.unwrap();
    assert_eq!(same.contact_id.as_deref(), Some("5001"));
    assert_eq!(sandbox.stats().count("POST", "/halo/api/tickets"), 0);
}

#[tokio::test]
async fn create_ticket_on_the_main_site_then_add_a_private_note() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let new = NewTicket {
        company_id: "250".into(),
        summary: "Contact offboarding: Contoso Dental".into(),
        queue: Some("Offboarding".into()),
        description: "Contacts to inactivate: 6".into(),
    };
    let ticket = psa.create_ticket(&new).await.unwrap();
    assert_eq!(ticket.summary, "Contact offboarding: Contoso Dental");
    assert_eq!(
        (ticket.company_id.as_str(), ticket.queue.as_deref(), ticket.closed),
        ("250", Some("Offboarding"), false)
    );
    assert_eq!(ticket.contact_id, None);
    let id: i64 = ticket.id.parse().unwrap();
    let record = sandbox.halo().ticket_record(id).unwrap();
    assert_eq!((record["site_id"].as_i64(), record["tickettype_id"].as_i64()), (Some(2501), Some(1)));
    assert_eq!(record["details"], "Contacts to inactivate: 6");

    let text = "Contacts inactivated: 6 <Bob & Carla>\nReason: \"terminated\"\n\nRollback: offramp rollback op-1";
    let note = TicketNote { title: "Offboarding".into(), text: text.into() };
    psa.add_ticket_note(&ticket.id, &note).await.unwrap();
    let view = sim(&sandbox).ticket(id).unwrap();
    assert_eq!(view.notes, [text], "the text survives the HTML round trip");
    assert_eq!(view.board_id, Some(4));
    let actions = sandbox.halo().actions_of(id);
    assert_eq!((actions[0]["outcome_id"].as_i64(), actions[0]["hiddenfromuser"].as_bool()), (Some(7), Some(true)));
    let html = actions[0]["note_html"].as_str().unwrap();
    assert!(html.starts_with("<p>Contacts inactivated: 6 &lt;Bob &amp; Carla&gt;<br>"), "{html}");

    // Without a queue, the team is left to HaloPSA.
    let second = psa.create_ticket(&NewTicket { queue: None, ..new.clone() }).await.unwrap();
    assert_eq!(second.queue, None);
    assert_ne!(second.id, ticket.id);

    let stats = sandbox.stats();
    assert_eq!(stats.count("GET", "/halo/api/client/{id}"), 2, "the main site, once per ticket");
    assert_eq!(stats.count("POST", "/halo/api/tickets"), 2);
    assert_eq!(stats.count("POST", "/halo/api/actions"), 1);

    let err = psa.add_ticket_note("424242", &note).await.unwrap_err();
    assert!(err.to_string().contains("Ticket 424242 does not exist"), "{err}");
    let err = psa.create_ticket(&NewTicket { company_id: "999".into(), ..new.clone() }).await.unwrap_err();
    assert!(matches!(err, PsaError::NotFound { .. }), "{err:?}");
    let err = psa.create_ticket(&NewTicket { queue: Some("Nope".into()), ..new.clone() }).await.unwrap_err();
    assert!(err.to_string().contains("Team 'Nope' does not exist"), "{err}");
    assert_eq!(sandbox.stats().count("POST", "/halo/api/tickets"), 3, "no request for the unknown client");
}

#[tokio::test]
async fn the_note_outcome_and_ticket_type_are_settings() {
    let sandbox = sandbox().await;
    let psa = halo(HaloSettings { note_outcome_id: 99, new_ticket_type_id: 2, ..halo_settings(&sandbox) });
    let new =
        NewTicket { company_id: "270".into(), summary: "Offboarding".into(), queue: None, description: "Start".into() };
    let ticket = psa.create_ticket(&new).await.unwrap();
    let id: i64 = ticket.id.parse().unwrap();
    assert_eq!(sandbox.halo().ticket_record(id).unwrap()["tickettype_id"], 2);
    let err = psa.add_ticket_note(&ticket.id, &TicketNote { title: "t".into(), text: "x".into() }).await.unwrap_err();
    assert!(matches!(err, PsaError::Rejected { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("Outcome 99 does not exist"), "{err}");
    assert!(sim(&sandbox).ticket(id).unwrap().notes.is_empty());
}

#[tokio::test]
async fn a_note_is_not_sent_twice_after_a_failure() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    psa.ticket("9010").await.unwrap(); // a token in hand: the next request is the note
    sandbox.fail_next(1, 503);
    let note = TicketNote { title: "t".into(), text: "once".into() };
    let err = psa.add_ticket_note("9010", &note).await.unwrap_err();
    assert!(matches!(err, PsaError::Connection { .. }), "{err:?}");
    assert!(sim(&sandbox).ticket(9010).unwrap().notes.is_empty(), "not sent again: it might have been saved");
    psa.add_ticket_note("9010", &note).await.unwrap();
    assert_eq!(sim(&sandbox).ticket(9010).unwrap().notes, ["once"]);
}

#[tokio::test]
async fn configuration_contacts_are_not_supported_on_halo() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    assert!(!psa.supports_configuration_contacts());
    let configs = psa.list_configurations("250", true).await.unwrap();
    assert_eq!(configs.len(), 12);
    assert!(configs.iter().all(|c| c.contact_id.is_none()), "assets have no documented contact field");

    sandbox.reset_stats();
    for contact in [Some("5007"), None] {
        let err = psa.set_configuration_contact("25001", contact).await.unwrap_err();
        assert!(matches!(err, PsaError::Configuration { .. }), "{err:?}");
        assert!(err.to_string().contains("no documented contact field"), "{err}");
    }
    assert_eq!(sandbox.stats().total(), 0, "nothing sent");
    assert_eq!(sim(&sandbox).configuration_contact(25001), None);
}

#[tokio::test]
async fn contact_calls_share_the_token_and_the_five_minute_budget() {
    let sandbox = sandbox().await;
    let psa = client(&sandbox, KIND);
    let contacts = psa.list_contacts("250").await.unwrap();
    psa.open_tickets("250").await.unwrap();
    assert_eq!(sandbox.halo_tokens_issued(), 1, "one token for every call");
    sandbox.revoke_halo_tokens();
    psa.set_contact_active(&contacts[1], false).await.unwrap();
    assert_eq!(sandbox.halo_tokens_issued(), 2, "a 401 fetches a new token once");

    // Token + 3 requests: the fourth page is not sent.
    let mut http = http_settings(KIND);
    http.budget = Some(BudgetSettings { limit: 4, window: Duration::from_secs(300), max_wait: Duration::ZERO });
    let small = HaloClient::new(halo_settings(&sandbox), http).unwrap().with_page_size(40);
    sandbox.reset_stats();
    let err = small.list_contacts("300").await.unwrap_err();
    assert!(matches!(err, PsaError::BudgetExhausted { .. }), "{err:?}");
    assert_eq!(sandbox.stats().count("GET", "/halo/api/users"), 3);
    let err = small.add_ticket_note("9001", &TicketNote { title: "t".into(), text: "x".into() }).await.unwrap_err();
    assert!(matches!(err, PsaError::BudgetExhausted { .. }), "{err:?}");
    assert!(sim(&sandbox).ticket(9001).unwrap().notes.is_empty());
    assert_eq!(sandbox.stats().throttled(), 0, "stopped by our budget, not by HaloPSA");
}
