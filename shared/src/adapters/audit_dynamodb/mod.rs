//! DynamoDB audit store: the audit trail of the Lambda deployment.
//!
//! # Table layout (single-table design)
//!
//! Every attribute below is a string (`S`) unless said otherwise. Each item
//! carries its domain record serialised as JSON in `data`, so a new field in a
//! record needs no table change.
//!
//! | Item             | `pk`                       | `sk`                         | other attributes | Written by |
//! |------------------|----------------------------|------------------------------|------------------|------------|
//! | Operation header | `OP#<operation_id>`        | `META`                       | `data`, `psa`, `client_id`, `gsi1pk`, `gsi1sk`, `gsi2pk`, `gsi2sk`, `expires_at`? | conditional put, once |
//! | Event            | `OP#<operation_id>`        | `EVENT#<event_id>`           | `data`, `expires_at`? | conditional put, once |
//! | Snapshot         | `OP#<operation_id>`        | `SNAP#<item_type>#<item_id>` | `data`, `expires_at`? | conditional put, once |
//! | Change           | `OP#<operation_id>`        | `CHANGE#<change_id>`         | `data`, `expires_at`? | conditional put, once |
//! | Setting version  | `SETTINGS#<psa>#<scope>`   | `KEY#<key>#<version_id>`     | `data` | conditional put, once (CLI / settings role only) |
//! | Lease            | `LEASE#<target>`           | `LEASE`                      | `data`, `holder`, `lease_until` (N, ms), `expires_at` | put / update / delete, conditional |
//! | Idempotency key  | `IDEMPOTENCY#<key>`        | `IDEMPOTENCY`                | `data`, `status`, `payload_hash`, `record_until` (N, ms), `in_progress_until`? (N, ms), `expires_at` | put / delete, conditional |
//! | Shared vendor limit | `LIMIT#<key>`           | `LIMIT`                      | `version` (N), `document`, `expires_at` | put, conditional on `version` (`limits.rs`) |
//! | Approval request | `APPROVAL#<approval_id>`   | `APPROVAL`                   | `data`, `approval_until` (N, ms), `expires_at` | transaction of conditional puts, with its tokens (`approvals.rs`) |
//! | Approval decision | `APPROVAL#<approval_id>`  | `DECISION`                   | `data`, `expires_at` | conditional put, once |
//! | Approval token   | `APPROVALTOKEN#<sha256>`   | `TOKEN`                      | `data`, `expires_at` | conditional put, with its request |
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
//!   and are kept forever. An idempotency item expires with its record (`expires_at` of the
//!   [`IdempotencyRecord`]); a lease item a week after the lease ran out (housekeeping only:
//!   the conditions compare `lease_until`, never wait for TTL, which deletes late).
//! - The partition-key prefixes (`OP#`, `SETTINGS#`, `LEASE#`, `IDEMPOTENCY#`, in [`keys`])
//!   are what the template's IAM policies name in `dynamodb:LeadingKeys`: workflow functions
//!   may put `OP#`, `LEASE#` and `IDEMPOTENCY#` items, update and delete only the last two,
//!   and never write `SETTINGS#`.
//!
//! Operation ids, event ids and change ids are UUIDv7, whose text form sorts by
//! creation time: sorting the sort keys sorts events and changes oldest first, and
//! a `ScanIndexForward = false` query on either GSI lists operations newest first.
//!
//! # Settings ([`SettingsStore`](crate::ports::SettingsStore))
//!
//! Each `put_setting` writes a new item whose `version_id` is a fresh UUIDv7 (ordered by
//! creation within a process, even within one millisecond), so the versions of a key sort
//! oldest first under `KEY#<key>#`. `get_setting` is one Query on the partition with
//! `begins_with(sk, "KEY#<key>#")`, newest first, `Limit 1`; `list_settings` Queries the
//! whole partition and keeps the last (newest) item of each key. `#` and `%` inside
//! `<psa>`, `<scope>`, `<key>`, a lease `<target>` and an idempotency `<key>` are written
//! `%23` and `%25`, so no key is a prefix of another (`a` vs `a#b`) and no two (psa, scope)
//! pairs share a partition; the record itself, in `data`, keeps the values as given.
//! Setting, lease and idempotency items carry no GSI attributes (never listed as operations).
//!
//! # Append-only guard
//!
//! Every audit item (header, event, snapshot, change, setting version) is written with the
//! condition `attribute_not_exists(pk)`: a `PutItem` for one item, a `TransactWriteItems` of
//! up to 100 conditional puts for several (snapshots and changes), so one group is
//! all-or-nothing and one request carries up to 100 items (the workflows write changes 25 at
//! a time: one request each). A refused condition is [`AuditError::AlreadyExists`] naming
//! the record. The store sends no `BatchWriteItem` (it cannot carry a condition), and no
//! `UpdateItem` or `DeleteItem` on an audit item; the deployed functions' IAM policies do not
//! allow them either.
//!
//! A call of more than 100 items spans several transactions, so before writing such a call
//! the store *checks first* (`BatchGetItem` on the exact keys, consistent reads): if any
//! item exists, the call fails with `AlreadyExists` having written nothing, which is what
//! the port promises. Only a concurrent writer of the same operation's items, racing between
//! that check and the writes, could see a later group refused after earlier groups were
//! written; even then the conditions guarantee nothing is overwritten. Two puts of one key
//! in a call are refused before anything is sent.
//!
//! [`DynamoDbAuditStore::write_requests`] counts the write requests sent, for benchmarks
//! and for tests that hold the store to "one request per 25 audit items".
//!
//! # Leases and idempotency keys
//!
//! See [`leases`]: one conditional request per change. Taking a lease is a `PutItem` with
//! `attribute_not_exists(pk) OR lease_until < :now OR holder = :holder` (no condition when
//! breaking it); renewing is an `UpdateItem` and releasing a `DeleteItem`, both conditional
//! on `holder`. A refused take is [`AuditError::LeaseHeld`] naming the holder's operation
//! (read from the refused item, returned with `ReturnValuesOnConditionCheckFailure`), a
//! refused renewal [`AuditError::LeaseLost`]. Idempotency claims are `PutItem`s conditional
//! on the key being free, expired, or a stale in-progress claim.
//!
//! # Consistency
//!
//! `operation()` reads the table with strongly consistent reads. `list_operations`
//! reads a GSI, which in DynamoDB is eventually consistent: an operation created a
//! moment ago may take a moment to appear in the list. `child_operations` reads the
//! parent's header consistently, then its company's operations from `ByClient`, with the
//! same caveat for a child created a moment ago.

mod approvals;
mod items;
pub mod keys;
mod large_events;
mod leases;
mod limits;
mod reads;
mod settings;
mod table;
mod writes;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;

use super::audit_records::{change_key, duplicate_change, duplicate_snapshot, snapshot_key};
use crate::domain::{
    IdempotencyClaim, IdempotencyRecord, ItemChange, ItemSnapshot, Lease, LeaseRequest, OperationDetail,
    OperationEvent, OperationFilter, OperationRecord, OperationSummary,
};
use crate::error::AuditError;
use crate::ports::AuditStore;
use items::{change_item, child_link_item, event_item, expiry_for, meta_item, snapshot_item};
use writes::NewItem;

/// Name of the GSI that lists one client's operations.
pub const INDEX_BY_CLIENT: &str = "ByClient";
/// Name of the GSI that lists all operations by time.
pub const INDEX_BY_TIME: &str = "ByTime";
/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long a dry run's records are kept unless configured otherwise.
pub const DEFAULT_DRY_RUN_RETENTION_DAYS: i64 = 90;

/// The audit trail in a DynamoDB table (layout in the module documentation).
pub struct DynamoDbAuditStore {
    client: Client,
    table: String,
    dry_run_retention: chrono::Duration,
    /// Each operation's `expires_at` (None: never expires). The dry-run flag of an
    /// operation never changes, so remembering it is always right, and it spares
    /// a read of the header for every event, snapshot and change written.
    expiries: Mutex<HashMap<String, Option<i64>>>,
    /// Write requests sent (see [`DynamoDbAuditStore::write_requests`]).
    write_requests: AtomicU64,
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
            write_requests: AtomicU64::new(0),
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

    /// How many write requests (`PutItem`, `TransactWriteItems`, `UpdateItem`, `DeleteItem`)
    /// this store has sent since it was created, retries included: what DynamoDB bills per
    /// request and what `make bench` reports per audit item.
    pub fn write_requests(&self) -> u64 {
        self.write_requests.load(Ordering::Relaxed)
    }

    fn sdk_error<E>(&self, what: &str, err: E) -> AuditError
    where
        E: std::error::Error + 'static,
    {
        AuditError::Unavailable {
            message: format!("DynamoDB {what} on table {} failed: {}", self.table, DisplayErrorContext(&err)),
        }
    }
}

#[async_trait]
impl AuditStore for DynamoDbAuditStore {
    async fn create_operation(&self, operation: &OperationRecord) -> Result<(), AuditError> {
        let expires_at = expiry_for(operation, self.dry_run_retention);
        let item = meta_item(operation, expires_at)?;
        let name = format!("operation {}", operation.operation_id);
        match operation.parent_operation_id.as_deref() {
            // The header and its link in the parent's partition, both or neither.
            Some(parent) => {
                let link = child_link_item(operation, parent, expires_at)?;
                let items = vec![
                    writes::NewItem { name: name.clone(), item },
                    writes::NewItem { name: format!("child link {parent}/{}", operation.operation_id), item: link },
                ];
                self.put_all_new("TransactWriteItems (operation)", items).await?;
            }
            None => self.put_new("PutItem (operation)", item, || name).await?,
        }
        self.remember_expiry(&operation.operation_id, expires_at);
        Ok(())
    }

    async fn append_event(&self, event: &OperationEvent) -> Result<(), AuditError> {
        let expires_at = self.expiry_of(&event.operation_id).await?;
        let item = event_item(event, expires_at)?;
        if items::item_size(&item) > large_events::PART_BYTES {
            let data = items::string_attr(&item, items::attr::DATA).to_string();
            return self.put_large_event(event, &data, expires_at).await;
        }
        self.put_new("PutItem (event)", item, || format!("event {}/{}", event.operation_id, event.event_id)).await
    }

    async fn put_snapshots(&self, snapshots: &[ItemSnapshot]) -> Result<(), AuditError> {
        // Two puts of one item in a call would rewrite it (and DynamoDB refuses a
        // transaction that touches an item twice): refuse before writing anything.
        if let Some(duplicate) = duplicate_snapshot(snapshots) {
            return Err(AuditError::AlreadyExists { key: snapshot_key(duplicate) });
        }
        let expiries = self.expiries_of(snapshots.iter().map(|s| s.operation_id.as_str())).await?;
        let items = snapshots
            .iter()
            .map(|s| {
                let expiry = expiries.get(&s.operation_id).copied().flatten();
                Ok(NewItem { name: snapshot_key(s), item: snapshot_item(s, expiry)? })
            })
            .collect::<Result<Vec<_>, AuditError>>()?;
        self.put_all_new("snapshots", items).await
    }

    async fn put_changes(&self, changes: &[ItemChange]) -> Result<(), AuditError> {
        if let Some(duplicate) = duplicate_change(changes) {
            return Err(AuditError::AlreadyExists { key: change_key(duplicate) });
        }
        let expiries = self.expiries_of(changes.iter().map(|c| c.operation_id.as_str())).await?;
        let items = changes
            .iter()
            .map(|c| {
                let expiry = expiries.get(&c.operation_id).copied().flatten();
                Ok(NewItem { name: change_key(c), item: change_item(c, expiry)? })
            })
            .collect::<Result<Vec<_>, AuditError>>()?;
        self.put_all_new("changes", items).await
    }

    async fn operation(&self, operation_id: &str) -> Result<Option<OperationDetail>, AuditError> {
        self.read_operation(operation_id).await
    }

    async fn list_operations(&self, filter: &OperationFilter) -> Result<Vec<OperationSummary>, AuditError> {
        self.list(filter).await
    }

    async fn child_operations(&self, parent_operation_id: &str) -> Result<Vec<OperationRecord>, AuditError> {
        self.children(parent_operation_id).await
    }

    async fn acquire_lease(&self, request: &LeaseRequest) -> Result<Lease, AuditError> {
        self.acquire(request).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: chrono::Duration) -> Result<Lease, AuditError> {
        self.renew(lease, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), AuditError> {
        self.release(lease).await
    }

    async fn current_lease(&self, target: &str) -> Result<Option<Lease>, AuditError> {
        self.lease(target).await
    }

    async fn claim_idempotency_key(&self, record: &IdempotencyRecord) -> Result<IdempotencyClaim, AuditError> {
        self.claim(record).await
    }

    async fn complete_idempotency_key(&self, record: &IdempotencyRecord) -> Result<(), AuditError> {
        self.complete(record).await
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), AuditError> {
        self.release_claim(key).await
    }

    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, AuditError> {
        self.stored_idempotency_record(key).await
    }
}
