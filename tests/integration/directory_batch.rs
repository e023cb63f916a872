//! Graph `$batch` for a leaver (issue 14): `CloudDirectory::leaver` and
//! `apply_user_changes` against the sandbox's Microsoft 365 simulator, with the Graph
//! requests counted BY THE SIMULATOR, each change's effect counted there too, and the same
//! results with batching turned off (`GraphDirectory::without_batches`).

use std::time::Duration;

use offramp::adapters::graph::GraphDirectory;
use offramp::ports::{CloudDirectory, DirectoryError, UserChange};
use offramp::secret::SecretString;
use offramp_sandbox::m365::*;
use offramp_sandbox::{GRAPH_CLIENT_SECRET, Sandbox, leaks};
use offramp_tests::connectwise::http_settings;

use crate::directory_graph::{sandbox, settings};

const T: &str = M365_TENANT_ID;
const PASSWORD: &str = "Batch-Reset!Passphrase-58";

fn batched(sb: &Sandbox) -> GraphDirectory {
    GraphDirectory::new(&settings(sb, GRAPH_CLIENT_SECRET), http_settings()).expect("Graph directory")
}

fn unbatched(sb: &Sandbox) -> GraphDirectory {
    batched(sb).without_batches()
}

/// The Graph requests `tenant` received while `call` ran, as the simulator counted them.
async fn counted<F: std::future::Future>(sb: &Sandbox, call: F) -> (F::Output, GraphRequests) {
    let before = sb.m365().requests(T);
    let output = call.await;
    (output, sb.m365().requests(T) - before)
}

#[tokio::test]
async fn directory_batch_leaver_reads_the_same_with_and_without_batches() {
    let sb = sandbox().await;
    let bulk = sb.m365().add_leaver_with_memberships(T, "bulk.leaver", 500).expect("leaver");
    // Beyond Graph's largest page (999): the batch's first page, then `@odata.nextLink`.
    let huge = sb.m365().add_leaver_with_memberships(T, "huge.leaver", 1200).expect("leaver");
    let (on, off) = (batched(&sb), unbatched(&sb));
    for leaver in [M365_LEAVER_UPN, M365_SYNCED_LEAVER_ID, M365_MANAGER_UPN, M365_COLLEAGUE_ID, &bulk, &huge] {
        let (with, sent) = counted(&sb, on.leaver(T, leaver)).await;
        let (without, sent_alone) = counted(&sb, off.leaver(T, leaver)).await;
        let with = with.unwrap().expect("the leaver exists");
        assert_eq!(with, without.unwrap().expect("the leaver exists"), "{leaver}");
        assert_eq!(sent_alone.batches, 0, "{leaver}: no $batch when turned off");
        assert!(sent.outer < sent_alone.outer, "{leaver}: {sent:?} vs {sent_alone:?}");
        eprintln!("leaver read {leaver}: with $batch {sent:?}, without {sent_alone:?}");
    }
    let full = on.leaver(T, M365_LEAVER_ID).await.unwrap().unwrap();
    assert_eq!(full.groups.len(), 9);
    assert!(full.manager.is_some() && full.licences.len() == 2 && full.devices.len() == 2);
    let sole = full.owned_groups.iter().find(|o| o.group.id == M365_GROUP_SOLE_OWNER).expect("owned");
    assert_eq!(sole.owner_count, 1);
    let huge_read = on.leaver(T, &huge).await.unwrap().unwrap();
    assert_eq!(huge_read.groups.len(), 1200, "every page read");
    assert_eq!(on.leaver(T, "nobody@contoso.example").await.unwrap(), None);
    assert!(sb.m365().all_writes().is_empty(), "reads write nothing");
}

#[tokio::test]
async fn directory_batch_leaver_read_costs_two_requests_plus_owner_counts() {
    let sb = sandbox().await;
    let dir = batched(&sb);
    // One membership, no owned group: the user, then one `$batch` of five reads.
    let small = sb.m365().add_leaver_with_memberships(T, "small.leaver", 1).expect("leaver");
    let (state, sent) = counted(&sb, dir.leaver(T, &small)).await;
    assert_eq!(state.unwrap().unwrap().groups.len(), 1);
    assert_eq!(sent, GraphRequests { outer: 2, batches: 1, inner: 5 });
    // Lee owns two groups: their owner counts are a second `$batch`.
    let (state, sent) = counted(&sb, dir.leaver(T, M365_LEAVER_UPN)).await;
    assert_eq!(state.unwrap().unwrap().owned_groups.len(), 2);
    assert_eq!(sent, GraphRequests { outer: 3, batches: 2, inner: 7 });
    let (_, alone) = counted(&sb, unbatched(&sb).leaver(T, M365_LEAVER_UPN)).await;
    assert_eq!(alone, GraphRequests { outer: 8, batches: 0, inner: 0 });
}

/// Twelve independent changes to Lee, and the simulator's write key of each.
fn twelve_changes() -> Vec<(UserChange, String, String)> {
    let lee = format!("users/{M365_LEAVER_ID}");
    let user = |change: UserChange, action: &str| (change, lee.clone(), action.to_string());
    let removal = format!("members.remove:{M365_LEAVER_ID}");
    let mut changes = vec![
        user(UserChange::SetEnabled(false), "accountEnabled"),
        user(UserChange::ResetPassword(SecretString::new(PASSWORD)), "passwordProfile"),
        user(UserChange::SetEmployeeId(None), "employeeId"),
        user(UserChange::RevokeSessions, "revokeSignInSessions"),
        user(UserChange::RemoveManager, "manager.remove"),
        user(UserChange::RemoveLicences(vec![M365_SKU_E3.into()]), "assignLicense"),
    ];
    for group in [M365_GROUP_UNIFIED, M365_GROUP_SECURITY, M365_GROUP_LICENSING, M365_GROUP_SOLE_OWNER] {
        changes.push((UserChange::RemoveMembership(group.into()), format!("groups/{group}"), removal.clone()));
    }
    for device in [M365_LEAVER_LAPTOP, M365_LEAVER_PHONE] {
        changes.push((UserChange::RetireDevice(device.into()), format!("managedDevices/{device}"), "retire".into()));
    }
    changes
}

/// Every change applied, each effect counted exactly once by the simulator.
fn assert_each_applied_once(sb: &Sandbox, changes: &[(UserChange, String, String)]) {
    for (change, item, action) in changes {
        assert_eq!(sb.m365().writes(T, item, action), 1, "{change:?}: {item} {action}");
    }
    let total: u64 = sb.m365().all_writes().values().sum();
    assert_eq!(total, changes.len() as u64, "nothing else written");
    let lee = sb.m365().user(T, M365_LEAVER_ID).unwrap();
    assert!(!lee.account_enabled && lee.employee_id.is_none() && lee.manager_id.is_none());
    assert!(sb.m365().group_ids_of(T, M365_LEAVER_ID).iter().all(|g| g != M365_GROUP_SECURITY));
}

#[tokio::test]
async fn directory_batch_twelve_changes_are_one_request_and_applied_once() {
    let sb = sandbox().await;
    let changes = twelve_changes();
    let only: Vec<UserChange> = changes.iter().map(|c| c.0.clone()).collect();
    let (results, sent) = counted(&sb, batched(&sb).apply_user_changes(T, M365_LEAVER_ID, &only)).await;
    assert_eq!(results, vec![Ok(()); 12]);
    assert_eq!(sent, GraphRequests { outer: 1, batches: 1, inner: 12 });
    assert_each_applied_once(&sb, &changes);

    let sb = sandbox().await;
    let (results, sent) = counted(&sb, unbatched(&sb).apply_user_changes(T, M365_LEAVER_ID, &only)).await;
    assert_eq!(results, vec![Ok(()); 12], "the same without batches");
    assert_eq!(sent, GraphRequests { outer: 12, batches: 0, inner: 0 });
    assert_each_applied_once(&sb, &changes);
}

#[tokio::test]
async fn directory_batch_inner_429s_are_sent_again_and_land_once() {
    let sb = sandbox().await;
    sb.m365().set_throttle(ThrottleSettings {
        write_quota: 5,
        write_window: Duration::from_secs(1),
        ..ThrottleSettings::default()
    });
    let changes = twelve_changes();
    let only: Vec<UserChange> = changes.iter().map(|c| c.0.clone()).collect();
    let (results, sent) = counted(&sb, batched(&sb).apply_user_changes(T, M365_LEAVER_ID, &only)).await;
    assert_eq!(results, vec![Ok(()); 12]);
    assert!(sb.m365().throttled() > 0, "the write quota refused some inner requests");
    assert!(sent.batches >= 2 && sent.inner > 12, "the throttled ones sent again: {sent:?}");
    assert_each_applied_once(&sb, &changes);
}

/// Sam is synced from AD: his employee id and password are mastered on-premises.
fn mixed_changes() -> Vec<UserChange> {
    vec![
        UserChange::SetEnabled(false),
        UserChange::SetEmployeeId(None),
        UserChange::ResetPassword(SecretString::new(PASSWORD)),
        UserChange::RevokeSessions,
        UserChange::RemoveMembership(M365_GROUP_SECURITY.into()),
        // Removing a membership already gone: 404 `NotFound`, as `remove_member` answers.
        UserChange::RemoveMembership(M365_GROUP_UNIFIED.into()),
        UserChange::RemoveMembership(M365_GROUP_DYNAMIC.into()),
        UserChange::RetireDevice("not-a-guid".into()),
    ]
}

#[tokio::test]
async fn directory_batch_one_refused_change_leaves_the_others_applied() {
    let sb = sandbox().await;
    let (results, sent) =
        counted(&sb, batched(&sb).apply_user_changes(T, M365_SYNCED_LEAVER_ID, &mixed_changes())).await;
    assert_eq!(sent, GraphRequests { outer: 1, batches: 1, inner: 7 }, "the bad device id is never sent");
    assert_eq!(results[0], Ok(()));
    for refused in [&results[1], &results[2]] {
        let error = refused.as_ref().unwrap_err();
        assert!(matches!(error, DirectoryError::OnPremisesMastered { .. }), "{error}");
        assert_eq!(error.code(), Some("Request_BadRequest"));
        assert!(error.to_string().contains("on-premises mastered"), "{error}");
    }
    assert_eq!((&results[3], &results[4]), (&Ok(()), &Ok(())));
    assert!(matches!(results[5], Err(DirectoryError::NotFound { .. })), "{:?}", results[5]);
    assert!(matches!(results[6], Err(DirectoryError::Refused { status: 400, .. })), "{:?}", results[6]);
    assert!(matches!(results[7], Err(DirectoryError::Configuration { .. })), "{:?}", results[7]);
    let sam = format!("users/{M365_SYNCED_LEAVER_ID}");
    assert_eq!(sb.m365().writes(T, &sam, "accountEnabled"), 1);
    assert_eq!(sb.m365().writes(T, &sam, "revokeSignInSessions"), 1);
    assert_eq!(sb.m365().writes(T, &sam, "employeeId") + sb.m365().writes(T, &sam, "passwordProfile"), 0);
    let text = format!("{results:?}");
    for form in leaks::forms(PASSWORD) {
        assert!(!text.contains(&form), "the password in {text}");
    }

    let alone = sandbox().await;
    let single = unbatched(&alone).apply_user_changes(T, M365_SYNCED_LEAVER_ID, &mixed_changes()).await;
    assert_eq!(results, single, "each error as the single call gives it, vendor code and message kept");
    assert_eq!(sb.m365().all_writes(), alone.m365().all_writes(), "the same effects");
}

#[tokio::test]
async fn directory_batch_password_is_in_no_log_and_no_error() {
    use offramp::logging::{LogFormat, capture};
    let sb = sandbox().await;
    let dir = batched(&sb);
    let buffer = crate::secret_leaks::Buffer::default();
    let writer = buffer.clone();
    let _guard = tracing::subscriber::set_default(capture("trace", LogFormat::Json, move || writer.clone()));
    tracing::trace!("trace level on");
    let reset = [UserChange::ResetPassword(SecretString::new(PASSWORD)), UserChange::SetEnabled(false)];
    let accepted = dir.apply_user_changes(T, M365_LEAVER_ID, &reset).await;
    let refused = dir.apply_user_changes(T, M365_SYNCED_LEAVER_ID, &reset).await;
    assert_eq!(accepted, vec![Ok(()); 2]);
    assert!(matches!(refused[0], Err(DirectoryError::OnPremisesMastered { .. })), "{refused:?}");
    assert_eq!(sb.m365().writes(T, &format!("users/{M365_LEAVER_ID}"), "passwordProfile"), 1);
    let log = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    assert!(log.contains("TRACE"), "logged at trace level: {log}");
    let everything = format!("{log}\n{accepted:?}\n{refused:?}");
    for form in leaks::forms(PASSWORD) {
        assert!(!everything.contains(&form), "the password ({form}) in {everything}");
    }
}
