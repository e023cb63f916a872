//! The webhook delivery log ([`DeliveryLog`]): over the audit store's idempotency records
//! (SQLite on a laptop, DynamoDB when deployed), and in memory for tests and one-process use.
//!
//! Why the idempotency records: they already are a conditional write with an expiry in both
//! stores (the DynamoDB item `IDEMPOTENCY#<key>` carries the TTL attribute `expires_at`, and
//! the functions' IAM policies already allow writing and deleting that prefix), and a
//! delivery is exactly a key claimed once. A delivery is stored under `webhook#<delivery
//! key>`, which no workflow's keys (`<workflow>#…`) can collide with: first as an in-progress
//! claim for the webhook's short handling lease (`in_progress_until = expires_at`), whose
//! `payload_hash` is the claiming call's owner token; then, once the delivery was handed on,
//! [`DeliveryLog::keep`] completes that very record in place for the long delivery TTL, on the
//! condition that it still holds the owner token. The key is never free in between (no
//! forget-then-claim), so a duplicate cannot slip through to the starter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, expiry_after};
use crate::error::AuditError;
use crate::ports::{AuditStore, DeliveryClaim, DeliveryLog};

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

/// A fresh owner token: only the call that claimed a delivery holds it.
fn owner_token() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[async_trait]
impl DeliveryLog for AuditDeliveryLog {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Option<DeliveryClaim>, AuditError> {
        let now = crate::domain::now();
        let expires_at = expiry(now, ttl);
        let owner = owner_token();
        let record = IdempotencyRecord {
            key: format!("{KEY_PREFIX}{key}"),
            // The owner token in the field the store's conditional completion compares.
            payload_hash: owner.clone(),
            status: IdempotencyStatus::InProgress,
            operation_id: None,
            report: None,
            created_at: now,
            expires_at,
            in_progress_until: Some(expires_at),
        };
        match self.store.claim_idempotency_key(&record).await? {
            IdempotencyClaim::Claimed => Ok(Some(DeliveryClaim { key: key.to_string(), owner })),
            IdempotencyClaim::Existing(_) => Ok(None),
        }
    }

    /// The store's completion of an idempotency key is the conditional write needed: it
    /// replaces the record only while it is an in-progress claim with this owner token
    /// (SQLite `UPDATE … WHERE payload_hash`, DynamoDB `PutItem` with a condition), and the
    /// completed record holds the key until its new `expires_at` (the TTL attribute).
    async fn keep(&self, claim: &DeliveryClaim, ttl: Duration) -> Result<(), AuditError> {
        let now = crate::domain::now();
        let record = IdempotencyRecord {
            key: format!("{KEY_PREFIX}{}", claim.key),
            payload_hash: claim.owner.clone(),
            status: IdempotencyStatus::Completed,
            operation_id: None,
            report: None,
            created_at: now,
            expires_at: expiry(now, ttl),
            in_progress_until: None,
        };
        self.store.complete_idempotency_key(&record).await
    }

    async fn forget(&self, key: &str) -> Result<(), AuditError> {
        self.store.release_idempotency_key(&format!("{KEY_PREFIX}{key}")).await
    }
}

/// A remembered delivery: when it expires, and the owner token of its claim.
type Remembered = (DateTime<Utc>, String);

/// Deliveries remembered by this process only: tests, and a single-process receiver.
#[derive(Clone, Default)]
pub struct MemoryDeliveryLog {
    seen: Arc<Mutex<HashMap<String, Remembered>>>,
}

impl MemoryDeliveryLog {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeliveryLog for MemoryDeliveryLog {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Option<DeliveryClaim>, AuditError> {
        let now = crate::domain::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Expired records go, so the map holds only deliveries still within their time.
        seen.retain(|_, (expires_at, _)| *expires_at >= now);
        if seen.contains_key(key) {
            return Ok(None);
        }
        let owner = owner_token();
        seen.insert(key.to_string(), (expiry(now, ttl), owner.clone()));
        Ok(Some(DeliveryClaim { key: key.to_string(), owner }))
    }

    async fn keep(&self, claim: &DeliveryClaim, ttl: Duration) -> Result<(), AuditError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(&claim.key) {
            Some((expires_at, owner)) if *owner == claim.owner => {
                *expires_at = expiry(crate::domain::now(), ttl);
                Ok(())
            }
            _ => Err(AuditError::IdempotencyKeyLost { key: claim.key.clone() }),
        }
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

    #[tokio::test]
    async fn memory_log_keeps_a_claim_only_for_its_owner() {
        let log = MemoryDeliveryLog::new();
        let day = Duration::from_secs(86_400);
        let claim = log.claim("k", Duration::ZERO).await.unwrap().expect("first");
        let forged = DeliveryClaim { owner: "someone else".into(), ..claim.clone() };
        assert!(matches!(log.keep(&forged, day).await, Err(AuditError::IdempotencyKeyLost { .. })));
        log.keep(&claim, day).await.expect("the owner keeps it");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(log.claim("k", day).await.unwrap(), None, "kept past its short claim");
    }
}
