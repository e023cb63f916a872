//! Autotask records read into domain types. Field names are matched ignoring case
//! (Autotask answers camelCase, its models are PascalCase).

use serde_json::Value;

use super::client::CompanyPicklists;
use crate::adapters::vendor_http::{Fields, flag_state, status_of};
use crate::domain::{Company, Configuration, Contact, Ticket};
use crate::error::PsaError;

/// The primary-contact signal Autotask carries on the contact record.
pub(super) const PRIMARY_SIGNAL: &str = "contact.primaryContact";

pub(super) fn company(value: &Value, picklists: &CompanyPicklists) -> Result<Company, PsaError> {
    let f = Fields::ignoring_case(value);
    let id = f.record_id::<PsaError>("company")?;
    let active = f.flag("isActive").unwrap_or(true);
    let mut categories = Vec::new();
    for (name, list) in [("companyType", &picklists.company_type), ("classification", &picklists.classification)] {
        if let Some(label) = f.int(name).and_then(|v| list.get(&v)) {
            categories.push(label.clone());
        }
    }
    Ok(Company {
        id: id.to_string(),
        name: f.str("companyName"),
        identifier: f.get("companyNumber").and_then(Value::as_str).map(str::to_string),
        status: Some(if active { "Active" } else { "Inactive" }.to_string()),
        inactive: Some(!active),
        categories,
        contracts: None,
    })
}

/// A configuration item; an inactive one whose type is in `archived_ci_types` is archived.
pub(super) fn configuration(value: &Value, archived_ci_types: &[i64]) -> Result<Configuration, PsaError> {
    let f = Fields::ignoring_case(value);
    let id = f.record_id::<PsaError>("configuration item")?;
    let active = f.flag("isActive").ok_or_else(|| PsaError::InvalidResponse {
        message: format!("configuration item {id} has no boolean isActive"),
    })?;
    let ci_type = f.int("configurationItemType");
    let state = flag_state(active, ci_type.is_some_and(|t| archived_ci_types.contains(&t)));
    Ok(Configuration {
        id: id.to_string(),
        name: ["referenceTitle", "serialNumber", "referenceNumber"]
            .iter()
            .find_map(|name| f.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
            .map(str::to_string)
            .unwrap_or_else(|| format!("Configuration item {id}")),
        company_id: f.id("companyID").unwrap_or_default(),
        status: status_of(state, None),
        type_name: ci_type.map(|t| format!("type {t}")),
        contact_id: f.id("contactID"),
    })
}

pub(super) fn contact(value: &Value) -> Result<Contact, PsaError> {
    let f = Fields::ignoring_case(value);
    let id = f.record_id::<PsaError>("contact")?;
    // An integer 1/0; a boolean is read too, should a version answer one.
    let active = match f.get("isActive") {
        Some(Value::Number(n)) => n.as_i64().map(|n| n != 0),
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
    .ok_or_else(|| PsaError::InvalidResponse { message: format!("contact {id} has no isActive") })?;
    let name = [f.text("firstName"), f.text("lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let email = f.text("emailAddress");
    let primary = f.flag("primaryContact") == Some(true);
    Ok(Contact {
        id: id.to_string(),
        company_id: f.id("companyID").unwrap_or_default(),
        name: if name.is_empty() { email.clone().unwrap_or_else(|| format!("Contact {id}")) } else { name },
        email,
        title: f.text("title"),
        active,
        primary_signals: if primary { vec![PRIMARY_SIGNAL.to_string()] } else { Vec::new() },
    })
}

/// A ticket; it is closed when its status is `complete_status`.
pub(super) fn ticket(value: &Value, complete_status: i64) -> Result<Ticket, PsaError> {
    let f = Fields::ignoring_case(value);
    Ok(Ticket {
        id: f.record_id::<PsaError>("ticket")?.to_string(),
        company_id: f.id("companyID").unwrap_or_default(),
        summary: f.str("title"),
        contact_id: f.id("contactID"),
        owner_id: f.id("assignedResourceID"),
        owner_role_id: f.id("assignedResourceRoleID"),
        queue: f.id("queueID"),
        closed: f.int("status") == Some(complete_status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contacts_read_an_integer_is_active_and_fall_back_for_names() {
        let read = contact(&json!({
            "id": 7, "companyID": 250, "firstName": " ", "lastName": null, "emailAddress": "a@b.example",
            "isActive": 0, "primaryContact": false,
        }))
        .unwrap();
        assert!(!read.active);
        assert_eq!((read.name.as_str(), read.company_id.as_str()), ("a@b.example", "250"));
        assert!(read.primary_signals.is_empty());
        let primary = contact(&json!({"id": 8, "isActive": 1, "primaryContact": true})).unwrap();
        assert_eq!((primary.name.as_str(), primary.active), ("Contact 8", true));
        assert_eq!(primary.primary_signals, [PRIMARY_SIGNAL]);
        assert!(contact(&json!({"id": 9})).is_err(), "no isActive: not guessed");
    }

    #[test]
    fn fields_are_found_ignoring_case() {
        let read = ticket(&json!({"Id": 7, "Status": 5, "CompanyID": 250}), 5).unwrap();
        assert_eq!((read.id.as_str(), read.company_id.as_str(), read.closed), ("7", "250", true));
    }
}
