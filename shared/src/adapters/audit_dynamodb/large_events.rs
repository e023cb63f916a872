//! Events larger than one DynamoDB item can hold (400 KB). A dry run records its whole plan
//! in its `planned` event, and the plan of a client with 10,000 configurations is well over
//! a megabyte: written as one item, DynamoDB refused it and the chain could not even plan
//! such a client (found by the continuation bench through the state machine).
//!
//! Such an event's JSON is split into parts, items `EVPART#<event_id>#<n>` written first,
//! then the event's own item `EVENT#<event_id>`, which holds no `data` but the number of its
//! parts in `parts` (N). Because the event item comes last, a reader sees the event only when
//! every part is there; parts without their event (a run that stopped in between) are never
//! read. Parts live under their own sort-key prefix, so a query of `EVENT#` items sees one
//! item per event, and `latest_event` stays one item plus, for a large event, its parts.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoDbAuditStore;
use super::items::{Item, attr, key_item, record_item, string_attr};
use super::{TTL_ATTRIBUTE, keys};
use crate::domain::OperationEvent;
use crate::error::AuditError;

/// Bytes of JSON an event item holds itself; larger events are split into parts of this size
/// (DynamoDB's 400 KB counts names, keys and the TTL too: this leaves room for them).
pub(super) const PART_BYTES: usize = 350_000;
/// The attribute of a split event's item: how many parts it has (N).
const PARTS: &str = "parts";

impl DynamoDbAuditStore {
    /// Writes `data` (the event's JSON, longer than [`PART_BYTES`]) as parts, then the
    /// event item naming how many there are.
    pub(super) async fn put_large_event(
        &self,
        event: &OperationEvent,
        data: &str,
        expires_at: Option<i64>,
    ) -> Result<(), AuditError> {
        let pk = keys::operation_pk(&event.operation_id);
        let parts = split(data, PART_BYTES);
        for (n, part) in parts.iter().enumerate() {
            let item = record_item(pk.clone(), keys::event_part_sk(&event.event_id, n), part.to_string(), expires_at);
            let name = || format!("event part {}/{}#{n}", event.operation_id, event.event_id);
            self.put_new("PutItem (event part)", item, name).await?;
        }
        let mut item = key_item(&pk, &keys::event_sk(&event.event_id));
        item.insert(PARTS.to_string(), AttributeValue::N(parts.len().to_string()));
        if let Some(expires_at) = expires_at {
            item.insert(TTL_ATTRIBUTE.to_string(), AttributeValue::N(expires_at.to_string()));
        }
        self.put_new("PutItem (event)", item, || format!("event {}/{}", event.operation_id, event.event_id)).await
    }

    /// The parts of the split event `event_item`, read from the table.
    pub(super) async fn read_event_parts(&self, event_item: &Item) -> Result<BTreeMap<String, String>, AuditError> {
        let pk = string_attr(event_item, attr::PK).to_string();
        let event_id = string_attr(event_item, attr::SK).trim_start_matches(keys::EVENT_PREFIX).to_string();
        let query = self.prefix_query(pk, &keys::event_parts_prefix(&event_id));
        let items = self.query_items("Query (event parts)", query, None).await?;
        Ok(part_texts(&items))
    }
}

/// Whether `item` is a split event's item (its text is in parts).
pub(super) fn is_split(item: &Item) -> bool {
    item.contains_key(PARTS)
}

/// Sort key → text of every part item among `items`.
pub(super) fn part_texts(items: &[Item]) -> BTreeMap<String, String> {
    items
        .iter()
        .filter(|item| string_attr(item, attr::SK).starts_with(keys::EVENT_PART_PREFIX))
        .map(|item| (string_attr(item, attr::SK).to_string(), string_attr(item, attr::DATA).to_string()))
        .collect()
}

/// The JSON of an event item: its own `data`, or its parts joined in order (`None`: it has
/// parts and `parts` lacks one of them, which the caller reports as a corrupt trail).
pub(super) fn event_json<'a>(item: &'a Item, parts: &BTreeMap<String, String>) -> Option<std::borrow::Cow<'a, str>> {
    let Some(count) = item.get(PARTS).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<usize>().ok()) else {
        return item.get(attr::DATA).and_then(|v| v.as_s().ok()).map(|s| std::borrow::Cow::Borrowed(s.as_str()));
    };
    let event_id = string_attr(item, attr::SK).trim_start_matches(keys::EVENT_PREFIX);
    let mut joined = String::new();
    for n in 0..count {
        joined.push_str(parts.get(&keys::event_part_sk(event_id, n))?);
    }
    Some(std::borrow::Cow::Owned(joined))
}

/// `data` cut into pieces of at most `size` bytes, never inside a character.
pub(super) fn split(data: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut end = rest.len().min(size.max(4));
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_back_and_never_cut_a_character() {
        let data = "ab€cd€€e".repeat(1000);
        for size in [4, 5, 7, 350] {
            let pieces = split(&data, size);
            assert!(pieces.iter().all(|p| p.len() <= size && !p.is_empty()), "{size}");
            assert_eq!(pieces.concat(), data, "{size}");
        }
        assert!(split("", 10).is_empty());
    }

    #[test]
    fn a_split_event_is_joined_in_order_and_a_missing_part_is_noticed() {
        let mut item = key_item("OP#o", &keys::event_sk("e1"));
        item.insert(PARTS.to_string(), AttributeValue::N("3".into()));
        let mut parts: BTreeMap<String, String> =
            (0..3).map(|n| (keys::event_part_sk("e1", n), format!("<{n}>"))).collect();
        assert_eq!(event_json(&item, &parts).as_deref(), Some("<0><1><2>"));
        parts.remove(&keys::event_part_sk("e1", 1));
        assert_eq!(event_json(&item, &parts), None);
        let inline = record_item("OP#o".into(), keys::event_sk("e2"), "{}".into(), None);
        assert_eq!(event_json(&inline, &parts).as_deref(), Some("{}"));
    }
}
