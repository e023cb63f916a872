//! The tasks of each selected action, from the snapshot. A task that cannot be done is
//! planned as skipped with the reason, never left out: the report lists every one.

use serde_json::json;

use super::{Phase, Task, TaskOp};
use crate::domain::{ItemKind, OffboardAction as A};
use crate::ports::{DirectoryGroup, GroupKind, MailboxType};
use crate::workflows::offboard_user::read::Leaver;
use crate::workflows::offboard_user::selection::{ActionOptions, ClientSettings, MANAGER};

/// Synced users' attributes are mastered in AD (docs/vendors/microsoft-graph.md#synced-users).
const SYNCED: &str = "the user is synced from on-premises AD, which masters this attribute: change it there";
const NO_MAILBOX: &str = "the user has no Exchange Online mailbox";
const SYNCED_DONE_IN_AD: &str =
    "the user is synced from on-premises AD, which masters this attribute: changed there by its on-premises AD task";

pub(super) struct Builder<'a> {
    pub leaver: &'a Leaver,
    pub tasks: Vec<Task>,
}

impl Builder<'_> {
    fn user_id(&self) -> &str {
        &self.leaver.state.user.id
    }

    fn upn(&self) -> &str {
        &self.leaver.state.user.user_principal_name
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        action: A,
        kind: ItemKind,
        id: &str,
        name: &str,
        phase: Phase,
        op: TaskOp,
        before: serde_json::Value,
    ) {
        let task = Task { action, kind, id: id.into(), name: name.into(), phase, op, before, skip: None };
        self.tasks.push(task);
    }

    /// Mark the task just pushed as skipped.
    pub fn skip_last(&mut self, why: impl Into<String>) {
        if let Some(task) = self.tasks.last_mut() {
            task.skip = Some(why.into());
        }
    }

    pub fn skip_if(&mut self, condition: bool, why: &str) {
        if condition {
            self.skip_last(why);
        }
    }
}

/// The cloud tasks: Entra ID, Exchange Online, licences.
pub(super) fn cloud_tasks(b: &mut Builder<'_>, actions: &ActionOptions, client: &ClientSettings) {
    account(b, actions);
    devices(b, actions);
    mailbox(b, actions);
    groups(b, actions, client);
    profile(b, actions);
    licences(b, actions);
}

/// Why a synced user's AD-mastered attribute is not changed in the cloud: done in AD by its
/// own task when AD is configured here, else left to the engineer.
fn synced(b: &Builder<'_>) -> &'static str {
    if b.leaver.onprem.is_some() { SYNCED_DONE_IN_AD } else { SYNCED }
}

fn account(b: &mut Builder<'_>, actions: &ActionOptions) {
    let user = b.leaver.state.user.clone();
    let synced = user.is_synced();
    let (id, upn) = (user.id.as_str(), user.user_principal_name.as_str());
    if actions.disable_account {
        let before = json!({ "enabled": user.enabled, "synced": synced });
        b.push(A::DisableAccount, ItemKind::UserAccount, id, upn, Phase::SignIn, TaskOp::DisableAccount, before);
        b.skip_if(!user.enabled, "the account is already disabled");
    }
    if actions.reset_password {
        let op = TaskOp::ResetPassword { store: actions.store_password };
        b.push(A::ResetPassword, ItemKind::UserPassword, id, upn, Phase::SignIn, op, json!({}));
        b.skip_if(synced, self::synced(b));
    }
    if actions.revoke_sessions {
        b.push(A::RevokeSessions, ItemKind::UserSessions, id, upn, Phase::Sessions, TaskOp::RevokeSessions, json!({}));
    }
}

fn devices(b: &mut Builder<'_>, actions: &ActionOptions) {
    if actions.retire_devices {
        for device in b.leaver.state.devices.clone() {
            let op = TaskOp::RetireDevice { device_id: device.id.clone() };
            let before =
                json!({ "name": device.name, "os": device.operating_system, "state": device.management_state });
            b.push(A::RetireDevices, ItemKind::ManagedDevice, &device.id, &device.name, Phase::Sessions, op, before);
            b.skip_if(device.management_state.eq_ignore_ascii_case("retirePending"), "a retire is already pending");
        }
    }
    if actions.remove_mobile_devices {
        for device in b.leaver.mobile_devices.clone() {
            let op = TaskOp::RemoveMobileDevice { identity: device.identity.clone() };
            let before = json!({ "identity": device.identity });
            b.push(
                A::RemoveMobileDevices,
                ItemKind::MobileDevice,
                &device.guid,
                &device.identity,
                Phase::Sessions,
                op,
                before,
            );
        }
    }
}

/// The trustee an option names: `manager` is the manager read in the snapshot.
fn trustee(b: &Builder<'_>, named: &str) -> Result<String, &'static str> {
    if named != MANAGER {
        return Ok(named.to_string());
    }
    let manager = b.leaver.state.manager.as_ref().ok_or("the leaver has no manager to name")?;
    Ok(manager.mail.clone().unwrap_or_else(|| manager.user_principal_name.clone()))
}

pub(super) fn mailbox(b: &mut Builder<'_>, actions: &ActionOptions) {
    let Some(mailbox) = b.leaver.mailbox.clone() else {
        mailbox_missing(b, actions);
        return;
    };
    let upn = b.upn().to_string();
    if actions.convert_to_shared {
        let before = json!({ "type": mailbox_type(mailbox.kind) });
        b.push(A::ConvertToShared, ItemKind::MailboxType, &upn, &upn, Phase::Mailbox, TaskOp::ConvertToShared, before);
        b.skip_if(mailbox.kind == MailboxType::Shared, "the mailbox is already shared");
        b.skip_if(mailbox.kind == MailboxType::Other, "the mailbox is a room or equipment mailbox");
    }
    permissions(b, actions);
    if actions.hide_from_gal {
        let before = json!({ "hidden": mailbox.hidden_from_address_lists });
        b.push(
            A::HideFromGal,
            ItemKind::MailboxVisibility,
            &upn,
            &upn,
            Phase::MailboxAccess,
            TaskOp::HideFromGal,
            before,
        );
        b.skip_if(mailbox.hidden_from_address_lists, "the mailbox is already hidden from the address lists");
        b.skip_if(
            mailbox.dir_synced,
            "the mailbox is synced from on-premises: hide it in AD (msExchHideFromAddressLists)",
        );
    }
    if let Some(to) = &actions.forward_to {
        forwarding(b, to, actions.forward_keep_copy, &mailbox);
    }
    if let Some(reply) = &actions.out_of_office {
        let external = reply.external.clone().unwrap_or_else(|| reply.internal.clone());
        let op = TaskOp::SetAutoReply { internal: reply.internal.clone(), external };
        let before = json!(b.leaver.auto_reply.as_ref().map(auto_reply_state));
        b.push(A::OutOfOffice, ItemKind::AutoReply, &upn, &upn, Phase::MailboxAccess, op, before);
    }
}

fn mailbox_missing(b: &mut Builder<'_>, actions: &ActionOptions) {
    let upn = b.upn().to_string();
    let wanted = [
        (actions.convert_to_shared, A::ConvertToShared, ItemKind::MailboxType, TaskOp::ConvertToShared),
        (actions.hide_from_gal, A::HideFromGal, ItemKind::MailboxVisibility, TaskOp::HideFromGal),
        (
            actions.out_of_office.is_some(),
            A::OutOfOffice,
            ItemKind::AutoReply,
            TaskOp::SetAutoReply { internal: String::new(), external: String::new() },
        ),
    ];
    for (selected, action, kind, op) in wanted {
        if selected {
            b.push(action, kind, &upn, &upn, Phase::Mailbox, op, json!(null));
            b.skip_last(NO_MAILBOX);
        }
    }
    if let Some(to) = &actions.forward_to {
        let op = TaskOp::Forward { to: to.clone(), keep_copy: false, external: false };
        b.push(A::ForwardMail, ItemKind::MailboxForwarding, &upn, &upn, Phase::Mailbox, op, json!(null));
        b.skip_last(NO_MAILBOX);
    }
}

fn permissions(b: &mut Builder<'_>, actions: &ActionOptions) {
    let grants = actions
        .grant_full_access
        .iter()
        .map(|t| (A::GrantFullAccess, "FullAccess", t))
        .chain(actions.grant_send_as.iter().map(|t| (A::GrantSendAs, "SendAs", t)));
    for (action, right, named) in grants.collect::<Vec<_>>() {
        let resolved = trustee(b, named);
        let who = resolved.clone().unwrap_or_else(|_| named.clone());
        let op = match action {
            A::GrantFullAccess => {
                TaskOp::GrantFullAccess { trustee: who.clone(), automapping: actions.full_access_automapping }
            }
            _ => TaskOp::GrantSendAs { trustee: who.clone() },
        };
        let id = format!("{right}:{}", who.to_ascii_lowercase());
        let before = json!({ "right": right, "trustee": who, "granted": false });
        b.push(
            action,
            ItemKind::MailboxPermission,
            &id,
            &format!("{right} for {who}"),
            Phase::MailboxAccess,
            op,
            before,
        );
        if let Err(why) = resolved {
            b.skip_last(why);
        }
    }
}

fn forwarding(b: &mut Builder<'_>, named: &str, keep_copy: bool, mailbox: &crate::ports::MailboxInfo) {
    let upn = b.upn().to_string();
    let resolved = trustee(b, named);
    let to = resolved.clone().unwrap_or_else(|_| named.to_string());
    // The manager is a recipient of the tenant; any other address is forwarded to as SMTP
    // (docs/vendors/exchange-online.md#forwarding).
    let external = named != MANAGER;
    let op = TaskOp::Forward { to: to.clone(), keep_copy, external };
    let before = json!({
        "forwarding_address": mailbox.forwarding_address,
        "forwarding_smtp_address": mailbox.forwarding_smtp_address,
        "deliver_to_mailbox_and_forward": mailbox.deliver_to_mailbox_and_forward,
    });
    b.push(
        A::ForwardMail,
        ItemKind::MailboxForwarding,
        &upn,
        &format!("forward to {to}"),
        Phase::MailboxAccess,
        op,
        before,
    );
    if let Err(why) = resolved {
        b.skip_last(why);
    }
}

fn groups(b: &mut Builder<'_>, actions: &ActionOptions, client: &ClientSettings) {
    let groups = b.leaver.state.groups.clone();
    if actions.remove_groups {
        for group in &groups {
            membership(b, group, actions);
        }
    }
    if actions.transfer_ownership {
        ownership(b);
    }
    if actions.add_to_leaver_group
        && let Some(group_id) = &client.leaver_group
    {
        let op = TaskOp::AddMembership { group_id: group_id.clone() };
        let member = groups.iter().any(|g| g.id.eq_ignore_ascii_case(group_id));
        let before = json!({ "group_id": group_id, "member": member });
        b.push(A::AddToLeaverGroup, ItemKind::GroupMembership, group_id, "leaver group", Phase::Directory, op, before);
        b.skip_if(member, "the leaver is already in the leaver group");
    }
}

/// Groups and Teams the leaver owns alone get the manager as an owner.
fn ownership(b: &mut Builder<'_>) {
    let manager = b.leaver.state.manager.clone();
    for owned in b.leaver.state.owned_groups.clone().into_iter().filter(|g| g.owner_count <= 1) {
        let group = owned.group;
        let owner_id = manager.as_ref().map(|m| m.id.clone()).unwrap_or_default();
        let op = TaskOp::AddOwner { group_id: group.id.clone(), owner_id: owner_id.clone() };
        let before = json!({ "group_id": group.id, "owner_id": owner_id, "owner": false });
        b.push(
            A::TransferOwnership,
            ItemKind::GroupOwnership,
            &group.id,
            &group.display_name,
            Phase::Directory,
            op,
            before,
        );
        if manager.is_none() {
            b.skip_last("the leaver has no manager to make an owner");
        } else if matches!(group.kind, GroupKind::Synced | GroupKind::DistributionList | GroupKind::MailEnabledSecurity)
        {
            b.skip_last("the group's owners are managed outside Graph (synced or Exchange-owned)");
        }
    }
}

fn membership(b: &mut Builder<'_>, group: &DirectoryGroup, actions: &ActionOptions) {
    let kept = actions
        .keep_groups
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&group.id) || k.eq_ignore_ascii_case(&group.display_name));
    let licences: Vec<&str> = b
        .leaver
        .state
        .licences
        .iter()
        .filter(|l| l.by_group.as_deref() == Some(group.id.as_str()))
        .map(|l| l.sku_id.as_str())
        .collect();
    let before = json!({
        "group_id": group.id, "display_name": group.display_name, "mail": group.mail,
        "kind": format!("{:?}", group.kind), "member": true, "grants_licences": licences,
    });
    let op = match group.kind {
        GroupKind::DistributionList | GroupKind::MailEnabledSecurity => {
            TaskOp::RemoveDistributionMember { group: group.mail.clone().unwrap_or_else(|| group.id.clone()) }
        }
        _ => TaskOp::RemoveMembership { group_id: group.id.clone() },
    };
    b.push(A::RemoveGroups, ItemKind::GroupMembership, &group.id, &group.display_name, Phase::Directory, op, before);
    if kept {
        b.skip_last("kept as asked (keep_groups)");
    } else if group.kind == GroupKind::Dynamic {
        b.skip_last("dynamic membership: the group's rule decides; change the rule or the user's attributes");
    } else if group.kind == GroupKind::Synced && b.leaver.onprem.is_some() {
        b.skip_last("the group is synced from on-premises AD: removed there by its on-premises AD task");
    } else if group.kind == GroupKind::Synced {
        b.skip_last("the group is synced from on-premises AD: remove the membership there");
    }
}

fn profile(b: &mut Builder<'_>, actions: &ActionOptions) {
    let user = b.leaver.state.user.clone();
    let (id, upn) = (b.user_id().to_string(), user.user_principal_name.clone());
    if actions.clear_employee_id {
        let before = json!({ "employee_id": user.employee_id });
        b.push(A::ClearEmployeeId, ItemKind::EmployeeId, &id, &upn, Phase::Directory, TaskOp::ClearEmployeeId, before);
        b.skip_if(user.employee_id.is_none(), "the user has no employee id");
        b.skip_if(user.employee_id.is_some() && user.is_synced(), synced(b));
    }
    if actions.clear_manager {
        let manager = b.leaver.state.manager.clone();
        let before = json!({
            "manager_id": manager.as_ref().map(|m| &m.id),
            "manager_upn": manager.as_ref().map(|m| &m.user_principal_name),
        });
        b.push(A::ClearManager, ItemKind::Manager, &id, &upn, Phase::Directory, TaskOp::ClearManager, before);
        b.skip_if(manager.is_none(), "the user has no manager");
        b.skip_if(manager.is_some() && user.is_synced(), synced(b));
    }
}

pub(super) fn psa_contacts(b: &mut Builder<'_>) {
    let contacts = b.leaver.contacts.clone();
    if contacts.is_empty() {
        let upn = b.upn().to_string();
        let op = TaskOp::DisablePsaContact { contact_id: String::new() };
        b.push(A::DisablePsaContact, ItemKind::Contact, "none", &upn, Phase::Directory, op, json!(null));
        b.skip_last("the client has no PSA contact with the leaver's address");
    }
    for contact in contacts {
        let op = TaskOp::DisablePsaContact { contact_id: contact.id.clone() };
        let active = contact.active;
        b.push(
            A::DisablePsaContact,
            ItemKind::Contact,
            &contact.id,
            &contact.name,
            Phase::Directory,
            op,
            json!(contact),
        );
        b.skip_if(!active, "the PSA contact is already inactive");
    }
}

fn licences(b: &mut Builder<'_>, actions: &ActionOptions) {
    if !actions.remove_licences {
        return;
    }
    let removed_groups: Vec<&str> = b
        .tasks
        .iter()
        .filter(|t| t.action == A::RemoveGroups && t.skip.is_none())
        .map(|t| t.id.as_str())
        .collect::<Vec<_>>();
    let removed_groups: Vec<String> = removed_groups.into_iter().map(str::to_string).collect();
    for licence in b.leaver.state.licences.clone() {
        let op = TaskOp::RemoveLicence { sku_id: licence.sku_id.clone() };
        let before = json!({ "sku_id": licence.sku_id, "by_group": licence.by_group });
        b.push(A::RemoveLicences, ItemKind::Licence, &licence.sku_id, &licence.sku_id, Phase::Licences, op, before);
        // Group-based licences go with the group's membership (docs/vendors/microsoft-graph.md#licences).
        match &licence.by_group {
            Some(group) if removed_groups.contains(group) => {
                b.skip_last(format!("inherited from group {group}: removed with that membership"))
            }
            Some(group) => b.skip_last(format!(
                "inherited from group {group}, whose membership stays: remove the membership (remove_groups) to free it"
            )),
            None => {}
        }
    }
}

fn mailbox_type(kind: MailboxType) -> &'static str {
    match kind {
        MailboxType::User => "user",
        MailboxType::Shared => "shared",
        MailboxType::Other => "other",
    }
}

fn auto_reply_state(reply: &crate::ports::AutoReply) -> serde_json::Value {
    json!({
        "state": format!("{:?}", reply.state),
        "internal": reply.internal_message,
        "external": reply.external_message,
        "audience": reply.external_audience,
        "start": reply.start,
        "end": reply.end,
    })
}
