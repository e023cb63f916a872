//! Seed 002: "IT Glue - Organization Deletion".
//!
//! An IT Glue organization is looked up (by id, or by exact name ignoring case), its
//! dependents are counted, and it is deleted only when every safeguard agrees:
//! - dependents block the deletion unless `force_delete`;
//! - `confirm_delete: true` is required; `dry_run` reports and deletes nothing;
//! - optionally (`require_psa_offboarded`), the matching PSA company must be offboarded;
//! - before a real deletion an IT Glue export of the organization is requested and
//!   awaited, and recorded in the audit trail: an IT Glue deletion cannot be undone, so
//!   the export is the only way back. Without a finished export nothing is deleted unless
//!   `force_without_export` is given.
//!
//! Deletion is asynchronous on IT Glue: after the request the workflow polls until the
//! organization is gone or the configured time has passed, and reports `deleted: true` or
//! `status: pending_deletion`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::{
    self, DependencyCounts, Export, ItemChange, ItemKind, ItemOutcome, ItemSnapshot, OffboardedCriteria,
    OperationEvent, OperationEventKind, OperationRecord, Organization, PsaKind, Workflow,
};
use crate::error::{DocError, ErrorCode, OfframpError};
use crate::operation::restore::{RestoreRegistry, Reversibility};
use crate::ports::{AuditStore, DocPlatform, Psa};
use crate::workflows::input;

pub const WORKFLOW: Workflow = Workflow::DeleteItglueOrg;
const ITEM_ORGANIZATION: ItemKind = ItemKind::ItglueOrganization;
const ITEM_EXPORT: ItemKind = ItemKind::ItglueExport;

/// IT Glue cannot undo a deletion: a rollback is refused and points at the export.
pub fn register(registry: &mut RestoreRegistry) {
    registry.register_workflow(
        WORKFLOW,
        Reversibility::Irreversible(
            "{id} is an IT Glue organization deletion, which IT Glue cannot undo; restore from the export recorded in \
             the operation (offramp audit show {id})",
        ),
    );
}

/// Seed 002's inputs, plus who asked and the export override.
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
}

/// How the workflow runs, as opposed to what it is asked to do.
#[derive(Debug, Clone)]
pub struct DeleteOrgOptions {
    /// Require the organization's PSA company to be offboarded (per `offboarded`).
    pub require_psa_offboarded: bool,
    pub offboarded: OffboardedCriteria,
    /// How long to wait for the export to finish.
    pub export_wait: Duration,
    /// How long to wait for IT Glue to finish the deletion.
    pub deletion_wait: Duration,
    /// Time between two polls.
    pub poll_interval: Duration,
}

impl Default for DeleteOrgOptions {
    fn default() -> Self {
        Self {
            require_psa_offboarded: false,
            offboarded: OffboardedCriteria::default(),
            export_wait: Duration::from_secs(300),
            deletion_wait: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
        }
    }
}

impl DeleteOrgOptions {
    /// The options as configured (`OFFRAMP_ITGLUE_*`, the offboarded criteria).
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let itglue = &settings.itglue;
        Self {
            require_psa_offboarded: itglue.require_psa_offboarded,
            offboarded: settings.offboarded.clone(),
            export_wait: itglue.export_wait,
            deletion_wait: itglue.deletion_wait,
            poll_interval: itglue.poll_interval,
        }
    }
}

pub struct DeleteOrgDeps<'a> {
    pub docs: &'a dyn DocPlatform,
    pub audit: &'a dyn AuditStore,
    /// Needed only for the PSA-offboarded policy.
    pub psa: Option<&'a dyn Psa>,
    pub options: DeleteOrgOptions,
}

// ---------------------------------------------------------------------------
// Report: seed 002 "Returned Data", plus operation_id, dry_run, status, export
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyCheck {
    /// Flexible assets (all types).
    pub assets_found: u64,
    pub configs_found: u64,
    pub documents_found: u64,
    pub blocked: bool,
    pub passwords_found: u64,
    pub contacts_found: u64,
    pub locations_found: u64,
    /// Flexible assets per type name.
    pub assets_by_type: std::collections::BTreeMap<String, u64>,
    /// Kinds that could not be counted, with why (they count as "maybe dependents").
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub not_counted: std::collections::BTreeMap<String, String>,
}

impl DependencyCheck {
    fn of(counts: &DependencyCounts, blocked: bool) -> Self {
        Self {
            assets_found: counts.flexible_assets_total(),
            configs_found: counts.configurations,
            documents_found: counts.documents,
            blocked,
            passwords_found: counts.passwords,
            contacts_found: counts.contacts,
            locations_found: counts.locations,
            assets_by_type: counts.flexible_assets.clone(),
            not_counted: counts.unknown.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteOrgError {
    pub code: ErrorCode,
    pub message: String,
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteOrgReport {
    pub success: bool,
    pub org_id: Option<String>,
    pub org_name: Option<String>,
    pub deleted: bool,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_check: Option<DependencyCheck>,
    pub warnings: Vec<String>,
    pub errors: Vec<DeleteOrgError>,
    pub operation_id: Option<String>,
    pub dry_run: bool,
    /// `planned`, `deleted`, `pending_deletion`, `blocked`, `confirmation_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The export made before the deletion: the only way back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
}

fn error(code: ErrorCode, message: impl Into<String>) -> DeleteOrgError {
    DeleteOrgError { code, message: message.into(), timestamp: domain::iso8601(domain::now()) }
}

impl DeleteOrgReport {
    fn new(org: Option<&Organization>, dry_run: bool) -> Self {
        Self {
            success: false,
            org_id: org.map(|o| o.id.clone()),
            org_name: org.map(|o| o.name.clone()),
            deleted: false,
            timestamp: domain::iso8601(domain::now()),
            dependency_check: None,
            warnings: Vec::new(),
            errors: Vec::new(),
            operation_id: None,
            dry_run,
            status: None,
            export: None,
        }
    }

    pub fn primary_error(&self) -> Option<ErrorCode> {
        self.errors.first().map(|e| e.code)
    }

    /// A report for a request that could not even be read (`InvalidInput`), or for a run
    /// that could not start (`ConfigurationError`).
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut report = Self::new(None, false);
        report.errors.push(error(code, message));
        report
    }
}

/// The seed's codes for what went wrong with the platform.
fn doc_code(e: &DocError) -> ErrorCode {
    match e {
        DocError::NotFound { .. } => ErrorCode::OrganizationNotFound,
        DocError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DocError::InvalidId { .. } => ErrorCode::InvalidIdentifier,
        DocError::Configuration { .. } => ErrorCode::ConfigurationError,
        DocError::Connection { .. } | DocError::InvalidResponse { .. } => ErrorCode::ItGlueConnectionError,
        // IT Glue answered, with a 4xx: it is reachable, it did not accept what was asked.
        DocError::Rejected { .. } => ErrorCode::ItGlueRequestRejected,
    }
}

fn doc_error(e: DocError) -> OfframpError {
    OfframpError::new(doc_code(&e), e.to_string())
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/// Run the workflow. Never panics on bad input; every outcome is a report.
pub async fn delete_itglue_org(deps: &DeleteOrgDeps<'_>, request: DeleteOrgRequest) -> DeleteOrgReport {
    let span = tracing::info_span!("operation", workflow = %WORKFLOW);
    let mut report = DeleteOrgReport::new(None, request.dry_run);
    match run(deps, &request, &mut report).instrument(span).await {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(code = %e.code(), error = %e, "organization deletion refused or failed");
            report.success = false;
            report.errors.insert(0, error(e.code(), e.to_string()));
        }
    }
    report.timestamp = domain::iso8601(domain::now());
    report
}

async fn resolve(docs: &dyn DocPlatform, request: &DeleteOrgRequest) -> Result<Organization, OfframpError> {
    // Malformed identifiers are the seed's InvalidIdentifier, not a generic InvalidInput.
    let identifier = |e: OfframpError| OfframpError::new(ErrorCode::InvalidIdentifier, e.to_string());
    let id = input::text("org_id", request.org_id.as_deref(), 64).map_err(identifier)?;
    let name = input::text("org_name", request.org_name.as_deref(), 255).map_err(identifier)?;
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
            docs.organization_by_id(&id).await.map_err(doc_error)?.ok_or_else(|| {
                OfframpError::new(ErrorCode::OrganizationNotFound, format!("no IT Glue organization has id {id}"))
            })
        }
        (None, Some(name)) => {
            let mut matches = docs.organizations_by_name(&name).await.map_err(doc_error)?;
            match matches.len() {
                0 => Err(OfframpError::new(
                    ErrorCode::OrganizationNotFound,
                    format!("no IT Glue organization is named '{name}'"),
                )),
                1 => Ok(matches.remove(0)),
                n => {
                    matches.sort_by(|a, b| a.id.len().cmp(&b.id.len()).then(a.id.cmp(&b.id)));
                    let candidates: Vec<String> = matches.iter().map(|o| format!("{} (id {})", o.name, o.id)).collect();
                    Err(OfframpError::new(
                        ErrorCode::InvalidIdentifier,
                        format!("{n} IT Glue organizations are named '{name}': {}; use org_id", candidates.join(", ")),
                    ))
                }
            }
        }
    }
}

/// Whether the organization's `psa-integration-type` (when IT Glue names one) is the PSA
/// Offramp works with: a `psa-id` means nothing against another PSA's ids. IT Glue calls
/// ConnectWise Manage `manage`; the HaloPSA name is UNCONFIRMED, so any name containing
/// `halo` is taken.
fn integration_matches(org: &Organization, kind: PsaKind) -> bool {
    let Some(integration) = org.psa_integration.as_deref() else { return true };
    let integration = integration.trim().to_ascii_lowercase();
    match kind {
        PsaKind::ConnectWise => integration == "manage" || integration.contains("connectwise"),
        PsaKind::Autotask => integration == "autotask",
        PsaKind::Halo => integration.contains("halo"),
    }
}

/// The PSA-offboarded policy: `Ok(())` when it allows the deletion.
async fn check_policy(deps: &DeleteOrgDeps<'_>, org: &Organization) -> Result<(), OfframpError> {
    if !deps.options.require_psa_offboarded {
        return Ok(());
    }
    let blocked = |why: String| OfframpError::new(ErrorCode::DeletionBlocked, why);
    let psa = deps
        .psa
        .ok_or_else(|| OfframpError::configuration("the PSA-offboarded policy is on but no PSA is configured"))?;
    let Some(psa_id) = &org.psa_id else {
        return Err(blocked(format!(
            "policy: {} is not linked to a PSA company, so it cannot be shown to be offboarded; nothing was deleted",
            org.name
        )));
    };
    if !integration_matches(org, psa.kind()) {
        return Err(blocked(format!(
            "policy: {} is synced with a {} PSA, not with the configured {}; nothing was deleted",
            org.name,
            org.psa_integration.as_deref().unwrap_or("?"),
            psa.kind()
        )));
    }
    let company = psa.company_by_id(psa_id).await?.ok_or_else(|| {
        blocked(format!("policy: the linked {} company {psa_id} does not exist; nothing was deleted", psa.kind()))
    })?;
    let mut company = company;
    if deps.options.offboarded.contract_ended {
        company.contracts = Some(psa.contract_summary(&company.id, chrono::Utc::now().date_naive()).await?);
    }
    if deps.options.offboarded.matches(&company) {
        Ok(())
    } else {
        Err(blocked(format!(
            "policy: {} company {} ({}) is not offboarded ({}); nothing was deleted",
            psa.kind(),
            company.name,
            company.id,
            deps.options.offboarded.describe()
        )))
    }
}

fn change(operation_id: &str, item_type: ItemKind, id: &str, name: &str, after: serde_json::Value) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type,
        item_id: id.to_string(),
        item_name: name.to_string(),
        outcome: ItemOutcome::Changed,
        before: serde_json::Value::Null,
        after: Some(after),
        error_code: None,
        error_message: None,
        at: domain::now(),
    }
}

async fn run(
    deps: &DeleteOrgDeps<'_>,
    request: &DeleteOrgRequest,
    report: &mut DeleteOrgReport,
) -> Result<(), OfframpError> {
    let reason = input::text("reason", request.reason.as_deref(), 1000)?;
    let initiated_by =
        input::text("initiated_by", request.initiated_by.as_deref(), 200)?.unwrap_or_else(|| "unknown".into());
    let org = resolve(deps.docs, request).await?;
    report.org_id = Some(org.id.clone());
    report.org_name = Some(org.name.clone());
    check_policy(deps, &org).await?;

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

    let plan_only = request.dry_run || blocked || !request.confirm_delete;
    let operation_id = domain::new_operation_id();
    let record = OperationRecord {
        operation_id: operation_id.clone(),
        workflow: WORKFLOW,
        psa: "itglue".into(),
        client_id: org.id.clone(),
        client_name: org.name.clone(),
        initiated_by,
        reason,
        dry_run: plan_only,
        plan_hash: None,
        created_at: domain::now(),
        input: json!({ "request": request, "policy_psa_offboarded": deps.options.require_psa_offboarded }),
        parent_operation_id: None,
    };
    deps.audit.create_operation(&record).await?;
    report.operation_id = Some(operation_id.clone());
    let detail = json!({ "organization": org, "dependencies": counts });

    if plan_only {
        let (status, refusal) = if request.dry_run {
            ("planned", None)
        } else if blocked {
            (
                "blocked",
                Some(error(
                    ErrorCode::DeletionBlocked,
                    format!(
                        "{} has dependent records (see dependency_check); nothing was deleted. Use force_delete to delete it with them",
                        org.name
                    ),
                )),
            )
        } else {
            (
                "confirmation_required",
                Some(error(
                    ErrorCode::ConfirmationRequired,
                    "confirm_delete: true is required to delete an organization; nothing was deleted",
                )),
            )
        };
        report.status = Some(status.into());
        report.success = refusal.is_none();
        report.errors.extend(refusal);
        if request.dry_run {
            report.warnings.push(if blocked {
                format!(
                    "Dry run: nothing was deleted. A real run would be blocked by {}'s dependents (unless force_delete).",
                    org.name
                )
            } else {
                format!("Dry run: nothing was deleted. A confirmed run would export {0}, then delete it.", org.name)
            });
        }
        deps.audit
            .append_event(&OperationEvent::new(
                &operation_id,
                OperationEventKind::Planned,
                json!({ "status": status, "detail": detail }),
            ))
            .await?;
        return Ok(());
    }

    // Snapshot what is about to go, then the export, then the deletion.
    deps.audit
        .put_snapshots(&[ItemSnapshot {
            operation_id: operation_id.clone(),
            item_type: ITEM_ORGANIZATION,
            item_id: org.id.clone(),
            item_name: org.name.clone(),
            state: detail.clone(),
            planned_action: "delete".into(),
        }])
        .await?;
    deps.audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Started, detail)).await?;

    let export = wait_for_export(deps, &org, request.force_without_export, report).await;
    let export = match export {
        Ok(export) => export,
        Err(e) => {
            let detail = json!({ "code": e.code(), "message": e.to_string() });
            deps.audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Failed, detail)).await?;
            report.status = Some("blocked".into());
            return Err(e);
        }
    };
    if let Some(export) = &export {
        deps.audit.put_changes(&[change(&operation_id, ITEM_EXPORT, &export.id, &org.name, json!(export))]).await?;
    }

    match deps.docs.delete_organization(&org.id).await {
        Ok(()) => {}
        // Gone already: a retried request whose first attempt went through, or someone
        // deleted it meanwhile. The poll below confirms it.
        Err(DocError::NotFound { .. }) => {
            report.warnings.push(format!("IT Glue no longer knew {} when the deletion was sent", org.name));
        }
        Err(e) => {
            // IT Glue refusing this organization (422: it cannot be deleted) is a block by
            // the platform's own policy, not a connection problem.
            let e = match e {
                DocError::Rejected { .. } => OfframpError::new(
                    ErrorCode::DeletionBlocked,
                    format!("IT Glue refused to delete {}: {e}; nothing was deleted", org.name),
                ),
                other => doc_error(other),
            };
            let detail = json!({ "code": e.code(), "message": e.to_string() });
            deps.audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Failed, detail)).await?;
            report.export = export;
            return Err(e);
        }
    }
    // From here on the deletion is a fact: an audit write that fails is reported beside it,
    // never instead of it.
    report.success = true;
    report.status = Some("pending_deletion".into());
    report.export = export.clone();
    tracing::info!(org_id = %org.id, "deletion requested");
    let requested = change(&operation_id, ITEM_ORGANIZATION, &org.id, &org.name, json!({ "deletion_requested": true }));
    if let Err(e) = deps.audit.put_changes(&[requested]).await {
        audit_failed(report, &org, e.into());
    }

    // Deletion is asynchronous: poll until the organization is gone or time is up.
    let deadline = tokio::time::Instant::now() + deps.options.deletion_wait;
    let gone = loop {
        match deps.docs.organization_by_id(&org.id).await {
            Ok(None) => break true,
            Ok(Some(_)) => {}
            Err(e) => report.warnings.push(format!("Could not check the deletion: {e}")),
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(deps.options.poll_interval).await;
    };
    report.deleted = gone;
    report.status = Some(if gone { "deleted" } else { "pending_deletion" }.into());
    if !gone {
        report.warnings.push(format!(
            "IT Glue accepted the deletion but {} is still visible after {} s: deletion is asynchronous on IT Glue. Check again later.",
            org.name,
            deps.options.deletion_wait.as_secs()
        ));
    }
    let detail = json!({ "deleted": gone, "export": export });
    if let Err(e) =
        deps.audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Completed, detail)).await
    {
        audit_failed(report, &org, e.into());
    }
    Ok(())
}

/// The deletion went through but the trail could not record it: say so loudly, keep the
/// report true to what happened.
fn audit_failed(report: &mut DeleteOrgReport, org: &Organization, e: OfframpError) {
    tracing::error!(org_id = %org.id, error = %e, "deletion requested but not recorded in the audit trail");
    report.success = false;
    report.errors.push(error(
        ErrorCode::AuditStoreError,
        format!("{} was marked for deletion, but the audit trail could not record it: {e}", org.name),
    ));
}

/// Request the export and wait for it. `Ok(None)`: no export, deletion forced anyway.
async fn wait_for_export(
    deps: &DeleteOrgDeps<'_>,
    org: &Organization,
    force_without_export: bool,
    report: &mut DeleteOrgReport,
) -> Result<Option<Export>, OfframpError> {
    let fail = |why: String, report: &mut DeleteOrgReport| {
        if force_without_export {
            report.warnings.push(format!("{why}; deleting anyway (force_without_export): this cannot be undone"));
            Ok(None)
        } else {
            Err(OfframpError::new(
                ErrorCode::DeletionBlocked,
                format!(
                    "{why}; nothing was deleted. The export is the only way back after a deletion (force_without_export to delete without one)"
                ),
            ))
        }
    };
    let mut export = match deps.docs.request_export(&org.id).await {
        Ok(export) => export,
        Err(e) => return fail(format!("The export of {} could not be requested: {e}", org.name), report),
    };
    let deadline = tokio::time::Instant::now() + deps.options.export_wait;
    loop {
        if export.is_done() {
            report.export = Some(export.clone());
            return Ok(Some(export));
        }
        if export.has_failed() {
            report.export = Some(export.clone());
            return fail(format!("The export {} of {} failed ({})", export.id, org.name, export.status), report);
        }
        if tokio::time::Instant::now() >= deadline {
            report.export = Some(export.clone());
            return fail(
                format!(
                    "The export {} of {} was not ready after {} s (status {})",
                    export.id,
                    org.name,
                    deps.options.export_wait.as_secs(),
                    export.status
                ),
                report,
            );
        }
        tokio::time::sleep(deps.options.poll_interval).await;
        export = match deps.docs.export(&export.id).await {
            Ok(export) => export,
            Err(e) => return fail(format!("The export of {} could not be checked: {e}", org.name), report),
        };
    }
}

// ---------------------------------------------------------------------------
// Scheduled mode
// ---------------------------------------------------------------------------

/// One PSA company the scheduled cleanup looked at and left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupSkip {
    pub company_id: String,
    pub company_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub success: bool,
    pub timestamp: String,
    pub dry_run: bool,
    /// Companies offboarded for at least this many days were considered.
    pub offboarded_days: u64,
    /// One seed-002 report per organization processed.
    pub organizations: Vec<DeleteOrgReport>,
    pub skipped: Vec<CleanupSkip>,
    pub errors: Vec<DeleteOrgError>,
}

/// Since when a company counts as offboarded: the first completed Offramp deactivation
/// (configurations or contacts) recorded for it, else the end of its last contract.
/// `None` when neither is known: such a company is never cleaned up automatically.
async fn offboarded_since(
    audit: &dyn AuditStore,
    psa: &dyn Psa,
    company: &domain::Company,
) -> Result<Option<chrono::NaiveDate>, OfframpError> {
    let filter = domain::OperationFilter {
        client_id: Some(company.id.clone()),
        psa: Some(psa.kind().as_str().to_string()),
        limit: 1000,
    };
    let first = audit
        .list_operations(&filter)
        .await?
        .into_iter()
        .filter(|o| {
            !o.operation.dry_run
                && matches!(o.operation.workflow, Workflow::DeactivateConfigs | Workflow::DeactivateContacts)
                && o.last_event == Some(OperationEventKind::Completed)
        })
        .map(|o| o.operation.created_at.date_naive())
        .min();
    if first.is_some() {
        return Ok(first);
    }
    let contracts = match &company.contracts {
        Some(summary) => summary.clone(),
        None => psa.contract_summary(&company.id, domain::now().date_naive()).await?,
    };
    Ok(if contracts.all_ended() { contracts.last_end } else { None })
}

/// The monthly cleanup: for every PSA company offboarded for at least `offboarded_days`,
/// the IT Glue organization linked to it (same name, and IT Glue's `psa-id` naming the
/// company: a name match alone is never enough) is deleted under the same rules as a
/// manual run, never forced.
pub async fn cleanup_offboarded_organizations(
    deps: &DeleteOrgDeps<'_>,
    offboarded_days: u64,
    dry_run: bool,
    initiated_by: &str,
) -> CleanupReport {
    let mut report = CleanupReport {
        success: true,
        timestamp: domain::iso8601(domain::now()),
        dry_run,
        offboarded_days,
        organizations: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    let Some(psa) = deps.psa else {
        report.success = false;
        report.errors.push(error(ErrorCode::ConfigurationError, "the scheduled cleanup needs a PSA"));
        return report;
    };
    let companies = match crate::workflows::offboarded::offboarded_companies(psa, &deps.options.offboarded).await {
        Ok(companies) => companies,
        Err(e) => {
            report.success = false;
            report.errors.push(error(e.code(), e.to_string()));
            return report;
        }
    };
    // One listing for the whole run: the name filter cannot be trusted (see the IT Glue
    // adapter), and a listing per company would spend the request budget many times over.
    let organizations = match deps.docs.organizations().await {
        Ok(organizations) => organizations,
        Err(e) => {
            report.success = false;
            report.errors.push(error(doc_code(&e), format!("listing IT Glue organizations: {e}")));
            return report;
        }
    };
    let today = domain::now().date_naive();
    for company in companies {
        let skip =
            |reason: String| CleanupSkip { company_id: company.id.clone(), company_name: company.name.clone(), reason };
        let since = match offboarded_since(deps.audit, psa, &company).await {
            Ok(Some(since)) => since,
            Ok(None) => {
                report
                    .skipped
                    .push(skip("offboarding date unknown (no completed Offramp run, no ended contract)".into()));
                continue;
            }
            Err(e) => {
                report.errors.push(error(e.code(), format!("{} ({}): {e}", company.name, company.id)));
                continue;
            }
        };
        let days = (today - since).num_days().max(0) as u64;
        if days < offboarded_days {
            report.skipped.push(skip(format!("offboarded {days} day(s) ago, fewer than {offboarded_days}")));
            continue;
        }
        let wanted = company.name.trim().to_lowercase();
        let linked: Vec<Organization> = organizations
            .iter()
            .filter(|o| {
                o.name.trim().to_lowercase() == wanted
                    && o.psa_id.as_deref() == Some(company.id.as_str())
                    && integration_matches(o, psa.kind())
            })
            .cloned()
            .collect();
        let org = match linked.as_slice() {
            [] => {
                report.skipped.push(skip("no IT Glue organization of that name is linked to this company".into()));
                continue;
            }
            [org] => org.clone(),
            _ => {
                report.skipped.push(skip("several IT Glue organizations are linked to this company".into()));
                continue;
            }
        };
        let request = DeleteOrgRequest {
            org_id: Some(org.id.clone()),
            confirm_delete: true,
            dry_run,
            reason: Some(format!("Scheduled cleanup: {} offboarded {days} days ago", company.name)),
            initiated_by: Some(initiated_by.to_string()),
            ..DeleteOrgRequest::default()
        };
        let result = delete_itglue_org(deps, request).await;
        if !result.success && result.primary_error() != Some(ErrorCode::DeletionBlocked) {
            report.success = false;
        }
        report.organizations.push(result);
    }
    if !report.errors.is_empty() {
        report.success = false;
    }
    report
}
