//! Microsoft Graph for customer tenants, over HTTP (src/m365/graph.rs): tokens per tenant
//! and resource, each offboarding route's success and documented refusal, paging, `$batch`,
//! throttling. Effects are read from the simulator, never from an answer alone.

use std::collections::BTreeSet;
use std::time::Duration;

use offramp_sandbox::m365::*;
use offramp_sandbox::{GRAPH_SENDER, GRAPH_TENANT_ID};
use serde_json::{Value, json};

use crate::m365_support::{exchange_token, graph, graph_get_url, graph_token, invoke, sandbox, token_answer};

const T: &str = M365_TENANT_ID;

#[tokio::test]
async fn tokens_are_per_tenant_and_per_resource() {
    let sb = sandbox().await;
    let graph_a = graph_token(&sb, M365_TENANT_DOMAIN).await;
    let exchange_a = exchange_token(&sb, T).await;
    let graph_b = graph_token(&sb, M365_OTHER_TENANT_ID).await;
    assert_eq!(sb.m365().tokens_issued(), 3);

    let (status, body) = token_answer(&sb, M365_UNCONSENTED_TENANT_ID, GRAPH_SCOPE).await;
    assert_eq!((status, body["error_codes"].clone()), (400, json!([700016])), "{body}");
    let (status, body) = token_answer(&sb, T, "https://management.azure.com/.default").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    // The MSP's own tenant still only issues Graph tokens (sendMail).
    let (status, _) = token_answer(&sb, GRAPH_TENANT_ID, EXCHANGE_SCOPE).await;
    assert_eq!(status, 400);

    let exchange_on_graph = graph(&sb, &exchange_a, "GET", &format!("/users/{M365_LEAVER_ID}"), None).await;
    assert_eq!((exchange_on_graph.status, exchange_on_graph.code()), (401, "InvalidAuthenticationToken"));
    let tenant_b_user = graph(&sb, &graph_a, "GET", &format!("/users/{M365_OTHER_USER_ID}"), None).await;
    assert_eq!((tenant_b_user.status, tenant_b_user.code()), (404, "Request_ResourceNotFound"), "A's token, B's user");
    let own = graph(&sb, &graph_b, "GET", &format!("/users/{M365_OTHER_USER_ID}"), None).await;
    assert_eq!(own.status, 200);
    let graph_on_exchange = invoke(&sb, &graph_a, T, "Get-Mailbox", json!({})).await;
    assert_eq!(graph_on_exchange.status, 401);
    assert!(graph_on_exchange.headers.contains_key("www-authenticate"));
    let other_tenant = invoke(&sb, &exchange_a, M365_OTHER_TENANT_ID, "Get-Mailbox", json!({})).await;
    assert_eq!(other_tenant.status, 401, "A's Exchange token on B's URL");
    assert_eq!(invoke(&sb, "forged", T, "Get-Mailbox", json!({})).await.status, 401);
    assert_eq!(invoke(&sb, &exchange_a, T, "Get-Mailbox", json!({})).await.status, 200);

    sb.m365().set_consent(M365_OTHER_TENANT_ID, false);
    let withdrawn = graph(&sb, &graph_b, "GET", &format!("/users/{M365_OTHER_USER_ID}"), None).await;
    assert_eq!((withdrawn.status, withdrawn.code()), (401, "Authorization_IdentityNotFound"));
    sb.m365().revoke_tokens();
    let revoked = graph(&sb, &graph_a, "GET", &format!("/users/{M365_LEAVER_ID}"), None).await;
    assert_eq!((revoked.status, revoked.code()), (401, "InvalidAuthenticationToken"));
}

#[tokio::test]
async fn send_mail_of_the_msp_tenant_still_works_beside_customer_tenants() {
    let sb = sandbox().await;
    let (status, body) = token_answer(&sb, GRAPH_TENANT_ID, GRAPH_SCOPE).await;
    assert_eq!(status, 200);
    let msp = body["access_token"].as_str().unwrap().to_string();
    let mail = json!({"message": {"subject": "S", "toRecipients": [{"emailAddress": {"address": "a@b.example"}}]}});
    let sent = graph(&sb, &msp, "POST", &format!("/users/{GRAPH_SENDER}/sendMail"), Some(mail.clone())).await;
    assert_eq!(sent.status, 202);
    assert_eq!(sb.sent_mail().len(), 1);
    let customer = graph_token(&sb, T).await;
    let refused = graph(&sb, &customer, "POST", &format!("/users/{M365_LEAVER_ID}/sendMail"), Some(mail)).await;
    assert_eq!(refused.status, 400, "sendMail is not simulated in customer tenants");
    assert_eq!(sb.sent_mail().len(), 1);
}

#[tokio::test]
async fn users_are_read_with_select_and_default_properties() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let plain = graph(&sb, &token, "GET", "/users/LEE.LEAVER%40contoso.example", None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body["id"], M365_LEAVER_ID);
    assert!(plain.body.get("accountEnabled").is_none(), "not a default property: {}", plain.body);
    let select = "$select=id,accountEnabled,onPremisesSyncEnabled,employeeId,assignedLicenses,licenseAssignmentStates";
    let leaver = graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}?{select}"), None).await;
    assert_eq!(leaver.body["accountEnabled"], true);
    assert_eq!(leaver.body["onPremisesSyncEnabled"], Value::Null);
    assert_eq!(leaver.body["employeeId"], "E-1002");
    assert_eq!(leaver.body["assignedLicenses"].as_array().unwrap().len(), 2);
    let states = leaver.body["licenseAssignmentStates"].as_array().unwrap();
    let by_group: Vec<(&str, Value)> =
        states.iter().map(|s| (s["skuId"].as_str().unwrap(), s["assignedByGroup"].clone())).collect();
    assert!(by_group.contains(&(M365_SKU_E3, Value::Null)));
    assert!(by_group.contains(&(M365_SKU_EMS, json!(M365_GROUP_LICENSING))));
    assert!(leaver.body.get("displayName").is_none(), "only what was selected");
    assert!(plain.body.get("onPremisesSamAccountName").is_none(), "not a default property: {}", plain.body);
    let on_premises =
        "$select=onPremisesSyncEnabled,onPremisesSamAccountName,onPremisesDistinguishedName,onPremisesImmutableId";
    let synced = graph(&sb, &token, "GET", &format!("/users/{M365_SYNCED_LEAVER_UPN}?{on_premises}"), None).await;
    assert_eq!(synced.body["onPremisesSyncEnabled"], true);
    assert_eq!(synced.body["onPremisesSamAccountName"], M365_SYNCED_LEAVER_SAM);
    assert_eq!(synced.body["onPremisesDistinguishedName"], M365_SYNCED_LEAVER_DN);
    assert_eq!(synced.body["onPremisesImmutableId"], M365_SYNCED_LEAVER_IMMUTABLE_ID);
    assert!(synced.body.get("id").is_none(), "only what was selected: {}", synced.body);
    let unknown = graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}?$select=shoeSize"), None).await;
    assert_eq!((unknown.status, unknown.code()), (400, "Request_BadRequest"));
    let missing = graph(&sb, &token, "GET", "/users/nobody@contoso.example", None).await;
    assert_eq!((missing.status, missing.code()), (404, "Request_ResourceNotFound"));
    let wrong_method = graph(&sb, &token, "POST", &format!("/users/{M365_LEAVER_ID}"), Some(json!({}))).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(sb.stats().count("GET", "/graph/v1.0/users/{id}"), 5);
}

#[tokio::test]
async fn the_manager_is_read_removed_and_restored() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let path = format!("/users/{M365_LEAVER_ID}/manager");
    let manager = graph(&sb, &token, "GET", &path, None).await;
    assert_eq!((manager.status, manager.body["id"].as_str()), (200, Some(M365_MANAGER_ID)));
    assert_eq!(graph(&sb, &token, "DELETE", &format!("{path}/$ref"), None).await.status, 204);
    assert_eq!(sb.m365().user(T, M365_LEAVER_ID).unwrap().manager_id, None);
    assert_eq!(graph(&sb, &token, "GET", &path, None).await.status, 404);
    let again = graph(&sb, &token, "DELETE", &format!("{path}/$ref"), None).await;
    assert_eq!((again.status, again.code()), (404, "Request_ResourceNotFound"));
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{M365_MANAGER_ID}")});
    assert_eq!(graph(&sb, &token, "PUT", &format!("{path}/$ref"), Some(reference.clone())).await.status, 204);
    assert_eq!(sb.m365().user(T, M365_LEAVER_ID).unwrap().manager_id.as_deref(), Some(M365_MANAGER_ID));
    let item = format!("users/{M365_LEAVER_ID}");
    assert_eq!((sb.m365().writes(T, &item, "manager.remove"), sb.m365().writes(T, &item, "manager.set")), (1, 1));

    let synced = format!("/users/{M365_SYNCED_LEAVER_ID}/manager/$ref");
    let refused = graph(&sb, &token, "DELETE", &synced, None).await;
    assert_eq!((refused.status, refused.code()), (400, "Request_BadRequest"));
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("on-premises mastered"));
    assert_eq!(sb.m365().user(T, M365_SYNCED_LEAVER_ID).unwrap().manager_id.as_deref(), Some(M365_MANAGER_ID));
}

#[tokio::test]
async fn member_of_pages_through_500_memberships_of_mixed_kinds() {
    let sb = sandbox().await;
    let leaver = sb.m365().add_leaver_with_memberships(T, "many.groups", 500).unwrap();
    let token = graph_token(&sb, T).await;
    let first =
        graph(&sb, &token, "GET", &format!("/users/{leaver}/memberOf/microsoft.graph.group?$top=120"), None).await;
    assert_eq!(first.status, 200);
    let mut seen = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let mut pages = 0;
    let mut page = first;
    loop {
        pages += 1;
        for group in page.body["value"].as_array().unwrap() {
            assert!(seen.insert(group["id"].as_str().unwrap().to_string()), "no group twice");
            kinds.insert(format!(
                "{} {} {} {}",
                group["groupTypes"], group["mailEnabled"], group["securityEnabled"], group["onPremisesSyncEnabled"]
            ));
        }
        let Some(next) = page.body["@odata.nextLink"].as_str() else { break };
        assert!(next.contains("/memberOf/microsoft.graph.group?"), "{next}");
        page = graph_get_url(&token, next).await;
        assert_eq!(page.status, 200);
    }
    assert_eq!((seen.len(), pages), (500, 5));
    assert_eq!(kinds.len(), 6, "security, unified, dynamic, synced, distribution, mail-enabled security");
    let default_page = graph(&sb, &token, "GET", &format!("/users/{leaver}/memberOf"), None).await;
    assert_eq!(default_page.body["value"].as_array().unwrap().len(), 100);
    let too_big = graph(&sb, &token, "GET", &format!("/users/{leaver}/memberOf?$top=1000"), None).await;
    assert_eq!(too_big.status, 400);
    let bench = sb.m365().add_bench_leavers(T, 100, 3);
    assert_eq!(bench.iter().collect::<BTreeSet<_>>().len(), 100);
    assert_eq!(sb.m365().group_ids_of(T, &bench[99]).len(), 3);
}

#[tokio::test]
async fn group_members_are_removed_only_where_graph_allows_it() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let remove = |group: &str| format!("/groups/{group}/members/{M365_LEAVER_ID}/$ref");
    assert_eq!(graph(&sb, &token, "DELETE", &remove(M365_GROUP_UNIFIED), None).await.status, 204);
    let again = graph(&sb, &token, "DELETE", &remove(M365_GROUP_UNIFIED), None).await;
    assert_eq!((again.status, again.code()), (404, "Request_ResourceNotFound"));
    assert_eq!(graph(&sb, &token, "DELETE", &remove(M365_GROUP_SECURITY), None).await.status, 204);
    for (group, words) in [
        (M365_GROUP_DYNAMIC, "dynamic"),
        (M365_GROUP_SYNCED, "on-premises mastered"),
        (M365_GROUP_DISTRIBUTION, "distribution list"),
        (M365_GROUP_MAIL_SECURITY, "mail-enabled security"),
        (M365_GROUP_SYNCED_DISTRIBUTION, "on-premises mastered"),
    ] {
        let refused = graph(&sb, &token, "DELETE", &remove(group), None).await;
        assert_eq!((refused.status, refused.code()), (400, "Request_BadRequest"), "{group}");
        assert!(refused.body["error"]["message"].as_str().unwrap().contains(words), "{}", refused.body);
        assert!(sb.m365().group(T, group).unwrap().members.contains(M365_LEAVER_ID), "still a member of {group}");
    }
    let member = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{M365_LEAVER_ID}")});
    let add = format!("/groups/{M365_GROUP_UNIFIED}/members/$ref");
    assert_eq!(graph(&sb, &token, "POST", &add, Some(member.clone())).await.status, 204);
    assert_eq!(graph(&sb, &token, "POST", &add, Some(member)).await.status, 400, "already a member");
    let item = format!("groups/{M365_GROUP_UNIFIED}");
    assert_eq!(sb.m365().writes(T, &item, &format!("members.remove:{M365_LEAVER_ID}")), 1);
    assert_eq!(sb.m365().writes(T, &item, &format!("members.add:{M365_LEAVER_ID}")), 1);
    assert_eq!(sb.m365().writes_on(T, &format!("groups/{M365_GROUP_DYNAMIC}")), 0);
}

#[tokio::test]
async fn a_member_delete_without_ref_deletes_the_user_itself() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let path = format!("/groups/{M365_GROUP_UNIFIED}/members/{M365_COLLEAGUE_ID}");
    assert_eq!(graph(&sb, &token, "DELETE", &path, None).await.status, 204);
    assert!(sb.m365().user(T, M365_COLLEAGUE_ID).unwrap().deleted);
    assert_eq!(graph(&sb, &token, "GET", &format!("/users/{M365_COLLEAGUE_ID}"), None).await.status, 404);
    assert_eq!(sb.m365().writes(T, &format!("users/{M365_COLLEAGUE_ID}"), "delete"), 1);
}

#[tokio::test]
async fn sole_ownership_shows_in_owned_objects_and_owners() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let owned = graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}/ownedObjects"), None).await;
    let ids: BTreeSet<&str> =
        owned.body["value"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([M365_GROUP_UNIFIED, M365_GROUP_SOLE_OWNER]));
    let sole = graph(&sb, &token, "GET", &format!("/groups/{M365_GROUP_SOLE_OWNER}/owners"), None).await;
    assert_eq!(sole.body["value"].as_array().unwrap().len(), 1);
    let shared = graph(&sb, &token, "GET", &format!("/groups/{M365_GROUP_UNIFIED}/owners"), None).await;
    assert_eq!(shared.body["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn licences_inherited_from_a_group_cannot_be_removed_directly() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let path = format!("/users/{M365_LEAVER_ID}/assignLicense");
    let inherited =
        graph(&sb, &token, "POST", &path, Some(json!({"addLicenses": [], "removeLicenses": [M365_SKU_EMS]}))).await;
    assert_eq!((inherited.status, inherited.code()), (400, "Request_BadRequest"));
    assert!(inherited.body["error"]["message"].as_str().unwrap().contains("inherited from group membership"));
    let unknown = graph(
        &sb,
        &token,
        "POST",
        &path,
        Some(json!({"addLicenses": [], "removeLicenses": ["00000000-0000-0000-0000-000000000000"]})),
    )
    .await;
    assert_eq!(unknown.status, 400);
    let incomplete = graph(&sb, &token, "POST", &path, Some(json!({"removeLicenses": [M365_SKU_E3]}))).await;
    assert_eq!(incomplete.status, 400);
    assert_eq!(sb.m365().writes(T, &format!("users/{M365_LEAVER_ID}"), "assignLicense"), 0, "nothing applied yet");

    let removed =
        graph(&sb, &token, "POST", &path, Some(json!({"addLicenses": [], "removeLicenses": [M365_SKU_E3]}))).await;
    assert_eq!((removed.status, removed.body["id"].as_str()), (200, Some(M365_LEAVER_ID)));
    assert_eq!(
        sb.m365().licences(T, M365_LEAVER_ID),
        vec![(M365_SKU_EMS.to_string(), Some(M365_GROUP_LICENSING.to_string()))]
    );
    let twice =
        graph(&sb, &token, "POST", &path, Some(json!({"addLicenses": [], "removeLicenses": [M365_SKU_E3]}))).await;
    assert_eq!(twice.status, 400, "no longer assigned");
    let skus = graph(&sb, &token, "GET", "/subscribedSkus", None).await;
    let e3 = skus.body["value"].as_array().unwrap().iter().find(|s| s["skuId"] == M365_SKU_E3).unwrap().clone();
    assert_eq!((e3["skuPartNumber"].as_str(), e3["consumedUnits"].as_u64()), (Some("ENTERPRISEPACK"), Some(1)));
    assert_eq!(sb.m365().writes(T, &format!("users/{M365_LEAVER_ID}"), "assignLicense"), 1);
}

#[tokio::test]
async fn patch_disables_clears_and_resets_but_not_on_prem_mastered_attributes() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let leaver = format!("/users/{M365_LEAVER_ID}");
    let weak = graph(
        &sb,
        &token,
        "PATCH",
        &leaver,
        Some(json!({"accountEnabled": false, "passwordProfile": {"password": "Sh0rt!x"}})),
    )
    .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body["error"]["message"].as_str().unwrap().contains("password complexity requirements"));
    assert!(!weak.body.to_string().contains("Sh0rt!x"), "the refused password is not echoed: {}", weak.body);
    assert!(sb.m365().user(T, M365_LEAVER_ID).unwrap().account_enabled, "all or nothing");
    let body = json!({"accountEnabled": false, "employeeId": null,
        "passwordProfile": {"password": "Xk7!qR2#mW9$", "forceChangePasswordNextSignIn": true}});
    assert_eq!(graph(&sb, &token, "PATCH", &leaver, Some(body)).await.status, 204);
    let user = sb.m365().user(T, M365_LEAVER_ID).unwrap();
    assert_eq!((user.account_enabled, user.employee_id, user.password_resets), (false, None, 1));

    let synced = format!("/users/{M365_SYNCED_LEAVER_ID}");
    for body in [
        json!({"passwordProfile": {"password": "Xk7!qR2#mW9$"}}),
        json!({"employeeId": null}),
        json!({"accountEnabled": false, "employeeId": null}),
    ] {
        let refused = graph(&sb, &token, "PATCH", &synced, Some(body.clone())).await;
        assert_eq!((refused.status, refused.code()), (400, "Request_BadRequest"), "{body}");
        assert!(!refused.body.to_string().contains("Xk7!qR2#mW9$"), "the password is not echoed");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Unable to update the specified properties for on-premises mastered")
        );
    }
    let user = sb.m365().user(T, M365_SYNCED_LEAVER_ID).unwrap();
    assert_eq!((user.account_enabled, user.employee_id.as_deref(), user.password_resets), (true, Some("E-1004"), 0));
    assert_eq!(graph(&sb, &token, "PATCH", &synced, Some(json!({"accountEnabled": false}))).await.status, 204);
    let read_only = graph(&sb, &token, "PATCH", &synced, Some(json!({"onPremisesSyncEnabled": false}))).await;
    assert!(read_only.body["error"]["message"].as_str().unwrap().contains("read-only"));
    assert_eq!(sb.m365().writes_on(T, &format!("users/{M365_SYNCED_LEAVER_ID}")), 1);
    assert_eq!(sb.m365().writes(T, &format!("users/{M365_LEAVER_ID}"), "passwordProfile"), 1);
}

#[tokio::test]
async fn sessions_are_revoked_and_auto_replies_set() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let revoked = graph(&sb, &token, "POST", &format!("/users/{M365_LEAVER_ID}/revokeSignInSessions"), None).await;
    assert_eq!((revoked.status, revoked.body["value"].clone()), (200, json!(true)));
    assert!(sb.m365().user(T, M365_LEAVER_ID).unwrap().sign_in_sessions_valid_from.is_some());

    let path = format!("/users/{M365_LEAVER_ID}/mailboxSettings");
    let before = graph(&sb, &token, "GET", &path, None).await;
    assert_eq!(before.body["automaticRepliesSetting"]["status"], "disabled");
    assert_eq!(before.body["userPurpose"], "user");
    let bad =
        graph(&sb, &token, "PATCH", &path, Some(json!({"automaticRepliesSetting": {"status": "sometimes"}}))).await;
    assert_eq!(bad.status, 400);
    let set = json!({"automaticRepliesSetting": {"status": "alwaysEnabled", "externalAudience": "all",
        "internalReplyMessage": "Lee has left.", "externalReplyMessage": "Lee has left; write to Megan."}});
    let after = graph(&sb, &token, "PATCH", &path, Some(set)).await;
    assert_eq!((after.status, after.body["automaticRepliesSetting"]["status"].as_str()), (200, Some("alwaysEnabled")));
    let mailbox = sb.m365().mailbox(T, M365_LEAVER_ID).unwrap();
    assert_eq!(
        (mailbox.auto_reply.state, mailbox.auto_reply.external_audience),
        (AutoReplyState::Enabled, ExternalAudience::All)
    );
    let none = graph(&sb, &token, "GET", &format!("/users/{M365_OTHER_USER_ID}/mailboxSettings"), None).await;
    assert_eq!(none.status, 404);
    assert_eq!(sb.m365().writes(T, &format!("mailboxes/{M365_LEAVER_ID}"), "automaticReplies"), 1);
}

#[tokio::test]
async fn intune_devices_are_listed_by_user_and_retired() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let listed = graph(
        &sb,
        &token,
        "GET",
        &format!("/deviceManagement/managedDevices?$filter=userId eq '{M365_LEAVER_ID}'"),
        None,
    )
    .await;
    let ids: BTreeSet<&str> =
        listed.body["value"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([M365_LEAVER_LAPTOP, M365_LEAVER_PHONE]));
    let bad = graph(&sb, &token, "GET", "/deviceManagement/managedDevices?$filter=deviceName eq 'x'", None).await;
    assert_eq!(bad.status, 400);
    let retire = format!("/deviceManagement/managedDevices/{M365_LEAVER_LAPTOP}/retire");
    assert_eq!(graph(&sb, &token, "POST", &retire, None).await.status, 204);
    assert_eq!(sb.m365().managed_device(T, M365_LEAVER_LAPTOP).unwrap().management_state, "retirePending");
    assert_eq!(sb.m365().managed_device(T, M365_COLLEAGUE_LAPTOP).unwrap().management_state, "managed");
    assert_eq!(graph(&sb, &token, "POST", "/deviceManagement/managedDevices/nope/retire", None).await.status, 404);
    assert_eq!(sb.m365().writes(T, &format!("managedDevices/{M365_LEAVER_LAPTOP}"), "retire"), 1);
}

fn batch_request(id: &str, method: &str, url: &str, body: Option<Value>, depends_on: &[&str]) -> Value {
    let mut request = json!({"id": id, "method": method, "url": url});
    if let Some(body) = body {
        request["body"] = body;
        request["headers"] = json!({"Content-Type": "application/json"});
    }
    if !depends_on.is_empty() {
        request["dependsOn"] = json!(depends_on);
    }
    request
}

#[tokio::test]
async fn batch_answers_each_request_and_fails_dependents_with_424() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    let requests = json!({"requests": [
        batch_request("1", "GET", &format!("/users/{M365_LEAVER_ID}?$select=accountEnabled"), None, &[]),
        batch_request("2", "PATCH", "/users/nobody@contoso.example", Some(json!({"accountEnabled": false})), &[]),
        batch_request("3", "POST", &format!("/users/{M365_LEAVER_ID}/revokeSignInSessions"), None, &["2"]),
        batch_request("4", "PATCH", &format!("/users/{M365_LEAVER_ID}"), Some(json!({"accountEnabled": false})), &["1"]),
    ]});
    let answer = graph(&sb, &token, "POST", "/$batch", Some(requests)).await;
    assert_eq!(answer.status, 200);
    let responses = answer.body["responses"].as_array().unwrap();
    let status_of = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap()["status"].as_u64().unwrap();
    assert_eq!((status_of("1"), status_of("2"), status_of("3"), status_of("4")), (200, 404, 424, 204));
    assert_ne!(responses[0]["id"], "1", "answers are not in request order: correlate by id");
    let first = responses.iter().find(|r| r["id"] == "1").unwrap();
    assert_eq!(first["body"]["accountEnabled"], true);
    assert!(!sb.m365().user(T, M365_LEAVER_ID).unwrap().account_enabled);
    assert!(sb.m365().user(T, M365_LEAVER_ID).unwrap().sign_in_sessions_valid_from.is_none(), "424: not run");

    let too_many: Vec<Value> =
        (0..21).map(|n| batch_request(&n.to_string(), "GET", "/subscribedSkus", None, &[])).collect();
    assert_eq!(graph(&sb, &token, "POST", "/$batch", Some(json!({"requests": too_many}))).await.status, 400);
    let twice = json!({"requests": [batch_request("a", "GET", "/subscribedSkus", None, &[]), batch_request("a", "GET", "/subscribedSkus", None, &[])]});
    assert_eq!(graph(&sb, &token, "POST", "/$batch", Some(twice)).await.status, 400);
    let untyped = json!({"requests": [{"id": "1", "method": "PATCH", "url": format!("/users/{M365_LEAVER_ID}"), "body": {"accountEnabled": true}}]});
    assert_eq!(graph(&sb, &token, "POST", "/$batch", Some(untyped)).await.status, 400);
    assert!(!sb.m365().user(T, M365_LEAVER_ID).unwrap().account_enabled, "a refused batch runs nothing");
}

#[tokio::test]
async fn writes_beyond_the_quota_are_throttled_with_retry_after_inside_and_outside_batches() {
    let sb = sandbox().await;
    sb.m365().set_throttle(ThrottleSettings {
        write_quota: 2,
        write_window: Duration::from_secs(2),
        ..ThrottleSettings::default()
    });
    let token = graph_token(&sb, T).await;
    let revoke = format!("/users/{M365_LEAVER_ID}/revokeSignInSessions");
    let requests: Vec<Value> = (1..=3).map(|n| batch_request(&n.to_string(), "POST", &revoke, None, &[])).collect();
    let answer = graph(&sb, &token, "POST", "/$batch", Some(json!({"requests": requests}))).await;
    assert_eq!(answer.status, 200);
    let third = answer.body["responses"].as_array().unwrap().iter().find(|r| r["id"] == "3").unwrap().clone();
    assert_eq!(third["status"], 429);
    let retry_after: u64 = third["headers"]["Retry-After"].as_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{third}");
    let outside = graph(&sb, &token, "POST", &revoke, None).await;
    assert_eq!((outside.status, outside.code()), (429, "TooManyRequests"));
    assert!(outside.headers["x-ms-throttle-scope"].to_str().unwrap().starts_with("Tenant_Application/Write/"));
    assert_eq!(
        graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}"), None).await.status,
        200,
        "reads still pass"
    );
    assert_eq!(sb.m365().writes(T, &format!("users/{M365_LEAVER_ID}"), "revokeSignInSessions"), 2);
    assert_eq!(sb.m365().throttled(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(graph(&sb, &token, "POST", &revoke, None).await.status, 200, "the window moved on");

    sb.m365().set_throttle(ThrottleSettings { resource_units: Some(5), ..ThrottleSettings::default() });
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}/memberOf"), None).await.status);
    }
    assert_eq!(statuses, vec![200, 200, 429], "memberOf costs 2 resource units");
}

#[tokio::test]
async fn injected_faults_use_the_graph_shape_for_customer_tenants() {
    let sb = sandbox().await;
    let token = graph_token(&sb, T).await;
    sb.fail_next(1, 503);
    let failed = graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}"), None).await;
    assert_eq!((failed.status, failed.code()), (503, "ServiceNotAvailable"));
    sb.set_latency(Duration::from_millis(150));
    let started = std::time::Instant::now();
    assert_eq!(graph(&sb, &token, "GET", &format!("/users/{M365_LEAVER_ID}"), None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_admin_route_sets_the_limits_for_a_sandbox_in_another_process() {
    let sb = sandbox().await;
    let settings = json!({"m365_throttle": {"write_quota": 1, "write_window_ms": 60_000}});
    let admin = reqwest::Client::new()
        .post(format!("{}/_sandbox/settings", sb.base_url()))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let token = graph_token(&sb, T).await;
    let revoke = format!("/users/{M365_LEAVER_ID}/revokeSignInSessions");
    assert_eq!(graph(&sb, &token, "POST", &revoke, None).await.status, 200);
    let refused = graph(&sb, &token, "POST", &revoke, None).await;
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
}
