//! The Exchange Online adapter (issue 14) against the sandbox: reads, writes counted by the
//! simulator (a no-op warning is success), documented refusals, Exchange-scoped tokens.

use offramp::adapters::exchange::ExchangeMailboxes;
use offramp::adapters::graph::GraphDirectory;
use offramp::ports::{AutoReply, AutoReplyState, Directory, DirectoryError, Forwarding, MailboxType, Mailboxes};
use offramp_sandbox::m365::*;
use offramp_sandbox::{GRAPH_CLIENT_SECRET, Sandbox};
use offramp_tests::connectwise::http_settings;

use crate::directory_graph::{sandbox, settings};

const T: &str = M365_TENANT_ID;

fn mailboxes(sb: &Sandbox) -> ExchangeMailboxes {
    ExchangeMailboxes::new(&settings(sb, GRAPH_CLIENT_SECRET), http_settings()).expect("Exchange adapter")
}

fn mailbox_item(id: &str) -> String {
    format!("mailboxes/{id}")
}

#[tokio::test]
async fn directory_exchange_reads_mailbox_auto_reply_and_devices() {
    let sb = sandbox().await;
    let exo = mailboxes(&sb);
    let mailbox = exo.mailbox(T, M365_LEAVER_UPN).await.unwrap().expect("mailbox");
    assert_eq!(mailbox.kind, MailboxType::User);
    assert!(!mailbox.hidden_from_address_lists && !mailbox.dir_synced);
    assert!(exo.mailbox(T, M365_SYNCED_LEAVER_UPN).await.unwrap().unwrap().dir_synced);
    assert_eq!(exo.mailbox(T, "nobody@contoso.example").await.unwrap(), None);
    assert_eq!(exo.auto_reply(T, M365_LEAVER_UPN).await.unwrap().state, AutoReplyState::Disabled);
    let devices = exo.mobile_devices(T, M365_LEAVER_UPN).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].guid, M365_LEAVER_MOBILE_DEVICE_GUID);
    assert!(sb.m365().all_writes().is_empty());
}

#[tokio::test]
async fn directory_exchange_writes_are_applied_once_each() {
    let sb = sandbox().await;
    let exo = mailboxes(&sb);
    let sim = sb.m365();
    let lee = mailbox_item(M365_LEAVER_ID);
    exo.set_shared(T, M365_LEAVER_UPN, true).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "Set-Mailbox:Type"), 1);
    assert_eq!(exo.mailbox(T, M365_LEAVER_UPN).await.unwrap().unwrap().kind, MailboxType::Shared);
    // Exchange's "no settings have been modified" warning is success.
    exo.set_shared(T, M365_LEAVER_UPN, true).await.unwrap();
    exo.set_hidden(T, M365_LEAVER_UPN, true).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "Set-Mailbox:HiddenFromAddressListsEnabled"), 1);
    let forward = Forwarding::External { address: "archive@partner.example".into(), keep_copy: true };
    exo.set_forwarding(T, M365_LEAVER_UPN, Some(&forward)).await.unwrap();
    let mailbox = exo.mailbox(T, M365_LEAVER_UPN).await.unwrap().unwrap();
    assert!(mailbox.forwarding_smtp_address.unwrap().contains("archive@partner.example"));
    assert!(mailbox.deliver_to_mailbox_and_forward && mailbox.hidden_from_address_lists);
    exo.set_forwarding(T, M365_LEAVER_UPN, None).await.unwrap();
    let mailbox = exo.mailbox(T, M365_LEAVER_UPN).await.unwrap().unwrap();
    assert_eq!((mailbox.forwarding_smtp_address, mailbox.deliver_to_mailbox_and_forward), (None, false));

    exo.grant_full_access(T, M365_LEAVER_UPN, M365_COLLEAGUE_UPN, false).await.unwrap();
    assert_eq!(sim.writes(T, &lee, &format!("Add-MailboxPermission:{M365_COLLEAGUE_UPN}")), 1);
    exo.remove_full_access(T, M365_LEAVER_UPN, M365_COLLEAGUE_UPN).await.unwrap();
    assert_eq!(sim.writes(T, &lee, &format!("Remove-MailboxPermission:{M365_COLLEAGUE_UPN}")), 1);
    exo.grant_send_as(T, M365_LEAVER_UPN, M365_COLLEAGUE_UPN).await.unwrap();
    assert_eq!(sim.writes(T, &lee, &format!("Add-RecipientPermission:{M365_COLLEAGUE_UPN}")), 1);
    exo.remove_send_as(T, M365_LEAVER_UPN, M365_COLLEAGUE_UPN).await.unwrap();
    assert_eq!(sim.writes(T, &lee, &format!("Remove-RecipientPermission:{M365_COLLEAGUE_UPN}")), 1);

    let reply = AutoReply {
        state: AutoReplyState::Enabled,
        internal_message: "Lee has left; write to Megan.".into(),
        external_message: "Lee has left Contoso.".into(),
        external_audience: "All".into(),
        start: None,
        end: None,
    };
    exo.set_auto_reply(T, M365_LEAVER_UPN, &reply).await.unwrap();
    assert_eq!(sim.writes(T, &lee, "Set-MailboxAutoReplyConfiguration"), 1);
    assert_eq!(exo.auto_reply(T, M365_LEAVER_UPN).await.unwrap(), reply);

    let device = exo.mobile_devices(T, M365_LEAVER_UPN).await.unwrap().remove(0);
    exo.remove_mobile_device(T, &device.identity).await.unwrap();
    assert_eq!(sim.writes(T, &lee, &format!("Remove-MobileDevice:{M365_LEAVER_MOBILE_DEVICE_GUID}")), 1);
    assert!(exo.mobile_devices(T, M365_LEAVER_UPN).await.unwrap().is_empty());

    let sales = format!("groups/{M365_GROUP_DISTRIBUTION}");
    exo.remove_distribution_member(T, M365_GROUP_DISTRIBUTION, M365_LEAVER_UPN).await.unwrap();
    assert_eq!(sim.writes(T, &sales, &format!("Remove-DistributionGroupMember:{M365_LEAVER_ID}")), 1);
    exo.add_distribution_member(T, M365_GROUP_DISTRIBUTION, M365_LEAVER_UPN).await.unwrap();
    assert_eq!(sim.writes(T, &sales, &format!("Add-DistributionGroupMember:{M365_LEAVER_ID}")), 1);
}

#[tokio::test]
async fn directory_exchange_documented_refusals_map_to_typed_errors() {
    let sb = sandbox().await;
    let exo = mailboxes(&sb);
    let hidden = exo.set_hidden(T, M365_SYNCED_LEAVER_UPN, true).await.unwrap_err();
    assert!(matches!(hidden, DirectoryError::OnPremisesMastered { .. }), "{hidden}");
    assert!(hidden.code().is_some_and(|c| !c.is_empty()), "{hidden:?}");
    let synced_list = exo.remove_distribution_member(T, M365_GROUP_SYNCED_DISTRIBUTION, M365_LEAVER_UPN).await;
    assert!(matches!(synced_list, Err(DirectoryError::OnPremisesMastered { .. })), "{synced_list:?}");
    let absent = exo.remove_distribution_member(T, M365_GROUP_DISTRIBUTION, M365_MANAGER_UPN).await.unwrap_err();
    assert!(matches!(absent, DirectoryError::Refused { status: 400, .. }), "{absent}");
    assert_eq!(absent.code(), Some("MemberNotFoundException"));
    let not_exchange = exo.remove_distribution_member(T, M365_GROUP_SECURITY, M365_LEAVER_UPN).await.unwrap_err();
    assert!(matches!(not_exchange, DirectoryError::NotFound { .. }), "{not_exchange}");
    let missing = exo.set_shared(T, "nobody@contoso.example", true).await.unwrap_err();
    assert!(matches!(missing, DirectoryError::NotFound { .. }), "{missing}");
    assert_eq!(missing.code(), Some("ManagementObjectNotFoundException"));
    let unconsented = exo.mailbox(M365_UNCONSENTED_TENANT_ID, M365_LEAVER_UPN).await.unwrap_err();
    assert!(matches!(unconsented, DirectoryError::PermissionDenied { .. }), "{unconsented}");
    assert!(sb.m365().all_writes().is_empty(), "every refusal applied nothing");
}

#[tokio::test]
async fn directory_exchange_uses_its_own_token_per_tenant() {
    let sb = sandbox().await;
    let exo = mailboxes(&sb);
    let graph = GraphDirectory::new(&settings(&sb, GRAPH_CLIENT_SECRET), http_settings()).unwrap();
    assert!(graph.user(T, M365_LEAVER_ID).await.unwrap().is_some());
    for _ in 0..2 {
        assert!(exo.mailbox(T, M365_LEAVER_UPN).await.unwrap().is_some());
        assert_eq!(exo.mailbox(M365_OTHER_TENANT_ID, M365_LEAVER_UPN).await.unwrap(), None);
    }
    // Graph for tenant A, Exchange for A and for B: three tokens, none reused across.
    assert_eq!(sb.m365().tokens_issued(), 3);
}
