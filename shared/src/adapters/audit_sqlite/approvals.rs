//! The SQLite store's approvals ([`ApprovalStore`]): the request in `approvals` (its
//! decision in its own column, set once by `UPDATE … WHERE decision IS NULL AND …`), the
//! token hashes in `approval_tokens`.

use rusqlite::{OptionalExtension, params};

use super::{SqliteAuditStore, from_json, insert_error, to_json, unavailable};
use crate::domain::{ApprovalDecision, ApprovalRecord, ApprovalTokenRecord, ApprovalVerdict, DecisionWrite};
use crate::error::AuditError;
use crate::ports::{ApprovalStore, async_trait};

fn read_record(conn: &rusqlite::Connection, approval_id: &str) -> Result<Option<ApprovalRecord>, AuditError> {
    let row: Option<(String, Option<String>)> = conn
        .query_row("SELECT data, decision FROM approvals WHERE approval_id = ?1", params![approval_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .map_err(|e| unavailable("reading an approval", e))?;
    let Some((data, decision)) = row else { return Ok(None) };
    let mut record: ApprovalRecord = from_json("approval", approval_id, &data)?;
    record.decision = decision.map(|d| from_json("approval decision", approval_id, &d)).transpose()?;
    Ok(Some(record))
}

#[async_trait]
impl ApprovalStore for SqliteAuditStore {
    async fn create_approval(&self, record: &ApprovalRecord, tokens: &[ApprovalTokenRecord]) -> Result<(), AuditError> {
        let mut record = record.clone();
        record.decision = None;
        let data = to_json("approval", &record)?;
        let tokens: Vec<(ApprovalTokenRecord, String)> =
            tokens.iter().map(|t| Ok((t.clone(), to_json("approval token", t)?))).collect::<Result<_, AuditError>>()?;
        self.with_conn("create_approval", move |conn| {
            let what = "storing an approval";
            let tx = conn.transaction().map_err(|e| unavailable(what, e))?;
            tx.execute(
                "INSERT INTO approvals (approval_id, expires_ms, decision, data) VALUES (?1, ?2, NULL, ?3)",
                params![record.approval_id, record.expires_at.timestamp_millis(), data],
            )
            .map_err(|e| insert_error(what, || format!("approval {}", record.approval_id), e))?;
            for (token, data) in &tokens {
                tx.execute(
                    "INSERT INTO approval_tokens (token_hash, approval_id, data) VALUES (?1, ?2, ?3)",
                    params![token.token_hash, token.approval_id, data],
                )
                .map_err(|e| insert_error(what, || format!("a token of approval {}", record.approval_id), e))?;
            }
            tx.commit().map_err(|e| unavailable(what, e))
        })
        .await
    }

    async fn approval_token(&self, token_hash: &str) -> Result<Option<ApprovalTokenRecord>, AuditError> {
        let token_hash = token_hash.to_string();
        self.with_conn("approval_token", move |conn| {
            let data: Option<String> = conn
                .query_row("SELECT data FROM approval_tokens WHERE token_hash = ?1", params![token_hash], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(|e| unavailable("reading an approval token", e))?;
            data.map(|d| from_json("approval token", "(hash)", &d)).transpose()
        })
        .await
    }

    async fn approval(&self, approval_id: &str) -> Result<Option<ApprovalRecord>, AuditError> {
        let approval_id = approval_id.to_string();
        self.with_conn("approval", move |conn| read_record(conn, &approval_id)).await
    }

    async fn record_decision(
        &self,
        approval_id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DecisionWrite, AuditError> {
        let approval_id = approval_id.to_string();
        let data = to_json("approval decision", decision)?;
        // An expiry is written whenever undecided; approve / reject only before the expiry.
        let expiry_floor = if decision.verdict == ApprovalVerdict::Expired {
            i64::MIN
        } else {
            decision.decided_at.timestamp_millis()
        };
        self.with_conn("record_decision", move |conn| {
            let written = conn
                .execute(
                    "UPDATE approvals SET decision = ?1 WHERE approval_id = ?2 AND decision IS NULL AND expires_ms > ?3",
                    params![data, approval_id, expiry_floor],
                )
                .map_err(|e| unavailable("recording an approval's decision", e))?;
            if written == 1 {
                return Ok(DecisionWrite::Recorded);
            }
            // Refused: say why from what is stored now.
            Ok(match read_record(conn, &approval_id)? {
                None => DecisionWrite::NotFound,
                Some(ApprovalRecord { decision: Some(existing), .. }) => DecisionWrite::AlreadyDecided(existing),
                Some(_) => DecisionWrite::Expired,
            })
        })
        .await
    }
}
