//! The SQLite store's organization settings ([`SettingsStore`]): one row per version.

use rusqlite::{OptionalExtension, params};

use super::{SqliteAuditStore, insert_error, unavailable};
use crate::adapters::audit_records::sort_settings;
use crate::domain::SettingRecord;
use crate::error::AuditError;
use crate::ports::{SettingsStore, async_trait};

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
