//! How a rollback puts back what a user offboarding changed in on-premises AD. The change
//! record holds the state before (with the account's DN and `sAMAccountName`) and the state
//! the run left; the account is found again by its `sAMAccountName` (a moved account has
//! another DN), its attribute read fresh and judged like every other item: still as left →
//! put back; as before → already restored; anything else → a conflict, left alone. A
//! password reset cannot be put back and stays a record (docs/workflows.md#003-rollback).

use serde_json::{Value, json};

use crate::domain::{ItemChange, ItemKind};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::restore::{Judgement, Restorable, RestoreError, RestoreRegistry, RestoreSystems};
use crate::ports::{ACCOUNT_DISABLED, AdUser, async_trait};

const AD: &str = "on-premises AD";

/// Kinds an offboarding changes in AD and a rollback puts back.
const RESTORED: [ItemKind; 6] = [
    ItemKind::AdAccount,
    ItemKind::AdEmployeeId,
    ItemKind::AdManager,
    ItemKind::AdGroupMembership,
    ItemKind::AdLocation,
    ItemKind::AdAddressListVisibility,
];

pub(super) fn register(registry: &mut RestoreRegistry) {
    for kind in RESTORED {
        registry.register_item(kind, parse);
    }
    registry.keep_as_record(ItemKind::AdPassword);
}

fn parse(change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
    let Some(left) = change.after.clone() else { return Ok(None) };
    let account = change.before["sam"].as_str().or_else(|| left["ad_account"].as_str()).ok_or_else(|| {
        OfframpError::new(
            ErrorCode::AuditStoreError,
            format!("change record of {} {} names no AD account", change.item_type, change.item_id),
        )
    })?;
    Ok(Some(Box::new(AdItem {
        kind: change.item_type,
        id: change.item_id.clone(),
        name: change.item_name.clone(),
        account: account.to_string(),
        before: change.before.clone(),
        left,
    })))
}

/// One AD item of a leaver's, as its change record holds it.
struct AdItem {
    kind: ItemKind,
    id: String,
    name: String,
    account: String,
    before: Value,
    left: Value,
}

#[async_trait]
impl Restorable for AdItem {
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
        let Some(user) = systems.onprem()?.find_user(&self.account).await? else {
            return Ok(Judgement::missing_from(AD));
        };
        let now = self.current(&user);
        let (before, left) = (self.field(&self.before), self.field(&self.left));
        let judgement = Judgement::compare_in(AD, &before, &left, &now, label(&now), label(&left));
        Ok(judgement.with_current(now))
    }

    async fn restore(&self, systems: &RestoreSystems<'_>, _current: &Value) -> Result<Value, RestoreError> {
        let ad = systems.onprem()?;
        let Some(user) = ad.find_user(&self.account).await? else {
            return Err(RestoreError::Directory(crate::ports::DirectoryError::NotFound {
                code: "32".into(),
                message: format!("AD has no account '{}' any more", self.account),
            }));
        };
        let before = &self.before;
        let dn = user.dn.as_str();
        match self.kind {
            ItemKind::AdAccount => {
                let enabled = before["enabled"].as_bool().unwrap_or(true);
                let value = if enabled {
                    user.user_account_control & !ACCOUNT_DISABLED
                } else {
                    user.user_account_control | ACCOUNT_DISABLED
                };
                ad.set_user_account_control(dn, value).await?
            }
            ItemKind::AdEmployeeId => ad.set_employee_id(dn, before["employee_id"].as_str()).await?,
            ItemKind::AdManager => ad.set_manager(dn, before["manager"].as_str()).await?,
            ItemKind::AdGroupMembership => {
                let group = before["group_dn"].as_str().unwrap_or(&self.id);
                ad.add_member(group, dn).await?
            }
            ItemKind::AdLocation => {
                let parent = before["parent"].as_str().unwrap_or_default();
                ad.move_entry(dn, parent).await.map(|_| ())?
            }
            ItemKind::AdAddressListVisibility => {
                ad.set_hidden_from_address_lists(dn, before["hidden"].as_bool().unwrap_or(false)).await?
            }
            _ => {}
        }
        Ok(json!({ "restored": self.field(before) }))
    }
}

impl AdItem {
    /// The one field a judgement compares, as JSON (DNs compared lower-cased).
    fn field(&self, state: &Value) -> Value {
        let key = match self.kind {
            ItemKind::AdAccount => "enabled",
            ItemKind::AdEmployeeId => "employee_id",
            ItemKind::AdManager => "manager",
            ItemKind::AdGroupMembership => "member",
            ItemKind::AdLocation => "parent",
            ItemKind::AdAddressListVisibility => "hidden",
            _ => "done",
        };
        match state.get(key) {
            Some(Value::String(dn)) if matches!(self.kind, ItemKind::AdManager | ItemKind::AdLocation) => {
                json!(dn.to_ascii_lowercase())
            }
            Some(value) => value.clone(),
            None => Value::Null,
        }
    }

    /// The field as AD holds it now.
    fn current(&self, user: &AdUser) -> Value {
        match self.kind {
            ItemKind::AdAccount => json!(user.enabled()),
            ItemKind::AdEmployeeId => json!(user.employee_id),
            ItemKind::AdManager => json!(user.manager.as_ref().map(|m| m.to_ascii_lowercase())),
            ItemKind::AdGroupMembership => {
                let group = self.before["group_dn"].as_str().unwrap_or(&self.id);
                json!(user.member_of.iter().any(|g| g.eq_ignore_ascii_case(group)))
            }
            ItemKind::AdLocation => json!(user.parent_dn().to_ascii_lowercase()),
            ItemKind::AdAddressListVisibility => json!(user.hidden_from_address_lists.unwrap_or(false)),
            _ => Value::Null,
        }
    }
}

fn label(value: &Value) -> String {
    match value {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
