//! Creating the table for local runs and tests (deployed stacks get it from the template).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::items::{attr, build_error};
use super::{DynamoDbAuditStore, INDEX_BY_CLIENT, INDEX_BY_TIME, TTL_ATTRIBUTE};
use crate::error::AuditError;

/// How long `create_table_if_missing` waits for a new table to become active.
const TABLE_ACTIVE_POLLS: u32 = 120;
const TABLE_ACTIVE_POLL_INTERVAL: Duration = Duration::from_millis(500);

impl DynamoDbAuditStore {
    /// Create the table (key schema, both GSIs, on-demand billing) if it does not
    /// exist, wait until it is active, and enable TTL on `expires_at` if it is not.
    /// For local runs and tests: deployed stacks get the table from the template.
    /// An existing table is not altered beyond enabling TTL.
    pub async fn create_table_if_missing(&self) -> Result<(), AuditError> {
        let exists = match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => false,
            Err(e) => return Err(self.sdk_error("DescribeTable", e)),
        };
        if !exists {
            match self.create_table_request()?.send().await {
                Ok(_) => {}
                // Someone else created it meanwhile: just as good.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(self.sdk_error("CreateTable", e)),
            }
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    fn create_table_request(
        &self,
    ) -> Result<aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder, AuditError> {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
        };
        let index = |name: &str, hash: &str, range: &str| -> Result<GlobalSecondaryIndex, AuditError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(build_error)
        };
        let mut request = self.client.create_table().table_name(&self.table).billing_mode(BillingMode::PayPerRequest);
        for name in [attr::PK, attr::SK, attr::GSI1PK, attr::GSI1SK, attr::GSI2PK, attr::GSI2SK] {
            request = request.attribute_definitions(string_attr(name)?);
        }
        Ok(request
            .key_schema(key(attr::PK, KeyType::Hash)?)
            .key_schema(key(attr::SK, KeyType::Range)?)
            .global_secondary_indexes(index(INDEX_BY_CLIENT, attr::GSI1PK, attr::GSI1SK)?)
            .global_secondary_indexes(index(INDEX_BY_TIME, attr::GSI2PK, attr::GSI2SK)?))
    }

    async fn wait_until_active(&self) -> Result<(), AuditError> {
        for _ in 0..TABLE_ACTIVE_POLLS {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.sdk_error("DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(TABLE_ACTIVE_POLL_INTERVAL).await;
        }
        Err(AuditError::Unavailable { message: format!("DynamoDB table {} did not become active", self.table) })
    }

    async fn enable_ttl(&self) -> Result<(), AuditError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.sdk_error("DescribeTimeToLive", e))?;
        let status = out.time_to_live_description().and_then(|d| d.time_to_live_status());
        // Enabling twice is an error in DynamoDB, hence the look first.
        if matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| self.sdk_error("UpdateTimeToLive", e))?;
        Ok(())
    }
}
