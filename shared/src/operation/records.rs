//! Writing one operation's audit records: header, lifecycle events, snapshots in chunks,
//! change records in batches. Every workflow writes through this, so batching and the
//! "stop rather than act unrecorded" rule live in one place.

use serde_json::Value;

use crate::domain::{ItemChange, ItemSnapshot, OperationEvent, OperationEventKind, OperationRecord, RunStatus};
use crate::error::{AuditError, OfframpError};
use crate::operation::Gate;
use crate::ports::AuditStore;

/// Snapshots written per call: tens of thousands of items are never all held as JSON at once.
pub const SNAPSHOT_CHUNK: usize = 500;
/// Change records per write: DynamoDB writes them as one transaction of conditional puts,
/// so a run costs one write request per this many items (`make bench` prints the figure).
pub const CHANGE_BATCH: usize = 25;

/// The audit records of one operation.
#[derive(Clone, Copy)]
pub struct Recorder<'a> {
    pub audit: &'a dyn AuditStore,
    pub operation_id: &'a str,
}

impl<'a> Recorder<'a> {
    pub fn new(audit: &'a dyn AuditStore, operation_id: &'a str) -> Self {
        Self { audit, operation_id }
    }

    pub async fn create(&self, record: &OperationRecord) -> Result<(), AuditError> {
        self.audit.create_operation(record).await
    }

    pub async fn event(&self, kind: OperationEventKind, detail: Value) -> Result<(), AuditError> {
        self.audit.append_event(&OperationEvent::new(self.operation_id, kind, detail)).await
    }

    /// Record a plan that was not applied, the same way for every workflow: a dry run is
    /// a `planned` dry run (it expires with the dry-run retention); a plan waiting for
    /// approval is `approval_required`; a real attempt a gate refused (blast radius,
    /// missing confirmation, changed plan, blocked) is a `refused` real run, kept like
    /// every real run. `detail` is the plan as the workflow records it.
    pub async fn record_unapplied(
        &self,
        mut record: OperationRecord,
        gate: &Gate,
        mut detail: Value,
        refusal: Option<&OfframpError>,
    ) -> Result<(), AuditError> {
        let (dry_run, kind, status) = match gate {
            Gate::DryRun => (true, OperationEventKind::Planned, RunStatus::Planned),
            Gate::AwaitingApproval { status: RunStatus::ApprovalRequired } => {
                (false, OperationEventKind::ApprovalRequired, RunStatus::ApprovalRequired)
            }
            Gate::AwaitingApproval { status } => (false, OperationEventKind::Refused, *status),
            Gate::BlastRadiusExceeded => (false, OperationEventKind::Refused, RunStatus::BlastRadiusExceeded),
            Gate::PlanChanged { .. } | Gate::Apply(_) => (false, OperationEventKind::Refused, RunStatus::Blocked),
        };
        record.dry_run = dry_run;
        self.create(&record).await?;
        if let Some(fields) = detail.as_object_mut() {
            fields.insert("status".into(), serde_json::json!(status));
            if let Some(error) = refusal {
                fields.insert("code".into(), serde_json::json!(error.code()));
                fields.insert("message".into(), serde_json::json!(error.to_string()));
            }
        }
        self.event(kind, detail).await
    }

    /// Every snapshot is written before the first change; in chunks so memory stays flat.
    pub async fn snapshots<I>(&self, snapshots: I) -> Result<usize, AuditError>
    where
        I: IntoIterator<Item = ItemSnapshot>,
    {
        let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK);
        let mut written = 0;
        for snapshot in snapshots {
            chunk.push(snapshot);
            if chunk.len() == SNAPSHOT_CHUNK {
                self.audit.put_snapshots(&chunk).await?;
                written += chunk.len();
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            self.audit.put_snapshots(&chunk).await?;
            written += chunk.len();
        }
        Ok(written)
    }
}

/// Change records waiting to be written, flushed every [`CHANGE_BATCH`].
pub struct ChangeBatch<'a> {
    audit: &'a dyn AuditStore,
    pending: Vec<ItemChange>,
    size: usize,
}

impl<'a> ChangeBatch<'a> {
    pub fn new(audit: &'a dyn AuditStore, size: usize) -> Self {
        let size = size.clamp(1, CHANGE_BATCH);
        Self { audit, pending: Vec::with_capacity(size), size }
    }

    /// Queue one record; writes the batch when it is full.
    pub async fn push(&mut self, change: ItemChange) -> Result<(), AuditError> {
        self.pending.push(change);
        if self.pending.len() >= self.size { self.flush().await } else { Ok(()) }
    }

    /// Write `records` at once, ahead of what is queued (the intents of the next window:
    /// they must be in the trail before the first of those items is sent).
    pub async fn write_now(&mut self, records: &[ItemChange]) -> Result<(), AuditError> {
        self.audit.put_changes(records).await
    }

    /// Write what is queued. On failure the records stay queued (and are reported lost by
    /// the caller, which stops the run: a resume re-reads those items from the vendor).
    pub async fn flush(&mut self) -> Result<(), AuditError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.audit.put_changes(&self.pending).await?;
        self.pending.clear();
        Ok(())
    }
}
