//! ConnectWise records read into domain types, and JSON-Patch operations.

use serde_json::{Value, json};

use super::client::StatusTable;
use crate::adapters::vendor_http::Fields;
use crate::domain::{Company, ConfigState, ConfigStatus, Configuration, Contact, Ticket};
use crate::error::PsaError;

/// Signal names, as [`crate::domain::PrimaryContactSignal::signal`] and [`Contact::primary_signals`] carry them.
pub(super) const SIGNAL_COMPANY_DEFAULT: &str = "company.defaultContact";
pub(super) const SIGNAL_CONTACT_DEFAULT: &str = "contact.defaultFlag";

pub(super) fn company(value: &Value) -> Result<Company, PsaError> {
    let f = Fields::of(value);
    Ok(Company {
        id: f.record_id::<PsaError>("company")?.to_string(),
        name: f.str("name"),
        identifier: f.get("identifier").and_then(Value::as_str).map(str::to_string),
        status: f.get("/status/name").and_then(Value::as_str).map(str::to_string),
        inactive: None,
        contracts: None,
        categories: f
            .get("types")
            .and_then(Value::as_array)
            .map(|types| {
                types.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).map(str::to_string).collect()
            })
            .unwrap_or_default(),
    })
}

pub(super) fn configuration(value: &Value, statuses: &StatusTable) -> Result<Configuration, PsaError> {
    let f = Fields::of(value);
    let id = f.record_id::<PsaError>("configuration")?;
    let status_id = f.int("/status/id");
    let record = status_id.and_then(|id| statuses.by_id.get(&id));
    let name = record
        .map(|r| r.description.clone())
        .or_else(|| f.get("/status/name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "(no status)".to_string());
    // The status record decides, because status is what we write. A configuration
    // without a status, or in a status this tenant does not list, counts as in use.
    let state = match record {
        Some(r) if r.id == statuses.inactive.id => ConfigState::Inactive,
        Some(r) if r.closed_flag => ConfigState::Archived,
        _ => ConfigState::Active,
    };
    Ok(Configuration {
        id: id.to_string(),
        name: f.str("name"),
        company_id: f.id("/company/id").unwrap_or_default(),
        status: ConfigStatus { id: status_id.map(|v| v.to_string()), name, state },
        type_name: f.get("/type/name").and_then(Value::as_str).map(str::to_string),
        contact_id: f.id("/contact/id"),
    })
}

pub(super) fn contact(value: &Value) -> Result<Contact, PsaError> {
    let f = Fields::of(value);
    let id = f.record_id::<PsaError>("contact")?;
    let name = [f.text("firstName"), f.text("lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let mut primary_signals = Vec::new();
    if f.flag("defaultFlag") == Some(true) {
        primary_signals.push(SIGNAL_CONTACT_DEFAULT.to_string());
    }
    Ok(Contact {
        id: id.to_string(),
        company_id: f.id("/company/id").unwrap_or_default(),
        name,
        email: contact_email(value),
        title: f.text("title"),
        // `inactiveFlag` defaults to false in ConnectWise: a record without it is in use.
        active: !f.flag("inactiveFlag").unwrap_or(false),
        primary_signals,
    })
}

pub(super) fn ticket(value: &Value) -> Result<Ticket, PsaError> {
    let f = Fields::of(value);
    Ok(Ticket {
        id: f.record_id::<PsaError>("ticket")?.to_string(),
        company_id: f.id("/company/id").unwrap_or_default(),
        summary: f.str("summary"),
        contact_id: f.id("/contact/id"),
        owner_id: f.id("/owner/id"),
        owner_role_id: None,
        queue: f.id("/board/id"),
        closed: f.flag("closedFlag").unwrap_or(false),
    })
}

/// The contact's email: the default email communication item, else the first email one.
pub(super) fn contact_email(contact: &Value) -> Option<String> {
    let items = contact.get("communicationItems").and_then(Value::as_array)?;
    let emails: Vec<&Value> = items
        .iter()
        .filter(|item| {
            match item.get("communicationType").and_then(Value::as_str) {
                Some(kind) => kind.eq_ignore_ascii_case("email"),
                // Without `communicationType`, trust a type name that says so.
                None => item
                    .pointer("/type/name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.to_ascii_lowercase().contains("email")),
            }
        })
        .filter(|item| item.get("value").and_then(Value::as_str).is_some_and(|v| !v.trim().is_empty()))
        .collect();
    let chosen = emails
        .iter()
        .find(|item| item.get("defaultFlag").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())?;
    chosen.get("value").and_then(Value::as_str).map(|v| v.trim().to_string())
}

/// A JSON-Patch operation setting a reference field (`{"id": N}`), or removing it when `id` is `None`.
pub(super) fn reference_op(path: &str, id: Option<i64>) -> Value {
    match id {
        Some(id) => json!({ "op": "replace", "path": path, "value": { "id": id } }),
        None => json!({ "op": "remove", "path": path }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_the_default_email_item_else_the_first_one() {
        let phone =
            json!({"type": {"name": "Direct"}, "value": "555", "communicationType": "Phone", "defaultFlag": true});
        let other = json!({"type": {"name": "Email"}, "value": "other@x.example", "communicationType": "Email"});
        let default = json!({"type": {"name": "Email"}, "value": " main@x.example ", "communicationType": "Email", "defaultFlag": true});
        let record = json!({"communicationItems": [phone, other, default]});
        assert_eq!(contact_email(&record).as_deref(), Some("main@x.example"));
        let record = json!({"communicationItems": [phone, other]});
        assert_eq!(contact_email(&record).as_deref(), Some("other@x.example"));
        // No `communicationType`: the type name decides.
        let untyped = json!({"communicationItems": [{"type": {"name": "Email Work"}, "value": "w@x.example"}]});
        assert_eq!(contact_email(&untyped).as_deref(), Some("w@x.example"));
        assert_eq!(contact_email(&json!({"communicationItems": [phone]})), None);
        assert_eq!(contact_email(&json!({})), None);
    }

    #[test]
    fn contacts_and_tickets_are_read_defensively() {
        let read = contact(&json!({
            "id": 7, "firstName": "Cher", "company": {"id": 250}, "defaultFlag": true, "title": " "
        }))
        .unwrap();
        assert_eq!((read.name.as_str(), read.active, read.title), ("Cher", true, None));
        assert_eq!(read.primary_signals, ["contact.defaultFlag"]);
        let inactive = contact(&json!({"id": 8, "inactiveFlag": true})).unwrap();
        assert!(!inactive.active && inactive.primary_signals.is_empty());
        assert!(contact(&json!({"firstName": "No id"})).is_err());
        let read = ticket(&json!({
            "id": 9, "summary": "s", "company": {"id": 250}, "board": {"id": 4, "name": "Offboarding"}
        }))
        .unwrap();
        assert_eq!(
            (read.queue.as_deref(), read.contact_id, read.owner_id, read.closed),
            (Some("4"), None, None, false)
        );
    }

    #[test]
    fn reference_ops_replace_or_remove() {
        assert_eq!(reference_op("owner", Some(11)), json!({"op": "replace", "path": "owner", "value": {"id": 11}}));
        assert_eq!(reference_op("contact", None), json!({"op": "remove", "path": "contact"}));
    }
}
