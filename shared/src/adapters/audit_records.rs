//! What every audit store does the same way, whatever it is built on: record keys for
//! error messages, duplicate checks within one call, the list limit and the orders
//! results are returned in. Kept apart from the stores so the DynamoDB store (the one the
//! Lambda functions use) builds without the SQLite one (feature `sqlite`).

use std::collections::HashSet;

use crate::domain::{ItemChange, ItemSnapshot, OperationFilter, SettingRecord};

/// How many operations `list_operations` returns when the filter's limit is 0.
pub const DEFAULT_LIST_LIMIT: usize = 50;

pub(crate) fn snapshot_key(s: &ItemSnapshot) -> String {
    format!("snapshot {}/{}/{}", s.operation_id, s.item_type, s.item_id)
}

pub(crate) fn change_key(c: &ItemChange) -> String {
    format!("change {}/{}", c.operation_id, c.change_id)
}

/// The first snapshot whose (operation, item type, item id) appears earlier in
/// the same call: such a call would rewrite its own record.
pub(crate) fn duplicate_snapshot(snapshots: &[ItemSnapshot]) -> Option<&ItemSnapshot> {
    let mut seen = HashSet::with_capacity(snapshots.len());
    snapshots.iter().find(|s| !seen.insert((&s.operation_id, &s.item_type, &s.item_id)))
}

/// The first change whose (operation, change id) appears earlier in the same call.
pub(crate) fn duplicate_change(changes: &[ItemChange]) -> Option<&ItemChange> {
    let mut seen = HashSet::with_capacity(changes.len());
    changes.iter().find(|c| !seen.insert((&c.operation_id, &c.change_id)))
}

/// `filter.limit`, with 0 meaning [`DEFAULT_LIST_LIMIT`].
pub(crate) fn effective_limit(filter: &OperationFilter) -> usize {
    if filter.limit == 0 { DEFAULT_LIST_LIMIT } else { filter.limit }
}

/// The order `operation()` returns snapshots in, the same in every store.
pub(crate) fn sort_snapshots(snapshots: &mut [ItemSnapshot]) {
    snapshots.sort_by(|a, b| (&a.item_type, &a.item_id).cmp(&(&b.item_type, &b.item_id)));
}

/// The order `list_settings` returns records in, the same in every store.
pub(crate) fn sort_settings(records: &mut [SettingRecord]) {
    records.sort_by(|a, b| a.key.cmp(&b.key));
}
