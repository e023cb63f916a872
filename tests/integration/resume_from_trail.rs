//! Resume and rollback decide from the audit trail (docs/architecture.md#the-operation-engine): every
//! change is preceded by a write-ahead intent, so after a crash an item with no record was
//! never sent and is never claimed, and only the window in flight is uncertain. On every
//! PSA, a run "dies" right after a change write; then, before the resume, (a) a
//! configuration the trail records as changed is re-activated by someone, (b) one the run
//! never reached is deactivated by someone else, (c) one it never reached is deleted.
//! Counts come from the simulators, not from the reports.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^resume_from_trail::/)'`

use std::collections::HashMap;
use std::time::Duration;

use offramp::adapters::notify_webhook::{WebhookNotifier, WebhookSettings};
use offramp::domain::{ItemKind, ItemOutcome, OperationDetail};
use offramp::http::HttpSettings;
use offramp::ports::{AuditStore, NoProgress};
use offramp::workflows::deactivate_configs::{DeactivateConfigsRequest, Deps, deactivate_configs};
use offramp::workflows::deactivate_contacts::{ContactDeps, DeactivateContactsRequest, deactivate_contacts};
use offramp::workflows::rollback::{RollbackDeps, RollbackRequest, rollback};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::faulty_audit::FaultyAudit;
use offramp_tests::psa::{ALL, PsaHarness, client_with, http_settings, sim};

const CLIENT: &str = "300";
const CONFIGS: usize = 150;

fn request() -> DeactivateConfigsRequest {
    DeactivateConfigsRequest {
        client_id: Some(CLIENT.into()),
        initiated_by: Some("resume@msp.example".into()),
        // Northwind (300) is not offboarded: deactivated on purpose, recorded.
        allow_active_client: true,
        ..DeactivateConfigsRequest::default()
    }
}

/// The latest record of every item of `kind`, by id.
fn latest_of(detail: &OperationDetail, kind: ItemKind) -> HashMap<String, ItemOutcome> {
    let mut latest = HashMap::new();
    for change in detail.changes.iter().filter(|c| c.item_type == kind) {
        latest.insert(change.item_id.clone(), change.outcome);
    }
    latest
}

fn latest_outcomes(detail: &OperationDetail) -> HashMap<String, ItemOutcome> {
    latest_of(detail, ItemKind::Configuration)
}

/// Start a run and drop it once its third change write is in the trail (the intents of
/// the first window, then two batches of change records): a crash with work in flight.
async fn crashed_run(audit: &FaultyAudit, deps: &Deps<'_>) -> String {
    audit.crash_after(3, deactivate_configs(deps, request())).await;
    let operations = audit.list_operations(&Default::default()).await.unwrap();
    operations[0].operation.operation_id.clone()
}

#[tokio::test]
async fn a_resume_claims_only_what_the_trail_says_it_sent_and_rollback_follows_it_on_every_psa() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: CONFIGS, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(5));
    // The request budgets are not what this test is about (psa_parity reaches them): the
    // rollbacks read and write one item at a time, past HaloPSA's 300 per 5 minutes.
    sandbox.set_halo_rate_limit(None);
    for kind in ALL {
        let mut http = http_settings(kind);
        if let Some(budget) = http.budget.as_mut() {
            budget.limit = 10_000;
        }
        let h = PsaHarness::with_client(kind, client_with(&sandbox, kind, http));
        let sim = sim(&sandbox, kind);
        let ids = sim.configuration_ids_of(CLIENT.parse().unwrap());
        assert_eq!(ids.len(), CONFIGS, "{kind}");
        let audit = FaultyAudit::new(h.audit.clone());
        let deps = Deps { audit: &audit, ..h.deps() };
        let operation_id = crashed_run(&audit, &deps).await;

        let trail = h.audit.operation(&operation_id).await.unwrap().unwrap();
        let latest = latest_outcomes(&trail);
        let changed = ids.iter().find(|id| latest.get(&id.to_string()) == Some(&ItemOutcome::Changed)).copied();
        let (reactivated, unreached) = (changed.expect("some change recorded before the crash"), ids[CONFIGS - 1]);
        let deleted = ids[CONFIGS - 2];
        assert!(!latest.contains_key(&unreached.to_string()), "{kind}: the run never got to {unreached}");
        for id in &ids {
            // Write-ahead: nothing was sent without its intent in the trail first.
            if sim.update_count(*id) > 0 {
                assert!(latest.contains_key(&id.to_string()), "{kind}: {id} was sent without an intent");
            }
        }
        sim.set_configuration_active(reactivated, true); // (a)
        sim.set_configuration_active(unreached, false); // (b)
        sim.delete_configuration(deleted); // (c)

        let resumed = deactivate_configs(
            &h.deps(),
            DeactivateConfigsRequest {
                operation_id: Some(operation_id.clone()),
                break_lease: true,
                ..DeactivateConfigsRequest::default()
            },
        )
        .await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        let said = |id: i64| resumed.warnings.iter().any(|w| w.contains(&format!("Configuration {id} ")));
        assert!(said(reactivated) && said(unreached) && said(deleted), "{kind}: {:?}", resumed.warnings);
        assert_eq!(sim.configuration_is_active(reactivated), Some(true), "{kind}: (a) left as someone set it");
        assert_eq!(sim.update_count(reactivated), 1, "{kind}: (a) changed once, by the first run");
        assert_eq!(sim.update_count(unreached), 0, "{kind}: (b) never sent");
        for id in ids.iter().filter(|id| ![unreached, deleted].contains(id)) {
            assert_eq!(sim.update_count(*id), 1, "{kind}: {id} changed exactly once");
        }

        let after = latest_outcomes(&h.audit.operation(&operation_id).await.unwrap().unwrap());
        assert_eq!(after.get(&unreached.to_string()), Some(&ItemOutcome::Skipped), "{kind}: (b) not claimed");
        assert!(!after.values().any(|o| *o == ItemOutcome::Intended), "{kind}: nothing left in flight");
        let uncertain: Vec<i64> =
            ids.iter().copied().filter(|id| after.get(&id.to_string()) == Some(&ItemOutcome::Uncertain)).collect();

        let rdeps =
            RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), offramp::workflows::restorers());
        let undo = |include_uncertain, dry_run| RollbackRequest {
            operation_id: operation_id.clone(),
            include_uncertain,
            dry_run,
            ..Default::default()
        };
        let with_uncertain = rollback(&rdeps, undo(true, true)).await;
        let without = rollback(&rdeps, undo(false, false)).await;
        assert!(without.success, "{kind}: {:?} {:?}", without.errors, without.warnings);
        assert_eq!(with_uncertain.items.len(), without.items.len() + uncertain.len(), "{kind}");
        assert_eq!(sim.configuration_is_active(unreached), Some(false), "{kind}: (b) stays as someone set it");
        assert_eq!(sim.update_count(unreached), 0, "{kind}: (b) untouched by the rollback");
        for id in &uncertain {
            assert_eq!(sim.configuration_is_active(*id), Some(false), "{kind}: uncertain {id} left alone");
        }
        if !uncertain.is_empty() {
            assert!(without.warnings.iter().any(|w| w.contains("uncertain")), "{kind}: {:?}", without.warnings);
        }
        let restored = ids.iter().filter(|id| after.get(&id.to_string()) == Some(&ItemOutcome::Changed));
        for id in restored.filter(|id| **id != reactivated) {
            assert_eq!(sim.configuration_is_active(*id), Some(true), "{kind}: {id} restored");
        }
    }
}

/// The same for contact deactivation: (a) a contact the trail records as deactivated is
/// re-activated, (b) one the run never reached is deactivated by someone else, (c) one it
/// never reached is deleted. The resume also opens no second ticket and sends no second
/// notification.
#[tokio::test]
async fn a_contact_resume_claims_only_what_the_trail_says_it_sent_on_every_psa() {
    for kind in ALL {
        let sandbox = Sandbox::start(SandboxConfig {
            large_client_configs: 0,
            halo_rate_limit: None,
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        sandbox.set_latency(Duration::from_millis(5));
        let mut http = http_settings(kind);
        http.budget = None;
        let h = PsaHarness::with_client(kind, client_with(&sandbox, kind, http));
        let sim = sim(&sandbox, kind);
        let hook = WebhookNotifier::new(WebhookSettings { url: sandbox.webhook_url().into() }, HttpSettings::default())
            .unwrap();
        let audit = FaultyAudit::new(h.audit.clone());
        let deps = ContactDeps {
            psa: h.psa.as_ref(),
            audit: &audit,
            settings: h.audit.as_ref(),
            notifier: Some(&hook),
            progress: &NoProgress,
            concurrency: 8,
            requester_domains: vec!["msp.example".into()],
            deadline: offramp::operation::Deadline::none(),
        };
        let ids = sim.contact_ids_of(300);
        let operation_id = crashed_contact_run(&audit, &deps).await;

        let latest = latest_of(&h.audit.operation(&operation_id).await.unwrap().unwrap(), ItemKind::Contact);
        let reactivated =
            ids.iter().copied().find(|id| latest.get(&id.to_string()) == Some(&ItemOutcome::Changed)).unwrap();
        let (unreached, deleted) = (ids[ids.len() - 1], ids[ids.len() - 2]);
        assert!(!latest.contains_key(&unreached.to_string()), "{kind}: the run never got to {unreached}");
        sim.set_contact_active(reactivated, true); // (a)
        sim.set_contact_active(unreached, false); // (b)
        sim.delete_contact(deleted); // (c)

        let resume = DeactivateContactsRequest {
            operation_id: Some(operation_id.clone()),
            break_lease: true,
            ..Default::default()
        };
        let resumed = deactivate_contacts(&ContactDeps { audit: h.audit.as_ref(), ..deps }, resume).await;
        assert!(resumed.success, "{kind}: {:?}", resumed.errors);
        let said = |id: i64| resumed.warnings.iter().any(|w| w.contains(&format!(" {id} (")));
        assert!(said(reactivated) && said(unreached) && said(deleted), "{kind}: {:?}", resumed.warnings);
        assert_eq!(sim.contact_is_active(reactivated), Some(true), "{kind}: (a) left as someone set it");
        assert_eq!(sim.contact_update_count(reactivated), 1, "{kind}: (a) changed once, by the first run");
        assert_eq!(sim.contact_update_count(unreached), 0, "{kind}: (b) never sent");
        for id in ids.iter().filter(|id| ![unreached, deleted].contains(id)) {
            assert_eq!(sim.contact_update_count(*id), 1, "{kind}: {id} changed exactly once");
        }
        let after = latest_of(&h.audit.operation(&operation_id).await.unwrap().unwrap(), ItemKind::Contact);
        assert_eq!(after.get(&unreached.to_string()), Some(&ItemOutcome::Skipped), "{kind}: (b) not claimed");
        assert_eq!(sandbox.webhook_posts().len(), 1, "{kind}: one notification, after the resume");
        let tickets =
            sim.ticket_ids_of(300).into_iter().filter(|t| sim.ticket(*t).is_some_and(|t| !t.notes.is_empty()));
        assert_eq!(tickets.count(), 1, "{kind}: one summary ticket with a note");
    }
}

async fn crashed_contact_run(audit: &FaultyAudit, deps: &ContactDeps<'_>) -> String {
    let request = DeactivateContactsRequest {
        company_id: Some("300".into()),
        confirmation: true,
        override_blast_radius: true,
        initiated_by: Some("resume@msp.example".into()),
        ..DeactivateContactsRequest::default()
    };
    // Boxed: the contact workflow is a large future for a test thread's stack.
    audit.crash_after(3, Box::pin(deactivate_contacts(deps, request))).await;
    audit.list_operations(&Default::default()).await.unwrap()[0].operation.operation_id.clone()
}
