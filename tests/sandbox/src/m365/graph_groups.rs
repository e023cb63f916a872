//! Graph group, device and SKU routes (docs/vendors/microsoft-graph.md#groups,
//! #devices, #licences): memberships (paged), the member refusals by group kind, owners,
//! Intune devices and subscribed SKUs.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::graph::{Answer, Call};
use super::graph_users::{ON_PREM_MASTERED, on_user};
use super::model::{Group, GroupKind, Tenant};
use crate::Shared;

/// Graph's default and largest page of `memberOf`.
const MEMBER_OF_PAGE: usize = 100;
const MEMBER_OF_MAX_PAGE: usize = 999;

pub(crate) fn member_of(shared: &Shared, call: &Call, key: &str) -> Answer {
    let top = match call.query.get("$top").map(|t| t.parse::<usize>()) {
        None => MEMBER_OF_PAGE,
        Some(Ok(n)) if (1..=MEMBER_OF_MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Answer::bad_request("Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.");
        }
    };
    let Ok(skip) = call.query.get("$skiptoken").map_or(Ok(0), |t| t.trim_start_matches("RFNwdAIAAQ").parse::<usize>())
    else {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        );
    };
    let cast = call.segments.len() == 4;
    on_user(shared, call, key, |tenant, _, id| {
        let groups = tenant.groups_of(&id);
        let page: Vec<Value> = groups.iter().skip(skip).take(top).map(|g| g.to_graph()).collect();
        let mut body =
            json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": page});
        if skip + top < groups.len() {
            let suffix = if cast { "/microsoft.graph.group" } else { "" };
            body["@odata.nextLink"] = json!(format!(
                "http://{}/graph/v1.0/users/{id}/memberOf{suffix}?$top={top}&$skiptoken=RFNwdAIAAQ{}",
                call.host,
                skip + top
            ));
        }
        Answer::ok(body)
    })
}

pub(crate) fn owned_objects(shared: &Shared, call: &Call, key: &str) -> Answer {
    on_user(shared, call, key, |tenant, _, id| {
        let owned: Vec<Value> =
            tenant.groups.values().filter(|g| g.owners.contains(&id)).map(Group::to_graph).collect();
        Answer::ok(
            json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": owned}),
        )
    })
}

fn with_tenant(
    shared: &Shared,
    call: &Call,
    f: impl FnOnce(&mut Tenant, &mut Vec<(String, String)>) -> Answer,
) -> Answer {
    let mut state = shared.m365.state();
    let mut writes = Vec::new();
    let answer = match state.tenants.get_mut(&call.tenant) {
        Some(tenant) => f(tenant, &mut writes),
        None => return Answer::not_found(&call.tenant),
    };
    for (item, action) in writes {
        state.record_write(&call.tenant, &item, &action);
    }
    answer
}

pub(crate) fn get_group(shared: &Shared, call: &Call, key: &str) -> Answer {
    with_tenant(shared, call, |tenant, _| match tenant.groups.get(key) {
        Some(group) => Answer::ok(group.to_graph()),
        None => Answer::not_found(key),
    })
}

/// Owners (`owners`) or members of a group, as users with their default properties.
pub(crate) fn group_users(shared: &Shared, call: &Call, key: &str, owners: bool) -> Answer {
    with_tenant(shared, call, |tenant, _| {
        let Some(group) = tenant.groups.get(key) else { return Answer::not_found(key) };
        let ids = if owners { &group.owners } else { &group.members };
        let users: Vec<Value> = ids
            .iter()
            .filter_map(|id| tenant.find_user(id))
            .map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": u.id, "displayName": u.display_name, "userPrincipalName": u.user_principal_name, "mail": u.mail}))
            .collect();
        Answer::ok(json!({"value": users}))
    })
}

/// Why Graph refuses to change this group's members, if it does
/// (docs/vendors/microsoft-graph.md#groups; codes UNCONFIRMED).
fn refuses_member_changes(group: &Group) -> Option<Answer> {
    match group.kind() {
        GroupKind::Dynamic => Some(Answer::bad_request(
            "Insufficient privileges to complete the operation. Members of a group with dynamic membership cannot be added or removed.",
        )),
        GroupKind::Synced => Some(Answer::bad_request(ON_PREM_MASTERED)),
        GroupKind::DistributionList | GroupKind::MailEnabledSecurity => {
            Some(Answer::bad_request("Cannot Update a mail-enabled security groups and or distribution list."))
        }
        GroupKind::Unified | GroupKind::Security => None,
    }
}

pub(crate) fn remove_member(shared: &Shared, call: &Call, group_key: &str, user_key: &str) -> Answer {
    with_tenant(shared, call, |tenant, writes| {
        let Some(user_id) = tenant.user_id(user_key) else { return Answer::not_found(user_key) };
        let Some(group) = tenant.groups.get_mut(group_key) else { return Answer::not_found(group_key) };
        if let Some(refusal) = refuses_member_changes(group) {
            return refusal;
        }
        if !group.members.remove(&user_id) {
            return Answer::not_found_members_removed();
        }
        writes.push((format!("groups/{}", group.id), format!("members.remove:{user_id}")));
        Answer::no_content()
    })
}

/// `DELETE /groups/{id}/members/{id}` without `/$ref`: Graph deletes the member object
/// itself (docs/vendors/microsoft-graph.md#groups). The simulator does too, so a client that
/// forgets `/$ref` is caught.
pub(crate) fn delete_member_object(shared: &Shared, call: &Call, group_key: &str, user_key: &str) -> Answer {
    with_tenant(shared, call, |tenant, writes| {
        let Some(user_id) = tenant.user_id(user_key) else { return Answer::not_found(user_key) };
        if !tenant.groups.contains_key(group_key) {
            return Answer::not_found(group_key);
        }
        for group in tenant.groups.values_mut() {
            group.members.remove(&user_id);
        }
        if let Some(user) = tenant.users.get_mut(&user_id) {
            user.deleted = true;
        }
        writes.push((format!("users/{user_id}"), "delete".into()));
        Answer::no_content()
    })
}

/// The key of the object a `{"@odata.id": ".../directoryObjects/{id}"}` body names.
fn referenced_key(call: &Call) -> Result<String, Answer> {
    let body = call.json_body()?;
    let Some(reference) = body.get("@odata.id").and_then(Value::as_str) else {
        return Err(Answer::bad_request("Invalid object identifier ''."));
    };
    Ok(reference.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string())
}

/// `POST /groups/{id}/{property}/$ref`, `property` `members` or `owners`. Members are
/// refused by group kind, owners not: whether Graph takes owners on a synced or
/// mail-enabled group is UNCONFIRMED (docs/vendors/microsoft-graph.md#groups).
fn add_reference(shared: &Shared, call: &Call, group_key: &str, property: &str) -> Answer {
    let user_key = match referenced_key(call) {
        Ok(key) => key,
        Err(answer) => return answer,
    };
    with_tenant(shared, call, |tenant, writes| {
        let Some(user_id) = tenant.user_id(&user_key) else { return Answer::not_found(&user_key) };
        let Some(group) = tenant.groups.get_mut(group_key) else { return Answer::not_found(group_key) };
        let owners = property == "owners";
        if let Some(refusal) = refuses_member_changes(group).filter(|_| !owners) {
            return refusal;
        }
        let references = if owners { &mut group.owners } else { &mut group.members };
        if !references.insert(user_id.clone()) {
            return Answer::bad_request(&format!(
                "One or more added object references already exist for the following modified properties: '{property}'."
            ));
        }
        writes.push((format!("groups/{}", group.id), format!("{property}.add:{user_id}")));
        Answer::no_content()
    })
}

pub(crate) fn add_member(shared: &Shared, call: &Call, group_key: &str) -> Answer {
    add_reference(shared, call, group_key, "members")
}

pub(crate) fn add_owner(shared: &Shared, call: &Call, group_key: &str) -> Answer {
    add_reference(shared, call, group_key, "owners")
}

/// `DELETE /groups/{id}/owners/{id}/$ref`.
pub(crate) fn remove_owner(shared: &Shared, call: &Call, group_key: &str, user_key: &str) -> Answer {
    with_tenant(shared, call, |tenant, writes| {
        let Some(user_id) = tenant.user_id(user_key) else { return Answer::not_found(user_key) };
        let Some(group) = tenant.groups.get_mut(group_key) else { return Answer::not_found(group_key) };
        if !group.owners.remove(&user_id) {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                "One or more removed object references do not exist for the following modified properties: 'owners'.",
            );
        }
        writes.push((format!("groups/{}", group.id), format!("owners.remove:{user_id}")));
        Answer::no_content()
    })
}

/// `$filter=userId eq '…'` (the only filter simulated).
fn user_filter(filter: &str) -> Option<String> {
    let (field, rest) = filter.trim().split_once(' ')?;
    let value = rest.trim().strip_prefix("eq")?.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    field.eq_ignore_ascii_case("userId").then(|| value.to_string())
}

pub(crate) fn managed_devices(shared: &Shared, call: &Call) -> Answer {
    let user = match call.query.get("$filter") {
        None => None,
        Some(filter) => match user_filter(filter) {
            Some(user) => Some(user),
            None => {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Invalid filter clause: {filter}"),
                );
            }
        },
    };
    with_tenant(shared, call, |tenant, _| {
        let devices: Vec<Value> = tenant
            .managed_devices
            .values()
            .filter(|d| user.as_ref().is_none_or(|u| d.user_id.eq_ignore_ascii_case(u)))
            .map(|d| d.to_graph())
            .collect();
        Answer::ok(
            json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices", "value": devices}),
        )
    })
}

pub(crate) fn retire_device(shared: &Shared, call: &Call, key: &str) -> Answer {
    with_tenant(shared, call, |tenant, writes| {
        let Some(device) = tenant.managed_devices.get_mut(key) else {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!("Managed device '{key}' was not found."),
            );
        };
        device.management_state = "retirePending".to_string();
        writes.push((format!("managedDevices/{}", device.id), "retire".into()));
        Answer::no_content()
    })
}

pub(crate) fn subscribed_skus(shared: &Shared, call: &Call) -> Answer {
    with_tenant(shared, call, |tenant, _| {
        let skus: Vec<Value> = tenant
            .skus
            .iter()
            .map(|sku| {
                let consumed = tenant
                    .users
                    .values()
                    .filter(|u| !u.deleted && tenant.licence_states(u).iter().any(|(s, _)| *s == sku.sku_id))
                    .count();
                json!({
                    "id": format!("{}_{}", tenant.id, sku.sku_id), "skuId": sku.sku_id,
                    "skuPartNumber": sku.sku_part_number, "capabilityStatus": "Enabled", "appliesTo": "User",
                    "consumedUnits": consumed, "prepaidUnits": {"enabled": sku.enabled_units, "suspended": 0, "warning": 0},
                })
            })
            .collect();
        Answer::ok(json!({"value": skus}))
    })
}
