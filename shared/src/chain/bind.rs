//! The requests each step runs with: first without consent (for the dry run), then with
//! the approval bound to the plan hash that dry run returned. A step's workflow recomputes
//! its plan when it runs and refuses (`PlanChanged`) if it is not the approved one, so what
//! was approved is what is changed (docs/architecture.md#the-client-offboarding-chain).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{ChainPlan, PlannedRun};
use super::{ChainStep, StepCall};

/// Who approved the chain's plan, and when. With no approval required, the initiator's
/// request is the consent and is recorded as such.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainApproval {
    pub approved_by: String,
    pub approved_at: DateTime<Utc>,
    /// The chain plan hash approved ([`super::model::chain_hash`]); empty in the approval
    /// page's decision, which names each run's hash instead.
    #[serde(default)]
    pub plan_hash: String,
    /// Each run's approved plan hash by its key (`super::approval::run_key`): the approval
    /// page's decision (`SendTaskSuccess` output).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub plan_hashes: std::collections::BTreeMap<String, String>,
}

/// The events every step's function is sent, by step: what the state machine's Task states
/// pass as their payloads (`$.inputs.<step>`). A step with nothing to run is `null`
/// (`offboard_users`: an empty list), which the state machine's `Choice` skips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainInputs {
    pub offboard_users: Vec<StepCall>,
    pub deactivate_contacts: Option<StepCall>,
    pub deactivate_configs: Option<StepCall>,
    pub delete_itglue_org: Option<StepCall>,
}

impl ChainInputs {
    /// The calls of `step`, in order.
    pub fn calls(&self, step: ChainStep) -> Vec<&StepCall> {
        match step {
            ChainStep::OffboardUsers => self.offboard_users.iter().collect(),
            ChainStep::DeactivateContacts => self.deactivate_contacts.iter().collect(),
            ChainStep::DeactivateConfigs => self.deactivate_configs.iter().collect(),
            ChainStep::DeleteItglueOrg => self.delete_itglue_org.iter().collect(),
        }
    }
}

/// `step`'s request for `plan`'s client, without consent and without `dry_run`.
pub fn step_request(plan: &ChainPlan, step: ChainStep, leaver: Option<&str>) -> Value {
    let mut request = match step {
        ChainStep::OffboardUsers => json!({
            "client_id": plan.client_id, "user": leaver, "use_client_defaults": true,
        }),
        ChainStep::DeactivateContacts => json!({ "company_id": plan.client_id }),
        ChainStep::DeactivateConfigs => json!({ "client_id": plan.client_id }),
        // IT Glue knows the client by its organization's name (workflow 002 refuses a name
        // that matches more than one organization).
        ChainStep::DeleteItglueOrg => json!({ "org_name": plan.client_name }),
    };
    // The contacts step deactivates every contact of the company, the leavers' included: a
    // leaver's own `disable_psa_contact` would change that step's approved plan before it runs.
    if step == ChainStep::OffboardUsers && plan.steps.contains(&ChainStep::DeactivateContacts) {
        request["skip_default_actions"] = json!(["disable_psa_contact"]);
    }
    // The leavers share the chain's ticket: each documents itself with one summary note.
    if step == ChainStep::OffboardUsers {
        request["summary_note_only"] = json!(true);
    }
    request["initiated_by"] = json!(plan.initiated_by);
    // Workflows 001 and 003 document their runs on the chain's one ticket.
    if let (Some(ticket), ChainStep::OffboardUsers | ChainStep::DeactivateContacts) = (&plan.ticket_id, step) {
        request["ticket_id"] = json!(ticket);
    }
    if let Some(reason) = &plan.reason {
        request["reason"] = json!(reason);
    }
    request
}

/// Every step's event, consent bound to its run's dry-run plan hash.
pub fn bind(plan: &ChainPlan, approval: &ChainApproval) -> ChainInputs {
    let mut inputs = ChainInputs::default();
    for run in &plan.runs {
        let call = StepCall::new(&plan.parent_operation_id, run.step, consented(run, approval));
        match run.step {
            ChainStep::OffboardUsers => inputs.offboard_users.push(call),
            ChainStep::DeactivateContacts => inputs.deactivate_contacts = Some(call),
            ChainStep::DeactivateConfigs => inputs.deactivate_configs = Some(call),
            ChainStep::DeleteItglueOrg => inputs.delete_itglue_org = Some(call),
        }
    }
    inputs
}

/// A run's request with its workflow's own consent input (seed field names):
/// `approval{plan_hash, approved_by}` (000, 003), `confirmation` + `plan_hash` (001),
/// `confirm_delete` + `plan_hash` (002).
fn consented(run: &PlannedRun, approval: &ChainApproval) -> Value {
    let mut request = run.request.clone();
    let hash = json!(run.plan_hash);
    match run.step {
        ChainStep::OffboardUsers | ChainStep::DeactivateConfigs => {
            request["approval"] = json!({ "plan_hash": hash, "approved_by": approval.approved_by });
        }
        ChainStep::DeactivateContacts => {
            request["confirmation"] = json!(true);
            request["plan_hash"] = hash;
        }
        ChainStep::DeleteItglueOrg => {
            request["confirm_delete"] = json!(true);
            request["plan_hash"] = hash;
        }
    }
    request
}
