//! What one run carries from phase to phase: its context, the work left, what it did so
//! far, and how an item's change becomes its record. Shared by the phases (`execute`),
//! the summary (`summary`) and the resume (`resume`).

use serde_json::Value;

use super::Validated;
use super::plan::{ContactPlan, Plan, PlannedTicketChange};
use super::report::ContactReportError;
use crate::domain::{self, Company, Configuration, Contact, ItemChange, ItemKind, ItemOutcome, Ticket};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::workflows::org_settings::{self, OrgSettings};

/// Where an item stands when a run gets to it: decided from the trail on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    /// A fresh run: the plan was just read from the PSA.
    Fresh,
    /// Resumed; its intent is its latest record: the interrupted run's change may have
    /// reached the PSA. Read fresh first; found done, it is recorded as uncertain.
    InFlight,
    /// Resumed; no record says the run ever sent it. Read fresh first; found done, someone
    /// else did it: left alone and not claimed.
    NotReached,
}

/// What is left to do, each item with where it stands.
pub(super) struct Work {
    pub contacts: Vec<(Contact, Pending)>,
    pub tickets: Vec<(Ticket, PlannedTicketChange, Pending)>,
    pub configurations: Vec<(Configuration, Option<String>, Pending)>,
    pub note_done: bool,
    pub notification_done: bool,
}

impl Work {
    pub(super) fn of(plan: &Plan) -> Self {
        Work {
            contacts: plan
                .contacts
                .iter()
                .filter(|(_, p)| *p == ContactPlan::Deactivate)
                .map(|(c, _)| (c.clone(), Pending::Fresh))
                .collect(),
            tickets: plan.tickets.iter().map(|(t, c)| (t.clone(), c.clone(), Pending::Fresh)).collect(),
            configurations: plan.configurations.iter().map(|(c, to)| (c.clone(), to.clone(), Pending::Fresh)).collect(),
            note_done: false,
            notification_done: false,
        }
    }
}

pub(super) struct RunContext {
    pub operation_id: String,
    pub company: Company,
    pub initiated_by: String,
    pub reason: Option<String>,
    pub ticket_id: Option<String>,
    pub requester: Option<String>,
    pub settings: OrgSettings,
    /// A resume: an earlier attempt may have opened the summary ticket without recording it.
    pub resumed: bool,
}

impl RunContext {
    pub fn new(operation_id: &str, company: &Company, v: &Validated, settings: OrgSettings) -> Self {
        RunContext {
            operation_id: operation_id.to_string(),
            company: company.clone(),
            initiated_by: v.initiated_by.clone(),
            reason: v.reason.clone(),
            ticket_id: v.ticket_id.clone(),
            requester: v.requester.clone(),
            settings,
            resumed: false,
        }
    }
}

/// Where the requester's copy goes: the address given, else `initiated_by` if it is one;
/// either only when its domain is one of `domains`. Both come from the request, so neither
/// may make the MSP's mailbox write to an address nobody configured.
pub(super) fn requester(given: Option<&str>, initiated_by: &str, domains: &[String]) -> Option<String> {
    // A run asked for on behalf of someone names them after the principal (docs/architecture.md#who-is-asking).
    let named = crate::domain::on_behalf_of(initiated_by).unwrap_or(initiated_by);
    given
        .map(str::to_string)
        .or_else(|| org_settings::looks_like_email(named).then(|| named.to_string()))
        .filter(|address| admits(domains, address))
}

/// Whether `address` is in one of `domains` (exactly, ignoring case; `msp.example` does not
/// admit `mail.msp.example` or `evilmsp.example`).
pub(super) fn admits(domains: &[String], address: &str) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else { return false };
    domains.iter().any(|allowed| allowed.trim().eq_ignore_ascii_case(domain.trim()))
}

#[derive(Default)]
pub(super) struct Outcome {
    pub deactivated: Vec<Contact>,
    pub tickets_changed: u64,
    pub configurations_changed: u64,
    /// Items never sent because the run stopped first.
    pub not_attempted: u64,
    pub errors: Vec<ContactReportError>,
    pub warnings: Vec<String>,
    pub ticket_id: Option<String>,
    pub notification: Option<super::NotificationReport>,
    /// Why the run stopped early (audit trail unwritable, request budget spent); resumable.
    pub stopped: Option<OfframpError>,
}

pub(super) fn change_record(
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

/// The code of a failed write: the PSA refusing it is the item's own failure (`own`),
/// even though a refused read is a connection problem; only transport and permission
/// problems keep their codes.
pub(super) fn item_code(error: &PsaError, own: ErrorCode) -> ErrorCode {
    match error {
        PsaError::Rejected { .. } => own,
        _ => match error.code() {
            code @ (ErrorCode::PermissionDenied | ErrorCode::PsaConnectionError) => code,
            _ => own,
        },
    }
}
