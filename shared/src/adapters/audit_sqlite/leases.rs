//! Leases and idempotency records in SQLite: one conditional statement each, inside an
//! `IMMEDIATE` transaction (the write lock is taken first, so the row read back to explain
//! a refusal is the row that refused).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{from_json, to_json, unavailable};
use crate::domain::{IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, Lease, LeaseRequest, expiry_after};
use crate::error::AuditError;

/// Take the lease: insert, or overwrite a row that is expired, has the same holder, or is
/// being broken. Refused: [`AuditError::LeaseHeld`] naming the stored holder.
pub(super) fn acquire(conn: &mut Connection, request: &LeaseRequest, now: DateTime<Utc>) -> Result<Lease, AuditError> {
    let what = "taking a lease";
    let lease = Lease {
        target: request.target.clone(),
        operation_id: request.operation_id.clone(),
        holder: request.holder.clone(),
        acquired_at: now,
        expires_at: expiry_after(now, request.ttl),
    };
    let data = to_json("lease", &lease)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| unavailable(what, e))?;
    let written = tx
        .execute(
            "INSERT INTO leases (target, holder, expires_ms, data) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (target) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms, \
             data = excluded.data \
             WHERE leases.expires_ms < ?5 OR leases.holder = excluded.holder OR ?6",
            params![
                lease.target,
                lease.holder,
                lease.expires_at.timestamp_millis(),
                data,
                now.timestamp_millis(),
                request.break_existing
            ],
        )
        .map_err(|e| unavailable(what, e))?;
    if written == 1 {
        tx.commit().map_err(|e| unavailable(what, e))?;
        return Ok(lease);
    }
    let held = read_lease(&tx, &request.target)?.ok_or_else(|| AuditError::Unavailable {
        message: format!("{what}: the lease on {} refused the write but is not there", request.target),
    })?;
    Err(AuditError::LeaseHeld { target: held.target, operation_id: held.operation_id, expires_at: held.expires_at })
}

/// Extend the lease if the stored holder is still `lease.holder`, else [`AuditError::LeaseLost`].
pub(super) fn renew(
    conn: &mut Connection,
    lease: &Lease,
    ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Lease, AuditError> {
    let renewed = Lease { expires_at: expiry_after(now, ttl), ..lease.clone() };
    let written = conn
        .execute(
            "UPDATE leases SET expires_ms = ?1, data = ?2 WHERE target = ?3 AND holder = ?4",
            params![renewed.expires_at.timestamp_millis(), to_json("lease", &renewed)?, lease.target, lease.holder],
        )
        .map_err(|e| unavailable("renewing a lease", e))?;
    if written == 1 { Ok(renewed) } else { Err(AuditError::LeaseLost { target: lease.target.clone() }) }
}

/// Delete the lease if the stored holder is still `lease.holder`; otherwise nothing to do.
pub(super) fn release(conn: &mut Connection, lease: &Lease) -> Result<(), AuditError> {
    conn.execute("DELETE FROM leases WHERE target = ?1 AND holder = ?2", params![lease.target, lease.holder])
        .map_err(|e| unavailable("releasing a lease", e))?;
    Ok(())
}

pub(super) fn read_lease(conn: &Connection, target: &str) -> Result<Option<Lease>, AuditError> {
    let data: Option<String> = conn
        .query_row("SELECT data FROM leases WHERE target = ?1", [target], |row| row.get(0))
        .optional()
        .map_err(|e| unavailable("reading a lease", e))?;
    data.map(|data| from_json("lease", target, &data)).transpose()
}

/// Write an in-progress claim where the key is free, expired, or a stale claim; otherwise
/// read back the record that holds the key.
pub(super) fn claim(
    conn: &mut Connection,
    record: &IdempotencyRecord,
    now: DateTime<Utc>,
) -> Result<IdempotencyClaim, AuditError> {
    let what = "claiming an idempotency key";
    let claim = IdempotencyRecord { status: IdempotencyStatus::InProgress, ..record.clone() };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| unavailable(what, e))?;
    let written = tx
        .execute(
            "INSERT INTO idempotency (key, payload_hash, status, expires_ms, in_progress_until_ms, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (key) DO UPDATE SET payload_hash = excluded.payload_hash, status = excluded.status, \
             expires_ms = excluded.expires_ms, in_progress_until_ms = excluded.in_progress_until_ms, \
             data = excluded.data \
             WHERE idempotency.expires_ms < ?7 \
             OR (idempotency.status = ?8 AND idempotency.in_progress_until_ms < ?7)",
            params![
                claim.key,
                claim.payload_hash,
                claim.status.as_str(),
                claim.expires_at.timestamp_millis(),
                claim.in_progress_until.map(|at| at.timestamp_millis()),
                to_json("idempotency record", &claim)?,
                now.timestamp_millis(),
                IdempotencyStatus::InProgress.as_str(),
            ],
        )
        .map_err(|e| unavailable(what, e))?;
    if written == 1 {
        tx.commit().map_err(|e| unavailable(what, e))?;
        return Ok(IdempotencyClaim::Claimed);
    }
    let existing = read_idempotency(&tx, &record.key)?.ok_or_else(|| AuditError::Unavailable {
        message: format!("{what}: the key {} refused the write but is not there", record.key),
    })?;
    Ok(IdempotencyClaim::Existing(existing))
}

/// Store the record as completed, if it is still an in-progress claim of the same payload.
pub(super) fn complete(conn: &mut Connection, record: &IdempotencyRecord) -> Result<(), AuditError> {
    let completed = IdempotencyRecord { status: IdempotencyStatus::Completed, ..record.clone() };
    let written = conn
        .execute(
            "UPDATE idempotency SET status = ?1, expires_ms = ?2, in_progress_until_ms = ?3, data = ?4 \
             WHERE key = ?5 AND status = ?6 AND payload_hash = ?7",
            params![
                completed.status.as_str(),
                completed.expires_at.timestamp_millis(),
                completed.in_progress_until.map(|at| at.timestamp_millis()),
                to_json("idempotency record", &completed)?,
                completed.key,
                IdempotencyStatus::InProgress.as_str(),
                completed.payload_hash,
            ],
        )
        .map_err(|e| unavailable("completing an idempotency key", e))?;
    if written == 1 { Ok(()) } else { Err(AuditError::IdempotencyKeyLost { key: record.key.clone() }) }
}

/// Delete the key's in-progress claim; a completed record (or none) stays.
pub(super) fn release_claim(conn: &mut Connection, key: &str) -> Result<(), AuditError> {
    conn.execute(
        "DELETE FROM idempotency WHERE key = ?1 AND status = ?2",
        params![key, IdempotencyStatus::InProgress.as_str()],
    )
    .map_err(|e| unavailable("releasing an idempotency key", e))?;
    Ok(())
}

pub(super) fn read_idempotency(conn: &Connection, key: &str) -> Result<Option<IdempotencyRecord>, AuditError> {
    let data: Option<String> = conn
        .query_row("SELECT data FROM idempotency WHERE key = ?1", [key], |row| row.get(0))
        .optional()
        .map_err(|e| unavailable("reading an idempotency key", e))?;
    data.map(|data| from_json("idempotency record", key, &data)).transpose()
}
