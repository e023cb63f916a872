//! An organization's deletion plan as the operation engine drives it
//! (`crate::operation::gated`): what it records, how it answers when the gate stops it,
//! and how it is applied. The report is filled in place, as the deletion goes.

use std::future::Future;

use serde_json::Value;

use super::plan::{self, Plan};
use super::report::DeleteOrgReport;
use super::{DeleteOrgDeps, execute};
use crate::domain::{ItemKind, ItemSnapshot, OperationRecord};
use crate::error::OfframpError;
use crate::operation::{BoundApproval, Gate, GatedPlan};

pub(super) struct OrgPlan<'d, 'r, 'p> {
    pub deps: &'d DeleteOrgDeps<'r>,
    pub plan: Plan,
    pub force_without_export: bool,
    pub report: &'p mut DeleteOrgReport,
}

impl GatedPlan for OrgPlan<'_, '_, '_> {
    type Report = ();

    fn lease_target(&self) -> String {
        crate::operation::lease::target("itglue", &self.plan.org.id)
    }

    fn detail(&self) -> Value {
        self.plan.detail()
    }

    fn started(&self) -> Value {
        self.plan.detail()
    }

    fn snapshots<'a>(&'a self, operation_id: &'a str) -> impl Iterator<Item = ItemSnapshot> + 'a {
        let org = &self.plan.org;
        std::iter::once(ItemSnapshot {
            operation_id: operation_id.to_string(),
            item_type: ItemKind::ItglueOrganization,
            item_id: org.id.clone(),
            item_name: org.name.clone(),
            state: self.plan.detail(),
            planned_action: "delete".into(),
        })
    }

    fn answer(self, record: &OperationRecord, gate: &Gate) -> Result<(), OfframpError> {
        plan::answer_unapplied(record, &self.plan, gate, self.report)
    }

    fn apply(
        self,
        record: OperationRecord,
        _approval: BoundApproval,
    ) -> impl Future<Output = Result<(), OfframpError>> {
        execute::delete(self.deps, record, self.plan, self.force_without_export, self.report)
    }
}
