//! Seed 000: "PSA - Offboarded Client Configuration Deactivation".
//!
//! Every configuration of an offboarded client is set inactive. The run is planned
//! first; the plan is hashed (SHA-256 of its canonical JSON) so an approval binds to
//! exactly what was reviewed; the state of every listed configuration is snapshotted
//! in the audit trail before the first change; changes go out with bounded
//! concurrency and are recorded item by item; an interrupted run is continued by its
//! operation id and touches nothing twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::domain::{
    self, Company, ConfigState, Configuration, ItemChange, ItemOutcome, ItemSnapshot, OperationDetail, OperationEvent,
    OperationEventKind, OperationRecord,
};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AuditStore, Progress, Psa, SettingsStore};
use crate::workflows::{input, org_settings};

pub const WORKFLOW: &str = "deactivate-configs";
const ITEM_TYPE: &str = "configuration";
const ACTION_DEACTIVATE: &str = "deactivate";
const ACTION_SKIP: &str = "skip";
/// Snapshots written to the audit trail per call.
const SNAPSHOT_CHUNK: usize = 500;

/// The workflow's input: seed 000's parameters, plus who asked, an approval and a resume id.
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub plan_hash: String,
    pub approved_by: String,
}

/// How the workflow runs, as opposed to what it is asked to do.
#[derive(Clone)]
pub struct ConfigDeactivationOptions {
    /// Configuration updates in flight at once (the HTTP layer also caps and rate-limits).
    pub concurrency: usize,
    /// Item change records written to the audit trail per batch.
    pub audit_batch: usize,
    /// Blast-radius guard: a run that would deactivate more configurations than this stops
    /// with its plan unless the request overrides it. Used only without `guard_settings`.
    pub max_configurations: u64,
    /// Where the guard's limit is read for each run: the client's
    /// `offramp_guard_max_configurations`, else the global one, else its default. It is read
    /// inside the run because only then is the client known (it may be given by name, and a
    /// sweep runs many clients with one set of options).
    pub guard_settings: Option<Arc<dyn SettingsStore>>,
}

impl Default for ConfigDeactivationOptions {
    fn default() -> Self {
        Self { concurrency: 8, audit_batch: 25, max_configurations: 5000, guard_settings: None }
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
            .finish()
    }
}

/// Where the guard's limit came from when no settings store is used: the caller's options.
pub const GUARD_SOURCE_OPTIONS: &str = "options";

/// The blast-radius guard's figures, shown whether or not it stopped the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigBlastRadius {
    pub configs_to_deactivate: u64,
    pub max_configurations: u64,
    /// Where `max_configurations` came from: `client`, `global`, `default` (organization
    /// settings) or `options` (set by the caller).
    #[serde(default)]
    pub limit_source: String,
    pub exceeded: bool,
    pub overridden: bool,
}

/// The guard's limit a run used, recorded in the operation's input as `blast_radius_guard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigGuardLimit {
    pub max_configurations: u64,
    pub source: String,
}

/// The limit for `client`: from the organization settings when the options carry a store,
/// else the options' own value.
async fn guard_limit(deps: &Deps<'_>, client: &Company) -> Result<ConfigGuardLimit, OfframpError> {
    match &deps.options.guard_settings {
        Some(store) => {
            let (max_configurations, source) =
                org_settings::guard_max_configurations(store.as_ref(), deps.psa.kind().as_str(), &client.id).await?;
            Ok(ConfigGuardLimit { max_configurations, source })
        }
        None => Ok(ConfigGuardLimit {
            max_configurations: deps.options.max_configurations,
            source: GUARD_SOURCE_OPTIONS.into(),
        }),
    }
}

pub struct Deps<'a> {
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
    pub progress: &'a dyn Progress,
    pub options: ConfigDeactivationOptions,
}

// ---------------------------------------------------------------------------
// Report (seed 000 "Returned Data", plus operation_id, dry_run, plan_hash)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    pub configs_found: u64,
    pub configs_deactivated: u64,
    pub configs_skipped: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub config_id: String,
    pub config_name: String,
    pub status: String,
    pub previous_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    pub code: ErrorCode,
    pub message: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDeactivationReport {
    pub success: bool,
    /// Present only when the run stopped for approval: `approval_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub operation_id: Option<String>,
    pub dry_run: bool,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub timestamp: String,
    pub statistics: Statistics,
    pub configs: Vec<ConfigEntry>,
    pub warnings: Vec<String>,
    pub errors: Vec<ReportError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<ConfigBlastRadius>,
}

impl ConfigDeactivationReport {
    /// A report for a run that ended on `error` before (or instead of) changing anything.
    pub fn failure(
        error: &OfframpError,
        client: Option<&Company>,
        operation_id: Option<String>,
        dry_run: bool,
    ) -> Self {
        let now = domain::now();
        Self {
            success: false,
            status: None,
            operation_id,
            dry_run,
            client_id: client.map(|c| c.id.clone()),
            client_name: client.map(|c| c.name.clone()),
            timestamp: domain::iso8601(now),
            statistics: Statistics::default(),
            configs: Vec::new(),
            warnings: Vec::new(),
            errors: vec![ReportError {
                code: error.code(),
                message: error.to_string(),
                timestamp: domain::iso8601(now),
                config_id: None,
            }],
            plan_hash: None,
            blast_radius: None,
        }
    }

    /// The most significant error code, for an exit status.
    pub fn primary_error(&self) -> Option<ErrorCode> {
        self.errors
            .iter()
            .map(|e| e.code)
            .find(|c| *c != ErrorCode::ConfigUpdateFailed)
            .or(self.errors.first().map(|e| e.code))
    }
}

// ---------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PlanItem {
    config_id: String,
    status_id: Option<String>,
    status: String,
    action: &'static str,
}

/// What a run would do, in a canonical form: the hash of this is the plan hash.
#[derive(Debug, Clone, Serialize)]
struct CanonicalPlan<'a> {
    workflow: &'static str,
    psa: &'static str,
    client_id: &'a str,
    include_archived: bool,
    /// Sorted by configuration id (numerically where ids are numbers).
    items: Vec<PlanItem>,
}

struct Plan {
    configs: Vec<Configuration>,
    hash: String,
}

fn sort_key(id: &str) -> (u8, u64, String) {
    match id.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, id.to_string()),
    }
}

fn planned_action(config: &Configuration) -> &'static str {
    if config.status.state == ConfigState::Active { ACTION_DEACTIVATE } else { ACTION_SKIP }
}

fn make_plan(psa: &dyn Psa, client: &Company, include_archived: bool, mut configs: Vec<Configuration>) -> Plan {
    configs.sort_by_key(|c| sort_key(&c.id));
    let canonical = CanonicalPlan {
        workflow: WORKFLOW,
        psa: psa.kind().as_str(),
        client_id: &client.id,
        include_archived,
        items: configs
            .iter()
            .map(|c| PlanItem {
                config_id: c.id.clone(),
                status_id: c.status.id.clone(),
                status: c.status.name.clone(),
                action: planned_action(c),
            })
            .collect(),
    };
    // serde_json writes struct fields in declaration order and the items are sorted,
    // so the same plan always serialises to the same bytes.
    let bytes = serde_json::to_vec(&canonical).expect("plan serialises");
    let hash = hex::encode(Sha256::digest(&bytes));
    Plan { configs, hash }
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/// Run the workflow. Never panics on bad input; every outcome is a report.
pub async fn deactivate_configs(deps: &Deps<'_>, request: DeactivateConfigsRequest) -> ConfigDeactivationReport {
    let dry_run = request.dry_run;
    match run(deps, request).await {
        Ok(report) => report,
        Err(Failure { error, client, operation_id }) => {
            tracing::warn!(code = %error.code(), error = %error, "configuration deactivation refused or failed");
            ConfigDeactivationReport::failure(&error, client.as_ref(), operation_id, dry_run)
        }
    }
}

/// An error together with what was known when it happened.
struct Failure {
    error: OfframpError,
    client: Option<Company>,
    operation_id: Option<String>,
}

impl<E: Into<OfframpError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { error: error.into(), client: None, operation_id: None }
    }
}

struct Validated {
    client_id: Option<String>,
    client_name: Option<String>,
    offboarded_statuses: Vec<String>,
    reason: Option<String>,
    initiated_by: String,
    approval: Option<Approval>,
    operation_id: Option<String>,
}

fn validate(request: &DeactivateConfigsRequest) -> Result<Validated, OfframpError> {
    let client_id = input::identifier("client_id", request.client_id.as_deref())?;
    let client_name = input::text("client_name", request.client_name.as_deref(), 200)?;
    let operation_id = request.operation_id.as_deref().map(input::operation_id).transpose()?;
    if operation_id.is_none() {
        match (&client_id, &client_name) {
            (None, None) => return Err(OfframpError::invalid_input("either client_id or client_name is required")),
            (Some(_), Some(_)) => {
                return Err(OfframpError::invalid_input("give client_id or client_name, not both"));
            }
            _ => {}
        }
    }
    let mut offboarded_statuses = Vec::new();
    for status in request.offboarded_statuses.iter().flatten() {
        match input::text("offboarded_statuses[]", Some(status), 100)? {
            Some(status) => offboarded_statuses.push(status),
            None => return Err(OfframpError::invalid_input("offboarded_statuses contains an empty status")),
        }
    }
    let approval = match &request.approval {
        Some(approval) => Some(Approval {
            plan_hash: input::plan_hash(&approval.plan_hash)?,
            approved_by: input::text("approval.approved_by", Some(&approval.approved_by), 200)?
                .ok_or_else(|| OfframpError::invalid_input("approval.approved_by is required"))?,
        }),
        None => None,
    };
    if approval.is_some() && request.dry_run {
        return Err(OfframpError::invalid_input("an approval applies a plan; it cannot be combined with dry_run"));
    }
    Ok(Validated {
        client_id,
        client_name,
        offboarded_statuses,
        reason: input::text("reason", request.reason.as_deref(), 1000)?,
        initiated_by: input::text("initiated_by", request.initiated_by.as_deref(), 200)?
            .unwrap_or_else(|| "unknown".into()),
        approval,
        operation_id,
    })
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
        return resume(deps, &v, &operation_id).await;
    }
    let client = resolve_client(deps.psa, &v).await?;
    let operation_id = domain::new_operation_id();
    let span =
        tracing::info_span!("operation", operation_id = %operation_id, workflow = WORKFLOW, client_id = %client.id);
    plan_and_apply(deps, &request, v, client, operation_id).instrument(span).await
}

async fn plan_and_apply(
    deps: &Deps<'_>,
    request: &DeactivateConfigsRequest,
    v: Validated,
    client: Company,
    operation_id: String,
) -> Result<ConfigDeactivationReport, Failure> {
    let fail = |error: OfframpError, recorded: bool| Failure {
        error,
        client: Some(client.clone()),
        operation_id: recorded.then(|| operation_id.clone()),
    };

    if !v.offboarded_statuses.is_empty() {
        let status = client.status.clone().unwrap_or_default();
        if !v.offboarded_statuses.iter().any(|s| s.eq_ignore_ascii_case(status.trim())) {
            return Err(fail(
                OfframpError::new(
                    ErrorCode::ClientNotOffboarded,
                    format!(
                        "client {} ({}) has status '{}', which is not one of the offboarded statuses [{}]; nothing was changed",
                        client.name,
                        client.id,
                        status,
                        v.offboarded_statuses.join(", ")
                    ),
                ),
                false,
            ));
        }
    }

    // Before anything else is read: a guard setting that cannot be read or no longer
    // validates stops the run, rather than letting it go ahead with a guessed limit.
    let guard = guard_limit(deps, &client).await.map_err(|e| fail(e, false))?;

    let configs =
        deps.psa.list_configurations(&client.id, request.include_archived).await.map_err(|e| fail(e.into(), false))?;
    if configs.is_empty() {
        return Err(fail(
            OfframpError::new(
                ErrorCode::ConfigNotFound,
                format!("client {} ({}) has no configurations", client.name, client.id),
            ),
            false,
        ));
    }
    let plan = make_plan(deps.psa, &client, request.include_archived, configs);
    // The request as given, plus the guard's limit and where it came from, so a run can be
    // explained later even after the setting changed. The request's fields stay at the top
    // level (resume reads `include_archived` there).
    let mut input = serde_json::to_value(request).unwrap_or_default();
    if let Some(fields) = input.as_object_mut() {
        fields.insert("blast_radius_guard".into(), json!(guard));
    }
    let record = OperationRecord {
        operation_id: operation_id.clone(),
        workflow: WORKFLOW.into(),
        psa: deps.psa.kind().as_str().into(),
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        dry_run: request.dry_run,
        plan_hash: Some(plan.hash.clone()),
        created_at: domain::now(),
        input,
        parent_operation_id: None,
    };

    let to_deactivate = plan.configs.iter().filter(|c| planned_action(c) == ACTION_DEACTIVATE).count() as u64;
    let exceeded = to_deactivate > guard.max_configurations;
    let blast_radius = ConfigBlastRadius {
        configs_to_deactivate: to_deactivate,
        max_configurations: guard.max_configurations,
        limit_source: guard.source.clone(),
        exceeded,
        overridden: exceeded && request.override_blast_radius,
    };
    let guard_stops = exceeded && !request.override_blast_radius && !request.dry_run;
    if guard_stops {
        let record = OperationRecord { dry_run: true, ..record };
        deps.audit.create_operation(&record).await.map_err(|e| fail(e.into(), false))?;
        let detail =
            json!({ "status": "blast_radius_exceeded", "blast_radius": blast_radius, "plan": plan_summary(&plan) });
        deps.audit
            .append_event(&OperationEvent::new(&operation_id, OperationEventKind::Planned, detail))
            .await
            .map_err(|e| fail(e.into(), true))?;
        let mut report = planned_report(&client, &operation_id, &plan, true);
        report.success = false;
        report.status = Some("blast_radius_exceeded".into());
        report.errors.push(ReportError {
            code: ErrorCode::BlastRadiusExceeded,
            message: format!(
                "this run would deactivate {to_deactivate} configurations, more than the guard allows ({}, {}); nothing was changed. Review the plan and run again with override_blast_radius (CLI --override-blast-radius)",
                guard.max_configurations,
                guard_source_text(&guard.source)
            ),
            timestamp: domain::iso8601(domain::now()),
            config_id: None,
        });
        report.blast_radius = Some(blast_radius);
        return Ok(report);
    }

    // Dry run, or waiting for approval: record the plan, change nothing.
    if request.dry_run || (request.require_approval && v.approval.is_none()) {
        let kind = if request.dry_run { OperationEventKind::Planned } else { OperationEventKind::ApprovalRequired };
        deps.audit.create_operation(&record).await.map_err(|e| fail(e.into(), false))?;
        // The recorded plan carries the guard's figures too, exceeded or not.
        let mut detail = plan_summary(&plan);
        detail["blast_radius"] = json!(blast_radius);
        deps.audit
            .append_event(&OperationEvent::new(&operation_id, kind, detail))
            .await
            .map_err(|e| fail(e.into(), true))?;
        let mut report = planned_report(&client, &operation_id, &plan, request.dry_run);
        report.blast_radius = Some(blast_radius);
        if !request.dry_run {
            report.status = Some("approval_required".into());
            report.warnings.push(format!(
                "Approval required: nothing was changed. To apply exactly this plan, run again with approval.plan_hash = {}",
                plan.hash
            ));
        }
        tracing::info!(plan_hash = %plan.hash, planned = report.statistics.configs_deactivated, kind = kind.as_str(), "plan recorded");
        return Ok(report);
    }

    // An approval binds to the plan it was given for.
    if let Some(approval) = &v.approval
        && approval.plan_hash != plan.hash
    {
        let error = OfframpError::new(
            ErrorCode::PlanChanged,
            format!(
                "the plan changed since it was approved (approved {}, now {}); nothing was changed — review the new plan",
                approval.plan_hash, plan.hash
            ),
        );
        deps.audit.create_operation(&record).await.map_err(|e| fail(e.into(), false))?;
        let detail = json!({ "code": error.code(), "message": error.to_string(), "approved_by": approval.approved_by });
        deps.audit
            .append_event(&OperationEvent::new(&operation_id, OperationEventKind::Failed, detail))
            .await
            .map_err(|e| fail(e.into(), true))?;
        return Err(fail(error, true));
    }

    // Apply: header, snapshot of every listed configuration, then the changes.
    deps.audit.create_operation(&record).await.map_err(|e| fail(e.into(), false))?;
    // In chunks, so that tens of thousands of configurations are never all held as JSON
    // at once; every chunk is written before the first change.
    for chunk in plan.configs.chunks(SNAPSHOT_CHUNK) {
        let snapshots: Vec<ItemSnapshot> = chunk
            .iter()
            .map(|c| ItemSnapshot {
                operation_id: operation_id.clone(),
                item_type: ITEM_TYPE.into(),
                item_id: c.id.clone(),
                item_name: c.name.clone(),
                state: serde_json::to_value(c).unwrap_or_default(),
                planned_action: planned_action(c).into(),
            })
            .collect();
        deps.audit.put_snapshots(&snapshots).await.map_err(|e| fail(e.into(), true))?;
    }
    let started = json!({
        "plan_hash": plan.hash,
        "approved_by": v.approval.as_ref().map(|a| a.approved_by.clone()),
        "planned": plan.configs.iter().filter(|c| planned_action(c) == ACTION_DEACTIVATE).count(),
        "blast_radius": blast_radius,
    });
    deps.audit
        .append_event(&OperationEvent::new(&operation_id, OperationEventKind::Started, started))
        .await
        .map_err(|e| fail(e.into(), true))?;
    tracing::info!(plan_hash = %plan.hash, configs = plan.configs.len(), "operation started");

    let work: Vec<Work> = plan
        .configs
        .into_iter()
        .map(|c| {
            let action = if c.status.state == ConfigState::Active { WorkAction::Deactivate } else { WorkAction::Skip };
            Work { before: c, action }
        })
        .collect();
    let outcome = execute(deps, &operation_id, work).await;
    let mut report =
        finish(deps, &client, &operation_id, Some(plan.hash), outcome, Vec::new()).await.map_err(|e| fail(e, true))?;
    report.blast_radius = Some(blast_radius);
    Ok(report)
}

/// The guard's source in words, for the message of a stopped run.
fn guard_source_text(source: &str) -> String {
    let key = org_settings::GUARD_MAX_CONFIGURATIONS;
    match source {
        "client" => format!("this client's {key} setting"),
        "global" => format!("the global {key} setting"),
        "default" => format!("the default of {key}"),
        other => format!("set by the caller ({other})"),
    }
}

fn plan_summary(plan: &Plan) -> serde_json::Value {
    let planned: Vec<serde_json::Value> = plan
        .configs
        .iter()
        .map(
            |c| json!({"config_id": c.id, "config_name": c.name, "status": c.status.name, "action": planned_action(c)}),
        )
        .collect();
    json!({ "plan_hash": plan.hash, "items": planned })
}

fn planned_report(client: &Company, operation_id: &str, plan: &Plan, dry_run: bool) -> ConfigDeactivationReport {
    let mut statistics = Statistics { configs_found: plan.configs.len() as u64, ..Statistics::default() };
    let configs = plan
        .configs
        .iter()
        .map(|c| {
            let status = if planned_action(c) == ACTION_DEACTIVATE {
                statistics.configs_deactivated += 1;
                "inactive".to_string()
            } else {
                statistics.configs_skipped += 1;
                c.status.label()
            };
            ConfigEntry {
                config_id: c.id.clone(),
                config_name: c.name.clone(),
                status,
                previous_status: c.status.label(),
            }
        })
        .collect();
    let mut warnings = Vec::new();
    if dry_run {
        warnings.push(
            "Dry run: nothing was changed. The statistics and statuses show what a real run would do.".to_string(),
        );
    }
    ConfigDeactivationReport {
        success: true,
        status: None,
        operation_id: Some(operation_id.to_string()),
        dry_run,
        client_id: Some(client.id.clone()),
        client_name: Some(client.name.clone()),
        timestamp: domain::iso8601(domain::now()),
        statistics,
        configs,
        warnings,
        errors: Vec::new(),
        plan_hash: Some(plan.hash.clone()),
        blast_radius: None,
    }
}

// ---------------------------------------------------------------------------
// Executing the changes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkAction {
    Deactivate,
    Skip,
    /// Already inactive when resuming, with no record of the change: the interrupted
    /// run's update reached the PSA but its record did not reach the audit trail.
    ConfirmDone,
}

struct Work {
    before: Configuration,
    action: WorkAction,
}

struct ItemResult {
    before: Configuration,
    after: Option<Configuration>,
    outcome: ItemOutcome,
    error: Option<(ErrorCode, String)>,
}

struct Execution {
    results: Vec<ItemResult>,
    /// Items not attempted because the run stopped first (request budget spent).
    not_attempted: usize,
    /// Why the run stopped early (audit trail unwritable, request budget spent); it can be resumed.
    stopped: Option<OfframpError>,
}

impl Execution {
    fn nothing() -> Self {
        Execution { results: Vec::new(), not_attempted: 0, stopped: None }
    }
}

/// What became of one item in [`execute`].
enum Step {
    Done(Box<ItemResult>),
    /// Never sent: the PSA's request budget was spent before its turn.
    NotAttempted,
}

fn deactivation_result(before: Configuration, result: Result<Configuration, crate::error::PsaError>) -> ItemResult {
    match result {
        Ok(after) if after.status.state == ConfigState::Inactive => {
            ItemResult { after: Some(after), outcome: ItemOutcome::Changed, error: None, before }
        }
        Ok(after) => ItemResult {
            error: Some((
                ErrorCode::ConfigUpdateFailed,
                format!("the PSA accepted the update but reports status '{}'", after.status.name),
            )),
            after: Some(after),
            outcome: ItemOutcome::Failed,
            before,
        },
        Err(error) => {
            let code = error.write_failure_code(ErrorCode::ConfigUpdateFailed);
            ItemResult {
                after: None,
                outcome: ItemOutcome::Failed,
                error: Some((code, format!("Unable to deactivate configuration: {error}"))),
                before,
            }
        }
    }
}

/// Apply the work: updates in groups of the PSA's batch size (one item on most PSAs),
/// `concurrency` groups at once, change records written as results come in.
async fn execute(deps: &Deps<'_>, operation_id: &str, work: Vec<Work>) -> Execution {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    deps.progress.start(work.len() as u64);
    let concurrency = deps.options.concurrency.max(1);
    let audit_batch = deps.options.audit_batch.clamp(1, 25);
    let update_batch = deps.psa.update_batch_size().max(1);

    let mut units: Vec<Vec<Work>> = Vec::new();
    let mut group: Vec<Work> = Vec::new();
    for item in work {
        if item.action == WorkAction::Deactivate {
            group.push(item);
            if group.len() == update_batch {
                units.push(std::mem::take(&mut group));
            }
        } else {
            units.push(vec![item]);
        }
    }
    if !group.is_empty() {
        units.push(group);
    }

    // Set when the PSA's request budget is spent: later groups are not sent at all, so
    // the run ends at once with a clean, resumable result instead of a storm of refusals.
    let halted = AtomicBool::new(false);
    let budget_error: Mutex<Option<crate::error::PsaError>> = Mutex::new(None);
    let (halted, budget_error) = (&halted, &budget_error);

    let mut stream = futures::stream::iter(units)
        .map(|unit| async move {
            if halted.load(Ordering::SeqCst) {
                return unit.into_iter().map(|_| Step::NotAttempted).collect::<Vec<_>>();
            }
            let mut steps = Vec::with_capacity(unit.len());
            let mut to_change = Vec::new();
            for item in unit {
                match item.action {
                    WorkAction::Skip => steps.push(Step::Done(Box::new(ItemResult {
                        after: None,
                        outcome: ItemOutcome::Skipped,
                        error: None,
                        before: item.before,
                    }))),
                    WorkAction::ConfirmDone => steps.push(Step::Done(Box::new(ItemResult {
                        after: None,
                        outcome: ItemOutcome::Changed,
                        error: None,
                        before: item.before,
                    }))),
                    WorkAction::Deactivate => to_change.push(item.before),
                }
            }
            if !to_change.is_empty() {
                let results = deps.psa.deactivate_configurations(&to_change).await;
                for (before, result) in to_change.into_iter().zip(results) {
                    match result {
                        Err(error @ crate::error::PsaError::BudgetExhausted { .. }) => {
                            if !halted.swap(true, Ordering::SeqCst) {
                                tracing::warn!(error = %error, "request budget spent; stopping the run");
                                *budget_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                            }
                            steps.push(Step::NotAttempted);
                        }
                        result => steps.push(Step::Done(Box::new(deactivation_result(before, result)))),
                    }
                }
            }
            steps
        })
        .buffer_unordered(concurrency);

    let mut results = Vec::new();
    let mut not_attempted = 0;
    let mut pending: Vec<ItemChange> = Vec::with_capacity(audit_batch);
    let mut stopped = None;
    'outer: while let Some(steps) = stream.next().await {
        for step in steps {
            deps.progress.item_done();
            let result = match step {
                Step::Done(result) => *result,
                Step::NotAttempted => {
                    not_attempted += 1;
                    continue;
                }
            };
            pending.push(change_record(operation_id, &result));
            results.push(result);
            if pending.len() >= audit_batch {
                if let Err(error) = deps.audit.put_changes(&pending).await {
                    // Stop rather than keep changing things the trail does not show. Updates
                    // already in flight are dropped; a resume re-reads their state from the PSA.
                    tracing::error!(error = %error, "audit trail write failed; stopping the run");
                    stopped = Some(error.into());
                    break 'outer;
                }
                pending.clear();
            }
        }
    }
    drop(stream);
    if stopped.is_none()
        && !pending.is_empty()
        && let Err(error) = deps.audit.put_changes(&pending).await
    {
        tracing::error!(error = %error, "audit trail write failed at the end of the run");
        stopped = Some(error.into());
    }
    if stopped.is_none()
        && let Some(error) = budget_error.lock().unwrap_or_else(|e| e.into_inner()).take()
    {
        stopped = Some(error.into());
    }
    deps.progress.finish();
    Execution { results, not_attempted, stopped }
}

fn change_record(operation_id: &str, result: &ItemResult) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: ITEM_TYPE.into(),
        item_id: result.before.id.clone(),
        item_name: result.before.name.clone(),
        outcome: result.outcome,
        before: serde_json::to_value(&result.before).unwrap_or_default(),
        after: result.after.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default()),
        error_code: result.error.as_ref().map(|(code, _)| code.as_str().to_string()),
        error_message: result.error.as_ref().map(|(_, message)| message.clone()),
        at: domain::now(),
    }
}

/// The seed report for the results of a run (pure: records nothing).
fn build_report(
    client: &Company,
    operation_id: &str,
    plan_hash: Option<String>,
    mut results: Vec<ItemResult>,
    not_attempted: usize,
    stopped: Option<&OfframpError>,
    mut warnings: Vec<String>,
) -> ConfigDeactivationReport {
    let timestamp = domain::iso8601(domain::now());
    results.sort_by_key(|r| sort_key(&r.before.id));
    let mut statistics = Statistics { configs_found: (results.len() + not_attempted) as u64, ..Statistics::default() };
    let mut configs = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for result in &results {
        let previous_status = result.before.status.label();
        let status = match result.outcome {
            ItemOutcome::Changed => {
                statistics.configs_deactivated += 1;
                result.after.as_ref().map(|a| a.status.label()).unwrap_or_else(|| "inactive".into())
            }
            ItemOutcome::Skipped => {
                statistics.configs_skipped += 1;
                previous_status.clone()
            }
            ItemOutcome::Failed => {
                statistics.errors += 1;
                if let Some((code, message)) = &result.error {
                    errors.push(ReportError {
                        code: *code,
                        message: message.clone(),
                        timestamp: timestamp.clone(),
                        config_id: Some(result.before.id.clone()),
                    });
                }
                result.after.as_ref().map(|a| a.status.label()).unwrap_or_else(|| previous_status.clone())
            }
        };
        configs.push(ConfigEntry {
            config_id: result.before.id.clone(),
            config_name: result.before.name.clone(),
            status,
            previous_status,
        });
    }
    if let Some(stop) = stopped {
        errors.push(ReportError {
            code: stop.code(),
            message: format!("{stop}; the run stopped early and can be resumed with operation_id {operation_id}"),
            timestamp: timestamp.clone(),
            config_id: None,
        });
        let untouched = if not_attempted > 0 { format!(", {not_attempted} not yet attempted") } else { String::new() };
        warnings.push(format!(
            "Interrupted: the run stopped after {} configuration(s){untouched}; resume with operation_id {operation_id}",
            results.len()
        ));
    }
    ConfigDeactivationReport {
        success: errors.is_empty(),
        status: None,
        operation_id: Some(operation_id.to_string()),
        dry_run: false,
        client_id: Some(client.id.clone()),
        client_name: Some(client.name.clone()),
        timestamp,
        statistics,
        configs,
        warnings,
        errors,
        plan_hash,
        blast_radius: None,
    }
}

/// Record the end of the run (completed, or failed when recording stopped it) and report.
async fn finish(
    deps: &Deps<'_>,
    client: &Company,
    operation_id: &str,
    plan_hash: Option<String>,
    execution: Execution,
    warnings: Vec<String>,
) -> Result<ConfigDeactivationReport, OfframpError> {
    let report = build_report(
        client,
        operation_id,
        plan_hash,
        execution.results,
        execution.not_attempted,
        execution.stopped.as_ref(),
        warnings,
    );
    let statistics = &report.statistics;
    if let Some(stop) = &execution.stopped {
        // Best effort: the trail may be the thing that is failing.
        let detail = json!({ "code": stop.code(), "message": stop.to_string(), "statistics": statistics });
        let _ = deps.audit.append_event(&OperationEvent::new(operation_id, OperationEventKind::Failed, detail)).await;
    } else {
        let detail = json!({ "statistics": statistics, "errors": report.errors.len() });
        deps.audit.append_event(&OperationEvent::new(operation_id, OperationEventKind::Completed, detail)).await?;
    }
    tracing::info!(
        deactivated = statistics.configs_deactivated,
        skipped = statistics.configs_skipped,
        failed = statistics.errors,
        "operation finished"
    );
    Ok(report)
}

// ---------------------------------------------------------------------------
// Resume
// ---------------------------------------------------------------------------

async fn resume(deps: &Deps<'_>, v: &Validated, operation_id: &str) -> Result<ConfigDeactivationReport, Failure> {
    let span = tracing::info_span!("operation", operation_id = %operation_id, workflow = WORKFLOW, resumed = true);
    resume_inner(deps, v, operation_id).instrument(span).await
}

fn not_resumable(operation_id: &str, why: impl std::fmt::Display) -> OfframpError {
    OfframpError::new(ErrorCode::OperationNotResumable, format!("operation {operation_id} cannot be resumed: {why}"))
}

async fn resume_inner(deps: &Deps<'_>, v: &Validated, operation_id: &str) -> Result<ConfigDeactivationReport, Failure> {
    let detail: OperationDetail = deps.audit.operation(operation_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {operation_id} in the audit trail"))
    })?;
    let op = &detail.operation;
    let client = Company {
        id: op.client_id.clone(),
        name: op.client_name.clone(),
        identifier: None,
        status: None,
        inactive: None,
        categories: Vec::new(),
        contracts: None,
    };
    let fail = |error: OfframpError| Failure {
        error,
        client: Some(client.clone()),
        operation_id: Some(operation_id.to_string()),
    };
    if op.workflow != WORKFLOW {
        return Err(fail(not_resumable(operation_id, format!("it is a {} operation", op.workflow))));
    }
    if op.psa != deps.psa.kind().as_str() {
        return Err(fail(not_resumable(operation_id, format!("it ran against {}, not {}", op.psa, deps.psa.kind()))));
    }
    if op.dry_run {
        return Err(fail(not_resumable(operation_id, "it was a dry run; start a new run instead")));
    }
    if v.client_id.as_ref().is_some_and(|id| *id != op.client_id)
        || v.client_name.as_ref().is_some_and(|n| !n.eq_ignore_ascii_case(&op.client_name))
    {
        return Err(fail(OfframpError::invalid_input(format!(
            "operation {operation_id} is for client {} ({}), not the client given",
            op.client_name, op.client_id
        ))));
    }
    let kinds: Vec<OperationEventKind> = detail.events.iter().map(|e| e.kind).collect();
    if !kinds.contains(&OperationEventKind::Started) {
        return Err(fail(not_resumable(
            operation_id,
            "it never started changing anything (dry run, approval pending or refused)",
        )));
    }

    // Latest change record per item.
    let mut latest: HashMap<&str, &ItemChange> = HashMap::new();
    for change in &detail.changes {
        latest.insert(change.item_id.as_str(), change);
    }
    let mut current: BTreeMap<String, Configuration> = BTreeMap::new();
    let include_archived = op.input.get("include_archived").and_then(|v| v.as_bool()).unwrap_or(false);
    for config in deps.psa.list_configurations(&op.client_id, true).await.map_err(|e| fail(e.into()))? {
        current.insert(config.id.clone(), config);
    }

    let mut warnings = vec![format!("Resumed operation {operation_id} (started by {}).", op.initiated_by)];
    let mut done = Vec::new();
    let mut work = Vec::new();
    for snapshot in &detail.snapshots {
        let before: Configuration = serde_json::from_value(snapshot.state.clone()).map_err(|e| {
            fail(OfframpError::new(ErrorCode::AuditStoreError, format!("snapshot of {}: {e}", snapshot.item_id)))
        })?;
        let previous = latest.get(snapshot.item_id.as_str()).copied();
        match previous.map(|c| c.outcome) {
            // Already recorded: report it as it was, touch nothing.
            Some(ItemOutcome::Changed) | Some(ItemOutcome::Skipped) => done.push(ItemResult {
                after: previous.and_then(|c| c.after.clone()).and_then(|a| serde_json::from_value(a).ok()),
                outcome: previous.map(|c| c.outcome).unwrap_or(ItemOutcome::Skipped),
                error: None,
                before,
            }),
            // Never recorded, or failed before: decide from the PSA's current state.
            None | Some(ItemOutcome::Failed) => {
                if snapshot.planned_action != ACTION_DEACTIVATE {
                    work.push(Work { before, action: WorkAction::Skip });
                    continue;
                }
                match current.get(&snapshot.item_id) {
                    None => {
                        warnings.push(format!(
                            "Configuration {} ({}) no longer exists in the PSA; left alone.",
                            before.id, before.name
                        ));
                        work.push(Work { before, action: WorkAction::Skip });
                    }
                    Some(now) if now.status.state == ConfigState::Inactive => {
                        work.push(Work { before, action: WorkAction::ConfirmDone })
                    }
                    Some(now) if now.status.state == before.status.state && now.status.id == before.status.id => {
                        work.push(Work { before, action: WorkAction::Deactivate })
                    }
                    Some(now) => {
                        warnings.push(format!(
                            "Configuration {} ({}) changed since the operation started ('{}' → '{}'); left alone.",
                            before.id, before.name, before.status.name, now.status.name
                        ));
                        work.push(Work { before, action: WorkAction::Skip });
                    }
                }
            }
        }
    }
    let snapshot_ids: std::collections::HashSet<&str> = detail.snapshots.iter().map(|s| s.item_id.as_str()).collect();
    let appeared = current
        .values()
        .filter(|c| !snapshot_ids.contains(c.id.as_str()))
        .filter(|c| c.status.state == ConfigState::Active || include_archived)
        .count();
    if appeared > 0 {
        warnings.push(format!(
            "{appeared} configuration(s) appeared since the operation started; they are not part of it. Start a new run to include them."
        ));
    }

    // Completed, and every item already recorded: nothing to do, nothing to append.
    let already_completed = kinds.contains(&OperationEventKind::Completed) && work.is_empty();
    if already_completed {
        warnings.push("The operation had already completed; nothing was changed.".into());
    } else {
        deps.audit
            .append_event(&OperationEvent::new(
                operation_id,
                OperationEventKind::Resumed,
                json!({ "resumed_by": v.initiated_by, "remaining": work.iter().filter(|w| w.action != WorkAction::Skip).count() }),
            ))
            .await
            .map_err(|e| fail(e.into()))?;
    }
    tracing::info!(recorded = done.len(), remaining = work.len(), "resuming operation");

    let mut execution = if already_completed { Execution::nothing() } else { execute(deps, operation_id, work).await };
    execution.results.extend(done);
    if already_completed {
        // Report from the record; write no new event.
        return Ok(build_report(&client, operation_id, op.plan_hash.clone(), execution.results, 0, None, warnings));
    }
    finish(deps, &client, operation_id, op.plan_hash.clone(), execution, warnings).await.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn request_rejects_unknown_fields_so_a_typo_cannot_turn_a_dry_run_into_a_real_one() {
        let err =
            serde_json::from_value::<DeactivateConfigsRequest>(json!({"client_id": "1", "dryrun": true})).unwrap_err();
        assert!(err.to_string().contains("dryrun"), "{err}");
        let ok: DeactivateConfigsRequest = serde_json::from_value(json!({"client_id": 250, "dry_run": true})).unwrap();
        assert_eq!(ok.client_id.as_deref(), Some("250"));
    }

    #[test]
    fn validation_requires_exactly_one_identifier() {
        let none = DeactivateConfigsRequest::default();
        assert_eq!(validate(&none).err().unwrap().code(), ErrorCode::InvalidInput);
        let both = DeactivateConfigsRequest {
            client_id: Some("1".into()),
            client_name: Some("A".into()),
            ..Default::default()
        };
        assert_eq!(validate(&both).err().unwrap().code(), ErrorCode::InvalidInput);
        let approval_in_dry_run = DeactivateConfigsRequest {
            client_id: Some("1".into()),
            dry_run: true,
            approval: Some(Approval { plan_hash: "a".repeat(64), approved_by: "x".into() }),
            ..Default::default()
        };
        assert_eq!(validate(&approval_in_dry_run).err().unwrap().code(), ErrorCode::InvalidInput);
    }

    #[test]
    fn sort_key_orders_numeric_ids_numerically() {
        let mut ids = vec!["10", "9", "100", "abc"];
        ids.sort_by_key(|id| sort_key(id));
        assert_eq!(ids, vec!["9", "10", "100", "abc"]);
    }

    #[test]
    fn failure_report_has_the_seed_error_shape() {
        let report = ConfigDeactivationReport::failure(&OfframpError::invalid_input("bad"), None, None, false);
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["success"], json!(false));
        assert_eq!(value["errors"][0]["code"], json!("InvalidInput"));
        assert!(value["errors"][0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(value.get("status").is_none());
    }
}
