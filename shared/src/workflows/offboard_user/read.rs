//! Everything read before anything changes (the pre-change snapshot): the user and what
//! surrounds them in the directory (one `leaver` call: a `$batch` on Graph), the mailbox
//! and, when the run touches them, its automatic replies and mobile devices, and the
//! leaver's PSA contact.

use super::OffboardUserDeps;
use super::selection::{ActionOptions, ClientSettings};
use crate::domain::Contact;
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{AutoReply, DirectoryError, LeaverState, MailboxInfo, MobileDevice};

/// The leaver as found before the run.
#[derive(Debug, Clone)]
pub(crate) struct Leaver {
    pub state: LeaverState,
    /// `None`: the user has no Exchange Online mailbox.
    pub mailbox: Option<MailboxInfo>,
    pub auto_reply: Option<AutoReply>,
    pub mobile_devices: Vec<MobileDevice>,
    /// The PSA contacts of the client with the leaver's address (normally one).
    pub contacts: Vec<Contact>,
}

/// A directory error met while reading, as the run's error.
pub(super) fn read_error(what: &str, error: DirectoryError) -> OfframpError {
    let code = match &error {
        DirectoryError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DirectoryError::Configuration { .. } => ErrorCode::ConfigurationError,
        DirectoryError::Throttled { .. } => ErrorCode::RequestBudgetExhausted,
        _ => ErrorCode::DirectoryConnectionError,
    };
    OfframpError::new(code, format!("reading {what}: {error}; nothing was changed"))
}

pub(super) async fn read(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    actions: &ActionOptions,
    user: &str,
) -> Result<Leaver, OfframpError> {
    let tenant = client.tenant.as_str();
    let state = deps.directory.leaver(tenant, user).await.map_err(|e| read_error("the user", e))?.ok_or_else(|| {
        OfframpError::new(ErrorCode::UserNotFound, format!("tenant {tenant} has no user '{user}'; nothing was changed"))
    })?;
    let upn = state.user.user_principal_name.clone();
    let mailbox = deps.mailboxes.mailbox(tenant, &upn).await.map_err(|e| read_error("the mailbox", e))?;
    let has_mailbox = mailbox.is_some();
    let auto_reply = async {
        if !(has_mailbox && actions.out_of_office.is_some()) {
            return Ok(None);
        }
        deps.mailboxes.auto_reply(tenant, &upn).await.map(Some)
    };
    let mobile = async {
        if !(has_mailbox && actions.remove_mobile_devices) {
            return Ok(Vec::new());
        }
        deps.mailboxes.mobile_devices(tenant, &upn).await
    };
    let (auto_reply, mobile_devices) =
        futures::try_join!(auto_reply, mobile).map_err(|e| read_error("the mailbox settings", e))?;
    let contacts = if actions.disable_psa_contact { psa_contacts(deps, client, &state).await? } else { Vec::new() };
    Ok(Leaver { state, mailbox, auto_reply, mobile_devices, contacts })
}

/// The client's contacts whose address is the leaver's mail or UPN (case-insensitive).
async fn psa_contacts(
    deps: &OffboardUserDeps<'_>,
    client: &ClientSettings,
    state: &LeaverState,
) -> Result<Vec<Contact>, OfframpError> {
    let addresses: Vec<String> = [state.user.mail.as_deref(), Some(state.user.user_principal_name.as_str())]
        .into_iter()
        .flatten()
        .map(str::to_ascii_lowercase)
        .collect();
    let contacts = deps.psa.list_contacts(&client.client_id).await?;
    Ok(contacts
        .into_iter()
        .filter(|c| c.email.as_deref().is_some_and(|e| addresses.contains(&e.trim().to_ascii_lowercase())))
        .collect())
}
