//! The client-offboarding chain: the workflows run one after the other for one client,
//! under one parent operation, as the state machine in `infra/statemachine/` runs them in
//! AWS and `offramp client offboard` runs them in-process
//! (docs/architecture.md#the-client-offboarding-chain).
//!
//! ```text
//! resolve ─► approval ─► bind ─► delay ─► offboard_users (each leaver) ─► deactivate_contacts
//!   (dry run of every step,  (consent bound to         ─► deactivate_configs ─► delete_itglue_org ─► finalize
//!    parent operation, ticket) each run's plan hash)   (each continued past its deadline; a failure stops the chain)
//! ```
//!
//! A step is its workflow's own function, sent a [`StepCall`]: the chain never re-implements
//! a workflow, and its steps never import each other.

mod approval;
mod bind;
mod finalize;
mod licensed;
mod model;
mod orchestrate;
mod plan;
mod report;
mod request;
mod run;
mod runner;
mod settings;
mod state;
mod step_call;
mod ticket;

pub use approval::{check_decided_hashes, plan_hashes, request_chain_approval, run_key};
pub use bind::{ChainApproval, ChainInputs, bind, step_request};
pub use finalize::{ChainRuns, finalize, planned};
pub use model::{APPROVAL_TIMEOUT_SECONDS, ChainPlan, LEAVERS_AT_ONCE, PlannedRun, chain_hash};
pub use orchestrate::{Orchestrated, OrchestratorAction, orchestrate};
pub use plan::{ON_BEHALF_OF, resolve};
pub use report::{ChainError, ClientOffboardingReport, SkippedStep, StepOutcome};
pub use request::{ChainStep, ChainTrigger, ClientOffboardingRequest};
pub use run::{InProcessConsent, STAGES, Stage, approve, run_chain, run_steps};
pub use runner::{StepAnswer, StepRunner};
pub use state::{ChainState, StepResults};
pub use step_call::{STEP_CALL_KEY, StepCall, StepContext, step_result};

use crate::ports::{AuditStore, CloudDirectory, Notifier, Psa, SettingsStore};

/// What the chain runs with.
pub struct ChainDeps<'a> {
    pub psa: &'a dyn Psa,
    pub audit: &'a dyn AuditStore,
    pub settings: &'a dyn SettingsStore,
    pub notifier: Option<&'a dyn Notifier>,
    /// The client's Microsoft 365 directory, where configured: what lists "every licensed
    /// user" (`all_licensed_users`).
    pub directory: Option<&'a dyn CloudDirectory>,
    pub steps: &'a dyn StepRunner,
    /// Where approvals are kept and decisions delivered (the orchestrator's); `None` where
    /// consent is given in-process (the CLI names the plan hash it approves).
    pub approvals: Option<ChainApprovals<'a>>,
    /// Where the finalizer stores the evidence report (docs/evidence.md); `None`: not stored.
    pub evidence: Option<&'a dyn crate::ports::EvidenceStore>,
}

/// The approval adapters the chain asks for an approval through.
#[derive(Clone, Copy)]
pub struct ChainApprovals<'a> {
    pub store: &'a dyn crate::ports::ApprovalStore,
    pub callback: &'a dyn crate::ports::TaskCallback,
    pub config: &'a crate::approval::ApprovalConfig,
}
