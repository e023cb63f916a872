//! Leases and idempotency records in the audit table. Unlike the audit items they change
//! and disappear, always through one conditional request each (`PutItem`, `UpdateItem`,
//! `DeleteItem` with a `ConditionExpression`), so two Lambdas racing for one lease or one
//! idempotency key cannot both win.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use super::items::{Item, attr, parse_data, record_item, to_json};
use super::{DynamoDbAuditStore, TTL_ATTRIBUTE, keys};
use crate::domain::{IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, Lease, LeaseRequest, expiry_after};
use crate::error::AuditError;

/// How long an expired lease item stays readable (for `current_lease`, i.e. "who ran
/// last") before the table's TTL may delete it.
const EXPIRED_LEASE_KEPT: chrono::Duration = chrono::Duration::days(7);
/// Attempts at taking a lease or a key whose stored item keeps changing under us (released
/// or expired between our conditional write and the read that explains its refusal).
const MAX_CLAIM_ATTEMPTS: u32 = 3;

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// Epoch seconds at or after `at`, for the TTL attribute (never deletes early).
fn ttl_seconds(at: DateTime<Utc>) -> i64 {
    at.timestamp().saturating_add(i64::from(at.timestamp_subsec_nanos() > 0))
}

fn lease_item(lease: &Lease) -> Result<Item, AuditError> {
    let ttl = ttl_seconds(lease.expires_at).saturating_add(EXPIRED_LEASE_KEPT.num_seconds());
    let mut item =
        record_item(keys::lease_pk(&lease.target), keys::LEASE_SK.to_string(), to_json("lease", lease)?, Some(ttl));
    item.insert(attr::HOLDER.to_string(), s(&lease.holder));
    item.insert(attr::LEASE_UNTIL.to_string(), n(lease.expires_at.timestamp_millis()));
    Ok(item)
}

fn idempotency_item(record: &IdempotencyRecord) -> Result<Item, AuditError> {
    let mut item = record_item(
        keys::idempotency_pk(&record.key),
        keys::IDEMPOTENCY_SK.to_string(),
        to_json("idempotency record", record)?,
        Some(ttl_seconds(record.expires_at)),
    );
    item.insert(attr::STATUS.to_string(), s(record.status.as_str()));
    item.insert(attr::PAYLOAD_HASH.to_string(), s(&record.payload_hash));
    item.insert(attr::RECORD_UNTIL.to_string(), n(record.expires_at.timestamp_millis()));
    if let Some(until) = record.in_progress_until {
        item.insert(attr::IN_PROGRESS_UNTIL.to_string(), n(until.timestamp_millis()));
    }
    Ok(item)
}

/// Whether a conditional `PutItem` was refused, and the item that refused it when DynamoDB
/// returned it (`ReturnValuesOnConditionCheckFailure = ALL_OLD`).
fn refused_put<R>(e: &SdkError<PutItemError, R>) -> Option<Option<Item>> {
    match e.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(refusal)) => Some(refusal.item().cloned()),
        _ => None,
    }
}

impl DynamoDbAuditStore {
    pub(super) async fn acquire(&self, request: &LeaseRequest) -> Result<Lease, AuditError> {
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let now = crate::domain::now();
            let lease = Lease {
                target: request.target.clone(),
                operation_id: request.operation_id.clone(),
                holder: request.holder.clone(),
                acquired_at: now,
                expires_at: expiry_after(now, request.ttl),
            };
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(lease_item(&lease)?))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            if !request.break_existing {
                put = put
                    .condition_expression("attribute_not_exists(#pk) OR #until < :now OR #holder = :holder")
                    .expression_attribute_names("#pk", attr::PK)
                    .expression_attribute_names("#until", attr::LEASE_UNTIL)
                    .expression_attribute_names("#holder", attr::HOLDER)
                    .expression_attribute_values(":now", n(now.timestamp_millis()))
                    .expression_attribute_values(":holder", s(&request.holder));
            }
            self.count_write();
            let e = match put.send().await {
                Ok(_) => return Ok(lease),
                Err(e) => e,
            };
            let Some(returned) = refused_put(&e) else {
                return Err(self.sdk_error("PutItem (lease)", e));
            };
            let held = match returned {
                Some(item) => Some(parse_data::<Lease>(&item, "lease")?),
                None => self.lease(&request.target).await?,
            };
            match held {
                Some(held) if !held.is_expired_at(now) && held.holder != request.holder => {
                    return Err(AuditError::LeaseHeld {
                        target: held.target,
                        operation_id: held.operation_id,
                        expires_at: held.expires_at,
                    });
                }
                // Released or expired since our write was refused: try again.
                _ => continue,
            }
        }
        Err(AuditError::Unavailable {
            message: format!("the lease on {} kept changing while being taken; try again", request.target),
        })
    }

    pub(super) async fn renew(&self, lease: &Lease, ttl: chrono::Duration) -> Result<Lease, AuditError> {
        let renewed = Lease { expires_at: expiry_after(crate::domain::now(), ttl), ..lease.clone() };
        let item = lease_item(&renewed)?;
        let attribute = |name: &str| item.get(name).cloned().unwrap_or(AttributeValue::Null(true));
        self.count_write();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, s(&keys::lease_pk(&lease.target)))
            .key(attr::SK, s(keys::LEASE_SK))
            .update_expression("SET #data = :data, #until = :until, #ttl = :ttl")
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#data", attr::DATA)
            .expression_attribute_names("#until", attr::LEASE_UNTIL)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#holder", attr::HOLDER)
            .expression_attribute_values(":data", attribute(attr::DATA))
            .expression_attribute_values(":until", attribute(attr::LEASE_UNTIL))
            .expression_attribute_values(":ttl", attribute(TTL_ATTRIBUTE))
            .expression_attribute_values(":holder", s(&lease.holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(renewed),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(AuditError::LeaseLost { target: lease.target.clone() })
            }
            Err(e) => Err(self.sdk_error("UpdateItem (lease)", e)),
        }
    }

    pub(super) async fn release(&self, lease: &Lease) -> Result<(), AuditError> {
        self.count_write();
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::PK, s(&keys::lease_pk(&lease.target)))
            .key(attr::SK, s(keys::LEASE_SK))
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", attr::HOLDER)
            .expression_attribute_values(":holder", s(&lease.holder))
            .send()
            .await;
        match result {
            // Refused: gone already, or another run's now. Either way nothing of ours to release.
            Err(e) if !e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(self.sdk_error("DeleteItem (lease)", e))
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn lease(&self, target: &str) -> Result<Option<Lease>, AuditError> {
        let item = self.get_consistent("GetItem (lease)", keys::lease_pk(target), keys::LEASE_SK).await?;
        item.map(|item| parse_data(&item, "lease")).transpose()
    }

    pub(super) async fn claim(&self, record: &IdempotencyRecord) -> Result<IdempotencyClaim, AuditError> {
        let claim = IdempotencyRecord { status: IdempotencyStatus::InProgress, ..record.clone() };
        let item = idempotency_item(&claim)?;
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let now = crate::domain::now();
            self.count_write();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(
                    "attribute_not_exists(#pk) OR #until < :now OR (#status = :in_progress AND #ipu < :now)",
                )
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#until", attr::RECORD_UNTIL)
                .expression_attribute_names("#status", attr::STATUS)
                .expression_attribute_names("#ipu", attr::IN_PROGRESS_UNTIL)
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":in_progress", s(IdempotencyStatus::InProgress.as_str()))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(IdempotencyClaim::Claimed),
                Err(e) => e,
            };
            let Some(returned) = refused_put(&e) else {
                return Err(self.sdk_error("PutItem (idempotency key)", e));
            };
            let existing = match returned {
                Some(item) => Some(parse_data::<IdempotencyRecord>(&item, "idempotency record")?),
                None => self.stored_idempotency_record(&record.key).await?,
            };
            match existing {
                Some(existing) if !existing.is_claimable_at(now) => return Ok(IdempotencyClaim::Existing(existing)),
                // Released or expired since our write was refused: try again.
                _ => continue,
            }
        }
        Err(AuditError::Unavailable {
            message: format!("the idempotency key {} kept changing while being claimed; try again", record.key),
        })
    }

    pub(super) async fn complete(&self, record: &IdempotencyRecord) -> Result<(), AuditError> {
        let completed = IdempotencyRecord { status: IdempotencyStatus::Completed, ..record.clone() };
        self.count_write();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(&completed)?))
            .condition_expression("#status = :in_progress AND #hash = :hash")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#hash", attr::PAYLOAD_HASH)
            .expression_attribute_values(":in_progress", s(IdempotencyStatus::InProgress.as_str()))
            .expression_attribute_values(":hash", s(&record.payload_hash))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if refused_put(&e).is_some() => Err(AuditError::IdempotencyKeyLost { key: record.key.clone() }),
            Err(e) => Err(self.sdk_error("PutItem (idempotency key)", e)),
        }
    }

    pub(super) async fn release_claim(&self, key: &str) -> Result<(), AuditError> {
        self.count_write();
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::PK, s(&keys::idempotency_pk(key)))
            .key(attr::SK, s(keys::IDEMPOTENCY_SK))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_values(":in_progress", s(IdempotencyStatus::InProgress.as_str()))
            .send()
            .await;
        match result {
            // Refused: completed (kept until it expires) or gone already.
            Err(e) if !e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(self.sdk_error("DeleteItem (idempotency key)", e))
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn stored_idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, AuditError> {
        let item =
            self.get_consistent("GetItem (idempotency key)", keys::idempotency_pk(key), keys::IDEMPOTENCY_SK).await?;
        item.map(|item| parse_data(&item, "idempotency record")).transpose()
    }

    pub(super) async fn get_consistent(&self, what: &str, pk: String, sk: &str) -> Result<Option<Item>, AuditError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(pk))
            .key(attr::SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error(what, e))?;
        Ok(out.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::audit_dynamodb::items::string_attr;

    fn at_millis(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("timestamp")
    }

    #[test]
    fn ttl_seconds_never_round_down() {
        assert_eq!(ttl_seconds(at_millis(10_000)), 10);
        assert_eq!(ttl_seconds(at_millis(10_001)), 11);
    }

    #[test]
    fn lease_items_carry_the_condition_attributes_and_a_late_ttl() {
        let lease = Lease {
            target: "connectwise#250".into(),
            operation_id: "op".into(),
            holder: "run-1".into(),
            acquired_at: at_millis(1_000),
            expires_at: at_millis(61_500),
        };
        let item = lease_item(&lease).expect("item");
        assert_eq!(string_attr(&item, "pk"), "LEASE#connectwise%23250");
        assert_eq!(string_attr(&item, "sk"), "LEASE");
        assert_eq!(string_attr(&item, "holder"), "run-1");
        assert_eq!(item.get("lease_until"), Some(&n(61_500)));
        assert_eq!(item.get(TTL_ATTRIBUTE), Some(&n(62 + 7 * 86_400)));
        assert!(!item.keys().any(|k| k.starts_with("gsi")), "never listed as an operation");
        assert_eq!(parse_data::<Lease>(&item, "lease").expect("data"), lease);
    }

    #[test]
    fn idempotency_items_expire_with_the_record() {
        let record = IdempotencyRecord {
            key: "deactivate-configs#cw#250".into(),
            payload_hash: "abc".into(),
            status: IdempotencyStatus::InProgress,
            operation_id: Some("op".into()),
            report: None,
            created_at: at_millis(0),
            expires_at: at_millis(86_400_000),
            in_progress_until: Some(at_millis(900_000)),
        };
        let item = idempotency_item(&record).expect("item");
        assert_eq!(string_attr(&item, "pk"), "IDEMPOTENCY#deactivate-configs%23cw%23250");
        assert_eq!(string_attr(&item, "status"), "in_progress");
        assert_eq!(string_attr(&item, "payload_hash"), "abc");
        assert_eq!(item.get(TTL_ATTRIBUTE), Some(&n(86_400)));
        assert_eq!(item.get("record_until"), Some(&n(86_400_000)));
        assert_eq!(item.get("in_progress_until"), Some(&n(900_000)));
        let without = idempotency_item(&IdempotencyRecord { in_progress_until: None, ..record }).expect("item");
        assert!(!without.contains_key("in_progress_until"));
    }
}
