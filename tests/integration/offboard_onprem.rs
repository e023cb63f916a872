//! User offboarding (workflow 003) with on-premises Active Directory: the real Samba AD DC
//! of the test run (scripts/with-samba.sh) beside the Microsoft 365 and PSA simulators.
//! Every effect is read back from the DC over a connection of the test's own (the
//! fixture's administrator), never taken from the report.

use std::sync::Arc;

use offramp::adapters::ldap::LdapDirectory;
use offramp::domain::{IdentityMode, ItemKind, OffboardAction, PsaKind};
use offramp::error::ErrorCode;
use offramp::ports::{AdGroup, AdUser, AuditStore, DirectoryError, OnPremDirectory, async_trait};
use offramp::secret::SecretString;
use offramp::workflows::offboard_user::report::{OffboardStatus, TaskResult};
use offramp::workflows::offboard_user::{ActionOptions, OffboardUserReport, OffboardUserRequest, offboard_user};
use offramp::workflows::rollback::{RollbackDeps, RollbackRequest, rollback};
use offramp_sandbox::m365::*;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::offboarding::{UserHarness, request};
use offramp_tests::samba::{AdFixture, ad_settings, bind_as};

const T: &str = M365_TENANT_ID;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn ldap() -> Arc<LdapDirectory> {
    Arc::new(LdapDirectory::new(ad_settings()).expect("LDAP adapter"))
}

async fn harness(sb: &Sandbox, onprem: Arc<dyn OnPremDirectory>) -> UserHarness {
    let mut h = UserHarness::new(sb, PsaKind::ConnectWise);
    h.onprem = Some(onprem);
    h
}

async fn set(h: &UserHarness, key: &str, value: &str) {
    h.set_client_setting(key, value).await;
}

/// Every AD action.
fn ad_actions() -> ActionOptions {
    ActionOptions {
        disable_account: true,
        reset_password: true,
        clear_employee_id: true,
        clear_manager: true,
        remove_groups: true,
        hide_from_gal: true,
        move_to_disabled_ou: true,
        revoke_sessions: true,
        convert_to_shared: true,
        ..ActionOptions::default()
    }
}

/// An on-premises-only request for the fixture's leaver: no tenant (the client has none).
fn onprem_request(ad: &AdFixture, actions: ActionOptions) -> OffboardUserRequest {
    OffboardUserRequest { tenant: None, directory: Some(IdentityMode::OnPrem), ..request(&ad.leaver.sam, actions) }
}

fn task(report: &OffboardUserReport, kind: ItemKind) -> Vec<&offramp::workflows::offboard_user::TaskReport> {
    report.tasks.iter().filter(|t| t.item_type == kind).collect()
}

/// What the DC holds for the leaver now, found by its sAMAccountName wherever it is.
struct Found {
    dn: String,
    uac: u32,
    employee_id: Option<String>,
    manager: Option<String>,
    member_of: Vec<String>,
    hidden: Option<String>,
}

async fn found(ad: &AdFixture) -> Found {
    let mut admin = ad.admin.clone();
    let filter = format!("(sAMAccountName={})", ad.leaver.sam);
    let attrs = vec!["userAccountControl", "employeeID", "manager", "memberOf", "msExchHideFromAddressLists"];
    let (entries, _) = admin
        .search(&ad.ou, ldap3::Scope::Subtree, &filter, attrs)
        .await
        .expect("search")
        .success()
        .expect("search ok");
    let entry = ldap3::SearchEntry::construct(entries.into_iter().next().expect("the leaver"));
    let one = |key: &str| entry.attrs.get(key).and_then(|v| v.first().cloned());
    Found {
        dn: entry.dn.clone(),
        uac: one("userAccountControl").and_then(|v| v.parse().ok()).unwrap_or(0),
        employee_id: one("employeeID"),
        manager: one("manager"),
        member_of: entry.attrs.get("memberOf").cloned().unwrap_or_default(),
        hidden: one("msExchHideFromAddressLists"),
    }
}

fn is_member(found: &Found, group: &str) -> bool {
    found.member_of.iter().any(|g| g.eq_ignore_ascii_case(group))
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_onprem_only_does_every_ad_action_reads_it_back_and_rolls_it_back() {
    let (sb, ad) = (sandbox().await, AdFixture::new("onprem").await);
    let h = harness(&sb, ldap()).await;
    set(&h, "ad_disabled_ou", &ad.disabled).await;
    let report = Box::pin(offboard_user(&h.deps(), onprem_request(&ad, ad_actions()))).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{report:#?}");
    assert_eq!(report.identity_mode, Some(IdentityMode::OnPrem));
    assert_eq!(report.tenant.as_deref(), Some("test.local"), "the AD domain stands for the tenant");
    let now = found(&ad).await;
    assert_eq!(now.uac & 2, 2, "disabled in AD");
    assert_eq!(now.employee_id, None);
    assert_eq!(now.manager, None);
    for group in [&ad.security_group, &ad.distribution_group, &ad.builtin_group] {
        assert!(!is_member(&now, group), "still in {group}");
    }
    assert_eq!(now.hidden.as_deref(), Some("TRUE"));
    assert!(now.dn.to_ascii_lowercase().ends_with(&ad.disabled.to_ascii_lowercase()), "moved: {}", now.dn);
    let (old_password, _) = bind_as(&now.dn, &ad.leaver.password).await;
    assert_eq!(old_password, 49, "the old password no longer binds");
    // Every AD task done and confirmed when read back; every cloud action listed as skipped.
    for t in report.tasks.iter().filter(|t| t.system == "on-premises AD" && t.reason.is_none()) {
        assert_eq!(t.result, TaskResult::Done, "{t:#?}");
        if t.item_type != ItemKind::AdPassword {
            assert_eq!(t.verified, Some(true), "{t:#?}");
        }
    }
    assert_eq!(task(&report, ItemKind::AdGroupMembership).iter().filter(|t| t.result == TaskResult::Done).count(), 3);
    let primary = task(&report, ItemKind::AdGroupMembership).into_iter().find(|t| t.target_id.starts_with("primary"));
    assert!(primary.expect("the primary group listed").reason.as_deref().unwrap().contains("primary group"));
    for action in [OffboardAction::RevokeSessions, OffboardAction::ConvertToShared] {
        let t = report.tasks.iter().find(|t| t.action == action).expect("listed");
        assert_eq!(t.result, TaskResult::Skipped, "{t:#?}");
    }
    assert_eq!(sb.m365().all_writes().len(), 0, "nothing was sent to Microsoft 365");

    let registry = offramp::workflows::restorers();
    let deps = RollbackDeps {
        onprem: h.onprem.as_deref(),
        ..RollbackDeps::without_microsoft365(h.psa.as_ref(), h.audit.as_ref(), registry)
    };
    let operation_id = report.operation_id.clone().expect("an operation");
    let undone =
        Box::pin(rollback(&deps, RollbackRequest { operation_id: operation_id.clone(), ..Default::default() })).await;
    assert!(undone.success, "{undone:#?}");
    let back = found(&ad).await;
    assert_eq!(back.uac & 2, 0, "enabled again");
    assert_eq!(back.employee_id.as_deref(), Some(ad.leaver.employee_id.as_str()));
    assert!(back.manager.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(&ad.manager.dn)), "{:?}", back.manager);
    for group in [&ad.security_group, &ad.distribution_group, &ad.builtin_group] {
        assert!(is_member(&back, group), "back in {group}");
    }
    assert_eq!(back.hidden.as_deref(), Some("FALSE"));
    assert!(back.dn.eq_ignore_ascii_case(&ad.leaver.dn), "moved back: {}", back.dn);
    assert!(
        undone.warnings.iter().any(|w| w.contains("ad_password") || w.contains("password")),
        "{:#?}",
        undone.warnings
    );
    // A second rollback is refused (it could overwrite what people changed since) and
    // changes nothing.
    let again = Box::pin(rollback(&deps, RollbackRequest { operation_id, ..Default::default() })).await;
    assert_eq!(again.errors[0].code, ErrorCode::RollbackRefused, "{again:#?}");
    let still = found(&ad).await;
    assert_eq!((still.dn, still.uac, still.member_of.len()), (back.dn, back.uac, back.member_of.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_onprem_dry_run_names_each_tasks_system_and_changes_nothing() {
    let (sb, ad) = (sandbox().await, AdFixture::new("dryrun").await);
    let h = harness(&sb, ldap()).await;
    set(&h, "ad_disabled_ou", &ad.disabled).await;
    let before = found(&ad).await;
    let request = OffboardUserRequest { dry_run: true, ..onprem_request(&ad, ad_actions()) };
    let report = Box::pin(offboard_user(&h.deps(), request)).await;
    assert_eq!(report.status, OffboardStatus::Planned, "{report:#?}");
    assert!(report.tasks.iter().any(|t| t.system == "on-premises AD" && t.result == TaskResult::Planned));
    let move_task = report.tasks.iter().find(|t| t.action == OffboardAction::MoveToDisabledOu).expect("the move");
    assert_eq!(move_task.phase, "relocate");
    let disable = report.tasks.iter().find(|t| t.item_type == ItemKind::AdAccount).expect("AD disable");
    assert_eq!(disable.phase, "onprem_sign_in");
    let after = found(&ad).await;
    assert_eq!((after.dn, after.uac, after.member_of.len()), (before.dn, before.uac, before.member_of.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_onprem_refuses_a_missing_ou_and_an_unknown_account_before_anything_changes() {
    let (sb, ad) = (sandbox().await, AdFixture::new("refuse").await);
    let h = harness(&sb, ldap()).await;
    set(&h, "ad_disabled_ou", &format!("OU=Nowhere,{}", ad.ou)).await;
    let report = Box::pin(offboard_user(&h.deps(), onprem_request(&ad, ad_actions()))).await;
    assert_eq!(report.status, OffboardStatus::Failed);
    assert_eq!(report.errors[0].code, ErrorCode::InvalidInput, "{report:#?}");
    assert!(report.errors[0].message.contains("does not exist"), "{report:#?}");
    assert_eq!(found(&ad).await.uac & 2, 0, "nothing changed");
    let unknown = OffboardUserRequest { user: Some("nobody-here".into()), ..onprem_request(&ad, ad_actions()) };
    let report = Box::pin(offboard_user(&h.deps(), unknown)).await;
    assert_eq!(report.errors[0].code, ErrorCode::UserNotFound, "{report:#?}");
}

/// An AD that refuses to remove the leaver from one group (as a DC refuses a bind account
/// without the right on that group: LDAP 50) and whose schema lacks the Exchange extension
/// (as a domain that never had Exchange); everything else goes to the real DC.
struct RefusesOneGroup {
    inner: Arc<LdapDirectory>,
    group: String,
}

#[async_trait]
impl OnPremDirectory for RefusesOneGroup {
    fn domain(&self) -> &str {
        self.inner.domain()
    }
    fn disabled_ou(&self) -> Option<&str> {
        self.inner.disabled_ou()
    }
    async fn find_user(&self, user: &str) -> Result<Option<AdUser>, DirectoryError> {
        self.inner.find_user(user).await
    }
    async fn find_user_by_mail(&self, mail: &str) -> Result<Option<AdUser>, DirectoryError> {
        self.inner.find_user_by_mail(mail).await
    }
    async fn group(&self, dn: &str) -> Result<Option<AdGroup>, DirectoryError> {
        self.inner.group(dn).await
    }
    async fn entry_exists(&self, dn: &str) -> Result<bool, DirectoryError> {
        self.inner.entry_exists(dn).await
    }
    async fn schema_has_attribute(&self, name: &str) -> Result<bool, DirectoryError> {
        if name.eq_ignore_ascii_case("msExchHideFromAddressLists") {
            return Ok(false);
        }
        self.inner.schema_has_attribute(name).await
    }
    async fn set_user_account_control(&self, dn: &str, value: u32) -> Result<(), DirectoryError> {
        self.inner.set_user_account_control(dn, value).await
    }
    async fn reset_password(&self, dn: &str, password: &SecretString) -> Result<(), DirectoryError> {
        self.inner.reset_password(dn, password).await
    }
    async fn set_employee_id(&self, dn: &str, id: Option<&str>) -> Result<(), DirectoryError> {
        self.inner.set_employee_id(dn, id).await
    }
    async fn set_manager(&self, dn: &str, manager: Option<&str>) -> Result<(), DirectoryError> {
        self.inner.set_manager(dn, manager).await
    }
    async fn add_member(&self, group: &str, user: &str) -> Result<(), DirectoryError> {
        self.inner.add_member(group, user).await
    }
    async fn remove_member(&self, group: &str, user: &str) -> Result<(), DirectoryError> {
        if group.eq_ignore_ascii_case(&self.group) {
            let message = "00002098: SecErr: insufficient access rights".to_string();
            return Err(DirectoryError::PermissionDenied { code: "50".into(), message });
        }
        self.inner.remove_member(group, user).await
    }
    async fn move_entry(&self, dn: &str, parent: &str) -> Result<String, DirectoryError> {
        self.inner.move_entry(dn, parent).await
    }
    async fn set_hidden_from_address_lists(&self, dn: &str, hidden: bool) -> Result<(), DirectoryError> {
        self.inner.set_hidden_from_address_lists(dn, hidden).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_onprem_an_already_disabled_account_and_a_refused_group_never_hide_the_rest() {
    let (sb, ad) = (sandbox().await, AdFixture::new("partial").await);
    let mut admin = ad.admin.clone();
    let disable = ldap3::Mod::Replace(b"userAccountControl".to_vec(), [b"514".to_vec()].into());
    admin.modify(&ad.leaver.dn, vec![disable]).await.expect("modify").success().expect("disabled by hand");
    let refusing = RefusesOneGroup { inner: ldap(), group: ad.security_group.clone() };
    let mut h = harness(&sb, Arc::new(refusing)).await;
    let actions = ActionOptions {
        disable_account: true,
        remove_groups: true,
        clear_employee_id: true,
        hide_from_gal: true,
        ..Default::default()
    };
    let report = Box::pin(offboard_user(&h.deps(), onprem_request(&ad, actions))).await;
    assert_eq!(report.status, OffboardStatus::Partial, "{report:#?}");
    let hide = task(&report, ItemKind::AdAddressListVisibility)[0];
    assert_eq!(hide.result, TaskResult::Skipped, "{hide:#?}");
    assert!(hide.reason.as_deref().unwrap().contains("schema has no msExchHideFromAddressLists"), "{hide:#?}");
    let disable = task(&report, ItemKind::AdAccount)[0];
    assert_eq!(disable.result, TaskResult::Skipped);
    assert_eq!(disable.reason.as_deref(), Some("the AD account is already disabled"));
    let groups = task(&report, ItemKind::AdGroupMembership);
    let refused = groups.iter().find(|t| t.target_id == ad.security_group.to_ascii_lowercase()).expect("Sales");
    assert_eq!(refused.result, TaskResult::Failed);
    assert_eq!(refused.error_code, Some(ErrorCode::PermissionDenied));
    let now = found(&ad).await;
    assert!(is_member(&now, &ad.security_group), "the refused membership stays");
    assert!(!is_member(&now, &ad.distribution_group) && !is_member(&now, &ad.builtin_group), "the others went");
    assert_eq!(now.employee_id, None);
    // The trail says exactly what changed: two memberships and the employee id, one failure.
    let detail = h.audit.operation(report.operation_id.as_deref().unwrap()).await.expect("trail").expect("op");
    let changed = detail.changes.iter().filter(|c| c.outcome == offramp::domain::ItemOutcome::Changed).count();
    let failed = detail.changes.iter().filter(|c| c.outcome == offramp::domain::ItemOutcome::Failed).count();
    assert!(changed >= 3 && failed == 1, "changed {changed}, failed {failed}");

    // Once the right is granted, the operation is resumed from its trail: only the refused
    // membership is sent again; what was done stays done.
    h.onprem = Some(ldap());
    let resume = OffboardUserRequest {
        operation_id: report.operation_id.clone(),
        initiated_by: Some("tech@msp.example".into()),
        ..OffboardUserRequest::default()
    };
    let resumed = Box::pin(offboard_user(&h.deps(), resume)).await;
    assert_eq!(resumed.status, OffboardStatus::Completed, "{resumed:#?}");
    assert!(!is_member(&found(&ad).await, &ad.security_group), "the refused membership is gone now");
    let detail = h.audit.operation(report.operation_id.as_deref().unwrap()).await.expect("trail").expect("op");
    let sent = |kind: ItemKind, id: &str| {
        detail
            .changes
            .iter()
            .filter(|c| c.item_type == kind && c.item_id == id && c.outcome == offramp::domain::ItemOutcome::Intended)
            .count()
    };
    assert_eq!(sent(ItemKind::AdGroupMembership, &ad.security_group.to_ascii_lowercase()), 2, "sent again");
    assert_eq!(sent(ItemKind::AdGroupMembership, &ad.distribution_group.to_ascii_lowercase()), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_hybrid_synced_changes_ad_first_and_refuses_an_out_of_scope_move_with_a_shared_mailbox() {
    let (sb, ad) = (sandbox().await, AdFixture::new("hybrid").await);
    sb.m365().link_on_premises(T, M365_SYNCED_LEAVER_ID, &ad.leaver.sam, &ad.leaver.dn);
    let h = harness(&sb, ldap()).await;
    set(&h, "ad_disabled_ou", &ad.disabled).await;
    let actions = ActionOptions {
        disable_account: true,
        reset_password: true,
        clear_employee_id: true,
        clear_manager: true,
        remove_groups: true,
        hide_from_gal: true,
        convert_to_shared: true,
        move_to_disabled_ou: true,
        ..ActionOptions::default()
    };
    let refused = Box::pin(offboard_user(&h.deps(), request(M365_SYNCED_LEAVER_UPN, actions.clone()))).await;
    assert_eq!(refused.errors[0].code, ErrorCode::InvalidInput, "{refused:#?}");
    assert!(refused.errors[0].message.contains("sync scope"), "{refused:#?}");
    assert_eq!((found(&ad).await.uac & 2, sb.m365().all_writes().len()), (0, 0), "nothing changed anywhere");

    let actions = ActionOptions { disabled_ou_in_sync_scope: true, ..actions };
    let report = Box::pin(offboard_user(&h.deps(), request(M365_SYNCED_LEAVER_UPN, actions))).await;
    assert_eq!(report.identity_mode, Some(IdentityMode::HybridSynced), "{report:#?}");
    assert!(report.identity_mode_decided_by.as_deref().unwrap().contains("onPremisesSyncEnabled"));
    assert!(matches!(report.status, OffboardStatus::Completed | OffboardStatus::Partial), "{report:#?}");
    let now = found(&ad).await;
    assert_eq!(now.uac & 2, 2, "disabled in AD");
    assert_eq!((now.employee_id, now.manager, now.hidden.as_deref()), (None, None, Some("TRUE")));
    assert!(!sb.m365().user(T, M365_SYNCED_LEAVER_ID).expect("cloud user").account_enabled, "and in Entra ID");
    let cloud_password = task(&report, ItemKind::UserPassword)[0];
    assert!(cloud_password.reason.as_deref().unwrap().contains("on-premises AD task"), "{cloud_password:#?}");
    assert_eq!(task(&report, ItemKind::AdPassword)[0].result, TaskResult::Done);
    let synced_group = report.tasks.iter().find(|t| t.target_id == M365_GROUP_SYNCED).expect("the synced group");
    assert!(synced_group.reason.as_deref().unwrap().contains("on-premises AD task"), "{synced_group:#?}");
    // AD first: the trail's AD disable comes before the Entra ID one.
    let detail = h.audit.operation(report.operation_id.as_deref().unwrap()).await.expect("trail").expect("op");
    let at = |kind: ItemKind| {
        detail
            .changes
            .iter()
            .filter(|c| c.item_type == kind && c.outcome == offramp::domain::ItemOutcome::Changed)
            .map(|c| c.at)
            .next()
    };
    assert!(at(ItemKind::AdAccount).expect("AD disable") < at(ItemKind::UserAccount).expect("cloud disable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_hybrid_unsynced_offboards_both_accounts_and_an_email_only_user_as_cloud() {
    let (sb, ad) = (sandbox().await, AdFixture::new("pair").await);
    let h = harness(&sb, ldap()).await;
    set(&h, "user_offboarding_identity_mode", "hybrid-unsynced").await;
    set(&h, "user_offboarding_ad_pairing", "mail").await;
    // The two accounts share an address: the client pairs them by mail.
    let mail = sb.m365().user(T, M365_LEAVER_ID).expect("cloud user").mail.expect("a mail address");
    let mut admin = ad.admin.clone();
    let same_mail = ldap3::Mod::Replace(b"mail".to_vec(), [mail.as_bytes().to_vec()].into());
    admin.modify(&ad.leaver.dn, vec![same_mail]).await.expect("modify").success().expect("mail set");
    let actions = ActionOptions { disable_account: true, clear_employee_id: true, ..ActionOptions::default() };
    let report = Box::pin(offboard_user(&h.deps(), request(M365_LEAVER_UPN, actions.clone()))).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{report:#?}");
    assert_eq!(report.identity_mode, Some(IdentityMode::HybridUnsynced));
    assert_eq!(found(&ad).await.uac & 2, 2, "the AD account disabled");
    assert!(!sb.m365().user(T, M365_LEAVER_ID).expect("cloud user").account_enabled, "the cloud account disabled");
    assert_eq!(report.ad_account.as_ref().map(|a| a.sam_account_name.as_str()), Some(ad.leaver.sam.as_str()));
    // An explicit mapping wins over the rule.
    let explicit = OffboardUserRequest {
        onprem_user: Some(ad.manager.upn.clone()),
        dry_run: true,
        ..request(M365_LEAVER_UPN, actions.clone())
    };
    let planned = Box::pin(offboard_user(&h.deps(), explicit)).await;
    assert_eq!(planned.ad_account.as_ref().map(|a| a.sam_account_name.as_str()), Some(ad.manager.sam.as_str()));

    // The client's people live in AD, but this one has only a mailbox in the cloud.
    set(&h, "user_offboarding_identity_mode", "onprem").await;
    let email_only = Box::pin(offboard_user(&h.deps(), request(M365_COLLEAGUE_UPN, actions))).await;
    assert_eq!(email_only.identity_mode, Some(IdentityMode::Cloud), "{email_only:#?}");
    assert!(email_only.identity_mode_decided_by.as_deref().unwrap().contains("e-mail-only"));
    assert!(!sb.m365().user(T, M365_COLLEAGUE_ID).expect("cloud user").account_enabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_onprem_mode_without_ad_configured_is_refused_before_anything_changes() {
    let (sb, ad) = (sandbox().await, AdFixture::new("noad").await);
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let request = OffboardUserRequest { tenant: Some(M365_TENANT_DOMAIN.into()), ..onprem_request(&ad, ad_actions()) };
    let report = Box::pin(offboard_user(&h.deps(), request)).await;
    assert_eq!(report.errors[0].code, ErrorCode::ConfigurationError, "{report:#?}");
    assert!(report.errors[0].message.contains("AD_LDAP_URL"));
    assert_eq!(found(&ad).await.uac & 2, 0);
    assert!(h.audit.list_operations(&Default::default()).await.map(|o| o.is_empty()).unwrap_or(true));
}
