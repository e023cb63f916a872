//! HaloPSA records read into domain types, and the upsert bodies Offramp sends.

use serde_json::{Map, Value, json};

use super::client::numeric_id;
use crate::adapters::vendor_http::{Fields, flag_state, status_of};
use crate::domain::{Company, Configuration, Contact, Ticket, TicketAssignment};
use crate::error::PsaError;

/// `status_id` values of closed tickets: 9 is "Closed" in a default tenant. UNCONFIRMED
/// (tenants define their own statuses); lists use `open_only=true` and only a single
/// ticket read relies on this.
const CLOSED_STATUS_IDS: [i64; 1] = [9];
/// `user_id` that leaves a ticket without a contact. UNCONFIRMED: `-1` is known only as
/// "the client's General User" on create; 0 means no user here.
const NO_USER: i64 = 0;
/// `agent_id` of an unassigned ticket (UNCONFIRMED).
const NO_AGENT: i64 = 0;

pub(super) fn client(value: &Value) -> Result<Company, PsaError> {
    let f = Fields::of(value);
    let inactive = f.flag("inactive").unwrap_or(false);
    Ok(Company {
        id: f.record_id::<PsaError>("client")?.to_string(),
        name: f.str("name"),
        identifier: None,
        status: Some(if inactive { "Inactive" } else { "Active" }.to_string()),
        inactive: Some(inactive),
        categories: Vec::new(),
        contracts: None,
    })
}

/// An asset; an inactive one whose `status_id` is in `archived_status_ids` is archived.
pub(super) fn asset(value: &Value, archived_status_ids: &[i64]) -> Result<Configuration, PsaError> {
    let f = Fields::of(value);
    let id = f.record_id::<PsaError>("asset")?;
    let inactive = f
        .flag("inactive")
        .ok_or_else(|| PsaError::InvalidResponse { message: format!("asset {id} has no boolean inactive") })?;
    let status_id = f.int("status_id");
    let state = flag_state(!inactive, status_id.is_some_and(|s| archived_status_ids.contains(&s)));
    Ok(Configuration {
        id: id.to_string(),
        name: ["key_field", "inventory_number"]
            .iter()
            .find_map(|name| f.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
            .map(str::to_string)
            .unwrap_or_else(|| format!("Asset {id}")),
        company_id: f.int("client_id").map(|v| v.to_string()).unwrap_or_default(),
        status: status_of(state, status_id.map(|s| s.to_string())),
        type_name: f.get("assettype_name").and_then(Value::as_str).map(str::to_string),
        contact_id: None,
    })
}

/// A user (Halo's contact). `client_hint`: the client listed, should a row lack `client_id`.
pub(super) fn user(value: &Value, client_hint: Option<i64>) -> Result<Contact, PsaError> {
    let f = Fields::of(value);
    let id = f.record_id::<PsaError>("user")?;
    let inactive = f
        .flag("inactive")
        .ok_or_else(|| PsaError::InvalidResponse { message: format!("user {id} has no boolean inactive") })?;
    let joined = [f.text("firstname"), f.text("surname")].into_iter().flatten().collect::<Vec<_>>();
    let email = f.text("emailaddress");
    let name = if joined.is_empty() {
        f.text("name").or_else(|| email.clone()).unwrap_or_else(|| format!("User {id}"))
    } else {
        joined.join(" ")
    };
    Ok(Contact {
        id: id.to_string(),
        company_id: f.int("client_id").filter(|c| *c > 0).or(client_hint).map(|c| c.to_string()).unwrap_or_default(),
        name,
        email,
        // The job title's field name is UNCONFIRMED: `jobtitle`, else `title`, else none.
        title: f.text("jobtitle").or_else(|| f.text("title")),
        active: !inactive,
        // Halo's only primary signal is company-level (the main site's contact), read by
        // `primary_contacts`; `isimportantcontact` is a different flag.
        primary_signals: Vec::new(),
    })
}

pub(super) fn ticket(value: &Value) -> Result<Ticket, PsaError> {
    let f = Fields::of(value);
    Ok(Ticket {
        id: f.record_id::<PsaError>("ticket")?.to_string(),
        company_id: f.int("client_id").map(|c| c.to_string()).unwrap_or_default(),
        summary: f.str("summary"),
        // 0, -1 (the General User) or null: no contact.
        contact_id: f.positive("user_id"),
        owner_id: f.positive("agent_id"),
        owner_role_id: None,
        queue: f.text("team"),
        closed: f.int("status_id").is_some_and(|s| CLOSED_STATUS_IDS.contains(&s)),
    })
}

/// The upsert object for `change`; ids are checked before anything is sent.
pub(super) fn ticket_update(id: i64, change: &TicketAssignment) -> Result<Value, PsaError> {
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    if let Some(contact) = &change.contact_id {
        let value = match contact {
            Some(contact) => numeric_id(contact, "user")?,
            None => NO_USER,
        };
        body.insert("user_id".into(), json!(value));
    }
    if let Some(owner) = &change.owner {
        let value = match owner {
            Some(owner) => numeric_id(&owner.id, "agent")?,
            None => NO_AGENT,
        };
        body.insert("agent_id".into(), json!(value));
    }
    if let Some(queue) = &change.queue {
        // By name: the team-id variant is UNCONFIRMED. Clearing sends an empty name
        // (UNCONFIRMED too).
        let name = queue.as_deref().map(str::trim).unwrap_or_default();
        body.insert("team".into(), json!(name));
    }
    Ok(Value::Object(body))
}

/// Plain text as `note_html`: blank-line separated paragraphs in `<p>`, line breaks as
/// `<br>`, everything HTML-escaped (a note is text, never markup).
pub(super) fn note_html(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", p.split('\n').map(crate::html::escape).collect::<Vec<_>>().join("<br>")))
        .collect();
    if paragraphs.is_empty() { "<p></p>".to_string() } else { paragraphs.concat() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_escaped_paragraphs() {
        assert_eq!(
            note_html("a < b & \"c\"\nnext line\n\nSecond 'para'"),
            "<p>a &lt; b &amp; &quot;c&quot;<br>next line</p><p>Second &#39;para&#39;</p>"
        );
        assert_eq!(note_html("<script>x</script>"), "<p>&lt;script&gt;x&lt;/script&gt;</p>");
        assert_eq!(note_html(""), "<p></p>");
    }

    #[test]
    fn users_fall_back_for_names_and_titles_and_need_inactive() {
        let row = json!({"id": 7.0, "name": "Display Name", "emailaddress": " x@y.example ", "title": "Boss",
            "inactive": true, "isimportantcontact": true});
        let contact = user(&row, Some(250)).unwrap();
        assert_eq!((contact.id.as_str(), contact.company_id.as_str()), ("7", "250"));
        assert_eq!((contact.name.as_str(), contact.email.as_deref()), ("Display Name", Some("x@y.example")));
        assert_eq!((contact.title.as_deref(), contact.active), (Some("Boss"), false));
        assert!(contact.primary_signals.is_empty(), "isimportantcontact is not a primary signal");
        let bare = user(&json!({"id": 8, "inactive": false, "client_id": 9}), None).unwrap();
        assert_eq!((bare.name.as_str(), bare.company_id.as_str(), bare.title), ("User 8", "9", None));
        assert!(user(&json!({"id": 9}), None).is_err(), "no inactive flag: not guessed");
    }

    #[test]
    fn tickets_read_none_for_zero_minus_one_and_null_references() {
        for none in [json!(0), json!(-1), Value::Null] {
            let read = ticket(&json!({"id": 1, "client_id": 2, "user_id": none,
                "agent_id": none, "team": "", "status_id": 9}))
            .unwrap();
            assert_eq!((read.contact_id, read.owner_id, read.queue), (None, None, None));
            assert!(read.closed);
        }
        let open =
            ticket(&json!({"id": 1, "user_id": 5.0, "agent_id": 11, "team": "Offboarding", "status_id": 1})).unwrap();
        assert_eq!((open.contact_id.as_deref(), open.owner_id.as_deref()), (Some("5"), Some("11")));
        assert_eq!((open.queue.as_deref(), open.closed), (Some("Offboarding"), false));
    }

    #[test]
    fn ticket_updates_send_only_what_changes_and_clear_with_zero() {
        let change = TicketAssignment {
            contact_id: Some(None),
            owner: Some(Some(crate::domain::TicketOwner { id: "12".into(), role_id: Some("8".into()) })),
            queue: None,
        };
        assert_eq!(ticket_update(5, &change).unwrap(), json!({"id": 5, "user_id": 0, "agent_id": 12}));
        let queue = TicketAssignment { queue: Some(None), ..Default::default() };
        assert_eq!(ticket_update(5, &queue).unwrap(), json!({"id": 5, "team": ""}));
        let bad = TicketAssignment { contact_id: Some(Some("5; x".into())), ..Default::default() };
        assert!(matches!(ticket_update(5, &bad), Err(PsaError::InvalidId { .. })));
    }
}
