//! Verification: after the last phase the leaver is read again (one `leaver` call, the
//! mailbox, the PSA contacts) and every done task is checked against what it left. A
//! change the vendor accepted but that did not take (a sync that undid it, a change
//! still propagating) is reported as not confirmed, and the run as partial.

use super::plan::System;
use super::plan::{Task, TaskOp};
use super::report::{OffboardUserReport, TaskResult};
use super::run::Run;
use crate::ports::{AdUser, LeaverState, MailboxInfo, MailboxType};

/// What is read back: `None` where it could not be read (then nothing is judged on it).
struct ReadBack {
    state: Option<LeaverState>,
    mailbox: Option<MailboxInfo>,
    auto_reply_enabled: Option<bool>,
    contacts_active: Vec<(String, bool)>,
    /// The AD account, read again by its `sAMAccountName`.
    ad: Option<AdUser>,
}

pub(super) async fn verify(run: &Run<'_, '_>, report: &mut OffboardUserReport) {
    let done: Vec<usize> = (0..report.tasks.len()).filter(|i| report.tasks[*i].result == TaskResult::Done).collect();
    if done.is_empty() {
        return;
    }
    let back = read_back(run, &done).await;
    for i in done {
        let task = &run.plan.tasks[i];
        let Some((confirmed, found)) = judge(task, &back) else { continue };
        let entry = &mut report.tasks[i];
        entry.verified = Some(confirmed);
        if !confirmed {
            entry.message = Some(format!("read back after the run: {found}"));
        }
    }
}

/// For each task of `indices`, whether the systems already show what it would leave
/// (`false` also when that cannot be read back).
pub(super) async fn already_left(run: &Run<'_, '_>, indices: &[usize]) -> Vec<bool> {
    let back = read_back(run, indices).await;
    indices.iter().map(|i| judge(&run.plan.tasks[*i], &back).is_some_and(|(confirmed, _)| confirmed)).collect()
}

async fn read_back(run: &Run<'_, '_>, done: &[usize]) -> ReadBack {
    let (deps, target) = (run.deps, &run.target);
    let tasks: Vec<&Task> = done.iter().map(|i| &run.plan.tasks[*i]).collect();
    let mailbox_touched =
        tasks.iter().any(|t| matches!(t.op, TaskOp::ConvertToShared | TaskOp::HideFromGal | TaskOp::Forward { .. }));
    let auto_reply_set = tasks.iter().any(|t| matches!(t.op, TaskOp::SetAutoReply { .. }));
    let contact_ids: Vec<&String> = tasks
        .iter()
        .filter_map(|t| if let TaskOp::DisablePsaContact { contact_id } = &t.op { Some(contact_id) } else { None })
        .collect();
    let ad_touched = tasks.iter().any(|t| t.op.system() == System::OnPrem);
    let cloud_touched = tasks.iter().any(|t| matches!(t.op.system(), System::Directory | System::Owner));
    // The systems are read at once: the read-back is on every leaver's path.
    let state = async {
        if !cloud_touched {
            return None;
        }
        deps.directory.leaver(target.tenant, target.user_id).await.ok().flatten()
    };
    let ad = async {
        match (ad_touched, deps.onprem, target.ad_account) {
            (true, Some(ad), Some(account)) => ad.find_user(account).await.ok().flatten(),
            _ => None,
        }
    };
    let mailbox = async {
        if !mailbox_touched {
            return None;
        }
        deps.mailboxes.mailbox(target.tenant, target.upn).await.ok().flatten()
    };
    let auto_reply = async {
        if !auto_reply_set {
            return None;
        }
        let reply = deps.mailboxes.auto_reply(target.tenant, target.upn).await.ok();
        reply.map(|r| r.state != crate::ports::AutoReplyState::Disabled)
    };
    let contacts = futures::future::join_all(contact_ids.into_iter().map(|id| async move {
        deps.psa.contact(id).await.ok().flatten().map(|contact| (id.clone(), contact.active))
    }));
    let (state, mailbox, auto_reply_enabled, contacts, ad) = futures::join!(state, mailbox, auto_reply, contacts, ad);
    ReadBack { state, mailbox, auto_reply_enabled, contacts_active: contacts.into_iter().flatten().collect(), ad }
}

/// Whether a task's change is found as it left it, and what was found; `None` when it
/// cannot be read back (sessions, a password, a removed mobile device, a permission).
fn judge(task: &Task, back: &ReadBack) -> Option<(bool, String)> {
    let check = |ok: bool, found: &str| Some((ok, found.to_string()));
    if task.op.system() == System::OnPrem {
        return judge_onprem(task, back.ad.as_ref()?);
    }
    if let Some(mailbox) = &back.mailbox {
        match &task.op {
            TaskOp::ConvertToShared => return check(mailbox.kind == MailboxType::Shared, "the mailbox is not shared"),
            TaskOp::HideFromGal => return check(mailbox.hidden_from_address_lists, "the mailbox is still listed"),
            TaskOp::Forward { to, .. } => {
                let forwarded = [&mailbox.forwarding_address, &mailbox.forwarding_smtp_address]
                    .into_iter()
                    .flatten()
                    .any(|a| a.to_ascii_lowercase().contains(&to.to_ascii_lowercase()));
                return check(forwarded, "no forwarding to that address");
            }
            _ => {}
        }
    }
    if let (TaskOp::SetAutoReply { .. }, Some(enabled)) = (&task.op, back.auto_reply_enabled) {
        return check(enabled, "automatic replies are off");
    }
    if let TaskOp::DisablePsaContact { contact_id } = &task.op {
        let active = back.contacts_active.iter().find(|(id, _)| id == contact_id).map(|(_, a)| *a)?;
        return check(!active, "the PSA contact is active");
    }
    let state = back.state.as_ref()?;
    let member = |group: &str| state.groups.iter().any(|g| g.id == group || g.mail.as_deref() == Some(group));
    match &task.op {
        TaskOp::DisableAccount => check(!state.user.enabled, "the account is enabled"),
        TaskOp::ClearEmployeeId => check(state.user.employee_id.is_none(), "the employee id is still set"),
        TaskOp::ClearManager => check(state.manager.is_none(), "a manager is still set"),
        TaskOp::RemoveMembership { group_id } => check(!member(group_id), "still a member"),
        TaskOp::RemoveDistributionMember { group } => check(!member(group), "still a member"),
        TaskOp::AddMembership { group_id } => check(member(group_id), "not a member"),
        TaskOp::RemoveLicence { sku_id } => {
            check(!state.licences.iter().any(|l| &l.sku_id == sku_id), "the licence is still assigned")
        }
        TaskOp::RetireDevice { device_id } => {
            let device = state.devices.iter().find(|d| &d.id == device_id);
            let retired = device.is_none_or(|d| d.management_state.to_ascii_lowercase().contains("retire"));
            check(retired, "the device is still managed")
        }
        _ => None,
    }
}

/// An AD task against the account as read again.
fn judge_onprem(task: &Task, user: &AdUser) -> Option<(bool, String)> {
    let check = |ok: bool, found: &str| Some((ok, found.to_string()));
    match &task.op {
        TaskOp::AdDisableAccount => check(!user.enabled(), "the AD account is enabled"),
        TaskOp::AdClearEmployeeId => check(user.employee_id.is_none(), "employeeID is still set"),
        TaskOp::AdClearManager => check(user.manager.is_none(), "a manager is still set"),
        TaskOp::AdRemoveMembership { group_dn } => {
            check(!user.member_of.iter().any(|g| g.eq_ignore_ascii_case(group_dn)), "still a member")
        }
        TaskOp::AdHideFromGal => {
            check(user.hidden_from_address_lists == Some(true), "msExchHideFromAddressLists is not TRUE")
        }
        TaskOp::AdMove { to_ou } => check(user.parent_dn().eq_ignore_ascii_case(to_ou), "the account is elsewhere"),
        _ => None,
    }
}
