//! Seed 001: "PSA - Bulk Contact Deactivation".
//!
//! Every active contact of a company is set inactive, except the excluded ones and (when
//! asked) the primary contact. The whole run is planned first: contacts, the open tickets
//! and configurations that point at a contact about to go, and what each of them will be
//! changed to. Without `confirmation: true` the plan is returned and recorded as a dry run;
//! a blast-radius guard stops runs larger than the configured limits unless overridden.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::domain::{
    self, Company, Configuration, Contact, ItemChange, ItemKind, ItemOutcome, ItemSnapshot, NewTicket, Notification,
    OperationDetail, OperationEvent, OperationEventKind, OperationRecord, Ticket, TicketAssignment, TicketNote,
    TicketOwner, Workflow,
};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::ports::{AuditStore, Notifier, Progress, Psa, SettingsStore};
use crate::workflows::input;
use crate::workflows::org_settings::{self, ContactTarget, OrgSettings};

mod restore;
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
const SNAPSHOT_CHUNK: usize = 500;
const AUDIT_BATCH: usize = 25;
/// Most contacts `exclude_contacts` may name.
const MAX_EXCLUSIONS: usize = 1000;

/// Seed 001's inputs, plus who asked, the guard override, an optional plan binding and a resume id.
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
}

// ---------------------------------------------------------------------------
// Report: seed 001 "Returned Data", plus Offramp's additions
// ---------------------------------------------------------------------------

/// An id as the seed shows it: a number when it is one, else a string.
fn id_value(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeactivationSummary {
    pub company_id: Value,
    pub company_name: Option<String>,
    pub total_contacts_found: u64,
    pub contacts_deactivated: u64,
    pub contacts_excluded: u64,
    pub contacts_already_inactive: u64,
    pub deactivation_timestamp: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeactivatedContact {
    pub contact_id: Value,
    pub name: String,
    pub email: Option<String>,
    pub title: Option<String>,
    pub previous_status: String,
    pub new_status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedContact {
    pub contact_id: Value,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedUpdates {
    pub open_tickets_reassigned: u64,
    pub configurations_updated: u64,
    pub scheduled_tasks_disabled: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditTrail {
    pub operation_id: Option<String>,
    pub initiated_by: String,
    pub timestamp: String,
    pub rollback_available: bool,
}

/// Which contact counts as primary and why (the fact sheet is unsure which signal the PSA's UI uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrimaryContactReport {
    pub contact_id: Value,
    pub name: Option<String>,
    /// The fields that named it, e.g. `company.defaultContact`, `contact.defaultFlag`.
    pub signals: Vec<String>,
    pub preserved: bool,
}

/// A contact that related records of leaving contacts are pointed at, and why that one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReassignmentTarget {
    pub contact_id: Value,
    pub name: Option<String>,
    /// `primary contact (company.defaultContact)`: the settings say `primary` and this signal
    /// decided (the rule is on `reassignment_primary`); or `setting psa_contact_ticket_contact`.
    pub chosen_by: String,
}

/// Where the open tickets and configurations of leaving contacts go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reassignment {
    /// `null`: such tickets lose their contact (the setting says `none`, or no primary stays).
    pub ticket_contact: Option<ReassignmentTarget>,
    /// `null`: their contact is cleared, or the PSA's configurations have none (HaloPSA).
    pub configuration_contact: Option<ReassignmentTarget>,
}

/// The blast-radius guard's figures, shown whether or not it stopped the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlastRadius {
    pub contacts_to_deactivate: u64,
    pub company_contacts: u64,
    pub share_percent: f64,
    pub max_contacts: u64,
    pub max_share_percent: u64,
    pub exceeded: bool,
    pub overridden: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationReport {
    pub channel: String,
    pub recipients: Vec<String>,
    pub sent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactReportError {
    pub code: ErrorCode,
    pub message: String,
    pub timestamp: String,
    /// The contact, ticket or configuration concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_type: Option<ItemKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactDeactivationReport {
    pub success: bool,
    /// `planned` (dry run), `confirmation_required`, `blast_radius_exceeded`; absent for a real run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub dry_run: bool,
    pub deactivation_summary: DeactivationSummary,
    pub contacts_deactivated: Vec<DeactivatedContact>,
    pub contacts_excluded: Vec<ExcludedContact>,
    pub related_updates: RelatedUpdates,
    pub audit_trail: AuditTrail,
    pub ticket_id: Option<String>,
    pub primary_contacts: Vec<PrimaryContactReport>,
    /// Which contact open tickets and configurations of leaving contacts get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassignment: Option<Reassignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<BlastRadius>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<ContactReportError>,
}

fn report_error(code: ErrorCode, message: impl Into<String>, item: Option<(ItemKind, &str)>) -> ContactReportError {
    ContactReportError {
        code,
        message: message.into(),
        timestamp: domain::iso8601(domain::now()),
        item_type: item.map(|(t, _)| t),
        item_id: item.map(|(_, id)| id.to_string()),
    }
}

impl ContactDeactivationReport {
    fn empty(company: Option<&Company>, company_id: Option<&str>, initiated_by: &str, dry_run: bool) -> Self {
        let now = domain::iso8601(domain::now());
        Self {
            success: false,
            status: None,
            dry_run,
            deactivation_summary: DeactivationSummary {
                company_id: company.map(|c| c.id.as_str()).or(company_id).map_or(Value::Null, id_value),
                company_name: company.map(|c| c.name.clone()),
                total_contacts_found: 0,
                contacts_deactivated: 0,
                contacts_excluded: 0,
                contacts_already_inactive: 0,
                deactivation_timestamp: now.clone(),
                reason: None,
            },
            contacts_deactivated: Vec::new(),
            contacts_excluded: Vec::new(),
            related_updates: RelatedUpdates::default(),
            audit_trail: AuditTrail {
                operation_id: None,
                initiated_by: initiated_by.to_string(),
                timestamp: now,
                rollback_available: false,
            },
            ticket_id: None,
            primary_contacts: Vec::new(),
            reassignment: None,
            blast_radius: None,
            notification: None,
            plan_hash: None,
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// A report for a request that could not even be read.
    pub fn invalid(error: &OfframpError, initiated_by: &str) -> Self {
        let mut report = Self::empty(None, None, initiated_by, true);
        report.errors.push(report_error(error.code(), error.to_string(), None));
        report
    }

    /// The most significant error code, for an exit status (per-item failures last).
    pub fn primary_error(&self) -> Option<ErrorCode> {
        let per_item = [
            ErrorCode::ContactUpdateFailed,
            ErrorCode::RelatedUpdateFailed,
            ErrorCode::TicketUpdateFailed,
            ErrorCode::NotificationFailed,
        ];
        self.errors.iter().map(|e| e.code).find(|c| !per_item.contains(c)).or(self.errors.first().map(|e| e.code))
    }
}

// ---------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------

/// What a run does to one open ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTicketChange {
    /// The ticket's new contact; `None` clears it.
    pub contact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<TicketOwner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl PlannedTicketChange {
    fn assignment(&self) -> TicketAssignment {
        TicketAssignment {
            contact_id: Some(self.contact_id.clone()),
            owner: self.owner.clone().map(Some),
            queue: self.queue.clone().map(Some),
        }
    }

    /// The ticket already looks like this change's result.
    fn done_on(&self, ticket: &Ticket) -> bool {
        ticket.contact_id == self.contact_id
            && self.owner.as_ref().is_none_or(|o| ticket.owner_id.as_deref() == Some(o.id.as_str()))
            && self.queue.as_ref().is_none_or(|q| ticket.queue.as_deref() == Some(q.as_str()))
    }
}

/// A snapshot of a related record: its state before, and what the plan does to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RelatedSnapshot<T, C> {
    before: T,
    change: C,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
enum ContactPlan {
    Deactivate,
    Excluded(String),
    AlreadyInactive,
}

impl ContactPlan {
    fn action(&self) -> &'static str {
        match self {
            ContactPlan::Deactivate => "deactivate",
            ContactPlan::Excluded(_) => "exclude",
            ContactPlan::AlreadyInactive => "skip",
        }
    }
}

struct Plan {
    contacts: Vec<(Contact, ContactPlan)>,
    tickets: Vec<(Ticket, PlannedTicketChange)>,
    configurations: Vec<(Configuration, Option<String>)>,
    primary: Vec<PrimaryContactReport>,
    reassignment: Reassignment,
    blast: BlastRadius,
    hash: String,
    warnings: Vec<String>,
}

fn sort_key(id: &str) -> (u8, u64, String) {
    match id.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, id.to_string()),
    }
}

fn hash_plan(psa: &dyn Psa, company: &Company, plan: &Plan) -> String {
    // Sorted inputs and struct fields in declaration order: the same plan always
    // serialises to the same bytes.
    let canonical = json!({
        "workflow": WORKFLOW,
        "psa": psa.kind().as_str(),
        "company_id": company.id,
        "contacts": plan.contacts.iter().map(|(c, p)| json!([c.id, c.active, p])).collect::<Vec<_>>(),
        "tickets": plan.tickets.iter().map(|(t, ch)| json!([t.id, t.contact_id, ch])).collect::<Vec<_>>(),
        "configurations": plan.configurations.iter().map(|(c, to)| json!([c.id, c.contact_id, to])).collect::<Vec<_>>(),
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// How strongly a primary-contact signal names the primary: the company record's own
/// pointer (ConnectWise `company.defaultContact`, HaloPSA `site.maincontact_id`) names one
/// contact by construction, while a flag on contact records (ConnectWise
/// `contact.defaultFlag`, Autotask `contact.primaryContact`) can be set on several; lower
/// is stronger.
fn signal_rank(signal: &str) -> u8 {
    if signal.starts_with("contact.") { 1 } else { 0 }
}

/// The primary contact related records are pointed at when a setting says `primary`, and
/// the signal that decided. Every contact any signal names is kept (see `make_plan`), but
/// tickets need exactly one, so the rule is: among the primary contacts that stay active,
/// the one named by the strongest signal ([`signal_rank`]); among equals the lowest id,
/// compared as numbers ("9" before "10"), then ids that are not numbers, as text. The
/// report says which contact this gave and why.
pub(crate) fn reassignment_primary<'a>(
    primary_signals: &'a BTreeMap<String, Vec<String>>,
    staying: &HashSet<String>,
) -> Option<(&'a str, &'a str)> {
    primary_signals
        .iter()
        .filter(|(id, _)| staying.contains(*id))
        .filter_map(|(id, signals)| {
            let strongest = signals.iter().min_by_key(|s| signal_rank(s))?;
            Some((id.as_str(), strongest.as_str()))
        })
        .min_by_key(|(id, signal)| (signal_rank(signal), sort_key(id)))
}

/// Resolve a [`ContactTarget`] to a contact id that stays active, with the reason for the report.
fn resolve_target(
    target: &ContactTarget,
    key: &str,
    staying: &HashSet<String>,
    primary_kept: Option<(&str, &str)>,
) -> Result<Option<(String, String)>, OfframpError> {
    match target {
        ContactTarget::None => Ok(None),
        ContactTarget::Primary => {
            Ok(primary_kept.map(|(id, signal)| (id.to_string(), format!("primary contact ({signal})"))))
        }
        ContactTarget::Contact(id) if staying.contains(id) => Ok(Some((id.clone(), format!("setting {key}")))),
        ContactTarget::Contact(id) => Err(OfframpError::configuration(format!(
            "setting {key} names contact {id}, which is not a contact of this company that stays active; nothing was changed"
        ))),
    }
}

struct Validated {
    company_id: String,
    exclude: Vec<String>,
    reason: Option<String>,
    initiated_by: String,
    requester: Option<String>,
    ticket_id: Option<String>,
    plan_hash: Option<String>,
}

fn validate(request: &DeactivateContactsRequest) -> Result<Validated, OfframpError> {
    let company_id = input::identifier("company_id", request.company_id.as_deref())?
        .ok_or_else(|| OfframpError::invalid_input("company_id is required"))?;
    if request.exclude_contacts.len() > MAX_EXCLUSIONS {
        return Err(OfframpError::invalid_input(format!("exclude_contacts names more than {MAX_EXCLUSIONS} contacts")));
    }
    let mut exclude = Vec::new();
    for id in &request.exclude_contacts {
        let id = input::identifier("exclude_contacts[]", Some(id))?
            .ok_or_else(|| OfframpError::invalid_input("exclude_contacts contains an empty id"))?;
        if !exclude.contains(&id) {
            exclude.push(id);
        }
    }
    let requester = input::text("requester_email", request.requester_email.as_deref(), 254)?;
    if let Some(address) = &requester
        && !org_settings::looks_like_email(address)
    {
        return Err(OfframpError::invalid_input(format!("requester_email '{address}' is not an e-mail address")));
    }
    Ok(Validated {
        company_id,
        exclude,
        reason: input::text("reason", request.reason.as_deref(), 1000)?,
        initiated_by: input::text("initiated_by", request.initiated_by.as_deref(), 200)?
            .unwrap_or_else(|| "unknown".into()),
        requester,
        ticket_id: input::identifier("ticket_id", request.ticket_id.as_deref())?,
        plan_hash: request.plan_hash.as_deref().map(input::plan_hash).transpose()?,
    })
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/// Run the workflow. Never panics on bad input; every outcome is a report.
pub async fn deactivate_contacts(
    deps: &ContactDeps<'_>,
    request: DeactivateContactsRequest,
) -> ContactDeactivationReport {
    let initiated_by = request.initiated_by.clone().unwrap_or_else(|| "unknown".into());
    let dry_run = request.dry_run || !request.confirmation;
    let company_id = request.company_id.clone();
    match run(deps, request).await {
        Ok(report) => report,
        Err(Failure { error, company, operation_id }) => {
            tracing::warn!(code = %error.code(), error = %error, "contact deactivation refused or failed");
            let mut report =
                ContactDeactivationReport::empty(company.as_ref(), company_id.as_deref(), &initiated_by, dry_run);
            report.audit_trail.operation_id = operation_id;
            report.errors.push(report_error(error.code(), error.to_string(), None));
            report
        }
    }
}

struct Failure {
    error: OfframpError,
    company: Option<Company>,
    operation_id: Option<String>,
}

impl<E: Into<OfframpError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { error: error.into(), company: None, operation_id: None }
    }
}

async fn run(deps: &ContactDeps<'_>, request: DeactivateContactsRequest) -> Result<ContactDeactivationReport, Failure> {
    if let Some(operation_id) = request.operation_id.as_deref() {
        let operation_id = input::operation_id(operation_id)?;
        let span = tracing::info_span!("operation", operation_id = %operation_id, workflow = %WORKFLOW, resumed = true);
        return resume(deps, &operation_id).instrument(span).await;
    }
    let v = validate(&request)?;
    let company = deps.psa.company_by_id(&v.company_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::ClientNotFound, format!("no {} company has id {}", deps.psa.kind(), v.company_id))
    })?;
    let operation_id = domain::new_operation_id();
    let span =
        tracing::info_span!("operation", operation_id = %operation_id, workflow = %WORKFLOW, client_id = %company.id);
    plan_and_apply(deps, &request, v, company, operation_id).instrument(span).await
}

async fn make_plan(
    deps: &ContactDeps<'_>,
    v: &Validated,
    company: &Company,
    settings: &OrgSettings,
    preserve_primary: bool,
    override_guard: bool,
) -> Result<Plan, OfframpError> {
    let psa = deps.psa;
    let mut contacts = psa.list_contacts(&company.id).await?;
    contacts.sort_by_key(|c| sort_key(&c.id));
    let signals = psa.primary_contacts(company).await?;
    let mut warnings = Vec::new();

    let known: HashSet<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
    for id in &v.exclude {
        if !known.contains(id.as_str()) {
            warnings.push(format!("exclude_contacts: contact {id} is not a contact of this company; ignored"));
        }
    }
    // Every contact any signal names is primary: when the signals disagree, all are kept.
    let mut primary_signals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for signal in signals {
        let entry = primary_signals.entry(signal.contact_id.clone()).or_default();
        if !entry.contains(&signal.signal) {
            entry.push(signal.signal);
        }
    }
    let by_id: HashMap<&str, &Contact> = contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    let planned: Vec<(Contact, ContactPlan)> = contacts
        .iter()
        .map(|c| {
            let plan = if v.exclude.contains(&c.id) {
                ContactPlan::Excluded("Explicitly excluded".into())
            } else if !c.active {
                ContactPlan::AlreadyInactive
            } else if let Some(signals) = primary_signals.get(&c.id).filter(|_| preserve_primary) {
                ContactPlan::Excluded(format!("Primary contact preserved ({})", signals.join(", ")))
            } else {
                ContactPlan::Deactivate
            };
            (c.clone(), plan)
        })
        .collect();
    let primary: Vec<PrimaryContactReport> = primary_signals
        .iter()
        .map(|(id, signals)| PrimaryContactReport {
            contact_id: id_value(id),
            name: by_id.get(id.as_str()).map(|c| c.name.clone()),
            signals: signals.clone(),
            preserved: planned.iter().any(|(c, p)| &c.id == id && matches!(p, ContactPlan::Excluded(_))),
        })
        .collect();
    for (id, signals) in &primary_signals {
        if !by_id.contains_key(id.as_str()) {
            warnings.push(format!(
                "primary contact {id} ({}) is not among the company's contacts; it was not considered",
                signals.join(", ")
            ));
        }
    }

    let leaving: HashSet<String> =
        planned.iter().filter(|(_, p)| *p == ContactPlan::Deactivate).map(|(c, _)| c.id.clone()).collect();
    let staying: HashSet<String> =
        contacts.iter().filter(|c| c.active && !leaving.contains(&c.id)).map(|c| c.id.clone()).collect();
    let primary_kept = reassignment_primary(&primary_signals, &staying);
    let candidates: Vec<&String> = primary_signals.keys().filter(|id| staying.contains(*id)).collect();
    let uses_primary = [&settings.ticket_contact, &settings.configuration_contact].contains(&&ContactTarget::Primary);
    if let (Some((id, signal)), true, true) = (primary_kept, candidates.len() > 1, uses_primary) {
        let named: Vec<String> =
            candidates.iter().map(|c| format!("{c} ({})", primary_signals[*c].join(", "))).collect();
        warnings.push(format!(
            "The primary-contact signals name {} contacts: {}. All stay active; related records go to {id}, named by \
             {signal} (the company's own pointer before contact flags, then the lowest id).",
            candidates.len(),
            named.join("; ")
        ));
    }
    let target_report = |target: &Option<(String, String)>| {
        target.as_ref().map(|(id, why)| ReassignmentTarget {
            contact_id: id_value(id),
            name: by_id.get(id.as_str()).map(|c| c.name.clone()),
            chosen_by: why.clone(),
        })
    };

    let ticket_target = resolve_target(&settings.ticket_contact, org_settings::TICKET_CONTACT, &staying, primary_kept)?;
    let mut reassignment = Reassignment { ticket_contact: target_report(&ticket_target), configuration_contact: None };
    let ticket_contact = ticket_target.map(|(id, _)| id);
    let mut tickets: Vec<(Ticket, PlannedTicketChange)> = psa
        .open_tickets(&company.id)
        .await?
        .into_iter()
        .filter(|t| !t.closed && t.contact_id.as_ref().is_some_and(|c| leaving.contains(c)))
        .map(|t| {
            let change = PlannedTicketChange {
                contact_id: ticket_contact.clone(),
                owner: settings.ticket_owner.clone(),
                queue: settings.ticket_queue.clone(),
            };
            (t, change)
        })
        .collect();
    tickets.sort_by_key(|(t, _)| sort_key(&t.id));

    let mut configurations = Vec::new();
    if psa.supports_configuration_contacts() {
        let target = resolve_target(
            &settings.configuration_contact,
            org_settings::CONFIGURATION_CONTACT,
            &staying,
            primary_kept,
        )?;
        reassignment.configuration_contact = target_report(&target);
        let to = target.map(|(id, _)| id);
        configurations = psa
            .list_configurations(&company.id, true)
            .await?
            .into_iter()
            .filter(|c| c.contact_id.as_ref().is_some_and(|id| leaving.contains(id)))
            .map(|c| (c, to.clone()))
            .collect();
        configurations.sort_by_key(|(c, _)| sort_key(&c.id));
    } else if !leaving.is_empty() {
        warnings.push(format!(
            "{} configurations have no contact field this adapter can change; configuration contacts were not checked",
            psa.kind()
        ));
    }
    warnings.push(format!(
        "Scheduled tasks: {} has no documented API for recurring work tied to a contact; none were checked or disabled",
        psa.kind()
    ));

    let active = contacts.iter().filter(|c| c.active).count() as u64;
    let to_deactivate = leaving.len() as u64;
    let company_contacts = contacts.len() as u64;
    let share = if company_contacts == 0 { 0.0 } else { to_deactivate as f64 * 100.0 / company_contacts as f64 };
    let exceeded =
        to_deactivate > settings.guard_max_contacts || share > settings.guard_max_contact_share as f64 + f64::EPSILON;
    let blast = BlastRadius {
        contacts_to_deactivate: to_deactivate,
        company_contacts,
        share_percent: (share * 10.0).round() / 10.0,
        max_contacts: settings.guard_max_contacts,
        max_share_percent: settings.guard_max_contact_share,
        exceeded,
        overridden: exceeded && override_guard,
    };
    if active == 0 {
        warnings.push("The company has no active contacts: nothing to deactivate".into());
    }
    let mut plan = Plan {
        contacts: planned,
        tickets,
        configurations,
        primary,
        reassignment,
        blast,
        hash: String::new(),
        warnings,
    };
    plan.hash = hash_plan(psa, company, &plan);
    Ok(plan)
}

async fn plan_and_apply(
    deps: &ContactDeps<'_>,
    request: &DeactivateContactsRequest,
    v: Validated,
    company: Company,
    operation_id: String,
) -> Result<ContactDeactivationReport, Failure> {
    let fail = |error: OfframpError, recorded: bool| Failure {
        error,
        company: Some(company.clone()),
        operation_id: recorded.then(|| operation_id.clone()),
    };
    let psa_kind = deps.psa.kind().as_str();
    let settings = org_settings::resolve(deps.settings, psa_kind, &company.id).await.map_err(|e| fail(e, false))?;
    let preserve_primary = request.preserve_primary.unwrap_or(settings.preserve_primary);
    if let Some(ticket_id) = &v.ticket_id {
        match deps.psa.ticket(ticket_id).await.map_err(|e| fail(e.into(), false))? {
            Some(ticket) if ticket.company_id == company.id => {}
            Some(ticket) => {
                return Err(fail(
                    OfframpError::invalid_input(format!(
                        "ticket {ticket_id} belongs to company {}, not {}; nothing was changed",
                        ticket.company_id, company.id
                    )),
                    false,
                ));
            }
            None => {
                return Err(fail(
                    OfframpError::invalid_input(format!("ticket {ticket_id} does not exist; nothing was changed")),
                    false,
                ));
            }
        }
    }
    let plan = make_plan(deps, &v, &company, &settings, preserve_primary, request.override_blast_radius)
        .await
        .map_err(|e| fail(e, false))?;

    let guard_stops = plan.blast.exceeded && !request.override_blast_radius;
    let plan_only = request.dry_run || !request.confirmation || guard_stops;
    let record = OperationRecord {
        operation_id: operation_id.clone(),
        workflow: WORKFLOW,
        psa: psa_kind.into(),
        client_id: company.id.clone(),
        client_name: company.name.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        dry_run: plan_only,
        plan_hash: Some(plan.hash.clone()),
        created_at: domain::now(),
        input: json!({
            "request": request,
            "preserve_primary": preserve_primary,
            "settings": settings,
            "requester_email": v.requester,
            "reassignment": plan.reassignment,
        }),
        parent_operation_id: None,
    };
    deps.audit.create_operation(&record).await.map_err(|e| fail(e.into(), false))?;

    let mut report = planned_report(&company, &record, &plan);
    if let Some(expected) = &v.plan_hash
        && *expected != plan.hash
    {
        let error = OfframpError::new(
            ErrorCode::PlanChanged,
            format!(
                "the plan changed since it was reviewed (reviewed {expected}, now {}); nothing was changed",
                plan.hash
            ),
        );
        let detail = json!({ "code": error.code(), "message": error.to_string() });
        deps.audit
            .append_event(&OperationEvent::new(&operation_id, OperationEventKind::Failed, detail))
            .await
            .map_err(|e| fail(e.into(), true))?;
        return Err(fail(error, true));
    }
    if plan_only {
        let (status, error) = if request.dry_run {
            ("planned", None)
        } else if !request.confirmation {
            (
                "confirmation_required",
                Some(report_error(
                    ErrorCode::ConfirmationRequired,
                    "confirmation: true is required to deactivate contacts; this is the plan, and nothing was changed",
                    None,
                )),
            )
        } else {
            (
                "blast_radius_exceeded",
                Some(report_error(
                    ErrorCode::BlastRadiusExceeded,
                    format!(
                        "this run would deactivate {} of {} contacts ({}%), above the guard's limits ({} contacts, {}%); nothing was changed. Review the plan and run again with override_blast_radius (CLI --override-blast-radius)",
                        plan.blast.contacts_to_deactivate,
                        plan.blast.company_contacts,
                        plan.blast.share_percent,
                        plan.blast.max_contacts,
                        plan.blast.max_share_percent
                    ),
                    None,
                )),
            )
        };
        report.status = Some(status.into());
        report.success = error.is_none();
        report.errors.extend(error);
        report.warnings.insert(0, "Nothing was changed: this is the plan of a run.".into());
        let detail = json!({ "status": status, "plan_hash": plan.hash, "plan": plan_detail(&plan) });
        deps.audit
            .append_event(&OperationEvent::new(&operation_id, OperationEventKind::Planned, detail))
            .await
            .map_err(|e| fail(e.into(), true))?;
        return Ok(report);
    }

    // Snapshot every item the run will touch (and the contacts it leaves alone), then start.
    let mut snapshots = Vec::new();
    for (contact, p) in &plan.contacts {
        snapshots.push(snapshot(&operation_id, ITEM_CONTACT, &contact.id, &contact.name, json!(contact), p.action()));
    }
    for (ticket, change) in &plan.tickets {
        let state = json!(RelatedSnapshot { before: ticket, change });
        snapshots.push(snapshot(&operation_id, ITEM_TICKET, &ticket.id, &ticket.summary, state, "reassign"));
    }
    for (config, to) in &plan.configurations {
        let state = json!(RelatedSnapshot { before: config, change: to });
        snapshots.push(snapshot(&operation_id, ITEM_CONFIGURATION_CONTACT, &config.id, &config.name, state, "update"));
    }
    for chunk in snapshots.chunks(SNAPSHOT_CHUNK) {
        deps.audit.put_snapshots(chunk).await.map_err(|e| fail(e.into(), true))?;
    }
    drop(snapshots);
    let started = json!({ "plan_hash": plan.hash, "override_blast_radius": request.override_blast_radius });
    deps.audit
        .append_event(&OperationEvent::new(&operation_id, OperationEventKind::Started, started))
        .await
        .map_err(|e| fail(e.into(), true))?;

    let work = Work {
        contacts: plan
            .contacts
            .iter()
            .filter(|(_, p)| *p == ContactPlan::Deactivate)
            .map(|(c, _)| (c.clone(), false))
            .collect(),
        tickets: plan.tickets.iter().map(|(t, c)| (t.clone(), c.clone(), false)).collect(),
        configurations: plan.configurations.iter().map(|(c, to)| (c.clone(), to.clone(), false)).collect(),
        note_done: false,
        notification_done: false,
    };
    let context = RunContext {
        operation_id: operation_id.clone(),
        company: company.clone(),
        initiated_by: v.initiated_by.clone(),
        reason: v.reason.clone(),
        ticket_id: v.ticket_id.clone(),
        requester: v
            .requester
            .clone()
            .or_else(|| org_settings::looks_like_email(&v.initiated_by).then(|| v.initiated_by.clone())),
        settings,
    };
    let outcome = execute(deps, &context, work, Outcome::default()).await;
    Ok(finish(deps, &context, report, outcome).await)
}

fn snapshot(operation_id: &str, item_type: ItemKind, id: &str, name: &str, state: Value, action: &str) -> ItemSnapshot {
    ItemSnapshot {
        operation_id: operation_id.to_string(),
        item_type,
        item_id: id.to_string(),
        item_name: name.to_string(),
        state,
        planned_action: action.into(),
    }
}

fn plan_detail(plan: &Plan) -> Value {
    json!({
        "contacts": plan.contacts.iter().map(|(c, p)| json!({"contact_id": c.id, "name": c.name, "action": p.action()})).collect::<Vec<_>>(),
        "tickets": plan.tickets.iter().map(|(t, ch)| json!({"ticket_id": t.id, "change": ch})).collect::<Vec<_>>(),
        "configurations": plan.configurations.iter().map(|(c, to)| json!({"config_id": c.id, "contact_id": to})).collect::<Vec<_>>(),
        "blast_radius": plan.blast,
    })
}

/// The report of a plan: what a real run would do.
fn planned_report(company: &Company, record: &OperationRecord, plan: &Plan) -> ContactDeactivationReport {
    let mut report = ContactDeactivationReport::empty(Some(company), None, &record.initiated_by, record.dry_run);
    report.success = true;
    report.deactivation_summary.reason = record.reason.clone();
    report.deactivation_summary.total_contacts_found = plan.contacts.len() as u64;
    for (contact, p) in &plan.contacts {
        match p {
            ContactPlan::Deactivate => {
                report.deactivation_summary.contacts_deactivated += 1;
                report.contacts_deactivated.push(deactivated_entry(contact));
            }
            ContactPlan::Excluded(reason) => {
                report.deactivation_summary.contacts_excluded += 1;
                report.contacts_excluded.push(ExcludedContact {
                    contact_id: id_value(&contact.id),
                    name: contact.name.clone(),
                    reason: reason.clone(),
                });
            }
            ContactPlan::AlreadyInactive => report.deactivation_summary.contacts_already_inactive += 1,
        }
    }
    report.related_updates.open_tickets_reassigned = plan.tickets.len() as u64;
    report.related_updates.configurations_updated = plan.configurations.len() as u64;
    report.audit_trail.operation_id = Some(record.operation_id.clone());
    report.primary_contacts = plan.primary.clone();
    report.reassignment = Some(plan.reassignment.clone());
    report.blast_radius = Some(plan.blast.clone());
    report.plan_hash = Some(plan.hash.clone());
    report.warnings = plan.warnings.clone();
    report
}

fn deactivated_entry(contact: &Contact) -> DeactivatedContact {
    DeactivatedContact {
        contact_id: id_value(&contact.id),
        name: contact.name.clone(),
        email: contact.email.clone(),
        title: contact.title.clone(),
        previous_status: "Active".into(),
        new_status: "Inactive".into(),
    }
}

// ---------------------------------------------------------------------------
// Executing the changes
// ---------------------------------------------------------------------------

/// What is left to do. The flag says "may already be done": set on resume, where the item
/// is read fresh first and only confirmed if the interrupted run's change reached the PSA.
struct Work {
    contacts: Vec<(Contact, bool)>,
    tickets: Vec<(Ticket, PlannedTicketChange, bool)>,
    configurations: Vec<(Configuration, Option<String>, bool)>,
    note_done: bool,
    notification_done: bool,
}

struct RunContext {
    operation_id: String,
    company: Company,
    initiated_by: String,
    reason: Option<String>,
    ticket_id: Option<String>,
    requester: Option<String>,
    settings: OrgSettings,
}

#[derive(Default)]
struct Outcome {
    deactivated: Vec<Contact>,
    tickets_changed: u64,
    configurations_changed: u64,
    /// Items never sent because the request budget was spent first.
    not_attempted: u64,
    errors: Vec<ContactReportError>,
    warnings: Vec<String>,
    ticket_id: Option<String>,
    notification: Option<NotificationReport>,
    /// Why the run stopped early (audit trail unwritable, request budget spent); resumable.
    stopped: Option<OfframpError>,
}

fn change_record(
    operation_id: &str,
    item_type: ItemKind,
    id: &str,
    name: &str,
    before: Value,
    after: Option<Value>,
    error: Option<(ErrorCode, String)>,
) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type,
        item_id: id.to_string(),
        item_name: name.to_string(),
        outcome: if error.is_some() { ItemOutcome::Failed } else { ItemOutcome::Changed },
        before,
        after,
        error_code: error.as_ref().map(|(code, _)| code.as_str().to_string()),
        error_message: error.map(|(_, message)| message),
        at: domain::now(),
    }
}

/// A per-item error code: transport and permission problems keep theirs, a rejected write is the item's.
fn item_code(error: &PsaError, default: ErrorCode) -> ErrorCode {
    error.write_failure_code(default)
}

/// One item's result: its change record and what the report says.
enum Step<T> {
    Changed(T, ItemChange),
    Failed(ContactReportError, ItemChange),
    /// Not sent: the request budget was spent before its turn.
    NotAttempted,
    /// This item found the request budget spent: the run stops here, resumable.
    Budget(PsaError),
}

async fn write_changes(deps: &ContactDeps<'_>, changes: &mut Vec<ItemChange>, all: bool) -> Result<(), OfframpError> {
    while changes.len() >= AUDIT_BATCH || (all && !changes.is_empty()) {
        let chunk: Vec<ItemChange> = changes.drain(..changes.len().min(AUDIT_BATCH)).collect();
        deps.audit.put_changes(&chunk).await?;
    }
    Ok(())
}

/// Run one phase: `apply` to each item, `deps.concurrency` at once, results in order, change
/// records written as they come in. Once the request budget is spent nothing more is sent.
/// Returns the items' states after their change.
async fn phase<I, T, F, Fut>(
    deps: &ContactDeps<'_>,
    items: Vec<I>,
    halted: &AtomicBool,
    outcome: &mut Outcome,
    apply: F,
) -> Result<Vec<T>, OfframpError>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = Step<T>>,
{
    let mut changed = Vec::new();
    let mut pending = Vec::new();
    let mut stream = futures::stream::iter(items)
        .map(|item| {
            // Async blocks are lazy: the check runs when the item's turn comes.
            let work = apply(item);
            async move { if halted.load(Ordering::SeqCst) { Step::NotAttempted } else { work.await } }
        })
        .buffered(deps.concurrency.max(1));
    while let Some(step) = stream.next().await {
        deps.progress.item_done();
        match step {
            Step::Changed(after, change) => {
                changed.push(after);
                pending.push(change);
            }
            Step::Failed(error, change) => {
                outcome.errors.push(error);
                pending.push(change);
            }
            Step::Budget(error) => {
                halted.store(true, Ordering::SeqCst);
                outcome.not_attempted += 1;
                outcome.stopped.get_or_insert(error.into());
            }
            Step::NotAttempted => outcome.not_attempted += 1,
        }
        write_changes(deps, &mut pending, false).await?;
    }
    drop(stream);
    write_changes(deps, &mut pending, true).await?;
    Ok(changed)
}

/// A failed change: its report entry and its change record.
fn failed<T>(op: &str, item: (ItemKind, &str, &str), before: Value, code: ErrorCode, message: String) -> Step<T> {
    let (item_type, id, name) = item;
    let record = change_record(op, item_type, id, name, before, None, Some((code, message.clone())));
    Step::Failed(report_error(code, message, Some((item_type, id))), record)
}

async fn deactivate_contact(deps: &ContactDeps<'_>, op: &str, contact: Contact, verify: bool) -> Step<Contact> {
    let item = (ITEM_CONTACT, contact.id.as_str(), contact.name.as_str());
    let done = |after: Contact| {
        let record =
            change_record(op, ITEM_CONTACT, &contact.id, &contact.name, json!(contact), Some(json!(after)), None);
        Step::Changed(after, record)
    };
    if verify {
        match deps.psa.contact(&contact.id).await {
            // The interrupted run's update reached the PSA; only its record is missing.
            Ok(Some(now)) if !now.active => return done(now),
            Err(error @ PsaError::BudgetExhausted { .. }) => return Step::Budget(error),
            _ => {}
        }
    }
    match deps.psa.set_contact_active(&contact, false).await {
        Ok(after) if !after.active => done(after),
        Ok(_) => {
            let message = format!(
                "Unable to deactivate contact {} ({}): the PSA accepted the update but the contact is still active",
                contact.name, contact.id
            );
            failed(op, item, json!(contact), ErrorCode::ContactUpdateFailed, message)
        }
        Err(error @ PsaError::BudgetExhausted { .. }) => Step::Budget(error),
        Err(error) => {
            let message = format!("Unable to deactivate contact {} ({}): {error}", contact.name, contact.id);
            failed(op, item, json!(contact), item_code(&error, ErrorCode::ContactUpdateFailed), message)
        }
    }
}

async fn reassign_ticket(
    deps: &ContactDeps<'_>,
    op: &str,
    ticket: Ticket,
    change: PlannedTicketChange,
    verify: bool,
) -> Step<Ticket> {
    let item = (ITEM_TICKET, ticket.id.as_str(), ticket.summary.as_str());
    let done = |after: Ticket| {
        let record =
            change_record(op, ITEM_TICKET, &ticket.id, &ticket.summary, json!(ticket), Some(json!(after)), None);
        Step::Changed(after, record)
    };
    if verify {
        match deps.psa.ticket(&ticket.id).await {
            Ok(Some(now)) if change.done_on(&now) => return done(now),
            Err(error @ PsaError::BudgetExhausted { .. }) => return Step::Budget(error),
            _ => {}
        }
    }
    match deps.psa.update_ticket(&ticket.id, &change.assignment()).await {
        Ok(after) => done(after),
        Err(error @ PsaError::BudgetExhausted { .. }) => Step::Budget(error),
        Err(error) => {
            let message = format!("Unable to reassign ticket {} ({}): {error}", ticket.id, ticket.summary);
            failed(op, item, json!(ticket), item_code(&error, ErrorCode::RelatedUpdateFailed), message)
        }
    }
}

async fn update_configuration_contact(
    deps: &ContactDeps<'_>,
    op: &str,
    config: Configuration,
    to: Option<String>,
    verify: bool,
) -> Step<Configuration> {
    let item = (ITEM_CONFIGURATION_CONTACT, config.id.as_str(), config.name.as_str());
    let done = |after: Configuration| {
        let record = change_record(
            op,
            ITEM_CONFIGURATION_CONTACT,
            &config.id,
            &config.name,
            json!(config),
            Some(json!(after)),
            None,
        );
        Step::Changed(after, record)
    };
    if verify {
        match deps.psa.configuration(&config.id).await {
            Ok(Some(now)) if now.contact_id == to => return done(now),
            Err(error @ PsaError::BudgetExhausted { .. }) => return Step::Budget(error),
            _ => {}
        }
    }
    match deps.psa.set_configuration_contact(&config.id, to.as_deref()).await {
        Ok(after) => done(after),
        Err(error @ PsaError::BudgetExhausted { .. }) => Step::Budget(error),
        Err(error) => {
            let message =
                format!("Unable to update the contact of configuration {} ({}): {error}", config.id, config.name);
            failed(op, item, json!(config), item_code(&error, ErrorCode::RelatedUpdateFailed), message)
        }
    }
}

/// Do `work`. `earlier` is what the operation did before (a resume): it is part of the
/// outcome from the start, so the note and the notification describe the whole operation.
async fn execute(deps: &ContactDeps<'_>, ctx: &RunContext, work: Work, earlier: Outcome) -> Outcome {
    let mut outcome = earlier;
    let total = work.contacts.len() + work.tickets.len() + work.configurations.len();
    deps.progress.start(total as u64);
    let op = ctx.operation_id.as_str();
    let halted = AtomicBool::new(false);

    let deactivated = phase(deps, work.contacts, &halted, &mut outcome, |(contact, verify)| {
        deactivate_contact(deps, op, contact, verify)
    })
    .await;
    match deactivated {
        Ok(contacts) => {
            outcome.deactivated.extend(contacts);
            outcome.deactivated.sort_by_key(|c| sort_key(&c.id));
            outcome.deactivated.dedup_by(|a, b| a.id == b.id);
        }
        Err(error) => {
            outcome.stopped = Some(error);
            return outcome;
        }
    }
    // Related records of a contact that failed to deactivate stay as they are: that
    // contact is still active, so its tickets and configurations are not orphaned.
    let failed_contacts: HashSet<String> =
        outcome.errors.iter().filter(|e| e.item_type == Some(ITEM_CONTACT)).filter_map(|e| e.item_id.clone()).collect();
    let keeps = |contact: &Option<String>| contact.as_ref().is_some_and(|c| failed_contacts.contains(c));

    let tickets: Vec<_> = work.tickets.into_iter().filter(|(t, _, _)| !keeps(&t.contact_id)).collect();
    match phase(deps, tickets, &halted, &mut outcome, |(ticket, change, verify)| {
        reassign_ticket(deps, op, ticket, change, verify)
    })
    .await
    {
        Ok(changed) => outcome.tickets_changed += changed.len() as u64,
        Err(error) => {
            outcome.stopped = Some(error);
            return outcome;
        }
    }

    let configurations: Vec<_> = work.configurations.into_iter().filter(|(c, _, _)| !keeps(&c.contact_id)).collect();
    match phase(deps, configurations, &halted, &mut outcome, |(config, to, verify)| {
        update_configuration_contact(deps, op, config, to, verify)
    })
    .await
    {
        Ok(changed) => outcome.configurations_changed += changed.len() as u64,
        Err(error) => {
            outcome.stopped = Some(error);
            return outcome;
        }
    }
    deps.progress.finish();
    if halted.load(Ordering::SeqCst) {
        // The note and the notification describe a finished run; they wait for the resume.
        return outcome;
    }

    // The summary note, on the given ticket or a new one.
    if !work.note_done {
        let text = summary_text(ctx, &outcome, deps.psa.kind().as_str());
        let ticket = match &ctx.ticket_id {
            Some(id) => Ok(id.clone()),
            None => {
                let new = NewTicket {
                    company_id: ctx.company.id.clone(),
                    summary: format!("Contact deactivation: {}", ctx.company.name),
                    queue: ctx.settings.ticket_board.clone(),
                    description: format!(
                        "Offramp bulk contact deactivation, operation {}. The summary follows as a note.",
                        ctx.operation_id
                    ),
                };
                match deps.psa.create_ticket(&new).await {
                    Ok(created) => {
                        // Recorded the moment it exists: if the note fails or the run dies
                        // now, a resume writes the note on this ticket rather than open another.
                        outcome.ticket_id = Some(created.id.clone());
                        let record = change_record(
                            op,
                            ITEM_SUMMARY_TICKET,
                            &created.id,
                            &created.summary,
                            Value::Null,
                            Some(json!(created)),
                            None,
                        );
                        if let Err(error) = deps.audit.put_changes(&[record]).await {
                            outcome.stopped = Some(error.into());
                            return outcome;
                        }
                        Ok(created.id)
                    }
                    Err(error) => Err(error),
                }
            }
        };
        let note = TicketNote { title: "Bulk contact deactivation".into(), text: text.clone() };
        let written = match ticket {
            Ok(id) => match deps.psa.add_ticket_note(&id, &note).await {
                Ok(()) => Ok(id),
                Err(error) => {
                    let message = format!("Unable to write the summary to PSA ticket {id}: {error}");
                    Err((Some(id), message, error))
                }
            },
            Err(error) => Err((None, format!("Unable to open a PSA ticket for the summary: {error}"), error)),
        };
        let record = match written {
            Ok(ticket_id) => {
                outcome.ticket_id = Some(ticket_id.clone());
                change_record(
                    op,
                    ITEM_TICKET_NOTE,
                    &ticket_id,
                    "summary note",
                    Value::Null,
                    Some(json!({"text": text})),
                    None,
                )
            }
            Err((ticket_id, message, error)) => {
                let code = item_code(&error, ErrorCode::TicketUpdateFailed);
                outcome.ticket_id = ticket_id.clone();
                let item = ticket_id.as_deref().map(|id| (ITEM_TICKET_NOTE, id));
                outcome.errors.push(report_error(code, message.clone(), item));
                change_record(
                    op,
                    ITEM_TICKET_NOTE,
                    ticket_id.as_deref().unwrap_or("new"),
                    "summary note",
                    Value::Null,
                    None,
                    Some((code, message)),
                )
            }
        };
        if let Err(error) = deps.audit.put_changes(&[record]).await {
            outcome.stopped = Some(error.into());
            return outcome;
        }
    } else {
        outcome.ticket_id = ctx.ticket_id.clone();
    }

    // The notification.
    let mut recipients: Vec<String> = Vec::new();
    for address in ctx.requester.iter().chain(ctx.settings.notification_recipients.iter()) {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(address)) {
            recipients.push(address.clone());
        }
    }
    match deps.notifier {
        _ if work.notification_done => {}
        None => outcome
            .warnings
            .push("No notification channel is configured (OFFRAMP_NOTIFIER); nobody was notified".into()),
        Some(_) if recipients.is_empty() => outcome.warnings.push(format!(
            "No one to notify: no requester e-mail and no {} setting",
            org_settings::NOTIFICATION_RECIPIENTS
        )),
        Some(notifier) => {
            let notification = Notification {
                to: recipients.clone(),
                subject: format!(
                    "Contacts deactivated: {} ({} of {})",
                    ctx.company.name,
                    outcome.deactivated.len(),
                    outcome.deactivated.len()
                        + outcome.errors.iter().filter(|e| e.item_type == Some(ITEM_CONTACT)).count()
                ),
                text: summary_text(ctx, &outcome, deps.psa.kind().as_str()),
            };
            let result = notifier.send(&notification).await;
            let sent = result.is_ok();
            let error =
                result.err().map(|e| (ErrorCode::NotificationFailed, format!("Unable to send the notification: {e}")));
            if let Some((code, message)) = &error {
                outcome.errors.push(report_error(*code, message.clone(), None));
            }
            outcome.notification =
                Some(NotificationReport { channel: notifier.channel().into(), recipients: recipients.clone(), sent });
            let record = change_record(
                op,
                ITEM_NOTIFICATION,
                notifier.channel(),
                "notification",
                Value::Null,
                sent.then(|| json!({"to": recipients, "subject": notification.subject})),
                error,
            );
            if let Err(error) = deps.audit.put_changes(&[record]).await {
                outcome.stopped = Some(error.into());
            }
        }
    }
    outcome
}

/// The summary a person reads in the ticket note and the notification.
fn summary_text(ctx: &RunContext, outcome: &Outcome, psa: &str) -> String {
    use std::fmt::Write;
    let failed: Vec<&ContactReportError> =
        outcome.errors.iter().filter(|e| e.item_type == Some(ITEM_CONTACT)).collect();
    let mut text = String::new();
    let _ = writeln!(text, "Bulk contact deactivation for {} (company {}, {psa})", ctx.company.name, ctx.company.id);
    let _ = writeln!(text, "Requested by: {}", ctx.initiated_by);
    if let Some(reason) = &ctx.reason {
        let _ = writeln!(text, "Reason: {reason}");
    }
    let _ = writeln!(text, "Operation: {}", ctx.operation_id);
    let _ = writeln!(text);
    let _ = writeln!(text, "Contacts deactivated: {}", outcome.deactivated.len());
    for contact in &outcome.deactivated {
        let email = contact.email.as_deref().map(|e| format!(" <{e}>")).unwrap_or_default();
        let _ = writeln!(text, "  - {}{email} (id {})", contact.name, contact.id);
    }
    if !failed.is_empty() {
        let _ = writeln!(text, "Contacts NOT deactivated (failed): {}", failed.len());
        for error in &failed {
            let _ = writeln!(text, "  - {}", error.message);
        }
    }
    let _ = writeln!(text, "Open tickets reassigned: {}", outcome.tickets_changed);
    let _ = writeln!(text, "Configurations updated: {}", outcome.configurations_changed);
    let other: Vec<&ContactReportError> = outcome.errors.iter().filter(|e| e.item_type != Some(ITEM_CONTACT)).collect();
    if !other.is_empty() {
        let _ = writeln!(text, "Other problems:");
        for error in other {
            let _ = writeln!(text, "  - {}", error.message);
        }
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "To undo: offramp rollback {} (restores each contact, ticket and configuration this run changed, unless someone changed it since).",
        ctx.operation_id
    );
    text
}

/// The report of a run that got as far as changing things: what was done, always, with
/// any error beside it (never an empty report in place of real changes).
async fn finish(
    deps: &ContactDeps<'_>,
    ctx: &RunContext,
    mut report: ContactDeactivationReport,
    outcome: Outcome,
) -> ContactDeactivationReport {
    let op = &ctx.operation_id;
    // The report lists what was done, not what was planned.
    report.contacts_deactivated = outcome.deactivated.iter().map(deactivated_entry).collect();
    report.deactivation_summary.contacts_deactivated = outcome.deactivated.len() as u64;
    report.deactivation_summary.deactivation_timestamp = domain::iso8601(domain::now());
    report.related_updates.open_tickets_reassigned = outcome.tickets_changed;
    report.related_updates.configurations_updated = outcome.configurations_changed;
    report.errors.extend(outcome.errors);
    report.warnings.extend(outcome.warnings);
    report.ticket_id = outcome.ticket_id;
    report.notification = outcome.notification;
    report.audit_trail.rollback_available =
        outcome.deactivated.len() as u64 + outcome.tickets_changed + outcome.configurations_changed > 0;
    report.audit_trail.timestamp = domain::iso8601(domain::now());
    if let Some(stopped) = outcome.stopped {
        report.warnings.push(format!(
            "The run stopped before finishing ({} item(s) not attempted). Continue it with operation_id {op} (CLI: offramp contacts deactivate --resume {op}).",
            outcome.not_attempted
        ));
        report.errors.insert(0, report_error(stopped.code(), stopped.to_string(), None));
        report.success = false;
        let detail =
            json!({ "code": stopped.code(), "message": stopped.to_string(), "not_attempted": outcome.not_attempted });
        // Best effort: if the trail itself is what failed, this may fail too.
        let _ = deps.audit.append_event(&OperationEvent::new(op, OperationEventKind::Failed, detail)).await;
        return report;
    }
    report.success = report.errors.is_empty();
    let detail = json!({
        "deactivation_summary": report.deactivation_summary,
        "related_updates": report.related_updates,
        "errors": report.errors.len(),
        "ticket_id": report.ticket_id,
    });
    if let Err(error) = deps.audit.append_event(&OperationEvent::new(op, OperationEventKind::Completed, detail)).await {
        // Every change is made and recorded; only the end of the run is missing. A resume
        // finds nothing left to change and records it.
        let message = format!(
            "The changes were made and recorded, but the run's completion could not be written to the audit trail: \
             {error}. Resume with operation_id {op} to record it."
        );
        report.errors.insert(0, report_error(ErrorCode::AuditStoreError, message, None));
        report.success = false;
    }
    tracing::info!(
        deactivated = report.deactivation_summary.contacts_deactivated,
        tickets = report.related_updates.open_tickets_reassigned,
        configurations = report.related_updates.configurations_updated,
        errors = report.errors.len(),
        "contact deactivation finished"
    );
    report
}

// ---------------------------------------------------------------------------
// Resume
// ---------------------------------------------------------------------------

fn not_resumable(message: String) -> OfframpError {
    OfframpError::new(ErrorCode::OperationNotResumable, message)
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> OfframpError {
    OfframpError::new(ErrorCode::AuditStoreError, format!("{what}: {error}"))
}

async fn resume(deps: &ContactDeps<'_>, operation_id: &str) -> Result<ContactDeactivationReport, Failure> {
    let detail: OperationDetail = deps.audit.operation(operation_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {operation_id} in the audit trail"))
    })?;
    let op = &detail.operation;
    if op.workflow != WORKFLOW {
        return Err(not_resumable(format!("{operation_id} is a {} operation, not {WORKFLOW}", op.workflow)).into());
    }
    if op.dry_run {
        return Err(not_resumable(format!(
            "{operation_id} was a plan (dry run); run the workflow with confirmation instead"
        ))
        .into());
    }
    if op.psa != deps.psa.kind().as_str() {
        return Err(not_resumable(format!("{operation_id} ran against {}, not {}", op.psa, deps.psa.kind())).into());
    }
    if !detail.events.iter().any(|e| e.kind == OperationEventKind::Started) {
        return Err(not_resumable(format!("{operation_id} never started; run the workflow again")).into());
    }
    // A rollback (even an unfinished one) means someone decided to undo this operation:
    // going on would deactivate, after the undo, contacts it may just have reactivated.
    let undo = deps
        .audit
        .child_operations(operation_id)
        .await?
        .into_iter()
        .find(|child| child.workflow == Workflow::Rollback && !child.dry_run);
    if let Some(undo) = undo {
        return Err(not_resumable(format!(
            "{operation_id} was rolled back by {} ({}); resuming it would undo that rollback. Start a new run if the \
             contacts are to be deactivated again",
            undo.operation_id,
            domain::iso8601(undo.created_at)
        ))
        .into());
    }
    let request: DeactivateContactsRequest =
        serde_json::from_value(op.input["request"].clone()).map_err(|e| corrupt("operation input", e))?;
    let settings: OrgSettings = org_settings_from_record(&op.input["settings"])?;
    let done: HashSet<(ItemKind, String)> = detail
        .changes
        .iter()
        .filter(|c| c.outcome == ItemOutcome::Changed)
        .map(|c| (c.item_type, c.item_id.clone()))
        .collect();
    let is_done = |item_type: ItemKind, id: &str| done.contains(&(item_type, id.to_string()));
    let recorded = |item_type: ItemKind, outcome: ItemOutcome| {
        detail.changes.iter().any(|c| c.item_type == item_type && c.outcome == outcome)
    };
    let mut work = Work {
        contacts: Vec::new(),
        tickets: Vec::new(),
        configurations: Vec::new(),
        note_done: recorded(ITEM_TICKET_NOTE, ItemOutcome::Changed),
        notification_done: recorded(ITEM_NOTIFICATION, ItemOutcome::Changed),
    };
    let mut plan_contacts = Vec::new();
    for snap in &detail.snapshots {
        match snap.item_type {
            ITEM_CONTACT => {
                let contact: Contact =
                    serde_json::from_value(snap.state.clone()).map_err(|e| corrupt("contact snapshot", e))?;
                let plan = match snap.planned_action.as_str() {
                    "deactivate" => ContactPlan::Deactivate,
                    "exclude" => ContactPlan::Excluded("Excluded in the original plan".into()),
                    _ => ContactPlan::AlreadyInactive,
                };
                if plan == ContactPlan::Deactivate && !is_done(ITEM_CONTACT, &contact.id) {
                    work.contacts.push((contact.clone(), true));
                }
                plan_contacts.push((contact, plan));
            }
            ITEM_TICKET if !is_done(ITEM_TICKET, &snap.item_id) => {
                let s: RelatedSnapshot<Ticket, PlannedTicketChange> =
                    serde_json::from_value(snap.state.clone()).map_err(|e| corrupt("ticket snapshot", e))?;
                work.tickets.push((s.before, s.change, true));
            }
            ITEM_CONFIGURATION_CONTACT if !is_done(ITEM_CONFIGURATION_CONTACT, &snap.item_id) => {
                let s: RelatedSnapshot<Configuration, Option<String>> =
                    serde_json::from_value(snap.state.clone()).map_err(|e| corrupt("configuration snapshot", e))?;
                work.configurations.push((s.before, s.change, true));
            }
            _ => {}
        }
    }
    // A finished operation with nothing left would only repeat its note and notification.
    // One with failed items (or a failed note or notification) may be resumed to retry them.
    let notification_failed = !work.notification_done && recorded(ITEM_NOTIFICATION, ItemOutcome::Failed);
    let nothing_left = work.contacts.is_empty()
        && work.tickets.is_empty()
        && work.configurations.is_empty()
        && work.note_done
        && !notification_failed;
    if let Some(completed) = detail.events.iter().rev().find(|e| e.kind == OperationEventKind::Completed)
        && nothing_left
    {
        return Err(not_resumable(format!(
            "{operation_id} completed at {} with nothing left to do",
            domain::iso8601(completed.at)
        ))
        .into());
    }
    plan_contacts.sort_by_key(|(c, _)| sort_key(&c.id));
    let company = deps.psa.company_by_id(&op.client_id).await?.ok_or_else(|| {
        OfframpError::new(ErrorCode::ClientNotFound, format!("company {} no longer exists", op.client_id))
    })?;
    deps.audit
        .append_event(&OperationEvent::new(
            operation_id,
            OperationEventKind::Resumed,
            json!({ "pending_contacts": work.contacts.len() }),
        ))
        .await?;

    // What the operation did before the interruption is part of the outcome from the start:
    // the report, the note and the notification describe the whole operation.
    let mut earlier = Outcome {
        deactivated: detail
            .changes
            .iter()
            .filter(|c| c.item_type == ITEM_CONTACT && c.outcome == ItemOutcome::Changed)
            .filter_map(|c| c.after.as_ref().and_then(|a| serde_json::from_value::<Contact>(a.clone()).ok()))
            .collect(),
        tickets_changed: done.iter().filter(|(t, _)| *t == ITEM_TICKET).count() as u64,
        configurations_changed: done.iter().filter(|(t, _)| *t == ITEM_CONFIGURATION_CONTACT).count() as u64,
        ..Outcome::default()
    };
    earlier.deactivated.sort_by_key(|c| sort_key(&c.id));
    earlier.deactivated.dedup_by(|a, b| a.id == b.id);
    // The ticket the interrupted run opened for its summary, if it got that far.
    let opened = detail
        .changes
        .iter()
        .rev()
        .find(|c| c.item_type == ITEM_SUMMARY_TICKET && c.outcome == ItemOutcome::Changed)
        .map(|c| c.item_id.clone());
    let v = validate(&request)?;
    let context = RunContext {
        operation_id: operation_id.to_string(),
        company: company.clone(),
        initiated_by: op.initiated_by.clone(),
        reason: op.reason.clone(),
        ticket_id: v.ticket_id.clone().or(opened),
        requester: op.input["requester_email"]
            .as_str()
            .map(str::to_string)
            .or_else(|| org_settings::looks_like_email(&op.initiated_by).then(|| op.initiated_by.clone())),
        settings,
    };
    let record = op.clone();
    let outcome = execute(deps, &context, work, earlier).await;
    let plan = Plan {
        contacts: plan_contacts,
        tickets: Vec::new(),
        configurations: Vec::new(),
        primary: Vec::new(),
        // Recorded with the operation (absent in operations older than this field).
        reassignment: serde_json::from_value(record.input["reassignment"].clone()).unwrap_or_default(),
        blast: BlastRadius {
            contacts_to_deactivate: 0,
            company_contacts: 0,
            share_percent: 0.0,
            max_contacts: 0,
            max_share_percent: 0,
            exceeded: false,
            overridden: false,
        },
        hash: record.plan_hash.clone().unwrap_or_default(),
        warnings: Vec::new(),
    };
    let mut report = planned_report(&company, &record, &plan);
    report.blast_radius = None;
    report.warnings.push(format!("Resumed operation {operation_id}: items already done were not changed again."));
    Ok(finish(deps, &context, report, outcome).await)
}

fn org_settings_from_record(value: &Value) -> Result<OrgSettings, OfframpError> {
    serde_json::from_value(value.clone()).map_err(|e| corrupt("operation settings", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(id, s)| (id.to_string(), s.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn staying(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn the_reassignment_primary_is_the_strongest_signal_then_the_lowest_numeric_id() {
        // Two contact flags: numeric order, not text order ("10" sorts before "9" as text).
        let flags = signals(&[("10", &["contact.defaultFlag"]), ("9", &["contact.defaultFlag"])]);
        assert_eq!(reassignment_primary(&flags, &staying(&["9", "10"])), Some(("9", "contact.defaultFlag")));
        // The company's own pointer beats a flag, whatever the ids.
        let mixed = signals(&[("10", &["company.defaultContact"]), ("9", &["contact.defaultFlag"])]);
        assert_eq!(reassignment_primary(&mixed, &staying(&["9", "10"])), Some(("10", "company.defaultContact")));
        // A contact named by both signals is decided by the stronger one.
        let both =
            signals(&[("7", &["contact.defaultFlag", "company.defaultContact"]), ("3", &["contact.defaultFlag"])]);
        assert_eq!(reassignment_primary(&both, &staying(&["3", "7"])), Some(("7", "company.defaultContact")));
        // Only contacts that stay active can be targets.
        assert_eq!(reassignment_primary(&mixed, &staying(&["9"])), Some(("9", "contact.defaultFlag")));
        assert_eq!(reassignment_primary(&mixed, &staying(&[])), None);
        // Ids that are not numbers come after numeric ones.
        let text = signals(&[("abc", &["site.maincontact_id"]), ("12", &["site.maincontact_id"])]);
        assert_eq!(reassignment_primary(&text, &staying(&["abc", "12"])), Some(("12", "site.maincontact_id")));
    }
}
