//! The cmdlets InvokeCommand simulates for offboarding and its rollback
//! (docs/vendors/exchange-online.md#cmdlets). Identities resolve by UPN, alias, mail or
//! object id; groups by id, mail or name. Every accepted write is counted on its item
//! (`mailboxes/{userId}` or `groups/{groupId}`), a no-op included (it also warns).
//!
//! | Cmdlet | Parameters | Effect |
//! |---|---|---|
//! | Get-Mailbox | Identity? | the mailbox (or all) |
//! | Set-Mailbox | Identity, Type (Regular/Shared), HiddenFromAddressListsEnabled, ForwardingAddress, ForwardingSmtpAddress, DeliverToMailboxAndForward | synced mailbox: HiddenFromAddressListsEnabled and ForwardingAddress → write-scope error |
//! | Add-/Remove-/Get-MailboxPermission | Identity, User, AccessRights (FullAccess), AutoMapping, InheritanceType | FullAccess trustees |
//! | Add-/Remove-/Get-RecipientPermission | Identity, Trustee, AccessRights (SendAs only) | SendAs trustees |
//! | Set-/Get-MailboxAutoReplyConfiguration | Identity, AutoReplyState, InternalMessage, ExternalMessage, ExternalAudience, StartTime, EndTime | the same setting as Graph's automaticRepliesSetting |
//! | Get-MobileDevice / Remove-MobileDevice | Mailbox / Identity (`{upn}\ExchangeActiveSyncDevices\{name}` or GUID) | partnerships |
//! | Add-/Remove-/Get-DistributionGroupMember | Identity, Member, BypassSecurityGroupManagerCheck | distribution lists and mail-enabled security groups only; BypassSecurityGroupManagerCheck:true required for writes (the app manages no group); a synced group → write-scope error |

use serde_json::{Value, json};

use super::exchange::{ExoError, Outcome, Params};
use super::model::{AutoReplyState, ExternalAudience, GroupKind, Mailbox, MailboxKind, Tenant, User};
use crate::Shared;

type Writes = Vec<(String, String)>;

pub(crate) fn run(shared: &Shared, tenant_id: &str, name: &str, params: &Params) -> Result<Outcome, ExoError> {
    let mut state = shared.m365.state();
    let mut writes = Writes::new();
    let result = {
        let Some(tenant) = state.tenants.get_mut(tenant_id) else { return Err(ExoError::not_found(tenant_id)) };
        dispatch(tenant, &mut writes, name, params)
    };
    for (item, action) in writes {
        state.record_write(tenant_id, &item, &action);
    }
    result
}

fn dispatch(tenant: &mut Tenant, writes: &mut Writes, name: &str, p: &Params) -> Result<Outcome, ExoError> {
    match name.to_ascii_lowercase().as_str() {
        "get-mailbox" => get_mailbox(tenant, p),
        "set-mailbox" => set_mailbox(tenant, writes, p),
        "add-mailboxpermission" => mailbox_permission(tenant, writes, p, true),
        "remove-mailboxpermission" => mailbox_permission(tenant, writes, p, false),
        "get-mailboxpermission" => get_permissions(tenant, p, "User"),
        "add-recipientpermission" => recipient_permission(tenant, writes, p, true),
        "remove-recipientpermission" => recipient_permission(tenant, writes, p, false),
        "get-recipientpermission" => get_permissions(tenant, p, "Trustee"),
        "set-mailboxautoreplyconfiguration" => set_auto_reply(tenant, writes, p),
        "get-mailboxautoreplyconfiguration" => get_auto_reply(tenant, p),
        "get-mobiledevice" => get_mobile_devices(tenant, p),
        "remove-mobiledevice" => remove_mobile_device(tenant, writes, p),
        "add-distributiongroupmember" => group_member(tenant, writes, p, true),
        "remove-distributiongroupmember" => group_member(tenant, writes, p, false),
        "get-distributiongroupmember" => get_group_members(tenant, p),
        _ => Err(ExoError::invalid(
            "CommandNotFoundException",
            format!(
                "The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable program."
            ),
        )),
    }
}

/// The mailbox owner for an identity, or the not-found error.
fn owner(tenant: &Tenant, identity: &str) -> Result<User, ExoError> {
    tenant.mailbox_owner(identity).cloned().ok_or_else(|| ExoError::not_found(identity))
}

fn mailbox_mut<'a>(tenant: &'a mut Tenant, user: &User) -> &'a mut Mailbox {
    tenant.mailboxes.entry(user.id.clone()).or_default()
}

fn mailbox_json(user: &User, mailbox: &Mailbox) -> Value {
    let alias = user.user_principal_name.split('@').next().unwrap_or_default();
    json!({
        "Identity": alias, "Name": alias, "Alias": alias, "DisplayName": user.display_name,
        "UserPrincipalName": user.user_principal_name, "PrimarySmtpAddress": user.mail,
        "ExternalDirectoryObjectId": user.id,
        "RecipientTypeDetails": if mailbox.kind == MailboxKind::Shared { "SharedMailbox" } else { "UserMailbox" },
        "HiddenFromAddressListsEnabled": mailbox.hidden_from_address_lists,
        "ForwardingAddress": mailbox.forwarding_address, "ForwardingSmtpAddress": mailbox.forwarding_smtp_address,
        "DeliverToMailboxAndForward": mailbox.deliver_to_mailbox_and_forward,
        "IsDirSynced": user.on_premises_sync_enabled,
    })
}

fn no_change(identity: &str) -> String {
    format!("The command completed successfully but no settings of '{identity}' have been modified.")
}

fn get_mailbox(tenant: &Tenant, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&["Identity", "ResultSize"])?;
    let value = match p.str("Identity") {
        Some(identity) => {
            let user = owner(tenant, &identity)?;
            vec![mailbox_json(&user, &tenant.mailboxes[&user.id])]
        }
        None => tenant
            .mailboxes
            .iter()
            .filter_map(|(id, m)| tenant.users.get(id).filter(|u| !u.deleted).map(|u| mailbox_json(u, m)))
            .collect(),
    };
    Ok(Outcome { value, warnings: Vec::new() })
}

/// `Set-Mailbox`'s parameters checked against the mailbox; `Ok` is the changed mailbox.
fn apply_set_mailbox(tenant: &Tenant, user: &User, p: &Params) -> Result<Mailbox, ExoError> {
    let mut mailbox = tenant.mailboxes[&user.id].clone();
    let synced = user.on_premises_sync_enabled;
    let identity = &user.user_principal_name;
    if let Some(kind) = p.str("Type") {
        mailbox.kind = match kind.to_ascii_lowercase().as_str() {
            "shared" => MailboxKind::Shared,
            "regular" => MailboxKind::User,
            _ => {
                return Err(ExoError::invalid(
                    "ParameterBindingException",
                    format!(
                        "Cannot convert value \"{kind}\" to type \"ConvertibleMailboxSubType\" in this simulator (Regular, Shared)."
                    ),
                ));
            }
        };
    }
    if let Some(hidden) = p.bool("HiddenFromAddressListsEnabled")? {
        if synced {
            return Err(ExoError::write_scope("Set-Mailbox", "HiddenFromAddressListsEnabled", identity));
        }
        mailbox.hidden_from_address_lists = hidden;
    }
    if p.has("ForwardingAddress") {
        if synced {
            return Err(ExoError::write_scope("Set-Mailbox", "ForwardingAddress", identity));
        }
        mailbox.forwarding_address = match p.str("ForwardingAddress") {
            Some(target) => Some(owner(tenant, &target)?.user_principal_name),
            None => None,
        };
    }
    if p.has("ForwardingSmtpAddress") {
        let address = p.str("ForwardingSmtpAddress");
        if address.as_deref().is_some_and(|a| !a.trim_start_matches("smtp:").trim_start_matches("SMTP:").contains('@'))
        {
            return Err(ExoError::invalid(
                "ParameterBindingException",
                format!("\"{}\" isn't a valid SMTP address.", address.unwrap_or_default()),
            ));
        }
        mailbox.forwarding_smtp_address =
            address.map(|a| format!("smtp:{}", a.trim_start_matches("smtp:").trim_start_matches("SMTP:")));
    }
    if let Some(deliver) = p.bool("DeliverToMailboxAndForward")? {
        mailbox.deliver_to_mailbox_and_forward = deliver;
    }
    Ok(mailbox)
}

fn set_mailbox(tenant: &mut Tenant, writes: &mut Writes, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&[
        "Identity",
        "Type",
        "HiddenFromAddressListsEnabled",
        "ForwardingAddress",
        "ForwardingSmtpAddress",
        "DeliverToMailboxAndForward",
    ])?;
    let user = owner(tenant, &p.required("Identity")?)?;
    let mailbox = apply_set_mailbox(tenant, &user, p)?;
    let changed = mailbox != tenant.mailboxes[&user.id];
    for name in p.0.keys().filter(|k| !k.eq_ignore_ascii_case("Identity") && !k.eq_ignore_ascii_case("Confirm")) {
        writes.push((format!("mailboxes/{}", user.id), format!("Set-Mailbox:{name}")));
    }
    *mailbox_mut(tenant, &user) = mailbox;
    let warnings = if changed { Vec::new() } else { vec![no_change(&user.user_principal_name)] };
    Ok(Outcome { value: Vec::new(), warnings })
}

fn permission_json(mailbox: &User, trustee: &str, right: &str, extra: Value) -> Value {
    let mut out =
        json!({"Identity": mailbox.user_principal_name, "AccessRights": [right], "IsInherited": false, "Deny": false});
    out[if right == "SendAs" { "Trustee" } else { "User" }] = json!(trustee);
    if let (Some(out), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
        out.extend(extra.clone());
    }
    out
}

fn check_rights(p: &Params, only: &str) -> Result<(), ExoError> {
    let rights = p.list("AccessRights");
    if rights.len() != 1 || !rights[0].eq_ignore_ascii_case(only) {
        return Err(ExoError::invalid(
            "ParameterBindingException",
            format!("AccessRights must be {only} here; got {rights:?}."),
        ));
    }
    Ok(())
}

fn mailbox_permission(tenant: &mut Tenant, writes: &mut Writes, p: &Params, add: bool) -> Result<Outcome, ExoError> {
    p.only(&["Identity", "User", "AccessRights", "AutoMapping", "InheritanceType"])?;
    check_rights(p, "FullAccess")?;
    let user = owner(tenant, &p.required("Identity")?)?;
    let trustee = owner(tenant, &p.required("User")?)?.user_principal_name.to_lowercase();
    let automapping = p.bool("AutoMapping")?.unwrap_or(true);
    let verb = if add { "Add" } else { "Remove" };
    let mailbox = mailbox_mut(tenant, &user);
    let changed = if add {
        mailbox.full_access.insert(trustee.clone(), automapping) != Some(automapping)
    } else {
        mailbox.full_access.remove(&trustee).is_some()
    };
    writes.push((format!("mailboxes/{}", user.id), format!("{verb}-MailboxPermission:{trustee}")));
    let value = if add {
        vec![permission_json(&user, &trustee, "FullAccess", json!({"AutoMapping": automapping}))]
    } else {
        Vec::new()
    };
    let warnings = if changed { Vec::new() } else { vec![no_change(&user.user_principal_name)] };
    Ok(Outcome { value, warnings })
}

fn recipient_permission(tenant: &mut Tenant, writes: &mut Writes, p: &Params, add: bool) -> Result<Outcome, ExoError> {
    p.only(&["Identity", "Trustee", "AccessRights"])?;
    check_rights(p, "SendAs")?;
    let user = owner(tenant, &p.required("Identity")?)?;
    let trustee = owner(tenant, &p.required("Trustee")?)?.user_principal_name.to_lowercase();
    let verb = if add { "Add" } else { "Remove" };
    let mailbox = mailbox_mut(tenant, &user);
    let changed = if add { mailbox.send_as.insert(trustee.clone()) } else { mailbox.send_as.remove(&trustee) };
    writes.push((format!("mailboxes/{}", user.id), format!("{verb}-RecipientPermission:{trustee}")));
    let value = if add { vec![permission_json(&user, &trustee, "SendAs", json!({}))] } else { Vec::new() };
    let warnings = if changed { Vec::new() } else { vec![no_change(&user.user_principal_name)] };
    Ok(Outcome { value, warnings })
}

/// `Get-MailboxPermission` (`who` = "User") or `Get-RecipientPermission` (`who` = "Trustee").
fn get_permissions(tenant: &Tenant, p: &Params, who: &str) -> Result<Outcome, ExoError> {
    p.only(&["Identity", who])?;
    let user = owner(tenant, &p.required("Identity")?)?;
    let mailbox = &tenant.mailboxes[&user.id];
    let filter = p.str(who).map(|t| t.to_lowercase());
    let keep = |t: &String| filter.as_ref().is_none_or(|f| f == t);
    let value = if who == "User" {
        mailbox
            .full_access
            .iter()
            .filter(|(t, _)| keep(t))
            .map(|(t, a)| permission_json(&user, t, "FullAccess", json!({"AutoMapping": a})))
            .collect()
    } else {
        mailbox.send_as.iter().filter(|t| keep(t)).map(|t| permission_json(&user, t, "SendAs", json!({}))).collect()
    };
    Ok(Outcome { value, warnings: Vec::new() })
}

fn set_auto_reply(tenant: &mut Tenant, writes: &mut Writes, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&[
        "Identity",
        "AutoReplyState",
        "InternalMessage",
        "ExternalMessage",
        "ExternalAudience",
        "StartTime",
        "EndTime",
    ])?;
    let user = owner(tenant, &p.required("Identity")?)?;
    let mut reply = tenant.mailboxes[&user.id].auto_reply.clone();
    let bad = |name: &str, v: &str| {
        ExoError::invalid(
            "ParameterBindingException",
            format!("Cannot bind parameter '{name}': '{v}' is not a valid value."),
        )
    };
    if let Some(state) = p.str("AutoReplyState") {
        reply.state = match state.to_ascii_lowercase().as_str() {
            "enabled" => AutoReplyState::Enabled,
            "disabled" => AutoReplyState::Disabled,
            "scheduled" => AutoReplyState::Scheduled,
            _ => return Err(bad("AutoReplyState", &state)),
        };
    }
    if let Some(audience) = p.str("ExternalAudience") {
        reply.external_audience = match audience.to_ascii_lowercase().as_str() {
            "none" => ExternalAudience::None,
            "known" => ExternalAudience::Known,
            "all" => ExternalAudience::All,
            _ => return Err(bad("ExternalAudience", &audience)),
        };
    }
    reply.internal_message = p.str("InternalMessage").unwrap_or(reply.internal_message);
    reply.external_message = p.str("ExternalMessage").unwrap_or(reply.external_message);
    reply.start = p.str("StartTime").or(reply.start);
    reply.end = p.str("EndTime").or(reply.end);
    if reply.state == AutoReplyState::Scheduled && (reply.start.is_none() || reply.end.is_none()) {
        return Err(ExoError::invalid(
            "InvalidOperationException",
            "A scheduled auto-reply needs StartTime and EndTime.".into(),
        ));
    }
    let changed = reply != tenant.mailboxes[&user.id].auto_reply;
    mailbox_mut(tenant, &user).auto_reply = reply;
    writes.push((format!("mailboxes/{}", user.id), "Set-MailboxAutoReplyConfiguration".into()));
    let warnings = if changed { Vec::new() } else { vec![no_change(&user.user_principal_name)] };
    Ok(Outcome { value: Vec::new(), warnings })
}

fn get_auto_reply(tenant: &Tenant, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&["Identity"])?;
    let user = owner(tenant, &p.required("Identity")?)?;
    let reply = &tenant.mailboxes[&user.id].auto_reply;
    let value = json!({
        "Identity": user.user_principal_name,
        "AutoReplyState": format!("{:?}", reply.state), "ExternalAudience": format!("{:?}", reply.external_audience),
        "InternalMessage": reply.internal_message, "ExternalMessage": reply.external_message,
        "StartTime": reply.start, "EndTime": reply.end,
    });
    Ok(Outcome { value: vec![value], warnings: Vec::new() })
}

fn device_identity(user: &User, name: &str) -> String {
    format!("{}\\ExchangeActiveSyncDevices\\{name}", user.user_principal_name)
}

fn get_mobile_devices(tenant: &Tenant, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&["Mailbox", "ResultSize"])?;
    let user = owner(tenant, &p.required("Mailbox")?)?;
    let value = tenant.mailboxes[&user.id]
        .mobile_devices
        .iter()
        .map(|d| {
            json!({"Identity": device_identity(&user, &d.name), "Guid": d.guid, "FriendlyName": d.name,
            "DeviceModel": d.device_model, "DeviceOS": d.device_os, "UserDisplayName": user.display_name})
        })
        .collect();
    Ok(Outcome { value, warnings: Vec::new() })
}

fn remove_mobile_device(tenant: &mut Tenant, writes: &mut Writes, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&["Identity"])?;
    let identity = p.required("Identity")?;
    let found = tenant.mailboxes.iter().find_map(|(uid, m)| {
        let user = tenant.users.get(uid)?;
        m.mobile_devices
            .iter()
            .position(|d| {
                d.guid.eq_ignore_ascii_case(&identity) || device_identity(user, &d.name).eq_ignore_ascii_case(&identity)
            })
            .map(|i| (uid.clone(), i))
    });
    let Some((uid, index)) = found else { return Err(ExoError::not_found(&identity)) };
    let Some(mailbox) = tenant.mailboxes.get_mut(&uid) else { return Err(ExoError::not_found(&identity)) };
    let device = mailbox.mobile_devices.remove(index);
    writes.push((format!("mailboxes/{uid}"), format!("Remove-MobileDevice:{}", device.guid)));
    Ok(Outcome::default())
}

/// A group Exchange manages the members of (a distribution list or mail-enabled security group).
fn exchange_group(tenant: &Tenant, identity: &str) -> Result<String, ExoError> {
    let group = tenant.find_group(identity).filter(|g| g.mail_enabled && g.kind() != GroupKind::Unified);
    group.map(|g| g.id.clone()).ok_or_else(|| ExoError::not_found(identity))
}

fn group_member(tenant: &mut Tenant, writes: &mut Writes, p: &Params, add: bool) -> Result<Outcome, ExoError> {
    p.only(&["Identity", "Member", "BypassSecurityGroupManagerCheck"])?;
    let group_key = p.required("Identity")?;
    let group_id = exchange_group(tenant, &group_key)?;
    let member = owner(tenant, &p.required("Member")?).or_else(|_| {
        let key = p.str("Member").unwrap_or_default();
        tenant.find_user(&key).cloned().ok_or_else(|| ExoError::not_found(&key))
    })?;
    let verb = if add { "Add" } else { "Remove" };
    let group = tenant.groups.get_mut(&group_id).ok_or_else(|| ExoError::not_found(&group_key))?;
    if group.on_premises_sync_enabled {
        return Err(ExoError::write_scope(&format!("{verb}-DistributionGroupMember"), "Members", &group.display_name));
    }
    if p.bool("BypassSecurityGroupManagerCheck")? != Some(true) {
        return Err(ExoError::invalid(
            "RecipientTaskException",
            "You don't have sufficient permissions. This operation can only be performed by a manager of the group."
                .into(),
        ));
    }
    let changed = if add { group.members.insert(member.id.clone()) } else { group.members.remove(&member.id) };
    if !changed {
        let message = if add {
            format!(
                "The recipient \"{}\" is already a member of the group \"{}\".",
                member.user_principal_name, group.display_name
            )
        } else {
            format!(
                "The recipient \"{}\" isn't a member of the group \"{}\".",
                member.user_principal_name, group.display_name
            )
        };
        return Err(ExoError::invalid(
            if add { "MemberAlreadyExistsException" } else { "MemberNotFoundException" },
            message,
        ));
    }
    writes.push((format!("groups/{group_id}"), format!("{verb}-DistributionGroupMember:{}", member.id)));
    Ok(Outcome::default())
}

fn get_group_members(tenant: &Tenant, p: &Params) -> Result<Outcome, ExoError> {
    p.only(&["Identity", "ResultSize"])?;
    let group_id = exchange_group(tenant, &p.required("Identity")?)?;
    let value = tenant.groups[&group_id]
        .members
        .iter()
        .filter_map(|id| tenant.find_user(id))
        .map(|u| json!({"Identity": u.user_principal_name, "PrimarySmtpAddress": u.mail, "ExternalDirectoryObjectId": u.id}))
        .collect();
    Ok(Outcome { value, warnings: Vec::new() })
}
