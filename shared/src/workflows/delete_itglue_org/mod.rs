//! Workflow 002, IT Glue organization deletion
//! (docs/workflows.md#002-it-glue-organization-deletion).
//!
//! An IT Glue organization is looked up (by id, or by exact name ignoring case), its
//! dependents are counted, and it is deleted only when every safeguard agrees:
//! - dependents block the deletion unless `force_delete`;
//! - `confirm_delete: true` is required; `dry_run` reports and deletes nothing;
//! - the PSA policy (`ItGluePsaPolicy`, global or per organization): by default a linked
//!   PSA company must be offboarded and an unlinked organization may go;
//! - before a real deletion an IT Glue export of the organization is requested, awaited,
//!   downloaded and copied to the export archive (`ports::ExportArchive`: S3 with Object
//!   Lock when deployed), and the trail records the archived object, never the vendor's
//!   link: an IT Glue deletion cannot be undone and the link expires, so the archived copy
//!   is the only way back. Without it nothing is deleted unless `force_without_export`.
//!
//! Deletion is asynchronous on IT Glue: after the request the workflow polls until the
//! organization is gone or the configured time has passed, and reports `deleted: true` or
//! `status: pending_deletion`.
//!
//! It runs through the operation engine (`crate::operation`): `confirm_delete` is the
//! engine's consent, a refused real attempt (dependents, no confirmation) is recorded as
//! refused, and a deletion runs under the organization's lease, so two deletions of the
//! same organization never overlap. Files: `plan` (policy, dependencies, unapplied
//! answers), `execute` (export, deletion, polling), `report`, `cleanup` (scheduled mode).

mod cleanup;
mod execute;
mod gated;
mod plan;
mod report;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::{self, ItGluePsaPolicy, OffboardedCriteria, OperationRecord, Organization, RunStatus, Workflow};
use crate::error::{DocError, ErrorCode, OfframpError};
use crate::operation::restore::{RestoreRegistry, Reversibility};
use crate::operation::{
    self, Admission, ApprovalProof, ApprovalVia, Consent, IdempotencyOptions, LeaseOptions, sort_key,
};
use crate::ports::{AuditStore, DocPlatform, ExportArchive, Psa, SettingsStore};
use crate::workflows::input;

pub use cleanup::{CleanupReport, CleanupSkip, cleanup_offboarded_organizations};
pub use report::{DeleteOrgError, DeleteOrgReport, DependencyCheck};

pub const WORKFLOW: Workflow = Workflow::DeleteItglueOrg;

/// IT Glue cannot undo a deletion: a rollback is refused and points at the export.
pub fn register(registry: &mut RestoreRegistry) {
    registry.register_workflow(
        WORKFLOW,
        Reversibility::Irreversible(
            "{id} is an IT Glue organization deletion, which IT Glue cannot undo; restore from the archived export \
             recorded in the operation (offramp audit show {id}: bucket, key and version id)",
        ),
    );
}

/// Workflow 002's inputs (docs/workflows.md#002-inputs), plus who asked, the export override, an
/// idempotency key and the lease override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteOrgRequest {
    #[serde(default, deserialize_with = "input::string_or_number", skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    #[serde(default)]
    pub confirm_delete: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force_delete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    /// Delete even if the export could not be made (the deletion then cannot be undone at all).
    #[serde(default)]
    pub force_without_export: bool,
    /// The same key with the same request returns the first run's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Take the organization's lease from a run that holds it (a run known to be dead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_lease: bool,
    /// The plan the confirmation was given for (a dry run's `plan_hash`): with it, a plan
    /// that changed since is refused (`PlanChanged`) instead of deleted. The chain always
    /// sends it; a bare `confirm_delete` binds to the plan of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// The client offboarding this run is a step of (its chain's parent operation): recorded
    /// as the operation's `parent_operation_id`, so the trail links every step to the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_operation_id: Option<String>,
}

/// How the workflow runs, as opposed to what it is asked to do.
#[derive(Debug, Clone)]
pub struct DeleteOrgOptions {
    /// The PSA policy where no organization setting says otherwise.
    pub psa_policy: ItGluePsaPolicy,
    /// The largest export copied to the archive.
    pub export_max_bytes: usize,
    pub offboarded: OffboardedCriteria,
    /// How long to wait for the export to finish.
    pub export_wait: Duration,
    /// How long to wait for IT Glue to finish the deletion.
    pub deletion_wait: Duration,
    /// Time between two polls.
    pub poll_interval: Duration,
    pub lease: LeaseOptions,
    pub idempotency: IdempotencyOptions,
}

impl Default for DeleteOrgOptions {
    fn default() -> Self {
        Self {
            psa_policy: ItGluePsaPolicy::default(),
            export_max_bytes: 256 << 20,
            offboarded: OffboardedCriteria::default(),
            export_wait: Duration::from_secs(300),
            deletion_wait: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
            lease: LeaseOptions::default(),
            idempotency: IdempotencyOptions::default(),
        }
    }
}

impl DeleteOrgOptions {
    /// The options as configured (`OFFRAMP_ITGLUE_*`, the offboarded criteria).
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let itglue = &settings.itglue;
        Self {
            psa_policy: itglue.psa_policy,
            export_max_bytes: itglue.export_max_bytes,
            offboarded: settings.offboarded.clone(),
            export_wait: itglue.export_wait,
            deletion_wait: itglue.deletion_wait,
            poll_interval: itglue.poll_interval,
            ..Self::default()
        }
    }
}

#[derive(Clone)]
pub struct DeleteOrgDeps<'a> {
    pub docs: &'a dyn DocPlatform,
    pub audit: &'a dyn AuditStore,
    /// Needed only when the PSA policy consults the PSA.
    pub psa: Option<&'a dyn Psa>,
    /// Per-organization PSA policy (`itglue_psa_policy`); `None`: `options.psa_policy` only.
    pub settings: Option<&'a dyn SettingsStore>,
    /// Where the export is copied before the deletion; `None`: nothing is deleted unless
    /// `force_without_export`.
    pub archive: Option<&'a dyn ExportArchive>,
    pub options: DeleteOrgOptions,
}

/// The seed's codes for what went wrong reading or changing the organization. A 4xx is
/// IT Glue refusing the request, never a connection problem (a retry would not help).
pub(super) fn doc_code(e: &DocError) -> ErrorCode {
    match e {
        DocError::NotFound { .. } => ErrorCode::OrganizationNotFound,
        DocError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DocError::InvalidId { .. } => ErrorCode::InvalidIdentifier,
        DocError::Configuration { .. } => ErrorCode::ConfigurationError,
        // IT Glue answered a read with a 4xx: it is reachable and refused what was asked, so
        // neither a connection error nor a guess at which field it disliked. (A refused
        // deletion is `DeletionBlocked`, decided where it is sent.)
        DocError::Rejected { .. } => ErrorCode::ItGlueRequestRejected,
        DocError::Connection { .. } | DocError::InvalidResponse { .. } => ErrorCode::ItGlueConnectionError,
        DocError::BudgetExhausted { .. } => ErrorCode::RequestBudgetExhausted,
    }
}

pub(super) fn doc_error(e: DocError) -> OfframpError {
    OfframpError::new(doc_code(&e), e.to_string())
}

/// Run the workflow. Never panics on bad input; every outcome is a report. The same
/// `idempotency_key` with the same request answers with the first run's report.
pub async fn delete_itglue_org(deps: &DeleteOrgDeps<'_>, request: DeleteOrgRequest) -> DeleteOrgReport {
    let payload = serde_json::to_value(&request).unwrap_or_default();
    let key = request.idempotency_key.clone();
    let run = async {
        let span = tracing::info_span!("operation", workflow = %WORKFLOW);
        let mut report = DeleteOrgReport::new(None, request.dry_run);
        if let Err(e) = run(deps, &request, &mut report).instrument(span).await {
            tracing::warn!(code = %e.code(), error = %e, "organization deletion refused or failed");
            report.fail(&e);
        }
        report.timestamp = domain::iso8601(domain::now());
        report
    };
    operation::idempotent(deps.audit, deps.options.idempotency, WORKFLOW, key.as_deref(), &payload, run).await
}

struct Validated {
    reason: Option<String>,
    initiated_by: String,
}

/// The request's checks, as a run makes them before it reads anything (`offramp::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn check_request(request: &DeleteOrgRequest) -> Result<(), OfframpError> {
    validate(request)?;
    wanted(request).map(|_| ())
}

fn validate(request: &DeleteOrgRequest) -> Result<Validated, OfframpError> {
    input::idempotency_key(request.idempotency_key.as_deref())?;
    Ok(Validated {
        reason: input::text(input::REASON, request.reason.as_deref())?,
        initiated_by: input::text(input::INITIATED_BY, request.initiated_by.as_deref())?
            .unwrap_or_else(|| "unknown".into()),
    })
}

/// The seed's `confirm_delete` as the engine's consent: a confirmation is always needed.
/// Dependents without `force_delete` block whatever was confirmed: the consent that would
/// let the plan through (`force_delete`) is missing, so the gate refuses it as `blocked`.
fn consent(request: &DeleteOrgRequest, v: &Validated, blocked: bool) -> Consent {
    Consent {
        dry_run: request.dry_run,
        approval_required: true,
        missing_status: if blocked { RunStatus::Blocked } else { RunStatus::ConfirmationRequired },
        proof: (request.confirm_delete && !blocked).then(|| ApprovalProof {
            plan_hash: request.plan_hash.clone(),
            approved_by: v.initiated_by.clone(),
            via: ApprovalVia::ConfirmDelete,
        }),
        override_blast_radius: false,
    }
}

async fn run(
    deps: &DeleteOrgDeps<'_>,
    request: &DeleteOrgRequest,
    report: &mut DeleteOrgReport,
) -> Result<(), OfframpError> {
    let v = validate(request)?;
    let org = resolve(deps.docs, request).await?;
    report.org_id = Some(org.id.clone());
    report.org_name = Some(org.name.clone());
    let policy = plan::check_policy(deps, &org).await?;
    let plan = plan::plan(deps, org, request, report).await?;
    report.plan_hash = Some(plan.hash.clone());
    let operation_id = domain::new_operation_id();
    let record = operation_record(request, &v, &plan, &policy, &operation_id);
    let consent = consent(request, &v, plan.blocked);
    let admission = Admission { consent: &consent, lease: deps.options.lease, break_lease: request.break_lease };
    let force_without_export = request.force_without_export;
    let gated = gated::OrgPlan { deps, plan, force_without_export, report: &mut *report };
    match operation::gate_then_apply(deps.audit, admission, record, gated).await {
        Ok(()) => Ok(()),
        Err(stopped) => {
            if !stopped.recorded {
                // The answer names the operation before the engine records it.
                report.operation_id = None;
            }
            Err(stopped.error)
        }
    }
}

fn operation_record(
    request: &DeleteOrgRequest,
    v: &Validated,
    plan: &plan::Plan,
    policy: &plan::ResolvedPolicy,
    operation_id: &str,
) -> OperationRecord {
    OperationRecord {
        operation_id: operation_id.to_string(),
        workflow: WORKFLOW,
        psa: "itglue".into(),
        client_id: plan.org.id.clone(),
        client_name: plan.org.name.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        dry_run: request.dry_run,
        plan_hash: Some(plan.hash.clone()),
        created_at: domain::now(),
        input: json!({ "request": request, "psa_policy": policy }),
        parent_operation_id: request.parent_operation_id.clone(),
    }
}

/// The organization a request names: by id or by name.
enum Wanted {
    Id(String),
    Name(String),
}

/// Which organization the request names. Malformed identifiers are the seed's
/// InvalidIdentifier, not a generic InvalidInput.
fn wanted(request: &DeleteOrgRequest) -> Result<Wanted, OfframpError> {
    let identifier = |e: OfframpError| OfframpError::new(ErrorCode::InvalidIdentifier, e.to_string());
    let id = input::text(input::ORG_ID, request.org_id.as_deref()).map_err(identifier)?;
    let name = input::text(input::ORG_NAME, request.org_name.as_deref()).map_err(identifier)?;
    match (id, name) {
        (Some(_), Some(_)) => Err(OfframpError::new(ErrorCode::InvalidIdentifier, "give org_id or org_name, not both")),
        (None, None) => Err(OfframpError::new(ErrorCode::InvalidIdentifier, "either org_id or org_name is required")),
        (Some(id), None) => {
            if !id.chars().all(|c| c.is_ascii_digit()) || id.parse::<u64>().map_or(true, |n| n == 0) {
                return Err(OfframpError::new(
                    ErrorCode::InvalidIdentifier,
                    format!("org_id '{id}' is not an IT Glue organization id (a positive integer)"),
                ));
            }
            Ok(Wanted::Id(id))
        }
        (None, Some(name)) => Ok(Wanted::Name(name)),
    }
}

async fn resolve(docs: &dyn DocPlatform, request: &DeleteOrgRequest) -> Result<Organization, OfframpError> {
    match wanted(request)? {
        Wanted::Id(id) => docs.organization_by_id(&id).await.map_err(doc_error)?.ok_or_else(|| {
            OfframpError::new(ErrorCode::OrganizationNotFound, format!("no IT Glue organization has id {id}"))
        }),
        Wanted::Name(name) => resolve_by_name(docs, &name).await,
    }
}

async fn resolve_by_name(docs: &dyn DocPlatform, name: &str) -> Result<Organization, OfframpError> {
    let mut matches = docs.organizations_by_name(name).await.map_err(doc_error)?;
    match matches.len() {
        0 => Err(OfframpError::new(
            ErrorCode::OrganizationNotFound,
            format!("no IT Glue organization is named '{name}'"),
        )),
        1 => Ok(matches.remove(0)),
        n => {
            matches.sort_by_key(|o| sort_key(&o.id));
            let candidates: Vec<String> = matches.iter().map(|o| format!("{} (id {})", o.name, o.id)).collect();
            Err(OfframpError::new(
                ErrorCode::InvalidIdentifier,
                format!("{n} IT Glue organizations are named '{name}': {}; use org_id", candidates.join(", ")),
            ))
        }
    }
}
