//! The report: workflow 001's report (docs/workflows.md#001-report), plus Offramp's additions
//! (docs/workflows.md#001-offramp-additions).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{self, Company, Contact, ItemKind, RunStatus};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::IdempotentReport;

/// An id as the seed shows it: a number when it is one, else a string.
pub(super) fn id_value(id: &str) -> Value {
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

/// Which contact counts as primary and why (which signal the PSA's UI uses is unconfirmed:
/// docs/vendors/connectwise.md#unconfirmed-points, docs/vendors/halopsa.md#unconfirmed-points).
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
    pub status: Option<RunStatus>,
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
    /// Present when the run stopped at its invocation's deadline: call again with its
    /// `operation_id` (docs/architecture.md#runs-that-outlive-one-invocation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<crate::operation::Continuation>,
}

pub(super) fn report_error(
    code: ErrorCode,
    message: impl Into<String>,
    item: Option<(ItemKind, &str)>,
) -> ContactReportError {
    ContactReportError {
        code,
        message: message.into(),
        timestamp: domain::iso8601(domain::now()),
        item_type: item.map(|(t, _)| t),
        item_id: item.map(|(_, id)| id.to_string()),
    }
}

impl ContactDeactivationReport {
    pub(super) fn empty(
        company: Option<&Company>,
        company_id: Option<&str>,
        initiated_by: &str,
        dry_run: bool,
    ) -> Self {
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
            continuation: None,
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

pub(super) fn deactivated_entry(contact: &Contact) -> DeactivatedContact {
    DeactivatedContact {
        contact_id: id_value(&contact.id),
        name: contact.name.clone(),
        email: contact.email.clone(),
        title: contact.title.clone(),
        previous_status: "Active".into(),
        new_status: "Inactive".into(),
    }
}

impl IdempotentReport for ContactDeactivationReport {
    fn from_error(error: &OfframpError) -> Self {
        ContactDeactivationReport::invalid(error, "unknown")
    }

    /// The most significant code first (the one [`Self::primary_error`] picks), then the rest.
    fn error_codes(&self) -> Vec<ErrorCode> {
        let mut codes: Vec<ErrorCode> = self.primary_error().into_iter().collect();
        codes.extend(self.errors.iter().map(|e| e.code));
        codes
    }

    fn operation_id(&self) -> Option<String> {
        self.audit_trail.operation_id.clone()
    }
}
