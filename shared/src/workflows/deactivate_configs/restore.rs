//! How a rollback puts a deactivated configuration back: registered with the engine's
//! restore registry, so the rollback needs no knowledge of this workflow.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::WORKFLOW;
use crate::domain::{ConfigState, ConfigStatus, Configuration, ItemChange, ItemKind};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::operation::restore::{
    Judgement, Restorable, RestoreError, RestoreRegistry, RestoreSystems, Reversibility, Verdict, parse_state,
};
use crate::ports::{Psa, async_trait};

/// Fill the registry with what this workflow knows how to undo.
pub fn register(registry: &mut RestoreRegistry) {
    registry
        .register_workflow(WORKFLOW, Reversibility::Reversible)
        .register_item(ItemKind::Configuration, parse_status_change)
        .register_lister(ItemKind::Configuration, list_configurations)
        .register_batch(ItemKind::Configuration, restore_statuses);
}

/// Every configuration of a company, archived included, by id.
fn list_configurations<'a>(
    psa: &'a dyn Psa,
    company_id: &'a str,
) -> BoxFuture<'a, Result<HashMap<String, Value>, PsaError>> {
    Box::pin(async move {
        let configs = psa.list_configurations(company_id, true).await?;
        Ok(configs.into_iter().map(|c| (c.id.clone(), json!(c))).collect())
    })
}

/// Put several configurations' statuses back in one go (`Psa::restore_configurations`).
fn restore_statuses<'a>(
    psa: &'a dyn Psa,
    items: Vec<&'a dyn Restorable>,
) -> BoxFuture<'a, Vec<Result<Value, PsaError>>> {
    Box::pin(async move {
        let statuses: Vec<(&str, &ConfigStatus)> = items
            .iter()
            .filter_map(|item| item.as_any().downcast_ref::<StatusChange>())
            .map(|item| (item.before.id.as_str(), &item.before.status))
            .collect();
        if statuses.len() != items.len() {
            // Not reachable: only configuration statuses are registered for this kind.
            let error = || PsaError::Configuration { message: "a batch restore got an item of another kind".into() };
            return items.iter().map(|_| Err(error())).collect();
        }
        psa.restore_configurations(&statuses).await.into_iter().map(|r| r.map(|c| json!(c))).collect()
    })
}

/// A configuration's status: the one before, and the state the operation left.
struct StatusChange {
    before: Configuration,
    left: ConfigState,
}

fn parse_status_change(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
    let before: Configuration = parse_state(&change.before, change)?;
    // A change confirmed on resume has no `after`: the operation left it inactive.
    let left = change
        .after
        .as_ref()
        .and_then(|a| serde_json::from_value::<Configuration>(a.clone()).ok())
        .map_or(ConfigState::Inactive, |a| a.status.state);
    Ok(Some(Box::new(StatusChange { before, left })))
}

#[async_trait]
impl Restorable for StatusChange {
    fn kind(&self) -> ItemKind {
        ItemKind::Configuration
    }

    fn id(&self) -> &str {
        &self.before.id
    }

    fn name(&self) -> &str {
        &self.before.name
    }

    fn restore_to(&self) -> String {
        self.before.status.label()
    }

    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::ConfigUpdateFailed
    }

    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let psa = systems.psa;
        let Some(now) = psa.configuration(&self.before.id).await? else { return Ok(Judgement::missing()) };
        Ok(self.judge_state(now))
    }

    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        let psa = systems.psa;
        Ok(json!(psa.set_configuration_status(&self.before.id, &self.before.status).await?))
    }

    fn listed_under(&self) -> Option<&str> {
        Some(&self.before.company_id)
    }

    fn judge_listed(&self, listed: &Value) -> Option<Judgement> {
        serde_json::from_value::<Configuration>(listed.clone()).ok().map(|now| self.judge_state(now))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl StatusChange {
    /// Compare the configuration as read now with the states before and after the operation.
    fn judge_state(&self, now: Configuration) -> Judgement {
        let label = now.status.label();
        let verdict = if now.status.state == self.before.status.state && now.status.id == self.before.status.id {
            Verdict::AlreadyRestored
        } else if now.status.state == self.left {
            Verdict::Restore
        } else {
            Verdict::Conflict
        };
        let message = (verdict == Verdict::Conflict).then(|| {
            format!(
                "changed since the operation: it left '{}', the PSA now has '{label}' ({}); left alone",
                self.left.as_str(),
                now.status.name
            )
        });
        let judgement = Judgement { verdict, current_label: label, message, current: None };
        judgement.with_current(json!(now))
    }
}
