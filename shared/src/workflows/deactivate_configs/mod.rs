//! Configuration deactivation (docs/workflows.md#000-configuration-deactivation): every
//! configuration of an offboarded client set inactive, through the operation engine
//! (`crate::operation`): planned, hashed, gated, leased, snapshotted, applied with bounded
//! concurrency, recorded item by item, resumable and reversible. This module holds only
//! what is particular to configurations.

mod execute;
mod gated;
mod plan;
pub mod report;
mod restore;
mod resume;
mod standing;
pub mod sweep;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::{self, Company, OffboardedCriteria, OperationRecord, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Admission, Consent, Deadline, IdempotencyOptions, LeaseOptions, sort_key};
use crate::ports::{AuditStore, Progress, Psa, SettingsStore};
use crate::workflows::input;

pub use plan::{ConfigBlastRadius, ConfigGuardLimit, GUARD_SOURCE_OPTIONS};
pub use report::{ConfigDeactivationReport, ConfigEntry, ReportError, Statistics};
pub use restore::register;
pub use standing::OffboardedStanding;

pub const WORKFLOW: Workflow = Workflow::DeactivateConfigs;

/// The workflow's input: the seed's parameters, plus who asked, an approval, a resume id,
/// an idempotency key and the lease override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivateConfigsRequest {
    #[serde(default, deserialize_with = "input::string_or_number", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarded_statuses: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub require_approval: bool,
    #[serde(default)]
    pub include_archived: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    /// Apply a plan that was returned with `approval_required` (or shown by the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Continue an interrupted operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Run even though the blast-radius guard would stop it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_blast_radius: bool,
    /// The same key with the same request returns the first run's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Take the client's lease from a run that holds it (a run known to be dead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_lease: bool,
    /// Deactivate even though the client does not meet the configured offboarded criteria
    /// (or none is configured). Recorded with the operation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_active_client: bool,
    /// The client offboarding this run is a step of (its chain's parent operation): recorded
    /// as the operation's `parent_operation_id`, so the trail links every step to the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_operation_id: Option<String>,
}

pub use crate::workflows::input::Approval;

/// How the workflow runs, as opposed to what it is asked to do.
#[derive(Clone)]
pub struct ConfigDeactivationOptions {
    /// Configuration updates in flight at once (the HTTP layer also caps and rate-limits).
    pub concurrency: usize,
    /// Item change records written to the audit trail per batch.
    pub audit_batch: usize,
    /// Blast-radius guard: used only without `guard_settings`.
    pub max_configurations: u64,
    /// Where the guard's limit is read for each run: the client's
    /// `offramp_guard_max_configurations`, else the global one, else its default.
    pub guard_settings: Option<Arc<dyn SettingsStore>>,
    /// What makes a client offboarded (the sweep's criteria, from the settings): a client
    /// that does not meet them is refused unless the request says `allow_active_client`.
    /// Empty (the default): every client is refused, with how to configure a criterion.
    pub offboarded: OffboardedCriteria,
    pub lease: LeaseOptions,
    pub idempotency: IdempotencyOptions,
    /// When the invocation stops sending changes (a Lambda's); none for the CLI.
    pub deadline: Deadline,
}

impl Default for ConfigDeactivationOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            audit_batch: 25,
            max_configurations: 5000,
            guard_settings: None,
            offboarded: OffboardedCriteria::default(),
            lease: LeaseOptions::default(),
            idempotency: IdempotencyOptions::default(),
            deadline: Deadline::none(),
        }
    }
}

// By hand: a settings store is not `Debug`, and whether one is used is what matters.
impl std::fmt::Debug for ConfigDeactivationOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDeactivationOptions")
            .field("concurrency", &self.concurrency)
            .field("audit_batch", &self.audit_batch)
            .field("max_configurations", &self.max_configurations)
            .field("guard_settings", &self.guard_settings.as_ref().map(|_| "organization settings"))
            .field("offboarded", &self.offboarded)
            .field("deadline", &self.deadline)
            .finish()
    }
}

pub struct Deps<'a> {
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
    pub progress: &'a dyn Progress,
    pub options: ConfigDeactivationOptions,
}

/// Run the workflow. Never panics on bad input; every outcome is a report.
pub async fn deactivate_configs(deps: &Deps<'_>, request: DeactivateConfigsRequest) -> ConfigDeactivationReport {
    let payload = serde_json::to_value(&request).unwrap_or_default();
    let key = request.idempotency_key.clone();
    let run = async {
        let dry_run = request.dry_run;
        match run(deps, request).await {
            Ok(report) => report,
            Err(Failure { error, client, operation_id }) => {
                tracing::warn!(code = %error.code(), error = %error, "configuration deactivation refused or failed");
                ConfigDeactivationReport::failure(&error, client.as_ref(), operation_id, dry_run)
            }
        }
    };
    operation::idempotent(deps.audit, deps.options.idempotency, WORKFLOW, key.as_deref(), &payload, run).await
}

/// An error together with what was known when it happened.
pub(super) struct Failure {
    pub error: OfframpError,
    pub client: Option<Company>,
    pub operation_id: Option<String>,
}

impl<E: Into<OfframpError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { error: error.into(), client: None, operation_id: None }
    }
}

impl Failure {
    fn at(error: impl Into<OfframpError>, client: &Company, operation_id: Option<&str>) -> Self {
        Failure { error: error.into(), client: Some(client.clone()), operation_id: operation_id.map(str::to_string) }
    }
}

pub(super) struct Validated {
    client_id: Option<String>,
    client_name: Option<String>,
    offboarded_statuses: Vec<String>,
    reason: Option<String>,
    initiated_by: String,
    consent: Consent,
    operation_id: Option<String>,
}

/// The request's checks, as a run makes them before it reads anything (`offramp::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn check_request(request: &DeactivateConfigsRequest) -> Result<(), OfframpError> {
    validate(request).map(|_| ())
}

fn validate(request: &DeactivateConfigsRequest) -> Result<Validated, OfframpError> {
    let client_id = input::identifier("client_id", request.client_id.as_deref())?;
    let client_name = input::text(input::CLIENT_NAME, request.client_name.as_deref())?;
    let operation_id = request.operation_id.as_deref().map(input::operation_id).transpose()?;
    if operation_id.is_none() {
        match (&client_id, &client_name) {
            (None, None) => return Err(OfframpError::invalid_input("either client_id or client_name is required")),
            (Some(_), Some(_)) => return Err(OfframpError::invalid_input("give client_id or client_name, not both")),
            _ => {}
        }
    }
    input::idempotency_key(request.idempotency_key.as_deref())?;
    let mut offboarded_statuses = Vec::new();
    for status in request.offboarded_statuses.iter().flatten() {
        match input::text(input::OFFBOARDED_STATUS, Some(status))? {
            Some(status) => offboarded_statuses.push(status),
            None => return Err(OfframpError::invalid_input("offboarded_statuses contains an empty status")),
        }
    }
    Ok(Validated {
        client_id,
        client_name,
        offboarded_statuses,
        reason: input::text(input::REASON, request.reason.as_deref())?,
        initiated_by: input::text(input::INITIATED_BY, request.initiated_by.as_deref())?
            .unwrap_or_else(|| "unknown".into()),
        consent: consent(request)?,
        operation_id,
    })
}

/// The seed's `require_approval` / `approval{plan_hash, approved_by}` as the engine's consent.
fn consent(request: &DeactivateConfigsRequest) -> Result<Consent, OfframpError> {
    let approval = request.approval.as_ref();
    input::approval_consent(approval, request.dry_run, request.require_approval, request.override_blast_radius)
}

async fn resolve_client(psa: &dyn Psa, v: &Validated) -> Result<Company, OfframpError> {
    if let Some(id) = &v.client_id {
        return psa.company_by_id(id).await?.ok_or_else(|| {
            OfframpError::new(ErrorCode::ClientNotFound, format!("no {} company has id {id}", psa.kind()))
        });
    }
    let name = v.client_name.as_deref().unwrap_or_default();
    let mut matches = psa.companies_by_name(name).await?;
    match matches.len() {
        0 => Err(OfframpError::new(ErrorCode::ClientNotFound, format!("no {} company is named '{name}'", psa.kind()))),
        1 => Ok(matches.remove(0)),
        _ => {
            matches.sort_by_key(|c| sort_key(&c.id));
            let candidates: Vec<String> = matches.iter().map(|c| format!("{} (id {})", c.name, c.id)).collect();
            Err(OfframpError::new(
                ErrorCode::ClientAmbiguous,
                format!("{} companies are named '{name}': {}; use client_id", matches.len(), candidates.join(", ")),
            ))
        }
    }
}

async fn run(deps: &Deps<'_>, request: DeactivateConfigsRequest) -> Result<ConfigDeactivationReport, Failure> {
    let v = validate(&request)?;
    if let Some(operation_id) = v.operation_id.clone() {
        let span = tracing::info_span!("operation", operation_id = %operation_id, workflow = %WORKFLOW, resumed = true);
        return resume::resume(deps, &v, &operation_id, request.break_lease).instrument(span).await;
    }
    let client = resolve_client(deps.psa, &v).await?;
    let operation_id = domain::new_operation_id();
    let span =
        tracing::info_span!("operation", operation_id = %operation_id, workflow = %WORKFLOW, client_id = %client.id);
    plan_and_gate(deps, &request, v, client, operation_id).instrument(span).await
}

/// Plan, then hand the plan to the engine: its gates decide whether it is answered with
/// or applied under the client's lease.
async fn plan_and_gate(
    deps: &Deps<'_>,
    request: &DeactivateConfigsRequest,
    v: Validated,
    client: Company,
    operation_id: String,
) -> Result<ConfigDeactivationReport, Failure> {
    let fail = |error: OfframpError, recorded: bool| Failure::at(error, &client, recorded.then_some(&*operation_id));
    let standing = standing::check(
        deps.psa,
        &client,
        &deps.options.offboarded,
        &v.offboarded_statuses,
        request.allow_active_client,
    )
    .await
    .map_err(|e| fail(e, false))?;
    // Before anything else is read: a guard setting that cannot be read stops the run,
    // rather than letting it go ahead with a guessed limit.
    let guard = plan::guard_limit(deps, &client).await.map_err(|e| fail(e, false))?;
    let configs =
        deps.psa.list_configurations(&client.id, request.include_archived).await.map_err(|e| fail(e.into(), false))?;
    if configs.is_empty() {
        let message = format!("client {} ({}) has no configurations", client.name, client.id);
        return Err(fail(OfframpError::new(ErrorCode::ConfigNotFound, message), false));
    }
    let plan = plan::Plan::new(deps.psa.kind().as_str(), &client, request.include_archived, configs);
    let blast = guard.check(&plan, request.override_blast_radius);
    let record = operation_record(deps, request, &v, &client, &operation_id, &plan, &guard, &standing);
    let admission = Admission { consent: &v.consent, lease: deps.options.lease, break_lease: request.break_lease };
    let gated = gated::ConfigPlan { deps, client: client.clone(), plan, guard, blast, standing };
    operation::gate_then_apply(deps.audit, admission, record, gated).await.map_err(|s| fail(s.error, s.recorded))
}

#[allow(clippy::too_many_arguments)]
fn operation_record(
    deps: &Deps<'_>,
    request: &DeactivateConfigsRequest,
    v: &Validated,
    client: &Company,
    operation_id: &str,
    plan: &plan::Plan,
    guard: &ConfigGuardLimit,
    standing: &OffboardedStanding,
) -> OperationRecord {
    // The request as given, plus the guard's limit and where it came from, and the client's
    // standing against the offboarded criteria (with `allow_active_client`), so a run can be
    // explained later even after the settings changed. The request's fields stay at the top
    // level (resume reads `include_archived` there).
    let mut input = serde_json::to_value(request).unwrap_or_default();
    if let Some(fields) = input.as_object_mut() {
        fields.insert("blast_radius_guard".into(), json!(guard));
        fields.insert("offboarded".into(), json!(standing));
    }
    OperationRecord {
        operation_id: operation_id.to_string(),
        workflow: WORKFLOW,
        psa: deps.psa.kind().as_str().into(),
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        dry_run: request.dry_run,
        plan_hash: Some(plan.hash.clone()),
        created_at: domain::now(),
        input,
        parent_operation_id: request.parent_operation_id.clone(),
    }
}

#[cfg(test)]
mod tests;
