//! Leases and idempotency records: the two pieces of the audit store that are *not*
//! append-only.
//!
//! - A [`Lease`] says "operation X is changing target T until `expires_at`". Taken with one
//!   conditional write before the first change, renewed while the run goes on, released at
//!   the end; a run that dies simply lets it expire. At most one holder per target.
//! - An [`IdempotencyRecord`] remembers a request by its idempotency key: in progress while
//!   the first run works, then completed with that run's report, so the same request again
//!   gets the same answer instead of a second run (the semantics of Powertools for AWS
//!   Lambda's idempotency utility: INPROGRESS/COMPLETED, payload hash, expiry).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `now + ttl`, or the end of time when that overflows (a lease or record that never expires).
pub fn expiry_after(now: DateTime<Utc>, ttl: chrono::Duration) -> DateTime<Utc> {
    now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A request to take (or re-take) the lease of one target.
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    /// `<system>#<target id>`, e.g. `connectwise#250`, `itglue#9001`.
    pub target: String,
    /// The operation that holds the lease.
    pub operation_id: String,
    /// Unique per run (a UUID), so a run that lost the lease cannot renew or release
    /// the lease of the run that took it over.
    pub holder: String,
    /// `expires_at = now + ttl`.
    pub ttl: chrono::Duration,
    /// Take it even from an unexpired holder (the caller records that it did).
    pub break_existing: bool,
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub target: String,
    pub operation_id: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// Whether the lease has run out at `now` (then anyone may take it).
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at < now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyStatus {
    /// The first run with this key is working (or died: see `in_progress_until`).
    InProgress,
    /// The first run finished; its report is kept in the record.
    Completed,
}

impl IdempotencyStatus {
    /// The serde name, also used as a column / attribute value by the stores.
    pub fn as_str(self) -> &'static str {
        match self {
            IdempotencyStatus::InProgress => "in_progress",
            IdempotencyStatus::Completed => "completed",
        }
    }
}

/// What the store keeps of one idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Already scoped by the caller, e.g. `deactivate-configs#<client key>`.
    pub key: String,
    /// SHA-256 hex of the request: the same key with another payload is another request.
    pub payload_hash: String,
    pub status: IdempotencyStatus,
    #[serde(default)]
    pub operation_id: Option<String>,
    /// The first run's answer, once completed.
    #[serde(default)]
    pub report: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    /// When the whole record expires (the key may then be used afresh).
    pub expires_at: DateTime<Utc>,
    /// An in-progress claim older than this belongs to a run that died: it may be taken over.
    #[serde(default)]
    pub in_progress_until: Option<DateTime<Utc>>,
}

impl IdempotencyRecord {
    /// Whether a new claim may replace this record at `now`: the record has expired, or it
    /// is an in-progress claim whose run has had its time.
    pub fn is_claimable_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at < now
            || (self.status == IdempotencyStatus::InProgress && self.in_progress_until.is_some_and(|until| until < now))
    }
}

/// The answer to [`crate::ports::AuditStore::claim_idempotency_key`].
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// The key is now this caller's (an in-progress record was written).
    Claimed,
    /// Someone holds the key: the stored record, for the caller to compare
    /// `payload_hash` and `status`.
    Existing(IdempotencyRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("timestamp")
    }

    fn record(status: IdempotencyStatus, in_progress_until: Option<i64>) -> IdempotencyRecord {
        IdempotencyRecord {
            key: "k".into(),
            payload_hash: "h".into(),
            status,
            operation_id: None,
            report: None,
            created_at: at(0),
            expires_at: at(100),
            in_progress_until: in_progress_until.map(at),
        }
    }

    #[test]
    fn statuses_serialise_in_snake_case() {
        assert_eq!(serde_json::to_value(IdempotencyStatus::InProgress).expect("json"), "in_progress");
        assert_eq!(serde_json::to_value(IdempotencyStatus::Completed).expect("json"), "completed");
        for status in [IdempotencyStatus::InProgress, IdempotencyStatus::Completed] {
            assert_eq!(serde_json::to_value(status).expect("json"), status.as_str());
        }
    }

    #[test]
    fn claimable_when_expired_or_a_stale_claim() {
        assert!(!record(IdempotencyStatus::Completed, None).is_claimable_at(at(50)));
        assert!(record(IdempotencyStatus::Completed, None).is_claimable_at(at(101)));
        assert!(!record(IdempotencyStatus::InProgress, Some(60)).is_claimable_at(at(50)));
        assert!(record(IdempotencyStatus::InProgress, Some(40)).is_claimable_at(at(50)));
        assert!(!record(IdempotencyStatus::InProgress, None).is_claimable_at(at(50)));
        // A completed record is never taken over before it expires.
        assert!(!record(IdempotencyStatus::Completed, Some(40)).is_claimable_at(at(50)));
    }

    #[test]
    fn an_overflowing_ttl_means_never() {
        assert_eq!(expiry_after(at(0), chrono::Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(expiry_after(at(0), chrono::Duration::seconds(5)), at(5));
    }

    #[test]
    fn a_lease_expires_after_its_time() {
        let lease = Lease {
            target: "connectwise#250".into(),
            operation_id: "op".into(),
            holder: "h".into(),
            acquired_at: at(0),
            expires_at: at(10),
        };
        assert!(!lease.is_expired_at(at(10)));
        assert!(lease.is_expired_at(at(11)));
    }
}
