//! The SQLite audit trail with faults a test switches on: a change write that never
//! returns (the process "dies" right after it), `completed` events refused, a lease held
//! by another run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::domain::{
    ItemChange, ItemSnapshot, OperationDetail, OperationEvent, OperationEventKind, OperationFilter, OperationRecord,
    OperationSummary,
};
use offramp::error::AuditError;
use offramp::ports::{AuditStore, async_trait};

/// The harness's SQLite trail with faults a test switches on.
pub struct FaultyAudit {
    pub inner: Arc<SqliteAuditStore>,
    /// Change writes left before one stalls: that one is written, then never returns, as
    /// if the process died right after it. `usize::MAX`: none stalls.
    pub writes_before_stall: AtomicUsize,
    pub stalled: AtomicBool,
    /// `Completed` events are refused: the trail fails at the very end of a run.
    pub refuse_completed: AtomicBool,
    /// Another run holds every lease (unless the request breaks it).
    pub lease_held: AtomicBool,
}

impl FaultyAudit {
    pub fn new(inner: Arc<SqliteAuditStore>) -> Self {
        Self {
            inner,
            writes_before_stall: AtomicUsize::new(usize::MAX),
            stalled: AtomicBool::new(false),
            refuse_completed: AtomicBool::new(false),
            lease_held: AtomicBool::new(false),
        }
    }

    /// The `n`-th change write from now on is written, and then its caller hangs for good.
    /// `usize::MAX` switches this off.
    pub fn stall_after(&self, n: usize) {
        self.stalled.store(false, Ordering::SeqCst);
        self.writes_before_stall.store(n, Ordering::SeqCst);
    }

    /// Run `work` until its `writes`-th change write is in the trail, and drop it there, as
    /// if the process died right after that write. Panics if `work` finishes first or
    /// makes no progress within a minute.
    pub async fn crash_after<T: std::fmt::Debug>(&self, writes: usize, work: impl std::future::Future<Output = T>) {
        self.stall_after(writes);
        let stalled = async {
            while !self.stalled.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            finished = work => panic!("finished before the crash: {finished:?}"),
            _ = stalled => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => panic!("no progress before the crash"),
        }
        self.stall_after(usize::MAX);
    }

    pub fn refuse_completed(&self, on: bool) {
        self.refuse_completed.store(on, Ordering::SeqCst);
    }
}

#[async_trait]
impl AuditStore for FaultyAudit {
    async fn create_operation(&self, operation: &OperationRecord) -> Result<(), AuditError> {
        self.inner.create_operation(operation).await
    }

    async fn append_event(&self, event: &OperationEvent) -> Result<(), AuditError> {
        if event.kind == OperationEventKind::Completed && self.refuse_completed.load(Ordering::SeqCst) {
            return Err(AuditError::Unavailable { message: "the audit table throttled the write (test)".into() });
        }
        self.inner.append_event(event).await
    }

    async fn put_snapshots(&self, snapshots: &[ItemSnapshot]) -> Result<(), AuditError> {
        self.inner.put_snapshots(snapshots).await
    }

    async fn put_changes(&self, changes: &[ItemChange]) -> Result<(), AuditError> {
        self.inner.put_changes(changes).await?;
        let left = self.writes_before_stall.load(Ordering::SeqCst);
        if left != usize::MAX {
            self.writes_before_stall.store(left.saturating_sub(1), Ordering::SeqCst);
            if left <= 1 {
                self.stalled.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
        }
        Ok(())
    }

    async fn operation(&self, operation_id: &str) -> Result<Option<OperationDetail>, AuditError> {
        self.inner.operation(operation_id).await
    }

    async fn list_operations(&self, filter: &OperationFilter) -> Result<Vec<OperationSummary>, AuditError> {
        self.inner.list_operations(filter).await
    }

    async fn child_operations(&self, parent_operation_id: &str) -> Result<Vec<OperationRecord>, AuditError> {
        self.inner.child_operations(parent_operation_id).await
    }

    async fn acquire_lease(
        &self,
        request: &offramp::domain::LeaseRequest,
    ) -> Result<offramp::domain::Lease, AuditError> {
        if self.lease_held.load(Ordering::SeqCst) && !request.break_existing {
            let (target, operation_id) = (request.target.clone(), "another-run".to_string());
            return Err(AuditError::LeaseHeld { target, operation_id, expires_at: offramp::domain::now() });
        }
        self.inner.acquire_lease(request).await
    }

    async fn renew_lease(
        &self,
        lease: &offramp::domain::Lease,
        ttl: chrono::Duration,
    ) -> Result<offramp::domain::Lease, AuditError> {
        self.inner.renew_lease(lease, ttl).await
    }

    async fn release_lease(&self, lease: &offramp::domain::Lease) -> Result<(), AuditError> {
        self.inner.release_lease(lease).await
    }

    async fn current_lease(&self, target: &str) -> Result<Option<offramp::domain::Lease>, AuditError> {
        self.inner.current_lease(target).await
    }

    async fn claim_idempotency_key(
        &self,
        record: &offramp::domain::IdempotencyRecord,
    ) -> Result<offramp::domain::IdempotencyClaim, AuditError> {
        self.inner.claim_idempotency_key(record).await
    }

    async fn complete_idempotency_key(&self, record: &offramp::domain::IdempotencyRecord) -> Result<(), AuditError> {
        self.inner.complete_idempotency_key(record).await
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), AuditError> {
        self.inner.release_idempotency_key(key).await
    }
}
