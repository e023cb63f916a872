//! User offboarding (workflow 003) end to end against the sandbox: Entra ID and Exchange
//! Online of the Microsoft 365 simulator, the PSA simulators, the sandbox's Graph mail.
//! Effects are counted in the simulators, never taken from the report.

use offramp::domain::{OffboardAction, PsaKind};
use offramp::error::ErrorCode;
use offramp::ports::AuditStore;
use offramp::workflows::offboard_user::report::{OffboardStatus, TaskResult};
use offramp::workflows::offboard_user::{ActionOptions, Approval, OffboardUserReport, offboard_user};
use offramp_sandbox::m365::*;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::offboarding::{LEAVER_CONTACT, UserHarness, every_action, request};
use offramp_tests::psa::sim;

const T: &str = M365_TENANT_ID;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn task<'r>(
    report: &'r OffboardUserReport,
    action: OffboardAction,
    id: &str,
) -> &'r offramp::workflows::offboard_user::TaskReport {
    report
        .tasks
        .iter()
        .find(|t| t.action == action && t.target_id == id)
        .unwrap_or_else(|| panic!("no task {action} on {id}: {:#?}", report.tasks))
}

fn ticket_notes(sb: &Sandbox, kind: PsaKind, report: &OffboardUserReport) -> Vec<String> {
    let id: i64 = report.ticket_id.as_deref().expect("a ticket").parse().expect("numeric ticket id");
    sim(sb, kind).ticket(id).expect("the ticket exists").notes
}

/// Every write the simulator applied was applied once.
fn assert_each_write_once(sb: &Sandbox) {
    for (key, count) in sb.m365().all_writes() {
        assert_eq!(count, 1, "{key:?} applied {count} times");
    }
}

#[tokio::test]
async fn offboard_user_every_action_is_done_once_skipped_with_its_reason_and_documented() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, every_action())).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{report:#?}");
    assert!(report.success && report.errors.is_empty(), "{:#?}", report.errors);

    // Entra ID, as the simulator holds it.
    let lee = sb.m365().user(T, M365_LEAVER_ID).expect("leaver");
    assert!(!lee.account_enabled && lee.employee_id.is_none() && lee.manager_id.is_none());
    assert_eq!(lee.password_resets, 1);
    assert!(lee.sign_in_sessions_valid_from.is_some(), "sessions revoked");
    assert!(sb.m365().licences(T, M365_LEAVER_ID).is_empty(), "E3 removed, EMS gone with its group");
    let groups = sb.m365().group_ids_of(T, M365_LEAVER_ID);
    let mut left: Vec<&str> = groups.iter().map(String::as_str).collect();
    left.sort();
    assert_eq!(
        left,
        [M365_GROUP_DYNAMIC, M365_GROUP_SYNCED, M365_GROUP_SYNCED_DISTRIBUTION],
        "only what Graph and Exchange cannot change"
    );
    for group in [M365_GROUP_DYNAMIC, M365_GROUP_SYNCED, M365_GROUP_SYNCED_DISTRIBUTION] {
        let t = task(&report, OffboardAction::RemoveGroups, group);
        assert_eq!(t.result, TaskResult::Skipped);
        assert!(t.reason.as_deref().is_some_and(|r| r.contains("dynamic") || r.contains("on-premises")), "{t:?}");
    }
    let ems = task(&report, OffboardAction::RemoveLicences, M365_SKU_EMS);
    assert!(ems.result == TaskResult::Skipped && ems.reason.as_deref().unwrap().contains(M365_GROUP_LICENSING));
    for device in [M365_LEAVER_LAPTOP, M365_LEAVER_PHONE] {
        let state = sb.m365().managed_device(T, device).expect("device").management_state;
        assert!(state.to_ascii_lowercase().contains("retire"), "{device}: {state}");
    }

    // Exchange Online.
    let mailbox = sb.m365().mailbox(T, M365_LEAVER_ID).expect("mailbox");
    assert_eq!(format!("{:?}", mailbox.kind), "Shared");
    assert!(mailbox.hidden_from_address_lists && mailbox.deliver_to_mailbox_and_forward);
    assert!(mailbox.mobile_devices.is_empty(), "mobile device removed");
    assert!(sb.m365().writes(T, &format!("mailboxes/{M365_LEAVER_ID}"), "Set-MailboxAutoReplyConfiguration") == 1);

    // Order: the mailbox became shared before any licence went.
    let log = sb.m365().write_log(T);
    let at = |action: &str| {
        log.iter().position(|k| k.action.starts_with(action)).unwrap_or_else(|| panic!("{action} in {log:#?}"))
    };
    assert!(at("Set-Mailbox:Type") < at("assignLicense"), "{log:#?}");
    assert!(at("accountEnabled") < at("revokeSignInSessions"), "sign-in closed before sessions are revoked");
    assert_each_write_once(&sb);

    // The PSA: contact, ticket notes, the manager's e-mail.
    assert_eq!(sim(&sb, PsaKind::ConnectWise).contact_is_active(LEAVER_CONTACT), Some(false));
    let notes = ticket_notes(&sb, PsaKind::ConnectWise, &report);
    let notes: Vec<&String> = notes.iter().filter(|n| !n.starts_with("Offramp user offboarding, operation")).collect();
    assert_eq!(notes.len(), 8, "start, six phases, summary: {notes:#?}");
    assert!(notes[0].starts_with("User offboarding started") && notes[7].contains("Result: Completed"), "{notes:#?}");
    assert!(notes[1].starts_with("Sign-in blocked") && notes[6].starts_with("Licences"), "{notes:#?}");
    let mail = sb.sent_mail();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["message"]["toRecipients"][0]["emailAddress"]["address"], M365_MANAGER_UPN);
    assert!(mail[0]["message"]["body"]["content"].as_str().unwrap().contains("full access"));

    // Every done task was read back and found as it left it.
    assert!(report.tasks.iter().all(|t| t.verified != Some(false)), "{:#?}", report.tasks);
    assert!(report.tasks.iter().filter(|t| t.verified == Some(true)).count() >= 10);
    assert!(report.sole_owner_groups.contains(&"Lee's Team".to_string()));
    assert!(report.tasks.iter().all(|t| t.result != TaskResult::Failed && t.result != TaskResult::Planned));
}

#[tokio::test]
async fn offboard_user_dry_run_and_approval_change_nothing_until_the_approved_plan() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let actions =
        ActionOptions { disable_account: true, remove_groups: true, disable_psa_contact: true, ..Default::default() };
    let dry = offboard_user(
        &h.deps(),
        offramp::workflows::offboard_user::OffboardUserRequest {
            dry_run: true,
            ..request(M365_LEAVER_UPN, actions.clone())
        },
    )
    .await;
    assert_eq!(dry.status, OffboardStatus::Planned, "{dry:#?}");
    assert!(dry.tasks.iter().all(|t| matches!(t.result, TaskResult::Planned | TaskResult::Skipped)));
    let hash = dry.plan_hash.clone().expect("plan hash");

    let asked = offramp::workflows::offboard_user::OffboardUserRequest {
        require_approval: true,
        ..request(M365_LEAVER_UPN, actions.clone())
    };
    let waiting = offboard_user(&h.deps(), asked.clone()).await;
    assert_eq!(waiting.status, OffboardStatus::ApprovalRequired);
    assert_eq!(waiting.plan_hash.as_deref(), Some(hash.as_str()), "the same plan, the same hash");
    assert!(sb.m365().all_writes().is_empty(), "nothing written to Entra ID or Exchange");
    assert_eq!(sim(&sb, PsaKind::ConnectWise).contact_is_active(LEAVER_CONTACT), Some(true));

    let stale = Approval { plan_hash: "0".repeat(64), approved_by: "lead@msp.example".into() };
    let refused = offboard_user(
        &h.deps(),
        offramp::workflows::offboard_user::OffboardUserRequest { approval: Some(stale), ..asked.clone() },
    )
    .await;
    assert_eq!(refused.errors[0].code, ErrorCode::PlanChanged, "{refused:#?}");
    assert!(sb.m365().all_writes().is_empty());

    let approval = Approval { plan_hash: hash, approved_by: "lead@msp.example".into() };
    let applied = offboard_user(
        &h.deps(),
        offramp::workflows::offboard_user::OffboardUserRequest { approval: Some(approval), ..asked },
    )
    .await;
    assert_eq!(applied.status, OffboardStatus::Completed, "{applied:#?}");
    assert!(!sb.m365().user(T, M365_LEAVER_ID).unwrap().account_enabled);
    assert_eq!(sim(&sb, PsaKind::ConnectWise).contact_is_active(LEAVER_CONTACT), Some(false));
}

#[tokio::test]
async fn offboard_user_refuses_to_act_before_effective_at_but_plans() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let actions = ActionOptions { disable_account: true, ..Default::default() };
    let early = offramp::workflows::offboard_user::OffboardUserRequest {
        effective_at: Some(later),
        ..request(M365_LEAVER_UPN, actions)
    };
    let refused = offboard_user(&h.deps(), early.clone()).await;
    assert_eq!(refused.errors[0].code, ErrorCode::NotYetEffective, "{refused:#?}");
    assert!(refused.errors[0].message.contains(&later.format("%Y-%m-%d").to_string()));
    let planned = offboard_user(
        &h.deps(),
        offramp::workflows::offboard_user::OffboardUserRequest { dry_run: true, ..early.clone() },
    )
    .await;
    assert_eq!(planned.status, OffboardStatus::Planned);
    let waiting = offboard_user(
        &h.deps(),
        offramp::workflows::offboard_user::OffboardUserRequest { require_approval: true, ..early },
    )
    .await;
    assert_eq!(waiting.status, OffboardStatus::ApprovalRequired, "approvable ahead of the day");
    assert!(sb.m365().all_writes().is_empty());
}

#[tokio::test]
async fn offboard_user_disables_the_psa_contact_and_notes_the_ticket_on_every_psa() {
    let sb = sandbox().await;
    for kind in offramp_tests::psa::ALL {
        let h = UserHarness::new(&sb, kind);
        let actions = ActionOptions { disable_psa_contact: true, ..Default::default() };
        let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, actions)).await;
        assert_eq!(report.status, OffboardStatus::Completed, "{kind}: {report:#?}");
        assert_eq!(sim(&sb, kind).contact_is_active(LEAVER_CONTACT), Some(false), "{kind}");
        assert_eq!(sim(&sb, kind).contact_update_count(LEAVER_CONTACT), 1, "{kind}");
        let notes = ticket_notes(&sb, kind, &report);
        let with = |text: &str| notes.iter().filter(|n| n.contains(text)).count();
        assert_eq!(with("Offboarding Lee Leaver (lee.leaver@contoso.example)"), 1, "{kind}: {notes:#?}");
        assert_eq!(
            with("disable_psa_contact (PSA): Lee Leaver — done"),
            2,
            "{kind}: the phase and the summary: {notes:#?}"
        );
        assert_eq!(with("Result: Completed"), 1, "{kind}: {notes:#?}");
    }
}

#[tokio::test]
async fn offboard_user_a_failed_action_never_hides_the_others() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    // Exchange refuses everything: the mailbox tasks fail with the vendor's answer, the
    // Entra ID and PSA tasks go on.
    sb.fail_route("POST", "InvokeCommand", 403);
    let actions =
        ActionOptions { hide_from_gal: true, disable_account: true, disable_psa_contact: true, ..Default::default() };
    let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, actions)).await;
    assert_eq!(report.status, OffboardStatus::Failed, "the mailbox read fails first: {report:#?}");
    assert!(sb.m365().all_writes().is_empty(), "a failed read changes nothing");
    sb.clear_route_faults();

    // Now Exchange refuses one grant (no such trustee): that task fails with Exchange's own
    // answer, the Entra ID and other Exchange tasks go on.
    let actions = ActionOptions {
        revoke_sessions: true,
        disable_account: true,
        hide_from_gal: true,
        grant_full_access: vec!["ghost@contoso.example".into()],
        ..Default::default()
    };
    let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, actions)).await;
    assert_eq!(report.status, OffboardStatus::Partial, "{report:#?}");
    let grant = task(&report, OffboardAction::GrantFullAccess, "FullAccess:ghost@contoso.example");
    assert_eq!(grant.result, TaskResult::Failed);
    assert_eq!(grant.error_code, Some(ErrorCode::ActionFailed), "{grant:?}");
    assert!(grant.vendor_code.is_some() && grant.message.as_deref().is_some_and(|m| m.contains("ghost")), "{grant:?}");
    for (action, id) in [
        (OffboardAction::DisableAccount, M365_LEAVER_ID),
        (OffboardAction::RevokeSessions, M365_LEAVER_ID),
        (OffboardAction::HideFromGal, M365_LEAVER_UPN),
    ] {
        assert_eq!(task(&report, action, id).result, TaskResult::Done, "{action}");
    }
    assert!(!sb.m365().user(T, M365_LEAVER_ID).unwrap().account_enabled);
    assert!(sb.m365().mailbox(T, M365_LEAVER_ID).unwrap().hidden_from_address_lists);
    assert!(report.errors.iter().any(|e| e.action == Some(OffboardAction::GrantFullAccess)));
    let notes = ticket_notes(&sb, PsaKind::ConnectWise, &report);
    assert!(notes.iter().any(|n| n.contains("FAILED") && n.contains("ghost")), "the ticket says it: {notes:#?}");
}

#[tokio::test]
async fn offboard_user_synced_attributes_are_skipped_with_the_reason() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let report = offboard_user(&h.deps(), request(M365_SYNCED_LEAVER_UPN, every_action())).await;
    assert!(matches!(report.status, OffboardStatus::Completed | OffboardStatus::Partial), "{report:#?}");
    for action in [OffboardAction::ResetPassword, OffboardAction::ClearEmployeeId, OffboardAction::ClearManager] {
        let t = task(&report, action, M365_SYNCED_LEAVER_ID);
        assert_eq!(t.result, TaskResult::Skipped, "{t:?}");
        assert!(t.reason.as_deref().unwrap().contains("on-premises"));
    }
    let sam = sb.m365().user(T, M365_SYNCED_LEAVER_ID).unwrap();
    assert!(sam.employee_id.is_some() && sam.manager_id.is_some() && sam.password_resets == 0);
    assert_each_write_once(&sb);
}

#[tokio::test]
async fn offboard_user_a_leaver_with_500_memberships_has_each_removed_or_reported() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let id = sb.m365().add_leaver_with_memberships(T, "many.groups", 500).expect("leaver");
    let actions = ActionOptions { remove_groups: true, ..Default::default() };
    let report = offboard_user(&h.deps(), request(&format!("many.groups@{M365_TENANT_DOMAIN}"), actions)).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{:#?}", report.errors);
    let memberships: Vec<_> = report.tasks.iter().filter(|t| t.action == OffboardAction::RemoveGroups).collect();
    assert_eq!(memberships.len(), 500);
    let remaining = sb.m365().group_ids_of(T, &id);
    for t in &memberships {
        match t.result {
            TaskResult::Done => assert!(!remaining.contains(&t.target_id), "{t:?}"),
            TaskResult::Skipped => {
                assert!(remaining.contains(&t.target_id) && t.reason.is_some(), "{t:?}")
            }
            other => panic!("{other:?}: {t:?}"),
        }
    }
    let skipped = memberships.iter().filter(|t| t.result == TaskResult::Skipped).count();
    assert_eq!(skipped, remaining.len(), "every membership left is reported with its reason");
    assert!(skipped > 100 && skipped < 250, "dynamic and synced ones: {skipped}");
    assert_each_write_once(&sb);
}

/// Every action but the PSA contact (one leaver per crash point has no contact).
fn directory_actions() -> ActionOptions {
    ActionOptions {
        disable_psa_contact: false,
        grant_full_access: Vec::new(),
        grant_send_as: Vec::new(),
        ..every_action()
    }
}

/// The process dies right after its `k`-th change write, at several points of the run;
/// the resume (from the trail alone) finishes the offboarding, and each change reaches the
/// tenant once. Only a password reset or a session revocation in flight is sent again:
/// neither can be read back, and a second one is harmless where a missed one is not.
#[tokio::test]
async fn offboard_user_resumed_after_a_crash_finishes_and_applies_each_change_once() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let faulty = offramp_tests::faulty_audit::FaultyAudit::new(h.audit.clone());
    for k in [1, 2, 3, 5, 8] {
        let local = format!("crash.{k}");
        let id = sb.m365().add_leaver_with_memberships(T, &local, 12).expect("leaver");
        let request = request(&format!("{local}@{M365_TENANT_DOMAIN}"), directory_actions());
        let deps = offramp::workflows::offboard_user::OffboardUserDeps { audit: &faulty, ..h.deps() };
        faulty.crash_after(k, Box::pin(offboard_user(&deps, request.clone()))).await;
        let filter = offramp::domain::OperationFilter { limit: 1, ..Default::default() };
        let operation_id = h.audit.list_operations(&filter).await.unwrap()[0].operation.operation_id.clone();
        let resume = offramp::workflows::offboard_user::OffboardUserRequest {
            operation_id: Some(operation_id.clone()),
            break_lease: true,
            ..Default::default()
        };
        let report = Box::pin(offboard_user(&h.deps(), resume)).await;
        assert_eq!(report.status, OffboardStatus::Completed, "crash after write {k}: {report:#?}");
        let user = sb.m365().user(T, &id).unwrap();
        assert!(!user.account_enabled && user.employee_id.is_none() && user.manager_id.is_none(), "k={k}");
        assert!(sb.m365().licences(T, &id).is_empty(), "k={k}");
        assert_eq!(format!("{:?}", sb.m365().mailbox(T, &id).unwrap().kind), "Shared", "k={k}");
        let skipped =
            report.tasks.iter().filter(|t| t.action == OffboardAction::RemoveGroups && t.result == TaskResult::Skipped);
        assert_eq!(sb.m365().group_ids_of(T, &id).len(), skipped.count(), "k={k}: every removable membership removed");
        for (key, count) in sb.m365().all_writes() {
            let again = matches!(key.action.as_str(), "passwordProfile" | "revokeSignInSessions");
            assert!(count == 1 || (again && count == 2), "k={k}: {key:?} applied {count} times");
        }
        // Notes and the e-mail are never sent twice (one in flight at the crash is lost and
        // said so, never repeated).
        let notes = ticket_notes(&sb, PsaKind::ConnectWise, &report);
        for heading in ["User offboarding started", "Sign-in blocked", "Licences", "Result: Completed"] {
            let n = notes.iter().filter(|note| note.contains(heading)).count();
            assert!(n <= 1, "k={k}: '{heading}' written {n} times: {notes:#?}");
        }
        assert!(notes.iter().any(|note| note.contains("Result: Completed")), "k={k}: the summary is written");
        let mails = sb
            .sent_mail()
            .iter()
            .filter(|m| m["message"]["body"]["content"].as_str().unwrap_or("").contains(&local))
            .count();
        assert!(mails <= 1, "k={k}: {mails} e-mails");
        let summary = h.audit.operation(&operation_id).await.unwrap().unwrap();
        assert!(summary.events.iter().any(|e| e.kind == offramp::domain::OperationEventKind::Resumed), "k={k}");
    }
}

/// A rollback puts back everything the systems allow, from the trail alone, and says what
/// cannot be undone.
#[tokio::test]
async fn offboard_user_rollback_restores_what_can_be_undone_and_lists_the_rest() {
    use offramp::workflows::rollback::{RollbackDeps, RollbackRequest, rollback};
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let lee_before = sb.m365().user(T, M365_LEAVER_ID).unwrap();
    let groups_before = sb.m365().group_ids_of(T, M365_LEAVER_ID);
    let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, every_action())).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{report:#?}");
    assert_eq!(task(&report, OffboardAction::TransferOwnership, M365_GROUP_SOLE_OWNER).result, TaskResult::Done);
    let deps = RollbackDeps {
        psa: h.psa.as_ref(),
        audit: h.audit.as_ref(),
        registry: offramp::workflows::restorers(),
        directory: Some(&h.directory),
        mailboxes: Some(&h.mailboxes),
        onprem: None,
    };
    let request = RollbackRequest { operation_id: report.operation_id.clone().unwrap(), ..Default::default() };
    let undone = Box::pin(rollback(&deps, request)).await;
    assert!(undone.success, "{undone:#?}");
    assert_eq!(undone.statistics.conflicts + undone.statistics.errors, 0, "{undone:#?}");

    let lee = sb.m365().user(T, M365_LEAVER_ID).unwrap();
    assert!(lee.account_enabled);
    assert_eq!((lee.employee_id, lee.manager_id), (lee_before.employee_id, lee_before.manager_id));
    let mut groups = sb.m365().group_ids_of(T, M365_LEAVER_ID);
    groups.sort();
    let mut expected = groups_before.clone();
    expected.sort();
    assert_eq!(groups, expected, "every membership back, the Exchange-owned ones through Exchange");
    let licences = sb.m365().licences(T, M365_LEAVER_ID);
    assert!(licences.iter().any(|(sku, by)| sku == M365_SKU_E3 && by.is_none()), "{licences:?}");
    let mailbox = sb.m365().mailbox(T, M365_LEAVER_ID).unwrap();
    assert_eq!(format!("{:?}", mailbox.kind), "User");
    assert!(!mailbox.hidden_from_address_lists && mailbox.forwarding_address.is_none());
    let permissions: Vec<_> =
        undone.items.iter().filter(|i| i.item_type == offramp::domain::ItemKind::MailboxPermission).collect();
    assert!(
        mailbox.full_access.is_empty() && mailbox.send_as.is_empty(),
        "the grants this run made are gone: {mailbox:?} {permissions:#?}"
    );
    assert_eq!(format!("{:?}", mailbox.auto_reply.state), "Disabled");
    assert_eq!(sim(&sb, PsaKind::ConnectWise).contact_is_active(LEAVER_CONTACT), Some(true));
    let owners = sb.m365().group(T, M365_GROUP_SOLE_OWNER).unwrap().owners;
    assert!(!owners.iter().any(|o| o == M365_MANAGER_ID), "the manager's ownership taken back: {owners:?}");
    let kept = undone.warnings.iter().find(|w| w.starts_with("Cannot be undone")).expect("what is not undone is said");
    for kind in ["user_password", "user_sessions", "managed_device", "mobile_device"] {
        assert!(kept.contains(kind), "{kept}");
    }
}

/// A leaver's new password is random, reaches Entra ID once, is kept in Secrets Manager
/// when asked (read back through the SDK from moto), and appears nowhere else: not in the
/// report, the audit trail, the ticket, the e-mail or the log.
#[tokio::test]
async fn offboard_user_new_password_is_stored_when_asked_and_never_shown() {
    use offramp::adapters::secret_vault_aws::SecretsManagerVault;
    let sb = sandbox().await;
    let mut h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let prefix = offramp_tests::moto::unique_name("offramp/offboarded-users");
    let client = offramp_tests::moto::secrets_client().await;
    h.vault = Some(std::sync::Arc::new(SecretsManagerVault::new(client.clone(), prefix.as_str()).expect("vault")));
    let actions =
        ActionOptions { reset_password: true, store_password: true, notify_manager: true, ..Default::default() };
    let deps = h.deps();
    let run = offboard_user(&deps, request(M365_LEAVER_UPN, actions));
    let (report, logs) = crate::directory_graph::with_trace_log(run).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{report:#?}");
    assert_eq!(sb.m365().user(T, M365_LEAVER_ID).unwrap().password_resets, 1);
    let name = format!("{prefix}/{M365_TENANT_DOMAIN}/{M365_LEAVER_ID}");
    let stored = client.get_secret_value().secret_id(&name).send().await.expect("the password is in the vault");
    let password = stored.secret_string().expect("a string").to_string();
    assert!(password.len() >= 16, "a strong password");
    let reset = task(&report, OffboardAction::ResetPassword, M365_LEAVER_ID);
    assert!(reset.message.as_deref().is_some_and(|m| m.contains(&name)), "the report says where: {reset:?}");

    let trail = h.audit.operation(report.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    let places = [
        ("report", serde_json::to_string(&report).unwrap()),
        ("trail", format!("{trail:?}")),
        ("ticket", ticket_notes(&sb, PsaKind::ConnectWise, &report).join("\n")),
        ("mail", serde_json::to_string(&sb.sent_mail()).unwrap()),
        ("log", logs),
    ];
    for (place, text) in places {
        assert!(!text.is_empty(), "{place} was captured");
        for form in offramp_sandbox::leaks::forms(&password) {
            assert!(!text.contains(&form), "the password ({form}) is in the {place}");
        }
    }

    // Without a vault, storing is refused before anything changes.
    h.vault = None;
    let actions = ActionOptions { reset_password: true, store_password: true, ..Default::default() };
    let refused = offboard_user(&h.deps(), request(M365_LEAVER_UPN, actions)).await;
    assert_eq!(refused.errors[0].code, ErrorCode::ConfigurationError, "{refused:#?}");
    assert_eq!(sb.m365().user(T, M365_LEAVER_ID).unwrap().password_resets, 1, "nothing changed");
}

/// Entra ID refuses every write (the app lost its write permissions): each Graph task
/// fails with Graph's own code and message, the Exchange and PSA tasks are done, the run
/// is partial and the ticket says which failed.
#[tokio::test]
async fn offboard_user_every_graph_action_can_fail_on_its_own() {
    let sb = sandbox().await;
    let mut h = UserHarness::new(&sb, PsaKind::ConnectWise);
    h.without_batches(&sb);
    for (method, path) in [
        ("PATCH", "/users/"),
        ("POST", "revokeSignInSessions"),
        ("DELETE", "/manager/$ref"),
        ("DELETE", "/members/"),
        ("POST", "assignLicense"),
        ("POST", "/retire"),
        ("POST", "/owners/$ref"),
    ] {
        sb.fail_route(method, path, 403);
    }
    let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, every_action())).await;
    assert_eq!(report.status, OffboardStatus::Partial, "{report:#?}");
    let graph_actions = [
        OffboardAction::DisableAccount,
        OffboardAction::ResetPassword,
        OffboardAction::RevokeSessions,
        OffboardAction::RetireDevices,
        OffboardAction::ClearEmployeeId,
        OffboardAction::ClearManager,
        OffboardAction::RemoveLicences,
        OffboardAction::TransferOwnership,
    ];
    for t in report.tasks.iter().filter(|t| graph_actions.contains(&t.action) && t.result != TaskResult::Skipped) {
        assert_eq!(t.result, TaskResult::Failed, "{t:?}");
        assert_eq!(t.error_code, Some(ErrorCode::PermissionDenied), "{t:?}");
        assert!(t.message.is_some(), "{t:?}");
    }
    let removals =
        report.tasks.iter().filter(|t| t.action == OffboardAction::RemoveGroups && t.result != TaskResult::Skipped);
    for t in removals {
        let through_exchange = [M365_GROUP_DISTRIBUTION, M365_GROUP_MAIL_SECURITY].contains(&t.target_id.as_str());
        let expected = if through_exchange { TaskResult::Done } else { TaskResult::Failed };
        assert_eq!(t.result, expected, "{t:?}");
    }
    for action in [OffboardAction::ConvertToShared, OffboardAction::HideFromGal, OffboardAction::DisablePsaContact] {
        assert!(report.tasks.iter().any(|t| t.action == action && t.result == TaskResult::Done), "{action}");
    }
    let lee = sb.m365().user(T, M365_LEAVER_ID).unwrap();
    assert!(lee.account_enabled && lee.password_resets == 0 && lee.manager_id.is_some(), "nothing written in Entra ID");
    let notes = ticket_notes(&sb, PsaKind::ConnectWise, &report).join("\n");
    assert!(notes.contains("disable_account (Entra ID): lee.leaver@contoso.example — FAILED"), "{notes}");
}

/// The client's settings: its tenant, its default actions (`use_client_defaults`, CLI
/// `--all`), its leaver group, its recipients and its ticket board; a `ticket_id` of
/// another company is refused before anything changes.
#[tokio::test]
async fn offboard_user_runs_the_clients_defaults_with_its_settings() {
    let sb = sandbox().await;
    let h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let other = sb.m365().add_leaver_with_memberships(T, "leavers.holder", 1).expect("a user");
    let leaver_group = sb.m365().group_ids_of(T, &other)[0].clone();
    let settings = [
        ("m365_tenant_id", M365_TENANT_ID),
        ("user_offboarding_default_actions", "disable_account, add_to_leaver_group, notify_manager"),
        ("user_offboarding_leaver_group", leaver_group.as_str()),
        ("user_offboarding_notification_recipients", "noc@msp.example"),
    ];
    for (key, value) in settings {
        h.set_client_setting(key, value).await;
    }
    let defaults = offramp::workflows::offboard_user::OffboardUserRequest {
        tenant: None,
        use_client_defaults: true,
        ..request(M365_LEAVER_UPN, ActionOptions::default())
    };
    let elsewhere = sim(&sb, PsaKind::ConnectWise).ticket_ids_of(250)[0].to_string();
    let wrong_ticket =
        offramp::workflows::offboard_user::OffboardUserRequest { ticket_id: Some(elsewhere), ..defaults.clone() };
    let refused = offboard_user(&h.deps(), wrong_ticket).await;
    assert_eq!(refused.errors[0].code, ErrorCode::InvalidInput, "{refused:#?}");
    assert!(sb.m365().all_writes().is_empty(), "nothing changed");

    let report = offboard_user(&h.deps(), defaults).await;
    assert_eq!(report.status, OffboardStatus::Completed, "{report:#?}");
    assert_eq!(report.tenant.as_deref(), Some(M365_TENANT_ID), "the client's tenant");
    let actions: std::collections::BTreeSet<_> = report.tasks.iter().map(|t| t.action).collect();
    let expected = [OffboardAction::DisableAccount, OffboardAction::AddToLeaverGroup].into_iter().collect();
    assert_eq!(actions, expected, "the client's defaults, nothing else");
    assert!(sb.m365().group_ids_of(T, M365_LEAVER_ID).contains(&leaver_group), "in the leaver group");
    assert!(!sb.m365().user(T, M365_LEAVER_ID).unwrap().account_enabled);
    let to = &sb.sent_mail()[0]["message"]["toRecipients"];
    let to: Vec<&str> = to.as_array().unwrap().iter().filter_map(|r| r["emailAddress"]["address"].as_str()).collect();
    assert_eq!(to, [M365_MANAGER_UPN, "noc@msp.example"]);
}

/// A run whose tasks failed was processed: it answers `ActionFailed` (207, exit 1), not
/// the failed task's own code.
#[tokio::test]
async fn offboard_user_a_partial_run_answers_207() {
    let sb = sandbox().await;
    let mut h = UserHarness::new(&sb, PsaKind::ConnectWise);
    h.without_batches(&sb);
    sb.fail_route("PATCH", "/users/", 403);
    let actions = ActionOptions { disable_account: true, disable_psa_contact: true, ..Default::default() };
    let report = offboard_user(&h.deps(), request(M365_LEAVER_UPN, actions)).await;
    assert_eq!(report.status, OffboardStatus::Partial, "{report:#?}");
    assert_eq!(
        task(&report, OffboardAction::DisableAccount, M365_LEAVER_ID).error_code,
        Some(ErrorCode::PermissionDenied)
    );
    assert_eq!(report.primary_error(), Some(ErrorCode::ActionFailed));
    assert_eq!(ErrorCode::ActionFailed.http_status(), 207);
}
