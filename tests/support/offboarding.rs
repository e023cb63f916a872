//! Wiring user offboarding (workflow 003) to the sandbox: Entra ID and Exchange Online of the
//! Microsoft 365 simulator, any of the three PSA simulators, the sandbox's Graph mail for
//! the manager's notification, and a fresh SQLite audit trail (which is also the settings
//! store).

use std::sync::Arc;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::exchange::ExchangeMailboxes;
use offramp::adapters::graph::{GraphDirectory, M365Settings};
use offramp::adapters::notify_graph::{GraphMailNotifier, GraphMailSettings};
use offramp::domain::PsaKind;
use offramp::ports::{OnPremDirectory, Psa, SecretVault};
use offramp::workflows::offboard_user::{
    ActionOptions, OffboardUserDeps, OffboardUserOptions, OffboardUserRequest, OutOfOffice,
};
use offramp_sandbox::m365::{M365_COLLEAGUE_UPN, M365_TENANT_DOMAIN};
use offramp_sandbox::{GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_SENDER, GRAPH_TENANT_ID, Sandbox};

use crate::connectwise::http_settings;

/// The PSA company whose people are the Microsoft 365 simulator's users.
pub const CONTOSO_COMPANY: &str = "600";
/// Lee Leaver's PSA contact.
pub const LEAVER_CONTACT: i64 = 60002;

pub fn m365_settings(sb: &Sandbox, secret: &str) -> M365Settings {
    M365Settings {
        login_url: sb.entra_url(),
        graph_url: format!("{}/graph", sb.base_url()),
        exo_url: sb.exchange_url(),
        client_id: GRAPH_CLIENT_ID.into(),
        client_secret: secret.into(),
    }
}

/// The sandbox's Graph mail (the MSP's own tenant sending the notifications).
pub fn mail_settings(sb: &Sandbox) -> GraphMailSettings {
    GraphMailSettings {
        authority_url: sb.entra_url(),
        graph_url: sb.graph_url(),
        tenant_id: GRAPH_TENANT_ID.into(),
        client_id: GRAPH_CLIENT_ID.into(),
        client_secret: GRAPH_CLIENT_SECRET.into(),
        sender: GRAPH_SENDER.into(),
    }
}

pub struct UserHarness {
    pub directory: GraphDirectory,
    pub mailboxes: ExchangeMailboxes,
    pub psa: Box<dyn Psa>,
    pub audit: Arc<SqliteAuditStore>,
    pub notifier: GraphMailNotifier,
    pub vault: Option<Arc<dyn SecretVault>>,
    /// On-premises AD (the Samba test DC), for the identity modes that have an AD account.
    pub onprem: Option<Arc<dyn OnPremDirectory>>,
    pub options: OffboardUserOptions,
    pub dir: tempfile::TempDir,
}

impl UserHarness {
    pub fn new(sb: &Sandbox, kind: PsaKind) -> Self {
        let settings = m365_settings(sb, GRAPH_CLIENT_SECRET);
        let dir = tempfile::tempdir().expect("tempdir");
        UserHarness {
            directory: GraphDirectory::new(&settings, http_settings()).expect("Graph directory"),
            mailboxes: ExchangeMailboxes::new(&settings, http_settings()).expect("Exchange"),
            psa: crate::psa::client(sb, kind),
            audit: Arc::new(SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("sqlite")),
            notifier: GraphMailNotifier::new(mail_settings(sb), http_settings()).expect("Graph mail notifier"),
            vault: None,
            onprem: None,
            options: OffboardUserOptions::default(),
            dir,
        }
    }

    /// Graph without `$batch`: each change its own request, so a route fault refuses exactly
    /// the writes it names.
    pub fn without_batches(&mut self, sb: &Sandbox) {
        let settings = m365_settings(sb, GRAPH_CLIENT_SECRET);
        self.directory = GraphDirectory::new(&settings, http_settings()).expect("Graph directory").without_batches();
    }

    /// Sets one of client 600's settings (ConnectWise), as `offramp settings set` would.
    pub async fn set_client_setting(&self, key: &str, value: &str) {
        use offramp::ports::SettingsStore;
        let record = crate::audit_conformance::setting_record("connectwise", CONTOSO_COMPANY, key, Some(value));
        self.audit.put_setting(&record).await.expect("setting");
    }

    pub fn deps(&self) -> OffboardUserDeps<'_> {
        OffboardUserDeps {
            directory: &self.directory,
            mailboxes: &self.mailboxes,
            onprem: self.onprem.as_deref(),
            psa: self.psa.as_ref(),
            audit: self.audit.as_ref(),
            settings: self.audit.as_ref(),
            notifier: Some(&self.notifier),
            vault: self.vault.as_deref(),
            options: self.options,
        }
    }
}

/// Every action of the seed's form, with the colleague as trustee and the manager as the
/// forwarding target.
pub fn every_action() -> ActionOptions {
    ActionOptions {
        revoke_sessions: true,
        reset_password: true,
        disable_account: true,
        remove_mobile_devices: true,
        retire_devices: true,
        convert_to_shared: true,
        grant_full_access: vec![M365_COLLEAGUE_UPN.into()],
        grant_send_as: vec![M365_COLLEAGUE_UPN.into()],
        hide_from_gal: true,
        forward_to: Some("manager".into()),
        forward_keep_copy: true,
        out_of_office: Some(OutOfOffice { internal: "Lee has left; please write to Megan.".into(), external: None }),
        remove_groups: true,
        clear_employee_id: true,
        clear_manager: true,
        disable_psa_contact: true,
        remove_licences: true,
        notify_manager: true,
        transfer_ownership: true,
        ..ActionOptions::default()
    }
}

/// A request for `user` of the simulator's default tenant, client 600.
pub fn request(user: &str, actions: ActionOptions) -> OffboardUserRequest {
    OffboardUserRequest {
        client_id: Some(CONTOSO_COMPANY.into()),
        tenant: Some(M365_TENANT_DOMAIN.into()),
        user: Some(user.into()),
        actions,
        initiated_by: Some("tech@msp.example".into()),
        reason: Some("Leaver".into()),
        ..OffboardUserRequest::default()
    }
}
