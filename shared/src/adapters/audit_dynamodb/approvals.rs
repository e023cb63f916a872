//! The DynamoDB store's approvals ([`ApprovalStore`]), in the audit table:
//!
//! | Item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | Approval request | `APPROVAL#<approval_id>` | `APPROVAL` | `data`, `approval_until` (N, ms), `expires_at` (TTL) |
//! | Its decision | `APPROVAL#<approval_id>` | `DECISION` | `data` (the decision), `expires_at` (TTL) |
//! | Approval token | `APPROVALTOKEN#<sha256 of the token>` | `TOKEN` | `data`, `expires_at` (TTL) |
//!
//! The request and its tokens are written together by one `TransactWriteItems` of
//! conditional puts. The decision is one `PutItem` with `attribute_not_exists(pk)`, so of
//! two concurrent clicks exactly one writes it (the same put-if-absent the leases race on);
//! whether the click came before the expiry is its own `decided_at` against the stored
//! expiry, checked just before the write. The items outlive the expiry by [`KEPT_AFTER_EXPIRY`] (so a late
//! click reads "expired", not "unknown"), then the table's TTL removes them.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::items::{attr, parse_data, record_item, to_json};
use super::writes::NewItem;
use super::{DynamoDbAuditStore, keys};
use crate::domain::{ApprovalDecision, ApprovalRecord, ApprovalTokenRecord, ApprovalVerdict, DecisionWrite};
use crate::error::AuditError;
use crate::ports::{ApprovalStore, async_trait};

/// How long approval items stay after their expiry before TTL may delete them.
pub const KEPT_AFTER_EXPIRY: chrono::Duration = chrono::Duration::days(30);
const APPROVAL_UNTIL: &str = "approval_until";

fn ttl(record_expiry: chrono::DateTime<chrono::Utc>) -> i64 {
    record_expiry.timestamp().saturating_add(KEPT_AFTER_EXPIRY.num_seconds())
}

impl DynamoDbAuditStore {
    async fn decision(&self, approval_id: &str) -> Result<Option<ApprovalDecision>, AuditError> {
        let item = self
            .get_consistent("GetItem (approval decision)", keys::approval_pk(approval_id), keys::APPROVAL_DECISION_SK)
            .await?;
        item.map(|item| parse_data(&item, "approval decision")).transpose()
    }
}

#[async_trait]
impl ApprovalStore for DynamoDbAuditStore {
    async fn create_approval(&self, record: &ApprovalRecord, tokens: &[ApprovalTokenRecord]) -> Result<(), AuditError> {
        let mut record = record.clone();
        record.decision = None;
        let mut item = record_item(
            keys::approval_pk(&record.approval_id),
            keys::APPROVAL_SK.to_string(),
            to_json("approval", &record)?,
            Some(ttl(record.expires_at)),
        );
        item.insert(APPROVAL_UNTIL.to_string(), AttributeValue::N(record.expires_at.timestamp_millis().to_string()));
        let mut items = vec![NewItem { name: format!("approval {}", record.approval_id), item }];
        for token in tokens {
            let item = record_item(
                keys::approval_token_pk(&token.token_hash),
                keys::APPROVAL_TOKEN_SK.to_string(),
                to_json("approval token", token)?,
                Some(ttl(token.expires_at)),
            );
            items.push(NewItem { name: format!("a token of approval {}", record.approval_id), item });
        }
        self.put_all_new("TransactWriteItems (approval)", items).await
    }

    async fn approval_token(&self, token_hash: &str) -> Result<Option<ApprovalTokenRecord>, AuditError> {
        let item = self
            .get_consistent("GetItem (approval token)", keys::approval_token_pk(token_hash), keys::APPROVAL_TOKEN_SK)
            .await?;
        item.map(|item| parse_data(&item, "approval token")).transpose()
    }

    async fn approval(&self, approval_id: &str) -> Result<Option<ApprovalRecord>, AuditError> {
        let Some(item) =
            self.get_consistent("GetItem (approval)", keys::approval_pk(approval_id), keys::APPROVAL_SK).await?
        else {
            return Ok(None);
        };
        let mut record: ApprovalRecord = parse_data(&item, "approval")?;
        record.decision = self.decision(approval_id).await?;
        Ok(Some(record))
    }

    async fn record_decision(
        &self,
        approval_id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DecisionWrite, AuditError> {
        let Some(record) = self.approval(approval_id).await? else { return Ok(DecisionWrite::NotFound) };
        if let Some(existing) = record.decision {
            return Ok(DecisionWrite::AlreadyDecided(existing));
        }
        // The click's own time decides whether it came in time (checked here, before the
        // write); the write itself is put-if-absent, so only one decision ever lands.
        if decision.verdict != ApprovalVerdict::Expired && decision.decided_at >= record.expires_at {
            return Ok(DecisionWrite::Expired);
        }
        let item = record_item(
            keys::approval_pk(approval_id),
            keys::APPROVAL_DECISION_SK.to_string(),
            to_json("approval decision", decision)?,
            Some(ttl(record.expires_at)),
        );
        self.count_write();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(DecisionWrite::Recorded),
            Err(e) => e,
        };
        match e.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(refusal)) => {
                let existing = match refusal.item() {
                    Some(item) => parse_data(item, "approval decision")?,
                    None => self.decision(approval_id).await?.ok_or_else(|| AuditError::Unavailable {
                        message: format!("approval {approval_id}: a decision was refused but none is stored"),
                    })?,
                };
                Ok(DecisionWrite::AlreadyDecided(existing))
            }
            _ => Err(self.sdk_error("PutItem (approval decision)", e)),
        }
    }
}
