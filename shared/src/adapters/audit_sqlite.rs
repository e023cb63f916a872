//! SQLite audit store: the embedded default on a laptop (`.offramp/audit.sqlite`).
//!
//! Each record is stored as JSON in a `data` column next to the few key columns
//! the queries need, so a new field in a record needs no schema change.
//!
//! Schema (version 2, in `PRAGMA user_version`):
//! - `operations (operation_id PRIMARY KEY, psa, client_id, data)`;
//! - `events (operation_id, event_id, data)`, primary key `(operation_id, event_id)`;
//! - `snapshots (operation_id, item_type, item_id, data)`, primary key
//!   `(operation_id, item_type, item_id)`;
//! - `changes (operation_id, change_id, data)`, primary key `(operation_id, change_id)`;
//! - `settings (psa, scope, key, version_id, value NULL, set_by, set_at)`, primary key
//!   `(psa, scope, key, version_id)` (version 2): every `put_setting` is a new row with a
//!   fresh UUIDv7 `version_id`, whose text sorts by creation, so the newest version of a key
//!   is the row with the greatest `version_id`. `value` NULL records an unset key. A
//!   version-1 file is upgraded in place (the table is created on open).
//!
//! The primary keys are the append-only guard: every write is a plain `INSERT`
//! (never `INSERT OR REPLACE`), so writing a record that exists fails with a
//! constraint violation, reported as [`AuditError::AlreadyExists`]. Multi-row
//! writes run in one transaction, so a call that would rewrite one record
//! writes nothing at all. Triggers also refuse any `UPDATE`, so a later change
//! to this file cannot quietly start rewriting history.
//!
//! The keys are the same as the DynamoDB store's partition and sort keys, so
//! both stores accept and refuse exactly the same writes.
//!
//! The database runs in WAL mode (readers do not block the writer, and a crash
//! cannot corrupt it) with a busy timeout, so two `offramp` processes on one
//! laptop wait for each other instead of failing with `SQLITE_BUSY`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::DeserializeOwned;

use crate::domain::{
    ItemChange, ItemSnapshot, OperationDetail, OperationEvent, OperationFilter, OperationRecord, OperationSummary,
    SettingRecord,
};
use crate::error::AuditError;
use crate::ports::{AuditStore, SettingsStore};

/// How many operations `list_operations` returns when the filter's limit is 0.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// The schema version this code writes and reads (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS operations (
    operation_id TEXT NOT NULL PRIMARY KEY,
    psa          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_client ON operations (client_id, psa, operation_id);

CREATE TABLE IF NOT EXISTS events (
    operation_id TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (operation_id, event_id)
);

CREATE TABLE IF NOT EXISTS snapshots (
    operation_id TEXT NOT NULL,
    item_type    TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (operation_id, item_type, item_id)
);

CREATE TABLE IF NOT EXISTS changes (
    operation_id TEXT NOT NULL,
    change_id    TEXT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (operation_id, change_id)
);

CREATE TABLE IF NOT EXISTS settings (
    psa        TEXT NOT NULL,
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    version_id TEXT NOT NULL,
    value      TEXT NULL,
    set_by     TEXT NOT NULL,
    set_at     TEXT NOT NULL,
    PRIMARY KEY (psa, scope, key, version_id)
);

CREATE TRIGGER IF NOT EXISTS operations_append_only BEFORE UPDATE ON operations
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS snapshots_append_only BEFORE UPDATE ON snapshots
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS changes_append_only BEFORE UPDATE ON changes
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS settings_append_only BEFORE UPDATE ON settings
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
";

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

enum SchemaError {
    Sql(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(e: rusqlite::Error) -> Self {
        SchemaError::Sql(e)
    }
}

fn create_schema(conn: &mut Connection) -> Result<(), SchemaError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(SchemaError::TooNew(version));
    }
    tx.execute_batch(SCHEMA)?;
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
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
            // The parent's company's operations (the `operations_by_client` index), then the
            // parent id compared on the parsed record: the same search as the DynamoDB store.
            let mut stmt = conn
                .prepare(
                    "SELECT o.operation_id, o.data FROM operations p \
                     JOIN operations o ON o.client_id = p.client_id AND o.psa = p.psa \
                     WHERE p.operation_id = ?1 AND o.operation_id <> ?1 ORDER BY o.operation_id",
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
}

/// Text form of `set_at`: RFC 3339 with as many fractional digits as it has, so it reads
/// back equal.
pub(crate) fn setting_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn setting_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SettingRecord> {
    let set_at: String = row.get(5)?;
    let parsed = chrono::DateTime::parse_from_rfc3339(&set_at)
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(SettingRecord {
        psa: row.get(0)?,
        scope: row.get(1)?,
        key: row.get(2)?,
        value: row.get(3)?,
        set_by: row.get(4)?,
        set_at: parsed,
    })
}

fn setting_read_error(what: &str, e: rusqlite::Error) -> AuditError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => {
            AuditError::Corrupt { message: format!("{what}: set_at is not an RFC 3339 time: {cause}") }
        }
        e => unavailable(what, e),
    }
}

/// Columns in the order [`setting_from_row`] reads them.
const SETTING_COLUMNS: &str = "psa, scope, key, value, set_by, set_at";

#[async_trait]
impl SettingsStore for SqliteAuditStore {
    async fn get_setting(&self, psa: &str, scope: &str, key: &str) -> Result<Option<SettingRecord>, AuditError> {
        let (psa, scope, key) = (psa.to_string(), scope.to_string(), key.to_string());
        self.with_conn("get_setting", move |conn| {
            let what = "reading a setting";
            conn.query_row(
                &format!(
                    "SELECT {SETTING_COLUMNS} FROM settings WHERE psa = ?1 AND scope = ?2 AND key = ?3 \
                     ORDER BY version_id DESC LIMIT 1"
                ),
                params![psa, scope, key],
                setting_from_row,
            )
            .optional()
            .map_err(|e| setting_read_error(what, e))
        })
        .await
    }

    async fn put_setting(&self, record: &SettingRecord) -> Result<(), AuditError> {
        let record = record.clone();
        // UUIDv7 from one process are ordered by creation even within one millisecond,
        // so two puts in a row keep their order.
        let version_id = uuid::Uuid::now_v7().to_string();
        self.with_conn("put_setting", move |conn| {
            conn.execute(
                "INSERT INTO settings (psa, scope, key, version_id, value, set_by, set_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    record.psa,
                    record.scope,
                    record.key,
                    version_id,
                    record.value,
                    record.set_by,
                    setting_time(&record.set_at)
                ],
            )
            .map_err(|e| {
                insert_error(
                    "writing a setting",
                    || format!("setting {}/{}/{}/{version_id}", record.psa, record.scope, record.key),
                    e,
                )
            })?;
            Ok(())
        })
        .await
    }

    async fn list_settings(&self, psa: &str, scope: &str) -> Result<Vec<SettingRecord>, AuditError> {
        let (psa, scope) = (psa.to_string(), scope.to_string());
        self.with_conn("list_settings", move |conn| {
            let what = "listing settings";
            // The newest version of each key: the row no newer row of the same key follows.
            let sql = format!(
                "SELECT {SETTING_COLUMNS} FROM settings s WHERE psa = ?1 AND scope = ?2 AND version_id = \
                 (SELECT MAX(n.version_id) FROM settings n \
                  WHERE n.psa = s.psa AND n.scope = s.scope AND n.key = s.key) \
                 ORDER BY key"
            );
            let mut stmt = conn.prepare(&sql).map_err(|e| unavailable(what, e))?;
            let rows = stmt.query_map(params![psa, scope], setting_from_row).map_err(|e| unavailable(what, e))?;
            let mut records =
                rows.map(|row| row.map_err(|e| setting_read_error(what, e))).collect::<Result<Vec<_>, _>>()?;
            // SQLite's BINARY collation orders like Rust strings; sorting here keeps the
            // order defined in one place for both stores.
            sort_settings(&mut records);
            Ok(records)
        })
        .await
    }
}

/// The order `list_settings` returns records in, the same in every store.
pub(crate) fn sort_settings(records: &mut [SettingRecord]) {
    records.sort_by(|a, b| a.key.cmp(&b.key));
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
    use crate::domain::{ItemOutcome, OperationEventKind};

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
        assert_eq!(version, 2);
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
    async fn updates_are_refused_by_triggers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("open");
        let op = record(&crate::domain::new_operation_id());
        store.create_operation(&op).await.expect("create");
        let conn = store.conn.lock().expect("lock");
        let result = conn.execute("UPDATE operations SET data = '{}' WHERE operation_id = ?1", [&op.operation_id]);
        assert!(result.is_err(), "UPDATE must be refused");
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
