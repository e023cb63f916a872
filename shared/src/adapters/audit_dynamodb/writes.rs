//! Writing audit items: every write is conditional on the item not existing
//! (`attribute_not_exists(pk)`), one `PutItem` for a single item, `TransactWriteItems` of up
//! to [`TRANSACT_MAX_ITEMS`] conditional puts for several. No `BatchWriteItem` (it cannot
//! carry a condition, so it could overwrite), no `UpdateItem`, no `DeleteItem`.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};

use super::items::{Item, attr, build_error, expiry_attribute, item_size, key_item, string_attr};
use super::{DynamoDbAuditStore, TTL_ATTRIBUTE, keys};
use crate::error::AuditError;

/// DynamoDB's limit of actions per `TransactWriteItems` request.
pub(super) const TRANSACT_MAX_ITEMS: usize = 100;
/// DynamoDB refuses a transaction over 4 MB; groups stay under this estimate.
const TRANSACT_MAX_BYTES: usize = 3_500_000;
/// DynamoDB's limit per `BatchGetItem` call.
const BATCH_GET_GROUP: usize = 100;
/// Attempts at a request that keeps being throttled or conflicting.
pub(super) const MAX_ATTEMPTS: u32 = 8;
/// Operations whose expiry is remembered; a warm Lambda sees a handful.
const MAX_CACHED_EXPIRIES: usize = 1024;

/// One new item, named for the error message (`snapshot <op>/<type>/<id>`).
pub(super) struct NewItem {
    pub name: String,
    pub item: Item,
}

impl DynamoDbAuditStore {
    /// Count one write request sent (see [`DynamoDbAuditStore::write_requests`]).
    pub(super) fn count_write(&self) {
        self.write_requests.fetch_add(1, Ordering::Relaxed);
    }

    fn cached_expiry(&self, operation_id: &str) -> Option<Option<i64>> {
        self.expiries.lock().unwrap_or_else(PoisonError::into_inner).get(operation_id).copied()
    }

    pub(super) fn remember_expiry(&self, operation_id: &str, expires_at: Option<i64>) {
        let mut cache = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_EXPIRIES && !cache.contains_key(operation_id) {
            // Forgetting only costs one read per operation later: keep it simple.
            cache.clear();
        }
        cache.insert(operation_id.to_string(), expires_at);
    }

    /// The `expires_at` of an operation's items: the header's, read once and remembered.
    pub(super) async fn expiry_of(&self, operation_id: &str) -> Result<Option<i64>, AuditError> {
        if let Some(expiry) = self.cached_expiry(operation_id) {
            return Ok(expiry);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(keys::operation_pk(operation_id)))
            .key(attr::SK, AttributeValue::S(keys::META_SK.to_string()))
            .consistent_read(true)
            .projection_expression("#pk, #ttl")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem (operation header)", e))?;
        match out.item {
            Some(item) => {
                let expiry = expiry_attribute(&item)?;
                self.remember_expiry(operation_id, expiry);
                Ok(expiry)
            }
            // Records of an operation without a header are kept (no expiry), and
            // not remembered, in case the header is written after all.
            None => Ok(None),
        }
    }

    pub(super) async fn expiries_of<'a>(
        &self,
        operation_ids: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, Option<i64>>, AuditError> {
        let mut expiries = HashMap::new();
        for id in operation_ids {
            if !expiries.contains_key(id) {
                expiries.insert(id.to_string(), self.expiry_of(id).await?);
            }
        }
        Ok(expiries)
    }

    /// `PutItem` guarded by `attribute_not_exists(pk)`.
    pub(super) async fn put_new(&self, what: &str, item: Item, key: impl FnOnce() -> String) -> Result<(), AuditError> {
        self.count_write();
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(AuditError::AlreadyExists { key: key() })
            }
            Err(e) => Err(self.sdk_error(what, e)),
        }
    }

    /// Write every item, none of which may exist: one request per group of up to
    /// [`TRANSACT_MAX_ITEMS`], each group all-or-nothing. A call of several groups is not
    /// atomic as a whole, so it first checks that none of its items exists (see the module
    /// documentation): a call that would rewrite one record writes nothing.
    pub(super) async fn put_all_new(&self, what: &str, items: Vec<NewItem>) -> Result<(), AuditError> {
        let groups = transact_groups(items);
        if groups.len() > 1 {
            let all: Vec<&NewItem> = groups.iter().flatten().collect();
            self.check_none_exist(what, &all).await?;
        }
        for mut group in groups {
            if group.len() == 1 {
                // A transaction of one costs twice a conditional PutItem and guarantees nothing more.
                let NewItem { name, item } = group.remove(0);
                self.put_new(what, item, || name).await?;
            } else {
                self.transact_puts(what, group).await?;
            }
        }
        Ok(())
    }

    /// One `TransactWriteItems` of conditional puts, retried while DynamoDB reports a
    /// conflict with another transaction or throttling (nothing was written then).
    async fn transact_puts(&self, what: &str, group: Vec<NewItem>) -> Result<(), AuditError> {
        let (names, items): (Vec<String>, Vec<Item>) = group.into_iter().map(|n| (n.name, n.item)).unzip();
        let actions = items
            .into_iter()
            .map(|item| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", attr::PK)
                    .build()
                    .map_err(build_error)?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect::<Result<Vec<_>, AuditError>>()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count_write();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                // The SDK retries a call whose answer was lost; the token makes DynamoDB
                // treat the retry as the same transaction instead of failing its
                // conditions on the items the first attempt wrote.
                .client_request_token(uuid::Uuid::now_v7().to_string())
                .send()
                .await;
            let Err(e) = result else { return Ok(()) };
            if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = e.as_service_error() {
                let codes: Vec<Option<&str>> = cancel.cancellation_reasons().iter().map(|r| r.code()).collect();
                if let Some(index) = codes.iter().position(|c| *c == Some("ConditionalCheckFailed")) {
                    let key = names.get(index).cloned().unwrap_or_else(|| what.to_string());
                    return Err(AuditError::AlreadyExists { key });
                }
                let transient = |c: &Option<&str>| matches!(c, Some("TransactionConflict" | "ThrottlingError"));
                if codes.iter().any(transient) && attempt < MAX_ATTEMPTS {
                    tokio::time::sleep(backoff_delay(attempt)).await;
                    continue;
                }
            }
            return Err(self.sdk_error(&format!("TransactWriteItems ({what})"), e));
        }
    }

    /// `AlreadyExists` naming the first of these items found in the table (consistent reads).
    async fn check_none_exist(&self, what: &str, items: &[&NewItem]) -> Result<(), AuditError> {
        for chunk in items.chunks(BATCH_GET_GROUP) {
            let key_of =
                |n: &NewItem| (string_attr(&n.item, attr::PK).to_string(), string_attr(&n.item, attr::SK).to_string());
            let by_key: HashMap<(String, String), &str> = chunk.iter().map(|n| (key_of(n), n.name.as_str())).collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(by_key.keys().map(|(pk, sk)| key_item(pk, sk)).collect()))
                    .projection_expression("#pk, #sk")
                    .expression_attribute_names("#pk", attr::PK)
                    .expression_attribute_names("#sk", attr::SK)
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                if attempt >= MAX_ATTEMPTS {
                    return Err(AuditError::Unavailable {
                        message: format!(
                            "DynamoDB BatchGetItem ({what} check) on table {}: keys still unprocessed after \
                             {MAX_ATTEMPTS} attempts",
                            self.table
                        ),
                    });
                }
                if attempt > 0 {
                    tokio::time::sleep(backoff_delay(attempt)).await;
                }
                attempt += 1;
                let mut out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error(&format!("BatchGetItem ({what} check)"), e))?;
                let found = out.responses.as_mut().and_then(|r| r.remove(&self.table)).unwrap_or_default();
                if let Some(item) = found.first() {
                    let key = (string_attr(item, attr::PK).to_string(), string_attr(item, attr::SK).to_string());
                    let name =
                        by_key.get(&key).map(|n| n.to_string()).unwrap_or_else(|| format!("{}/{}", key.0, key.1));
                    return Err(AuditError::AlreadyExists { key: name });
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(())
    }
}

/// Items in the groups one transaction each: at most [`TRANSACT_MAX_ITEMS`] and
/// [`TRANSACT_MAX_BYTES`] (estimated) per group, in order.
pub(super) fn transact_groups(items: Vec<NewItem>) -> Vec<Vec<NewItem>> {
    let mut groups: Vec<Vec<NewItem>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = item_size(&item.item);
        match groups.last_mut() {
            Some(group) if group.len() < TRANSACT_MAX_ITEMS && bytes + size <= TRANSACT_MAX_BYTES => {
                bytes += size;
                group.push(item);
            }
            _ => {
                bytes = size;
                groups.push(vec![item]);
            }
        }
    }
    groups
}

/// The longest wait before retry `attempt` (1-based): 50 ms doubling, at most 5 s.
fn backoff_ceiling(attempt: u32) -> Duration {
    let millis = 50u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_millis(millis.min(5_000))
}

/// The wait before retry `attempt`: between half and all of the ceiling, at
/// random, so Lambdas throttled together do not retry in lockstep.
pub(super) fn backoff_delay(attempt: u32) -> Duration {
    let ceiling = backoff_ceiling(attempt);
    let half = ceiling / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::super::items::fixtures::{change, snapshot};
    use super::super::items::{change_item, record_item, snapshot_item};
    use super::*;

    fn named(items: Vec<Item>) -> Vec<NewItem> {
        items.into_iter().enumerate().map(|(i, item)| NewItem { name: format!("item {i}"), item }).collect()
    }

    #[test]
    fn groups_hold_at_most_100_items_in_order() {
        let sizes = |n: usize| -> Vec<usize> {
            let items = named((0..n).map(|i| change_item(&change(i), None).expect("item")).collect());
            transact_groups(items).iter().map(Vec::len).collect()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(25), vec![25]);
        assert_eq!(sizes(100), vec![100]);
        assert_eq!(sizes(101), vec![100, 1]);
        assert_eq!(sizes(250), vec![100, 100, 50]);
        let items = named((0..250).map(|i| snapshot_item(&snapshot(i), Some(7)).expect("item")).collect());
        let sks: Vec<String> =
            transact_groups(items).iter().flatten().map(|n| string_attr(&n.item, "sk").to_string()).collect();
        let expected: Vec<String> = (0..250).map(|i| keys::snapshot_sk("configuration", &i.to_string())).collect();
        assert_eq!(sks, expected);
    }

    #[test]
    fn groups_stay_under_the_transaction_size_limit() {
        // 20 items of ~300 KB: 11 fit under 3.5 MB.
        let big = "x".repeat(300_000);
        let items = named((0..20).map(|i| record_item(format!("OP#{i}"), "META".into(), big.clone(), None)).collect());
        let groups = transact_groups(items);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), vec![11, 9]);
        for group in &groups {
            assert!(group.iter().map(|n| item_size(&n.item)).sum::<usize>() <= TRANSACT_MAX_BYTES);
        }
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert_eq!(backoff_ceiling(1), Duration::from_millis(50));
        assert_eq!(backoff_ceiling(2), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(4), Duration::from_millis(400));
        assert_eq!(backoff_ceiling(30), Duration::from_secs(5));
        for attempt in 1..10 {
            let delay = backoff_delay(attempt);
            assert!(delay >= backoff_ceiling(attempt) / 2 && delay <= backoff_ceiling(attempt), "{delay:?}");
        }
    }
}
