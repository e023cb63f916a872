//! One approval contract. A change is applied only with a proof bound to the plan hash
//! computed just now, in this run: who approved it, when, and through which seed input
//! (`approval{plan_hash}` of workflow 000, `confirmation` (+ `plan_hash`) of workflow 001,
//! `confirm_delete` of workflow 002; docs/workflows.md#000-inputs, #001-inputs,
//! #002-inputs). The workflows map their inputs onto [`Consent`]
//! and the engine decides the gate in one place.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::RunStatus;

/// Which seed input carried the approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalVia {
    /// `approval: {plan_hash, approved_by}` (configuration deactivation, any workflow's CLI).
    Approval,
    /// `confirmation: true`, optionally with the reviewed `plan_hash` (contact deactivation).
    Confirmation,
    /// `confirm_delete: true` (IT Glue organization deletion).
    ConfirmDelete,
}

/// A caller's approval, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalProof {
    /// The plan the approver reviewed; `None` when the seed input carries no hash (a bare
    /// `confirmation: true`): then it binds to the plan computed in this run.
    pub plan_hash: Option<String>,
    pub approved_by: String,
    pub via: ApprovalVia,
}

/// What the caller asked for and allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub dry_run: bool,
    /// An approval must be given before anything is applied (`require_approval`, or always
    /// for workflows whose seed makes confirmation mandatory).
    pub approval_required: bool,
    /// How a missing approval is reported.
    pub missing_status: RunStatus,
    pub proof: Option<ApprovalProof>,
    pub override_blast_radius: bool,
}

/// The approval a run applies under, recorded in its `started` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundApproval {
    pub plan_hash: String,
    #[serde(default)]
    pub approved_by: Option<String>,
    #[serde(default)]
    pub via: Option<ApprovalVia>,
    pub approved_at: DateTime<Utc>,
}

/// The engine's decision on a freshly computed plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The approval names another plan: nothing is applied.
    PlanChanged { approved: String, now: String },
    /// A dry run: the plan is the answer.
    DryRun,
    /// Larger than the guard allows and not overridden.
    BlastRadiusExceeded,
    /// An approval or confirmation is needed first (`status` says which).
    AwaitingApproval { status: RunStatus },
    /// Apply, under this approval.
    Apply(BoundApproval),
}

/// Decide what happens to a plan whose hash is `plan_hash`. The order is deliberate: a
/// stale approval is always worth saying; a dry run never changes anything; a plan over
/// the guard is refused before an approval is asked for, since approving it would not
/// let it through.
pub fn decide(consent: &Consent, plan_hash: &str, over_guard: bool) -> Gate {
    if let Some(approved) = consent.proof.as_ref().and_then(|p| p.plan_hash.as_deref())
        && approved != plan_hash
    {
        return Gate::PlanChanged { approved: approved.to_string(), now: plan_hash.to_string() };
    }
    if consent.dry_run {
        return Gate::DryRun;
    }
    if over_guard && !consent.override_blast_radius {
        return Gate::BlastRadiusExceeded;
    }
    match &consent.proof {
        None if consent.approval_required => Gate::AwaitingApproval { status: consent.missing_status },
        proof => Gate::Apply(BoundApproval {
            plan_hash: plan_hash.to_string(),
            approved_by: proof.as_ref().map(|p| p.approved_by.clone()),
            via: proof.as_ref().map(|p| p.via),
            approved_at: crate::domain::now(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(proof: Option<&str>) -> Consent {
        Consent {
            dry_run: false,
            approval_required: true,
            missing_status: RunStatus::ApprovalRequired,
            proof: proof.map(|hash| ApprovalProof {
                plan_hash: Some(hash.to_string()),
                approved_by: "ann".into(),
                via: ApprovalVia::Approval,
            }),
            override_blast_radius: false,
        }
    }

    #[test]
    fn an_approval_applies_only_the_plan_it_names() {
        assert_eq!(
            decide(&consent(Some("a")), "b", false),
            Gate::PlanChanged { approved: "a".into(), now: "b".into() }
        );
        let Gate::Apply(bound) = decide(&consent(Some("b")), "b", false) else { panic!("not applied") };
        assert_eq!((bound.plan_hash.as_str(), bound.approved_by.as_deref()), ("b", Some("ann")));
        assert_eq!(decide(&consent(None), "b", false), Gate::AwaitingApproval { status: RunStatus::ApprovalRequired });
        assert_eq!(decide(&consent(Some("b")), "b", true), Gate::BlastRadiusExceeded);
        let dry = Consent { dry_run: true, ..consent(None) };
        assert_eq!(decide(&dry, "b", true), Gate::DryRun);
    }
}
