//! What a deletion would do, and whether it may: the PSA-offboarded policy, the
//! dependency check, the plan's hash, and the answer when the engine's gate does not let
//! it through (a dry run, a missing confirmation, dependents that block).

use serde_json::{Value, json};

use super::report::{DeleteOrgReport, DependencyCheck};
use super::{DeleteOrgDeps, DeleteOrgRequest, doc_error};
use crate::domain::{DependencyCounts, ItGluePsaPolicy, OperationRecord, Organization, PsaKind, RunStatus};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Gate};
use crate::workflows::org_settings;

/// The organization and what is attached to it.
pub(super) struct Plan {
    pub org: Organization,
    pub counts: DependencyCounts,
    /// Dependents exist and `force_delete` was not given.
    pub blocked: bool,
    pub hash: String,
}

impl Plan {
    /// What the trail records about the plan (the `planned`/`refused` and `started` detail,
    /// the organization's snapshot).
    pub fn detail(&self) -> Value {
        json!({ "organization": self.org, "dependencies": self.counts })
    }
}

/// Count the organization's dependents and say in the report what they mean.
pub(super) async fn plan(
    deps: &DeleteOrgDeps<'_>,
    org: Organization,
    request: &DeleteOrgRequest,
    report: &mut DeleteOrgReport,
) -> Result<Plan, OfframpError> {
    let counts = deps.docs.dependencies(&org.id).await.map_err(doc_error)?;
    let has_dependents = counts.any();
    let blocked = has_dependents && !request.force_delete;
    report.dependency_check = Some(DependencyCheck::of(&counts, blocked));
    if !counts.unknown.is_empty() {
        let kinds: Vec<&str> = counts.unknown.keys().map(String::as_str).collect();
        report.warnings.push(format!("Could not count: {} (counted as possible dependents)", kinds.join(", ")));
    }
    if has_dependents && request.force_delete {
        report.warnings.push("force_delete: the organization is deleted with everything attached to it".into());
    }
    let hash = operation::plan_hash(&json!({ "organization": org.id, "dependencies": counts, "blocked": blocked }));
    Ok(Plan { org, counts, blocked, hash })
}

/// The answer to a plan the gate did not let through (the engine records it). A dry run
/// succeeds; a real attempt that was refused (dependents, no confirmation) ends on its
/// error, recorded as a refused real run.
pub(super) fn answer_unapplied(
    record: &OperationRecord,
    plan: &Plan,
    gate: &Gate,
    report: &mut DeleteOrgReport,
) -> Result<(), OfframpError> {
    let org = &plan.org;
    let (status, refusal) = match gate {
        Gate::DryRun => (RunStatus::Planned, None),
        Gate::AwaitingApproval { status: RunStatus::ConfirmationRequired } => (
            RunStatus::ConfirmationRequired,
            Some(OfframpError::new(
                ErrorCode::ConfirmationRequired,
                "confirm_delete: true is required to delete an organization; nothing was deleted",
            )),
        ),
        // Dependents without force_delete (see `consent`); no other gate can stop a deletion.
        _ => (
            RunStatus::Blocked,
            Some(OfframpError::new(
                ErrorCode::DeletionBlocked,
                format!(
                    "{} has dependent records (see dependency_check); nothing was deleted. Use force_delete to delete it \
                     with them",
                    org.name
                ),
            )),
        ),
    };
    report.operation_id = Some(record.operation_id.clone());
    report.status = Some(status);
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    report.success = true;
    report.warnings.push(if plan.blocked {
        format!(
            "Dry run: nothing was deleted. A real run would be blocked by {}'s dependents (unless force_delete).",
            org.name
        )
    } else {
        format!("Dry run: nothing was deleted. A confirmed run would export {0}, copy the export to the archive, then delete it.", org.name)
    });
    Ok(())
}

/// Whether the organization's `psa-integration-type` (when IT Glue names one) is the PSA
/// Offramp works with: a `psa-id` means nothing against another PSA's ids. IT Glue calls
/// ConnectWise Manage `manage`; the HaloPSA name is UNCONFIRMED, so any name containing
/// `halo` is taken.
pub(super) fn integration_matches(org: &Organization, kind: PsaKind) -> bool {
    let Some(integration) = org.psa_integration.as_deref() else { return true };
    let integration = integration.trim().to_ascii_lowercase();
    match kind {
        PsaKind::ConnectWise => integration == "manage" || integration.contains("connectwise"),
        PsaKind::Autotask => integration == "autotask",
        PsaKind::Halo => integration.contains("halo"),
    }
}

/// The PSA policy that applied to a run and where it came from (recorded with the operation).
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct ResolvedPolicy {
    pub policy: ItGluePsaPolicy,
    /// `organization`, `global` (settings) or `environment` (`OFFRAMP_ITGLUE_PSA_POLICY`).
    pub source: &'static str,
}

/// The PSA policy (docs/workflows.md#002-psa-policy): `Ok` with the policy that applied when
/// it allows the deletion. `allow_unlinked` and `require_offboarded_psa_company` treat a
/// linked organization alike (its company must be offboarded); they differ on an unlinked one.
pub(super) async fn check_policy(deps: &DeleteOrgDeps<'_>, org: &Organization) -> Result<ResolvedPolicy, OfframpError> {
    let (policy, source) = match deps.settings {
        Some(store) => org_settings::itglue_psa_policy(store, &org.id, deps.options.psa_policy).await?,
        None => (deps.options.psa_policy, "environment"),
    };
    let resolved = ResolvedPolicy { policy, source };
    if policy == ItGluePsaPolicy::Off {
        return Ok(resolved);
    }
    let name = policy.as_str();
    let blocked =
        |why: String| OfframpError::new(ErrorCode::DeletionBlocked, format!("policy {name} ({source}): {why}"));
    let Some(psa_id) = &org.psa_id else {
        if policy == ItGluePsaPolicy::AllowUnlinked {
            return Ok(resolved);
        }
        return Err(blocked(format!(
            "{} is not linked to a PSA company, so it cannot be shown to be offboarded; nothing was deleted",
            org.name
        )));
    };
    let psa = deps.psa.ok_or_else(|| {
        OfframpError::configuration(format!(
            "the IT Glue PSA policy for {} is {name} ({source}) and it is linked to PSA company {psa_id}, but no PSA \
             is configured: configure the PSA, or set the policy to off",
            org.name
        ))
    })?;
    if !integration_matches(org, psa.kind()) {
        return Err(blocked(format!(
            "{} is synced with a {} PSA, not with the configured {}; nothing was deleted",
            org.name,
            org.psa_integration.as_deref().unwrap_or("?"),
            psa.kind()
        )));
    }
    let mut company = psa.company_by_id(psa_id).await?.ok_or_else(|| {
        blocked(format!("the linked {} company {psa_id} does not exist; nothing was deleted", psa.kind()))
    })?;
    if deps.options.offboarded.contract_ended {
        company.contracts = Some(psa.contract_summary(&company.id, chrono::Utc::now().date_naive()).await?);
    }
    if deps.options.offboarded.matches(&company) {
        return Ok(resolved);
    }
    Err(blocked(format!(
        "{} company {} ({}) is not offboarded ({}); nothing was deleted",
        psa.kind(),
        company.name,
        company.id,
        deps.options.offboarded.describe()
    )))
}
