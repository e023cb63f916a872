//! The rollback's restore context (docs/architecture.md#restore-context): a restorer reaches
//! the directory through `RestoreSystems`, an item whose system is not configured fails
//! with `ConfigurationError` while the others are restored, and the rollback takes the lease
//! target the operation recorded. A toy operation is written straight into the SQLite trail;
//! its account item is put back through the Graph adapter against the sandbox's Microsoft
//! 365 simulator, its other item needs only the PSA (never called: `kind` only).
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^rollback_systems::/)'`

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::graph::GraphDirectory;
use offramp::domain::{
    ItemChange, ItemKind, ItemOutcome, LeaseRequest, OperationEvent, OperationEventKind, OperationRecord, Workflow,
};
use offramp::error::ErrorCode;
use offramp::operation::restore::{
    Judgement, Restorable, RestoreError, RestoreRegistry, RestoreSystems, Reversibility, parse_state,
};
use offramp::ports::{AuditStore, CloudDirectory, Directory, Psa, async_trait};
use offramp::workflows::rollback::{RollbackAction, RollbackDeps, RollbackReport, RollbackRequest, rollback};
use offramp_sandbox::m365::{M365_LEAVER_ID, M365_TENANT_ID};
use offramp_sandbox::{GRAPH_CLIENT_SECRET, Sandbox};
use offramp_tests::connectwise::http_settings;
use serde_json::{Value, json};

use crate::directory_graph::{sandbox, settings};

const LEASE_TARGET: &str = "m365#contoso#lee";
const PSA_ITEM: &str = "psa-item-1";

/// A user's enabled flag, judged and put back in the directory.
struct AccountEnabled {
    tenant: String,
    user: String,
    before: bool,
    left: bool,
}

fn parse_account(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, offramp::error::OfframpError> {
    let before: Value = parse_state(&change.before, change)?;
    Ok(Some(Box::new(AccountEnabled {
        tenant: before["tenant"].as_str().unwrap_or_default().to_string(),
        user: change.item_id.clone(),
        before: before["enabled"].as_bool().unwrap_or(true),
        left: change.after.as_ref().and_then(|a| a["enabled"].as_bool()).unwrap_or(false),
    })))
}

fn enabled_label(enabled: bool) -> String {
    if enabled { "enabled" } else { "disabled" }.to_string()
}

#[async_trait]
impl Restorable for AccountEnabled {
    fn kind(&self) -> ItemKind {
        ItemKind::UserAccount
    }
    fn id(&self) -> &str {
        &self.user
    }
    fn name(&self) -> &str {
        "Lee Leaver"
    }
    fn restore_to(&self) -> String {
        enabled_label(self.before)
    }
    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::ActionFailed
    }
    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let Some(now) = systems.directory()?.user(&self.tenant, &self.user).await? else {
            return Ok(Judgement::missing_from("Entra ID"));
        };
        let label = enabled_label(now.enabled);
        let left = enabled_label(self.left);
        let judgement = Judgement::compare_in("Entra ID", &self.before, &self.left, &now.enabled, label, left);
        Ok(judgement.with_current(json!({ "enabled": now.enabled })))
    }
    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        systems.directory()?.set_enabled(&self.tenant, &self.user, self.before).await?;
        Ok(json!({ "enabled": self.before }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An item that needs only the PSA: always to restore, and restored without a request.
struct PsaOnly {
    id: String,
}

fn parse_psa_only(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, offramp::error::OfframpError> {
    Ok(Some(Box::new(PsaOnly { id: change.item_id.clone() })))
}

#[async_trait]
impl Restorable for PsaOnly {
    fn kind(&self) -> ItemKind {
        ItemKind::Contact
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        "PSA item"
    }
    fn restore_to(&self) -> String {
        "active".into()
    }
    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::ContactUpdateFailed
    }
    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let current = json!({ "psa": systems.psa.kind().as_str() });
        Ok(Judgement::compare(&true, &false, &false, "inactive".into(), "inactive".into()).with_current(current))
    }
    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        Ok(json!({ "active": true, "psa": systems.psa.kind().as_str() }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn registry() -> RestoreRegistry {
    let mut registry = RestoreRegistry::default();
    registry
        .register_workflow(Workflow::OffboardUser, Reversibility::Reversible)
        .register_item(ItemKind::UserAccount, parse_account)
        .register_item(ItemKind::Contact, parse_psa_only);
    registry
}

fn changed(operation_id: &str, kind: ItemKind, id: &str, before: Value, after: Value) -> ItemChange {
    ItemChange {
        operation_id: operation_id.into(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type: kind,
        item_id: id.into(),
        item_name: id.into(),
        outcome: ItemOutcome::Changed,
        before,
        after: Some(after),
        error_code: None,
        error_message: None,
        at: offramp::domain::now(),
    }
}

struct World {
    /// Kept alive for the test.
    _sandbox: Sandbox,
    _dir: tempfile::TempDir,
    audit: SqliteAuditStore,
    psa: Box<dyn Psa>,
    directory: GraphDirectory,
    operation_id: String,
}

/// The leaver disabled in the simulator and a started user-offboarding operation in the
/// trail that recorded it (and one PSA item), with its own lease target.
async fn world() -> World {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap();
    let psa: Box<dyn Psa> = Box::new(offramp_tests::connectwise::client(&sandbox));
    let directory = GraphDirectory::new(&settings(&sandbox, GRAPH_CLIENT_SECRET), http_settings()).unwrap();
    directory.set_enabled(M365_TENANT_ID, M365_LEAVER_ID, false).await.unwrap();
    let operation_id = offramp::domain::new_operation_id();
    let record = OperationRecord {
        operation_id: operation_id.clone(),
        workflow: Workflow::OffboardUser,
        psa: psa.kind().as_str().into(),
        client_id: "250".into(),
        client_name: "Contoso".into(),
        initiated_by: "technician@msp.example".into(),
        reason: None,
        dry_run: false,
        plan_hash: None,
        created_at: offramp::domain::now(),
        input: json!({ "lease_target": LEASE_TARGET }),
        parent_operation_id: None,
    };
    audit.create_operation(&record).await.unwrap();
    audit.append_event(&OperationEvent::new(&operation_id, OperationEventKind::Started, json!({}))).await.unwrap();
    let account = json!({ "tenant": M365_TENANT_ID, "enabled": true });
    audit
        .put_changes(&[
            changed(&operation_id, ItemKind::Contact, PSA_ITEM, json!({ "active": true }), json!({ "active": false })),
            changed(&operation_id, ItemKind::UserAccount, M365_LEAVER_ID, account, json!({ "enabled": false })),
        ])
        .await
        .unwrap();
    World { _sandbox: sandbox, _dir: dir, audit, psa, directory, operation_id }
}

impl World {
    async fn roll_back(&self, directory: Option<&dyn CloudDirectory>) -> RollbackReport {
        let registry = registry();
        let deps = RollbackDeps {
            psa: self.psa.as_ref(),
            audit: &self.audit,
            registry: &registry,
            directory,
            mailboxes: None,
            onprem: None,
        };
        let request = RollbackRequest { operation_id: self.operation_id.clone(), ..Default::default() };
        rollback(&deps, request).await
    }

    async fn leaver_enabled(&self) -> bool {
        self.directory.user(M365_TENANT_ID, M365_LEAVER_ID).await.unwrap().unwrap().enabled
    }

    fn action(report: &RollbackReport, kind: ItemKind) -> RollbackAction {
        report.items.iter().find(|i| i.item_type == kind).map(|i| i.action).expect("the item is in the report")
    }
}

#[tokio::test]
async fn rollback_systems_a_restorer_reaches_the_directory_through_the_context() {
    let w = world().await;
    assert!(!w.leaver_enabled().await);
    let report = w.roll_back(Some(&w.directory)).await;
    assert!(report.success, "{report:?}");
    assert_eq!(World::action(&report, ItemKind::UserAccount), RollbackAction::Restored);
    assert_eq!(World::action(&report, ItemKind::Contact), RollbackAction::Restored);
    assert!(w.leaver_enabled().await, "the account is enabled again in the simulator");
}

#[tokio::test]
async fn rollback_systems_without_the_directory_fails_that_item_and_restores_the_others() {
    let w = world().await;
    let report = w.roll_back(None).await;
    assert!(!report.success);
    assert_eq!(World::action(&report, ItemKind::UserAccount), RollbackAction::Failed);
    assert_eq!(World::action(&report, ItemKind::Contact), RollbackAction::Restored);
    assert_eq!((report.statistics.restored, report.statistics.errors), (1, 1), "{:?}", report.statistics);
    let [error] = report.errors.as_slice() else { panic!("one error: {:?}", report.errors) };
    assert_eq!(error.code, ErrorCode::ConfigurationError);
    assert!(error.message.contains("Microsoft 365 is not configured (MS_CLIENT_ID"), "{}", error.message);
    assert_eq!(error.item_id.as_deref(), Some(M365_LEAVER_ID));
    assert!(!w.leaver_enabled().await, "nothing was sent to the directory");

    // The failed item is in the trail, so that rollback is not final: once Microsoft 365
    // is configured, rolling back again restores the account.
    let rollback_id = report.operation_id.clone().unwrap();
    let trail = w.audit.operation(&rollback_id).await.unwrap().unwrap();
    let failed = trail.changes.iter().find(|c| c.item_type == ItemKind::UserAccount).expect("a record");
    assert_eq!((failed.outcome, failed.error_code.as_deref()), (ItemOutcome::Failed, Some("ConfigurationError")));
    let again = w.roll_back(Some(&w.directory)).await;
    assert_eq!(World::action(&again, ItemKind::UserAccount), RollbackAction::Restored, "{again:?}");
    assert!(w.leaver_enabled().await);
}

#[tokio::test]
async fn rollback_systems_take_the_lease_target_the_operation_recorded() {
    let w = world().await;
    let rival = LeaseRequest {
        target: LEASE_TARGET.into(),
        operation_id: "the-forward-run".into(),
        holder: uuid::Uuid::now_v7().to_string(),
        ttl: chrono::Duration::seconds(60),
        break_existing: false,
    };
    w.audit.acquire_lease(&rival).await.unwrap();
    let report = w.roll_back(Some(&w.directory)).await;
    assert_eq!(report.primary_error(), Some(ErrorCode::OperationInProgress), "{report:?}");
    assert!(report.errors[0].message.contains(LEASE_TARGET), "{}", report.errors[0].message);
    assert!(!w.leaver_enabled().await, "nothing was restored while the forward run holds the target");
}
