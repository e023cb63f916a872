//! Microsoft Entra ID over Microsoft Graph v1.0, for the customer tenants of user
//! offboarding (issue 14): [`GraphDirectory`] implements [`crate::ports::Directory`] and
//! [`crate::ports::CloudDirectory`] after docs/vendors/microsoft-graph.md#user-offboarding.
//! The token code is shared with Exchange Online ([`crate::adapters::exchange`]) and with
//! the mail notifier ([`crate::adapters::notify_graph`]).

mod batched;
mod client;
mod cloud;
mod directory;
pub(crate) mod errors;
mod settings;
pub(crate) mod token;

use std::sync::Arc;

use serde_json::Value;

pub use settings::{DEFAULT_EXO_URL, DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, M365Settings};

use crate::http::{HttpClient, HttpSettings, Redactor};
use crate::ports::{DirectoryError, DirectoryGroup, DirectoryUser, GroupKind, OnPremises};
use client::GraphClient;
pub(crate) use client::read_json as read_json_body;
use token::TenantTokens;

/// The user properties read: `accountEnabled`, `employeeId` and `onPremisesSyncEnabled`
/// come only when named (docs/vendors/microsoft-graph.md#select).
const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,accountEnabled,employeeId,onPremisesSyncEnabled";
const GROUP_SELECT: &str = "id,displayName,mail,mailEnabled,securityEnabled,groupTypes,onPremisesSyncEnabled";

/// Entra ID of any customer tenant the app is consented in.
pub struct GraphDirectory {
    client: GraphClient,
}

impl GraphDirectory {
    pub fn new(settings: &M365Settings, http: HttpSettings) -> Result<Self, DirectoryError> {
        settings.check()?;
        let login = M365Settings::url("MS_LOGIN_URL", &settings.login_url, &[])?;
        let base = M365Settings::url("GRAPH_URL", &settings.graph_url, &["v1.0"])?;
        let tokens =
            Arc::new(TenantTokens::new(login, settings.client_id.trim().into(), settings.client_secret.clone()));
        Self::with_tokens(base, tokens, http)
    }

    fn with_tokens(base: url::Url, tokens: Arc<TenantTokens>, http: HttpSettings) -> Result<Self, DirectoryError> {
        let redactor = Redactor::new([tokens.client_secret().expose().to_string()]);
        let http = HttpClient::new("graph-directory", http, redactor)
            .map_err(|e| DirectoryError::Configuration { message: e.to_string() })?;
        Ok(Self { client: GraphClient::new(http, base, tokens) })
    }

    pub fn http(&self) -> &HttpClient {
        &self.client.http
    }

    /// Read `MS_CLIENT_SECRET` through `store` before each token request: a rotated secret
    /// is picked up without a restart (docs/architecture.md#credentials).
    pub fn with_secret_store(self, store: Arc<dyn crate::ports::SecretStore>) -> Self {
        self.client.tokens.read_secret_from(store);
        self
    }
}

fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_string)
}

fn invalid(what: &str) -> DirectoryError {
    DirectoryError::InvalidResponse { message: format!("{what}: an object without an id") }
}

/// A Graph user (read with [`USER_SELECT`]).
pub(crate) fn parse_user(value: &Value) -> Result<DirectoryUser, DirectoryError> {
    let synced = value.get("onPremisesSyncEnabled").and_then(Value::as_bool).unwrap_or(false);
    Ok(DirectoryUser {
        id: text(value, "id").ok_or_else(|| invalid("user"))?,
        user_principal_name: text(value, "userPrincipalName").unwrap_or_default(),
        display_name: text(value, "displayName").unwrap_or_default(),
        mail: text(value, "mail"),
        // Not selected (a manager read) reads as enabled: only `false` disables.
        enabled: value.get("accountEnabled").and_then(Value::as_bool).unwrap_or(true),
        employee_id: text(value, "employeeId"),
        on_premises: synced.then(|| OnPremises { sync_enabled: true, ..OnPremises::default() }),
    })
}

/// A Graph group and its kind (docs/vendors/microsoft-graph.md#groups): dynamic and synced
/// first, as neither can be changed through Graph whatever else they are.
pub(crate) fn parse_group(value: &Value) -> Result<DirectoryGroup, DirectoryError> {
    let types: Vec<&str> = value
        .get("groupTypes")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let flag = |name: &str| value.get(name).and_then(Value::as_bool).unwrap_or(false);
    let kind = if types.iter().any(|t| t.eq_ignore_ascii_case("DynamicMembership")) {
        GroupKind::Dynamic
    } else if flag("onPremisesSyncEnabled") {
        GroupKind::Synced
    } else if types.iter().any(|t| t.eq_ignore_ascii_case("Unified")) {
        GroupKind::Unified
    } else if flag("mailEnabled") && flag("securityEnabled") {
        GroupKind::MailEnabledSecurity
    } else if flag("mailEnabled") {
        GroupKind::DistributionList
    } else {
        GroupKind::Security
    };
    Ok(DirectoryGroup {
        id: text(value, "id").ok_or_else(|| invalid("group"))?,
        display_name: text(value, "displayName").unwrap_or_default(),
        mail: text(value, "mail"),
        kind,
    })
}

/// Whether a directory object of a list is a group (`memberOf` and `ownedObjects` mix kinds).
pub(crate) fn is_group(value: &Value) -> bool {
    value.get("@odata.type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.group"))
}
