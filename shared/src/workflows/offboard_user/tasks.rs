//! Sending tasks: Entra ID changes together through `apply_user_changes` (a `$batch` on
//! Graph), each Exchange change as its own cmdlet, the PSA contact through the `Psa` port.
//! Every task ends as a change record with the state it left (`after`), which is what a
//! rollback compares with and what verification checks.

use serde_json::{Value, json};

use super::OffboardUserDeps;
pub(crate) use super::failures::{Failure, directory_failure};
use super::plan::{Task, TaskOp};
use crate::domain::{self, ItemChange, ItemKind, ItemOutcome};
use crate::error::{ErrorCode, PsaError};
use crate::ports::{DirectoryError, Forwarding, UserChange};
use crate::secret::{SecretString, generate_password};

/// The length of a leaver's new password (docs/vendors/microsoft-graph.md#passwords).
pub(crate) const PASSWORD_LENGTH: usize = 24;

/// What became of one task.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    /// The task's position in the plan.
    pub index: usize,
    pub change: ItemChange,
    /// For a failed task: Offramp's code, the vendor's code, the vendor's message.
    pub failure: Option<Failure>,
    /// Said in the report beside the result (a stored password, a warning).
    pub note: Option<String>,
}

/// Where the leaver is: the run's tenant and user.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub operation_id: &'a str,
    pub tenant: &'a str,
    pub user_id: &'a str,
    pub upn: &'a str,
    /// The AD account's `sAMAccountName`, in the modes that have one.
    pub ad_account: Option<&'a str>,
}

pub(crate) fn record(target: &Target<'_>, task: &Task, outcome: ItemOutcome, after: Option<Value>) -> ItemChange {
    ItemChange {
        outcome,
        before: task.before.clone(),
        after,
        at: domain::now(),
        ..ItemChange::intent(target.operation_id, task.kind, &task.id, &task.name)
    }
}

/// A task the plan skips: recorded as skipped, nothing sent.
pub(crate) fn skipped(target: &Target<'_>, index: usize, task: &Task) -> Sent {
    let mut change = record(target, task, ItemOutcome::Skipped, None);
    change.error_message = task.skip.clone();
    Sent { index, change, failure: None, note: None }
}

/// A task that went through. Its record also names where the leaver is, so that a
/// rollback, which reads nothing but the record, can find the item again.
pub(crate) fn done(target: &Target<'_>, index: usize, task: &Task, mut after: Value, note: Option<String>) -> Sent {
    if let Some(fields) = after.as_object_mut() {
        fields.insert("tenant".into(), json!(target.tenant));
        fields.insert("user_id".into(), json!(target.user_id));
        fields.insert("upn".into(), json!(target.upn));
        if let Some(account) = target.ad_account {
            fields.insert("ad_account".into(), json!(account));
        }
    }
    Sent { index, change: record(target, task, ItemOutcome::Changed, Some(after)), failure: None, note }
}

pub(crate) fn failed(target: &Target<'_>, index: usize, task: &Task, failure: Failure) -> Sent {
    let mut change = record(target, task, ItemOutcome::Failed, None);
    change.error_code = Some(failure.code.as_str().to_string());
    change.error_message = Some(match &failure.vendor_code {
        Some(code) => format!("{code}: {}", failure.message),
        None => failure.message.clone(),
    });
    Sent { index, change, failure: Some(failure), note: None }
}

fn psa_failure(error: &PsaError) -> Failure {
    let code = match error {
        PsaError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        PsaError::Connection { .. } | PsaError::InvalidResponse { .. } => ErrorCode::PsaConnectionError,
        _ => ErrorCode::ContactUpdateFailed,
    };
    Failure { code, vendor_code: None, message: error.to_string() }
}

/// The state a directory task leaves, as its change record keeps it.
fn directory_after(op: &TaskOp) -> Value {
    match op {
        TaskOp::DisableAccount => json!({ "enabled": false }),
        TaskOp::ClearEmployeeId => json!({ "employee_id": null }),
        TaskOp::ClearManager => json!({ "manager_id": null }),
        TaskOp::RemoveMembership { .. } => json!({ "member": false }),
        TaskOp::AddMembership { .. } => json!({ "member": true }),
        TaskOp::RemoveLicence { .. } => json!({ "assigned": false }),
        _ => json!({ "done": true }),
    }
}

/// The directory change of a task; a password reset makes its password here.
fn user_change(op: &TaskOp) -> Option<(UserChange, Option<SecretString>)> {
    let change = match op {
        TaskOp::DisableAccount => UserChange::SetEnabled(false),
        TaskOp::ResetPassword { .. } => {
            let password = generate_password(PASSWORD_LENGTH);
            return Some((UserChange::ResetPassword(password.clone()), Some(password)));
        }
        TaskOp::RevokeSessions => UserChange::RevokeSessions,
        TaskOp::RetireDevice { device_id } => UserChange::RetireDevice(device_id.clone()),
        TaskOp::RemoveMembership { group_id } => UserChange::RemoveMembership(group_id.clone()),
        TaskOp::AddMembership { group_id } => UserChange::AddMembership(group_id.clone()),
        TaskOp::ClearEmployeeId => UserChange::SetEmployeeId(None),
        TaskOp::ClearManager => UserChange::RemoveManager,
        TaskOp::RemoveLicence { sku_id } => UserChange::RemoveLicences(vec![sku_id.clone()]),
        _ => return None,
    };
    Some((change, None))
}

/// Directory tasks, sent together; one [`Sent`] per task, in order.
pub(crate) async fn send_directory(
    deps: &OffboardUserDeps<'_>,
    target: &Target<'_>,
    tasks: Vec<(usize, &Task)>,
) -> Vec<Sent> {
    let prepared: Vec<_> = tasks.iter().map(|(_, task)| user_change(&task.op)).collect();
    let changes: Vec<UserChange> = prepared.iter().flatten().map(|(change, _)| change.clone()).collect();
    let mut results = deps.directory.apply_user_changes(target.tenant, target.user_id, &changes).await.into_iter();
    let mut sent = Vec::with_capacity(tasks.len());
    for ((index, task), prepared) in tasks.into_iter().zip(prepared) {
        let Some((_, password)) = prepared else {
            let message = "not a directory change".to_string();
            sent.push(failed(
                target,
                index,
                task,
                Failure { code: ErrorCode::ActionFailed, vendor_code: None, message },
            ));
            continue;
        };
        let result = results.next().unwrap_or_else(|| {
            Err(DirectoryError::InvalidResponse { message: "the directory answered fewer results than changes".into() })
        });
        sent.push(match result {
            Ok(()) => after_directory_change(deps, target, index, task, password).await,
            Err(error) => failed(target, index, task, directory_failure(&error)),
        });
    }
    sent
}

/// A directory task that went through; a new password is kept in the vault if asked.
async fn after_directory_change(
    deps: &OffboardUserDeps<'_>,
    target: &Target<'_>,
    index: usize,
    task: &Task,
    password: Option<SecretString>,
) -> Sent {
    let (Some(password), TaskOp::ResetPassword { store: true }) = (password, &task.op) else {
        return done(target, index, task, directory_after(&task.op), None);
    };
    // The vault puts its prefix (`offramp/offboarded-users`) in front.
    let name = format!("{}/{}", target.tenant, target.user_id);
    store_password(deps, target, index, task, &password, &name).await
}

/// A new password kept in the vault under `name`; the task is done whether or not it could be.
pub(crate) async fn store_password(
    deps: &OffboardUserDeps<'_>,
    target: &Target<'_>,
    index: usize,
    task: &Task,
    password: &SecretString,
    name: &str,
) -> Sent {
    let Some(vault) = deps.vault else {
        return done(
            target,
            index,
            task,
            json!({ "done": true, "stored": false }),
            Some("no vault: not stored".into()),
        );
    };
    let description =
        format!("Password set by Offramp when offboarding {} (operation {})", target.upn, target.operation_id);
    match vault.store(name, password, &description).await {
        Ok(stored) => {
            let note = format!("the new password is kept in {}", stored.reference);
            done(target, index, task, json!({ "done": true, "stored": stored }), Some(note))
        }
        Err(error) => {
            let note = format!("the password was reset but could not be stored ({error}); nobody knows it");
            done(target, index, task, json!({ "done": true, "stored": false }), Some(note))
        }
    }
}

/// One Exchange task.
pub(crate) async fn send_mailbox(deps: &OffboardUserDeps<'_>, target: &Target<'_>, index: usize, task: &Task) -> Sent {
    let (tenant, mailbox, m) = (target.tenant, target.upn, deps.mailboxes);
    let (result, after) = match &task.op {
        TaskOp::ConvertToShared => (m.set_shared(tenant, mailbox, true).await, json!({ "type": "shared" })),
        TaskOp::HideFromGal => (m.set_hidden(tenant, mailbox, true).await, json!({ "hidden": true })),
        TaskOp::GrantFullAccess { trustee, automapping } => {
            (m.grant_full_access(tenant, mailbox, trustee, *automapping).await, json!({ "granted": true }))
        }
        TaskOp::GrantSendAs { trustee } => {
            (m.grant_send_as(tenant, mailbox, trustee).await, json!({ "granted": true }))
        }
        TaskOp::Forward { to, keep_copy, external } => {
            let forwarding = if *external {
                Forwarding::External { address: to.clone(), keep_copy: *keep_copy }
            } else {
                Forwarding::Internal { recipient: to.clone(), keep_copy: *keep_copy }
            };
            let after = json!({ "to": to, "external": external, "deliver_to_mailbox_and_forward": keep_copy });
            (m.set_forwarding(tenant, mailbox, Some(&forwarding)).await, after)
        }
        TaskOp::SetAutoReply { internal, external } => {
            let reply = crate::ports::AutoReply {
                state: crate::ports::AutoReplyState::Enabled,
                internal_message: internal.clone(),
                external_message: external.clone(),
                external_audience: "All".into(),
                start: None,
                end: None,
            };
            (m.set_auto_reply(tenant, mailbox, &reply).await, json!({ "state": "Enabled", "internal": internal }))
        }
        TaskOp::RemoveMobileDevice { identity } => {
            (m.remove_mobile_device(tenant, identity).await, json!({ "done": true }))
        }
        TaskOp::RemoveDistributionMember { group } => {
            (m.remove_distribution_member(tenant, group, mailbox).await, json!({ "member": false }))
        }
        _ => (Err(DirectoryError::Configuration { message: "not an Exchange task".into() }), Value::Null),
    };
    match result {
        Ok(()) => done(target, index, task, after, None),
        // Removing what is already gone leaves what the task wants (a resend after a crash).
        Err(DirectoryError::NotFound { .. })
            if matches!(task.op, TaskOp::RemoveMobileDevice { .. } | TaskOp::RemoveDistributionMember { .. }) =>
        {
            done(target, index, task, after, Some("already gone".into()))
        }
        Err(error) => failed(target, index, task, directory_failure(&error)),
    }
}

/// The manager made an owner of a group the leaver owned alone.
pub(crate) async fn send_owner(deps: &OffboardUserDeps<'_>, target: &Target<'_>, index: usize, task: &Task) -> Sent {
    let TaskOp::AddOwner { group_id, owner_id } = &task.op else {
        let message = "not an ownership task".to_string();
        return failed(target, index, task, Failure { code: ErrorCode::ActionFailed, vendor_code: None, message });
    };
    let changes = [UserChange::AddOwner(group_id.clone())];
    let result = deps.directory.apply_user_changes(target.tenant, owner_id, &changes).await.pop();
    match result.unwrap_or(Ok(())) {
        Ok(()) => done(target, index, task, json!({ "owner": true, "owner_id": owner_id }), None),
        Err(error) => failed(target, index, task, directory_failure(&error)),
    }
}

/// The leaver's PSA contact set inactive; its change record is the one a contact
/// deactivation writes, so the same restorer puts it back.
pub(crate) async fn send_psa(deps: &OffboardUserDeps<'_>, target: &Target<'_>, index: usize, task: &Task) -> Sent {
    let contact = match serde_json::from_value::<crate::domain::Contact>(task.before.clone()) {
        Ok(contact) => contact,
        Err(e) => {
            let failure = Failure { code: ErrorCode::ContactUpdateFailed, vendor_code: None, message: e.to_string() };
            return failed(target, index, task, failure);
        }
    };
    match deps.psa.set_contact_active(&contact, false).await {
        Ok(now) => done(target, index, task, json!(now), None),
        Err(error) => failed(target, index, task, psa_failure(&error)),
    }
}

/// Whether a task's kind is one a rollback cannot put back.
pub(crate) fn irreversible(kind: ItemKind) -> bool {
    matches!(
        kind,
        ItemKind::UserPassword
            | ItemKind::UserSessions
            | ItemKind::ManagedDevice
            | ItemKind::MobileDevice
            | ItemKind::AdPassword
    )
}
