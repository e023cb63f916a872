//! SQLite audit store: the embedded default on a laptop (`.offramp/audit.sqlite`).
//!
//! Each record is stored as JSON in a `data` column next to the few key columns
//! the queries need, so a new field in a record needs no schema change.
//!
//! # Schema (version 3, in `PRAGMA user_version`; created in [`schema`])
//!
//! | Table         | Primary key                            | Other columns | Rows are |
//! |---------------|----------------------------------------|---------------|----------|
//! | `operations`  | `operation_id`                         | `psa`, `client_id`, `data` | append-only |
//! | `events`      | `(operation_id, event_id)`             | `data` | append-only |
//! | `snapshots`   | `(operation_id, item_type, item_id)`   | `data` | append-only |
//! | `changes`     | `(operation_id, change_id)`            | `data` | append-only |
//! | `settings`    | `(psa, scope, key, version_id)`        | `value` NULL, `set_by`, `set_at` | append-only |
//! | `leases`      | `target`                               | `holder`, `expires_ms`, `data` | updated, deleted |
//! | `idempotency` | `key`                                  | `payload_hash`, `status`, `expires_ms`, `in_progress_until_ms` NULL, `data` | updated, deleted |
//! | `approvals`   | `approval_id`                          | `expires_ms`, `decision` NULL, `data` | decision set once (`approvals.rs`) |
//! | `approval_tokens` | `token_hash` (SHA-256 of the token)  | `approval_id`, `data` | inserted once |
//!
//! - Settings: every `put_setting` is a new row with a fresh UUIDv7 `version_id`, whose text
//!   sorts by creation, so the newest version of a key is the row with the greatest
//!   `version_id`. `value` NULL records an unset key.
//! - `*_ms` columns are epoch milliseconds, compared in the conditional writes; `data` holds
//!   the full [`Lease`](crate::domain::Lease) / [`IdempotencyRecord`](crate::domain::IdempotencyRecord).
//! - Older files (version 1: no settings; version 2: no leases, no idempotency, no DELETE
//!   triggers) are upgraded in place on open: every table and trigger is created
//!   `IF NOT EXISTS`.
//!
//! # Append-only guard
//!
//! The primary keys are the first guard: every audit write is a plain `INSERT` (never
//! `INSERT OR REPLACE`), so writing a record that exists fails with a constraint violation,
//! reported as [`AuditError::AlreadyExists`]. Multi-row writes run in one transaction, so a
//! call that would rewrite one record writes nothing at all. Triggers on the five audit
//! tables then refuse every `UPDATE` and `DELETE` (`RAISE(ABORT)`), whoever issues it, so a
//! later change to this code, or a hand-written statement on the file, cannot quietly
//! rewrite history.
//!
//! Leases and idempotency records are state, not history: each change to them is one
//! statement carrying its own condition (`INSERT … ON CONFLICT DO UPDATE … WHERE`,
//! `UPDATE … WHERE holder = ?`), and the rows it affected say whether the condition held
//! (see [`leases`]).
//!
//! The keys are the same as the DynamoDB store's partition and sort keys, so
//! both stores accept and refuse exactly the same writes.
//!
//! The database runs in WAL mode (readers do not block the writer, and a crash
//! cannot corrupt it) with a busy timeout, so two `offramp` processes on one
//! laptop wait for each other instead of failing with `SQLITE_BUSY`; lease and
//! idempotency writes run in `IMMEDIATE` transactions, so two processes racing for
//! one lease are serialised by SQLite's write lock.

mod approvals;
mod leases;
mod limits;
pub mod schema;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;

pub use crate::adapters::audit_records::DEFAULT_LIST_LIMIT;
use crate::adapters::audit_records::{effective_limit, sort_snapshots};
use crate::domain::{
    IdempotencyClaim, IdempotencyRecord, ItemChange, ItemSnapshot, Lease, LeaseRequest, OperationDetail,
    OperationEvent, OperationFilter, OperationRecord, OperationSummary,
};
use crate::error::AuditError;
use crate::ports::AuditStore;
use schema::{SCHEMA_VERSION, SchemaError, create_schema};

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The audit trail in a local SQLite file.
///
/// rusqlite is synchronous, so every call runs on tokio's blocking pool, and one
/// connection behind a mutex serialises this process's access (SQLite allows a
/// single writer anyway).
#[derive(Clone)]
pub struct SqliteAuditStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuditStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteAuditStore {
    /// Open (or create) the database at `path`, creating its parent directories
    /// and the schema.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| AuditError::Unavailable {
                message: format!("cannot create the directory {} for the audit database: {e}", parent.display()),
            })?;
        }
        let what = format!("opening the audit database {}", path.display());
        let mut conn = Connection::open(path).map_err(|e| unavailable(&what, e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| unavailable(&what, e))?;
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(|e| unavailable(&what, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network shares) cannot do WAL; SQLite then keeps
            // its rollback journal, which is slower but just as safe.
            tracing::warn!(path = %path.display(), journal_mode = %mode, "audit database is not in WAL mode");
        }
        create_schema(&mut conn).map_err(|e| match e {
            SchemaError::Sql(e) => unavailable(&what, e),
            SchemaError::TooNew(version) => AuditError::Unavailable {
                message: format!(
                    "the audit database {} has schema version {version}, newer than this program's {SCHEMA_VERSION}; \
                     upgrade offramp",
                    path.display()
                ),
            },
        })?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path: path.to_path_buf() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, what: &'static str, f: F) -> Result<T, AuditError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, AuditError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves no half-done transaction
            // behind (rusqlite rolls back on drop), so the connection stays usable.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| AuditError::Unavailable { message: format!("{what}: the database task failed: {e}") })?
    }
}

fn unavailable(what: &str, e: rusqlite::Error) -> AuditError {
    AuditError::Unavailable { message: format!("SQLite error while {what}: {e}") }
}

/// A failed `INSERT`: a key that exists is the append-only guard speaking.
fn insert_error(what: &str, key: impl FnOnce() -> String, e: rusqlite::Error) -> AuditError {
    if is_unique_violation(&e) { AuditError::AlreadyExists { key: key() } } else { unavailable(what, e) }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(err, _)
            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, AuditError> {
    serde_json::to_string(value)
        .map_err(|e| AuditError::Unavailable { message: format!("cannot serialise the {what}: {e}") })
}

fn from_json<T: DeserializeOwned>(what: &str, key: &str, data: &str) -> Result<T, AuditError> {
    serde_json::from_str(data).map_err(|e| AuditError::Corrupt { message: format!("{what} {key}: {e}") })
}

#[async_trait]
impl AuditStore for SqliteAuditStore {
    async fn create_operation(&self, operation: &OperationRecord) -> Result<(), AuditError> {
        let data = to_json("operation record", operation)?;
        let id = operation.operation_id.clone();
        let psa = operation.psa.clone();
        let client_id = operation.client_id.clone();
        self.with_conn("create_operation", move |conn| {
            conn.execute(
                "INSERT INTO operations (operation_id, psa, client_id, data) VALUES (?1, ?2, ?3, ?4)",
                params![id, psa, client_id, data],
            )
            .map_err(|e| insert_error("writing an operation", || format!("operation {id}"), e))?;
            Ok(())
        })
        .await
    }

    async fn append_event(&self, event: &OperationEvent) -> Result<(), AuditError> {
        let data = to_json("operation event", event)?;
        let operation_id = event.operation_id.clone();
        let event_id = event.event_id.clone();
        self.with_conn("append_event", move |conn| {
            conn.execute(
                "INSERT INTO events (operation_id, event_id, data) VALUES (?1, ?2, ?3)",
                params![operation_id, event_id, data],
            )
            .map_err(|e| insert_error("appending an event", || format!("event {operation_id}/{event_id}"), e))?;
            Ok(())
        })
        .await
    }

    async fn put_snapshots(&self, snapshots: &[ItemSnapshot]) -> Result<(), AuditError> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let rows = snapshots
            .iter()
            .map(|s| Ok((s.operation_id.clone(), s.item_type.as_str(), s.item_id.clone(), to_json("snapshot", s)?)))
            .collect::<Result<Vec<_>, AuditError>>()?;
        self.with_conn("put_snapshots", move |conn| {
            let what = "writing snapshots";
            let tx = conn.transaction().map_err(|e| unavailable(what, e))?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO snapshots (operation_id, item_type, item_id, data) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(|e| unavailable(what, e))?;
                for (operation_id, item_type, item_id, data) in &rows {
                    // An error returns before commit: the transaction rolls back
                    // on drop, so the call writes nothing.
                    stmt.execute(params![operation_id, item_type, item_id, data]).map_err(|e| {
                        insert_error(what, || format!("snapshot {operation_id}/{item_type}/{item_id}"), e)
                    })?;
                }
            }
            tx.commit().map_err(|e| unavailable(what, e))
        })
        .await
    }

    async fn put_changes(&self, changes: &[ItemChange]) -> Result<(), AuditError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows = changes
            .iter()
            .map(|c| Ok((c.operation_id.clone(), c.change_id.clone(), to_json("item change", c)?)))
            .collect::<Result<Vec<_>, AuditError>>()?;
        self.with_conn("put_changes", move |conn| {
            let what = "writing item changes";
            let tx = conn.transaction().map_err(|e| unavailable(what, e))?;
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO changes (operation_id, change_id, data) VALUES (?1, ?2, ?3)")
                    .map_err(|e| unavailable(what, e))?;
                for (operation_id, change_id, data) in &rows {
                    stmt.execute(params![operation_id, change_id, data])
                        .map_err(|e| insert_error(what, || format!("change {operation_id}/{change_id}"), e))?;
                }
            }
            tx.commit().map_err(|e| unavailable(what, e))
        })
        .await
    }

    async fn operation(&self, operation_id: &str) -> Result<Option<OperationDetail>, AuditError> {
        let id = operation_id.to_string();
        self.with_conn("operation", move |conn| {
            let what = "reading an operation";
            // One read transaction, so the parts come from the same moment.
            let tx = conn.transaction().map_err(|e| unavailable(what, e))?;
            let data: Option<String> = tx
                .query_row("SELECT data FROM operations WHERE operation_id = ?1", [&id], |row| row.get(0))
                .optional()
                .map_err(|e| unavailable(what, e))?;
            let Some(data) = data else {
                return Ok(None);
            };
            let operation: OperationRecord = from_json("operation", &id, &data)?;
            let events: Vec<OperationEvent> = read_all(
                &tx,
                "SELECT data FROM events WHERE operation_id = ?1 ORDER BY event_id",
                &id,
                "event of operation",
            )?;
            let mut snapshots: Vec<ItemSnapshot> = read_all(
                &tx,
                "SELECT data FROM snapshots WHERE operation_id = ?1 ORDER BY item_type, item_id",
                &id,
                "snapshot of operation",
            )?;
            // SQLite's BINARY collation already orders like Rust strings; sorting
            // again keeps the order defined in one place for both stores.
            sort_snapshots(&mut snapshots);
            let changes: Vec<ItemChange> = read_all(
                &tx,
                "SELECT data FROM changes WHERE operation_id = ?1 ORDER BY change_id",
                &id,
                "change of operation",
            )?;
            Ok(Some(OperationDetail { operation, events, snapshots, changes }))
        })
        .await
    }

    async fn list_operations(&self, filter: &OperationFilter) -> Result<Vec<OperationSummary>, AuditError> {
        let limit = i64::try_from(effective_limit(filter)).unwrap_or(i64::MAX);
        let client_id = filter.client_id.clone();
        let psa = filter.psa.clone();
        self.with_conn("list_operations", move |conn| {
            let what = "listing operations";
            let mut sql = String::from(
                "SELECT o.operation_id, o.data, \
                 (SELECT e.data FROM events e WHERE e.operation_id = o.operation_id \
                  ORDER BY e.event_id DESC LIMIT 1) \
                 FROM operations o",
            );
            let mut conditions = Vec::new();
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(client_id) = client_id {
                values.push(client_id.into());
                conditions.push(format!("o.client_id = ?{}", values.len()));
            }
            if let Some(psa) = psa {
                values.push(psa.into());
                conditions.push(format!("o.psa = ?{}", values.len()));
            }
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            values.push(limit.into());
            sql.push_str(&format!(" ORDER BY o.operation_id DESC LIMIT ?{}", values.len()));

            let mut stmt = conn.prepare(&sql).map_err(|e| unavailable(what, e))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?))
                })
                .map_err(|e| unavailable(what, e))?;
            let mut summaries = Vec::new();
            for row in rows {
                let (id, data, last_event) = row.map_err(|e| unavailable(what, e))?;
                let operation: OperationRecord = from_json("operation", &id, &data)?;
                let last_event: Option<OperationEvent> =
                    last_event.map(|data| from_json("latest event of operation", &id, &data)).transpose()?;
                summaries.push(OperationSummary {
                    operation,
                    last_event: last_event.as_ref().map(|e| e.kind),
                    last_event_at: last_event.as_ref().map(|e| e.at),
                });
            }
            Ok(summaries)
        })
        .await
    }

    async fn child_operations(&self, parent_operation_id: &str) -> Result<Vec<OperationRecord>, AuditError> {
        let parent = parent_operation_id.to_string();
        self.with_conn("child_operations", move |conn| {
            let what = "reading child operations";
            // Every operation that names the parent (the `operations_by_parent` index), of
            // any system or company; the parent id is compared again on the parsed record.
            let mut stmt = conn
                .prepare(
                    "SELECT operation_id, data FROM operations \
                     WHERE json_extract(data, '$.parent_operation_id') = ?1 AND operation_id <> ?1 \
                     ORDER BY operation_id",
                )
                .map_err(|e| unavailable(what, e))?;
            let rows = stmt
                .query_map([&parent], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                .map_err(|e| unavailable(what, e))?;
            let mut children = Vec::new();
            for row in rows {
                let (id, data) = row.map_err(|e| unavailable(what, e))?;
                let operation: OperationRecord = from_json("operation", &id, &data)?;
                if operation.parent_operation_id.as_deref() == Some(parent.as_str()) {
                    children.push(operation);
                }
            }
            Ok(children)
        })
        .await
    }

    async fn acquire_lease(&self, request: &LeaseRequest) -> Result<Lease, AuditError> {
        let request = request.clone();
        self.with_conn("acquire_lease", move |conn| leases::acquire(conn, &request, crate::domain::now())).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: chrono::Duration) -> Result<Lease, AuditError> {
        let lease = lease.clone();
        self.with_conn("renew_lease", move |conn| leases::renew(conn, &lease, ttl, crate::domain::now())).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), AuditError> {
        let lease = lease.clone();
        self.with_conn("release_lease", move |conn| leases::release(conn, &lease)).await
    }

    async fn current_lease(&self, target: &str) -> Result<Option<Lease>, AuditError> {
        let target = target.to_string();
        self.with_conn("current_lease", move |conn| leases::read_lease(conn, &target)).await
    }

    async fn claim_idempotency_key(&self, record: &IdempotencyRecord) -> Result<IdempotencyClaim, AuditError> {
        let record = record.clone();
        self.with_conn("claim_idempotency_key", move |conn| leases::claim(conn, &record, crate::domain::now())).await
    }

    async fn complete_idempotency_key(&self, record: &IdempotencyRecord) -> Result<(), AuditError> {
        let record = record.clone();
        self.with_conn("complete_idempotency_key", move |conn| leases::complete(conn, &record)).await
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), AuditError> {
        let key = key.to_string();
        self.with_conn("release_idempotency_key", move |conn| leases::release_claim(conn, &key)).await
    }

    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, AuditError> {
        let key = key.to_string();
        self.with_conn("idempotency_record", move |conn| leases::read_idempotency(conn, &key)).await
    }
}

fn read_all<T: DeserializeOwned>(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    operation_id: &str,
    what: &str,
) -> Result<Vec<T>, AuditError> {
    let mut stmt = tx.prepare(sql).map_err(|e| unavailable("reading an operation", e))?;
    let rows = stmt
        .query_map([operation_id], |row| row.get::<_, String>(0))
        .map_err(|e| unavailable("reading an operation", e))?;
    rows.map(|row| {
        let data = row.map_err(|e| unavailable("reading an operation", e))?;
        from_json(what, operation_id, &data)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ItemOutcome, OperationEventKind, SettingRecord};
    use crate::ports::SettingsStore;

    fn record(id: &str) -> OperationRecord {
        OperationRecord {
            operation_id: id.to_string(),
            workflow: crate::domain::Workflow::DeactivateConfigs,
            psa: "connectwise".into(),
            client_id: "250".into(),
            client_name: "Acme".into(),
            initiated_by: "tester".into(),
            reason: None,
            dry_run: false,
            plan_hash: None,
            created_at: crate::domain::now(),
            input: serde_json::json!({"client_id": "250"}),
            parent_operation_id: None,
        }
    }

    fn snapshot(op: &str, item_id: &str) -> ItemSnapshot {
        ItemSnapshot {
            operation_id: op.into(),
            item_type: crate::domain::ItemKind::Configuration,
            item_id: item_id.into(),
            item_name: format!("PC {item_id}"),
            state: serde_json::json!({"status": "Active"}),
            planned_action: "deactivate".into(),
        }
    }

    fn change(op: &str) -> ItemChange {
        ItemChange {
            operation_id: op.into(),
            change_id: uuid::Uuid::now_v7().to_string(),
            item_type: crate::domain::ItemKind::Configuration,
            item_id: "1".into(),
            item_name: "PC 1".into(),
            outcome: ItemOutcome::Changed,
            before: serde_json::json!({}),
            after: None,
            error_code: None,
            error_message: None,
            at: crate::domain::now(),
        }
    }

    #[test]
    fn open_creates_parent_directories_and_uses_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/deeper/audit.sqlite");
        let store = SqliteAuditStore::open(&path).expect("open");
        assert!(path.exists());
        let conn = store.conn.lock().expect("lock");
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("pragma");
        assert_eq!(mode, "wal");
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("pragma");
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite");
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("pragma");
        }
        let err = SqliteAuditStore::open(&path).expect_err("newer schema must be refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[tokio::test]
    async fn a_version_1_file_gains_the_settings_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite");
        {
            // What version 1 created: no settings table.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE operations (operation_id TEXT NOT NULL PRIMARY KEY, psa TEXT NOT NULL, \
                 client_id TEXT NOT NULL, data TEXT NOT NULL);",
            )
            .expect("v1 table");
            conn.pragma_update(None, "user_version", 1).expect("pragma");
        }
        let store = SqliteAuditStore::open(&path).expect("open a version-1 file");
        let record = SettingRecord {
            psa: "connectwise".into(),
            scope: "250".into(),
            key: "notify_to".into(),
            value: Some("a@b.example".into()),
            set_by: "tester".into(),
            set_at: crate::domain::now(),
        };
        store.put_setting(&record).await.expect("put");
        assert_eq!(store.get_setting("connectwise", "250", "notify_to").await.expect("get"), Some(record));
        let conn = store.conn.lock().expect("lock");
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("pragma");
        assert_eq!(version, SCHEMA_VERSION);
        let result = conn.execute("UPDATE settings SET value = 'x'", []);
        assert!(result.is_err(), "UPDATE of a setting must be refused");
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite");
        let op = record(&crate::domain::new_operation_id());
        {
            let store = SqliteAuditStore::open(&path).expect("open");
            store.create_operation(&op).await.expect("create");
            store
                .append_event(&OperationEvent::new(
                    &op.operation_id,
                    OperationEventKind::Planned,
                    serde_json::json!({}),
                ))
                .await
                .expect("event");
        }
        let store = SqliteAuditStore::open(&path).expect("reopen");
        let detail = store.operation(&op.operation_id).await.expect("read").expect("present");
        assert_eq!(detail.operation, op);
        assert_eq!(detail.events.len(), 1);
    }

    #[tokio::test]
    async fn updates_and_deletes_are_refused_by_triggers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("open");
        let op = record(&crate::domain::new_operation_id());
        store.create_operation(&op).await.expect("create");
        let conn = store.conn.lock().expect("lock");
        let result = conn.execute("UPDATE operations SET data = '{}' WHERE operation_id = ?1", [&op.operation_id]);
        assert!(result.is_err(), "UPDATE must be refused");
        let result = conn.execute("DELETE FROM operations WHERE operation_id = ?1", [&op.operation_id]);
        assert!(result.expect_err("DELETE must be refused").to_string().contains("append-only"));
        let left: i64 = conn.query_row("SELECT count(*) FROM operations", [], |r| r.get(0)).expect("count");
        assert_eq!(left, 1);
    }

    #[tokio::test]
    async fn a_version_2_file_gains_delete_triggers_leases_and_idempotency() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite");
        {
            // What version 2 created: the audit tables with UPDATE triggers only, and a row.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE changes (operation_id TEXT NOT NULL, change_id TEXT NOT NULL, data TEXT NOT NULL,                  PRIMARY KEY (operation_id, change_id));                  CREATE TRIGGER changes_append_only BEFORE UPDATE ON changes                  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;                  INSERT INTO changes VALUES ('op', 'c1', '{}');",
            )
            .expect("v2 table");
            conn.execute("DELETE FROM changes WHERE change_id = 'nothing'", []).expect("v2 lets DELETE through");
            conn.pragma_update(None, "user_version", 2).expect("pragma");
        }
        let store = SqliteAuditStore::open(&path).expect("open a version-2 file");
        let lease = store
            .acquire_lease(&LeaseRequest {
                target: "connectwise#250".into(),
                operation_id: "op".into(),
                holder: "h1".into(),
                ttl: chrono::Duration::seconds(60),
                break_existing: false,
            })
            .await
            .expect("the leases table exists");
        assert_eq!(store.current_lease("connectwise#250").await.expect("read"), Some(lease));
        let conn = store.conn.lock().expect("lock");
        assert!(conn.execute("DELETE FROM changes", []).is_err(), "DELETE refused after the upgrade");
        let left: i64 = conn.query_row("SELECT count(*) FROM changes", [], |r| r.get(0)).expect("count");
        assert_eq!(left, 1);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("pragma");
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_failing_batch_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("open");
        let op = crate::domain::new_operation_id();
        store.put_snapshots(&[snapshot(&op, "1")]).await.expect("first");
        let err = store.put_snapshots(&[snapshot(&op, "2"), snapshot(&op, "1")]).await.expect_err("rewrite");
        assert!(matches!(err, AuditError::AlreadyExists { ref key } if key.ends_with("/configuration/1")), "{err}");
        let c = change(&op);
        let err = store.put_changes(&[change(&op), c.clone(), c]).await.expect_err("duplicate change");
        assert!(matches!(err, AuditError::AlreadyExists { .. }), "{err}");
        let conn = store.conn.lock().expect("lock");
        let snapshots: i64 = conn.query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0)).expect("count");
        assert_eq!(snapshots, 1);
        let changes: i64 = conn.query_row("SELECT count(*) FROM changes", [], |r| r.get(0)).expect("count");
        assert_eq!(changes, 0);
    }

    #[test]
    fn in_call_duplicates_are_found() {
        use crate::adapters::audit_records::{duplicate_change, duplicate_snapshot};
        let a = snapshot("op", "1");
        let b = snapshot("op", "2");
        assert!(duplicate_snapshot(&[a.clone(), b.clone()]).is_none());
        assert_eq!(duplicate_snapshot(&[a.clone(), b, a.clone()]), Some(&a));
        // The same item in another operation is a different record.
        assert!(duplicate_snapshot(&[a, snapshot("other", "1")]).is_none());
        let c = change("op");
        assert!(duplicate_change(&[c.clone(), change("op")]).is_none());
        assert_eq!(duplicate_change(&[c.clone(), c.clone()]), Some(&c));
    }

    #[test]
    fn limit_zero_means_the_default() {
        assert_eq!(effective_limit(&OperationFilter::default()), DEFAULT_LIST_LIMIT);
        assert_eq!(effective_limit(&OperationFilter { limit: 3, ..Default::default() }), 3);
    }
}
