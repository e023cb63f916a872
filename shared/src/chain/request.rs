//! The input of the client-offboarding chain: what the state machine's execution, the CLI's
//! `offramp client offboard`, the API's `POST /workflows/client-offboarding` and a PSA
//! webhook all start it with (docs/architecture.md#the-client-offboarding-chain).

use serde::{Deserialize, Serialize};

use crate::workflows::input::string_or_number;

/// One step of the chain, in the order the chain runs them. The order is the chain's: the
/// leavers' accounts first (people lose access before records disappear), then the PSA's
/// contacts and configurations, then IT Glue's organization, which holds the documentation
/// of all of them and goes last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStep {
    OffboardUsers,
    DeactivateContacts,
    DeactivateConfigs,
    DeleteItglueOrg,
}

impl ChainStep {
    /// Every step, in the chain's order.
    pub const ALL: [ChainStep; 4] = [
        ChainStep::OffboardUsers,
        ChainStep::DeactivateContacts,
        ChainStep::DeactivateConfigs,
        ChainStep::DeleteItglueOrg,
    ];

    /// What a request without `steps` runs: everything but the IT Glue deletion, which is
    /// asked for explicitly (or by the client's settings) because it cannot be undone.
    pub const DEFAULT: [ChainStep; 3] =
        [ChainStep::OffboardUsers, ChainStep::DeactivateContacts, ChainStep::DeactivateConfigs];

    pub fn as_str(self) -> &'static str {
        match self {
            ChainStep::OffboardUsers => "offboard_users",
            ChainStep::DeactivateContacts => "deactivate_contacts",
            ChainStep::DeactivateConfigs => "deactivate_configs",
            ChainStep::DeleteItglueOrg => "delete_itglue_org",
        }
    }
}

impl std::fmt::Display for ChainStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started the chain, recorded with the parent operation. `initiated_by` is always
/// the authenticated principal the entry point saw, never a body field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainTrigger {
    /// A PSA webhook delivery: the PSA and the delivery's key (its event identity).
    Webhook { psa: String, delivery_key: String },
    /// An EventBridge schedule rule.
    Schedule { rule: String },
    /// The HTTP API (`POST /workflows/client-offboarding`).
    Api,
    /// The command line on a laptop.
    Cli,
}

/// The chain's request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientOffboardingRequest {
    #[serde(default, deserialize_with = "string_or_number", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The steps to run (in the chain's order whatever the order given); absent: [`ChainStep::DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<ChainStep>>,
    /// The leavers to offboard (UPN or e-mail address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leavers: Vec<String>,
    /// Offboard every licensed user of the client's Microsoft 365 tenant instead of a list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_licensed_users: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Ask for approval even when the client's settings do not.
    #[serde(default)]
    pub require_approval: bool,
    /// When the changes may start (RFC 3339); the chain waits until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set by the entry point from the authenticated principal; a body's value is refused
    /// by the entry points that authenticate (they record it as `on_behalf_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    /// Who the caller says the run is for: recorded as a note, never as the initiator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<ChainTrigger>,
}

impl ClientOffboardingRequest {
    /// The steps this request runs, in the chain's order, each once.
    pub fn steps(&self) -> Vec<ChainStep> {
        let mut steps = self.steps.clone().unwrap_or_else(|| ChainStep::DEFAULT.to_vec());
        steps.sort();
        steps.dedup();
        steps
    }
}
