//! Reading the audit trail: one operation (strongly consistent), listings (from the GSIs).

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};

use super::items::{Item, attr, parse_data, string_attr};
use super::{DynamoDbAuditStore, INDEX_BY_CLIENT, INDEX_BY_TIME, keys, large_events};
use crate::adapters::audit_records::{effective_limit, sort_snapshots};
use crate::domain::{
    ItemChange, ItemSnapshot, OperationDetail, OperationEvent, OperationFilter, OperationRecord, OperationSummary,
};
use crate::error::AuditError;

/// How many "latest event" queries `list_operations` runs at once.
const LIST_CONCURRENCY: usize = 8;

impl DynamoDbAuditStore {
    /// Run a query page after page (following `LastEvaluatedKey`) until it ends
    /// or `max` items were read.
    pub(super) async fn query_items(
        &self,
        what: &str,
        query: QueryFluentBuilder,
        max: Option<usize>,
    ) -> Result<Vec<Item>, AuditError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error(what, e))?;
            items.extend(out.items.unwrap_or_default());
            if max.is_some_and(|max| items.len() >= max) {
                break;
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        if let Some(max) = max {
            items.truncate(max);
        }
        Ok(items)
    }

    /// A consistent Query of the items of partition `pk` whose sort key starts with
    /// `prefix` (events, child links, setting versions), oldest sort key first.
    pub(super) fn prefix_query(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_string()))
            .consistent_read(true)
    }

    async fn latest_event(&self, operation_id: &str) -> Result<Option<OperationEvent>, AuditError> {
        // Newest first, one item: sort keys order events by their UUIDv7 id.
        let out = self
            .prefix_query(keys::operation_pk(operation_id), keys::EVENT_PREFIX)
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| self.sdk_error("Query (latest event)", e))?;
        let Some(item) = out.items.unwrap_or_default().into_iter().next() else { return Ok(None) };
        let parts =
            if large_events::is_split(&item) { self.read_event_parts(&item).await? } else { Default::default() };
        parse_event(&item, &parts).map(Some)
    }

    pub(super) async fn read_operation(&self, operation_id: &str) -> Result<Option<OperationDetail>, AuditError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::operation_pk(operation_id)))
            .consistent_read(true);
        let items = self.query_items("Query (operation)", query, None).await?;
        let mut operation = None;
        let mut event_items = Vec::new();
        let mut snapshots = Vec::new();
        let mut changes = Vec::new();
        for item in &items {
            let sk = string_attr(item, attr::SK);
            if sk == keys::META_SK {
                operation = Some(parse_data::<OperationRecord>(item, "operation")?);
            } else if sk.starts_with(keys::EVENT_PREFIX) {
                event_items.push(item);
            } else if sk.starts_with(keys::SNAPSHOT_PREFIX) {
                snapshots.push(parse_data::<ItemSnapshot>(item, "snapshot")?);
            } else if sk.starts_with(keys::CHANGE_PREFIX) {
                changes.push(parse_data::<ItemChange>(item, "change")?);
            }
            // Other sort keys belong to a later version of this layout: skip them.
        }
        let Some(operation) = operation else {
            return Ok(None);
        };
        let parts = large_events::part_texts(&items);
        let mut events =
            event_items.into_iter().map(|item| parse_event(item, &parts)).collect::<Result<Vec<_>, _>>()?;
        events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        sort_snapshots(&mut snapshots);
        changes.sort_by(|a, b| a.change_id.cmp(&b.change_id));
        Ok(Some(OperationDetail { operation, events, snapshots, changes }))
    }

    pub(super) async fn list(&self, filter: &OperationFilter) -> Result<Vec<OperationSummary>, AuditError> {
        let limit = effective_limit(filter);
        let page_size = i32::try_from(limit.min(1000)).unwrap_or(1000);
        let query = match (&filter.client_id, &filter.psa) {
            (Some(client_id), Some(psa)) => self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX_BY_CLIENT)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", attr::GSI1PK)
                .expression_attribute_values(":pk", AttributeValue::S(keys::client_pk(psa, client_id)))
                .scan_index_forward(false)
                .limit(page_size),
            (client_id, psa) => {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(INDEX_BY_TIME)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", attr::GSI2PK)
                    .expression_attribute_values(":pk", AttributeValue::S(keys::ALL_OPERATIONS.to_string()))
                    .scan_index_forward(false);
                // A client id without a PSA (or a PSA alone) is not a ByClient key:
                // filter the time index. DynamoDB's Limit counts items before the
                // filter, so no Limit then; `query_items` stops at `limit` matches.
                let mut conditions = Vec::new();
                if let Some(client_id) = client_id {
                    query = query
                        .expression_attribute_names("#client", attr::CLIENT_ID)
                        .expression_attribute_values(":client", AttributeValue::S(client_id.clone()));
                    conditions.push("#client = :client");
                }
                if let Some(psa) = psa {
                    query = query
                        .expression_attribute_names("#psa", attr::PSA)
                        .expression_attribute_values(":psa", AttributeValue::S(psa.clone()));
                    conditions.push("#psa = :psa");
                }
                if conditions.is_empty() {
                    query.limit(page_size)
                } else {
                    query.filter_expression(conditions.join(" AND "))
                }
            }
        };
        let items = self.query_items("Query (list operations)", query, Some(limit)).await?;
        let records =
            items.iter().map(|item| parse_data::<OperationRecord>(item, "operation")).collect::<Result<Vec<_>, _>>()?;
        futures::stream::iter(records)
            .map(|operation| async move {
                let last = self.latest_event(&operation.operation_id).await?;
                Ok::<_, AuditError>(OperationSummary {
                    last_event: last.as_ref().map(|e| e.kind),
                    last_event_at: last.as_ref().map(|e| e.at),
                    operation,
                })
            })
            // `buffered` keeps the newest-first order of the records.
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await
    }

    pub(super) async fn children(&self, parent_operation_id: &str) -> Result<Vec<OperationRecord>, AuditError> {
        // The links in the parent's partition (every child, of any PSA or company).
        let linked = self.prefix_query(keys::operation_pk(parent_operation_id), keys::CHILD_PREFIX);
        let mut children: Vec<OperationRecord> = Vec::new();
        for item in &self.query_items("Query (child links)", linked, None).await? {
            children.push(parse_data(item, "operation")?);
        }
        // Children recorded before links existed: the parent's company's operations.
        for legacy in self.children_of_the_parents_company(parent_operation_id).await? {
            if !children.iter().any(|c| c.operation_id == legacy.operation_id) {
                children.push(legacy);
            }
        }
        // Oldest first: UUIDv7 ids sort by creation time.
        children.sort_by(|a, b| a.operation_id.cmp(&b.operation_id));
        Ok(children)
    }

    async fn children_of_the_parents_company(
        &self,
        parent_operation_id: &str,
    ) -> Result<Vec<OperationRecord>, AuditError> {
        // The parent's header says which company's operations to look through.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(keys::operation_pk(parent_operation_id)))
            .key(attr::SK, AttributeValue::S(keys::META_SK.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem (parent operation)", e))?;
        let Some(item) = out.item else {
            return Ok(Vec::new());
        };
        let parent: OperationRecord = parse_data(&item, "operation")?;
        // No filter expression: the parent id lives inside `data`, so it is compared on the
        // parsed record. One company's operations are few, and read oldest first.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_CLIENT)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::GSI1PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::client_pk(&parent.psa, &parent.client_id)))
            .scan_index_forward(true);
        let items = self.query_items("Query (child operations)", query, None).await?;
        let mut children = Vec::new();
        for item in &items {
            let operation: OperationRecord = parse_data(item, "operation")?;
            if operation.parent_operation_id.as_deref() == Some(parent_operation_id) {
                children.push(operation);
            }
        }
        Ok(children)
    }
}

/// An event item, whole or joined from its parts (docs: `large_events.rs`).
fn parse_event(item: &Item, parts: &std::collections::BTreeMap<String, String>) -> Result<OperationEvent, AuditError> {
    let location = || format!("{} {}", string_attr(item, attr::PK), string_attr(item, attr::SK));
    let json = large_events::event_json(item, parts)
        .ok_or_else(|| AuditError::Corrupt { message: format!("event {}: a part is missing", location()) })?;
    serde_json::from_str(&json).map_err(|e| AuditError::Corrupt { message: format!("event {}: {e}", location()) })
}
