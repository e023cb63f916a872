//! Workflow 003, user offboarding (docs/workflows.md#003-user-offboarding): one leaver of a
//! client's Microsoft 365 tenant (Entra ID, Exchange Online) and the client's PSA.
//!
//! Each selected action becomes one or more tasks, and every task is an item of one
//! operation of the engine (`crate::operation`): the plan (everything read first, then what
//! each task changes), its hash, the approval bound to it, the lease on the leaver, the
//! snapshot of every task's state before the first change, bounded apply with write-ahead
//! intents, resume and rollback all come from the engine. This module says only what the
//! tasks are (`plan`), how they are sent (`tasks`), in which order (`apply`), how they are
//! confirmed (`verify`), documented on the ticket and told to the manager (`ticket`), and
//! put back (`restore`).
//!
//! Order where it matters (docs/workflows.md#003-order): sign-in is closed first (account
//! disabled, password reset), then sessions and devices; the mailbox is converted to shared
//! before anything else touches it, and licences go last, after the conversion and after
//! the group memberships that grant licences. Within a phase the tasks run in parallel,
//! Graph changes together in `$batch` requests.

mod apply;
mod failures;
mod gated;
mod identity;
mod plan;
mod read;
pub mod report;
mod restore;
mod restore_onprem;
mod resume;
mod run;
mod selection;
mod tasks;
mod tasks_onprem;
mod ticket;
mod verify;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

pub use crate::domain::IdentityMode;
use crate::domain::{self, OffboardAction, OperationRecord, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Admission, Consent, IdempotencyOptions, LeaseOptions};
use crate::ports::{AuditStore, CloudDirectory, Mailboxes, Notifier, OnPremDirectory, Psa, SecretVault, SettingsStore};
use crate::workflows::input;

pub use report::{OffboardUserReport, TaskReport, TaskResult};
pub use restore::register;
pub use selection::{ActionOptions, OutOfOffice};

pub const WORKFLOW: Workflow = Workflow::OffboardUser;
/// The lease and the trail name the directory side of an operation this way.
pub const SYSTEM: &str = "m365";
/// … and an on-premises-only leaver's (`ad#domain/objectGUID`).
pub const ONPREM_SYSTEM: &str = "ad";

/// Workflow 003's inputs (docs/workflows.md#003-inputs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffboardUserRequest {
    /// The PSA company the leaver works for: its contact, its ticket, its settings.
    #[serde(default, deserialize_with = "input::string_or_number", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The customer's tenant (id or domain); default: the client's `m365_tenant_id` setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The leaver: user principal name or object id; in the modes with on-premises AD also
    /// the `sAMAccountName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Where the leaver's identity lives (docs/workflows.md#003-identity-modes); default:
    /// the client's `user_offboarding_identity_mode`, else detected from Entra ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<IdentityMode>,
    /// `hybrid-unsynced`: the leaver's AD account (`sAMAccountName`, UPN or DN), when the
    /// client's pairing rule (`user_offboarding_ad_pairing`) is not the one to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onprem_user: Option<String>,
    #[serde(default)]
    pub actions: ActionOptions,
    /// Also run the client's default actions (`user_offboarding_default_actions`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_client_defaults: bool,
    /// Client defaults this run leaves out. The chain names `disable_psa_contact` when its
    /// contacts step deactivates every contact of the company, the leavers' included: one
    /// step plans each contact, so an earlier step cannot change a later step's approved plan
    /// (docs/architecture.md#the-client-offboarding-chain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_default_actions: Vec<OffboardAction>,
    /// Document the run on the ticket with its summary note only, not also a note when it
    /// starts and one per phase. The chain sets it: its leavers share the chain's one
    /// ticket, where a hundred leavers would otherwise leave 800 notes (and 800 PSA requests).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub summary_note_only: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub require_approval: bool,
    /// Apply a plan returned with `approval_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The offboarding delay: no change before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "input::string_or_number", skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    /// Continue an interrupted operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The same key with the same request returns the first run's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Take the leaver's lease from a run that holds it (a run known to be dead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_lease: bool,
    /// The client offboarding this run is a step of (its chain's parent operation): recorded
    /// as the operation's `parent_operation_id`, so the trail links every step to the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_operation_id: Option<String>,
}

pub use crate::workflows::input::Approval;

/// The systems a user offboarding works with.
#[derive(Clone, Copy)]
pub struct OffboardUserDeps<'a> {
    pub directory: &'a dyn CloudDirectory,
    pub mailboxes: &'a dyn Mailboxes,
    /// On-premises AD (LDAP); `None`: the modes that need it are refused before anything
    /// changes.
    pub onprem: Option<&'a dyn OnPremDirectory>,
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
    pub settings: &'a dyn SettingsStore,
    /// `None`: no mail channel; the manager's notification is reported as failed.
    pub notifier: Option<&'a dyn Notifier>,
    /// `None`: `store_password` is refused before anything changes.
    pub vault: Option<&'a dyn SecretVault>,
    pub options: OffboardUserOptions,
}

/// How the workflow runs, as opposed to what it is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct OffboardUserOptions {
    /// Units (a `$batch` of directory changes, one Exchange cmdlet, the PSA contact) in
    /// flight at once within a phase.
    pub concurrency: usize,
    /// Directory changes sent in one `apply_user_changes` call (Graph's `$batch` holds 20).
    pub directory_batch: usize,
    pub lease: LeaseOptions,
    pub idempotency: IdempotencyOptions,
}

impl Default for OffboardUserOptions {
    fn default() -> Self {
        Self { concurrency: 4, directory_batch: 20, lease: LeaseOptions::default(), idempotency: Default::default() }
    }
}

/// The request's checks, as a run makes them before it reads anything.
pub(crate) struct Validated {
    pub client_id: String,
    pub tenant: Option<String>,
    pub user: String,
    pub onprem_user: Option<String>,
    pub reason: Option<String>,
    pub initiated_by: String,
    pub ticket_id: Option<String>,
    pub consent: Consent,
}

fn validate(request: &OffboardUserRequest) -> Result<Validated, OfframpError> {
    let client_id = input::identifier("client_id", request.client_id.as_deref())?
        .ok_or_else(|| OfframpError::invalid_input("client_id (the leaver's PSA company) is required"))?;
    let user = input::account("user", request.user.as_deref(), false)?
        .ok_or_else(|| OfframpError::invalid_input("user (a user principal name or object id) is required"))?;
    input::idempotency_key(request.idempotency_key.as_deref())?;
    request.actions.check()?;
    let initiated_by =
        input::text(input::INITIATED_BY, request.initiated_by.as_deref())?.unwrap_or_else(|| "unknown".into());
    Ok(Validated {
        client_id,
        tenant: input::tenant("tenant", request.tenant.as_deref())?,
        user,
        onprem_user: input::account("onprem_user", request.onprem_user.as_deref(), true)?,
        reason: input::text(input::REASON, request.reason.as_deref())?,
        ticket_id: input::identifier("ticket_id", request.ticket_id.as_deref())?,
        consent: consent(request)?,
        initiated_by,
    })
}

/// `require_approval` / `approval{plan_hash, approved_by}` as the engine's consent, the
/// contract of every workflow (docs/workflows.md#000-inputs).
fn consent(request: &OffboardUserRequest) -> Result<Consent, OfframpError> {
    input::approval_consent(request.approval.as_ref(), request.dry_run, request.require_approval, false)
}

/// The offboarding delay: a run that would change something before `effective_at` is
/// refused, saying when it may run. A dry run, or a plan waiting for its approval, is
/// answered now: the plan can be reviewed and approved ahead of the day.
fn check_effective(request: &OffboardUserRequest, consent: &Consent) -> Result<(), OfframpError> {
    let Some(at) = request.effective_at else { return Ok(()) };
    let would_apply = !consent.dry_run && (consent.proof.is_some() || !consent.approval_required);
    if would_apply && at > domain::now() {
        return Err(OfframpError::new(
            ErrorCode::NotYetEffective,
            format!(
                "this offboarding takes effect at {}; nothing was changed. Make or approve the plan now and run it \
                 from then on",
                domain::iso8601(at)
            ),
        ));
    }
    Ok(())
}

/// Run the workflow. Never panics on bad input; every outcome is a report.
pub async fn offboard_user(deps: &OffboardUserDeps<'_>, request: OffboardUserRequest) -> OffboardUserReport {
    let payload = serde_json::to_value(&request).unwrap_or_default();
    let key = request.idempotency_key.clone();
    let run = async {
        let mut report = OffboardUserReport::new(&request);
        // Boxed: the run's state machine is large, and a caller's stack (a Lambda worker
        // thread, a test) need not hold it.
        if let Err(e) = Box::pin(run(deps, &request, &mut report)).await {
            tracing::warn!(code = %e.code(), error = %e, "user offboarding refused or failed");
            report.fail(&e);
        }
        report.finish();
        report
    };
    operation::idempotent(deps.audit, deps.options.idempotency, WORKFLOW, key.as_deref(), &payload, run).await
}

async fn run(
    deps: &OffboardUserDeps<'_>,
    request: &OffboardUserRequest,
    report: &mut OffboardUserReport,
) -> Result<(), OfframpError> {
    if let Some(operation_id) = request.operation_id.as_deref() {
        let operation_id = input::operation_id(operation_id)?;
        input::text(input::INITIATED_BY, request.initiated_by.as_deref())?;
        let span = tracing::info_span!("operation", %operation_id, workflow = %WORKFLOW, resumed = true);
        return resume::resume(deps, &operation_id, request.break_lease, report).instrument(span).await;
    }
    let v = validate(request)?;
    check_effective(request, &v.consent)?;
    let operation_id = domain::new_operation_id();
    let span = tracing::info_span!("operation", %operation_id, workflow = %WORKFLOW, client_id = %v.client_id);
    plan_and_gate(deps, request, v, operation_id, report).instrument(span).await
}

async fn plan_and_gate(
    deps: &OffboardUserDeps<'_>,
    request: &OffboardUserRequest,
    v: Validated,
    operation_id: String,
    report: &mut OffboardUserReport,
) -> Result<(), OfframpError> {
    let client = selection::client_settings(deps, &v.client_id, v.tenant.as_deref()).await?;
    if let Some(ticket_id) = &v.ticket_id {
        crate::workflows::client_ticket::check_ticket(deps.psa, &client.client_id, ticket_id).await?;
    }
    let selection = selection::select(request, &client, deps.vault.is_some())?;
    let leaver = read::read(deps, &client, &selection, &v, request.directory).await?;
    report.describe(&client, &leaver);
    let plan = plan::make_plan(&client, &selection, &leaver, !request.summary_note_only)?;
    let (user, manager) = (&leaver.state.user, leaver.state.manager.as_ref());
    let record = operation_record(deps, request, &v, &client, &plan, &operation_id, user, manager);
    let admission = Admission { consent: &v.consent, lease: deps.options.lease, break_lease: request.break_lease };
    report.operation_id = Some(operation_id.clone());
    let ticket = v.ticket_id.clone();
    let gated = gated::UserPlan { deps, client, leaver, plan, ticket, report: &mut *report };
    match operation::gate_then_apply(deps.audit, admission, record, gated).await {
        Ok(()) => Ok(()),
        Err(stopped) => {
            if !stopped.recorded {
                report.operation_id = None;
            }
            Err(stopped.error)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn operation_record(
    deps: &OffboardUserDeps<'_>,
    request: &OffboardUserRequest,
    v: &Validated,
    client: &selection::ClientSettings,
    plan: &plan::Plan,
    operation_id: &str,
    user: &crate::ports::DirectoryUser,
    manager: Option<&crate::ports::DirectoryUser>,
) -> OperationRecord {
    let manager = manager.map(|m| {
        json!({ "id": m.id, "user_principal_name": m.user_principal_name, "display_name": m.display_name, "mail": m.mail })
    });
    OperationRecord {
        operation_id: operation_id.to_string(),
        workflow: WORKFLOW,
        psa: deps.psa.kind().as_str().into(),
        client_id: v.client_id.clone(),
        client_name: client.company_name.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        dry_run: request.dry_run,
        plan_hash: Some(plan.hash.clone()),
        created_at: domain::now(),
        input: json!({
            "request": request,
            "tenant": client.tenant,
            "user_id": plan.user_id,
            "user_principal_name": plan.user_principal_name,
            "identity_mode": plan.mode,
            "ad_account": plan.ad_account,
            "user": report::ReportedUser::from(user),
            "lease_target": plan.lease_target(),
            "notify": plan.notify,
            "progress_notes": plan.progress_notes,
            "sole_owner_groups": plan.sole_owner_groups,
            "manager": manager,
            "settings": client.sources,
        }),
        parent_operation_id: request.parent_operation_id.clone(),
    }
}
