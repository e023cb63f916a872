//! Sending on-premises AD tasks: the tasks of a phase go together, on the account found
//! once by its `sAMAccountName` (its DN is read fresh: a resumed run may find it moved),
//! one LDAP modify each, in plan order (docs/vendors/active-directory.md).

use serde_json::{Value, json};

use super::OffboardUserDeps;
use super::failures::{Failure, directory_failure};
use super::plan::{Task, TaskOp};
use super::tasks::{self, Sent, Target};
use crate::error::ErrorCode;
use crate::ports::{ACCOUNT_DISABLED, AdUser, DirectoryError, OnPremDirectory};
use crate::secret::generate_password;

/// One [`Sent`] per task, in order.
pub(crate) async fn send_onprem(
    deps: &OffboardUserDeps<'_>,
    target: &Target<'_>,
    batch: Vec<(usize, &Task)>,
) -> Vec<Sent> {
    let account = match find_account(deps, target).await {
        Ok(found) => found,
        Err(failure) => {
            return batch
                .into_iter()
                .map(|(index, task)| tasks::failed(target, index, task, failure.clone()))
                .collect();
        }
    };
    let (ad, mut user) = account;
    let mut sent = Vec::with_capacity(batch.len());
    for (index, task) in batch {
        sent.push(send_one(deps, ad, target, &mut user, index, task).await);
    }
    sent
}

async fn find_account<'a>(
    deps: &OffboardUserDeps<'a>,
    target: &Target<'_>,
) -> Result<(&'a dyn OnPremDirectory, AdUser), Failure> {
    let failure = |code, message: String| Failure { code, vendor_code: None, message };
    let ad = deps.onprem.ok_or_else(|| {
        failure(ErrorCode::ConfigurationError, "on-premises AD is not configured here (AD_LDAP_URL)".into())
    })?;
    let account =
        target.ad_account.ok_or_else(|| failure(ErrorCode::ActionFailed, "the plan names no AD account".into()))?;
    match ad.find_user(account).await {
        Ok(Some(user)) => Ok((ad, user)),
        Ok(None) => Err(failure(ErrorCode::UserNotFound, format!("AD has no account '{account}' any more"))),
        Err(error) => Err(directory_failure(&error)),
    }
}

async fn send_one(
    deps: &OffboardUserDeps<'_>,
    ad: &dyn OnPremDirectory,
    target: &Target<'_>,
    user: &mut AdUser,
    index: usize,
    task: &Task,
) -> Sent {
    let dn = user.dn.clone();
    let result: Result<Value, DirectoryError> = match &task.op {
        TaskOp::AdDisableAccount => {
            let value = user.user_account_control | ACCOUNT_DISABLED;
            ad.set_user_account_control(&dn, value)
                .await
                .map(|()| json!({ "enabled": false, "user_account_control": value }))
        }
        TaskOp::AdResetPassword { store } => return reset_password(deps, ad, target, &dn, index, task, *store).await,
        TaskOp::AdClearEmployeeId => ad.set_employee_id(&dn, None).await.map(|()| json!({ "employee_id": null })),
        TaskOp::AdClearManager => ad.set_manager(&dn, None).await.map(|()| json!({ "manager": null })),
        TaskOp::AdRemoveMembership { group_dn } => match ad.remove_member(group_dn, &dn).await {
            // Not a member any more: what the task wants (a resend after a crash).
            Err(DirectoryError::NotFound { .. }) => {
                return tasks::done(target, index, task, json!({ "member": false }), Some("already gone".into()));
            }
            other => other.map(|()| json!({ "member": false })),
        },
        TaskOp::AdHideFromGal => ad.set_hidden_from_address_lists(&dn, true).await.map(|()| json!({ "hidden": true })),
        TaskOp::AdMove { to_ou } => ad.move_entry(&dn, to_ou).await.map(|new_dn| {
            user.dn = new_dn.clone();
            json!({ "parent": to_ou, "dn": new_dn })
        }),
        _ => Err(DirectoryError::Configuration { message: "not an on-premises AD task".into() }),
    };
    match result {
        Ok(after) => tasks::done(target, index, task, after, None),
        Err(error) => tasks::failed(target, index, task, directory_failure(&error)),
    }
}

/// A new random password set over TLS (the adapter refuses otherwise), kept in the vault
/// under `<domain>/<account>/ad` when asked: a hybrid pair's two passwords never share a name.
async fn reset_password(
    deps: &OffboardUserDeps<'_>,
    ad: &dyn OnPremDirectory,
    target: &Target<'_>,
    dn: &str,
    index: usize,
    task: &Task,
    store: bool,
) -> Sent {
    let password = generate_password(tasks::PASSWORD_LENGTH);
    if let Err(error) = ad.reset_password(dn, &password).await {
        return tasks::failed(target, index, task, directory_failure(&error));
    }
    if !store {
        return tasks::done(target, index, task, json!({ "done": true }), None);
    }
    let name = format!("{}/{}/ad", ad.domain(), target.ad_account.unwrap_or(target.user_id));
    tasks::store_password(deps, target, index, task, &password, &name).await
}
