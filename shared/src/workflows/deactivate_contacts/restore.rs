//! How a rollback puts back what a contact deactivation changed (contact active flag,
//! ticket contact / owner / queue, configuration contact): registered with the engine's
//! restore registry, so the rollback needs no knowledge of this workflow. The summary
//! note, a ticket the run opened and the notification stay as records.

use serde_json::{Value, json};

use super::WORKFLOW;
use crate::domain::{Configuration, Contact, ItemChange, ItemKind, Ticket, TicketAssignment, TicketOwner};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::restore::{
    Judgement, Restorable, RestoreError, RestoreRegistry, RestoreSystems, Reversibility, parse_state,
};
use crate::ports::async_trait;

pub fn register(registry: &mut RestoreRegistry) {
    registry
        .register_workflow(WORKFLOW, Reversibility::Reversible)
        .register_item(ItemKind::Contact, parse_contact)
        .register_item(ItemKind::Ticket, parse_ticket)
        .register_item(ItemKind::ConfigurationContact, parse_configuration_contact)
        .keep_as_record(ItemKind::TicketNote)
        .keep_as_record(ItemKind::SummaryTicket)
        .keep_as_record(ItemKind::Notification);
}

fn parse_contact(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
    let before: Contact = parse_state(&change.before, change)?;
    let left_active = change.after.as_ref().and_then(|a| a["active"].as_bool()).unwrap_or(false);
    Ok(Some(Box::new(ContactActive { before, left_active })))
}

fn parse_ticket(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
    let before: Ticket = parse_state(&change.before, change)?;
    let Some(after) = &change.after else { return Ok(None) };
    let left: Ticket = parse_state(after, change)?;
    Ok(Some(Box::new(TicketFields { before, left })))
}

fn parse_configuration_contact(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
    let before: Configuration = parse_state(&change.before, change)?;
    let Some(after) = &change.after else { return Ok(None) };
    let left = parse_state::<Configuration>(after, change)?.contact_id;
    Ok(Some(Box::new(ConfigContact { before, left })))
}

fn active_label(active: bool) -> String {
    if active { "active" } else { "inactive" }.to_string()
}

/// A contact's active flag.
struct ContactActive {
    before: Contact,
    left_active: bool,
}

#[async_trait]
impl Restorable for ContactActive {
    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::ContactUpdateFailed
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn kind(&self) -> ItemKind {
        ItemKind::Contact
    }
    fn id(&self) -> &str {
        &self.before.id
    }
    fn name(&self) -> &str {
        &self.before.name
    }
    fn restore_to(&self) -> String {
        active_label(self.before.active)
    }

    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let psa = systems.psa;
        let Some(now) = psa.contact(&self.before.id).await? else { return Ok(Judgement::missing()) };
        let (label, left) = (active_label(now.active), active_label(self.left_active));
        let mut judgement = Judgement::compare(&self.before.active, &self.left_active, &now.active, label, left);
        // The report has always said only "changed since the operation" for contacts.
        judgement.message = None;
        Ok(judgement.with_current(json!(now)))
    }

    async fn restore(&self, systems: &RestoreSystems<'_>, current: &Value) -> Result<Value, RestoreError> {
        let psa = systems.psa;
        // The contact as read now carries the PSA's current fields (ConnectWise writes the
        // whole record back); fall back to the snapshot if it cannot be read.
        let now: Contact = serde_json::from_value(current.clone()).unwrap_or_else(|_| self.before.clone());
        Ok(json!(psa.set_contact_active(&now, self.before.active).await?))
    }
}

fn ticket_fields(ticket: &Ticket) -> (Option<&str>, Option<&str>, Option<&str>) {
    (ticket.contact_id.as_deref(), ticket.owner_id.as_deref(), ticket.queue.as_deref())
}

fn describe_ticket(ticket: &Ticket) -> String {
    format!(
        "contact {}, owner {}, queue {}",
        ticket.contact_id.as_deref().unwrap_or("none"),
        ticket.owner_id.as_deref().unwrap_or("none"),
        ticket.queue.as_deref().unwrap_or("none")
    )
}

/// A ticket's contact, owner and queue.
struct TicketFields {
    before: Ticket,
    left: Ticket,
}

#[async_trait]
impl Restorable for TicketFields {
    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::RelatedUpdateFailed
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn kind(&self) -> ItemKind {
        ItemKind::Ticket
    }
    fn id(&self) -> &str {
        &self.before.id
    }
    fn name(&self) -> &str {
        &self.before.summary
    }
    fn restore_to(&self) -> String {
        describe_ticket(&self.before)
    }

    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let psa = systems.psa;
        let Some(now) = psa.ticket(&self.before.id).await? else { return Ok(Judgement::missing()) };
        let (before, left, current) = (ticket_fields(&self.before), ticket_fields(&self.left), ticket_fields(&now));
        let judgement =
            Judgement::compare(&before, &left, &current, describe_ticket(&now), describe_ticket(&self.left));
        Ok(judgement.with_current(json!(now)))
    }

    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        let psa = systems.psa;
        // Only the fields the operation changed go back.
        let (before, left) = (&self.before, &self.left);
        let mut assignment = TicketAssignment::default();
        if before.contact_id != left.contact_id {
            assignment.contact_id = Some(before.contact_id.clone());
        }
        if before.owner_id != left.owner_id || before.owner_role_id != left.owner_role_id {
            assignment.owner =
                Some(before.owner_id.clone().map(|id| TicketOwner { id, role_id: before.owner_role_id.clone() }));
        }
        if before.queue != left.queue {
            assignment.queue = Some(before.queue.clone());
        }
        Ok(json!(psa.update_ticket(&before.id, &assignment).await?))
    }
}

/// The contact a configuration points at.
struct ConfigContact {
    before: Configuration,
    left: Option<String>,
}

fn contact_label(contact_id: Option<&str>) -> String {
    format!("contact {}", contact_id.unwrap_or("none"))
}

#[async_trait]
impl Restorable for ConfigContact {
    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::RelatedUpdateFailed
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn kind(&self) -> ItemKind {
        ItemKind::ConfigurationContact
    }
    fn id(&self) -> &str {
        &self.before.id
    }
    fn name(&self) -> &str {
        &self.before.name
    }
    fn restore_to(&self) -> String {
        contact_label(self.before.contact_id.as_deref())
    }

    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let psa = systems.psa;
        let Some(now) = psa.configuration(&self.before.id).await? else { return Ok(Judgement::missing()) };
        let (label, left) = (contact_label(now.contact_id.as_deref()), contact_label(self.left.as_deref()));
        let judgement = Judgement::compare(&self.before.contact_id, &self.left, &now.contact_id, label, left);
        Ok(judgement.with_current(json!(now)))
    }

    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        let psa = systems.psa;
        Ok(json!(psa.set_configuration_contact(&self.before.id, self.before.contact_id.as_deref()).await?))
    }
}
