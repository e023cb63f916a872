//! DynamoDB audit store: the audit trail of the Lambda deployment.
//!
//! # Table layout (single-table design)
//!
//! Every attribute below is a string (`S`) unless said otherwise. Each item
//! carries its domain record serialised as JSON in `data`, so a new field in a
//! record needs no table change.
//!
//! | Item             | `pk`                  | `sk`                            | other attributes |
//! |------------------|-----------------------|---------------------------------|------------------|
//! | Operation header | `OP#<operation_id>`   | `META`                          | `data`, `psa`, `client_id`, `gsi1pk`, `gsi1sk`, `gsi2pk`, `gsi2sk`, `expires_at`? |
//! | Event            | `OP#<operation_id>`   | `EVENT#<event_id>`              | `data`, `expires_at`? |
//! | Snapshot         | `OP#<operation_id>`   | `SNAP#<item_type>#<item_id>`    | `data`, `expires_at`? |
//! | Change           | `OP#<operation_id>`   | `CHANGE#<change_id>`            | `data`, `expires_at`? |
//! | Setting version  | `SETTINGS#<psa>#<scope>` | `KEY#<key>#<version_id>`     | `data` |
//!
//! - Table key: `pk` (S, HASH), `sk` (S, RANGE). Billing mode `PAY_PER_REQUEST`.
//! - GSI `ByClient`: `gsi1pk` (S, HASH) = `CLIENT#<psa>#<client_id>`, `gsi1sk` (S, RANGE) =
//!   `<operation_id>`. Projection `ALL`. Only operation headers (`META`) carry these attributes.
//! - GSI `ByTime`: `gsi2pk` (S, HASH) = `OPERATIONS`, `gsi2sk` (S, RANGE) = `<operation_id>`.
//!   Projection `ALL`. Only operation headers carry these attributes.
//! - TTL attribute `expires_at` (N, epoch seconds): present on *every* item of a dry-run
//!   operation, with one value per operation (the header's `created_at` plus the dry-run
//!   retention, 90 days unless [`DynamoDbAuditStore::with_dry_run_retention`] says otherwise),
//!   so a dry run disappears as a whole. Items of a real operation have no `expires_at`
//!   and are kept forever.
//!
//! Operation ids, event ids and change ids are UUIDv7, whose text form sorts by
//! creation time: sorting the sort keys sorts events and changes oldest first, and
//! a `ScanIndexForward = false` query on either GSI lists operations newest first.
//!
//! # Settings ([`SettingsStore`])
//!
//! Each `put_setting` writes a new item whose `version_id` is a fresh UUIDv7 (ordered by
//! creation within a process, even within one millisecond), so the versions of a key sort
//! oldest first under `KEY#<key>#`. `get_setting` is one Query on the partition with
//! `begins_with(sk, "KEY#<key>#")`, newest first, `Limit 1`; `list_settings` Queries the
//! whole partition and keeps the last (newest) item of each key. `#` and `%` inside
//! `<psa>`, `<scope>` and `<key>` are written `%23` and `%25`, so no key is a prefix of
//! another (`a` vs `a#b`) and no two (psa, scope) pairs share a partition; the record
//! itself, in `data`, keeps the values as given. Setting items carry no GSI attributes
//! (never listed as operations) and no `expires_at` (kept forever).
//!
//! # Append-only guard
//!
//! - Headers, events and setting versions: `PutItem` with `attribute_not_exists(pk)`; a
//!   `ConditionalCheckFailedException` is [`AuditError::AlreadyExists`].
//! - Snapshots: `TransactWriteItems` of at most 25 puts, each with
//!   `attribute_not_exists(sk)`, so one group is all-or-nothing. A call with more
//!   than 25 snapshots spans several transactions, so before writing such a call
//!   the store *checks first* (`BatchGetItem` on the exact keys, consistent reads):
//!   if any snapshot exists, the call fails with `AlreadyExists` having written
//!   nothing, which is what the port promises. Only a concurrent writer of the
//!   same operation's snapshots, racing between that check and the writes, could
//!   see a later group refused after earlier groups were written; even then the
//!   conditions guarantee nothing is overwritten, and the caller gets
//!   `AlreadyExists`. Checking costs one read per snapshot, and only for calls of
//!   more than 25, which a workflow makes once per operation.
//! - Changes: `BatchWriteItem` in groups of at most 25. `BatchWriteItem` cannot carry
//!   conditions, but every change's sort key holds its own fresh UUIDv7, so a batch
//!   put never lands on an existing item. Duplicates within one call are refused
//!   before anything is written.
//!
//! # Consistency
//!
//! `operation()` reads the table with strongly consistent reads. `list_operations`
//! reads a GSI, which in DynamoDB is eventually consistent: an operation created a
//! moment ago may take a moment to appear in the list. `child_operations` reads the
//! parent's header consistently, then its company's operations from `ByClient`, with the
//! same caveat for a child created a moment ago.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, Put, PutRequest, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, WriteRequest,
};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use super::audit_sqlite::{
    change_key, duplicate_change, duplicate_snapshot, effective_limit, snapshot_key, sort_settings, sort_snapshots,
};
use crate::domain::{
    ItemChange, ItemSnapshot, OperationDetail, OperationEvent, OperationFilter, OperationRecord, OperationSummary,
    SettingRecord,
};
use crate::error::AuditError;
use crate::ports::{AuditStore, SettingsStore};

/// Name of the GSI that lists one client's operations.
pub const INDEX_BY_CLIENT: &str = "ByClient";
/// Name of the GSI that lists all operations by time.
pub const INDEX_BY_TIME: &str = "ByTime";
/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long a dry run's records are kept unless configured otherwise.
pub const DEFAULT_DRY_RUN_RETENTION_DAYS: i64 = 90;

/// Items per `TransactWriteItems` call (the port's snapshot contract relies on
/// each group being atomic).
const TRANSACT_GROUP: usize = 25;
/// DynamoDB's limit per `BatchWriteItem` call (moto does not enforce it).
const BATCH_WRITE_GROUP: usize = 25;
/// DynamoDB's limit per `BatchGetItem` call.
const BATCH_GET_GROUP: usize = 100;
/// Attempts at a batch whose items keep coming back unprocessed.
const MAX_BATCH_ATTEMPTS: u32 = 8;
/// Operations whose expiry is remembered; a warm Lambda sees a handful.
const MAX_CACHED_EXPIRIES: usize = 1024;
/// How many "latest event" queries `list_operations` runs at once.
const LIST_CONCURRENCY: usize = 8;
/// How long `create_table_if_missing` waits for a new table to become active.
const TABLE_ACTIVE_POLLS: u32 = 120;
const TABLE_ACTIVE_POLL_INTERVAL: Duration = Duration::from_millis(500);

type Item = HashMap<String, AttributeValue>;

/// Attribute names.
mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const DATA: &str = "data";
    pub const PSA: &str = "psa";
    pub const CLIENT_ID: &str = "client_id";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    pub const GSI2PK: &str = "gsi2pk";
    pub const GSI2SK: &str = "gsi2sk";
}

/// Key values of the table layout described in the module documentation.
pub mod keys {
    /// Sort key of an operation header.
    pub const META_SK: &str = "META";
    pub const EVENT_PREFIX: &str = "EVENT#";
    pub const SNAPSHOT_PREFIX: &str = "SNAP#";
    pub const CHANGE_PREFIX: &str = "CHANGE#";
    /// Partition key of the `ByTime` GSI. A single partition is fine: an MSP runs
    /// at most thousands of offboarding operations a month, one header write each,
    /// far below what one partition absorbs (1,000 writes per second), and it
    /// makes "all operations, newest first" one Query instead of a Scan and a sort.
    pub const ALL_OPERATIONS: &str = "OPERATIONS";

    pub fn operation_pk(operation_id: &str) -> String {
        format!("OP#{operation_id}")
    }

    pub fn event_sk(event_id: &str) -> String {
        format!("{EVENT_PREFIX}{event_id}")
    }

    pub fn snapshot_sk(item_type: &str, item_id: &str) -> String {
        format!("{SNAPSHOT_PREFIX}{item_type}#{item_id}")
    }

    pub fn change_sk(change_id: &str) -> String {
        format!("{CHANGE_PREFIX}{change_id}")
    }

    /// Partition key of the `ByClient` GSI: company ids are per PSA.
    pub fn client_pk(psa: &str, client_id: &str) -> String {
        format!("CLIENT#{psa}#{client_id}")
    }

    pub const SETTING_KEY_PREFIX: &str = "KEY#";

    /// `#` (the separator) and `%` (the escape) written as `%23` and `%25`.
    fn escape(part: &str) -> String {
        part.replace('%', "%25").replace('#', "%23")
    }

    /// Partition key of one (psa, scope)'s settings.
    pub fn settings_pk(psa: &str, scope: &str) -> String {
        format!("SETTINGS#{}#{}", escape(psa), escape(scope))
    }

    /// The prefix of every version of one setting's sort key.
    pub fn setting_sk_prefix(key: &str) -> String {
        format!("{SETTING_KEY_PREFIX}{}#", escape(key))
    }

    pub fn setting_sk(key: &str, version_id: &str) -> String {
        format!("{}{version_id}", setting_sk_prefix(key))
    }
}

/// The audit trail in a DynamoDB table (layout in the module documentation).
pub struct DynamoDbAuditStore {
    client: Client,
    table: String,
    dry_run_retention: chrono::Duration,
    /// Each operation's `expires_at` (None: never expires). The dry-run flag of an
    /// operation never changes, so remembering it is always right, and it spares
    /// a read of the header for every event, snapshot and change written.
    expiries: Mutex<HashMap<String, Option<i64>>>,
}

impl std::fmt::Debug for DynamoDbAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbAuditStore")
            .field("table", &self.table)
            .field("dry_run_retention", &self.dry_run_retention)
            .finish_non_exhaustive()
    }
}

impl DynamoDbAuditStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            dry_run_retention: chrono::Duration::days(DEFAULT_DRY_RUN_RETENTION_DAYS),
            expiries: Mutex::new(HashMap::new()),
        }
    }

    /// How long a dry run's records are kept (DynamoDB TTL). Operations created
    /// from now on get it; records of existing operations keep their expiry.
    pub fn with_dry_run_retention(mut self, retention: chrono::Duration) -> Self {
        self.dry_run_retention = retention;
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Create the table (key schema, both GSIs, on-demand billing) if it does not
    /// exist, wait until it is active, and enable TTL on `expires_at` if it is not.
    /// For local runs and tests: deployed stacks get the table from the template.
    /// An existing table is not altered beyond enabling TTL.
    pub async fn create_table_if_missing(&self) -> Result<(), AuditError> {
        let exists = match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => false,
            Err(e) => return Err(self.sdk_error("DescribeTable", e)),
        };
        if !exists {
            match self.create_table_request()?.send().await {
                Ok(_) => {}
                // Someone else created it meanwhile: just as good.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(self.sdk_error("CreateTable", e)),
            }
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    fn create_table_request(
        &self,
    ) -> Result<aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder, AuditError> {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
        };
        let index = |name: &str, hash: &str, range: &str| -> Result<GlobalSecondaryIndex, AuditError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(build_error)
        };
        let mut request = self.client.create_table().table_name(&self.table).billing_mode(BillingMode::PayPerRequest);
        for name in [attr::PK, attr::SK, attr::GSI1PK, attr::GSI1SK, attr::GSI2PK, attr::GSI2SK] {
            request = request.attribute_definitions(string_attr(name)?);
        }
        Ok(request
            .key_schema(key(attr::PK, KeyType::Hash)?)
            .key_schema(key(attr::SK, KeyType::Range)?)
            .global_secondary_indexes(index(INDEX_BY_CLIENT, attr::GSI1PK, attr::GSI1SK)?)
            .global_secondary_indexes(index(INDEX_BY_TIME, attr::GSI2PK, attr::GSI2SK)?))
    }

    async fn wait_until_active(&self) -> Result<(), AuditError> {
        for _ in 0..TABLE_ACTIVE_POLLS {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.sdk_error("DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(TABLE_ACTIVE_POLL_INTERVAL).await;
        }
        Err(AuditError::Unavailable { message: format!("DynamoDB table {} did not become active", self.table) })
    }

    async fn enable_ttl(&self) -> Result<(), AuditError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.sdk_error("DescribeTimeToLive", e))?;
        let status = out.time_to_live_description().and_then(|d| d.time_to_live_status());
        // Enabling twice is an error in DynamoDB, hence the look first.
        if matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| self.sdk_error("UpdateTimeToLive", e))?;
        Ok(())
    }

    fn sdk_error<E>(&self, what: &str, err: E) -> AuditError
    where
        E: std::error::Error + 'static,
    {
        AuditError::Unavailable {
            message: format!("DynamoDB {what} on table {} failed: {}", self.table, DisplayErrorContext(&err)),
        }
    }

    fn cached_expiry(&self, operation_id: &str) -> Option<Option<i64>> {
        self.expiries.lock().unwrap_or_else(PoisonError::into_inner).get(operation_id).copied()
    }

    fn remember_expiry(&self, operation_id: &str, expires_at: Option<i64>) {
        let mut cache = self.expiries.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_EXPIRIES && !cache.contains_key(operation_id) {
            // Forgetting only costs one read per operation later: keep it simple.
            cache.clear();
        }
        cache.insert(operation_id.to_string(), expires_at);
    }

    /// The `expires_at` of an operation's items: the header's, read once and remembered.
    async fn expiry_of(&self, operation_id: &str) -> Result<Option<i64>, AuditError> {
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

    async fn expiries_of<'a>(
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
    async fn put_new(&self, what: &str, item: Item, key: impl FnOnce() -> String) -> Result<(), AuditError> {
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

    /// `AlreadyExists` if any of these snapshots is in the table (consistent reads).
    async fn check_no_snapshot_exists(&self, snapshots: &[ItemSnapshot]) -> Result<(), AuditError> {
        for chunk in snapshots.chunks(BATCH_GET_GROUP) {
            let by_key: HashMap<(String, String), &ItemSnapshot> = chunk
                .iter()
                .map(|s| ((keys::operation_pk(&s.operation_id), keys::snapshot_sk(&s.item_type, &s.item_id)), s))
                .collect();
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
                if attempt >= MAX_BATCH_ATTEMPTS {
                    return Err(AuditError::Unavailable {
                        message: format!(
                            "DynamoDB BatchGetItem (snapshot check) on table {}: keys still unprocessed after \
                             {MAX_BATCH_ATTEMPTS} attempts",
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
                    .map_err(|e| self.sdk_error("BatchGetItem (snapshot check)", e))?;
                let found = out.responses.as_mut().and_then(|r| r.remove(&self.table)).unwrap_or_default();
                if let Some(item) = found.first() {
                    let key = (string_attr(item, attr::PK).to_string(), string_attr(item, attr::SK).to_string());
                    let name =
                        by_key.get(&key).map(|s| snapshot_key(s)).unwrap_or_else(|| format!("{}/{}", key.0, key.1));
                    return Err(AuditError::AlreadyExists { key: name });
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(())
    }

    async fn transact_snapshots(&self, group: Vec<(String, TransactWriteItem)>) -> Result<(), AuditError> {
        let (names, items): (Vec<String>, Vec<TransactWriteItem>) = group.into_iter().unzip();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            // The SDK retries a call whose answer was lost; the token makes DynamoDB
            // treat the retry as the same transaction instead of failing its
            // conditions on the items the first attempt wrote.
            .client_request_token(uuid::Uuid::now_v7().to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = e.as_service_error() {
                    let failed =
                        cancel.cancellation_reasons().iter().position(|r| r.code() == Some("ConditionalCheckFailed"));
                    if let Some(index) = failed {
                        let key = names.get(index).cloned().unwrap_or_else(|| "snapshot".to_string());
                        return Err(AuditError::AlreadyExists { key });
                    }
                }
                Err(self.sdk_error("TransactWriteItems (snapshots)", e))
            }
        }
    }

    /// One `BatchWriteItem` group, retrying unprocessed items with backoff.
    async fn batch_write(&self, group: Vec<WriteRequest>) -> Result<(), AuditError> {
        let mut pending = group;
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff_delay(attempt)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| self.sdk_error("BatchWriteItem (changes)", e))?;
            pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(AuditError::Unavailable {
            message: format!(
                "DynamoDB BatchWriteItem (changes) on table {}: {} items still unprocessed after {MAX_BATCH_ATTEMPTS} \
                 attempts",
                self.table,
                pending.len()
            ),
        })
    }

    /// Run a query page after page (following `LastEvaluatedKey`) until it ends
    /// or `max` items were read.
    async fn query_items(
        &self,
        what: &str,
        query: QueryFluentBuilder,
        max: Option<usize>,
    ) -> Result<Vec<Item>, AuditError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error(what, e))?;
            items.extend(out.items.unwrap_or_default());
            if max.is_some_and(|max| items.len() >= max) {
                break;
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        if let Some(max) = max {
            items.truncate(max);
        }
        Ok(items)
    }

    async fn latest_event(&self, operation_id: &str) -> Result<Option<OperationEvent>, AuditError> {
        // Newest first, one item: sort keys order events by their UUIDv7 id.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::operation_pk(operation_id)))
            .expression_attribute_values(":prefix", AttributeValue::S(keys::EVENT_PREFIX.to_string()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("Query (latest event)", e))?;
        out.items.unwrap_or_default().first().map(|item| parse_data(item, "event")).transpose()
    }
}

#[async_trait]
impl AuditStore for DynamoDbAuditStore {
    async fn create_operation(&self, operation: &OperationRecord) -> Result<(), AuditError> {
        let expires_at = expiry_for(operation, self.dry_run_retention);
        let item = meta_item(operation, expires_at)?;
        self.put_new("PutItem (operation)", item, || format!("operation {}", operation.operation_id)).await?;
        self.remember_expiry(&operation.operation_id, expires_at);
        Ok(())
    }

    async fn append_event(&self, event: &OperationEvent) -> Result<(), AuditError> {
        let expires_at = self.expiry_of(&event.operation_id).await?;
        let item = event_item(event, expires_at)?;
        self.put_new("PutItem (event)", item, || format!("event {}/{}", event.operation_id, event.event_id)).await
    }

    async fn put_snapshots(&self, snapshots: &[ItemSnapshot]) -> Result<(), AuditError> {
        if snapshots.is_empty() {
            return Ok(());
        }
        // Two puts of one item in a call would rewrite it (and DynamoDB refuses a
        // transaction that touches an item twice): refuse before writing anything.
        if let Some(duplicate) = duplicate_snapshot(snapshots) {
            return Err(AuditError::AlreadyExists { key: snapshot_key(duplicate) });
        }
        let expiries = self.expiries_of(snapshots.iter().map(|s| s.operation_id.as_str())).await?;
        let groups = snapshot_groups(&self.table, snapshots, &expiries)?;
        if groups.len() > 1 {
            // Several transactions are not atomic together: check first (see the module doc).
            self.check_no_snapshot_exists(snapshots).await?;
        }
        for group in groups {
            self.transact_snapshots(group).await?;
        }
        Ok(())
    }

    async fn put_changes(&self, changes: &[ItemChange]) -> Result<(), AuditError> {
        if changes.is_empty() {
            return Ok(());
        }
        // BatchWriteItem cannot carry conditions, and DynamoDB rejects a batch that
        // names one key twice: refuse in-call duplicates before writing anything.
        // Across calls, the fresh UUIDv7 in each change's sort key means a batch
        // put never lands on an existing item.
        if let Some(duplicate) = duplicate_change(changes) {
            return Err(AuditError::AlreadyExists { key: change_key(duplicate) });
        }
        let expiries = self.expiries_of(changes.iter().map(|c| c.operation_id.as_str())).await?;
        for group in change_groups(changes, &expiries)? {
            self.batch_write(group).await?;
        }
        Ok(())
    }

    async fn operation(&self, operation_id: &str) -> Result<Option<OperationDetail>, AuditError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::operation_pk(operation_id)))
            .consistent_read(true);
        let items = self.query_items("Query (operation)", query, None).await?;
        let mut operation = None;
        let mut events = Vec::new();
        let mut snapshots = Vec::new();
        let mut changes = Vec::new();
        for item in &items {
            let sk = string_attr(item, attr::SK);
            if sk == keys::META_SK {
                operation = Some(parse_data::<OperationRecord>(item, "operation")?);
            } else if sk.starts_with(keys::EVENT_PREFIX) {
                events.push(parse_data::<OperationEvent>(item, "event")?);
            } else if sk.starts_with(keys::SNAPSHOT_PREFIX) {
                snapshots.push(parse_data::<ItemSnapshot>(item, "snapshot")?);
            } else if sk.starts_with(keys::CHANGE_PREFIX) {
                changes.push(parse_data::<ItemChange>(item, "change")?);
            }
            // Other sort keys belong to a later version of this layout: skip them.
        }
        let Some(operation) = operation else {
            return Ok(None);
        };
        events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        sort_snapshots(&mut snapshots);
        changes.sort_by(|a, b| a.change_id.cmp(&b.change_id));
        Ok(Some(OperationDetail { operation, events, snapshots, changes }))
    }

    async fn list_operations(&self, filter: &OperationFilter) -> Result<Vec<OperationSummary>, AuditError> {
        let limit = effective_limit(filter);
        let page_size = i32::try_from(limit.min(1000)).unwrap_or(1000);
        let query = match (&filter.client_id, &filter.psa) {
            (Some(client_id), Some(psa)) => self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX_BY_CLIENT)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", attr::GSI1PK)
                .expression_attribute_values(":pk", AttributeValue::S(keys::client_pk(psa, client_id)))
                .scan_index_forward(false)
                .limit(page_size),
            (client_id, psa) => {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(INDEX_BY_TIME)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", attr::GSI2PK)
                    .expression_attribute_values(":pk", AttributeValue::S(keys::ALL_OPERATIONS.to_string()))
                    .scan_index_forward(false);
                // A client id without a PSA (or a PSA alone) is not a ByClient key:
                // filter the time index. DynamoDB's Limit counts items before the
                // filter, so no Limit then; `query_items` stops at `limit` matches.
                let mut conditions = Vec::new();
                if let Some(client_id) = client_id {
                    query = query
                        .expression_attribute_names("#client", attr::CLIENT_ID)
                        .expression_attribute_values(":client", AttributeValue::S(client_id.clone()));
                    conditions.push("#client = :client");
                }
                if let Some(psa) = psa {
                    query = query
                        .expression_attribute_names("#psa", attr::PSA)
                        .expression_attribute_values(":psa", AttributeValue::S(psa.clone()));
                    conditions.push("#psa = :psa");
                }
                if conditions.is_empty() {
                    query.limit(page_size)
                } else {
                    query.filter_expression(conditions.join(" AND "))
                }
            }
        };
        let items = self.query_items("Query (list operations)", query, Some(limit)).await?;
        let records =
            items.iter().map(|item| parse_data::<OperationRecord>(item, "operation")).collect::<Result<Vec<_>, _>>()?;
        futures::stream::iter(records)
            .map(|operation| async move {
                let last = self.latest_event(&operation.operation_id).await?;
                Ok::<_, AuditError>(OperationSummary {
                    last_event: last.as_ref().map(|e| e.kind),
                    last_event_at: last.as_ref().map(|e| e.at),
                    operation,
                })
            })
            // `buffered` keeps the newest-first order of the records.
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn child_operations(&self, parent_operation_id: &str) -> Result<Vec<OperationRecord>, AuditError> {
        // The parent's header says which company's operations to look through.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(keys::operation_pk(parent_operation_id)))
            .key(attr::SK, AttributeValue::S(keys::META_SK.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem (parent operation)", e))?;
        let Some(item) = out.item else {
            return Ok(Vec::new());
        };
        let parent: OperationRecord = parse_data(&item, "operation")?;
        // No filter expression: the parent id lives inside `data`, so it is compared on the
        // parsed record. One company's operations are few, and read oldest first.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_CLIENT)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::GSI1PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::client_pk(&parent.psa, &parent.client_id)))
            .scan_index_forward(true);
        let items = self.query_items("Query (child operations)", query, None).await?;
        let mut children = Vec::new();
        for item in &items {
            let operation: OperationRecord = parse_data(item, "operation")?;
            if operation.parent_operation_id.as_deref() == Some(parent_operation_id) {
                children.push(operation);
            }
        }
        Ok(children)
    }
}

#[async_trait]
impl SettingsStore for DynamoDbAuditStore {
    async fn get_setting(&self, psa: &str, scope: &str, key: &str) -> Result<Option<SettingRecord>, AuditError> {
        // Newest first, one item: sort keys order the versions by their UUIDv7.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::settings_pk(psa, scope)))
            .expression_attribute_values(":prefix", AttributeValue::S(keys::setting_sk_prefix(key)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("Query (setting)", e))?;
        out.items.unwrap_or_default().first().map(|item| parse_data(item, "setting")).transpose()
    }

    async fn put_setting(&self, record: &SettingRecord) -> Result<(), AuditError> {
        let version_id = uuid::Uuid::now_v7().to_string();
        let item = setting_item(record, &version_id)?;
        self.put_new("PutItem (setting)", item, || {
            format!("setting {}/{}/{}/{version_id}", record.psa, record.scope, record.key)
        })
        .await
    }

    async fn list_settings(&self, psa: &str, scope: &str) -> Result<Vec<SettingRecord>, AuditError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::settings_pk(psa, scope)))
            .expression_attribute_values(":prefix", AttributeValue::S(keys::SETTING_KEY_PREFIX.to_string()))
            .consistent_read(true);
        let items = self.query_items("Query (settings)", query, None).await?;
        newest_settings(&items)
    }
}

/// The newest record of each key among one partition's items, sorted by key. Items come
/// in sort-key order (oldest version of a key first), so the last one of a key wins.
fn newest_settings(items: &[Item]) -> Result<Vec<SettingRecord>, AuditError> {
    let mut newest: HashMap<String, (&str, SettingRecord)> = HashMap::new();
    for item in items {
        let sk = string_attr(item, attr::SK);
        let record: SettingRecord = parse_data(item, "setting")?;
        match newest.get(&record.key) {
            // Compare the sort keys rather than trust the order the items came in.
            Some((seen, _)) if *seen >= sk => {}
            _ => {
                newest.insert(record.key.clone(), (sk, record));
            }
        }
    }
    let mut records: Vec<SettingRecord> = newest.into_values().map(|(_, record)| record).collect();
    sort_settings(&mut records);
    Ok(records)
}

fn setting_item(record: &SettingRecord, version_id: &str) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::settings_pk(&record.psa, &record.scope),
        keys::setting_sk(&record.key, version_id),
        to_json("setting", record)?,
        // Settings are kept forever.
        None,
    ))
}

fn build_error(e: BuildError) -> AuditError {
    AuditError::Unavailable { message: format!("cannot build a DynamoDB request: {e}") }
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, AuditError> {
    serde_json::to_string(value)
        .map_err(|e| AuditError::Unavailable { message: format!("cannot serialise the {what}: {e}") })
}

fn string_attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

fn parse_data<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, AuditError> {
    let location = || format!("{} {}", string_attr(item, attr::PK), string_attr(item, attr::SK));
    let data = item
        .get(attr::DATA)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| AuditError::Corrupt { message: format!("{what} {}: no data attribute", location()) })?;
    serde_json::from_str(data).map_err(|e| AuditError::Corrupt { message: format!("{what} {}: {e}", location()) })
}

fn expiry_attribute(item: &Item) -> Result<Option<i64>, AuditError> {
    match item.get(TTL_ATTRIBUTE) {
        None => Ok(None),
        Some(value) => {
            value.as_n().ok().and_then(|n| n.parse::<i64>().ok()).map(Some).ok_or_else(|| AuditError::Corrupt {
                message: format!("{TTL_ATTRIBUTE} of {} is not a number", string_attr(item, attr::PK)),
            })
        }
    }
}

/// The `expires_at` of a new operation's items: dry runs expire, real runs never do.
fn expiry_for(operation: &OperationRecord, retention: chrono::Duration) -> Option<i64> {
    if !operation.dry_run {
        return None;
    }
    // An absurd retention that overflows the calendar means "keep it".
    operation.created_at.checked_add_signed(retention).map(|at| at.timestamp())
}

fn key_item(pk: &str, sk: &str) -> Item {
    HashMap::from([
        (attr::PK.to_string(), AttributeValue::S(pk.to_string())),
        (attr::SK.to_string(), AttributeValue::S(sk.to_string())),
    ])
}

fn record_item(pk: String, sk: String, data: String, expires_at: Option<i64>) -> Item {
    let mut item = key_item(&pk, &sk);
    item.insert(attr::DATA.to_string(), AttributeValue::S(data));
    if let Some(expires_at) = expires_at {
        item.insert(TTL_ATTRIBUTE.to_string(), AttributeValue::N(expires_at.to_string()));
    }
    item
}

fn meta_item(operation: &OperationRecord, expires_at: Option<i64>) -> Result<Item, AuditError> {
    let id = &operation.operation_id;
    let mut item = record_item(
        keys::operation_pk(id),
        keys::META_SK.to_string(),
        to_json("operation record", operation)?,
        expires_at,
    );
    let s = |v: String| AttributeValue::S(v);
    item.insert(attr::PSA.to_string(), s(operation.psa.clone()));
    item.insert(attr::CLIENT_ID.to_string(), s(operation.client_id.clone()));
    item.insert(attr::GSI1PK.to_string(), s(keys::client_pk(&operation.psa, &operation.client_id)));
    item.insert(attr::GSI1SK.to_string(), s(id.clone()));
    item.insert(attr::GSI2PK.to_string(), s(keys::ALL_OPERATIONS.to_string()));
    item.insert(attr::GSI2SK.to_string(), s(id.clone()));
    Ok(item)
}

fn event_item(event: &OperationEvent, expires_at: Option<i64>) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(&event.operation_id),
        keys::event_sk(&event.event_id),
        to_json("operation event", event)?,
        expires_at,
    ))
}

fn snapshot_item(snapshot: &ItemSnapshot, expires_at: Option<i64>) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(&snapshot.operation_id),
        keys::snapshot_sk(&snapshot.item_type, &snapshot.item_id),
        to_json("snapshot", snapshot)?,
        expires_at,
    ))
}

fn change_item(change: &ItemChange, expires_at: Option<i64>) -> Result<Item, AuditError> {
    Ok(record_item(
        keys::operation_pk(&change.operation_id),
        keys::change_sk(&change.change_id),
        to_json("item change", change)?,
        expires_at,
    ))
}

fn expiry_in(expiries: &HashMap<String, Option<i64>>, operation_id: &str) -> Option<i64> {
    expiries.get(operation_id).copied().flatten()
}

/// Snapshots as conditional puts, in transactions of at most [`TRANSACT_GROUP`],
/// each put named for the error message.
fn snapshot_groups(
    table: &str,
    snapshots: &[ItemSnapshot],
    expiries: &HashMap<String, Option<i64>>,
) -> Result<Vec<Vec<(String, TransactWriteItem)>>, AuditError> {
    snapshots
        .chunks(TRANSACT_GROUP)
        .map(|chunk| {
            chunk
                .iter()
                .map(|s| {
                    let put = Put::builder()
                        .table_name(table)
                        .set_item(Some(snapshot_item(s, expiry_in(expiries, &s.operation_id))?))
                        .condition_expression("attribute_not_exists(#sk)")
                        .expression_attribute_names("#sk", attr::SK)
                        .build()
                        .map_err(build_error)?;
                    Ok((snapshot_key(s), TransactWriteItem::builder().put(put).build()))
                })
                .collect()
        })
        .collect()
}

/// Changes as batch puts, in groups of at most [`BATCH_WRITE_GROUP`].
fn change_groups(
    changes: &[ItemChange],
    expiries: &HashMap<String, Option<i64>>,
) -> Result<Vec<Vec<WriteRequest>>, AuditError> {
    changes
        .chunks(BATCH_WRITE_GROUP)
        .map(|chunk| {
            chunk
                .iter()
                .map(|c| {
                    let put = PutRequest::builder()
                        .set_item(Some(change_item(c, expiry_in(expiries, &c.operation_id))?))
                        .build()
                        .map_err(build_error)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect()
        })
        .collect()
}

/// The longest wait before retry `attempt` (1-based): 50 ms doubling, at most 5 s.
fn backoff_ceiling(attempt: u32) -> Duration {
    let millis = 50u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_millis(millis.min(5_000))
}

/// The wait before retry `attempt`: between half and all of the ceiling, at
/// random, so Lambdas throttled together do not retry in lockstep.
fn backoff_delay(attempt: u32) -> Duration {
    let ceiling = backoff_ceiling(attempt);
    let half = ceiling / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ItemOutcome;

    fn record(dry_run: bool) -> OperationRecord {
        OperationRecord {
            operation_id: "0190c3a0-0000-7000-8000-000000000001".into(),
            workflow: crate::domain::Workflow::DeactivateConfigs,
            psa: "connectwise".into(),
            client_id: "250".into(),
            client_name: "Acme".into(),
            initiated_by: "tester".into(),
            reason: None,
            dry_run,
            plan_hash: None,
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("timestamp"),
            input: serde_json::json!({}),
            parent_operation_id: None,
        }
    }

    fn snapshot(i: usize) -> ItemSnapshot {
        ItemSnapshot {
            operation_id: "op".into(),
            item_type: crate::domain::ItemKind::Configuration,
            item_id: i.to_string(),
            item_name: format!("PC {i}"),
            state: serde_json::json!({}),
            planned_action: "deactivate".into(),
        }
    }

    fn change(i: usize) -> ItemChange {
        ItemChange {
            operation_id: "op".into(),
            change_id: format!("change-{i:03}"),
            item_type: crate::domain::ItemKind::Configuration,
            item_id: i.to_string(),
            item_name: format!("PC {i}"),
            outcome: ItemOutcome::Changed,
            before: serde_json::json!({}),
            after: None,
            error_code: None,
            error_message: None,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("timestamp"),
        }
    }

    #[test]
    fn keys_follow_the_documented_layout() {
        assert_eq!(keys::operation_pk("abc"), "OP#abc");
        assert_eq!(keys::META_SK, "META");
        assert_eq!(keys::event_sk("e1"), "EVENT#e1");
        assert_eq!(keys::snapshot_sk("configuration", "42"), "SNAP#configuration#42");
        assert_eq!(keys::change_sk("c1"), "CHANGE#c1");
        assert_eq!(keys::client_pk("connectwise", "250"), "CLIENT#connectwise#250");
        assert_eq!(keys::ALL_OPERATIONS, "OPERATIONS");
    }

    #[test]
    fn setting_keys_escape_the_separator() {
        assert_eq!(keys::settings_pk("connectwise", "250"), "SETTINGS#connectwise#250");
        assert_eq!(keys::settings_pk("connectwise", "*"), "SETTINGS#connectwise#*");
        assert_eq!(keys::setting_sk("notify_to", "v1"), "KEY#notify_to#v1");
        // Without escaping, `a`'s prefix would match `a#b`'s versions, and these two
        // (psa, scope) pairs would share a partition.
        assert!(!keys::setting_sk("a#b", "v1").starts_with(&keys::setting_sk_prefix("a")));
        assert_ne!(keys::settings_pk("a#b", "c"), keys::settings_pk("a", "b#c"));
        assert_ne!(keys::settings_pk("a%23b", "c"), keys::settings_pk("a#b", "c"));
    }

    #[test]
    fn setting_items_carry_no_gsi_keys_and_never_expire() {
        let record = SettingRecord {
            psa: "halo".into(),
            scope: "*".into(),
            key: "k".into(),
            value: None,
            set_by: "tester".into(),
            set_at: crate::domain::now(),
        };
        let item = setting_item(&record, "0190").expect("item");
        assert!(!item.keys().any(|k| k.starts_with("gsi")), "{item:?}");
        assert!(!item.contains_key(TTL_ATTRIBUTE));
        assert_eq!(string_attr(&item, "sk"), "KEY#k#0190");
        let newer = setting_item(&SettingRecord { value: Some("v".into()), ..record.clone() }, "0191").expect("item");
        // Whatever order the items come in, the greater sort key wins.
        assert_eq!(newest_settings(&[newer.clone(), item.clone()]).expect("newest")[0].value.as_deref(), Some("v"));
        assert_eq!(newest_settings(&[item, newer]).expect("newest")[0].value.as_deref(), Some("v"));
    }

    #[test]
    fn meta_item_carries_both_gsi_keys_and_the_filter_attributes() {
        let op = record(false);
        let item = meta_item(&op, None).expect("item");
        assert_eq!(string_attr(&item, "pk"), format!("OP#{}", op.operation_id));
        assert_eq!(string_attr(&item, "sk"), "META");
        assert_eq!(string_attr(&item, "gsi1pk"), "CLIENT#connectwise#250");
        assert_eq!(string_attr(&item, "gsi1sk"), op.operation_id);
        assert_eq!(string_attr(&item, "gsi2pk"), "OPERATIONS");
        assert_eq!(string_attr(&item, "gsi2sk"), op.operation_id);
        assert_eq!(string_attr(&item, "client_id"), "250");
        assert_eq!(string_attr(&item, "psa"), "connectwise");
        assert!(!item.contains_key(TTL_ATTRIBUTE));
        let parsed: OperationRecord = parse_data(&item, "operation").expect("data");
        assert_eq!(parsed, op);
    }

    #[test]
    fn only_headers_carry_gsi_keys() {
        let event = OperationEvent::new("op", crate::domain::OperationEventKind::Started, serde_json::json!({}));
        for item in [
            event_item(&event, Some(1)).expect("event"),
            snapshot_item(&snapshot(1), Some(1)).expect("snapshot"),
            change_item(&change(1), Some(1)).expect("change"),
        ] {
            assert!(!item.keys().any(|k| k.starts_with("gsi")), "{item:?}");
            assert_eq!(item.get(TTL_ATTRIBUTE), Some(&AttributeValue::N("1".into())));
        }
    }

    #[test]
    fn dry_runs_expire_after_the_retention_and_real_runs_never() {
        let retention = chrono::Duration::days(90);
        assert_eq!(expiry_for(&record(false), retention), None);
        assert_eq!(expiry_for(&record(true), retention), Some(1_700_000_000 + 90 * 86_400));
        assert_eq!(expiry_for(&record(true), chrono::Duration::MAX), None);
        let item = meta_item(&record(true), Some(123)).expect("item");
        assert_eq!(expiry_attribute(&item).expect("expiry"), Some(123));
    }

    #[test]
    fn changes_are_chunked_in_groups_of_at_most_25() {
        let sizes = |n: usize| -> Vec<usize> {
            let changes: Vec<_> = (0..n).map(change).collect();
            change_groups(&changes, &HashMap::new()).expect("groups").iter().map(Vec::len).collect()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(25), vec![25]);
        assert_eq!(sizes(26), vec![25, 1]);
        assert_eq!(sizes(60), vec![25, 25, 10]);
    }

    #[test]
    fn change_groups_keep_every_change_once_in_order() {
        let changes: Vec<_> = (0..60).map(change).collect();
        let groups = change_groups(&changes, &HashMap::from([("op".to_string(), Some(7))])).expect("groups");
        let sks: Vec<String> = groups
            .iter()
            .flatten()
            .map(|w| {
                let item = w.put_request().expect("put").item();
                assert_eq!(item.get(TTL_ATTRIBUTE), Some(&AttributeValue::N("7".into())));
                string_attr(item, "sk").to_string()
            })
            .collect();
        let expected: Vec<String> = changes.iter().map(|c| keys::change_sk(&c.change_id)).collect();
        assert_eq!(sks, expected);
    }

    #[test]
    fn snapshots_are_chunked_in_transactions_of_at_most_25_conditional_puts() {
        let snapshots: Vec<_> = (0..60).map(snapshot).collect();
        let groups = snapshot_groups("audit", &snapshots, &HashMap::new()).expect("groups");
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), vec![25, 25, 10]);
        let (name, first) = &groups[0][0];
        assert_eq!(name, "snapshot op/configuration/0");
        let put = first.put().expect("put");
        assert_eq!(put.table_name(), "audit");
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(#sk)"));
        assert!(!put.item().contains_key(TTL_ATTRIBUTE));
        let last = groups[2][9].1.put().expect("put");
        assert_eq!(string_attr(last.item(), "sk"), "SNAP#configuration#59");
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

    #[test]
    fn corrupt_data_is_reported_as_corrupt() {
        let mut item = key_item("OP#x", "META");
        assert!(matches!(parse_data::<OperationRecord>(&item, "operation"), Err(AuditError::Corrupt { .. })));
        item.insert("data".into(), AttributeValue::S("not json".into()));
        assert!(matches!(parse_data::<OperationRecord>(&item, "operation"), Err(AuditError::Corrupt { .. })));
    }
}
