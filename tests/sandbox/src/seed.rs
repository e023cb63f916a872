//! The sandbox's data: one vendor-neutral fixture that every simulated PSA renders with
//! the same ids. Tests depend on these ids.
//!
//! | Company | Name | Offboarded | Configurations (ids) |
//! |---|---|---|---|
//! | 100 | Fabrikam Legal | no | 10001–10005, all Active |
//! | 250 | Contoso Dental (the demo client) | yes | 25001–25012: 8 Active, 25009 "Replacement NAS" On Order, 25010–25011 Inactive, 25012 "Dental Chair Tablet" Disposed |
//! | 260 | Adatum Travel | yes | none |
//! | 270 | Parity Clinic (cross-PSA parity) | yes | 27001 "Parity Firewall", 27002 "Parity PC 1", 27003 "Parity PC 2" Active; 27004 "Parity Old PC" Inactive; 27005 "Parity Retired Server" Disposed |
//! | 300 | Northwind Logistics (the large client) | no (ConnectWise status "Inactive") | 300001.., all Active (count configurable, default 10,000) |
//! | 410 | Litware Inc | yes | 41001–41002, Active |
//! | 411 | LITWARE INC | yes | 41101–41102, Active |
//! | 600 | Contoso Ltd (the Microsoft 365 tenant `contoso.example`) | no | none |
//! | 500 | Bench Client | yes | 500001.., all Active (only when asked for) |
//!
//! Neutral configuration states: Active, On Order (in use), Inactive, Disposed. How each
//! vendor renders them:
//!
//! | State | ConnectWise status | Autotask | HaloPSA |
//! |---|---|---|---|
//! | Active | 1 "Active" | `isActive: true` | `inactive: false, status_id: 1` |
//! | On Order | 3 "On Order" | `isActive: true` | `inactive: false, status_id: 3` |
//! | Inactive | 2 "Inactive" (closed) | `isActive: false` | `inactive: true, status_id: 2` |
//! | Disposed | 4 "Disposed" (closed) | `isActive: false, configurationItemType: 9` (Retired) | `inactive: true, status_id: 4` |
//!
//! ConnectWise company statuses: 1 Active, 2 Inactive, 3 Offboarded, 4 Not-Approved
//! (offboarded companies get 3, company 300 gets 2, the others 1). Configuration
//! statuses: 1 Active, 2 Inactive (closed), 3 On Order, 4 Disposed (closed), 5 Returned
//! (closed).
//!
//! Autotask companies: offboarded → `isActive: false, companyType: 6` (Cancellation),
//! `classification: 101` (Offboarded); the others `isActive: true, companyType: 1`
//! (Customer), `classification: 100` (Standard). Configuration item types by neutral type
//! name: 1 Workstation, 2 Server, 3 Laptop, 4 Network (Firewall, Network Switch, Network),
//! 5 Storage, 6 Tablet, 7 Backup, 8 Other, 9 Retired.
//!
//! HaloPSA clients: `inactive: true` for offboarded companies; `main_site_id` = 10 × id + 1.
//!
//! Contracts, dated relative to the day the sandbox starts (`today`):
//!
//! | Company | Contracts | Every contract ended? |
//! |---|---|---|
//! | 100 | 1001 ends today + 365 days; 1002 cancelled, ended today − 200 | no |
//! | 250 | 2501 ended today − 200; 2502 ended today − 30 | yes |
//! | 260 | 2601 ended today − 30; 2602 open-ended but cancelled | yes |
//! | 270 | 2701 ended today − 30 | yes |
//! | 300 | none | (no contracts) |
//! | 410 | 4101 ended today − 30 | yes |
//! | 411 | 4111 ends today + 365 | no |
//! | 500 | 5001 ended today − 30 (bench only) | yes |
//!
//! Contacts (neutral; every vendor renders them with these ids). `P` = the company's primary
//! contact (ConnectWise `defaultContact` + `defaultFlag`, Autotask `primaryContact`, HaloPSA the
//! main site's `maincontact_id`):
//!
//! | Company | Contacts |
//! |---|---|
//! | 100 | 1001 Ann Fabrikam P, 1002 Ben Fabrikam |
//! | 250 | 5001 Jane Doe CEO P, 5002 Bob Wilson IT Manager, 5003 Billing Contact, 5004 Carla Mendes Receptionist, 5005 Raj Patel Dentist, 5006 Olga Hygienist (inactive), 5007 Tom Baker Practice Manager |
//! | 270 | 7001 Pat Primary P, 7002 Quinn Parity, 7003 Riley Parity, 7004 Sam Former (inactive) |
//! | 300 | 300001.. `large_client_contacts` contacts (default 250), all active, the first primary |
//! | 600 | 60001 Megan Manager P, 60002 Lee Leaver, 60003 Cora Colleague, 60004 Sam Synced (the addresses of the Microsoft 365 tenant's users) |
//! | 410 | 41001 Lee Litware P |
//!
//! Tickets (open unless said): 9001 (250, contact 5002, owner 11), 9002 (250, contact 5004,
//! owner 11), 9003 (250, contact 5001, owner 12), 9004 (250, contact 5002, closed), 9005 (250,
//! contact 5003), 9010 (250, no contact, "Offboarding: Contoso Dental", the demo's ticket),
//! 9701 (270, contact 7002, owner 11), 9702 (270, contact 7003, closed), 9703 (270, contact
//! 7003, owner 12). Owners are ConnectWise members / Autotask resources (role 8) / HaloPSA
//! agents 11 "jsmith" and 12 "service.desk"; boards/queues: 4 "Offboarding" and 1 "Service Desk"
//! (HaloPSA teams by name).
//!
//! Configuration contacts: 25001 → 5002, 25002 → 5004, 25003 → 5001, 25010 → 5005,
//! 27001 → 7002, 27002 → 7003 (the rest none). HaloPSA assets have no documented contact
//! field and do not render these.
//!
//! Renderings (contracts are unconfirmed: the "Unconfirmed points" of docs/vendors/connectwise.md,
//! autotask.md and halopsa.md; these are plausible shapes, and Offramp's clients read them
//! defensively): ConnectWise `/finance/agreements` (`endDate`, `noEndingDateFlag`, `cancelledFlag`,
//! `agreementStatus`); Autotask `Contracts` (`endDate`, always set: open-ended renders as
//! 2099-12-31; `status` 1 active, 0 inactive when cancelled); HaloPSA `/api/ClientContract`
//! (`end_date` or null, `active`).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

// Fake credentials of the sandbox's API members; not secrets of anything real.
pub const CW_COMPANY_ID: &str = "offramp_demo";
pub const CW_PUBLIC_KEY: &str = "sandbox-public-4f2a";
pub const CW_PRIVATE_KEY: &str = "sandbox-private-9c81e7";
pub const CW_CLIENT_ID: &str = "3b1f8a52-7c0e-4d6b-9a51-0f7e2c4d8b19";

pub const AT_USERNAME: &str = "offramp-api@sandbox.example";
pub const AT_SECRET: &str = "sandbox-at-secret-5d21";
pub const AT_INTEGRATION_CODE: &str = "SANDBOXINTEGRATIONCODE00001";

pub const HALO_CLIENT_ID: &str = "offramp-sandbox-client";
pub const HALO_CLIENT_SECRET: &str = "sandbox-halo-secret-77b3";
pub const HALO_TENANT: &str = "offrampdemo";

/// A configuration's lifecycle state, independent of any vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigState {
    Active,
    /// Ordered, not yet deployed; counts as in use.
    OnOrder,
    Inactive,
    Disposed,
}

impl ConfigState {
    /// In use (Active or On Order).
    pub fn is_active(self) -> bool {
        matches!(self, ConfigState::Active | ConfigState::OnOrder)
    }
}

#[derive(Debug, Clone)]
pub struct Company {
    pub id: i64,
    /// Short identifier (ConnectWise `identifier`, Autotask `companyNumber`).
    pub identifier: String,
    pub name: String,
    pub offboarded: bool,
    /// The ConnectWise company status id (1 Active, 2 Inactive, 3 Offboarded).
    pub cw_status: i64,
}

#[derive(Debug, Clone)]
pub struct Configuration {
    pub id: i64,
    pub company_id: i64,
    pub name: String,
    /// Neutral type name: Workstation, Server, Laptop, Firewall, Network Switch, Network,
    /// Storage, Backup, Tablet.
    pub type_name: String,
    pub state: ConfigState,
}

/// A company contact (ConnectWise contact, Autotask contact, HaloPSA user).
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: i64,
    pub company_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub title: String,
    pub active: bool,
    /// The company's primary contact.
    pub primary: bool,
}

/// A service ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: i64,
    pub company_id: i64,
    pub summary: String,
    pub contact_id: Option<i64>,
    /// Member / resource / agent id.
    pub owner_id: Option<i64>,
    /// Board / queue id (HaloPSA renders the team name of it).
    pub board_id: i64,
    pub closed: bool,
}

/// Owners (ConnectWise members, Autotask resources with role 8, HaloPSA agents).
pub const OWNERS: [(i64, &str); 2] = [(11, "jsmith"), (12, "service.desk")];
/// Boards / queues / teams.
pub const BOARDS: [(i64, &str); 2] = [(1, "Service Desk"), (4, "Offboarding")];
/// The Autotask role every sandbox resource is assigned with.
pub const AT_RESOURCE_ROLE: i64 = 8;

/// A contract (ConnectWise agreement, Autotask contract, HaloPSA client contract).
/// Dates are ISO `YYYY-MM-DD`, relative to the day the sandbox starts.
#[derive(Debug, Clone)]
pub struct Contract {
    pub id: i64,
    pub company_id: i64,
    pub name: String,
    pub start: String,
    /// `None`: open-ended.
    pub end: Option<String>,
    pub cancelled: bool,
}

impl Contract {
    /// Still running on `today`: not cancelled, and open-ended or ending today or later.
    pub fn current(&self, today: &str) -> bool {
        !self.cancelled && self.end.as_deref().is_none_or(|end| end >= today)
    }
}

/// The vendor-neutral fixture every simulator renders.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    pub companies: Vec<Company>,
    pub configurations: Vec<Configuration>,
    pub contracts: Vec<Contract>,
    pub contacts: Vec<Contact>,
    pub tickets: Vec<Ticket>,
    /// Configuration id → contact id.
    pub configuration_contacts: BTreeMap<i64, i64>,
    /// The day the fixture was made (UTC), `YYYY-MM-DD`.
    pub today: String,
}

/// `today` shifted by `days`, as `YYYY-MM-DD`.
pub fn day_offset(today: chrono::NaiveDate, days: i64) -> String {
    (today + chrono::Duration::days(days)).format("%Y-%m-%d").to_string()
}

impl Fixture {
    pub fn company(&self, id: i64) -> Option<&Company> {
        self.companies.iter().find(|c| c.id == id)
    }
}

/// The fixture with `large_configs` configurations on company 300 and `bench_configs` on
/// company 500 (company 500 exists only when `bench_configs > 0`).
pub fn fixture(large_configs: usize, bench_configs: usize, bench_contacts: usize) -> Fixture {
    use ConfigState::*;
    let mut fx = Fixture::default();
    let mut company = |id: i64, identifier: &str, name: &str, offboarded: bool, cw_status: i64| {
        fx.companies.push(Company {
            id,
            identifier: identifier.to_string(),
            name: name.to_string(),
            offboarded,
            cw_status,
        })
    };
    company(100, "FabrikamLegal", "Fabrikam Legal", false, 1);
    company(250, "ContosoDental", "Contoso Dental", true, 3);
    company(260, "AdatumTravel", "Adatum Travel", true, 3);
    company(270, "ParityClinic", "Parity Clinic", true, 3);
    company(300, "NorthwindLogistics", "Northwind Logistics", false, 2);
    company(410, "LitwareInc", "Litware Inc", true, 3);
    company(411, "LITWAREINC", "LITWARE INC", true, 3);
    company(600, "ContosoLtd", "Contoso Ltd", false, 1);
    if bench_configs > 0 {
        company(500, "BenchClient", "Bench Client", true, 3);
    }

    let mut add = |id: i64, company_id: i64, name: &str, type_name: &str, state: ConfigState| {
        fx.configurations.push(Configuration {
            id,
            company_id,
            name: name.to_string(),
            type_name: type_name.to_string(),
            state,
        })
    };
    for i in 1..=5 {
        add(10000 + i, 100, &format!("Fabrikam Workstation {i:02}"), "Workstation", Active);
    }
    let contoso: [(&str, &str, ConfigState); 12] = [
        ("Firewall - HQ", "Firewall", Active),
        ("Reception PC 01", "Workstation", Active),
        ("Reception PC 02", "Workstation", Active),
        ("Dr Patel Laptop", "Laptop", Active),
        ("Xray Server", "Server", Active),
        ("Switch - Surgery 2", "Network Switch", Active),
        ("Practice Management Server", "Server", Active),
        ("Wi-Fi Controller", "Network", Active),
        ("Replacement NAS", "Storage", OnOrder),
        ("Old Reception PC", "Workstation", Inactive),
        ("Old Backup Appliance", "Backup", Inactive),
        ("Dental Chair Tablet", "Tablet", Disposed),
    ];
    for (i, (name, type_name, state)) in contoso.iter().enumerate() {
        add(25001 + i as i64, 250, name, type_name, *state);
    }
    let parity: [(&str, &str, ConfigState); 5] = [
        ("Parity Firewall", "Firewall", Active),
        ("Parity PC 1", "Workstation", Active),
        ("Parity PC 2", "Workstation", Active),
        ("Parity Old PC", "Workstation", Inactive),
        ("Parity Retired Server", "Server", Disposed),
    ];
    for (i, (name, type_name, state)) in parity.iter().enumerate() {
        add(27001 + i as i64, 270, name, type_name, *state);
    }
    for i in 0..large_configs as i64 {
        add(300001 + i, 300, &format!("Northwind Device {:05}", i + 1), "Workstation", Active);
    }
    for i in 1..=2 {
        add(41000 + i, 410, &format!("Litware PC {i}"), "Workstation", Active);
        add(41100 + i, 411, &format!("LITWARE Laptop {i}"), "Laptop", Active);
    }
    for i in 0..bench_configs as i64 {
        add(500001 + i, 500, &format!("Bench Device {:05}", i + 1), "Workstation", Active);
    }
    fx.configurations.sort_by_key(|c| c.id);

    let today = chrono::Utc::now().date_naive();
    fx.today = day_offset(today, 0);
    let start = day_offset(today, -900);
    let (ended, ended_earlier, open) = (day_offset(today, -30), day_offset(today, -200), day_offset(today, 365));
    let mut contract = |id: i64, company_id: i64, name: &str, end: Option<&String>, cancelled: bool| {
        fx.contracts.push(Contract {
            id,
            company_id,
            name: name.to_string(),
            start: start.clone(),
            end: end.cloned(),
            cancelled,
        })
    };
    contract(1001, 100, "Managed Services", Some(&open), false);
    contract(1002, 100, "Legacy Support", Some(&ended_earlier), true);
    contract(2501, 250, "Managed Services", Some(&ended_earlier), false);
    contract(2502, 250, "Backup Add-on", Some(&ended), false);
    contract(2601, 260, "Managed Services", Some(&ended), false);
    contract(2602, 260, "Break-fix (no end date)", None, true);
    contract(2701, 270, "Managed Services", Some(&ended), false);
    contract(4101, 410, "Managed Services", Some(&ended), false);
    contract(4111, 411, "Managed Services", Some(&open), false);
    if bench_configs > 0 {
        contract(5001, 500, "Managed Services", Some(&ended), false);
    }
    add_contacts_and_tickets(&mut fx, LARGE_CLIENT_CONTACTS);
    if bench_configs > 0 {
        add_bench_contacts(&mut fx, bench_contacts);
    }
    fx
}

/// Leavers of the bench client who also have a PSA contact (the Microsoft 365 simulator's
/// `add_bench_leavers` names them `bench.leaver.{n}`).
const BENCH_LEAVER_CONTACTS: usize = 100;

/// `n` active contacts of the bench client (company 500): the first
/// [`BENCH_LEAVER_CONTACTS`] are the bench leavers (same address as their Microsoft 365
/// account, so user offboarding's `disable_psa_contact` finds them), the rest staff.
fn add_bench_contacts(fx: &mut Fixture, n: usize) {
    for i in 0..n {
        let (first, last, email) = if i < BENCH_LEAVER_CONTACTS {
            ("Bench".to_string(), format!("Leaver{i}"), format!("bench.leaver.{i}@{}", crate::m365::M365_TENANT_DOMAIN))
        } else {
            ("Bench".to_string(), format!("Staff{i:03}"), format!("bench.staff{i}@benchclient.example"))
        };
        fx.contacts.push(Contact {
            id: 500_001 + i as i64,
            company_id: 500,
            first_name: first,
            last_name: last,
            email,
            title: "Staff".to_string(),
            active: true,
            primary: false,
        });
    }
    fx.contacts.sort_by_key(|c| c.id);
}

/// Contacts of the large client (company 300): more than the blast-radius guard's default.
pub const LARGE_CLIENT_CONTACTS: i64 = 250;

fn add_contacts_and_tickets(fx: &mut Fixture, large_contacts: i64) {
    let domains: HashMap<i64, &str> = [
        (100, "fabrikam.example"),
        (250, "contosodental.example"),
        (270, "parityclinic.example"),
        (300, "northwind.example"),
        (410, "litware.example"),
        (600, "contoso.example"),
    ]
    .into_iter()
    .collect();
    let mut contact = |id: i64, company_id: i64, first: &str, last: &str, title: &str, active: bool, primary: bool| {
        let email = format!("{}.{}@{}", first.to_lowercase(), last.to_lowercase(), domains[&company_id]);
        fx.contacts.push(Contact {
            id,
            company_id,
            first_name: first.to_string(),
            last_name: last.to_string(),
            email,
            title: title.to_string(),
            active,
            primary,
        })
    };
    contact(1001, 100, "Ann", "Fabrikam", "Managing Partner", true, true);
    contact(1002, 100, "Ben", "Fabrikam", "Paralegal", true, false);
    contact(5001, 250, "Jane", "Doe", "CEO", true, true);
    contact(5002, 250, "Bob", "Wilson", "IT Manager", true, false);
    contact(5003, 250, "Billing", "Contact", "Accounts Payable", true, false);
    contact(5004, 250, "Carla", "Mendes", "Receptionist", true, false);
    contact(5005, 250, "Raj", "Patel", "Dentist", true, false);
    contact(5006, 250, "Olga", "Hygienist", "Dental Hygienist", false, false);
    contact(5007, 250, "Tom", "Baker", "Practice Manager", true, false);
    contact(7001, 270, "Pat", "Primary", "Owner", true, true);
    contact(7002, 270, "Quinn", "Parity", "Nurse", true, false);
    contact(7003, 270, "Riley", "Parity", "Office Manager", true, false);
    contact(7004, 270, "Sam", "Former", "Nurse", false, false);
    for i in 0..large_contacts {
        contact(300001 + i, 300, "Northwind", &format!("Staff{:03}", i + 1), "Staff", true, i == 0);
    }
    contact(41001, 410, "Lee", "Litware", "Director", true, true);
    // The people of the Microsoft 365 simulator's tenant (user offboarding, issue 14).
    contact(60001, 600, "Megan", "Manager", "Director", true, true);
    contact(60002, 600, "Lee", "Leaver", "Analyst", true, false);
    contact(60003, 600, "Cora", "Colleague", "Analyst", true, false);
    contact(60004, 600, "Sam", "Synced", "Engineer", true, false);
    fx.contacts.sort_by_key(|c| c.id);

    let mut ticket =
        |id: i64, company_id: i64, summary: &str, contact_id: Option<i64>, owner_id: Option<i64>, closed: bool| {
            fx.tickets.push(Ticket {
                id,
                company_id,
                summary: summary.to_string(),
                contact_id,
                owner_id,
                board_id: 1,
                closed,
            })
        };
    ticket(9001, 250, "Printer offline at reception", Some(5002), Some(11), false);
    ticket(9002, 250, "New starter laptop", Some(5004), Some(11), false);
    ticket(9003, 250, "Renewal questions", Some(5001), Some(12), false);
    ticket(9004, 250, "Password reset", Some(5002), Some(11), true);
    ticket(9005, 250, "Invoice query", Some(5003), Some(12), false);
    ticket(9010, 250, "Offboarding: Contoso Dental", None, Some(12), false);
    ticket(9701, 270, "Parity ticket 1", Some(7002), Some(11), false);
    ticket(9702, 270, "Parity ticket 2", Some(7003), Some(11), true);
    ticket(9703, 270, "Parity ticket 3", Some(7003), Some(12), false);

    for (config, contact) in [(25001, 5002), (25002, 5004), (25003, 5001), (25010, 5005), (27001, 7002), (27002, 7003)]
    {
        fx.configuration_contacts.insert(config, contact);
    }
}

// ---------------------------------------------------------------------------------------
// ConnectWise rendering

pub struct CwData {
    pub agreements: BTreeMap<i64, Value>,
    pub companies: BTreeMap<i64, Value>,
    pub configs: BTreeMap<i64, Value>,
    pub company_statuses: Vec<Value>,
    pub config_statuses: Vec<Value>,
    pub update_failures: HashMap<i64, (u16, String)>,
    pub patch_counts: HashMap<i64, usize>,
    /// `/company/contacts` records.
    pub contacts: BTreeMap<i64, Value>,
    /// Contact PATCHes fail with (HTTP status, message).
    pub contact_failures: HashMap<i64, (u16, String)>,
    /// Contact PATCHes (array body) that reached an existing contact, failed ones included.
    pub contact_patch_counts: HashMap<i64, usize>,
    /// `/service/tickets` records.
    pub tickets: BTreeMap<i64, Value>,
    /// Ticket id → its notes (`/service/tickets/{id}/notes`), oldest first.
    pub ticket_notes: BTreeMap<i64, Vec<Value>>,
    pub next_ticket_id: i64,
    pub next_note_id: i64,
}

impl CwData {
    pub fn config_status(&self, id: i64) -> Option<Value> {
        self.config_statuses.iter().find(|s| s["id"] == json!(id)).cloned()
    }

    /// A `ContactReference` to an existing contact.
    pub fn contact_ref(&self, id: i64) -> Option<Value> {
        self.contacts.get(&id).map(cw_contact_ref)
    }

    /// A company reference (`{id, identifier, name}`) to an existing company.
    pub fn company_ref(&self, id: i64) -> Option<Value> {
        self.companies.get(&id).map(|c| json!({"id": id, "identifier": c["identifier"], "name": c["name"]}))
    }

    /// A ticket note as `/service/tickets/{id}/notes` renders it; stored and returned.
    pub fn add_note(&mut self, ticket_id: i64, text: &str, flags: [bool; 3]) -> Value {
        let id = self.next_note_id;
        self.next_note_id += 1;
        let [detail, internal, resolution] = flags;
        let note = json!({
            "id": id, "ticketId": ticket_id, "text": text,
            "detailDescriptionFlag": detail, "internalAnalysisFlag": internal, "resolutionFlag": resolution,
            "dateCreated": "2026-11-01T09:00:00Z", "createdBy": "offramp_api", "_info": info("note", id),
        });
        self.ticket_notes.entry(ticket_id).or_default().push(note.clone());
        note
    }
}

/// A `ContactReference` (`{id, name}`) to a rendered contact.
pub fn cw_contact_ref(contact: &Value) -> Value {
    let id = contact["id"].as_i64().unwrap_or_default();
    let name = format!(
        "{} {}",
        contact["firstName"].as_str().unwrap_or_default(),
        contact["lastName"].as_str().unwrap_or_default()
    );
    json!({ "id": id, "name": name.trim(), "_info": info("contact", id) })
}

/// A `MemberReference` to one of [`OWNERS`].
pub fn cw_member_ref(id: i64) -> Option<Value> {
    OWNERS
        .iter()
        .find(|(owner, _)| *owner == id)
        .map(|(id, name)| json!({ "id": id, "identifier": name, "name": name, "_info": info("member", *id) }))
}

/// A `BoardReference` to one of [`BOARDS`].
pub fn cw_board_ref(id: i64) -> Option<Value> {
    BOARDS
        .iter()
        .find(|(board, _)| *board == id)
        .map(|(id, name)| json!({ "id": id, "name": name, "_info": info("board", *id) }))
}

/// Ticket statuses of every sandbox board: `(id, name, closedFlag)`. "Resolved" is closed
/// too; "Waiting" is open.
pub const CW_TICKET_STATUSES: [(i64, &str, bool); 4] =
    [(1, "New", false), (3, "Waiting", false), (6, ">Closed", true), (7, "Resolved", true)];

/// A ticket status reference: every sandbox board has "New" (open) and ">Closed".
pub fn cw_ticket_status(closed: bool) -> Value {
    if closed { json!({ "id": 6, "name": ">Closed" }) } else { json!({ "id": 1, "name": "New" }) }
}

/// The ticket status a `replace status` reference names, by `id` or else by exact `name`:
/// `(reference, closedFlag)`.
pub fn cw_ticket_status_named(reference: &Value) -> Option<(Value, bool)> {
    let by_id = reference.get("id").and_then(Value::as_i64);
    let by_name = reference.get("name").and_then(Value::as_str);
    CW_TICKET_STATUSES
        .iter()
        .find(|(id, name, _)| match (by_id, by_name) {
            (Some(wanted), _) => *id == wanted,
            (None, Some(wanted)) => *name == wanted,
            (None, None) => false,
        })
        .map(|(id, name, closed)| (json!({ "id": id, "name": name }), *closed))
}

/// A ConnectWise contact (`/company/contacts`). The email is a communication item; a
/// default phone item comes first so that a reader must pick the item by its type.
pub fn cw_contact(contact: &Contact, company: &Value) -> Value {
    json!({
        "id": contact.id, "firstName": contact.first_name, "lastName": contact.last_name,
        "company": {"id": contact.company_id, "identifier": company["identifier"], "name": company["name"]},
        "inactiveFlag": !contact.active, "defaultFlag": contact.primary, "defaultBillingFlag": false,
        "title": contact.title, "types": [],
        "communicationItems": [
            {"id": contact.id * 10 + 1, "type": {"id": 2, "name": "Direct"}, "value": format!("555-{:07}", contact.id),
             "communicationType": "Phone", "defaultFlag": true},
            {"id": contact.id * 10 + 2, "type": {"id": 1, "name": "Email"}, "value": contact.email,
             "communicationType": "Email", "defaultFlag": true},
        ],
        "_info": info("contact", contact.id),
    })
}

fn info(kind: &str, id: i64) -> Value {
    json!({ "lastUpdated": "2026-11-01T09:00:00Z", "updatedBy": "sandbox", format!("{kind}_href"): format!("/{kind}/{id}") })
}

/// Point a configuration at a status record, as ConnectWise does on update.
pub fn apply_status(config: &mut Value, status: &Value) {
    let id = status["id"].as_i64().unwrap_or_default();
    config["status"] = json!({ "id": id, "name": status["description"], "_info": info("status", id) });
    config["activeFlag"] = json!(!status["closedFlag"].as_bool().unwrap_or(false));
}

/// The ConnectWise status id of a neutral state.
pub fn cw_config_status(state: ConfigState) -> i64 {
    match state {
        ConfigState::Active => 1,
        ConfigState::Inactive => 2,
        ConfigState::OnOrder => 3,
        ConfigState::Disposed => 4,
    }
}

pub fn connectwise(large_configs: usize, bench_configs: usize) -> CwData {
    connectwise_from(&fixture(large_configs, bench_configs, 0))
}

pub fn connectwise_from(fx: &Fixture) -> CwData {
    let company_statuses = vec![
        json!({"id": 1, "name": "Active", "defaultFlag": true, "inactiveFlag": false}),
        json!({"id": 2, "name": "Inactive", "defaultFlag": false, "inactiveFlag": true}),
        json!({"id": 3, "name": "Offboarded", "defaultFlag": false, "inactiveFlag": true}),
        json!({"id": 4, "name": "Not-Approved", "defaultFlag": false, "inactiveFlag": false}),
    ];
    let config_statuses = vec![
        json!({"id": 1, "description": "Active", "closedFlag": false, "defaultFlag": true}),
        json!({"id": 2, "description": "Inactive", "closedFlag": true, "defaultFlag": false}),
        json!({"id": 3, "description": "On Order", "closedFlag": false, "defaultFlag": false}),
        json!({"id": 4, "description": "Disposed", "closedFlag": true, "defaultFlag": false}),
        json!({"id": 5, "description": "Returned", "closedFlag": true, "defaultFlag": false}),
    ];
    let mut data = CwData {
        agreements: BTreeMap::new(),
        companies: BTreeMap::new(),
        configs: BTreeMap::new(),
        company_statuses,
        config_statuses,
        update_failures: HashMap::new(),
        patch_counts: HashMap::new(),
        contacts: BTreeMap::new(),
        contact_failures: HashMap::new(),
        contact_patch_counts: HashMap::new(),
        tickets: BTreeMap::new(),
        ticket_notes: BTreeMap::new(),
        next_ticket_id: fx.tickets.iter().map(|t| t.id).max().unwrap_or(0).max(9900) + 1,
        next_note_id: 1,
    };
    for company in &fx.companies {
        let status = company.cw_status;
        let status_name = data.company_statuses.iter().find(|s| s["id"] == json!(status)).map(|s| s["name"].clone());
        data.companies.insert(
            company.id,
            json!({
                "id": company.id, "identifier": company.identifier, "name": company.name,
                "status": {"id": status, "name": status_name, "_info": info("status", status)},
                "deletedFlag": false, "types": [], "_info": info("company", company.id),
            }),
        );
    }
    for contact in &fx.contacts {
        let rendered = cw_contact(contact, &data.companies[&contact.company_id]);
        if contact.primary
            && let Some(company) = data.companies.get_mut(&contact.company_id)
        {
            company["defaultContact"] = cw_contact_ref(&rendered);
        }
        data.contacts.insert(contact.id, rendered);
    }
    for t in &fx.tickets {
        let mut ticket = json!({
            "id": t.id, "summary": t.summary, "company": data.company_ref(t.company_id),
            "board": cw_board_ref(t.board_id), "status": cw_ticket_status(t.closed), "closedFlag": t.closed,
            "_info": info("ticket", t.id),
        });
        if let Some(contact) = t.contact_id.and_then(|id| data.contact_ref(id)) {
            ticket["contact"] = contact;
        }
        if let Some(owner) = t.owner_id.and_then(cw_member_ref) {
            ticket["resources"] = owner["identifier"].clone();
            ticket["owner"] = owner;
        }
        data.tickets.insert(t.id, ticket);
    }
    for c in &fx.configurations {
        let company = &data.companies[&c.company_id];
        let mut config = json!({
            "id": c.id, "name": c.name,
            "type": {"id": 1, "name": c.type_name},
            "company": {"id": c.company_id, "identifier": company["identifier"], "name": company["name"]},
            "serialNumber": format!("SN{:08}", c.id), "tagNumber": format!("T{}", c.id),
            "_info": info("configuration", c.id),
        });
        let status = data.config_status(cw_config_status(c.state)).expect("seeded status");
        apply_status(&mut config, &status);
        if let Some(contact) = fx.configuration_contacts.get(&c.id).and_then(|id| data.contact_ref(*id)) {
            config["contact"] = contact;
        }
        data.configs.insert(c.id, config);
    }
    for contract in &fx.contracts {
        let agreement = cw_agreement(contract, &data.companies[&contract.company_id], &fx.today);
        data.agreements.insert(contract.id, agreement);
    }
    data
}

/// A ConnectWise agreement (`/finance/agreements`).
pub fn cw_agreement(contract: &Contract, company: &Value, today: &str) -> Value {
    let status = if contract.cancelled {
        "Cancelled"
    } else if contract.current(today) {
        "Active"
    } else {
        "Expired"
    };
    json!({
        "id": contract.id, "name": contract.name, "type": {"id": 1, "name": "Managed Services"},
        "company": {"id": contract.company_id, "identifier": company["identifier"], "name": company["name"]},
        "startDate": format!("{}T00:00:00Z", contract.start),
        "endDate": contract.end.as_ref().map(|end| format!("{end}T00:00:00Z")),
        "noEndingDateFlag": contract.end.is_none(), "cancelledFlag": contract.cancelled,
        "agreementStatus": status, "_info": info("agreement", contract.id),
    })
}

/// An Autotask contract (`Contracts`). Autotask contracts always end: an open-ended one
/// is rendered with a far end date.
pub fn at_contract(contract: &Contract) -> Value {
    json!({
        "id": contract.id, "companyID": contract.company_id, "contractName": contract.name, "contractType": 1,
        "startDate": format!("{}T00:00:00", contract.start),
        "endDate": format!("{}T00:00:00", contract.end.as_deref().unwrap_or("2099-12-31")),
        "status": if contract.cancelled { 0 } else { 1 },
    })
}

/// A HaloPSA client contract (`/api/ClientContract`).
pub fn halo_contract(contract: &Contract, client_name: &str, today: &str) -> Value {
    json!({
        "id": contract.id, "client_id": contract.company_id, "client_name": client_name, "ref": contract.name,
        "start_date": format!("{}T00:00:00", contract.start),
        "end_date": contract.end.as_ref().map(|end| format!("{end}T00:00:00")),
        "active": contract.current(today),
    })
}
