//! The vendor limits every local process shares (`ports::SharedLimitStore`), in the same
//! file as the audit trail: one row per limit, swapped with one conditional statement
//! (`version = expected`), so two CLI processes on one laptop stay within one vendor limit.

use rusqlite::{OptionalExtension, params};

use super::SqliteAuditStore;
use crate::error::{AuditError, SharedLimitError};
use crate::ports::{SharedLimitState, SharedLimitStore, async_trait};

fn unavailable(error: AuditError) -> SharedLimitError {
    SharedLimitError::Unavailable { message: error.to_string() }
}

#[async_trait]
impl SharedLimitStore for SqliteAuditStore {
    async fn read_limit(&self, key: &str) -> Result<Option<SharedLimitState>, SharedLimitError> {
        let key = key.to_string();
        self.with_conn("reading a shared limit", move |conn| {
            conn.query_row("SELECT version, document FROM shared_limits WHERE key = ?1", [&key], |row| {
                Ok(SharedLimitState { version: row.get::<_, i64>(0)?.max(0) as u64, document: row.get(1)? })
            })
            .optional()
            .map_err(|e| super::unavailable("reading a shared limit", e))
        })
        .await
        .map_err(unavailable)
    }

    async fn swap_limit(&self, key: &str, expected: Option<u64>, document: &str) -> Result<bool, SharedLimitError> {
        let (key, document) = (key.to_string(), document.to_string());
        self.with_conn("writing a shared limit", move |conn| {
            let written = match expected {
                None => conn.execute(
                    "INSERT INTO shared_limits (key, version, document) VALUES (?1, 1, ?2) ON CONFLICT (key) DO NOTHING",
                    params![key, document],
                ),
                Some(version) => conn.execute(
                    "UPDATE shared_limits SET version = version + 1, document = ?2 WHERE key = ?1 AND version = ?3",
                    params![key, document, version as i64],
                ),
            }
            .map_err(|e| super::unavailable("writing a shared limit", e))?;
            Ok(written == 1)
        })
        .await
        .map_err(unavailable)
    }
}
