//! A user offboarding's plan: the tasks, each an item of the operation, in phases.
//! Built from the snapshot alone, so the same leaver and the same options always give the
//! same tasks, and the same hash (`plan_hash`) an approval binds to.

mod build;
mod build_onprem;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::read::Leaver;
use super::selection::{ActionOptions, ClientSettings};
use crate::domain::{IdentityMode, ItemKind, OffboardAction};
use crate::error::OfframpError;
use crate::operation::{self, sort_key};

/// Phases run one after the other; the tasks of a phase run together
/// (docs/workflows.md#003-order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// On-premises AD first, where it masters the account: disabled, password reset
    /// (docs/workflows.md#003-identity-modes).
    #[serde(rename = "onprem_sign_in")]
    OnPremSignIn,
    /// Account disabled, password reset: nobody signs in any more.
    SignIn,
    /// Then sessions revoked and devices removed, so no session outlives the sign-in.
    Sessions,
    /// The mailbox converted to shared, before its licence can go.
    Mailbox,
    /// Permissions, visibility, forwarding, automatic replies on the (shared) mailbox.
    MailboxAccess,
    /// Groups, ownership, manager, employee id, the PSA contact.
    Directory,
    /// Licences last: after the conversion and after the groups that grant them.
    Licences,
    /// The AD account moved to the disabled users OU, after everything else
    /// (docs/vendors/active-directory.md#move).
    Relocate,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::OnPremSignIn,
        Phase::SignIn,
        Phase::Sessions,
        Phase::Mailbox,
        Phase::MailboxAccess,
        Phase::Directory,
        Phase::Licences,
        Phase::Relocate,
    ];

    /// The phase's heading in ticket notes.
    pub fn title(self) -> &'static str {
        match self {
            Phase::OnPremSignIn => "Sign-in blocked in on-premises AD",
            Phase::SignIn => "Sign-in blocked",
            Phase::Sessions => "Sessions and devices",
            Phase::Mailbox => "Mailbox conversion",
            Phase::MailboxAccess => "Mailbox access and mail flow",
            Phase::Directory => "Groups, manager, employee id and PSA contact",
            Phase::Licences => "Licences",
            Phase::Relocate => "Moved to the disabled users OU",
        }
    }
}

/// What one task changes, and where it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum TaskOp {
    // Entra ID (Graph), sent together in `$batch` requests.
    DisableAccount,
    /// The password is made when the task is sent, never planned nor recorded.
    ResetPassword {
        store: bool,
    },
    RevokeSessions,
    RetireDevice {
        device_id: String,
    },
    RemoveMembership {
        group_id: String,
    },
    AddMembership {
        group_id: String,
    },
    ClearEmployeeId,
    ClearManager,
    RemoveLicence {
        sku_id: String,
    },
    /// Another user (the manager) made an owner of a group the leaver owns alone: sent on
    /// its own, as it changes the manager, not the leaver.
    AddOwner {
        group_id: String,
        owner_id: String,
    },
    // Exchange Online, one cmdlet each.
    ConvertToShared,
    GrantFullAccess {
        trustee: String,
        automapping: bool,
    },
    GrantSendAs {
        trustee: String,
    },
    HideFromGal,
    Forward {
        to: String,
        keep_copy: bool,
        external: bool,
    },
    SetAutoReply {
        internal: String,
        external: String,
    },
    RemoveMobileDevice {
        identity: String,
    },
    RemoveDistributionMember {
        group: String,
    },
    // The PSA.
    DisablePsaContact {
        contact_id: String,
    },
    // On-premises AD (LDAP), sent together per phase on the account found once.
    AdDisableAccount,
    /// Like [`TaskOp::ResetPassword`]: made when sent, never planned nor recorded.
    AdResetPassword {
        store: bool,
    },
    AdClearEmployeeId,
    AdClearManager,
    AdRemoveMembership {
        group_dn: String,
    },
    AdHideFromGal,
    AdMove {
        to_ou: String,
    },
}

impl TaskOp {
    /// Which system takes the task.
    pub fn system(&self) -> System {
        match self {
            TaskOp::DisableAccount
            | TaskOp::ResetPassword { .. }
            | TaskOp::RevokeSessions
            | TaskOp::RetireDevice { .. }
            | TaskOp::RemoveMembership { .. }
            | TaskOp::AddMembership { .. }
            | TaskOp::ClearEmployeeId
            | TaskOp::ClearManager
            | TaskOp::RemoveLicence { .. } => System::Directory,
            TaskOp::DisablePsaContact { .. } => System::Psa,
            TaskOp::AddOwner { .. } => System::Owner,
            TaskOp::AdDisableAccount
            | TaskOp::AdResetPassword { .. }
            | TaskOp::AdClearEmployeeId
            | TaskOp::AdClearManager
            | TaskOp::AdRemoveMembership { .. }
            | TaskOp::AdHideFromGal
            | TaskOp::AdMove { .. } => System::OnPrem,
            _ => System::Mailboxes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    Directory,
    /// A directory change to someone else than the leaver.
    Owner,
    Mailboxes,
    Psa,
    /// On-premises AD.
    OnPrem,
}

impl System {
    /// The system's name in plans, reports and notes.
    pub fn name(self) -> &'static str {
        match self {
            System::Directory | System::Owner => "Entra ID",
            System::Mailboxes => "Exchange Online",
            System::Psa => "PSA",
            System::OnPrem => "on-premises AD",
        }
    }
}

/// One task: an item of the operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Task {
    pub action: OffboardAction,
    pub kind: ItemKind,
    pub id: String,
    pub name: String,
    pub phase: Phase,
    pub op: TaskOp,
    /// The item's state before the run (what a rollback puts back).
    pub before: Value,
    /// Planned as skipped, with why: nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

impl Task {
    /// What the plan does with the item, as its snapshot records it.
    pub fn planned_action(&self) -> String {
        match &self.skip {
            Some(_) => "skip".into(),
            None => serde_json::to_value(&self.op)
                .ok()
                .and_then(|v| v["op"].as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }
}

/// The plan: every task, in phase order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub tenant: String,
    pub user_id: String,
    pub user_principal_name: String,
    pub mode: IdentityMode,
    /// The AD account's `sAMAccountName`, in the modes that have one: AD tasks find the
    /// account by it when sent (its DN changes when it moves).
    pub ad_account: Option<String>,
    pub tasks: Vec<Task>,
    pub hash: String,
    /// Groups the leaver owns alone (reported whether or not ownership is transferred).
    pub sole_owner_groups: Vec<String>,
    /// Whether the manager is notified at the end.
    pub notify: bool,
    /// Whether the ticket gets a note when the run starts and one per phase besides the
    /// summary (`summary_note_only` turns them off).
    pub progress_notes: bool,
}

impl Plan {
    /// One run at a time per leaver (`m365#tenant/user`); recorded, so that a rollback
    /// takes the same lease.
    pub fn lease_target(&self) -> String {
        let system = if self.mode == IdentityMode::OnPrem { super::ONPREM_SYSTEM } else { super::SYSTEM };
        operation::lease::target(system, &format!("{}/{}", self.tenant, self.user_id))
    }
}

/// Every task of the selected actions, by the leaver's identity mode
/// (docs/workflows.md#003-identity-modes).
fn tasks(client: &ClientSettings, actions: &ActionOptions, leaver: &Leaver) -> Vec<Task> {
    let mut b = build::Builder { leaver, tasks: Vec::new() };
    if leaver.identity.mode.has_cloud() {
        build::cloud_tasks(&mut b, actions, client);
    } else {
        build_onprem::cloud_skipped(&mut b, actions, client);
    }
    if actions.disable_psa_contact {
        build::psa_contacts(&mut b);
    }
    if let Some(onprem) = &leaver.onprem {
        build_onprem::tasks(&mut b, actions, client, onprem);
    }
    b.tasks
}

/// Plan order: by phase, then kind, then id (numerically where ids are numbers).
pub(super) fn sort(tasks: &mut [Task]) {
    tasks.sort_by_key(|t| (t.phase, t.kind, sort_key(&t.id)));
}

pub(super) fn make_plan(
    client: &ClientSettings,
    actions: &ActionOptions,
    leaver: &Leaver,
    progress_notes: bool,
) -> Result<Plan, OfframpError> {
    let mut tasks = tasks(client, actions, leaver);
    sort(&mut tasks);
    let user = &leaver.state.user;
    let sole_owner_groups =
        leaver.state.owned_groups.iter().filter(|g| g.owner_count <= 1).map(|g| g.group.display_name.clone()).collect();
    let notify = actions.notify_manager;
    let ad_account = leaver.onprem.as_ref().map(|o| o.user.sam_account_name.clone());
    let mut hashed = json!({
        "tenant": client.tenant,
        "user": user.id,
        "mode": leaver.identity.mode,
        "ad_account": ad_account,
        "tasks": tasks,
        "notify": notify,
        "manager": leaver.state.manager.as_ref().map(|m| &m.id),
    });
    // Only when off: the plans (and approvals) made before the setting existed keep their hash.
    if !progress_notes {
        hashed["progress_notes"] = json!(false);
    }
    let hash = operation::plan_hash(&hashed);
    Ok(Plan {
        tenant: client.tenant.clone(),
        user_id: user.id.clone(),
        user_principal_name: user.user_principal_name.clone(),
        mode: leaver.identity.mode,
        ad_account,
        tasks,
        hash,
        sole_owner_groups,
        notify,
        progress_notes,
    })
}
