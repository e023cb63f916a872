//! The plan of a configuration deactivation, its hash, and the blast-radius guard.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Deps;
use crate::domain::{Company, ConfigState, Configuration, Workflow};
use crate::error::OfframpError;
use crate::operation::{plan_hash, sort_key};
use crate::workflows::org_settings;

/// What the plan does with a configuration (the snapshot's `planned_action`).
pub const ACTION_DEACTIVATE: &str = "deactivate";
pub const ACTION_SKIP: &str = "skip";

/// Where the guard's limit came from when no settings store is used: the caller's options.
pub const GUARD_SOURCE_OPTIONS: &str = "options";

/// Only active configurations are changed; inactive and archived ones are listed and skipped.
pub fn deactivates(config: &Configuration) -> bool {
    config.status.state == ConfigState::Active
}

pub fn planned_action(config: &Configuration) -> &'static str {
    if deactivates(config) { ACTION_DEACTIVATE } else { ACTION_SKIP }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PlanItem<'a> {
    config_id: &'a str,
    status_id: Option<&'a str>,
    status: &'a str,
    action: &'static str,
}

/// What a run would do, in canonical form: the hash of this is the plan hash.
#[derive(Debug, Clone, Serialize)]
struct CanonicalPlan<'a> {
    workflow: Workflow,
    psa: &'static str,
    client_id: &'a str,
    include_archived: bool,
    /// Sorted by configuration id (numerically where ids are numbers).
    items: Vec<PlanItem<'a>>,
}

pub struct Plan {
    /// Sorted by id.
    pub configs: Vec<Configuration>,
    pub hash: String,
}

impl Plan {
    pub fn new(psa: &'static str, client: &Company, include_archived: bool, mut configs: Vec<Configuration>) -> Self {
        configs.sort_by_key(|c| sort_key(&c.id));
        let canonical = CanonicalPlan {
            workflow: Workflow::DeactivateConfigs,
            psa,
            client_id: &client.id,
            include_archived,
            items: configs
                .iter()
                .map(|c| PlanItem {
                    config_id: &c.id,
                    status_id: c.status.id.as_deref(),
                    status: &c.status.name,
                    action: planned_action(c),
                })
                .collect(),
        };
        let hash = plan_hash(&canonical);
        Plan { configs, hash }
    }

    pub fn to_deactivate(&self) -> u64 {
        self.configs.iter().filter(|c| deactivates(c)).count() as u64
    }

    /// The plan as recorded in the trail's events.
    pub fn summary(&self) -> Value {
        let items: Vec<Value> = self
            .configs
            .iter()
            .map(|c| json!({"config_id": c.id, "config_name": c.name, "status": c.status.name, "action": planned_action(c)}))
            .collect();
        json!({ "plan_hash": self.hash, "items": items })
    }
}

/// The blast-radius guard's figures, shown whether or not it stopped the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigBlastRadius {
    pub configs_to_deactivate: u64,
    pub max_configurations: u64,
    /// Where `max_configurations` came from: `client`, `global`, `default` (organization
    /// settings) or `options` (set by the caller).
    #[serde(default)]
    pub limit_source: String,
    pub exceeded: bool,
    pub overridden: bool,
}

/// The guard's limit a run used, recorded in the operation's input as `blast_radius_guard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigGuardLimit {
    pub max_configurations: u64,
    pub source: String,
}

impl ConfigGuardLimit {
    pub fn check(&self, plan: &Plan, overridden: bool) -> ConfigBlastRadius {
        let to_deactivate = plan.to_deactivate();
        let exceeded = to_deactivate > self.max_configurations;
        ConfigBlastRadius {
            configs_to_deactivate: to_deactivate,
            max_configurations: self.max_configurations,
            limit_source: self.source.clone(),
            exceeded,
            overridden: exceeded && overridden,
        }
    }

    /// Why a run stopped, in words.
    pub fn refusal(&self, to_deactivate: u64) -> String {
        format!(
            "this run would deactivate {to_deactivate} configurations, more than the guard allows ({}, {}); nothing was \
             changed. Review the plan and run again with override_blast_radius (CLI --override-blast-radius)",
            self.max_configurations,
            source_text(&self.source)
        )
    }
}

/// The limit for `client`: from the organization settings when the options carry a store
/// (read inside the run: only then is the client known), else the options' own value.
pub async fn guard_limit(deps: &Deps<'_>, client: &Company) -> Result<ConfigGuardLimit, OfframpError> {
    match &deps.options.guard_settings {
        Some(store) => {
            let (max_configurations, source) =
                org_settings::guard_max_configurations(store.as_ref(), deps.psa.kind().as_str(), &client.id).await?;
            Ok(ConfigGuardLimit { max_configurations, source })
        }
        None => Ok(ConfigGuardLimit {
            max_configurations: deps.options.max_configurations,
            source: GUARD_SOURCE_OPTIONS.into(),
        }),
    }
}

fn source_text(source: &str) -> String {
    let key = org_settings::GUARD_MAX_CONFIGURATIONS;
    match source {
        "client" => format!("this client's {key} setting"),
        "global" => format!("the global {key} setting"),
        "default" => format!("the default of {key}"),
        other => format!("set by the caller ({other})"),
    }
}
