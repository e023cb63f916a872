//! The driver every planned operation goes through once its plan is computed: the gates
//! decide; a plan they let through is applied under the target's lease, after its header,
//! its snapshots and its `started` event are in the trail; any other plan is recorded (a
//! dry run as a plan, a refused real attempt as refused) and answered with. A workflow
//! says what its plan is, how to answer with it and how to apply it ([`GatedPlan`]); the
//! order of these steps lives here only (docs/architecture.md#the-operation-engine).

use std::future::Future;

use serde_json::{Value, json};

use crate::domain::{ItemSnapshot, OperationEventKind, OperationRecord};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{BoundApproval, Consent, Gate, LeaseOptions, Recorder, decide, with_lease};
use crate::ports::AuditStore;

/// A workflow's freshly computed plan, as the engine sees it.
pub trait GatedPlan: Sized {
    type Report;

    /// The lease target (`lease::target(system, id)`): one run at a time on it.
    fn lease_target(&self) -> String;

    /// Whether the plan is larger than the blast-radius guard allows.
    fn over_guard(&self) -> bool {
        false
    }

    /// The plan as the trail keeps it when it is not applied.
    fn detail(&self) -> Value;

    /// What `started` records beside the approval: what is about to be changed.
    fn started(&self) -> Value;

    /// Every item's state before any change.
    fn snapshots<'a>(&'a self, operation_id: &'a str) -> impl Iterator<Item = ItemSnapshot> + 'a;

    /// The answer to a gate that did not let the plan through: the plan as a report, or
    /// the error a refused real attempt ends on (it is recorded with the refusal). Never
    /// called for a changed plan: the engine refuses that itself.
    fn answer(self, record: &OperationRecord, gate: &Gate) -> Result<Self::Report, OfframpError>;

    /// Apply the plan. Called holding the lease, once the header, the snapshots and
    /// `started` are written.
    fn apply(
        self,
        record: OperationRecord,
        approval: BoundApproval,
    ) -> impl Future<Output = Result<Self::Report, OfframpError>>;
}

/// How a gated run is allowed to go.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    pub consent: &'a Consent,
    pub lease: LeaseOptions,
    /// Take the target's lease from a holder known to be dead (recorded in `started`).
    pub break_lease: bool,
}

/// Why a gated run ended without a report.
#[derive(Debug)]
pub struct Stopped {
    pub error: OfframpError,
    /// Whether the operation is in the trail (so a report can name it).
    pub recorded: bool,
}

impl Stopped {
    fn before_trail(error: impl Into<OfframpError>) -> Self {
        Stopped { error: error.into(), recorded: false }
    }

    fn in_trail(error: impl Into<OfframpError>) -> Self {
        Stopped { error: error.into(), recorded: true }
    }
}

/// Decide on `plan` (whose hash is `record.plan_hash`), then apply it or answer with it.
pub async fn gate_then_apply<P: GatedPlan>(
    audit: &dyn AuditStore,
    admission: Admission<'_>,
    record: OperationRecord,
    plan: P,
) -> Result<P::Report, Stopped> {
    let hash = record.plan_hash.clone().unwrap_or_default();
    let gate = decide(admission.consent, &hash, plan.over_guard());
    let Gate::Apply(approval) = gate else {
        return record_unapplied(audit, record, plan, &gate).await;
    };
    let target = plan.lease_target();
    let operation_id = record.operation_id.clone();
    let work = start_then_apply(audit, record, plan, approval, admission.break_lease);
    with_lease(audit, admission.lease, target, &operation_id, admission.break_lease, work)
        .await
        .map_err(Stopped::before_trail)?
}

async fn record_unapplied<P: GatedPlan>(
    audit: &dyn AuditStore,
    record: OperationRecord,
    plan: P,
    gate: &Gate,
) -> Result<P::Report, Stopped> {
    let detail = plan.detail();
    let answer = match gate {
        Gate::PlanChanged { approved, now } => Err(OfframpError::new(
            ErrorCode::PlanChanged,
            format!(
                "the plan changed since it was approved (approved {approved}, now {now}); nothing was changed — review \
                 the new plan"
            ),
        )),
        _ => plan.answer(&record, gate),
    };
    let operation_id = record.operation_id.clone();
    Recorder::new(audit, &operation_id)
        .record_unapplied(record, gate, detail, answer.as_ref().err())
        .await
        .map_err(Stopped::before_trail)?;
    answer.map_err(Stopped::in_trail)
}

/// Header, snapshots (every one before the first change), `started` with the approval
/// the run applies under, then the workflow's apply.
async fn start_then_apply<P: GatedPlan>(
    audit: &dyn AuditStore,
    record: OperationRecord,
    plan: P,
    approval: BoundApproval,
    lease_broken: bool,
) -> Result<P::Report, Stopped> {
    let operation_id = record.operation_id.clone();
    let recorder = Recorder::new(audit, &operation_id);
    recorder.create(&record).await.map_err(Stopped::before_trail)?;
    let snapshots = recorder.snapshots(plan.snapshots(&operation_id)).await.map_err(Stopped::in_trail)?;
    let mut started = plan.started();
    if let Some(fields) = started.as_object_mut() {
        fields.insert("plan_hash".into(), json!(approval.plan_hash));
        fields.insert("approved_by".into(), json!(approval.approved_by));
        fields.insert("approval".into(), json!(approval));
        fields.insert("lease_broken".into(), json!(lease_broken));
    }
    recorder.event(OperationEventKind::Started, started).await.map_err(Stopped::in_trail)?;
    tracing::info!(plan_hash = %approval.plan_hash, snapshots, "operation started");
    plan.apply(record, approval).await.map_err(Stopped::in_trail)
}
