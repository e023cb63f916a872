//! The on-premises AD tasks of a leaver with an AD account (docs/workflows.md#003-identity-modes),
//! and, for an on-premises-only leaver, the cloud actions planned as skipped with the
//! reason. Which system does what, by mode:
//! - on-premises only: everything here; Entra ID and Exchange Online actions skipped;
//! - hybrid synced: the account disabled in AD first (then in Entra ID, for immediate
//!   effect), the password, employee id, manager, groups and address-list visibility in AD,
//!   which masters them; the cloud tasks of those attributes are skipped with the reason;
//! - hybrid not synced: both accounts, each on its own.

use serde_json::json;

use super::build::Builder;
use super::{Phase, TaskOp};
use crate::domain::{IdentityMode, ItemKind, OffboardAction as A};
use crate::workflows::offboard_user::identity::OnPremLeaver;
use crate::workflows::offboard_user::selection::{ActionOptions, ClientSettings};

const NO_CLOUD: &str = "on-premises only: the user has no Entra ID account nor Exchange Online mailbox";
/// The primary group's RID AD gives every account by default (Domain Users).
const DOMAIN_USERS: u32 = 513;

pub(super) fn tasks(b: &mut Builder<'_>, actions: &ActionOptions, client: &ClientSettings, onprem: &OnPremLeaver) {
    let mode = b.leaver.identity.mode;
    let user = &onprem.user;
    let (guid, sam) = (user.object_guid.clone(), user.sam_account_name.clone());
    let state = |extra: serde_json::Value| {
        let mut before = json!({ "dn": user.dn, "sam": sam });
        if let (Some(before), Some(extra)) = (before.as_object_mut(), extra.as_object()) {
            before.extend(extra.clone());
        }
        before
    };
    if actions.disable_account {
        let before = state(json!({ "enabled": user.enabled(), "user_account_control": user.user_account_control }));
        b.push(
            A::DisableAccount,
            ItemKind::AdAccount,
            &guid,
            &sam,
            Phase::OnPremSignIn,
            TaskOp::AdDisableAccount,
            before,
        );
        b.skip_if(!user.enabled(), "the AD account is already disabled");
    }
    if actions.reset_password {
        let op = TaskOp::AdResetPassword { store: actions.store_password };
        b.push(A::ResetPassword, ItemKind::AdPassword, &guid, &sam, Phase::OnPremSignIn, op, state(json!({})));
    }
    if actions.clear_employee_id {
        let before = state(json!({ "employee_id": user.employee_id }));
        b.push(
            A::ClearEmployeeId,
            ItemKind::AdEmployeeId,
            &guid,
            &sam,
            Phase::Directory,
            TaskOp::AdClearEmployeeId,
            before,
        );
        b.skip_if(user.employee_id.is_none(), "the AD account has no employeeID");
    }
    if actions.clear_manager {
        let before = state(json!({ "manager": user.manager }));
        b.push(A::ClearManager, ItemKind::AdManager, &guid, &sam, Phase::Directory, TaskOp::AdClearManager, before);
        b.skip_if(user.manager.is_none(), "the AD account has no manager");
    }
    if actions.remove_groups {
        memberships(b, actions, onprem, &state);
    }
    if actions.hide_from_gal && mode != IdentityMode::HybridUnsynced {
        hide(b, onprem, &state);
    }
    if actions.move_to_disabled_ou
        && let Some(ou) = &client.disabled_ou
    {
        let before = state(json!({ "parent": user.parent_dn() }));
        let op = TaskOp::AdMove { to_ou: ou.clone() };
        b.push(A::MoveToDisabledOu, ItemKind::AdLocation, &guid, &sam, Phase::Relocate, op, before);
        b.skip_if(user.parent_dn().eq_ignore_ascii_case(ou), "the AD account is already in the disabled users OU");
    }
}

/// Every direct membership, and the primary group reported as kept: it is no `member` link
/// and AD refuses to drop it (docs/vendors/active-directory.md#groups).
fn memberships(
    b: &mut Builder<'_>,
    actions: &ActionOptions,
    onprem: &OnPremLeaver,
    state: &dyn Fn(serde_json::Value) -> serde_json::Value,
) {
    for group in &onprem.groups {
        let kept = actions
            .keep_groups
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&group.dn) || k.eq_ignore_ascii_case(&group.name));
        let name = if group.built_in { format!("{} (built-in)", group.name) } else { group.name.clone() };
        let before =
            state(json!({ "group_dn": group.dn, "group": group.name, "built_in": group.built_in, "member": true }));
        let op = TaskOp::AdRemoveMembership { group_dn: group.dn.clone() };
        b.push(
            A::RemoveGroups,
            ItemKind::AdGroupMembership,
            &group.dn.to_ascii_lowercase(),
            &name,
            Phase::Directory,
            op,
            before,
        );
        b.skip_if(kept, "kept as asked (keep_groups)");
    }
    let primary = onprem.user.primary_group_id.unwrap_or(DOMAIN_USERS);
    let id = format!("primary-group:{primary}");
    let before = state(json!({ "primary_group_id": primary }));
    let name = if primary == DOMAIN_USERS {
        "Domain Users (primary group)".to_string()
    } else {
        format!("primary group {primary}")
    };
    let op = TaskOp::AdRemoveMembership { group_dn: String::new() };
    b.push(A::RemoveGroups, ItemKind::AdGroupMembership, &id, &name, Phase::Directory, op, before);
    b.skip_last(
        "the primary group: AD keeps every account in one (primaryGroupID); disabling the account is what counts",
    );
}

fn hide(b: &mut Builder<'_>, onprem: &OnPremLeaver, state: &dyn Fn(serde_json::Value) -> serde_json::Value) {
    let user = &onprem.user;
    let hidden = user.hidden_from_address_lists.unwrap_or(false);
    let before = state(json!({ "hidden": hidden }));
    let (guid, sam) = (&user.object_guid, &user.sam_account_name);
    b.push(
        A::HideFromGal,
        ItemKind::AdAddressListVisibility,
        guid,
        sam,
        Phase::Directory,
        TaskOp::AdHideFromGal,
        before,
    );
    if !onprem.can_hide {
        b.skip_last(
            "the AD schema has no msExchHideFromAddressLists (the Exchange schema extension is not installed): hide the \
             mailbox another way",
        );
    } else {
        b.skip_if(hidden, "the AD account is already hidden from the address lists");
    }
}

/// An on-premises-only leaver: each selected cloud action is listed, skipped with why.
pub(super) fn cloud_skipped(b: &mut Builder<'_>, actions: &ActionOptions, _client: &ClientSettings) {
    let user = b.leaver.state.user.clone();
    let (id, upn) = (user.id.as_str(), user.user_principal_name.as_str());
    if actions.revoke_sessions {
        b.push(A::RevokeSessions, ItemKind::UserSessions, id, upn, Phase::Sessions, TaskOp::RevokeSessions, json!({}));
        b.skip_last(
            "on-premises only: AD has no sign-in sessions to revoke over LDAP; Kerberos tickets already issued stay \
             valid until they expire",
        );
    }
    let selected = [
        (actions.retire_devices, A::RetireDevices, ItemKind::ManagedDevice),
        (actions.remove_mobile_devices, A::RemoveMobileDevices, ItemKind::MobileDevice),
        (actions.remove_licences, A::RemoveLicences, ItemKind::Licence),
        (actions.transfer_ownership, A::TransferOwnership, ItemKind::GroupOwnership),
        (actions.add_to_leaver_group, A::AddToLeaverGroup, ItemKind::GroupMembership),
        (!actions.grant_full_access.is_empty(), A::GrantFullAccess, ItemKind::MailboxPermission),
        (!actions.grant_send_as.is_empty(), A::GrantSendAs, ItemKind::MailboxPermission),
    ];
    for (wanted, action, kind) in selected {
        if wanted {
            b.push(action, kind, action.as_str(), upn, Phase::Directory, TaskOp::RevokeSessions, json!(null));
            b.skip_last(NO_CLOUD);
        }
    }
    // Mailbox actions: listed as for a user without a mailbox, with this mode's reason.
    let before = b.tasks.len();
    super::build::mailbox(b, actions);
    for task in &mut b.tasks[before..] {
        task.skip = Some(NO_CLOUD.into());
    }
}
