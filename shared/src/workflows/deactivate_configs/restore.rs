//! How a rollback puts a deactivated configuration back: registered with the engine's
//! restore registry, so the rollback needs no knowledge of this workflow.

use serde_json::{Value, json};

use super::WORKFLOW;
use crate::domain::{ConfigState, Configuration, ItemChange, ItemKind};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::operation::restore::{Judgement, Restorable, RestoreRegistry, Reversibility, Verdict, parse_state};
use crate::ports::{Psa, async_trait};

/// Fill the registry with what this workflow knows how to undo.
pub fn register(registry: &mut RestoreRegistry) {
    registry
        .register_workflow(WORKFLOW, Reversibility::Reversible)
        .register_item(ItemKind::Configuration, parse_status_change);
}

/// A configuration's status: the one before, and the state the operation left.
struct ConfigStatus {
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
    Ok(Some(Box::new(ConfigStatus { before, left })))
}

#[async_trait]
impl Restorable for ConfigStatus {
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

    async fn judge(&self, psa: &dyn Psa) -> Result<Judgement, PsaError> {
        let Some(now) = psa.configuration(&self.before.id).await? else { return Ok(Judgement::missing()) };
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
        Ok(judgement.with_current(json!(now)))
    }

    async fn restore(&self, psa: &dyn Psa, _current: &Value) -> Result<Value, PsaError> {
        Ok(json!(psa.set_configuration_status(&self.before.id, &self.before.status).await?))
    }
}
