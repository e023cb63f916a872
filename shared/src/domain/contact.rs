//! Contacts and tickets as the contact workflow (workflow 001,
//! docs/workflows.md#001-contact-deactivation) needs them, independent of the vendor.

use serde::{Deserialize, Serialize};

/// A company contact (ConnectWise contact, Autotask contact, HaloPSA user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub company_id: String,
    /// Display name ("Jane Doe"): first and last name joined, or the vendor's own name field.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// In use: ConnectWise `inactiveFlag == false`, Autotask `isActive == 1`, HaloPSA `inactive == false`.
    pub active: bool,
    /// Primary-contact flags carried on the contact record itself, by name: ConnectWise
    /// `contact.defaultFlag`, Autotask `contact.primaryContact`. Company-level signals
    /// (ConnectWise `company.defaultContact`, HaloPSA site `maincontact_id`) come from
    /// [`crate::ports::Psa::primary_contacts`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_signals: Vec<String>,
}

impl Contact {
    /// "Active" / "Inactive", as the seed's report shows a contact's status.
    pub fn status_label(&self) -> &'static str {
        if self.active { "Active" } else { "Inactive" }
    }
}

/// One reason to consider a contact the company's primary contact, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryContactSignal {
    pub contact_id: String,
    /// Which field said so, e.g. `company.defaultContact`, `contact.defaultFlag`,
    /// `contact.primaryContact`, `site.maincontact_id`.
    pub signal: String,
}

/// A service ticket (ConnectWise service ticket, Autotask ticket, HaloPSA ticket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub company_id: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// ConnectWise owner member id, Autotask `assignedResourceID`, HaloPSA `agent_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Autotask `assignedResourceRoleID` (Autotask refuses a resource without its role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_role_id: Option<String>,
    /// ConnectWise board id, Autotask `queueID`, HaloPSA team name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    pub closed: bool,
}

/// What to change on a ticket. `None` leaves a field as it is; `Some(None)` clears it;
/// `Some(Some(x))` sets it. Rollback uses the same type to put back what a snapshot recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketAssignment {
    pub contact_id: Option<Option<String>>,
    /// Owner and (Autotask) role travel together.
    pub owner: Option<Option<TicketOwner>>,
    pub queue: Option<Option<String>>,
}

impl TicketAssignment {
    pub fn is_empty(&self) -> bool {
        self.contact_id.is_none() && self.owner.is_none() && self.queue.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOwner {
    pub id: String,
    /// Autotask role id; ignored elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
}

/// A ticket to open (when the run has no `ticket_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub company_id: String,
    pub summary: String,
    /// Board / queue / team, as [`Ticket::queue`]; `None` = the PSA's default.
    pub queue: Option<String>,
    /// Plain text; the first note of the ticket.
    pub description: String,
}

/// A note on a ticket: internal (not shown to the customer), plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketNote {
    pub title: String,
    pub text: String,
}
