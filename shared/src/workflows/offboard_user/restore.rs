//! How a rollback puts back what a user offboarding changed, registered with the engine's
//! restore registry (the rollback knows no workflow). Each change record holds the state
//! before (`before`), the state the run left and where the leaver is (`after`: tenant,
//! user id, UPN); the item is read fresh from Entra ID or Exchange Online and judged:
//! still as left → put back; as before → already restored; anything else → a conflict,
//! left alone. The PSA contact's record is a contact deactivation's, so its restorer is
//! that one. What cannot be undone (a password, sessions, retired or removed devices) and
//! the ticket notes and e-mail stay as records (docs/workflows.md#003-rollback).

use serde_json::{Value, json};

use super::WORKFLOW;
use crate::domain::{ItemChange, ItemKind};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::restore::{
    Judgement, Restorable, RestoreError, RestoreRegistry, RestoreSystems, Reversibility, Verdict,
};
use crate::ports::{AutoReply, AutoReplyState, Forwarding, MailboxType, async_trait};

const ENTRA: &str = "Entra ID";
const EXCHANGE: &str = "Exchange Online";

/// Kinds a user offboarding changes and a rollback puts back.
const RESTORED: [ItemKind; 10] = [
    ItemKind::GroupOwnership,
    ItemKind::UserAccount,
    ItemKind::EmployeeId,
    ItemKind::Manager,
    ItemKind::GroupMembership,
    ItemKind::Licence,
    ItemKind::MailboxType,
    ItemKind::MailboxVisibility,
    ItemKind::MailboxForwarding,
    ItemKind::AutoReply,
];

pub fn register(registry: &mut RestoreRegistry) {
    registry.register_workflow(WORKFLOW, Reversibility::Reversible);
    for kind in RESTORED.into_iter().chain([ItemKind::MailboxPermission]) {
        registry.register_item(kind, parse);
    }
    for kind in [
        ItemKind::UserPassword,
        ItemKind::UserSessions,
        ItemKind::ManagedDevice,
        ItemKind::MobileDevice,
        ItemKind::StoredPassword,
    ] {
        registry.keep_as_record(kind);
    }
    super::restore_onprem::register(registry);
}

fn parse(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
    let Some(after) = change.after.clone() else { return Ok(None) };
    let text = |key: &str| after[key].as_str().map(str::to_string);
    let (Some(tenant), Some(user_id), Some(upn)) = (text("tenant"), text("user_id"), text("upn")) else {
        return Err(OfframpError::new(
            ErrorCode::AuditStoreError,
            format!("change record of {} {} names no tenant or user", change.item_type, change.item_id),
        ));
    };
    Ok(Some(Box::new(UserItem {
        kind: change.item_type,
        id: change.item_id.clone(),
        name: change.item_name.clone(),
        tenant,
        user_id,
        upn,
        before: change.before.clone(),
        left: after,
    })))
}

/// One item of a leaver's, as its change record holds it.
struct UserItem {
    kind: ItemKind,
    id: String,
    name: String,
    tenant: String,
    user_id: String,
    upn: String,
    before: Value,
    left: Value,
}

fn label(value: &Value) -> String {
    match value {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Restorable for UserItem {
    fn kind(&self) -> ItemKind {
        self.kind
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn restore_to(&self) -> String {
        label(&self.field(&self.before))
    }
    fn update_failed_code(&self) -> ErrorCode {
        ErrorCode::ActionFailed
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError> {
        let Some(now) = self.current(systems).await? else {
            let system = if self.in_exchange() { EXCHANGE } else { ENTRA };
            return Ok(Judgement::missing_from(system));
        };
        if self.kind == ItemKind::MailboxPermission {
            // Permissions are not read back: a grant this run made is removed.
            let judgement =
                Judgement { verdict: Verdict::Restore, current_label: "granted".into(), message: None, current: None };
            return Ok(judgement.with_current(now));
        }
        let (before, left) = (self.field(&self.before), self.field(&self.left));
        let system = if self.in_exchange() { EXCHANGE } else { ENTRA };
        let judgement = Judgement::compare_in(system, &before, &left, &now, label(&now), label(&left));
        Ok(judgement.with_current(now))
    }

    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        self.put_back(systems).await?;
        Ok(json!({ "restored": self.field(&self.before) }))
    }
}

impl UserItem {
    fn in_exchange(&self) -> bool {
        matches!(
            self.kind,
            ItemKind::MailboxType
                | ItemKind::MailboxVisibility
                | ItemKind::MailboxForwarding
                | ItemKind::AutoReply
                | ItemKind::MailboxPermission
        ) || self.is_distribution_list()
    }

    fn is_distribution_list(&self) -> bool {
        self.kind == ItemKind::GroupMembership
            && matches!(self.before["kind"].as_str(), Some("DistributionList" | "MailEnabledSecurity"))
    }

    /// The one field of a state a judgement compares, as JSON.
    fn field(&self, state: &Value) -> Value {
        let key = match self.kind {
            ItemKind::UserAccount => "enabled",
            ItemKind::EmployeeId => "employee_id",
            ItemKind::Manager => "manager_id",
            ItemKind::GroupMembership => "member",
            ItemKind::Licence => "assigned",
            ItemKind::GroupOwnership => "owner",
            ItemKind::MailboxType => "type",
            ItemKind::MailboxVisibility => "hidden",
            ItemKind::MailboxForwarding => return forwarding_of(state),
            ItemKind::AutoReply => "state",
            _ => "granted",
        };
        match (self.kind, state.get(key)) {
            // A licence's `before` names it (it was assigned); `after` says it no longer is.
            (ItemKind::Licence, None) => json!(true),
            (_, value) => value.cloned().unwrap_or(Value::Null),
        }
    }

    /// The item's field as the system holds it now; `None` when the user or mailbox is gone.
    async fn current(&self, systems: &RestoreSystems<'_>) -> Result<Option<Value>, RestoreError> {
        let (tenant, user) = (self.tenant.as_str(), self.user_id.as_str());
        if self.in_exchange() && self.kind != ItemKind::GroupMembership {
            return self.current_mailbox(systems).await;
        }
        let directory = systems.directory()?;
        let Some(found) = directory.user(tenant, user).await? else { return Ok(None) };
        Ok(Some(match self.kind {
            ItemKind::UserAccount => json!(found.enabled),
            ItemKind::EmployeeId => json!(found.employee_id),
            ItemKind::Manager => json!(directory.manager(tenant, user).await?.map(|m| m.id)),
            ItemKind::GroupMembership => {
                let group = self.before["group_id"].as_str().unwrap_or(&self.id);
                json!(directory.groups_of(tenant, user).await?.iter().any(|g| g.id == group))
            }
            ItemKind::GroupOwnership => {
                let owner = self.before["owner_id"].as_str().unwrap_or_default();
                json!(directory.owned_groups(tenant, owner).await?.iter().any(|g| g.group.id == self.id))
            }
            ItemKind::Licence => {
                let licences = directory.licences(tenant, user).await?;
                json!(licences.iter().any(|l| l.sku_id == self.id && l.by_group.is_none()))
            }
            _ => Value::Null,
        }))
    }

    async fn current_mailbox(&self, systems: &RestoreSystems<'_>) -> Result<Option<Value>, RestoreError> {
        let mailboxes = systems.mailboxes()?;
        let Some(mailbox) = mailboxes.mailbox(&self.tenant, &self.upn).await? else { return Ok(None) };
        Ok(Some(match self.kind {
            ItemKind::MailboxType => json!(match mailbox.kind {
                MailboxType::User => "user",
                MailboxType::Shared => "shared",
                MailboxType::Other => "other",
            }),
            ItemKind::MailboxVisibility => json!(mailbox.hidden_from_address_lists),
            ItemKind::MailboxForwarding => forwarding_of(&json!({
                "forwarding_address": mailbox.forwarding_address,
                "forwarding_smtp_address": mailbox.forwarding_smtp_address,
            })),
            ItemKind::AutoReply => {
                let reply = mailboxes.auto_reply(&self.tenant, &self.upn).await?;
                json!(format!("{:?}", reply.state))
            }
            _ => json!(true),
        }))
    }

    async fn put_back(&self, systems: &RestoreSystems<'_>) -> Result<(), RestoreError> {
        let (tenant, user, upn) = (self.tenant.as_str(), self.user_id.as_str(), self.upn.as_str());
        let before = &self.before;
        match self.kind {
            ItemKind::UserAccount => {
                systems.directory()?.set_enabled(tenant, user, before["enabled"].as_bool().unwrap_or(true)).await?
            }
            ItemKind::EmployeeId => {
                systems.directory()?.set_employee_id(tenant, user, before["employee_id"].as_str()).await?
            }
            ItemKind::Manager => match before["manager_id"].as_str() {
                Some(manager) => systems.directory()?.set_manager(tenant, user, manager).await?,
                None => systems.directory()?.remove_manager(tenant, user).await?,
            },
            ItemKind::GroupMembership => self.put_membership_back(systems).await?,
            ItemKind::Licence => {
                systems.directory()?.restore_licences(tenant, user, std::slice::from_ref(&self.id)).await?
            }
            ItemKind::MailboxType => systems.mailboxes()?.set_shared(tenant, upn, before["type"] == "shared").await?,
            ItemKind::MailboxVisibility => {
                systems.mailboxes()?.set_hidden(tenant, upn, before["hidden"].as_bool().unwrap_or(false)).await?
            }
            ItemKind::MailboxForwarding => {
                systems.mailboxes()?.set_forwarding(tenant, upn, forwarding(before).as_ref()).await?
            }
            ItemKind::AutoReply => systems.mailboxes()?.set_auto_reply(tenant, upn, &auto_reply(before)).await?,
            ItemKind::MailboxPermission => self.remove_permission(systems).await?,
            ItemKind::GroupOwnership => {
                let owner = before["owner_id"].as_str().unwrap_or_default();
                systems.directory()?.remove_owner(tenant, &self.id, owner).await?
            }
            _ => {}
        }
        Ok(())
    }

    async fn put_membership_back(&self, systems: &RestoreSystems<'_>) -> Result<(), RestoreError> {
        let (tenant, user) = (self.tenant.as_str(), self.user_id.as_str());
        let group = self.before["group_id"].as_str().unwrap_or(&self.id);
        let was_member = self.before["member"].as_bool().unwrap_or(true);
        if self.is_distribution_list() {
            let address = self.before["mail"].as_str().unwrap_or(group);
            systems.mailboxes()?.add_distribution_member(tenant, address, &self.upn).await?;
        } else if was_member {
            systems.directory()?.add_member(tenant, group, user).await?;
        } else {
            systems.directory()?.remove_member(tenant, group, user).await?;
        }
        Ok(())
    }

    async fn remove_permission(&self, systems: &RestoreSystems<'_>) -> Result<(), RestoreError> {
        let trustee = self.before["trustee"].as_str().unwrap_or_default();
        let mailboxes = systems.mailboxes()?;
        match self.before["right"].as_str() {
            Some("SendAs") => mailboxes.remove_send_as(&self.tenant, &self.upn, trustee).await?,
            _ => mailboxes.remove_full_access(&self.tenant, &self.upn, trustee).await?,
        }
        Ok(())
    }
}

/// Forwarding as one comparable value: the address, or null.
fn forwarding_of(state: &Value) -> Value {
    let text = |key: &str| {
        state[key].as_str().filter(|s| !s.is_empty()).map(|s| s.trim_start_matches("smtp:").to_ascii_lowercase())
    };
    match (text("forwarding_address"), text("forwarding_smtp_address"), state["to"].as_str()) {
        (Some(address), _, _) | (None, Some(address), _) => json!(address),
        (None, None, Some(to)) => json!(to.to_ascii_lowercase()),
        _ => Value::Null,
    }
}

fn forwarding(before: &Value) -> Option<Forwarding> {
    let keep_copy = before["deliver_to_mailbox_and_forward"].as_bool().unwrap_or(false);
    if let Some(recipient) = before["forwarding_address"].as_str().filter(|s| !s.is_empty()) {
        return Some(Forwarding::Internal { recipient: recipient.to_string(), keep_copy });
    }
    let address = before["forwarding_smtp_address"].as_str().filter(|s| !s.is_empty())?;
    Some(Forwarding::External { address: address.trim_start_matches("smtp:").to_string(), keep_copy })
}

/// The automatic replies as they were; none recorded → turned off.
fn auto_reply(before: &Value) -> AutoReply {
    let text = |key: &str| before[key].as_str().unwrap_or_default().to_string();
    let state = match before["state"].as_str() {
        Some("Enabled") => AutoReplyState::Enabled,
        Some("Scheduled") => AutoReplyState::Scheduled,
        _ => AutoReplyState::Disabled,
    };
    AutoReply {
        state,
        internal_message: text("internal"),
        external_message: text("external"),
        external_audience: before["audience"].as_str().unwrap_or("All").to_string(),
        start: before["start"].as_str().map(str::to_string),
        end: before["end"].as_str().map(str::to_string),
    }
}
