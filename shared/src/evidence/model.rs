//! What the evidence report shows, gathered from the audit trail alone: the operation (a
//! client offboarding's parent, or one workflow run), its events, and every child
//! operation linked to it by `parent_operation_id`, with their changes reduced to one line
//! per item (docs/evidence.md#what-it-holds).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::{
    ItemChange, ItemOutcome, OperationDetail, OperationEvent, OperationEventKind, OperationRecord, Workflow,
};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::AuditStore;

/// Everything the document shows.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub operation: OperationRecord,
    pub events: Vec<OperationEvent>,
    /// The runs: a chain's child operations (dry runs and real runs), oldest first; for a
    /// single workflow run, that run itself.
    pub runs: Vec<RunEvidence>,
    pub outcome: Outcome,
    pub rendered_at: DateTime<Utc>,
}

/// How the operation ended, as its last `completed`/`failed` event says (or, while the
/// chain finalizes, as its report says before that event is written).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `completed`, `failed`, `planned`, `approval_required`, `refused`, `started`, …
    pub status: String,
    pub ticket_id: Option<String>,
    /// (code, message)
    pub errors: Vec<(String, String)>,
    pub not_run: Vec<String>,
    /// (step, why)
    pub skipped: Vec<(String, String)>,
    /// The consent the runs were bound to (`ChainApproval`: `approved_by`, `approved_at`,
    /// `plan_hash`), as the end event records it.
    pub consent: Option<Value>,
}

/// One run (operation) with its items reduced to their latest record.
#[derive(Debug, Clone)]
pub struct RunEvidence {
    pub detail: OperationDetail,
    /// One line per item the run recorded, by item kind (the action, for a leaver).
    pub items: BTreeMap<String, Vec<ItemLine>>,
    /// Items snapshotted before the run with no change record: left alone, and why.
    pub untouched: Vec<ItemLine>,
}

/// An item's latest record: what was done to it, before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemLine {
    pub kind: String,
    pub id: String,
    pub name: String,
    /// `changed`, `skipped`, `failed`, `uncertain`, `intended` (in flight when the run
    /// stopped), or a snapshot's planned action for an untouched item.
    pub outcome: String,
    pub before: Value,
    pub after: Option<Value>,
    /// `code: message` of a failure, or the reason of a skip.
    pub why: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

impl Evidence {
    /// Read operation `operation_id` and, for a client offboarding, every child of it.
    pub async fn gather(audit: &dyn AuditStore, operation_id: &str) -> Result<Self, OfframpError> {
        let parent = audit.operation(operation_id).await?.ok_or_else(|| {
            OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {operation_id} in the audit trail"))
        })?;
        let mut runs = Vec::new();
        if parent.operation.workflow == Workflow::ClientOffboarding {
            for child in audit.child_operations(operation_id).await? {
                let detail = audit.operation(&child.operation_id).await?.ok_or_else(|| {
                    OfframpError::new(ErrorCode::AuditStoreError, format!("child {} vanished", child.operation_id))
                })?;
                runs.push(RunEvidence::from(detail));
            }
            runs.sort_by_key(|a| a.detail.operation.created_at);
        } else {
            runs.push(RunEvidence::from(parent.clone()));
        }
        let outcome = Outcome::from_events(&parent.events);
        Ok(Self { operation: parent.operation, events: parent.events, runs, outcome, rendered_at: Utc::now() })
    }

    /// The parent's last `planned` event: the chain's plan hash and each run's dry run.
    pub fn chain_plan(&self) -> Option<&Value> {
        self.events.iter().rev().find(|e| e.kind == OperationEventKind::Planned).map(|e| &e.detail)
    }

    /// The real runs (not dry runs).
    pub fn applied(&self) -> impl Iterator<Item = &RunEvidence> {
        self.runs.iter().filter(|r| !r.detail.operation.dry_run)
    }

    /// The IT Glue exports kept: each run's `itglue_export` item's archive record.
    pub fn exports(&self) -> Vec<(&RunEvidence, &Value)> {
        let mut kept = Vec::new();
        for run in self.applied() {
            for line in run.items.get("itglue_export").into_iter().flatten() {
                if let Some(archive) = line.after.as_ref().and_then(|a| a.get("archive")) {
                    kept.push((run, archive));
                }
            }
        }
        kept
    }
}

impl Outcome {
    fn from_events(events: &[OperationEvent]) -> Self {
        let last = events.iter().max_by(|a, b| a.event_id.cmp(&b.event_id));
        let mut outcome =
            Outcome { status: last.map(|e| e.kind.as_str().to_string()).unwrap_or_default(), ..Default::default() };
        let ended = [OperationEventKind::Completed, OperationEventKind::Failed, OperationEventKind::Refused];
        let Some(end) = events.iter().rev().find(|e| ended.contains(&e.kind)) else { return outcome };
        let detail = &end.detail;
        outcome.ticket_id = detail.get("ticket_id").and_then(Value::as_str).map(str::to_string);
        outcome.errors = errors_of(detail);
        outcome.not_run = strings(detail.get("not_run"));
        outcome.consent = detail.get("approval").filter(|a| !a.is_null()).cloned();
        outcome.skipped = detail
            .get("skipped")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| (text(s.get("step")), text(s.get("why"))))
            .collect();
        outcome
    }
}

/// `errors` of a report or event detail as (code, message); a lone `code`/`message` too.
pub fn errors_of(detail: &Value) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = detail
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| (text(e.get("code")), text(e.get("message"))))
        .collect();
    if errors.is_empty() && (detail.get("code").is_some() || detail.get("message").is_some()) {
        errors.push((text(detail.get("code")), text(detail.get("message"))));
    }
    errors
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_array).into_iter().flatten().map(|v| text(Some(v))).collect()
}

/// A JSON value as plain text: a string as is, anything else as compact JSON.
pub fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl From<OperationDetail> for RunEvidence {
    fn from(detail: OperationDetail) -> Self {
        // Latest record per item: a write-ahead intent followed by its result is one change.
        let mut latest: BTreeMap<(String, String), &ItemChange> = BTreeMap::new();
        for change in &detail.changes {
            let key = (change.item_type.as_str().to_string(), change.item_id.clone());
            let replaces = latest
                .get(&key)
                .is_none_or(|seen| change.outcome != ItemOutcome::Intended || seen.outcome == ItemOutcome::Intended);
            if replaces {
                latest.insert(key, change);
            }
        }
        let mut items: BTreeMap<String, Vec<ItemLine>> = BTreeMap::new();
        for ((kind, _), change) in &latest {
            items.entry(kind.clone()).or_default().push(line_of(change));
        }
        let untouched = detail
            .snapshots
            .iter()
            .filter(|s| !latest.contains_key(&(s.item_type.as_str().to_string(), s.item_id.clone())))
            .map(|s| ItemLine {
                kind: s.item_type.as_str().to_string(),
                id: s.item_id.clone(),
                name: s.item_name.clone(),
                outcome: "not changed".into(),
                before: s.state.clone(),
                after: None,
                why: Some(format!("planned action: {}", s.planned_action)),
                at: None,
            })
            .collect();
        Self { detail, items, untouched }
    }
}

fn line_of(change: &ItemChange) -> ItemLine {
    let outcome = serde_json::to_value(change.outcome).ok().map(|v| text(Some(&v))).unwrap_or_default();
    let why = match (&change.error_code, &change.error_message) {
        (None, None) => None,
        (code, message) => {
            Some([code.as_deref(), message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": "))
        }
    };
    ItemLine {
        kind: change.item_type.as_str().to_string(),
        id: change.item_id.clone(),
        name: change.item_name.clone(),
        outcome,
        before: change.before.clone(),
        after: change.after.clone(),
        why,
        at: Some(change.at),
    }
}

impl RunEvidence {
    /// How many items ended in each outcome (`changed`, `failed`, …).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for line in self.items.values().flatten() {
            *counts.entry(line.outcome.clone()).or_insert(0) += 1;
        }
        if !self.untouched.is_empty() {
            counts.insert("not changed".into(), self.untouched.len());
        }
        counts
    }

    /// The plan hash the run recorded (a dry run's: what the approval names).
    pub fn plan_hash(&self) -> Option<&str> {
        let op = &self.detail.operation;
        op.plan_hash
            .as_deref()
            .or_else(|| self.detail.events.iter().rev().find_map(|e| e.detail.get("plan_hash")?.as_str()))
    }

    /// The run's last lifecycle event (`completed`, `failed`, `planned`, …).
    pub fn status(&self) -> String {
        self.detail.last_event().map(|e| e.kind.as_str().to_string()).unwrap_or_else(|| "recorded".into())
    }

    /// Who the run was for, for a leaver's run (its request's `user`).
    pub fn leaver(&self) -> Option<String> {
        let input = &self.detail.operation.input;
        input.get("user").or_else(|| input.pointer("/request/user")).and_then(Value::as_str).map(str::to_string)
    }

    /// The system the run changed, as the document groups it.
    pub fn system(&self) -> &'static str {
        match self.detail.operation.workflow {
            Workflow::OffboardUser => "Users",
            Workflow::DeactivateContacts => "Contacts",
            Workflow::DeactivateConfigs => "Configurations",
            Workflow::DeleteItglueOrg => "IT Glue",
            Workflow::Rollback => "Rollback",
            Workflow::ClientOffboarding => "Client offboarding",
        }
    }

    /// Items that failed, were skipped or are uncertain, and the run's own refusal or
    /// failure events: what the reader must know did not happen.
    pub fn problems(&self) -> Vec<&ItemLine> {
        self.items.values().flatten().filter(|l| l.outcome != "changed").collect()
    }
}

/// The fields that differ between `before` and `after` (top-level keys of two objects),
/// as (field, before, after); a value that is not an object is compared whole.
pub fn differences(before: &Value, after: Option<&Value>) -> Vec<(String, String, String)> {
    let Some(after) = after else { return Vec::new() };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| b.get(*k) != a.get(*k))
                .map(|k| (k.clone(), text(b.get(k)), text(a.get(k))))
                .collect()
        }
        (Value::Null, Value::Object(a)) => a.iter().map(|(k, v)| (k.clone(), String::new(), text(Some(v)))).collect(),
        (b, a) if b != a => vec![(String::new(), text(Some(b)), text(Some(a)))],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_fields_that_changed_are_listed() {
        let before = json!({"id": 1, "status": {"name": "Active"}, "name": "NAS"});
        let after = json!({"id": 1, "status": {"name": "Inactive"}, "name": "NAS"});
        let diff = differences(&before, Some(&after));
        assert_eq!(diff, vec![("status".into(), "{\"name\":\"Active\"}".into(), "{\"name\":\"Inactive\"}".into())]);
        assert!(differences(&before, None).is_empty());
        assert_eq!(differences(&json!(true), Some(&json!(false))).len(), 1);
    }
}
