//! The webhook delivery log ([`DeliveryLog`]): over the audit store's idempotency records
//! (SQLite on a laptop, DynamoDB when deployed), and in memory for tests and one-process use.
//!
//! Why the idempotency records: they already are a conditional write with an expiry in both
//! stores (the DynamoDB item `IDEMPOTENCY#<key>` carries the TTL attribute `expires_at`, and
//! the functions' IAM policies already allow writing and deleting that prefix), and a
//! delivery is exactly a key claimed once. A delivery is stored as a claim that is never
//! completed, whose claim lasts as long as the record (`in_progress_until = expires_at`),
//! under `webhook#<delivery key>`, which no workflow's keys (`<workflow>#…`) can collide with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, expiry_after};
use crate::error::AuditError;
use crate::ports::{AuditStore, DeliveryLog};

/// Scope of delivery records among the idempotency records.
pub const KEY_PREFIX: &str = "webhook#";

fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    expiry_after(now, chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX))
}

/// Deliveries recorded as idempotency records of an audit store.
#[derive(Clone)]
pub struct AuditDeliveryLog {
    store: Arc<dyn AuditStore>,
}

impl AuditDeliveryLog {
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl DeliveryLog for AuditDeliveryLog {
    async fn first_delivery(&self, key: &str, ttl: Duration) -> Result<bool, AuditError> {
        let now = crate::domain::now();
        let expires_at = expiry(now, ttl);
        let record = IdempotencyRecord {
            key: format!("{KEY_PREFIX}{key}"),
            payload_hash: crate::webhook::event::sha256_hex(key.as_bytes()),
            status: IdempotencyStatus::InProgress,
            operation_id: None,
            report: None,
            created_at: now,
            expires_at,
            in_progress_until: Some(expires_at),
        };
        match self.store.claim_idempotency_key(&record).await? {
            IdempotencyClaim::Claimed => Ok(true),
            IdempotencyClaim::Existing(_) => Ok(false),
        }
    }

    async fn forget(&self, key: &str) -> Result<(), AuditError> {
        self.store.release_idempotency_key(&format!("{KEY_PREFIX}{key}")).await
    }
}

/// Deliveries remembered by this process only: tests, and a single-process receiver.
#[derive(Clone, Default)]
pub struct MemoryDeliveryLog {
    seen: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
}

impl MemoryDeliveryLog {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeliveryLog for MemoryDeliveryLog {
    async fn first_delivery(&self, key: &str, ttl: Duration) -> Result<bool, AuditError> {
        let now = crate::domain::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Expired records go, so the map holds only deliveries still within their time.
        seen.retain(|_, expires_at| *expires_at >= now);
        if seen.contains_key(key) {
            return Ok(false);
        }
        seen.insert(key.to_string(), expiry(now, ttl));
        Ok(true)
    }

    async fn forget(&self, key: &str) -> Result<(), AuditError> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_log_sees_a_key_once_until_it_expires_or_is_forgotten() {
        let log = MemoryDeliveryLog::new();
        let day = Duration::from_secs(86_400);
        assert!(log.first_delivery("k", day).await.unwrap());
        assert!(!log.first_delivery("k", day).await.unwrap());
        log.forget("k").await.unwrap();
        assert!(log.first_delivery("k", day).await.unwrap());
        assert!(log.first_delivery("short", Duration::ZERO).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(log.first_delivery("short", Duration::ZERO).await.unwrap(), "expired");
    }
}
