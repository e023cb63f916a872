//! The Graph directory adapter (issue 14) against the sandbox's Microsoft 365 simulator:
//! reads, writes counted by the simulator, documented refusals, paging, `$batch` with an
//! inner 429, tokens per tenant and no credential in errors.

use std::time::Duration;

use offramp::adapters::graph::GraphDirectory;
use offramp::ports::{CloudDirectory, Directory, DirectoryError, GroupKind, UserChange};
use offramp::secret::SecretString;
use offramp_sandbox::m365::*;
use offramp_sandbox::{GRAPH_CLIENT_SECRET, Sandbox, SandboxConfig, leaks};
use offramp_tests::connectwise::http_settings;

const T: &str = M365_TENANT_ID;

pub(crate) async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

pub(crate) use offramp_tests::offboarding::m365_settings as settings;

fn directory(sb: &Sandbox) -> GraphDirectory {
    GraphDirectory::new(&settings(sb, GRAPH_CLIENT_SECRET), http_settings()).expect("Graph directory")
}

fn user_item(id: &str) -> String {
    format!("users/{id}")
}

#[tokio::test]
async fn directory_graph_reads_users_manager_groups_and_owned_groups() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    let lee = dir.user(T, M365_LEAVER_UPN).await.unwrap().expect("leaver by UPN");
    assert_eq!(lee.id, M365_LEAVER_ID);
    assert!(lee.enabled && !lee.is_synced());
    assert!(lee.employee_id.is_some(), "employeeId is selected");
    assert_eq!(dir.user(T, M365_LEAVER_ID).await.unwrap().unwrap().user_principal_name, M365_LEAVER_UPN);
    let sam = dir.user(T, M365_SYNCED_LEAVER_ID).await.unwrap().expect("synced leaver");
    assert!(sam.is_synced());
    let ad = sam.on_premises.expect("on-premises attributes");
    assert_eq!(ad.sam_account_name.as_deref(), Some(M365_SYNCED_LEAVER_SAM));
    assert_eq!(ad.distinguished_name.as_deref(), Some(M365_SYNCED_LEAVER_DN));
    assert_eq!(ad.immutable_id.as_deref(), Some(M365_SYNCED_LEAVER_IMMUTABLE_ID));
    assert_eq!(lee.on_premises, None, "a cloud user has no AD account");
    assert_eq!(dir.user(T, "nobody@contoso.example").await.unwrap(), None);

    assert_eq!(dir.manager(T, M365_LEAVER_ID).await.unwrap().expect("manager").id, M365_MANAGER_ID);
    assert_eq!(dir.manager(T, M365_MANAGER_ID).await.unwrap(), None, "no manager");

    let groups = dir.groups_of(T, M365_LEAVER_ID).await.unwrap();
    let kind = |id: &str| groups.iter().find(|g| g.id == id).map(|g| g.kind);
    assert_eq!(groups.len(), sb.m365().group_ids_of(T, M365_LEAVER_ID).len());
    assert_eq!(kind(M365_GROUP_UNIFIED), Some(GroupKind::Unified));
    assert_eq!(kind(M365_GROUP_SECURITY), Some(GroupKind::Security));
    assert_eq!(kind(M365_GROUP_DYNAMIC), Some(GroupKind::Dynamic));
    assert_eq!(kind(M365_GROUP_SYNCED), Some(GroupKind::Synced));
    assert_eq!(kind(M365_GROUP_DISTRIBUTION), Some(GroupKind::DistributionList));
    assert_eq!(kind(M365_GROUP_MAIL_SECURITY), Some(GroupKind::MailEnabledSecurity));
    assert_eq!(kind(M365_GROUP_SYNCED_DISTRIBUTION), Some(GroupKind::Synced));

    let owned = dir.owned_groups(T, M365_LEAVER_ID).await.unwrap();
    let owners = |id: &str| owned.iter().find(|o| o.group.id == id).map(|o| o.owner_count);
    assert_eq!(owners(M365_GROUP_SOLE_OWNER), Some(1), "sole owner");
    assert_eq!(owners(M365_GROUP_UNIFIED), Some(2));

    let licences = dir.licences(T, M365_LEAVER_ID).await.unwrap();
    assert!(licences.iter().any(|l| l.sku_id == M365_SKU_E3 && l.by_group.is_none()));
    assert!(licences.iter().any(|l| l.sku_id == M365_SKU_EMS && l.by_group.as_deref() == Some(M365_GROUP_LICENSING)));
    let devices = dir.managed_devices(T, M365_LEAVER_ID).await.unwrap();
    let mut ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, [M365_LEAVER_LAPTOP, M365_LEAVER_PHONE]);
    assert!(sb.m365().all_writes().is_empty(), "reads write nothing");
}

#[tokio::test]
async fn directory_graph_writes_are_applied_once_each() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    let sim = sb.m365();
    let lee = user_item(M365_LEAVER_ID);
    dir.set_enabled(T, M365_LEAVER_UPN, false).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "accountEnabled"), 1);
    assert!(!sim.user(T, M365_LEAVER_ID).unwrap().account_enabled);
    dir.set_employee_id(T, M365_LEAVER_ID, None).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "employeeId"), 1);
    assert_eq!(sim.user(T, M365_LEAVER_ID).unwrap().employee_id, None);
    dir.reset_password(T, M365_LEAVER_ID, &SecretString::new("N3w-Long!Passphrase-42")).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "passwordProfile"), 1);
    dir.revoke_sessions(T, M365_LEAVER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "revokeSignInSessions"), 1);

    dir.remove_manager(T, M365_LEAVER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "manager.remove"), 1);
    assert_eq!(dir.manager(T, M365_LEAVER_ID).await.unwrap(), None);
    dir.set_manager(T, M365_LEAVER_ID, M365_MANAGER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "manager.set"), 1);

    let security = format!("groups/{M365_GROUP_SECURITY}");
    dir.remove_member(T, M365_GROUP_SECURITY, M365_LEAVER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &security, &format!("members.remove:{M365_LEAVER_ID}")), 1);
    assert_eq!(sim.writes(T, &lee, "delete"), 0, "the membership, never the user");
    assert!(sim.user(T, M365_LEAVER_ID).is_some_and(|u| !u.deleted));
    dir.add_member(T, M365_GROUP_SECURITY, M365_LEAVER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &security, &format!("members.add:{M365_LEAVER_ID}")), 1);

    dir.remove_licences(T, M365_LEAVER_ID, &[M365_SKU_E3.to_string()]).await.unwrap();
    assert!(!sim.licences(T, M365_LEAVER_ID).contains(&(M365_SKU_E3.to_string(), None)));
    dir.restore_licences(T, M365_LEAVER_ID, &[M365_SKU_E3.to_string()]).await.unwrap();
    assert!(sim.licences(T, M365_LEAVER_ID).contains(&(M365_SKU_E3.to_string(), None)));
    assert_eq!(sim.writes(T, &lee, "assignLicense"), 2);

    dir.retire_device(T, M365_LEAVER_LAPTOP).await.unwrap();
    assert_eq!(sim.writes(T, &format!("managedDevices/{M365_LEAVER_LAPTOP}"), "retire"), 1);
    assert_eq!(sim.managed_device(T, M365_LEAVER_LAPTOP).unwrap().management_state, "retirePending");
}

fn expect_code(error: &DirectoryError, code: &str) {
    assert_eq!(error.code(), Some(code), "{error}");
    assert!(!error.to_string().is_empty());
}

#[tokio::test]
async fn directory_graph_documented_refusals_map_to_typed_errors() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    let synced = dir.set_employee_id(T, M365_SYNCED_LEAVER_ID, None).await.unwrap_err();
    assert!(matches!(synced, DirectoryError::OnPremisesMastered { .. }), "{synced}");
    expect_code(&synced, "Request_BadRequest");
    assert!(synced.to_string().contains("on-premises mastered"), "{synced}");
    let synced_group = dir.remove_member(T, M365_GROUP_SYNCED, M365_LEAVER_ID).await.unwrap_err();
    assert!(matches!(synced_group, DirectoryError::OnPremisesMastered { .. }), "{synced_group}");
    for group in [M365_GROUP_DYNAMIC, M365_GROUP_DISTRIBUTION, M365_GROUP_MAIL_SECURITY] {
        let error = dir.remove_member(T, group, M365_LEAVER_ID).await.unwrap_err();
        assert!(matches!(error, DirectoryError::Refused { status: 400, .. }), "{group}: {error}");
        expect_code(&error, "Request_BadRequest");
    }
    let absent = dir.remove_member(T, M365_GROUP_SECURITY, M365_MANAGER_ID).await.unwrap_err();
    assert!(matches!(absent, DirectoryError::NotFound { .. }), "{absent}");
    expect_code(&absent, "Request_ResourceNotFound");
    let inherited = dir.remove_licences(T, M365_LEAVER_ID, &[M365_SKU_EMS.to_string()]).await.unwrap_err();
    assert!(matches!(inherited, DirectoryError::Refused { .. }), "{inherited}");
    assert!(inherited.to_string().contains("inherited from group"), "{inherited}");
    let missing = dir.remove_manager(T, "nobody@contoso.example").await.unwrap_err();
    assert!(matches!(missing, DirectoryError::NotFound { .. }), "{missing}");
    let unconsented = dir.user(M365_UNCONSENTED_TENANT_ID, M365_LEAVER_ID).await.unwrap_err();
    assert!(matches!(unconsented, DirectoryError::PermissionDenied { .. }), "{unconsented}");
    expect_code(&unconsented, "unauthorized_client");
    assert!(sb.m365().all_writes().is_empty(), "every refusal applied nothing");
}

#[tokio::test]
async fn directory_graph_reads_500_and_1200_memberships_completely() {
    let sb = sandbox().await;
    let leaver = sb.m365().add_leaver_with_memberships(T, "bulk.leaver", 500).expect("leaver");
    let groups = directory(&sb).groups_of(T, &leaver).await.unwrap();
    let mut read: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let mut expected = sb.m365().group_ids_of(T, &leaver);
    read.sort();
    expected.sort();
    assert_eq!(read.len(), 500);
    assert_eq!(read, expected);
    // Beyond Graph's largest page (999): the second page comes through `@odata.nextLink`.
    let leaver = sb.m365().add_leaver_with_memberships(T, "huge.leaver", 1200).expect("leaver");
    let groups = directory(&sb).groups_of(T, &leaver).await.unwrap();
    assert_eq!(groups.len(), 1200, "every page read");
}

#[tokio::test]
async fn directory_graph_batch_inner_429_is_retried_and_applied_once() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    let leaver = sb.m365().add_leaver_with_memberships(T, "batch.leaver", 90).expect("leaver");
    let cloud: Vec<String> = dir
        .groups_of(T, &leaver)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| matches!(g.kind, GroupKind::Security | GroupKind::Unified))
        .map(|g| g.id)
        .take(25)
        .collect();
    assert_eq!(cloud.len(), 25, "two batches");
    sb.m365().set_throttle(ThrottleSettings {
        write_quota: 8,
        write_window: Duration::from_secs(1),
        ..ThrottleSettings::default()
    });
    let results = dir.remove_memberships(T, &leaver, &cloud).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(sb.m365().throttled() > 0, "the quota refused some inner requests");
    for group in &cloud {
        assert_eq!(sb.m365().writes(T, &format!("groups/{group}"), &format!("members.remove:{leaver}")), 1, "{group}");
    }
    assert!(sb.m365().group_ids_of(T, &leaver).iter().all(|g| !cloud.contains(g)));
}

#[tokio::test]
async fn directory_graph_keeps_one_token_per_tenant() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    for _ in 0..2 {
        assert!(dir.user(T, M365_LEAVER_ID).await.unwrap().is_some());
        assert!(dir.user(M365_OTHER_TENANT_ID, M365_OTHER_USER_ID).await.unwrap().is_some());
        // Tenant A's token does not see tenant B's users, and the other way round.
        assert_eq!(dir.user(M365_OTHER_TENANT_ID, M365_LEAVER_ID).await.unwrap(), None);
        assert_eq!(dir.user(T, M365_OTHER_USER_ID).await.unwrap(), None);
    }
    assert_eq!(sb.m365().tokens_issued(), 2, "one token per tenant, reused");
    sb.m365().revoke_tokens();
    assert!(dir.user(T, M365_LEAVER_ID).await.unwrap().is_some(), "a 401 fetches a new token once");
    assert_eq!(sb.m365().tokens_issued(), 3);
}

#[tokio::test]
async fn directory_graph_errors_carry_no_credential() {
    let sb = sandbox().await;
    let wrong = "wrong~Secret_value-9Zq";
    let dir = GraphDirectory::new(&settings(&sb, wrong), http_settings()).unwrap();
    let error = dir.user(T, M365_LEAVER_ID).await.unwrap_err();
    assert!(matches!(error, DirectoryError::PermissionDenied { .. }), "{error}");
    let dir = directory(&sb);
    let password = "Synced-User!Passw0rd-77";
    let refused = dir.reset_password(T, M365_SYNCED_LEAVER_ID, &SecretString::new(password)).await.unwrap_err();
    assert!(matches!(refused, DirectoryError::OnPremisesMastered { .. }), "{refused}");
    for text in [format!("{error} {error:?}"), format!("{refused} {refused:?}")] {
        for secret in [wrong, GRAPH_CLIENT_SECRET, password] {
            for form in leaks::forms(secret) {
                assert!(!text.contains(&form), "{form} in {text}");
            }
        }
    }
}

#[tokio::test]
async fn directory_graph_reads_a_rotated_secret_through_the_store() {
    let sb = sandbox().await;
    let store = offramp::adapters::secrets_env::EnvSecretStore::with_vars(std::collections::HashMap::from([(
        "MS_CLIENT_SECRET".to_string(),
        GRAPH_CLIENT_SECRET.to_string(),
    )]));
    // Started with a secret since rotated away: the store's value is read before the token request.
    let dir = GraphDirectory::new(&settings(&sb, "rotated~Away_secret-1"), http_settings())
        .unwrap()
        .with_secret_store(std::sync::Arc::new(store));
    assert!(dir.user(T, M365_LEAVER_ID).await.unwrap().is_some());
}

/// Runs `reset` with every event at `trace` captured (the Lambda's JSON subscriber, as in
/// secret_leaks.rs); answers its result and the log.
pub(crate) async fn with_trace_log<T>(reset: impl std::future::Future<Output = T>) -> (T, String) {
    let buffer = crate::secret_leaks::Buffer::default();
    let writer = buffer.clone();
    let subscriber = offramp::logging::capture("trace", offramp::logging::LogFormat::Json, move || writer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::trace!("trace level on");
    let result = reset.await;
    let log = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (result, log)
}

/// No form of `password` (raw, base64, percent-encoded, JSON-escaped) in `text`.
fn assert_no_password(place: &str, text: &str, password: &SecretString) {
    for form in leaks::forms(password.expose()) {
        assert!(!text.contains(&form), "the password ({form}) in {place}:\n{text}");
    }
}

#[tokio::test]
async fn directory_graph_password_resets_leak_no_password_in_errors_or_logs() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    let lee = user_item(M365_LEAVER_ID);
    let accepted = offramp::secret::generate_password(24);
    let (result, log) = with_trace_log(dir.reset_password(T, M365_LEAVER_ID, &accepted)).await;
    result.expect("a generated password meets the complexity rules");
    assert_eq!(sb.m365().writes(T, &lee, "passwordProfile"), 1);
    assert!(log.contains("\"level\":\"TRACE\""), "captured at trace: {log}");
    assert_no_password("the log of an accepted reset", &log, &accepted);

    // Seven characters of a generated password: below the simulator's eight, refused.
    let generated = offramp::secret::generate_password(16);
    let short = SecretString::new(&generated.expose()[..7]);
    let (result, log) = with_trace_log(async {
        let refused = dir.reset_password(T, M365_LEAVER_ID, &short).await;
        // As a workflow would log it.
        if let Err(error) = &refused {
            tracing::warn!(error = %error, debug = ?error, "password reset refused");
        }
        refused
    })
    .await;
    let refused = result.expect_err("a 7-character password is refused");
    assert!(matches!(refused, DirectoryError::Refused { status: 400, .. }), "{refused}");
    expect_code(&refused, "Request_BadRequest");
    assert!(refused.to_string().contains("password complexity requirements"), "{refused}");
    assert!(log.contains("password reset refused"), "the refusal is in the log: {log}");
    assert_no_password("the refusal's Display and Debug", &format!("{refused} {refused:?}"), &short);
    assert_no_password("the log of a refused reset", &log, &short);
    assert_eq!(sb.m365().writes(T, &lee, "passwordProfile"), 1, "the refused reset applied nothing");
}

#[tokio::test]
async fn directory_graph_adds_and_removes_group_owners_once_each() {
    let sb = sandbox().await;
    let dir = directory(&sb);
    let sim = sb.m365();
    let sole = format!("groups/{M365_GROUP_SOLE_OWNER}");
    let owners = |group: &str| sim.group(T, group).expect("group").owners;

    // The manager takes over the group the leaver owns alone.
    dir.add_owner(T, M365_GROUP_SOLE_OWNER, M365_MANAGER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &sole, &format!("owners.add:{M365_MANAGER_ID}")), 1);
    let owned = dir.owned_groups(T, M365_LEAVER_ID).await.unwrap();
    assert_eq!(owned.iter().find(|o| o.group.id == M365_GROUP_SOLE_OWNER).map(|o| o.owner_count), Some(2));
    // Graph's 400 "already exist" is done, not a failure; the simulator applied nothing more.
    dir.add_owner(T, M365_GROUP_SOLE_OWNER, M365_MANAGER_ID).await.expect("an owner already there is done");
    assert_eq!(sim.writes(T, &sole, &format!("owners.add:{M365_MANAGER_ID}")), 1);

    dir.remove_owner(T, M365_GROUP_SOLE_OWNER, M365_LEAVER_ID).await.unwrap();
    assert_eq!(sim.writes(T, &sole, &format!("owners.remove:{M365_LEAVER_ID}")), 1);
    assert_eq!(owners(M365_GROUP_SOLE_OWNER).into_iter().collect::<Vec<_>>(), [M365_MANAGER_ID]);
    assert!(sim.group(T, M365_GROUP_SOLE_OWNER).unwrap().members.contains(M365_LEAVER_ID), "still a member");
    let absent = dir.remove_owner(T, M365_GROUP_SOLE_OWNER, M365_LEAVER_ID).await.unwrap_err();
    assert!(matches!(absent, DirectoryError::NotFound { .. }), "{absent}");
    expect_code(&absent, "Request_ResourceNotFound");

    // Through the batched changes: one result per change, each applied once.
    let changes = [
        UserChange::RemoveOwner(M365_GROUP_SOLE_OWNER.to_string()),
        UserChange::AddOwner(M365_GROUP_SECURITY.to_string()),
    ];
    let results = dir.apply_user_changes(T, M365_MANAGER_ID, &changes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(sim.writes(T, &sole, &format!("owners.remove:{M365_MANAGER_ID}")), 1);
    let security = format!("groups/{M365_GROUP_SECURITY}");
    assert_eq!(sim.writes(T, &security, &format!("owners.add:{M365_MANAGER_ID}")), 1);
    assert!(owners(M365_GROUP_SOLE_OWNER).is_empty() && owners(M365_GROUP_SECURITY).contains(M365_MANAGER_ID));
}
