//! Leases (one run at a time per target) and idempotency records.
//! PLACEHOLDER: replaced by the storage branch's version on merge (same API).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub target: String,
    pub operation_id: String,
    pub holder: String,
    pub ttl: chrono::Duration,
    pub break_existing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub target: String,
    pub operation_id: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyStatus {
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub payload_hash: String,
    pub status: IdempotencyStatus,
    pub operation_id: Option<String>,
    pub report: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub in_progress_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    Claimed,
    Existing(IdempotencyRecord),
}
