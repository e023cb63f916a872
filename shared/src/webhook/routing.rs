//! Routing by policy: what a first delivery should start, decided by a pure function of the
//! event and the client's settings (docs/architecture.md#psa-webhooks).
//!
//! Seeds 000 and 002 name the event-driven trigger: the PSA says a client became
//! offboarded (its status is one of the offboarded statuses, or it was set inactive) →
//! deactivate its configurations and, where the client's settings say so, delete its
//! IT Glue organization. Which workflows run is the setting
//! [`WEBHOOK_WORKFLOWS`](crate::workflows::org_settings::WEBHOOK_WORKFLOWS); the deletion
//! is the separate setting [`WEBHOOK_ITGLUE_DELETION`], whose `true` is the confirmation
//! the deletion needs, recorded with where it was set. Everything else is acknowledged
//! and ignored, with the reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, EntityKind, WebhookEvent};
use crate::domain::{OffboardedCriteria, PsaKind, Workflow};
use crate::error::OfframpError;
use crate::ports::SettingsStore;
use crate::workflows::org_settings::{self, WEBHOOK_ITGLUE_DELETION, WEBHOOK_WORKFLOWS};

/// The client's webhook policy, resolved from the settings store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerPolicy {
    /// The deployment's offboarded criteria (`OFFRAMP_OFFBOARDED_*`). Only the status and
    /// inactive criteria can be judged from an event; categories and contracts cannot.
    pub criteria: OffboardedCriteria,
    /// The workflows to start, in the chain's order.
    pub workflows: Vec<Workflow>,
    /// Whether the IT Glue deletion is included (and so confirmed).
    pub itglue_deletion: bool,
    /// key → where its value came from: `client`, `global` or `default`.
    pub sources: BTreeMap<String, String>,
}

/// What to do with a first delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RouteDecision {
    /// Start the offboarding chain of `client_id` with these workflows, in this order.
    StartChain {
        client_id: String,
        workflows: Vec<Workflow>,
        /// When the IT Glue deletion is included: the setting that confirmed it and its
        /// source, e.g. `webhook_itglue_deletion=true (client)`, for the audit trail.
        itglue_deletion_confirmed_by: Option<String>,
    },
    /// Acknowledge and do nothing.
    Ignore { why: String },
}

fn ignore(why: impl Into<String>) -> RouteDecision {
    RouteDecision::Ignore { why: why.into() }
}

/// The decision for `event` under `policy`. Pure: no I/O, the same answer every time.
pub fn route(event: &WebhookEvent, policy: &TriggerPolicy) -> RouteDecision {
    if event.entity != EntityKind::Company {
        return ignore(format!("a {:?} event; only company events start an offboarding", event.entity));
    }
    if !matches!(event.action, Action::Created | Action::Updated) {
        return ignore(format!("a company {:?} event; only a created or updated company is judged", event.action));
    }
    let Some(client_id) = event.company_id.clone() else {
        return ignore("the event names no company");
    };
    if let Err(why) = offboarded(event, &policy.criteria) {
        return ignore(format!("company {client_id}: {why}"));
    }
    if policy.workflows.is_empty() && !policy.itglue_deletion {
        return ignore(format!(
            "company {client_id} is offboarded, but its settings start nothing from a webhook \
             ({WEBHOOK_WORKFLOWS}=none, {WEBHOOK_ITGLUE_DELETION}=false)"
        ));
    }
    let mut workflows = policy.workflows.clone();
    let mut confirmed_by = None;
    if policy.itglue_deletion {
        workflows.push(Workflow::DeleteItglueOrg);
        let source = policy.sources.get(WEBHOOK_ITGLUE_DELETION).map_or("default", String::as_str);
        confirmed_by = Some(format!("{WEBHOOK_ITGLUE_DELETION}=true ({source})"));
    }
    RouteDecision::StartChain { client_id, workflows, itglue_deletion_confirmed_by: confirmed_by }
}

/// `Ok` when the event shows the company offboarded under `criteria`; else why not.
fn offboarded(event: &WebhookEvent, criteria: &OffboardedCriteria) -> Result<(), String> {
    let judged = !criteria.statuses.is_empty() || criteria.inactive;
    if !judged {
        return Err(format!(
            "the offboarded criteria ({}) cannot be judged from an event (only statuses and the inactive flag can)",
            criteria.describe()
        ));
    }
    if event.status.is_none() && event.inactive.is_none() {
        return Err("the event carries neither the company's status nor its inactive flag".into());
    }
    let status_matches = event
        .status
        .as_deref()
        .is_some_and(|status| criteria.statuses.iter().any(|s| s.trim().eq_ignore_ascii_case(status.trim())));
    let inactive_matches = criteria.inactive && event.inactive == Some(true);
    if status_matches || inactive_matches {
        Ok(())
    } else {
        Err(format!("not offboarded ({} required)", criteria.describe()))
    }
}

/// The policy of `client_id` on `psa`: its settings, then the global ones, then the defaults.
/// A stored value that no longer validates is an error, never replaced by a default.
pub async fn trigger_policy(
    store: &dyn SettingsStore,
    psa: PsaKind,
    client_id: &str,
    criteria: OffboardedCriteria,
) -> Result<TriggerPolicy, OfframpError> {
    let resolved = org_settings::resolve_raw(store, psa.as_str(), client_id).await?;
    let value_of = |key: &str| -> Result<String, OfframpError> {
        let (value, _) = resolved.get(key).cloned().unwrap_or_default();
        org_settings::validate(key, value.as_deref().unwrap_or_default())
    };
    let workflows = org_settings::webhook_workflows(&value_of(WEBHOOK_WORKFLOWS)?)
        .ok_or_else(|| OfframpError::invalid_input(format!("setting {WEBHOOK_WORKFLOWS} is not valid")))?;
    let itglue_deletion = value_of(WEBHOOK_ITGLUE_DELETION)? == "true";
    let sources = [WEBHOOK_WORKFLOWS, WEBHOOK_ITGLUE_DELETION]
        .iter()
        .filter_map(|key| resolved.get(*key).map(|(_, source)| (key.to_string(), source.clone())))
        .collect();
    Ok(TriggerPolicy { criteria, workflows, itglue_deletion, sources })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::DeliveryKey;

    fn company(status: Option<&str>, inactive: Option<bool>) -> WebhookEvent {
        WebhookEvent {
            psa: PsaKind::ConnectWise,
            delivery_key: DeliveryKey::of_body(PsaKind::ConnectWise, b"x"),
            entity: EntityKind::Company,
            action: Action::Updated,
            record_id: "250".into(),
            company_id: Some("250".into()),
            status: status.map(str::to_string),
            inactive,
            received_at: crate::domain::now(),
        }
    }

    fn policy(workflows: Vec<Workflow>, itglue_deletion: bool) -> TriggerPolicy {
        TriggerPolicy {
            criteria: OffboardedCriteria { statuses: vec!["Offboarded".into()], inactive: true, ..Default::default() },
            workflows,
            itglue_deletion,
            sources: BTreeMap::from([(WEBHOOK_ITGLUE_DELETION.to_string(), "client".to_string())]),
        }
    }

    #[test]
    fn an_offboarded_company_starts_the_chosen_workflows() {
        let decision = route(&company(Some("offboarded"), None), &policy(vec![Workflow::DeactivateConfigs], false));
        assert_eq!(
            decision,
            RouteDecision::StartChain {
                client_id: "250".into(),
                workflows: vec![Workflow::DeactivateConfigs],
                itglue_deletion_confirmed_by: None
            }
        );
        let decision = route(&company(None, Some(true)), &policy(vec![Workflow::DeactivateConfigs], true));
        let RouteDecision::StartChain { workflows, itglue_deletion_confirmed_by, .. } = decision else { panic!() };
        assert_eq!(workflows, vec![Workflow::DeactivateConfigs, Workflow::DeleteItglueOrg]);
        assert_eq!(itglue_deletion_confirmed_by.as_deref(), Some("webhook_itglue_deletion=true (client)"));
    }

    #[test]
    fn everything_else_is_ignored_with_a_reason() {
        let chosen = policy(vec![Workflow::DeactivateConfigs], false);
        let active = company(Some("Active"), Some(false));
        let unknown = company(None, None);
        let mut contact = company(None, Some(true));
        contact.entity = EntityKind::Contact;
        let mut deleted = company(Some("Offboarded"), None);
        deleted.action = Action::Deleted;
        for (event, policy) in [
            (&active, &chosen),
            (&unknown, &chosen),
            (&contact, &chosen),
            (&deleted, &chosen),
            (&company(Some("Offboarded"), None), &policy(vec![], false)),
        ] {
            assert!(matches!(route(event, policy), RouteDecision::Ignore { .. }), "{event:?}");
        }
        let no_criteria = TriggerPolicy { criteria: OffboardedCriteria::default(), ..chosen.clone() };
        let RouteDecision::Ignore { why } = route(&company(None, Some(true)), &no_criteria) else { panic!() };
        assert!(why.contains("cannot be judged"), "{why}");
    }
}
