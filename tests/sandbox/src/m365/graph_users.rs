//! Graph user routes (docs/vendors/microsoft-graph.md#user-offboarding): read with
//! `$select`, manager, `PATCH` (the synced-object refusal), sessions, licences, auto-replies.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::graph::{Answer, Call};
use super::model::{AutoReply, AutoReplyState, ExternalAudience, MailboxKind, Tenant};
use crate::Shared;

/// Properties Graph returns for a user when no `$select` is given (docs/vendors/microsoft-graph.md#select).
pub(crate) const DEFAULT_USER_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// The synced-object refusal (docs/vendors/microsoft-graph.md#synced-users).
pub(crate) const ON_PREM_MASTERED: &str = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";

/// Writes to record after a handler: `(item, action)`.
pub(crate) type Writes = Vec<(String, String)>;

/// Runs `f` on the call's tenant and the user's id (404 if there is no such user), then
/// records the writes `f` reports.
pub(crate) fn on_user(
    shared: &Shared,
    call: &Call,
    key: &str,
    f: impl FnOnce(&mut Tenant, &mut Writes, String) -> Answer,
) -> Answer {
    let mut state = shared.m365.state();
    let mut writes = Writes::new();
    let answer = {
        let Some(tenant) = state.tenants.get_mut(&call.tenant) else { return Answer::not_found(key) };
        let Some(id) = tenant.user_id(key) else { return Answer::not_found(key) };
        f(tenant, &mut writes, id)
    };
    for (item, action) in writes {
        state.record_write(&call.tenant, &item, &action);
    }
    answer
}

/// `properties` of `full` (all of `$select`, or the default set), or the 400 for an unknown one.
pub(crate) fn select(
    full: &Value,
    select: Option<&String>,
    defaults: &[&str],
    type_name: &str,
) -> Result<Value, Answer> {
    let wanted: Vec<String> = match select {
        Some(list) => list.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
        None => defaults.iter().map(|p| p.to_string()).collect(),
    };
    let mut out = Map::new();
    out.insert("@odata.type".into(), full["@odata.type"].clone());
    for property in wanted {
        let found = full.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(&property)));
        let Some((name, value)) = found else {
            return Err(Answer::bad_request(&format!(
                "Could not find a property named '{property}' on type 'microsoft.graph.{type_name}'."
            )));
        };
        out.insert(name.clone(), value.clone());
    }
    Ok(Value::Object(out))
}

pub(crate) fn get_user(shared: &Shared, call: &Call, key: &str) -> Answer {
    on_user(shared, call, key, |tenant, _, id| {
        let full = tenant.user_json(&tenant.users[&id]);
        match select(&full, call.query.get("$select"), &DEFAULT_USER_PROPERTIES, "user") {
            Ok(body) => Answer::ok(body),
            Err(answer) => answer,
        }
    })
}

fn user_default(tenant: &Tenant, id: &str) -> Value {
    let full = tenant.user_json(&tenant.users[id]);
    select(&full, None, &DEFAULT_USER_PROPERTIES, "user").unwrap_or(full)
}

pub(crate) fn get_manager(shared: &Shared, call: &Call, key: &str) -> Answer {
    on_user(shared, call, key, |tenant, _, id| match tenant.users[&id].manager_id.clone() {
        Some(manager) if tenant.users.contains_key(&manager) => Answer::ok(user_default(tenant, &manager)),
        _ => Answer::not_found("manager"),
    })
}

pub(crate) fn delete_manager(shared: &Shared, call: &Call, key: &str) -> Answer {
    on_user(shared, call, key, |tenant, writes, id| {
        let user = tenant.users.get_mut(&id).expect("on_user found it");
        if user.on_premises_sync_enabled {
            return Answer::bad_request(ON_PREM_MASTERED);
        }
        if user.manager_id.take().is_none() {
            return Answer::not_found("manager");
        }
        writes.push((format!("users/{id}"), "manager.remove".into()));
        Answer::no_content()
    })
}

pub(crate) fn put_manager(shared: &Shared, call: &Call, key: &str) -> Answer {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let Some(reference) = body.get("@odata.id").and_then(Value::as_str) else {
        return Answer::bad_request("Invalid object identifier ''.");
    };
    let manager_key = reference.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string();
    on_user(shared, call, key, |tenant, writes, id| {
        let Some(manager) = tenant.user_id(&manager_key) else { return Answer::not_found(&manager_key) };
        if manager == id {
            return Answer::bad_request("A user cannot be their own manager.");
        }
        let user = tenant.users.get_mut(&id).expect("on_user found it");
        if user.on_premises_sync_enabled {
            return Answer::bad_request(ON_PREM_MASTERED);
        }
        user.manager_id = Some(manager);
        writes.push((format!("users/{id}"), "manager.set".into()));
        Answer::no_content()
    })
}

/// The checks of `PATCH /users/{id}`; `Ok` lists the properties to apply.
fn check_patch(body: &Value, synced: bool) -> Result<Vec<(String, Value)>, Answer> {
    let Some(object) = body.as_object().filter(|o| !o.is_empty()) else {
        return Err(Answer::bad_request("The request body must be a non-empty JSON object."));
    };
    let mut changes = Vec::new();
    for (name, value) in object {
        let valid = match name.as_str() {
            "onPremisesSyncEnabled" => {
                return Err(Answer::bad_request("Property 'onPremisesSyncEnabled' is read-only and cannot be set."));
            }
            "accountEnabled" => value.is_boolean(),
            "employeeId" => value.is_null() || value.as_str().is_some_and(|s| s.chars().count() <= 16),
            "displayName" | "jobTitle" => value.is_string(),
            "passwordProfile" => value.get("password").and_then(Value::as_str).is_some(),
            _ => {
                return Err(Answer::bad_request(&format!(
                    "Property '{name}' does not exist on type 'microsoft.graph.user'."
                )));
            }
        };
        if !valid {
            return Err(Answer::bad_request(&format!(
                "Invalid value specified for property '{name}' of resource 'User'."
            )));
        }
        // Entra accepts accountEnabled on a synced user (sync may undo it later); the rest
        // of these are mastered on-premises.
        if synced && name != "accountEnabled" {
            return Err(Answer::bad_request(ON_PREM_MASTERED));
        }
        if name == "passwordProfile" {
            let password = value["password"].as_str().unwrap_or_default();
            let classes = [char::is_lowercase, char::is_uppercase, char::is_numeric]
                .iter()
                .filter(|class| password.chars().any(**class))
                .count()
                + usize::from(password.chars().any(|c| !c.is_alphanumeric()));
            if password.chars().count() < 8 || classes < 3 {
                return Err(Answer::bad_request(
                    "The specified password does not comply with password complexity requirements. Please provide a different password.",
                ));
            }
        }
        changes.push((name.clone(), value.clone()));
    }
    Ok(changes)
}

pub(crate) fn patch_user(shared: &Shared, call: &Call, key: &str) -> Answer {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    on_user(shared, call, key, |tenant, writes, id| {
        let user = tenant.users.get_mut(&id).expect("on_user found it");
        let changes = match check_patch(&body, user.on_premises_sync_enabled) {
            Ok(changes) => changes,
            Err(answer) => return answer,
        };
        for (name, value) in changes {
            match name.as_str() {
                "accountEnabled" => user.account_enabled = value.as_bool().unwrap_or(user.account_enabled),
                "employeeId" => user.employee_id = value.as_str().map(str::to_string),
                "displayName" => user.display_name = value.as_str().unwrap_or_default().to_string(),
                "jobTitle" => user.job_title = value.as_str().map(str::to_string),
                _ => {
                    user.password_resets += 1;
                    user.force_change_password_next_sign_in =
                        value["forceChangePasswordNextSignIn"].as_bool().unwrap_or(true);
                }
            }
            writes.push((format!("users/{id}"), name));
        }
        Answer::no_content()
    })
}

pub(crate) fn revoke_sessions(shared: &Shared, call: &Call, key: &str) -> Answer {
    on_user(shared, call, key, |tenant, writes, id| {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        tenant.users.get_mut(&id).expect("on_user found it").sign_in_sessions_valid_from = Some(now);
        writes.push((format!("users/{id}"), "revokeSignInSessions".into()));
        Answer::ok(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}))
    })
}

/// The checks of `assignLicense` against the tenant's SKUs and the user's licences.
fn check_licences(tenant: &Tenant, id: &str, add: &[String], remove: &[String]) -> Result<(), Answer> {
    let user = &tenant.users[id];
    let states = tenant.licence_states(user);
    for sku in add.iter().chain(remove) {
        if !tenant.skus.iter().any(|s| s.sku_id.eq_ignore_ascii_case(sku)) {
            return Err(Answer::bad_request(&format!("License {sku} does not correspond to a valid company License.")));
        }
    }
    for sku in remove {
        if user.direct_licenses.iter().any(|d| d.eq_ignore_ascii_case(sku)) {
            continue;
        }
        if states.iter().any(|(s, group)| s.eq_ignore_ascii_case(sku) && group.is_some()) {
            return Err(Answer::bad_request(
                "User license is inherited from group membership and cannot be removed directly from the user.",
            ));
        }
        return Err(Answer::bad_request("User does not have a corresponding license."));
    }
    for sku in add {
        let consumed = tenant.users.values().filter(|u| !u.deleted && u.direct_licenses.contains(sku)).count() as u32;
        let enabled = tenant.skus.iter().find(|s| &s.sku_id == sku).map_or(0, |s| s.enabled_units);
        if consumed >= enabled && !user.direct_licenses.contains(sku) {
            return Err(Answer::bad_request(&format!("Subscription {sku} does not have any available licenses.")));
        }
    }
    Ok(())
}

pub(crate) fn assign_license(shared: &Shared, call: &Call, key: &str) -> Answer {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let (Some(add), Some(remove)) = (body["addLicenses"].as_array(), body["removeLicenses"].as_array()) else {
        return Answer::bad_request("Both 'addLicenses' and 'removeLicenses' are required.");
    };
    let add: Vec<String> = add.iter().filter_map(|l| l["skuId"].as_str().map(str::to_lowercase)).collect();
    let remove: Vec<String> = remove.iter().filter_map(|l| l.as_str().map(str::to_lowercase)).collect();
    on_user(shared, call, key, |tenant, writes, id| {
        if let Err(answer) = check_licences(tenant, &id, &add, &remove) {
            return answer;
        }
        let user = tenant.users.get_mut(&id).expect("on_user found it");
        user.direct_licenses.retain(|d| !remove.contains(&d.to_lowercase()));
        for sku in &add {
            if !user.direct_licenses.contains(sku) {
                user.direct_licenses.push(sku.clone());
            }
        }
        writes.push((format!("users/{id}"), "assignLicense".into()));
        Answer::ok(user_default(tenant, &id))
    })
}

fn auto_reply_json(reply: &AutoReply) -> Value {
    let status = match reply.state {
        AutoReplyState::Disabled => "disabled",
        AutoReplyState::Enabled => "alwaysEnabled",
        AutoReplyState::Scheduled => "scheduled",
    };
    let audience = match reply.external_audience {
        ExternalAudience::None => "none",
        ExternalAudience::Known => "contactsOnly",
        ExternalAudience::All => "all",
    };
    let when = |t: &Option<String>| json!({"dateTime": t.clone().unwrap_or_default(), "timeZone": "UTC"});
    json!({
        "status": status, "externalAudience": audience,
        "internalReplyMessage": reply.internal_message, "externalReplyMessage": reply.external_message,
        "scheduledStartDateTime": when(&reply.start), "scheduledEndDateTime": when(&reply.end),
    })
}

const NO_MAILBOX: &str = "The mailbox is either inactive, soft-deleted, or is hosted on-premise.";

fn settings_json(tenant: &Tenant, id: &str) -> Option<Value> {
    let mailbox = tenant.mailboxes.get(id)?;
    let purpose = if mailbox.kind == MailboxKind::Shared { "shared" } else { "user" };
    Some(json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#users('{id}')/mailboxSettings"),
        "automaticRepliesSetting": auto_reply_json(&mailbox.auto_reply),
        "timeZone": "UTC", "userPurpose": purpose,
    }))
}

pub(crate) fn get_mailbox_settings(shared: &Shared, call: &Call, key: &str) -> Answer {
    on_user(shared, call, key, |tenant, _, id| match settings_json(tenant, &id) {
        Some(body) => Answer::ok(body),
        None => Answer::error(StatusCode::NOT_FOUND, "MailboxNotEnabledForRESTAPI", NO_MAILBOX),
    })
}

/// `automaticRepliesSetting` as Graph takes it, onto `reply`.
fn apply_auto_reply(reply: &mut AutoReply, setting: &Value) -> Result<(), Answer> {
    let enum_error = |v: &str| {
        Answer::error(StatusCode::BAD_REQUEST, "RequestBodyRead", &format!("Requested value '{v}' was not found."))
    };
    if let Some(status) = setting.get("status").and_then(Value::as_str) {
        reply.state = match status {
            "disabled" => AutoReplyState::Disabled,
            "alwaysEnabled" => AutoReplyState::Enabled,
            "scheduled" => AutoReplyState::Scheduled,
            other => return Err(enum_error(other)),
        };
    }
    if let Some(audience) = setting.get("externalAudience").and_then(Value::as_str) {
        reply.external_audience = match audience {
            "none" => ExternalAudience::None,
            "contactsOnly" => ExternalAudience::Known,
            "all" => ExternalAudience::All,
            other => return Err(enum_error(other)),
        };
    }
    if let Some(text) = setting.get("internalReplyMessage").and_then(Value::as_str) {
        reply.internal_message = text.to_string();
    }
    if let Some(text) = setting.get("externalReplyMessage").and_then(Value::as_str) {
        reply.external_message = text.to_string();
    }
    let time = |name: &str| setting.get(name).and_then(|t| t["dateTime"].as_str()).map(str::to_string);
    reply.start = time("scheduledStartDateTime").or(reply.start.take());
    reply.end = time("scheduledEndDateTime").or(reply.end.take());
    if reply.state == AutoReplyState::Scheduled && (reply.start.is_none() || reply.end.is_none()) {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "A scheduled automatic reply needs scheduledStartDateTime and scheduledEndDateTime.",
        ));
    }
    Ok(())
}

pub(crate) fn patch_mailbox_settings(shared: &Shared, call: &Call, key: &str) -> Answer {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    if let Some(other) = body.as_object().and_then(|o| o.keys().find(|k| *k != "automaticRepliesSetting")) {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidProperty",
            &format!("Property '{other}' is read-only or not supported here."),
        );
    }
    on_user(shared, call, key, |tenant, writes, id| {
        let Some(mailbox) = tenant.mailboxes.get_mut(&id) else {
            return Answer::error(StatusCode::NOT_FOUND, "MailboxNotEnabledForRESTAPI", NO_MAILBOX);
        };
        let mut reply = mailbox.auto_reply.clone();
        if let Err(answer) = apply_auto_reply(&mut reply, &body["automaticRepliesSetting"]) {
            return answer;
        }
        mailbox.auto_reply = reply;
        writes.push((format!("mailboxes/{id}"), "automaticReplies".into()));
        Answer::ok(settings_json(tenant, &id).unwrap_or_default())
    })
}
