//! Workflow 001, contact deactivation (docs/workflows.md#001-contact-deactivation).
//!
//! Every active contact of a company is set inactive, except the excluded ones and (when
//! asked) the primary contact. The whole run is planned first: contacts, the open tickets
//! and configurations that point at a contact about to go, and what each of them will be
//! changed to. Without `confirmation: true` the plan is returned and recorded as refused
//! (a dry run is recorded as a plan); a blast-radius guard stops runs larger than the configured limits unless overridden.
//! Before the first change every item the run will touch is snapshotted in the audit
//! trail; each change is recorded with its before and after, which is what `rollback`
//! puts back. An interrupted run is continued with its `operation_id`: nothing is done
//! twice, related records of contacts deactivated before the interruption are still
//! updated, a summary ticket the run opened is reused, and the note and notification
//! describe the whole operation. A completed run with something left (a failed contact,
//! note or notification) may be resumed to retry it; one with nothing left, or one that
//! was rolled back, is not (`OperationNotResumable`).
//!
//! Order of work: contacts, then tickets, then configurations (the seed's order), then the
//! summary note on the ticket and the notification. Failures of one item never stop the
//! others; a spent request budget (Autotask) stops the run cleanly, resumable.
//!
//! The lifecycle (gates, lease, snapshots, bounded apply, resume checks) is the operation
//! engine's (`crate::operation`); this module holds what is particular to contacts:
//! `plan` (what changes), `execute` (applying it), `summary` (the note, the notification
//! and the end of the run), `resume`, `report` and `restore`.

mod execute;
mod gated;
mod plan;
pub mod report;
mod restore;
mod resume;
mod run;
mod summary;
pub mod sweep;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::domain::{self, Company, ItemKind, OperationRecord, RunStatus, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Admission, ApprovalProof, ApprovalVia, Consent, IdempotencyOptions};
use crate::ports::{AuditStore, Notifier, Progress, Psa, SettingsStore};
use crate::workflows::input;
use crate::workflows::org_settings::{self, OrgSettings};

pub use report::{
    AuditTrail, BlastRadius, ContactDeactivationReport, ContactReportError, DeactivatedContact, DeactivationSummary,
    ExcludedContact, NotificationReport, PrimaryContactReport, Reassignment, ReassignmentTarget, RelatedUpdates,
};
pub use restore::register;

pub const WORKFLOW: Workflow = Workflow::DeactivateContacts;
pub const ITEM_CONTACT: ItemKind = ItemKind::Contact;
pub const ITEM_TICKET: ItemKind = ItemKind::Ticket;
pub const ITEM_CONFIGURATION_CONTACT: ItemKind = ItemKind::ConfigurationContact;
pub const ITEM_TICKET_NOTE: ItemKind = ItemKind::TicketNote;
/// The ticket a run opened for its summary (no `ticket_id` given), recorded the moment it
/// exists so that a resume writes the note there instead of opening a second one.
pub const ITEM_SUMMARY_TICKET: ItemKind = ItemKind::SummaryTicket;
pub const ITEM_NOTIFICATION: ItemKind = ItemKind::Notification;
/// Most contacts `exclude_contacts` may name.
const MAX_EXCLUSIONS: usize = 1000;

/// Workflow 001's inputs (docs/workflows.md#001-inputs), plus who asked, the guard override, an
/// optional plan binding and a resume id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivateContactsRequest {
    #[serde(default, deserialize_with = "input::string_or_number", skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    #[serde(default, deserialize_with = "ids", skip_serializing_if = "Vec::is_empty")]
    pub exclude_contacts: Vec<String>,
    /// `None`: the organization setting `psa_contact_preserve_primary` decides (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_primary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub confirmation: bool,
    #[serde(default, deserialize_with = "input::string_or_number", skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    /// Where the requester's copy of the notification goes (default: `initiated_by` when it is an address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_email: Option<String>,
    /// Run even though the blast-radius guard would stop it.
    #[serde(default)]
    pub override_blast_radius: bool,
    /// Apply only if the plan still hashes to this (the `plan_hash` a dry run returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// Continue an interrupted operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The same key with the same request returns the first run's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Take the company's lease from a run that holds it (a run known to be dead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_lease: bool,
    /// The client offboarding this run is a step of (its chain's parent operation): recorded
    /// as the operation's `parent_operation_id`, so the trail links every step to the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_operation_id: Option<String>,
}

/// A list of ids given as strings or integers.
fn ids<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
    }
    Ok(Option::<Vec<Raw>>::deserialize(deserializer)?
        .unwrap_or_default()
        .into_iter()
        .map(|raw| match raw {
            Raw::Text(text) => text,
            Raw::Int(number) => number.to_string(),
        })
        .collect())
}

pub struct ContactDeps<'a> {
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
    pub settings: &'a dyn SettingsStore,
    /// `None`: no notification channel is configured (reported as a warning).
    pub notifier: Option<&'a dyn Notifier>,
    pub progress: &'a dyn Progress,
    /// Updates in flight at once (the HTTP layer also caps and rate-limits).
    pub concurrency: usize,
    /// E-mail domains a requester address taken from the request (`requester_email`, or
    /// `initiated_by` when it is an address) may have (`OFFRAMP_REQUESTER_EMAIL_DOMAINS`).
    /// Empty: the notification goes only to the configured recipients.
    pub requester_domains: Vec<String>,
    /// When the invocation stops sending changes (a Lambda's); none for the CLI.
    pub deadline: crate::operation::Deadline,
}

pub(super) struct Validated {
    company_id: String,
    exclude: Vec<String>,
    reason: Option<String>,
    initiated_by: String,
    requester: Option<String>,
    ticket_id: Option<String>,
    consent: Consent,
}

/// The request's checks, as a run (or a resume, `free_text`) makes them before it reads
/// anything (`offramp::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn check_request(
    request: &DeactivateContactsRequest,
    requester_domains: &[String],
) -> Result<(), OfframpError> {
    free_text(request)?;
    validate(request, requester_domains).map(|_| ())
}

fn validate(request: &DeactivateContactsRequest, requester_domains: &[String]) -> Result<Validated, OfframpError> {
    let company_id = input::identifier("company_id", request.company_id.as_deref())?
        .ok_or_else(|| OfframpError::invalid_input("company_id is required"))?;
    let FreeText { reason, initiated_by, requester } = free_text(request)?;
    if let Some(address) = &requester
        && !run::admits(requester_domains, address)
    {
        return Err(OfframpError::invalid_input(format!(
            "requester_email '{address}' is not in a domain notifications may go to \
             (OFFRAMP_REQUESTER_EMAIL_DOMAINS: [{}]); the notification goes to the configured recipients \
             ({}) and to requesters in those domains; nothing was changed",
            requester_domains.join(", "),
            org_settings::NOTIFICATION_RECIPIENTS
        )));
    }
    input::idempotency_key(request.idempotency_key.as_deref())?;
    let initiated_by = initiated_by.unwrap_or_else(|| "unknown".into());
    Ok(Validated {
        company_id,
        exclude: exclusions(&request.exclude_contacts)?,
        reason,
        consent: consent(request, &initiated_by)?,
        requester: run::requester(requester.as_deref(), &initiated_by, requester_domains),
        initiated_by,
        ticket_id: input::identifier("ticket_id", request.ticket_id.as_deref())?,
    })
}

/// The request's free text, checked.
struct FreeText {
    reason: Option<String>,
    initiated_by: Option<String>,
    requester: Option<String>,
}

/// The request's free text (`reason`, `initiated_by`, `requester_email`), checked by the one
/// rule every entry point uses, on every path (a resume too).
fn free_text(request: &DeactivateContactsRequest) -> Result<FreeText, OfframpError> {
    let requester = input::text(input::REQUESTER_EMAIL, request.requester_email.as_deref())?;
    if let Some(address) = &requester
        && !org_settings::looks_like_email(address)
    {
        return Err(OfframpError::invalid_input(format!("requester_email '{address}' is not an e-mail address")));
    }
    Ok(FreeText {
        reason: input::text(input::REASON, request.reason.as_deref())?,
        initiated_by: input::text(input::INITIATED_BY, request.initiated_by.as_deref())?,
        requester,
    })
}

fn exclusions(ids: &[String]) -> Result<Vec<String>, OfframpError> {
    if ids.len() > MAX_EXCLUSIONS {
        return Err(OfframpError::invalid_input(format!("exclude_contacts names more than {MAX_EXCLUSIONS} contacts")));
    }
    let mut exclude = Vec::new();
    for id in ids {
        let id = input::identifier("exclude_contacts[]", Some(id))?
            .ok_or_else(|| OfframpError::invalid_input("exclude_contacts contains an empty id"))?;
        if !exclude.contains(&id) {
            exclude.push(id);
        }
    }
    Ok(exclude)
}

/// Workflow 001's `confirmation` (+ the reviewed `plan_hash`) as the engine's consent: a
/// confirmation is always required, and it is given by whoever initiated the run.
fn consent(request: &DeactivateContactsRequest, initiated_by: &str) -> Result<Consent, OfframpError> {
    let plan_hash = request.plan_hash.as_deref().map(input::plan_hash).transpose()?;
    Ok(Consent {
        dry_run: request.dry_run,
        approval_required: true,
        missing_status: RunStatus::ConfirmationRequired,
        proof: request.confirmation.then(|| ApprovalProof {
            plan_hash,
            approved_by: initiated_by.to_string(),
            via: ApprovalVia::Confirmation,
        }),
        override_blast_radius: request.override_blast_radius,
    })
}

/// Run the workflow. Never panics on bad input; every outcome is a report.
pub async fn deactivate_contacts(
    deps: &ContactDeps<'_>,
    request: DeactivateContactsRequest,
) -> ContactDeactivationReport {
    let initiated_by = request.initiated_by.clone().unwrap_or_else(|| "unknown".into());
    if let Err(error) = input::idempotency_key(request.idempotency_key.as_deref()) {
        // Checked first: an unusable key is never claimed.
        return ContactDeactivationReport::invalid(&error, &initiated_by);
    }
    let payload = serde_json::to_value(&request).unwrap_or_default();
    let key = request.idempotency_key.clone();
    let dry_run = request.dry_run || !request.confirmation;
    let company_id = request.company_id.clone();
    let run = async {
        match run(deps, request).await {
            Ok(report) => report,
            Err(Failure { error, company, operation_id }) => {
                tracing::warn!(code = %error.code(), error = %error, "contact deactivation refused or failed");
                let mut report =
                    ContactDeactivationReport::empty(company.as_ref(), company_id.as_deref(), &initiated_by, dry_run);
                report.audit_trail.operation_id = operation_id;
                report.errors.push(report::report_error(error.code(), error.to_string(), None));
                report
            }
        }
    };
    let options = IdempotencyOptions::default();
    operation::idempotent(deps.audit, options, WORKFLOW, key.as_deref(), &payload, run).await
}

/// An error together with what was known when it happened.
pub(super) struct Failure {
    pub error: OfframpError,
    pub company: Option<Company>,
    pub operation_id: Option<String>,
}

impl<E: Into<OfframpError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { error: error.into(), company: None, operation_id: None }
    }
}

impl Failure {
    fn at(error: impl Into<OfframpError>, company: &Company, operation_id: Option<&str>) -> Self {
        Failure { error: error.into(), company: Some(company.clone()), operation_id: operation_id.map(str::to_string) }
    }
}

async fn run(deps: &ContactDeps<'_>, request: DeactivateContactsRequest) -> Result<ContactDeactivationReport, Failure> {
    if let Some(operation_id) = request.operation_id.as_deref() {
        let operation_id = input::operation_id(operation_id)?;
        input::idempotency_key(request.idempotency_key.as_deref())?;
        free_text(&request)?;
        let span = tracing::info_span!("operation", operation_id = %operation_id, workflow = %WORKFLOW, resumed = true);
        return resume::resume(deps, &operation_id, request.break_lease).instrument(span).await;
    }
    let v = validate(&request, &deps.requester_domains)?;
    let company = deps.psa.company_by_id(&v.company_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::ClientNotFound, format!("no {} company has id {}", deps.psa.kind(), v.company_id))
    })?;
    let operation_id = domain::new_operation_id();
    let span =
        tracing::info_span!("operation", operation_id = %operation_id, workflow = %WORKFLOW, client_id = %company.id);
    plan_and_gate(deps, &request, v, company, operation_id).instrument(span).await
}

/// Plan, then let the engine's gates decide: answer with the plan, or apply it.
async fn plan_and_gate(
    deps: &ContactDeps<'_>,
    request: &DeactivateContactsRequest,
    v: Validated,
    company: Company,
    operation_id: String,
) -> Result<ContactDeactivationReport, Failure> {
    let fail = |error: OfframpError, recorded: bool| Failure::at(error, &company, recorded.then_some(&*operation_id));
    let psa_kind = deps.psa.kind().as_str();
    let settings = org_settings::resolve(deps.settings, psa_kind, &company.id).await.map_err(|e| fail(e, false))?;
    let preserve_primary = request.preserve_primary.unwrap_or(settings.preserve_primary);
    if let Some(ticket_id) = &v.ticket_id {
        crate::workflows::client_ticket::check_ticket(deps.psa, &company.id, ticket_id)
            .await
            .map_err(|e| fail(e, false))?;
    }
    let plan = plan::make_plan(deps, &v, &company, &settings, preserve_primary, request.override_blast_radius)
        .await
        .map_err(|e| fail(e, false))?;
    let record = operation_record(deps, request, &v, &company, &operation_id, &plan, &settings, preserve_primary);
    let admission = Admission { consent: &v.consent, lease: Default::default(), break_lease: request.break_lease };
    let ctx = run::RunContext::new(&operation_id, &company, &v, settings);
    let gated = gated::ContactPlan { deps, ctx, plan, override_requested: request.override_blast_radius };
    operation::gate_then_apply(deps.audit, admission, record, gated).await.map_err(|s| fail(s.error, s.recorded))
}

#[allow(clippy::too_many_arguments)]
fn operation_record(
    deps: &ContactDeps<'_>,
    request: &DeactivateContactsRequest,
    v: &Validated,
    company: &Company,
    operation_id: &str,
    plan: &plan::Plan,
    settings: &OrgSettings,
    preserve_primary: bool,
) -> OperationRecord {
    OperationRecord {
        operation_id: operation_id.to_string(),
        workflow: WORKFLOW,
        psa: deps.psa.kind().as_str().into(),
        client_id: company.id.clone(),
        client_name: company.name.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        dry_run: false,
        plan_hash: Some(plan.hash.clone()),
        created_at: domain::now(),
        input: json!({
            "request": request,
            "preserve_primary": preserve_primary,
            "settings": settings,
            "requester_email": v.requester,
            "reassignment": plan.reassignment,
        }),
        parent_operation_id: request.parent_operation_id.clone(),
    }
}
