//! The SQLite schema, its version, and the triggers that make the audit tables append-only.

use rusqlite::Connection;

/// The schema version this code writes and reads (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i64 = 3;

/// The tables of the audit trail proper: rows are inserted, never updated or deleted.
/// (`leases` and `idempotency` are not among them: they are state, not history.)
pub const AUDIT_TABLES: [&str; 5] = ["operations", "events", "snapshots", "changes", "settings"];

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS operations (
    operation_id TEXT NOT NULL PRIMARY KEY,
    psa          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_client ON operations (client_id, psa, operation_id);
-- A chain's children belong to other systems and companies (IT Glue, Microsoft 365): they
-- are found by the parent named in their record, not by the parent's company.
CREATE INDEX IF NOT EXISTS operations_by_parent
    ON operations (json_extract(data, '$.parent_operation_id'), operation_id);

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

CREATE TABLE IF NOT EXISTS leases (
    target     TEXT NOT NULL PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    data       TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS idempotency (
    key                  TEXT NOT NULL PRIMARY KEY,
    payload_hash         TEXT NOT NULL,
    status               TEXT NOT NULL,
    expires_ms           INTEGER NOT NULL,
    in_progress_until_ms INTEGER NULL,
    data                 TEXT NOT NULL
);

-- Approvals (approvals.rs): state, not history; the decision is written once, conditionally.
CREATE TABLE IF NOT EXISTS approvals (
    approval_id TEXT NOT NULL PRIMARY KEY,
    expires_ms  INTEGER NOT NULL,
    decision    TEXT NULL,
    data        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS approval_tokens (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    approval_id TEXT NOT NULL,
    data        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS shared_limits (
    key      TEXT NOT NULL PRIMARY KEY,
    version  INTEGER NOT NULL,
    document TEXT NOT NULL
);
";

/// `BEFORE UPDATE` and `BEFORE DELETE` triggers raising an abort on every audit table.
/// `IF NOT EXISTS`: they are created on every open, so a file written by an older version
/// (which had only the UPDATE triggers) gains the DELETE ones.
fn append_only_triggers() -> String {
    AUDIT_TABLES
        .iter()
        .flat_map(|table| {
            [("append_only", "UPDATE"), ("no_delete", "DELETE")].map(|(suffix, statement)| {
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_{suffix} BEFORE {statement} ON {table}\n\
                     BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;\n"
                )
            })
        })
        .collect()
}

pub(super) enum SchemaError {
    Sql(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(e: rusqlite::Error) -> Self {
        SchemaError::Sql(e)
    }
}

/// Create what is missing (tables, indexes, triggers) and record the version, in one
/// immediate transaction so two processes opening a new file do not interleave.
pub(super) fn create_schema(conn: &mut Connection) -> Result<(), SchemaError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(SchemaError::TooNew(version));
    }
    tx.execute_batch(TABLES)?;
    tx.execute_batch(&append_only_triggers())?;
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_table_gets_both_triggers() {
        let sql = append_only_triggers();
        for table in AUDIT_TABLES {
            assert!(sql.contains(&format!("BEFORE UPDATE ON {table}\n")), "{sql}");
            assert!(sql.contains(&format!("BEFORE DELETE ON {table}\n")), "{sql}");
        }
        assert!(!sql.contains("leases") && !sql.contains("idempotency"), "{sql}");
    }
}
