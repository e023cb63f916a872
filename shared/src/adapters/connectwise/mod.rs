//! ConnectWise PSA (Manage) REST API adapter.
//!
//! Facts (docs/vendors/connectwise.md):
//! - Base URL up to and including `apis/3.0`; Basic auth `companyId+publicKey:privateKey`
//!   plus a `clientId` header on every request.
//! - Lists: `conditions` filter, `pageSize` at most 1000 (default 25 silently truncates),
//!   next page from the `Link` header's `rel="next"`.
//! - Updates: `PATCH` with a JSON-Patch **array**, even for one operation.
//! - A configuration's status is a reference to a configuration-status record; "inactive"
//!   is the status whose description is configured (default `Inactive`), looked up by name
//!   because its id differs per tenant.
//! - Errors: `{"code","message","errors":[…]}`; 401/403 auth and permission.
//!
//! UNCONFIRMED points, and how this client copes (docs/vendors/connectwise.md#unconfirmed-points):
//! - Whether an unfiltered configuration list includes inactive ones: we never rely on a
//!   server-side status filter; we list all of a company's configurations and classify them here.
//! - How `closedFlag` relates to `activeFlag`: the status record decides; `activeFlag` is only read.
//! - Whether `=` on strings is case-insensitive: we filter by name on the server and then
//!   again here, ignoring case, so either behaviour gives the same result.
//!
//! Contacts and tickets (workflow 001, docs/workflows.md#001-contact-deactivation):
//! - Contacts are listed with `conditions=company/id=N` only: whether inactive contacts come
//!   back without a filter is third-party evidence, so we add no `inactiveFlag` condition and
//!   read `inactiveFlag` on every record. Email = the default email communication item, else
//!   the first email one (an item is an email by `communicationType`, or by its type name
//!   when `communicationType` is missing).
//! - Which of `Company.defaultContact` and `Contact.defaultFlag` the UI calls "primary" is
//!   UNCONFIRMED: both are read and reported as separate signals.
//! - Open tickets: `company/id=N and closedFlag=false`, and `closedFlag` is checked again here.
//! - Clearing a ticket's (or configuration's) contact with a JSON-Patch `remove` op is UNCONFIRMED
//!   (only `replace` is documented; docs/vendors/connectwise.md#unconfirmed-points); owner and
//!   board are cleared the same way when asked, and ConnectWise's answer (it may refuse: they look
//!   required) is returned.
//! - A new ticket without a board gets the PSA's default board (UNCONFIRMED which one).
//! - Notes are posted with `internalAnalysisFlag: true`: internal, and a flag set in case
//!   "at least one flag must be true" (UNCONFIRMED) holds. ConnectWise notes have no title,
//!   so a title becomes the note's first line.

mod callbacks;
mod client;
mod conditions;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod parse;
mod settings;

pub use callbacks::CallbackRegistration;
pub use client::ConnectWiseClient;
pub use conditions::quote as quote_condition_value;
pub use settings::ConnectWiseSettings;
pub(crate) use settings::load as load_settings;

use async_trait::async_trait;
use serde_json::{Value, json};

use self::client::numeric_id;
use self::parse::{SIGNAL_COMPANY_DEFAULT, SIGNAL_CONTACT_DEFAULT, reference_op};
use crate::adapters::vendor_http::{Fields, exactly_named};
use crate::domain::{
    Company, ConfigState, ConfigStatus, Configuration, ContractSummary, OffboardedCriteria, PsaKind, parse_vendor_date,
};
use crate::domain::{Contact, NewTicket, PrimaryContactSignal, Ticket, TicketAssignment, TicketNote};
use crate::error::PsaError;
use crate::ports::Psa;

impl ConnectWiseClient {
    async fn patch_status(&self, config_id: &str, status_id: i64) -> Result<Configuration, PsaError> {
        let ops = json!([{ "op": "replace", "path": "status", "value": { "id": status_id } }]);
        self.patch_configuration(config_id, &ops).await
    }

    async fn patch_configuration(&self, config_id: &str, ops: &Value) -> Result<Configuration, PsaError> {
        let id = numeric_id(config_id, "configuration")?;
        let statuses = self.statuses().await?;
        let value = self.patch(&format!("company/configurations/{id}"), ops, &format!("configuration {id}")).await?;
        parse::configuration(&value, statuses)
    }
}

/// A company not flagged deleted, read; `None` for a deleted one.
fn live_company(record: &Value) -> Result<Option<Company>, PsaError> {
    if Fields::of(record).flag("deletedFlag").unwrap_or(false) { Ok(None) } else { parse::company(record).map(Some) }
}

#[async_trait]
impl Psa for ConnectWiseClient {
    fn kind(&self) -> PsaKind {
        PsaKind::ConnectWise
    }

    async fn company_by_id(&self, id: &str) -> Result<Option<Company>, PsaError> {
        let id = numeric_id(id, "company")?;
        self.api
            .get(&format!("company/companies/{id}"), &[], &format!("company {id}"))
            .await?
            .map(|value| parse::company(&value))
            .transpose()
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, PsaError> {
        let conditions = format!("name={}", quote_condition_value(name));
        let companies = self.list("company/companies", Some(conditions), "companies", live_company).await?;
        exactly_named(companies.into_iter().flatten().map(Ok).collect(), name)
    }

    async fn offboarded_candidates(&self, criteria: &OffboardedCriteria) -> Result<Vec<Company>, PsaError> {
        // ConnectWise has no company-level inactive flag (it is a property of the status
        // record), and company types are a child collection filtered with `childConditions`,
        // which Offramp does not use yet: name the statuses instead.
        if !criteria.categories.is_empty() {
            return Err(PsaError::Configuration {
                message:
                    "OFFRAMP_OFFBOARDED_CATEGORIES is not supported on ConnectWise; use OFFRAMP_OFFBOARDED_STATUSES"
                        .into(),
            });
        }
        let clauses: Vec<String> =
            criteria.statuses.iter().map(|s| format!("status/name={}", quote_condition_value(s))).collect();
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let companies = self.list("company/companies", Some(clauses.join(" or ")), "companies", live_company).await?;
        Ok(companies.into_iter().flatten().filter(|c| criteria.matches(c)).collect())
    }

    // Agreements (`/finance/agreements`, docs/vendors/connectwise.md#unconfirmed-points): the
    // route and the fields `endDate`, `noEndingDateFlag`, `cancelledFlag` are UNCONFIRMED. Missing
    // fields are read as "no end date" and "not cancelled", i.e. as a current contract,
    // so a misread can only keep a company out of the sweep, never put one in.
    async fn companies_with_ended_contracts(&self, today: chrono::NaiveDate) -> Result<Vec<String>, PsaError> {
        let conditions = format!("endDate<[{today}T00:00:00Z] or cancelledFlag=true");
        let ids = self
            .list("finance/agreements", Some(conditions), "agreements", |a| Ok(Fields::of(a).int("/company/id")))
            .await?;
        let mut ids: Vec<String> = ids.into_iter().flatten().map(|id| id.to_string()).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn contract_summary(&self, company_id: &str, today: chrono::NaiveDate) -> Result<ContractSummary, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let what = format!("agreements of company {id}");
        let agreements = self
            .list("finance/agreements", Some(format!("company/id={id}")), &what, |a| {
                let a = Fields::of(a);
                let open_ended = a.flag("noEndingDateFlag").unwrap_or(false);
                let end = if open_ended {
                    None
                } else {
                    a.get("endDate").and_then(Value::as_str).and_then(parse_vendor_date)
                };
                Ok((end, a.flag("cancelledFlag").unwrap_or(false)))
            })
            .await?;
        Ok(ContractSummary::of(agreements, today))
    }

    async fn list_configurations(
        &self,
        company_id: &str,
        include_archived: bool,
    ) -> Result<Vec<Configuration>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let statuses = self.statuses().await?;
        let what = format!("configurations of company {id}");
        let configs = self
            .list("company/configurations", Some(format!("company/id={id}")), &what, |record| {
                parse::configuration(record, statuses)
            })
            .await?;
        Ok(configs.into_iter().filter(|c| include_archived || c.status.state != ConfigState::Archived).collect())
    }

    // One `conditions` range on the numeric id (docs/vendors/connectwise.md#filtering-conditions).
    async fn list_configurations_between(
        &self,
        company_id: &str,
        first: &str,
        last: &str,
    ) -> Option<Result<Vec<Configuration>, PsaError>> {
        let listed = async {
            let id = numeric_id(company_id, "company")?;
            let (first, last) = (numeric_id(first, "configuration")?, numeric_id(last, "configuration")?);
            let statuses = self.statuses().await?;
            let what = format!("configurations {first}..={last} of company {id}");
            let conditions = format!("company/id={id} and id>={first} and id<={last}");
            self.list("company/configurations", Some(conditions), &what, |record| {
                parse::configuration(record, statuses)
            })
            .await
        };
        Some(listed.await)
    }

    async fn configuration(&self, id: &str) -> Result<Option<Configuration>, PsaError> {
        let id = numeric_id(id, "configuration")?;
        let statuses = self.statuses().await?;
        self.api
            .get(&format!("company/configurations/{id}"), &[], &format!("configuration {id}"))
            .await?
            .map(|value| parse::configuration(&value, statuses))
            .transpose()
    }

    async fn deactivate_configuration(&self, config: &Configuration) -> Result<Configuration, PsaError> {
        let inactive = self.statuses().await?.inactive.id;
        self.patch_status(&config.id, inactive).await
    }

    async fn set_configuration_status(
        &self,
        config_id: &str,
        status: &ConfigStatus,
    ) -> Result<Configuration, PsaError> {
        let status_id = status.id.as_deref().and_then(|id| id.parse::<i64>().ok()).ok_or_else(|| {
            PsaError::InvalidId { message: format!("status '{}' has no ConnectWise status id", status.name) }
        })?;
        self.patch_status(config_id, status_id).await
    }

    async fn check_access(&self) -> Result<(), PsaError> {
        self.statuses().await.map(|_| ())
    }

    async fn list_contacts(&self, company_id: &str) -> Result<Vec<Contact>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        // No `inactiveFlag` condition: every contact, active or not (see the module doc).
        let what = format!("contacts of company {id}");
        self.list("company/contacts", Some(format!("company/id={id}")), &what, parse::contact).await
    }

    async fn contact(&self, id: &str) -> Result<Option<Contact>, PsaError> {
        let id = numeric_id(id, "contact")?;
        self.api
            .get(&format!("company/contacts/{id}"), &[], &format!("contact {id}"))
            .await?
            .map(|value| parse::contact(&value))
            .transpose()
    }

    // Two requests: the company (for `defaultContact`) and the company's contacts that have
    // `defaultFlag=true` (one page unless a company has over 1000 of them). Both signals are
    // reported, also when they name the same contact.
    async fn primary_contacts(&self, company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError> {
        let id = numeric_id(&company.id, "company")?;
        let what = format!("company {id}");
        let record = self
            .api
            .get(&format!("company/companies/{id}"), &[], &what)
            .await?
            .ok_or_else(|| PsaError::NotFound { what: what.clone() })?;
        let mut signals = Vec::new();
        if let Some(contact_id) = record.pointer("/defaultContact/id").and_then(Value::as_i64) {
            signals.push(PrimaryContactSignal {
                contact_id: contact_id.to_string(),
                signal: SIGNAL_COMPANY_DEFAULT.to_string(),
            });
        }
        let conditions = format!("company/id={id} and defaultFlag=true");
        let flagged = self
            .list("company/contacts", Some(conditions), &format!("default contacts of company {id}"), parse::contact)
            .await?;
        for contact in flagged {
            // Checked again here, in case the server ignored part of the condition.
            if contact.company_id == id.to_string()
                && contact.primary_signals.iter().any(|s| s == SIGNAL_CONTACT_DEFAULT)
            {
                signals
                    .push(PrimaryContactSignal { contact_id: contact.id, signal: SIGNAL_CONTACT_DEFAULT.to_string() });
            }
        }
        Ok(signals)
    }

    async fn set_contact_active(&self, contact: &Contact, active: bool) -> Result<Contact, PsaError> {
        let id = numeric_id(&contact.id, "contact")?;
        let ops = json!([{ "op": "replace", "path": "inactiveFlag", "value": !active }]);
        let value = self.patch(&format!("company/contacts/{id}"), &ops, &format!("contact {id}")).await?;
        parse::contact(&value)
    }

    async fn open_tickets(&self, company_id: &str) -> Result<Vec<Ticket>, PsaError> {
        let id = numeric_id(company_id, "company")?;
        let conditions = format!("company/id={id} and closedFlag=false");
        let tickets = self
            .list("service/tickets", Some(conditions), &format!("open tickets of company {id}"), parse::ticket)
            .await?;
        // Checked again here, in case the server ignored part of the condition.
        Ok(tickets.into_iter().filter(|t| !t.closed && t.company_id == id.to_string()).collect())
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, PsaError> {
        let id = numeric_id(id, "ticket")?;
        self.api
            .get(&format!("service/tickets/{id}"), &[], &format!("ticket {id}"))
            .await?
            .map(|value| parse::ticket(&value))
            .transpose()
    }

    // One PATCH carrying every change (ConnectWise applies the array as one update).
    async fn update_ticket(&self, ticket_id: &str, change: &TicketAssignment) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let what = format!("ticket {id}");
        let mut ops = Vec::new();
        if let Some(contact) = &change.contact_id {
            ops.push(reference_op("contact", contact.as_deref().map(|c| numeric_id(c, "contact")).transpose()?));
        }
        if let Some(owner) = &change.owner {
            // Autotask's role id has no meaning here and is ignored.
            ops.push(reference_op("owner", owner.as_ref().map(|o| numeric_id(&o.id, "member")).transpose()?));
        }
        if let Some(queue) = &change.queue {
            ops.push(reference_op("board", queue.as_deref().map(|q| numeric_id(q, "board")).transpose()?));
        }
        if ops.is_empty() {
            // Nothing to change: the ticket as it is.
            return self.ticket(&id.to_string()).await?.ok_or(PsaError::NotFound { what });
        }
        let value = self.patch(&format!("service/tickets/{id}"), &Value::Array(ops), &what).await?;
        parse::ticket(&value)
    }

    // A status change is a reference `replace`, like owner and board. An all-digit setting is
    // a status id; anything else is a name on the ticket's board, which ConnectWise resolves
    // (UNCONFIRMED: docs/vendors/ticket-close.md#connectwise). Whichever, the answer must
    // carry `closedFlag: true`: a status that does not close the ticket is an error.
    async fn close_ticket(&self, ticket_id: &str) -> Result<Ticket, PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let what = format!("ticket {id}");
        let status = self.closed_ticket_status.as_str();
        let reference = match status.parse::<i64>() {
            Ok(status_id) => json!({ "id": status_id }),
            Err(_) => json!({ "name": status }),
        };
        let ops = json!([{ "op": "replace", "path": "status", "value": reference }]);
        let ticket = parse::ticket(&self.patch(&format!("service/tickets/{id}"), &ops, &what).await?)?;
        if !ticket.closed {
            return Err(PsaError::InvalidResponse {
                message: format!("{what} is still open after its status was set to '{status}' (not a closed status?)"),
            });
        }
        Ok(ticket)
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, PsaError> {
        let company = numeric_id(&ticket.company_id, "company")?;
        let mut body = json!({
            "summary": ticket.summary,
            "company": { "id": company },
            "initialDescription": ticket.description,
        });
        // Without a board ConnectWise picks its default (which one is UNCONFIRMED).
        if let Some(board) = &ticket.queue {
            body["board"] = json!({ "id": numeric_id(board, "board")? });
        }
        let value = self.post("service/tickets", &body, &format!("new ticket for company {company}")).await?;
        parse::ticket(&value)
    }

    async fn add_ticket_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), PsaError> {
        let id = numeric_id(ticket_id, "ticket")?;
        let text = match note.title.trim() {
            "" => note.text.clone(),
            title => format!("{title}\n\n{}", note.text),
        };
        // Internal (not shown to the customer); "at least one flag true" is UNCONFIRMED, and this one is.
        let body = json!({ "text": text, "internalAnalysisFlag": true });
        self.post(&format!("service/tickets/{id}/notes"), &body, &format!("note on ticket {id}")).await.map(|_| ())
    }

    // `replace` with a reference sets the contact; clearing it with `remove` is UNCONFIRMED.
    async fn set_configuration_contact(
        &self,
        config_id: &str,
        contact_id: Option<&str>,
    ) -> Result<Configuration, PsaError> {
        let contact = contact_id.map(|c| numeric_id(c, "contact")).transpose()?;
        self.patch_configuration(config_id, &json!([reference_op("contact", contact)])).await
    }
}
