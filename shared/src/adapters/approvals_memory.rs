//! Approvals kept in this process ([`MemoryApprovalStore`]) and decisions handed to this
//! process ([`InProcessCallback`]): the CLI's in-process chain and the tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::{ApprovalDecision, ApprovalRecord, ApprovalTokenRecord, ApprovalVerdict, DecisionWrite};
use crate::error::{AuditError, CallbackError};
use crate::ports::{ApprovalStore, TaskCallback};

#[derive(Default)]
struct Approvals {
    records: HashMap<String, ApprovalRecord>,
    tokens: HashMap<String, ApprovalTokenRecord>,
}

/// Approvals in memory; one mutex makes each decision's check-and-write atomic.
#[derive(Clone, Default)]
pub struct MemoryApprovalStore {
    inner: Arc<Mutex<Approvals>>,
}

impl MemoryApprovalStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Approvals> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The condition every store applies to a decision, written once for the memory store.
pub(crate) fn decision_allowed(record: &ApprovalRecord, decision: &ApprovalDecision) -> DecisionWrite {
    if let Some(existing) = &record.decision {
        return DecisionWrite::AlreadyDecided(existing.clone());
    }
    if decision.verdict != ApprovalVerdict::Expired && decision.decided_at >= record.expires_at {
        return DecisionWrite::Expired;
    }
    DecisionWrite::Recorded
}

#[async_trait]
impl ApprovalStore for MemoryApprovalStore {
    async fn create_approval(&self, record: &ApprovalRecord, tokens: &[ApprovalTokenRecord]) -> Result<(), AuditError> {
        let mut inner = self.lock();
        if inner.records.contains_key(&record.approval_id)
            || tokens.iter().any(|t| inner.tokens.contains_key(&t.token_hash))
        {
            return Err(AuditError::AlreadyExists { key: format!("approval {}", record.approval_id) });
        }
        inner.records.insert(record.approval_id.clone(), record.clone());
        for token in tokens {
            inner.tokens.insert(token.token_hash.clone(), token.clone());
        }
        Ok(())
    }

    async fn approval_token(&self, token_hash: &str) -> Result<Option<ApprovalTokenRecord>, AuditError> {
        Ok(self.lock().tokens.get(token_hash).cloned())
    }

    async fn approval(&self, approval_id: &str) -> Result<Option<ApprovalRecord>, AuditError> {
        Ok(self.lock().records.get(approval_id).cloned())
    }

    async fn record_decision(
        &self,
        approval_id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DecisionWrite, AuditError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(approval_id) else { return Ok(DecisionWrite::NotFound) };
        let outcome = decision_allowed(record, decision);
        if outcome == DecisionWrite::Recorded {
            record.decision = Some(decision.clone());
        }
        Ok(outcome)
    }
}

/// One delivered decision, as the in-process chain (or a test) reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    Success { approval_id: String, output: serde_json::Value },
    Failure { approval_id: String, error: String, cause: String },
}

/// Decisions delivered to this process: the in-process chain waits on them instead of a
/// Step Functions task. Keeps every delivery, so a test counts them.
#[derive(Clone, Default)]
pub struct InProcessCallback {
    delivered: Arc<Mutex<Vec<Delivered>>>,
}

impl InProcessCallback {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every decision delivered so far, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl TaskCallback for InProcessCallback {
    async fn succeed(&self, record: &ApprovalRecord, output: &serde_json::Value) -> Result<(), CallbackError> {
        let delivered = Delivered::Success { approval_id: record.approval_id.clone(), output: output.clone() };
        self.delivered.lock().unwrap_or_else(|e| e.into_inner()).push(delivered);
        Ok(())
    }

    async fn fail(&self, record: &ApprovalRecord, error: &str, cause: &str) -> Result<(), CallbackError> {
        let delivered =
            Delivered::Failure { approval_id: record.approval_id.clone(), error: error.into(), cause: cause.into() };
        self.delivered.lock().unwrap_or_else(|e| e.into_inner()).push(delivered);
        Ok(())
    }
}
