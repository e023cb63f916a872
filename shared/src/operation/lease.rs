//! One run at a time per target. Before its first change a run takes the lease on its
//! target (the PSA or IT Glue tenant's client or organization) with a conditional write,
//! renews it while it works, and releases it at the end. A process that dies stops
//! renewing, so the lease expires and the run can be resumed; `break_lease` takes it at
//! once (and the run records that it did).

use std::future::Future;
use std::time::Duration;

use crate::domain::{Lease, LeaseRequest};
use crate::error::{AuditError, OfframpError};
use crate::ports::AuditStore;

/// How long a lease lasts without renewal, and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    pub ttl: Duration,
    pub renew_every: Duration,
}

impl Default for LeaseOptions {
    /// Two minutes: long enough that renewals every 40 s survive a slow write or two,
    /// short enough that a killed run can be resumed soon without `--break-lease`.
    fn default() -> Self {
        Self { ttl: Duration::from_secs(120), renew_every: Duration::from_secs(40) }
    }
}

/// The lease target of a PSA client or an IT Glue organization: `<system>#<id>`.
pub fn target(system: &str, id: &str) -> String {
    format!("{system}#{id}")
}

fn ttl(options: &LeaseOptions) -> chrono::Duration {
    chrono::Duration::from_std(options.ttl).unwrap_or(chrono::Duration::minutes(2))
}

/// Run `work` holding the lease on `target` for `operation_id`. Another holder's unexpired
/// lease is `OperationInProgress` naming its operation, and `work` does not start. If a
/// renewal finds the lease taken over, `work` is dropped where it stands (as a crash
/// would leave it: the trail shows what was changed) and the run ends with that error.
pub async fn with_lease<T, Fut>(
    audit: &dyn AuditStore,
    options: LeaseOptions,
    target: String,
    operation_id: &str,
    break_existing: bool,
    work: Fut,
) -> Result<T, OfframpError>
where
    Fut: Future<Output = T>,
{
    let request = LeaseRequest {
        target,
        operation_id: operation_id.to_string(),
        holder: uuid::Uuid::now_v7().to_string(),
        ttl: ttl(&options),
        break_existing,
    };
    let lease = audit.acquire_lease(&request).await?;
    tracing::info!(target = %lease.target, expires_at = %lease.expires_at, broke = break_existing, "lease taken");
    let outcome = {
        let work = std::pin::pin!(work);
        let renew = std::pin::pin!(keep_renewed(audit, &lease, options));
        match futures::future::select(work, renew).await {
            futures::future::Either::Left((value, _)) => Ok(value),
            futures::future::Either::Right((lost, _)) => Err(OfframpError::from(lost)),
        }
    };
    if let Err(error) = audit.release_lease(&lease).await {
        // It expires on its own; a failed release only delays the next run by the TTL.
        tracing::warn!(error = %error, target = %lease.target, "lease not released; it will expire");
    }
    outcome
}

/// Renew until a renewal fails for good; returns why.
async fn keep_renewed(audit: &dyn AuditStore, lease: &Lease, options: LeaseOptions) -> AuditError {
    let mut lease = lease.clone();
    loop {
        tokio::time::sleep(options.renew_every).await;
        match audit.renew_lease(&lease, ttl(&options)).await {
            Ok(renewed) => lease = renewed,
            Err(lost @ (AuditError::LeaseLost { .. } | AuditError::LeaseHeld { .. })) => return lost,
            // A store hiccup: the lease is still ours until it expires; try again next time.
            Err(error) => tracing::warn!(error = %error, "lease renewal failed; retrying"),
        }
    }
}
