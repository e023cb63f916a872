//! Exchange Online InvokeCommand over HTTP (src/m365/exchange.rs, exchange_cmdlets.rs):
//! the offboarding cmdlets and their rollback counterparts, refusals and effects counted
//! by the simulator.

use offramp_sandbox::m365::*;
use serde_json::json;

use crate::m365_support::{exchange_token, graph, graph_token, invoke, sandbox};

const T: &str = M365_TENANT_ID;

fn mailbox_item(user: &str) -> String {
    format!("mailboxes/{user}")
}

#[tokio::test]
async fn unknown_cmdlets_parameters_and_bodies_are_refused() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    let unknown = invoke(&sb, &token, T, "Remove-Everything", json!({})).await;
    assert_eq!((unknown.status, unknown.code()), (400, "CommandNotFoundException"));
    let details = unknown.body["error"]["details"][0]["message"].as_str().unwrap();
    assert_eq!(details.split('|').count(), 3, "Exception|Category|Message: {details}");
    let parameter = invoke(&sb, &token, T, "Set-Mailbox", json!({"Identity": M365_LEAVER_UPN, "Colour": "red"})).await;
    assert_eq!((parameter.status, parameter.code()), (400, "ParameterBindingException"));
    let missing = invoke(&sb, &token, T, "Get-Mailbox", json!({"Identity": "nobody@contoso.example"})).await;
    assert_eq!((missing.status, missing.code()), (404, "ManagementObjectNotFoundException"));
    let response = reqwest::Client::new()
        .post(format!("{}/adminapi/beta/{T}/InvokeCommand", sb.exchange_url()))
        .bearer_auth(&token)
        .json(&json!({"cmdlet": "Get-Mailbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(sb.stats().count("POST", "/exo/adminapi/beta/InvokeCommand"), 4);
}

#[tokio::test]
async fn set_mailbox_converts_hides_and_forwards_and_warns_on_a_no_op() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    let shared = invoke(&sb, &token, T, "Set-Mailbox", json!({"Identity": M365_LEAVER_UPN, "Type": "Shared"})).await;
    assert_eq!(shared.status, 200);
    assert!(shared.body.get("@adminapi.warnings").is_none());
    let again = invoke(&sb, &token, T, "Set-Mailbox", json!({"Identity": M365_LEAVER_UPN, "Type": "Shared"})).await;
    assert_eq!(again.status, 200);
    assert!(again.body["@adminapi.warnings"][0].as_str().unwrap().contains("no settings"), "{}", again.body);
    let read = invoke(&sb, &token, T, "Get-Mailbox", json!({"Identity": M365_LEAVER_ID})).await;
    assert_eq!(read.body["value"][0]["RecipientTypeDetails"], "SharedMailbox");
    let graph_token = graph_token(&sb, T).await;
    let settings = graph(&sb, &graph_token, "GET", &format!("/users/{M365_LEAVER_ID}/mailboxSettings"), None).await;
    assert_eq!(settings.body["userPurpose"], "shared");

    let set = json!({"Identity": "lee.leaver", "HiddenFromAddressListsEnabled": true,
        "ForwardingSmtpAddress": "smtp:megan.manager@contoso.example", "DeliverToMailboxAndForward": true});
    assert_eq!(invoke(&sb, &token, T, "Set-Mailbox", set).await.status, 200);
    let mailbox = sb.m365().mailbox(T, M365_LEAVER_ID).unwrap();
    assert_eq!(mailbox.kind, MailboxKind::Shared);
    assert!(mailbox.hidden_from_address_lists && mailbox.deliver_to_mailbox_and_forward);
    assert_eq!(mailbox.forwarding_smtp_address.as_deref(), Some("smtp:megan.manager@contoso.example"));
    assert_eq!(sb.m365().writes(T, &mailbox_item(M365_LEAVER_ID), "Set-Mailbox:Type"), 2, "a no-op write counts");
    assert_eq!(sb.m365().writes(T, &mailbox_item(M365_LEAVER_ID), "Set-Mailbox:HiddenFromAddressListsEnabled"), 1);
    let bad =
        invoke(&sb, &token, T, "Set-Mailbox", json!({"Identity": M365_LEAVER_UPN, "ForwardingSmtpAddress": "nobody"}))
            .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn synced_mailboxes_refuse_attributes_mastered_on_premises() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    for parameters in [
        json!({"Identity": M365_SYNCED_LEAVER_UPN, "HiddenFromAddressListsEnabled": true}),
        json!({"Identity": M365_SYNCED_LEAVER_UPN, "ForwardingAddress": M365_MANAGER_UPN}),
    ] {
        let refused = invoke(&sb, &token, T, "Set-Mailbox", parameters.clone()).await;
        assert_eq!(refused.status, 400, "{parameters}");
        assert!(refused.body["error"]["message"].as_str().unwrap().contains("out of the current user's write scope"));
    }
    let mailbox = sb.m365().mailbox(T, M365_SYNCED_LEAVER_ID).unwrap();
    assert!(!mailbox.hidden_from_address_lists && mailbox.forwarding_address.is_none());
    assert_eq!(sb.m365().writes_on(T, &mailbox_item(M365_SYNCED_LEAVER_ID)), 0);
    let converted =
        invoke(&sb, &token, T, "Set-Mailbox", json!({"Identity": M365_SYNCED_LEAVER_UPN, "Type": "Shared"})).await;
    assert_eq!(converted.status, 200, "the type is cloud-writable (UNCONFIRMED)");
}

#[tokio::test]
async fn full_access_and_send_as_are_granted_read_and_removed() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    let grant = json!({"Identity": M365_LEAVER_UPN, "User": M365_MANAGER_UPN, "AccessRights": ["FullAccess"],
        "AutoMapping": false, "InheritanceType": "All", "Confirm": false});
    let granted = invoke(&sb, &token, T, "Add-MailboxPermission", grant).await;
    assert_eq!((granted.status, granted.body["value"][0]["AutoMapping"].clone()), (200, json!(false)));
    assert_eq!(sb.m365().mailbox(T, M365_LEAVER_ID).unwrap().full_access.get(M365_MANAGER_UPN), Some(&false));
    let wrong = invoke(
        &sb,
        &token,
        T,
        "Add-MailboxPermission",
        json!({"Identity": M365_LEAVER_UPN, "User": M365_MANAGER_UPN, "AccessRights": ["SendAs"]}),
    )
    .await;
    assert_eq!(wrong.status, 400);
    let listed = invoke(&sb, &token, T, "Get-MailboxPermission", json!({"Identity": M365_LEAVER_UPN})).await;
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
    let send_as = json!({"Identity": M365_LEAVER_UPN, "Trustee": M365_MANAGER_UPN, "AccessRights": ["SendAs"]});
    assert_eq!(invoke(&sb, &token, T, "Add-RecipientPermission", send_as.clone()).await.status, 200);
    let full_for_send_as =
        json!({"Identity": M365_LEAVER_UPN, "Trustee": M365_MANAGER_UPN, "AccessRights": ["FullAccess"]});
    assert_eq!(invoke(&sb, &token, T, "Add-RecipientPermission", full_for_send_as).await.status, 400);
    assert!(sb.m365().mailbox(T, M365_LEAVER_ID).unwrap().send_as.contains(M365_MANAGER_UPN));
    assert_eq!(invoke(&sb, &token, T, "Remove-RecipientPermission", send_as).await.status, 200);
    let revoke = json!({"Identity": M365_LEAVER_UPN, "User": M365_MANAGER_UPN, "AccessRights": ["FullAccess"]});
    assert_eq!(invoke(&sb, &token, T, "Remove-MailboxPermission", revoke).await.status, 200);
    let mailbox = sb.m365().mailbox(T, M365_LEAVER_ID).unwrap();
    assert!(mailbox.full_access.is_empty() && mailbox.send_as.is_empty());
    let item = mailbox_item(M365_LEAVER_ID);
    assert_eq!(sb.m365().writes(T, &item, &format!("Add-MailboxPermission:{M365_MANAGER_UPN}")), 1);
    assert_eq!(sb.m365().writes(T, &item, &format!("Add-RecipientPermission:{M365_MANAGER_UPN}")), 1);
}

#[tokio::test]
async fn auto_replies_set_in_exchange_are_read_in_graph() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    let scheduled_without_times = json!({"Identity": M365_LEAVER_UPN, "AutoReplyState": "Scheduled"});
    assert_eq!(invoke(&sb, &token, T, "Set-MailboxAutoReplyConfiguration", scheduled_without_times).await.status, 400);
    let set = json!({"Identity": M365_LEAVER_UPN, "AutoReplyState": "Enabled", "InternalMessage": "Gone.",
        "ExternalMessage": "Gone, write to Megan.", "ExternalAudience": "Known"});
    assert_eq!(invoke(&sb, &token, T, "Set-MailboxAutoReplyConfiguration", set).await.status, 200);
    let read = invoke(&sb, &token, T, "Get-MailboxAutoReplyConfiguration", json!({"Identity": M365_LEAVER_UPN})).await;
    assert_eq!(read.body["value"][0]["AutoReplyState"], "Enabled");
    let graph_token = graph_token(&sb, T).await;
    let settings = graph(&sb, &graph_token, "GET", &format!("/users/{M365_LEAVER_ID}/mailboxSettings"), None).await;
    let reply = &settings.body["automaticRepliesSetting"];
    assert_eq!(
        (reply["status"].as_str(), reply["externalAudience"].as_str()),
        (Some("alwaysEnabled"), Some("contactsOnly"))
    );
    assert_eq!(reply["internalReplyMessage"], "Gone.");
}

#[tokio::test]
async fn mobile_devices_are_listed_and_removed_once() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    let listed = invoke(&sb, &token, T, "Get-MobileDevice", json!({"Mailbox": M365_LEAVER_UPN})).await;
    let devices = listed.body["value"].as_array().unwrap().clone();
    assert_eq!(devices.len(), 1);
    let identity = devices[0]["Identity"].as_str().unwrap().to_string();
    assert_eq!(identity, format!("{M365_LEAVER_UPN}\\ExchangeActiveSyncDevices\\LeePhone"));
    assert_eq!(
        invoke(&sb, &token, T, "Remove-MobileDevice", json!({"Identity": identity, "Confirm": false})).await.status,
        200
    );
    let again = invoke(&sb, &token, T, "Remove-MobileDevice", json!({"Identity": identity})).await;
    assert_eq!(again.status, 404);
    assert!(sb.m365().mailbox(T, M365_LEAVER_ID).unwrap().mobile_devices.is_empty());
    assert_eq!(sb.m365().mailbox(T, M365_SYNCED_LEAVER_ID).unwrap().mobile_devices.len(), 1, "only the leaver's");
    let action = format!("Remove-MobileDevice:{M365_LEAVER_MOBILE_DEVICE_GUID}");
    assert_eq!(sb.m365().writes(T, &mailbox_item(M365_LEAVER_ID), &action), 1);
}

#[tokio::test]
async fn distribution_group_members_are_changed_in_exchange_only() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    let remove = |group: &str, bypass: bool| json!({"Identity": group, "Member": M365_LEAVER_UPN, "BypassSecurityGroupManagerCheck": bypass});
    let no_bypass =
        invoke(&sb, &token, T, "Remove-DistributionGroupMember", remove(M365_GROUP_DISTRIBUTION, false)).await;
    assert_eq!((no_bypass.status, no_bypass.code()), (400, "RecipientTaskException"));
    for group in [M365_GROUP_DISTRIBUTION, "finance.approvers@contoso.example"] {
        let removed = invoke(&sb, &token, T, "Remove-DistributionGroupMember", remove(group, true)).await;
        assert_eq!(removed.status, 200, "{group}: {}", removed.body);
    }
    let again = invoke(&sb, &token, T, "Remove-DistributionGroupMember", remove(M365_GROUP_DISTRIBUTION, true)).await;
    assert_eq!((again.status, again.code()), (400, "MemberNotFoundException"));
    let synced =
        invoke(&sb, &token, T, "Remove-DistributionGroupMember", remove(M365_GROUP_SYNCED_DISTRIBUTION, true)).await;
    assert_eq!(synced.status, 400);
    assert!(
        synced.body["error"]["message"].as_str().unwrap().contains("synchronized from your on-premises organization")
    );
    assert!(sb.m365().group(T, M365_GROUP_SYNCED_DISTRIBUTION).unwrap().members.contains(M365_LEAVER_ID));
    for group in [M365_GROUP_UNIFIED, M365_GROUP_SECURITY, M365_GROUP_SYNCED] {
        let not_exchange = invoke(&sb, &token, T, "Remove-DistributionGroupMember", remove(group, true)).await;
        assert_eq!(not_exchange.status, 404, "{group} is not a distribution group");
    }
    assert!(!sb.m365().group(T, M365_GROUP_DISTRIBUTION).unwrap().members.contains(M365_LEAVER_ID));
    assert!(!sb.m365().group(T, M365_GROUP_MAIL_SECURITY).unwrap().members.contains(M365_LEAVER_ID));
    assert_eq!(
        invoke(&sb, &token, T, "Add-DistributionGroupMember", remove(M365_GROUP_DISTRIBUTION, true)).await.status,
        200
    );
    let members = invoke(&sb, &token, T, "Get-DistributionGroupMember", json!({"Identity": "Sales"})).await;
    assert_eq!(members.body["value"].as_array().unwrap().len(), 2);
    let item = format!("groups/{M365_GROUP_DISTRIBUTION}");
    assert_eq!(sb.m365().writes(T, &item, &format!("Remove-DistributionGroupMember:{M365_LEAVER_ID}")), 1);
}

#[tokio::test]
async fn injected_faults_use_the_exchange_shape() {
    let sb = sandbox().await;
    let token = exchange_token(&sb, T).await;
    sb.fail_next(1, 429);
    let throttled = invoke(&sb, &token, T, "Get-Mailbox", json!({})).await;
    assert_eq!((throttled.status, throttled.code()), (429, "TooManyRequests"));
    assert!(throttled.body["error"]["details"].is_array());
}
