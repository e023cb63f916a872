//! The DynamoDB store's approvals ([`ApprovalStore`]), in the audit table:
//!
//! | Item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | Approval request | `APPROVAL#<approval_id>` | `APPROVAL` | `data`, `approval_until` (N, ms), `decision`? (S, JSON), `expires_at` (TTL) |
//! | Approval token | `APPROVALTOKEN#<sha256 of the token>` | `TOKEN` | `data`, `expires_at` (TTL) |
//!
//! Both are written together by one `TransactWriteItems` of conditional puts. The decision
//! is one `UpdateItem` with `attribute_exists(pk) AND attribute_not_exists(decision) AND
//! approval_until > :now` (no time condition for an expiry), so of two concurrent clicks
//! exactly one writes it. The items outlive the expiry by [`KEPT_AFTER_EXPIRY`] (so a late
//! click reads "expired", not "unknown"), then the table's TTL removes them.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::items::{Item, attr, parse_data, record_item, to_json};
use super::writes::NewItem;
use super::{DynamoDbAuditStore, keys};
use crate::domain::{ApprovalDecision, ApprovalRecord, ApprovalTokenRecord, ApprovalVerdict, DecisionWrite};
use crate::error::AuditError;
use crate::ports::{ApprovalStore, async_trait};

/// How long approval items stay after their expiry before TTL may delete them.
pub const KEPT_AFTER_EXPIRY: chrono::Duration = chrono::Duration::days(30);
const APPROVAL_UNTIL: &str = "approval_until";
const DECISION: &str = "decision";

fn ttl(record_expiry: chrono::DateTime<chrono::Utc>) -> i64 {
    record_expiry.timestamp().saturating_add(KEPT_AFTER_EXPIRY.num_seconds())
}

fn record_from(item: &Item) -> Result<ApprovalRecord, AuditError> {
    let mut record: ApprovalRecord = parse_data(item, "approval")?;
    record.decision =
        match item.get(DECISION).and_then(|v| v.as_s().ok()) {
            Some(text) => Some(serde_json::from_str(text).map_err(|e| AuditError::Corrupt {
                message: format!("approval {}: decision: {e}", record.approval_id),
            })?),
            None => None,
        };
    Ok(record)
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
        let item = self.get_consistent("GetItem (approval)", keys::approval_pk(approval_id), keys::APPROVAL_SK).await?;
        item.as_ref().map(record_from).transpose()
    }

    async fn record_decision(
        &self,
        approval_id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DecisionWrite, AuditError> {
        let mut condition = "attribute_exists(#pk) AND attribute_not_exists(#decision)".to_string();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(keys::approval_pk(approval_id)))
            .key(attr::SK, AttributeValue::S(keys::APPROVAL_SK.to_string()))
            .update_expression("SET #decision = :decision")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#decision", DECISION)
            .expression_attribute_values(":decision", AttributeValue::S(to_json("approval decision", decision)?))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if decision.verdict != ApprovalVerdict::Expired {
            condition.push_str(" AND #until > :now");
            update = update.expression_attribute_names("#until", APPROVAL_UNTIL).expression_attribute_values(
                ":now",
                AttributeValue::N(decision.decided_at.timestamp_millis().to_string()),
            );
        }
        self.count_write();
        let e = match update.condition_expression(condition).send().await {
            Ok(_) => return Ok(DecisionWrite::Recorded),
            Err(e) => e,
        };
        let Some(service) = e.as_service_error().filter(|s| s.is_conditional_check_failed_exception()) else {
            return Err(self.sdk_error("UpdateItem (approval decision)", e));
        };
        let old = match service {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(refusal) => {
                refusal.item().cloned()
            }
            _ => None,
        };
        let Some(old) = old else { return Ok(DecisionWrite::NotFound) };
        Ok(match record_from(&old)?.decision {
            Some(existing) => DecisionWrite::AlreadyDecided(existing),
            None => DecisionWrite::Expired,
        })
    }
}
