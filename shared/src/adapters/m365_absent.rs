//! Microsoft 365 where it is not configured: a deployment (or a laptop) that offboards users
//! of on-premises AD only has no `MS_CLIENT_ID`. User offboarding takes its Entra ID and
//! Exchange Online ports anyway; these answer every call with a `Configuration` error that
//! says what is missing. An on-premises-only run never calls them
//! (docs/workflows.md#003-identity-modes); any other run stops on its first read, before
//! anything changes.

use crate::ports::{
    AutoReply, CloudDirectory, Directory, DirectoryError, DirectoryGroup, DirectoryUser, Forwarding, Licence,
    MailboxInfo, Mailboxes, ManagedDevice, MobileDevice, OwnedGroup, async_trait,
};
use crate::secret::SecretString;

/// Entra ID and Exchange Online, not configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct Microsoft365NotConfigured;

fn not_configured() -> DirectoryError {
    DirectoryError::Configuration {
        message: "Microsoft 365 is not configured here (MS_CLIENT_ID, MS_CLIENT_SECRET): only on-premises AD users \
                  can be offboarded"
            .into(),
    }
}

#[async_trait]
impl Directory for Microsoft365NotConfigured {
    async fn user(&self, _tenant: &str, _user: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        Err(not_configured())
    }
    async fn manager(&self, _tenant: &str, _user: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        Err(not_configured())
    }
    async fn remove_manager(&self, _tenant: &str, _user: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn set_manager(&self, _tenant: &str, _user: &str, _manager: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn groups_of(&self, _tenant: &str, _user: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        Err(not_configured())
    }
    async fn add_member(&self, _tenant: &str, _group: &str, _user: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn remove_member(&self, _tenant: &str, _group: &str, _user: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn set_enabled(&self, _tenant: &str, _user: &str, _enabled: bool) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn set_employee_id(
        &self,
        _tenant: &str,
        _user: &str,
        _employee_id: Option<&str>,
    ) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn reset_password(&self, _tenant: &str, _user: &str, _password: &SecretString) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn revoke_sessions(&self, _tenant: &str, _user: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn owned_groups(&self, _tenant: &str, _user: &str) -> Result<Vec<OwnedGroup>, DirectoryError> {
        Err(not_configured())
    }
    async fn add_owner(&self, _tenant: &str, _group: &str, _user: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn remove_owner(&self, _tenant: &str, _group: &str, _user: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
}

#[async_trait]
impl CloudDirectory for Microsoft365NotConfigured {
    async fn licensed_users(&self, _tenant: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        Err(not_configured())
    }
    async fn licences(&self, _tenant: &str, _user: &str) -> Result<Vec<Licence>, DirectoryError> {
        Err(not_configured())
    }
    async fn remove_licences(&self, _tenant: &str, _user: &str, _sku_ids: &[String]) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn restore_licences(&self, _tenant: &str, _user: &str, _sku_ids: &[String]) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn managed_devices(&self, _tenant: &str, _user_id: &str) -> Result<Vec<ManagedDevice>, DirectoryError> {
        Err(not_configured())
    }
    async fn retire_device(&self, _tenant: &str, _device_id: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
}

#[async_trait]
impl Mailboxes for Microsoft365NotConfigured {
    async fn mailbox(&self, _tenant: &str, _mailbox: &str) -> Result<Option<MailboxInfo>, DirectoryError> {
        Err(not_configured())
    }
    async fn set_shared(&self, _tenant: &str, _mailbox: &str, _shared: bool) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn set_hidden(&self, _tenant: &str, _mailbox: &str, _hidden: bool) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn set_forwarding(
        &self,
        _tenant: &str,
        _mailbox: &str,
        _to: Option<&Forwarding>,
    ) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn grant_full_access(
        &self,
        _tenant: &str,
        _mailbox: &str,
        _trustee: &str,
        _automapping: bool,
    ) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn remove_full_access(&self, _tenant: &str, _mailbox: &str, _trustee: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn grant_send_as(&self, _tenant: &str, _mailbox: &str, _trustee: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn remove_send_as(&self, _tenant: &str, _mailbox: &str, _trustee: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn auto_reply(&self, _tenant: &str, _mailbox: &str) -> Result<AutoReply, DirectoryError> {
        Err(not_configured())
    }
    async fn set_auto_reply(&self, _tenant: &str, _mailbox: &str, _reply: &AutoReply) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn mobile_devices(&self, _tenant: &str, _mailbox: &str) -> Result<Vec<MobileDevice>, DirectoryError> {
        Err(not_configured())
    }
    async fn remove_mobile_device(&self, _tenant: &str, _identity: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn add_distribution_member(&self, _tenant: &str, _group: &str, _member: &str) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
    async fn remove_distribution_member(
        &self,
        _tenant: &str,
        _group: &str,
        _member: &str,
    ) -> Result<(), DirectoryError> {
        Err(not_configured())
    }
}
