//! [`Mailboxes`] over InvokeCommand, cmdlet by cmdlet (docs/vendors/exchange-online.md#cmdlets).

use serde_json::json;

use super::{ExchangeMailboxes, not_found, params, parse_auto_reply, parse_mailbox, text};
use crate::ports::{
    AutoReply, AutoReplyState, DirectoryError, Forwarding, MailboxInfo, Mailboxes, MobileDevice, async_trait,
};

#[async_trait]
impl Mailboxes for ExchangeMailboxes {
    async fn mailbox(&self, tenant: &str, mailbox: &str) -> Result<Option<MailboxInfo>, DirectoryError> {
        match self.invoke(tenant, "Get-Mailbox", params(json!({ "Identity": mailbox }))).await {
            Ok(found) => Ok(found.first().map(parse_mailbox)),
            Err(DirectoryError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn set_shared(&self, tenant: &str, mailbox: &str, shared: bool) -> Result<(), DirectoryError> {
        self.set_mailbox(tenant, mailbox, json!({ "Type": if shared { "Shared" } else { "Regular" } })).await
    }

    async fn set_hidden(&self, tenant: &str, mailbox: &str, hidden: bool) -> Result<(), DirectoryError> {
        self.set_mailbox(tenant, mailbox, json!({ "HiddenFromAddressListsEnabled": hidden })).await
    }

    async fn set_forwarding(&self, tenant: &str, mailbox: &str, to: Option<&Forwarding>) -> Result<(), DirectoryError> {
        // Exchange ignores ForwardingSmtpAddress while ForwardingAddress is set: set one, clear
        // the other. A synced mailbox refuses ForwardingAddress (AD's altRecipient is synced),
        // so clearing sends it only when it is set.
        let settings = match to {
            Some(Forwarding::Internal { recipient, keep_copy }) => json!({
                "ForwardingAddress": recipient, "ForwardingSmtpAddress": null, "DeliverToMailboxAndForward": keep_copy,
            }),
            Some(Forwarding::External { address, keep_copy }) => json!({
                "ForwardingAddress": null, "ForwardingSmtpAddress": format!("smtp:{}", address.trim_start_matches("smtp:")),
                "DeliverToMailboxAndForward": keep_copy,
            }),
            None => {
                let current = self.mailbox(tenant, mailbox).await?.ok_or_else(|| not_found("mailbox", mailbox))?;
                let mut clear = json!({ "ForwardingSmtpAddress": null, "DeliverToMailboxAndForward": false });
                if current.forwarding_address.is_some() {
                    clear["ForwardingAddress"] = json!(null);
                }
                clear
            }
        };
        self.set_mailbox(tenant, mailbox, settings).await
    }

    async fn grant_full_access(
        &self,
        tenant: &str,
        mailbox: &str,
        trustee: &str,
        automapping: bool,
    ) -> Result<(), DirectoryError> {
        let p = json!({ "Identity": mailbox, "User": trustee, "AccessRights": ["FullAccess"], "AutoMapping": automapping, "InheritanceType": "All" });
        self.invoke(tenant, "Add-MailboxPermission", params(p)).await.map(drop)
    }

    async fn remove_full_access(&self, tenant: &str, mailbox: &str, trustee: &str) -> Result<(), DirectoryError> {
        let p =
            json!({ "Identity": mailbox, "User": trustee, "AccessRights": ["FullAccess"], "InheritanceType": "All" });
        self.invoke(tenant, "Remove-MailboxPermission", params(p)).await.map(drop)
    }

    async fn grant_send_as(&self, tenant: &str, mailbox: &str, trustee: &str) -> Result<(), DirectoryError> {
        let p = json!({ "Identity": mailbox, "Trustee": trustee, "AccessRights": ["SendAs"] });
        self.invoke(tenant, "Add-RecipientPermission", params(p)).await.map(drop)
    }

    async fn remove_send_as(&self, tenant: &str, mailbox: &str, trustee: &str) -> Result<(), DirectoryError> {
        let p = json!({ "Identity": mailbox, "Trustee": trustee, "AccessRights": ["SendAs"] });
        self.invoke(tenant, "Remove-RecipientPermission", params(p)).await.map(drop)
    }

    async fn auto_reply(&self, tenant: &str, mailbox: &str) -> Result<AutoReply, DirectoryError> {
        let found =
            self.invoke(tenant, "Get-MailboxAutoReplyConfiguration", params(json!({ "Identity": mailbox }))).await?;
        found.first().map(parse_auto_reply).ok_or_else(|| not_found("auto-reply of", mailbox))
    }

    async fn set_auto_reply(&self, tenant: &str, mailbox: &str, reply: &AutoReply) -> Result<(), DirectoryError> {
        let state = match reply.state {
            AutoReplyState::Disabled => "Disabled",
            AutoReplyState::Enabled => "Enabled",
            AutoReplyState::Scheduled => "Scheduled",
        };
        let mut p = params(json!({
            "Identity": mailbox, "AutoReplyState": state, "InternalMessage": reply.internal_message,
            "ExternalMessage": reply.external_message, "ExternalAudience": reply.external_audience,
        }));
        for (name, value) in [("StartTime", &reply.start), ("EndTime", &reply.end)] {
            if let Some(value) = value {
                p.insert(name.into(), json!(value));
            }
        }
        self.invoke(tenant, "Set-MailboxAutoReplyConfiguration", p).await.map(drop)
    }

    async fn mobile_devices(&self, tenant: &str, mailbox: &str) -> Result<Vec<MobileDevice>, DirectoryError> {
        let found = self.invoke(tenant, "Get-MobileDevice", params(json!({ "Mailbox": mailbox }))).await?;
        Ok(found
            .iter()
            .filter_map(|d| {
                Some(MobileDevice { identity: text(d, "Identity")?, guid: text(d, "Guid").unwrap_or_default() })
            })
            .collect())
    }

    async fn remove_mobile_device(&self, tenant: &str, identity: &str) -> Result<(), DirectoryError> {
        self.invoke(tenant, "Remove-MobileDevice", params(json!({ "Identity": identity }))).await.map(drop)
    }

    async fn add_distribution_member(&self, tenant: &str, group: &str, member: &str) -> Result<(), DirectoryError> {
        self.member(tenant, "Add", group, member).await
    }

    async fn remove_distribution_member(&self, tenant: &str, group: &str, member: &str) -> Result<(), DirectoryError> {
        self.member(tenant, "Remove", group, member).await
    }
}
