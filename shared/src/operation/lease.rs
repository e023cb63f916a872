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

/// The header input field where an operation records its own lease target, when it is not
/// its PSA client's (user offboarding: the user in the Microsoft 365 tenant).
pub const RECORDED_TARGET_FIELD: &str = "lease_target";

/// The lease target an operation recorded in its header input (`input["lease_target"]`), if
/// any. A forward run that leases something other than its PSA client records it there, so
/// that its resume and its rollback take the same lease: the run and its rollback must
/// exclude each other on the same target, or a rollback could put back what the run is
/// still changing.
pub fn recorded_target(input: &serde_json::Value) -> Option<&str> {
    input.get(RECORDED_TARGET_FIELD).and_then(serde_json::Value::as_str).map(str::trim).filter(|t| !t.is_empty())
}

/// The lease target of a run over `operation`'s target (its resume, its rollback): the one
/// it recorded, else its PSA client's (`target(psa, client_id)`), as every operation
/// before recorded targets.
pub fn target_of(operation: &crate::domain::OperationRecord) -> String {
    match recorded_target(&operation.input) {
        Some(recorded) => recorded.to_string(),
        None => target(&operation.psa, &operation.client_id),
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{OperationRecord, Workflow};

    fn operation(input: serde_json::Value) -> OperationRecord {
        OperationRecord {
            operation_id: "op-1".into(),
            workflow: Workflow::OffboardUser,
            psa: "connectwise".into(),
            client_id: "250".into(),
            client_name: "Client".into(),
            initiated_by: "test".into(),
            reason: None,
            dry_run: false,
            plan_hash: None,
            created_at: crate::domain::now(),
            input,
            parent_operation_id: None,
        }
    }

    /// A recorded target wins; without one (every operation recorded before targets were),
    /// or with one that is not a usable string, the PSA client's is taken as before.
    #[test]
    fn the_recorded_lease_target_is_taken_else_the_psa_clients() {
        let recorded = operation(json!({ "lease_target": "m365#tenant-1#user-9" }));
        assert_eq!(target_of(&recorded), "m365#tenant-1#user-9");
        for input in [json!({}), json!({ "lease_target": "  " }), json!({ "lease_target": 5 }), json!(null)] {
            assert_eq!(target_of(&operation(input.clone())), "connectwise#250", "{input}");
        }
    }
}
