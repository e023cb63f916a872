//! The seed's "Returned Data" for an organization deletion, plus `operation_id`,
//! `dry_run`, `status` and `export`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{self, ArchivedExport, DependencyCounts, Export, Organization, RunStatus};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::IdempotentReport;

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
    pub assets_by_type: BTreeMap<String, u64>,
    /// Kinds that could not be counted, with why (they count as "maybe dependents").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_counted: BTreeMap<String, String>,
}

impl DependencyCheck {
    pub(super) fn of(counts: &DependencyCounts, blocked: bool) -> Self {
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
    /// The hash of the plan (the organization, its dependency counts, whether they block):
    /// what a confirmation binds to, as in the other workflows' reports. A chain's approval
    /// names it (docs/architecture.md#the-client-offboarding-chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// `planned`, `deleted`, `pending_deletion`, `blocked`, `confirmation_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// The IT Glue export made before the deletion (its id and status; its link is never
    /// serialized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
    /// Where the export was copied: the only way back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchivedExport>,
}

pub(super) fn error(code: ErrorCode, message: impl Into<String>) -> DeleteOrgError {
    DeleteOrgError { code, message: message.into(), timestamp: domain::iso8601(domain::now()) }
}

impl DeleteOrgReport {
    pub(super) fn new(org: Option<&Organization>, dry_run: bool) -> Self {
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
            plan_hash: None,
            status: None,
            export: None,
            archive: None,
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

    /// The run ended on `e`: it leads the errors (what came before it stays after it).
    pub(super) fn fail(&mut self, e: &OfframpError) {
        self.success = false;
        self.errors.insert(0, error(e.code(), e.to_string()));
    }

    /// The deletion went through but the trail could not record it: say so loudly, keep
    /// the report true to what happened.
    pub(super) fn audit_failed(&mut self, org: &Organization, e: OfframpError) {
        tracing::error!(org_id = %org.id, error = %e, "deletion requested but not recorded in the audit trail");
        self.success = false;
        self.errors.push(error(
            ErrorCode::AuditStoreError,
            format!("{} was marked for deletion, but the audit trail could not record it: {e}", org.name),
        ));
    }
}

impl IdempotentReport for DeleteOrgReport {
    fn from_error(error: &OfframpError) -> Self {
        Self::failed(error.code(), error.to_string())
    }

    fn error_codes(&self) -> Vec<ErrorCode> {
        self.errors.iter().map(|e| e.code).collect()
    }

    fn operation_id(&self) -> Option<String> {
        self.operation_id.clone()
    }
}
