//! The vendor limits every Lambda of the deployment shares (`ports::SharedLimitStore`), in
//! the audit table: one item per limit (`LIMIT#<key>`, `LIMIT`), read with a strongly
//! consistent `GetItem` and replaced with one `PutItem` conditional on the version read, so
//! two processes claiming at once cannot both win. An item untouched for a day expires (TTL):
//! a limit's state older than its window says nothing.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::items::attr;
use super::{DynamoDbAuditStore, TTL_ATTRIBUTE, keys};
use crate::error::SharedLimitError;
use crate::ports::{SharedLimitState, SharedLimitStore, async_trait};

const VERSION: &str = "version";
const DOCUMENT: &str = "document";
/// How long an untouched limit item is kept before TTL may delete it.
const KEPT_SECONDS: i64 = 24 * 3600;

fn unavailable(error: impl std::fmt::Display) -> SharedLimitError {
    SharedLimitError::Unavailable { message: error.to_string() }
}

#[async_trait]
impl SharedLimitStore for DynamoDbAuditStore {
    async fn read_limit(&self, key: &str) -> Result<Option<SharedLimitState>, SharedLimitError> {
        let item = self
            .get_consistent("GetItem (shared limit)", keys::limit_pk(key), keys::LIMIT_SK)
            .await
            .map_err(unavailable)?;
        let Some(item) = item else { return Ok(None) };
        let version = item.get(VERSION).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok());
        let document = item.get(DOCUMENT).and_then(|v| v.as_s().ok()).cloned();
        match (version, document) {
            (Some(version), Some(document)) => Ok(Some(SharedLimitState { version, document })),
            _ => Err(unavailable(format!("shared limit {key} in table {} is malformed", self.table))),
        }
    }

    async fn swap_limit(&self, key: &str, expected: Option<u64>, document: &str) -> Result<bool, SharedLimitError> {
        let version = expected.unwrap_or(0) + 1;
        let expires = chrono::Utc::now().timestamp() + KEPT_SECONDS;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, AttributeValue::S(keys::limit_pk(key)))
            .item(attr::SK, AttributeValue::S(keys::LIMIT_SK.to_string()))
            .item(VERSION, AttributeValue::N(version.to_string()))
            .item(DOCUMENT, AttributeValue::S(document.to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires.to_string()));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", attr::PK),
            Some(expected) => put
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string())),
        };
        self.write_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(unavailable(format!(
                "DynamoDB PutItem (shared limit) on table {} failed: {}",
                self.table,
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))),
        }
    }
}
